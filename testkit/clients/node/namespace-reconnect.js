#!/usr/bin/env node
// socket.io-client 4.8's `socket.disconnect(); socket.connect()` on a namespace other than `/`,
// against a server running the "socket-io" test-server profile: the namespace must connect
// again, and the connection, with `/` on it, must live on.
//
//   node namespace-reconnect.js --url http://127.0.0.1:PORT --transport polling|websocket|upgrade
//
// Over a WebSocket the client sends the DISCONNECT and the CONNECT together. The official Node.js
// server handles a DISCONNECT a tick later, so it takes the CONNECT for one to a namespace still
// joined and closes the whole connection (this check fails there over a WebSocket).
//
// Prints one JSON line, {"scenario":"namespace-reconnect","ok":true|false,"detail":"..."}, and
// exits 0 iff it passed.
"use strict";

const { Manager } = require("socket.io-client");

function parseArgs(argv) {
  const out = { url: null, transport: null };
  for (let i = 2; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, "");
    if (!(key in out)) usage(`unknown argument ${argv[i]}`);
    out[key] = argv[i + 1];
  }
  if (!out.url) usage("--url is required");
  if (!["polling", "websocket", "upgrade"].includes(out.transport)) usage("bad --transport");
  return out;
}

function usage(message) {
  console.error(`${message}\nusage: node namespace-reconnect.js --url URL --transport polling|websocket|upgrade`);
  process.exit(2);
}

function report(ok, detail) {
  console.log(JSON.stringify({ scenario: "namespace-reconnect", ok, detail }));
  process.exit(ok ? 0 : 1);
}

const args = parseArgs(process.argv);
const transports = {
  polling: ["polling"],
  websocket: ["websocket"],
  upgrade: ["polling", "websocket"],
}[args.transport];
const manager = new Manager(args.url, { transports, reconnection: false });
const root = manager.socket("/");
const custom = manager.socket("/custom");
const seen = [];

setTimeout(() => report(false, `timed out; seen: ${seen.join(", ")}`), 10000).unref();

root.on("disconnect", (reason) => report(false, `/ disconnected (${reason}); seen: ${seen.join(", ")}`));

// Over `upgrade`, reconnect once the WebSocket carries the connection, so that the two packets
// go over it together.
function upgraded() {
  return args.transport !== "upgrade" || manager.engine.transport.name === "websocket";
}

let connects = 0;
custom.on("connect", () => {
  connects += 1;
  seen.push(`/custom connect ${connects}`);
  if (connects === 1) {
    const reconnect = () => {
      custom.disconnect();
      custom.connect();
    };
    if (upgraded()) reconnect();
    else manager.engine.once("upgrade", reconnect);
    return;
  }
  // Both namespaces still answer on the same connection.
  custom
    .timeout(5000)
    .emit("message-with-ack", "on /custom", (err, echoed) => {
      if (err || echoed !== "on /custom") return report(false, `/custom ack: ${err || echoed}`);
      root.timeout(5000).emit("message-with-ack", "on /", (err2, echoed2) => {
        if (err2 || echoed2 !== "on /") return report(false, `/ ack: ${err2 || echoed2}`);
        root.off("disconnect");
        manager.engine.close();
        report(true, `reconnected over ${manager.engine.transport.name}`);
      });
    });
});
custom.on("disconnect", (reason) => seen.push(`/custom disconnect (${reason})`));
