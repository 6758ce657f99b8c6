"use strict";
// By hand: RECEIVERS WebSocket clients that each read at most RATE bytes a second (a slow network
// or a busy client), while one sender keeps WINDOW acknowledged `broadcast` events of SIZE bytes in
// flight for SECONDS (the bench profile's handler emits each to every client). Prints, per run, how
// many receivers were closed and why, how many messages they got, and the longest time any of them
// went without a ping from the server. The receivers speak Engine.IO over raw sockets so that
// their reading can be paced; they answer every ping at once.
// node testkit/clients/node/slow-readers.js URL RECEIVERS RATE SECONDS SIZE WINDOW
// e.g. against `sockio-conformance serve --runtime tokio --profile bench --port 3000`:
//   node testkit/clients/node/slow-readers.js http://127.0.0.1:3000 20 300000 62 10000 20
const net = require("net");
const { io } = require("socket.io-client");

const [url, receiversArg, rateArg, secondsArg, sizeArg, windowArg] = process.argv.slice(2);
const { hostname, port } = new URL(url);
const receivers = Number(receiversArg);
const rate = Number(rateArg);
const seconds = Number(secondsArg);
const size = Number(sizeArg);
const window = Number(windowArg);

/// A client-to-server text frame (masked with a zero key, which RFC 6455 allows).
function textFrame(text) {
  const payload = Buffer.from(text);
  if (payload.length > 125) throw new Error("short frames only");
  return Buffer.concat([Buffer.from([0x81, 0x80 | payload.length, 0, 0, 0, 0]), payload]);
}

/// One paced receiver; resolves with what it saw once the run ends or it is closed.
function receiver(index) {
  return new Promise((resolve) => {
    const seen = { received: 0, closed: null, longestPingGap: 0, pings: 0 };
    const started = Date.now();
    let lastPing = started;
    let joined = false;
    let handshaken = false;
    let buffered = Buffer.alloc(0);
    let bytesRead = 0;
    const socket = net.connect({ host: hostname, port: Number(port),
      localAddress: `127.0.0.${2 + (index % 200)}` });
    const finish = (closed) => {
      if (seen.closed !== null || finished) return;
      seen.closed = closed;
      seen.longestPingGap = Math.max(seen.longestPingGap, Date.now() - lastPing);
      socket.destroy();
      resolve(seen);
    };
    socket.on("connect", () => {
      socket.write(`GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: ${hostname}\r\n` +
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
        "Sec-WebSocket-Version: 13\r\n\r\n");
    });
    socket.on("data", (chunk) => {
      bytesRead += chunk.length;
      // Paced: ahead of RATE, stop reading until the schedule catches up (the kernel holds the rest).
      const ahead = bytesRead / rate * 1000 - (Date.now() - started);
      if (ahead > 0) {
        socket.pause();
        setTimeout(() => socket.resume(), ahead);
      }
      buffered = Buffer.concat([buffered, chunk]);
      if (!handshaken) {
        const end = buffered.indexOf("\r\n\r\n");
        if (end < 0) return;
        handshaken = true;
        buffered = buffered.subarray(end + 4);
      }
      for (;;) {
        if (buffered.length < 2) return;
        const opcode = buffered[0] & 0x0f;
        let length = buffered[1] & 0x7f;
        let offset = 2;
        if (length === 126) {
          if (buffered.length < 4) return;
          length = buffered.readUInt16BE(2);
          offset = 4;
        } else if (length === 127) {
          if (buffered.length < 10) return;
          length = Number(buffered.readBigUInt64BE(2));
          offset = 10;
        }
        if (buffered.length < offset + length) return;
        const payload = buffered.subarray(offset, offset + length);
        buffered = buffered.subarray(offset + length);
        if (opcode === 8) return finish("close frame");
        if (opcode !== 1) continue;
        const text = payload.toString();
        if (text === "2") {
          const now = Date.now();
          seen.longestPingGap = Math.max(seen.longestPingGap, now - lastPing);
          lastPing = now;
          seen.pings += 1;
          socket.write(textFrame("3"));
        } else if (text.startsWith("0{")) {
          socket.write(textFrame("40"));
        } else if (text.startsWith("40") && !joined) {
          joined = true;
          ready();
        } else if (text.startsWith("42")) {
          seen.received += 1;
        }
      }
    });
    socket.on("close", () => finish("socket closed"));
    socket.on("error", (error) => finish(`error ${error.code}`));
    let finished = false;
    setTimeout(() => {
      seen.longestPingGap = Math.max(seen.longestPingGap, Date.now() - lastPing);
      finished = true;
      socket.destroy();
      resolve(seen);
    }, (seconds + 5) * 1000).unref();
  });
}

let joinedCount = 0;
function ready() {
  if (++joinedCount !== receivers) return;
  const sender = io(url, { transports: ["websocket"], reconnection: false });
  const data = "x".repeat(size);
  let sent = 0;
  let stop = false;
  const send = () => {
    if (stop) return;
    sent += 1;
    sender.emit("broadcast", data, () => send());
  };
  sender.on("connect", () => {
    for (let i = 0; i < window; i++) send();
  });
  setTimeout(() => { stop = true; sender.close(); }, seconds * 1000).unref();
}

Promise.all(Array.from({ length: receivers }, (_, i) => receiver(i))).then((all) => {
  const reasons = {};
  for (const r of all) {
    const key = r.closed || "open at the end";
    reasons[key] = (reasons[key] || 0) + 1;
  }
  const received = all.map((r) => r.received);
  console.log(JSON.stringify({
    receivers, rate, seconds, size, window, reasons,
    receivedMin: Math.min(...received), receivedMax: Math.max(...received),
    longestPingGapMs: Math.max(...all.map((r) => r.longestPingGap)),
    pingsMin: Math.min(...all.map((r) => r.pings)),
  }));
  process.exit(0);
});
