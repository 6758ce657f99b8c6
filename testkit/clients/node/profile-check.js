#!/usr/bin/env node
// Checks a running "engine-io" or "bench" test-server profile (`sockio-conformance serve`) with
// the official Node clients: engine.io-client 6.6 (what socket.io-client 4.8 runs on) for the raw
// Engine.IO profile, socket.io-client 4.8 for the bench profile.
//
//   node profile-check.js --profile engine-io|bench --url http://127.0.0.1:PORT \
//        --transport polling|websocket|upgrade [--ping-timeout MS]
//
// `--ping-timeout` is the one the server was started with (`serve --ping-timeout-ms`; default the
// engine-io profile's 200 ms), which the handshake check expects.
//
// Prints one JSON line per check, {"scenario":"...","ok":true|false,"detail":"..."}, and exits 0
// iff every check passed.
"use strict";

const util = require("util");

function parseArgs(argv) {
  const out = { profile: null, url: null, transport: null, "ping-timeout": "200" };
  for (let i = 2; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, "");
    if (!(key in out)) usage(`unknown argument ${argv[i]}`);
    out[key] = argv[i + 1];
  }
  if (!["engine-io", "bench"].includes(out.profile)) usage("--profile must be engine-io or bench");
  if (!out.url) usage("--url is required");
  if (!["polling", "websocket", "upgrade"].includes(out.transport)) usage("bad --transport");
  if (!/^[0-9]+$/.test(out["ping-timeout"])) usage("--ping-timeout must be milliseconds");
  out.pingTimeout = Number(out["ping-timeout"]);
  return out;
}

function usage(msg) {
  process.stderr.write(`${msg}\n`);
  process.exit(2);
}

const ARGS = parseArgs(process.argv);
const TIMEOUT_MS = 10000;

function transports() {
  if (ARGS.transport === "polling") return ["polling"];
  if (ARGS.transport === "websocket") return ["websocket"];
  return ["polling", "websocket"];
}

function within(promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), TIMEOUT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function show(v) {
  return util.inspect(v, { depth: 4, breakLength: Infinity, maxStringLength: 60 });
}

// ---------------------------------------------------------------------------------------------
// engine-io: every message echoed to its sender; heartbeat values; CORS for any origin.

async function engineChecks() {
  const { Socket } = require("engine.io-client");
  const results = [];
  const socket = new Socket(ARGS.url, { transports: transports(), upgrade: ARGS.transport === "upgrade" });
  const received = [];
  const waiters = [];
  socket.on("message", (data) => {
    if (waiters.length > 0) waiters.shift()(data);
    else received.push(data);
  });
  const next = () =>
    within(
      received.length > 0 ? Promise.resolve(received.shift()) : new Promise((r) => waiters.push(r)),
      "an echo",
    );
  await within(new Promise((resolve, reject) => {
    socket.on("open", resolve);
    socket.on("error", reject);
  }), "open");

  const check = async (name, fn) => {
    try {
      const detail = await fn();
      results.push({ scenario: name, ok: true, detail: detail || "" });
    } catch (e) {
      results.push({ scenario: name, ok: false, detail: String(e && e.message ? e.message : e) });
    }
  };

  await check("engine-handshake", async () => {
    const interval = socket._pingInterval;
    const timeout = socket._pingTimeout;
    const max = socket._maxPayload;
    if (interval !== 300 || timeout !== ARGS.pingTimeout || max !== 1000000) {
      throw new Error(
        `pingInterval ${interval}, pingTimeout ${timeout}, maxPayload ${max}; expected 300, ${ARGS.pingTimeout} and 1000000`,
      );
    }
    return `pingInterval=${interval} pingTimeout=${timeout} maxPayload=${max}`;
  });
  await check("engine-echo-text", async () => {
    const text = "héllo ✓ 😀 \u2028";
    socket.send(text);
    const back = await next();
    if (back !== text) throw new Error(`echo ${show(back)}`);
  });
  await check("engine-echo-binary", async () => {
    const bytes = Buffer.from([0, 1, 2, 253, 254, 255]);
    socket.send(bytes);
    const back = await next();
    const got = Buffer.isBuffer(back) ? back : Buffer.from(back);
    if (!got.equals(bytes)) throw new Error(`echo ${show(back)}`);
  });
  await check("engine-echo-in-order", async () => {
    for (let i = 0; i < 1000; i++) socket.send(String(i));
    for (let i = 0; i < 1000; i++) {
      const back = await next();
      if (back !== String(i)) throw new Error(`echo #${i} was ${show(back)}`);
    }
  });
  await check("engine-transport", async () => {
    if (ARGS.transport === "upgrade" && socket.transport.name !== "websocket") {
      await within(new Promise((r) => socket.once("upgrade", r)), "the upgrade");
    }
    const expected = ARGS.transport === "upgrade" ? "websocket" : ARGS.transport;
    if (socket.transport.name !== expected) throw new Error(`transport ${socket.transport.name}`);
    return socket.transport.name;
  });
  await check("engine-cors", async () => {
    const origin = "http://elsewhere.example";
    const res = await fetch(`${ARGS.url}/engine.io/?EIO=4&transport=polling`, { headers: { Origin: origin } });
    const allowed = res.headers.get("access-control-allow-origin");
    if (res.status !== 200 || allowed !== origin) {
      throw new Error(`status ${res.status}, access-control-allow-origin ${show(allowed)}`);
    }
  });
  socket.close();
  return results;
}

// ---------------------------------------------------------------------------------------------
// bench: echo (ack), broadcast → bcast to everyone, join, to-room → bcast to the room.

async function benchChecks() {
  const { io } = require("socket.io-client");
  const results = [];
  const opts = { transports: transports(), upgrade: ARGS.transport === "upgrade", forceNew: true, reconnection: false };
  // Listen from creation on: the second socket may connect while the first is awaited.
  const connecting = (s) => new Promise((resolve, reject) => {
    s.on("connect", resolve);
    s.on("connect_error", reject);
  });
  const a = io(ARGS.url, opts);
  const aConnected = connecting(a);
  const b = io(ARGS.url, opts);
  const bConnected = connecting(b);
  await within(Promise.all([aConnected, bConnected]), "connect");
  const nextBcast = (s) => within(new Promise((r) => s.once("bcast", (...args) => r(args))), "bcast");
  const check = async (name, fn) => {
    try {
      const detail = await fn();
      results.push({ scenario: name, ok: true, detail: detail || "" });
    } catch (e) {
      results.push({ scenario: name, ok: false, detail: String(e && e.message ? e.message : e) });
    }
  };
  await check("bench-echo", async () => {
    const args = ["x", { n: [1, 2] }, Buffer.from([7, 8])];
    const back = await within(new Promise((r) => a.emit("echo", ...args, (...ack) => r(ack))), "the echo ack");
    const norm = back.map((v) => (v instanceof ArrayBuffer || ArrayBuffer.isView(v) ? Buffer.from(v) : v));
    if (!util.isDeepStrictEqual(norm, args)) throw new Error(`ack ${show(back)}`);
  });
  await check("bench-broadcast", async () => {
    const gotA = nextBcast(a);
    const gotB = nextBcast(b);
    a.emit("broadcast", { hello: "all" });
    const [ra, rb] = await Promise.all([gotA, gotB]);
    if (!util.isDeepStrictEqual(ra, [{ hello: "all" }]) || !util.isDeepStrictEqual(rb, [{ hello: "all" }])) {
      throw new Error(`bcast ${show(ra)} / ${show(rb)}`);
    }
  });
  await check("bench-to-room", async () => {
    const joined = await within(new Promise((r) => b.emit("join", "r1", (...ack) => r(ack))), "the join ack");
    if (!util.isDeepStrictEqual(joined, [true])) throw new Error(`join ack ${show(joined)}`);
    let leaked = null;
    a.once("bcast", (...args) => (leaked = args));
    const gotB = nextBcast(b);
    a.emit("to-room", "r1", "for r1");
    const rb = await gotB;
    if (!util.isDeepStrictEqual(rb, ["for r1"])) throw new Error(`bcast ${show(rb)}`);
    // A round trip through the server after the room emit: a leak to A would have arrived.
    await within(new Promise((r) => a.emit("echo", 1, r)), "an echo after to-room");
    if (leaked) throw new Error(`A (not in r1) got ${show(leaked)}`);
  });
  a.close();
  b.close();
  return results;
}

(ARGS.profile === "engine-io" ? engineChecks() : benchChecks())
  .then((results) => {
    for (const r of results) process.stdout.write(JSON.stringify(r) + "\n");
    process.exit(results.every((r) => r.ok) ? 0 : 1);
  })
  .catch((e) => {
    process.stdout.write(JSON.stringify({ scenario: "setup", ok: false, detail: String(e && e.stack ? e.stack : e) }) + "\n");
    process.exit(1);
  });
