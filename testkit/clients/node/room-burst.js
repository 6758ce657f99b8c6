"use strict";
// By hand: one client joins the room `burst`, another sends N `to-room` events of SIZE bytes to
// it at once (the bench profile's handler emits each to the room); prints how many the receiver
// got, reading as fast as it can, and its disconnect reason if any. The receiver uses TRANSPORT
// (websocket by default, or polling).
// node testkit/clients/node/room-burst.js URL N SIZE [websocket|polling]
// e.g. against `sockio-conformance serve --runtime tokio --profile bench --port 3000`:
//   node testkit/clients/node/room-burst.js http://127.0.0.1:3000 400 500000
const { io } = require("socket.io-client");
const [url, n, size, transport] = process.argv.slice(2);
const total = Number(n);
const receiver = io(url, { transports: [transport || "websocket"], reconnection: false });
let received = 0;
const report = (reason) => {
  console.log(JSON.stringify({ sent: total, size: Number(size), received, reason }));
  process.exit(received === total ? 0 : 1);
};
receiver.on("bcast", () => { if (++received === total) report(null); });
receiver.on("disconnect", (reason) => report(reason));
receiver.on("connect", () => {
  receiver.emit("join", "burst", () => {
    const sender = io(url, { transports: ["websocket"], reconnection: false });
    const data = "x".repeat(Number(size));
    sender.on("connect", () => {
      for (let i = 0; i < total; i++) sender.emit("to-room", "burst", data);
    });
  });
});
setTimeout(() => report("timed out after 120 s"), 120000).unref();
