#!/usr/bin/env node
// The "socket-io" test-server profile on the official Node server (socket.io 4.8), used to prove the
// client scenarios correct. sockio's own test servers implement the very same profile; see
// testkit/README.md for the profile, which this file must keep in step with.
//
//   node reference-server.js --port N [--host 127.0.0.1] [--watch-stdin] [--ping-timeout-ms MS]
//                            [--upgrade-timeout-ms MS]
//
// N = 0 picks a free port. --ping-timeout-ms overrides the profile's 200 ms (the testkit's own
// tests relax it on a loaded machine; see REFERENCE_PING_TIMEOUT in testkit/src/lib.rs), and
// --upgrade-timeout-ms engine.io's 10 s upgrade timeout (sockio's `serve --upgrade-timeout-ms`). With --watch-stdin the server exits when its stdin closes (the harness
// holds a pipe, so a crashed test process never leaves a server behind).
//
// Prints `listening <port>` on stdout once it accepts connections.
"use strict";

const http = require("http");
const { Server } = require("socket.io");

function parseArgs(argv) {
  const out = { port: 0, host: "127.0.0.1", watchStdin: false, pingTimeoutMs: 200, upgradeTimeoutMs: 10000 };
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--port") out.port = Number(argv[++i]);
    else if (a === "--host") out.host = argv[++i];
    else if (a === "--watch-stdin") out.watchStdin = true;
    else if (a === "--ping-timeout-ms") out.pingTimeoutMs = Number(argv[++i]);
    else if (a === "--upgrade-timeout-ms") out.upgradeTimeoutMs = Number(argv[++i]);
    else {
      console.error(`unknown argument ${a}`);
      process.exit(2);
    }
  }
  if (!Number.isInteger(out.pingTimeoutMs) || out.pingTimeoutMs <= 0) {
    console.error("--ping-timeout-ms must be a positive integer");
    process.exit(2);
  }
  if (!Number.isInteger(out.upgradeTimeoutMs) || out.upgradeTimeoutMs <= 0) {
    console.error("--upgrade-timeout-ms must be a positive integer");
    process.exit(2);
  }
  if (!Number.isInteger(out.port) || out.port < 0 || out.port > 65535) {
    console.error("--port must be an integer in 0..65535");
    process.exit(2);
  }
  return out;
}

// Engine.IO's own query parameters, which are not part of a 2.x client's "auth" query.
const ENGINE_QUERY_KEYS = new Set(["EIO", "transport", "t", "b64", "sid", "j"]);

// The auth payload as the profile defines it. 3.x/4.x clients (Socket.IO v5) send an auth object
// with the namespace CONNECT. 2.x clients (Socket.IO v4 over Engine.IO 3) have no auth object: their
// query string is the payload, i.e. the handshake query minus Engine.IO's own keys, overlaid by the
// query string carried in the namespace CONNECT (`0/custom?token=abc,`), which socket.io puts in
// `handshake.auth` for those clients.
function authPayload(socket) {
  const hs = socket.handshake;
  if (socket.conn.protocol === 3) {
    const out = {};
    for (const [k, v] of Object.entries(hs.query || {})) {
      if (!ENGINE_QUERY_KEYS.has(k)) out[k] = v;
    }
    return Object.assign(out, hs.auth || {});
  }
  const auth = hs.auth;
  return auth && typeof auth === "object" ? auth : {};
}

// Why each socket disconnected, by socket id (all namespaces share one map; ids are unique).
const reasons = new Map();

function setup(nsp) {
  nsp.use((socket, next) => {
    const refuse = authPayload(socket).refuse;
    if (refuse === true || refuse === "true") {
      const err = new Error("refused by server");
      err.data = { reason: "refuse was set" };
      return next(err);
    }
    next();
  });

  nsp.on("connection", (socket) => {
    socket.emit("auth", authPayload(socket));

    socket.on("disconnect", (reason) => {
      reasons.set(socket.id, reason);
    });

    socket.on("message", (...args) => {
      socket.emit("message-back", ...args);
    });

    socket.on("message-with-ack", (...args) => {
      const ack = args.pop();
      if (typeof ack === "function") ack(...args);
    });

    socket.on("join", (room, ack) => {
      socket.join(room);
      if (typeof ack === "function") ack(true);
    });

    socket.on("leave", (room, ack) => {
      socket.leave(room);
      if (typeof ack === "function") ack(true);
    });

    socket.on("broadcast", (data, ack) => {
      socket.broadcast.emit("broadcast", data);
      if (typeof ack === "function") ack(true);
    });

    socket.on("to-room", (room, data, ack) => {
      nsp.to(room).emit("room-message", data);
      if (typeof ack === "function") ack(true);
    });

    socket.on("call-client", (timeoutMs, ack) => {
      socket.timeout(Number(timeoutMs)).emit("server-call", "question", (err, ...answer) => {
        if (typeof ack !== "function") return;
        if (err) ack({ error: "timeout" });
        else ack({ answer });
      });
    });

    socket.on("server-ack", () => {
      socket.emit("need-ack", "please", (...args) => {
        socket.emit("got-ack", ...args);
      });
    });

    socket.on("disconnect-me", () => {
      socket.disconnect();
    });

    socket.on("disconnect-reason", (sid, ack) => {
      if (typeof ack !== "function") return;
      ack(reasons.has(sid) ? reasons.get(sid) : null);
    });

    socket.on("rooms", (ack) => {
      if (typeof ack !== "function") return;
      ack(Array.from(socket.rooms).sort());
    });
  });
}

const args = parseArgs(process.argv);
const httpServer = http.createServer();
const io = new Server(httpServer, {
  path: "/socket.io/",
  pingInterval: 300,
  pingTimeout: args.pingTimeoutMs,
  upgradeTimeout: args.upgradeTimeoutMs,
  connectTimeout: 5000,
  maxHttpBufferSize: 1000000,
  allowEIO3: true,
  cors: { origin: true, credentials: true },
  serveClient: false,
});

// Works around an engine.io 6.6.13 bug: upgrading clears the ping timeout timer
// (`clearTransport` sets `pingTimeoutTimer` to null), and for Engine.IO 3 clients, which ping,
// the timer is only ever refreshed (`pingTimeoutTimer?.refresh()`), never re-armed. A 2.x client
// that upgrades and then goes silent would never time out; `client-frozen` catches that. Re-arm
// the timer after the upgrade, as the handshake did.
io.engine.on("connection", (conn) => {
  conn.on("upgrade", () => {
    if (conn.protocol === 3 && typeof conn.resetPingTimeout === "function") conn.resetPingTimeout();
  });
});

// Only `/` and `/custom` exist: any other namespace gets "Invalid namespace".
setup(io.of("/"));
setup(io.of("/custom"));

httpServer.on("error", (err) => {
  console.error(`reference server: ${err.message}`);
  process.exit(1);
});
httpServer.listen(args.port, args.host, () => {
  process.stdout.write(`listening ${httpServer.address().port}\n`);
});

for (const sig of ["SIGTERM", "SIGINT"]) {
  process.on(sig, () => process.exit(0));
}
// With --watch-stdin, exit with the harness: a closed stdin means the parent is gone.
if (args.watchStdin) {
  process.stdin.on("end", () => process.exit(0));
  process.stdin.on("error", () => process.exit(0));
  process.stdin.resume();
}
