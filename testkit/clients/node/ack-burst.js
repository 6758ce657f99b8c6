"use strict";
// By hand: emits N acknowledged events of SIZE bytes at once over WebSocket (or long-polling,
// with TRANSPORT polling) and prints how many answers came back (and the disconnect reason, if
// any), reading as fast as the client can.
// node testkit/clients/node/ack-burst.js URL EVENT N SIZE [string|binary] [websocket|polling]
// e.g. against `sockio-conformance serve --runtime smol --profile bench --port 3000`:
//   node testkit/clients/node/ack-burst.js http://127.0.0.1:3000 echo 200 500000
const { io } = require("socket.io-client");
const [url, event, n, size, kind, transport] = process.argv.slice(2);
const socket = io(url, { transports: [transport || "websocket"], reconnection: false });
const data = kind === "binary" ? Buffer.alloc(Number(size), 7) : "x".repeat(Number(size));
let answered = 0;
const report = (reason) => {
  console.log(JSON.stringify({ events: Number(n), size: Number(size), answered, reason }));
  process.exit(answered === Number(n) ? 0 : 1);
};
socket.on("disconnect", (reason) => report(reason));
socket.on("connect", () => {
  for (let i = 0; i < Number(n); i++) {
    socket.emit(event, data, () => { if (++answered === Number(n)) report(null); });
  }
});
setTimeout(() => report("timed out after 60 s"), 60000).unref();
