#!/usr/bin/env node
// Drives an official Node Socket.IO client through the testkit scenarios against a server that
// implements the "socket-io" test-server profile (see testkit/README.md).
//
//   node scenarios.js --client v4|v3|v2 --url http://127.0.0.1:PORT \
//        --transport polling|websocket|upgrade --scenario NAME[,NAME...] [--timeout-ms 10000]
//
// Prints one JSON line per scenario, {"scenario":"...","ok":true|false,"detail":"..."}, and exits 0
// iff every scenario passed. A scenario may also print `@@restart` when it wants the harness to
// restart the server on the same port (reconnect-after-restart).
"use strict";

const util = require("util");

// ---------------------------------------------------------------------------------------------
// Command line

function parseArgs(argv) {
  const out = { client: null, url: null, transport: null, scenarios: [], timeoutMs: 10000, child: false };
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i];
    const v = argv[i + 1];
    switch (a) {
      case "--client":
        out.client = v;
        i++;
        break;
      case "--url":
        out.url = v;
        i++;
        break;
      case "--transport":
        out.transport = v;
        i++;
        break;
      case "--scenario":
      case "--scenarios":
        out.scenarios.push(...String(v).split(",").filter((s) => s.length > 0));
        i++;
        break;
      case "--timeout-ms":
        out.timeoutMs = Number(v);
        i++;
        break;
      case "--child":
        // Internal: the process `client-killed` / `client-frozen` start and then kill or freeze.
        out.child = true;
        break;
      default:
        usage(`unknown argument ${a}`);
    }
  }
  if (!["v4", "v3", "v2"].includes(out.client)) usage("--client must be v4, v3 or v2");
  if (!out.url) usage("--url is required");
  if (!["polling", "websocket", "upgrade"].includes(out.transport)) {
    usage("--transport must be polling, websocket or upgrade");
  }
  if (out.scenarios.length === 0 && !out.child) usage("--scenario is required");
  if (!(out.timeoutMs > 0)) usage("--timeout-ms must be positive");
  return out;
}

function usage(msg) {
  process.stderr.write(
    `${msg}\nusage: node scenarios.js --client v4|v3|v2 --url URL ` +
      `--transport polling|websocket|upgrade --scenario NAME[,NAME...] [--timeout-ms N]\n`,
  );
  process.exit(2);
}

const ARGS = parseArgs(process.argv);

// ---------------------------------------------------------------------------------------------
// Client flavours: the only place that knows how each official client differs.

const FLAVOURS = {
  v4: { module: "socket.io-client", eio: 4 },
  v3: { module: "socket.io-client-v3", eio: 4 },
  v2: { module: "socket.io-client-v2", eio: 3 },
};
const FLAVOUR = FLAVOURS[ARGS.client];
const LIB = require(FLAVOUR.module);
const IS_V2 = ARGS.client === "v2";

function transportOptions() {
  switch (ARGS.transport) {
    case "polling":
      return { transports: ["polling"] };
    case "websocket":
      return { transports: ["websocket"] };
    default:
      return {}; // polling first, then the upgrade to WebSocket
  }
}

// Events recorded on every socket from its creation, so none is missed by a late listener.
const RECORDED = [
  "connect",
  "connect_error",
  "error",
  "disconnect",
  "auth",
  "message-back",
  "broadcast",
  "room-message",
  "got-ack",
];

// ---------------------------------------------------------------------------------------------
// Helpers

class ScenarioError extends Error {}

function fail(msg) {
  throw new ScenarioError(msg);
}

function errorText(e) {
  if (e instanceof Error) {
    const extra = e.description !== undefined && typeof e.description !== "object" ? ` (${e.description})` : "";
    return `${e.name}: ${e.message}${extra}`;
  }
  return show(e);
}

function show(v) {
  return util.inspect(v, { depth: 6, breakLength: Infinity, maxStringLength: 80, maxArrayLength: 20 });
}

function isBinary(v) {
  return Buffer.isBuffer(v) || v instanceof ArrayBuffer || ArrayBuffer.isView(v);
}

function toBuffer(v) {
  if (Buffer.isBuffer(v)) return v;
  if (v instanceof ArrayBuffer) return Buffer.from(v);
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}

// Normalises received binary (Buffer, ArrayBuffer or a typed array) to Buffer, recursively.
function normalize(v) {
  if (isBinary(v)) return toBuffer(v);
  if (Array.isArray(v)) return v.map(normalize);
  if (v && typeof v === "object") {
    const out = {};
    for (const [k, x] of Object.entries(v)) out[k] = normalize(x);
    return out;
  }
  return v;
}

function assertEqual(actual, expected, what) {
  const a = normalize(actual);
  if (!util.isDeepStrictEqual(a, expected)) {
    fail(`${what}: expected ${show(expected)}, got ${show(a)}`);
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Queues the arguments of events as they arrive, so a scenario can await them in order.
class Recorder {
  constructor(ctx, emitter, events, label) {
    this.ctx = ctx;
    this.label = label;
    this.queues = new Map();
    this.waiters = new Map();
    for (const ev of events) {
      this.queues.set(ev, []);
      this.waiters.set(ev, []);
      emitter.on(ev, (...args) => {
        const w = this.waiters.get(ev);
        if (w.length > 0) w.shift()(args);
        else this.queues.get(ev).push(args);
      });
    }
  }

  // The next occurrence of `ev` (its arguments), waiting until the scenario's deadline.
  next(ev) {
    const q = this.queues.get(ev);
    if (q.length > 0) return Promise.resolve(q.shift());
    return new Promise((resolve) => this.waiters.get(ev).push(resolve));
  }

  // Like next(), but gives up after `ms` and resolves with null.
  async within(ev, ms) {
    const q = this.queues.get(ev);
    if (q.length > 0) return q.shift();
    return new Promise((resolve) => {
      const w = this.waiters.get(ev);
      const entry = (args) => {
        clearTimeout(timer);
        resolve(args);
      };
      const timer = setTimeout(() => {
        const i = w.indexOf(entry);
        if (i >= 0) w.splice(i, 1);
        resolve(null);
      }, ms);
      w.push(entry);
    });
  }

  pending(ev) {
    return this.queues.get(ev).length;
  }
}

// One scenario's resources and deadline.
class Ctx {
  constructor(name, timeoutMs) {
    this.name = name;
    this.deadline = Date.now() + timeoutMs;
    this.step = "start";
    this.managers = [];
    this.sockets = [];
    this.notes = [];
    this.disconnects = []; // every disconnect seen, for the failure report
    this.children = []; // child processes, killed at cleanup
  }

  remaining() {
    return Math.max(0, this.deadline - Date.now());
  }

  note(s) {
    this.notes.push(s);
  }

  // A new Manager (one Engine.IO connection). `auth` is used for 2.x clients' query string.
  manager(opts = {}) {
    const mopts = Object.assign(
      {
        reconnection: false,
        reconnectionDelay: 100,
        reconnectionDelayMax: 500,
        randomizationFactor: 0,
        timeout: 5000,
        autoConnect: true,
      },
      transportOptions(),
      opts.reconnection ? { reconnection: true } : {},
    );
    if (IS_V2 && opts.auth) mopts.query = stringify(opts.auth);
    const m = new LIB.Manager(ARGS.url, mopts);
    this.managers.push(m);
    return m;
  }

  // A socket for namespace `nsp` on manager `m`, with its recorder as `sock.rec`.
  socket(m, nsp, auth) {
    let s;
    if (IS_V2) s = m.socket(nsp, auth ? { query: stringify(auth) } : {});
    else s = m.socket(nsp, auth ? { auth } : {});
    s.rec = new Recorder(this, s, RECORDED, nsp);
    const label = `socket ${this.sockets.length + 1} (${nsp})`;
    s.on("disconnect", (reason) => this.disconnects.push(`${label}: ${reason}`));
    this.sockets.push(s);
    return s;
  }

  // manager + socket, in one call
  client(nsp = "/", opts = {}) {
    const m = this.manager(opts);
    return this.socket(m, nsp, opts.auth);
  }

  async cleanup() {
    for (const child of this.children) {
      try {
        child.kill("SIGKILL");
      } catch (_) {
        /* already gone */
      }
    }
    for (const m of this.managers) {
      try {
        m.reconnection(false);
      } catch (_) {
        /* ignore */
      }
    }
    for (const s of this.sockets) {
      try {
        s.disconnect();
      } catch (_) {
        /* ignore */
      }
    }
    for (const m of this.managers) {
      try {
        if (typeof m.close === "function") m.close();
        else if (typeof m._close === "function") m._close();
        if (m.engine) m.engine.close();
      } catch (_) {
        /* ignore */
      }
    }
  }
}

// 2.x clients carry "auth" as a query string: {token:"abc"} → "token=abc".
function stringify(auth) {
  return Object.entries(auth)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`)
    .join("&");
}

async function connected(ctx, s, what = "connect") {
  ctx.step = `waiting for ${what} on ${s.nsp}`;
  if (s.connected) return;
  const race = await Promise.race([
    s.rec.next("connect").then(() => "connect"),
    s.rec.next("connect_error").then((a) => `connect_error ${a.map(errorText).join(", ")}`),
    s.rec.next("error").then((a) => `error ${a.map(errorText).join(", ")}`),
  ]);
  if (race !== "connect" && !s.connected) fail(`${what} failed: ${race}`);
}

// 3.x/4.x clients close the engine as soon as their last socket is refused, which in upgrade mode
// may be before the upgrade. A companion socket on `/custom` (accepted) keeps the engine open and
// also shows that a refusal on one namespace leaves the others alone. 2.x clients need none: their
// `/` socket is joined by the server itself, and their query string would reach every namespace.
function keepAlive(ctx, m) {
  return IS_V2 ? null : ctx.socket(m, "/custom");
}

async function companionOk(ctx, companion) {
  if (!companion) return;
  await connected(ctx, companion, "connect of the companion /custom");
  await nextAuth(ctx, companion, {}, "auth on the companion /custom");
}

async function nextAuth(ctx, s, expected, what = "auth") {
  ctx.step = `waiting for ${what} on ${s.nsp}`;
  const args = await s.rec.next("auth");
  assertEqual(args, [expected], `${what} event`);
}

// Emits with an acknowledgement callback; resolves with the ack's arguments.
function emitAck(s, ev, ...args) {
  return new Promise((resolve) => {
    s.emit(ev, ...args, (...ack) => resolve(ack));
  });
}

// In upgrade mode, waits until the manager's engine runs on WebSocket (fails at the deadline).
async function checkUpgrade(ctx, m) {
  if (ARGS.transport !== "upgrade") return;
  ctx.step = "waiting for the upgrade to websocket";
  const engine = m.engine;
  if (!engine) fail("no engine to check the upgrade on");
  if (!(engine.transport && engine.transport.name === "websocket")) {
    await new Promise((resolve) => engine.once("upgrade", resolve));
  }
  if (!(engine.transport && engine.transport.name === "websocket")) {
    fail(`engine did not upgrade (transport ${engine.transport && engine.transport.name})`);
  }
  if (!ctx.notes.includes("upgraded")) ctx.note("upgraded");
}

function transportName(m) {
  return m.engine && m.engine.transport ? m.engine.transport.name : "none";
}

async function expectTransport(ctx, m) {
  if (ARGS.transport === "upgrade") return checkUpgrade(ctx, m);
  const name = transportName(m);
  if (name !== ARGS.transport) fail(`engine transport is ${name}, expected ${ARGS.transport}`);
}

async function disconnectReason(ctx, asker, sid) {
  // The server records the reason when it processes the disconnection, which may come after the
  // asker's request: poll until it is known (bounded by the scenario deadline).
  ctx.step = `asking disconnect-reason for ${sid}`;
  for (;;) {
    const [reason] = await emitAck(asker, "disconnect-reason", sid);
    if (reason !== null && reason !== undefined) return reason;
    if (ctx.remaining() < 100) fail(`disconnect-reason for ${sid} stayed null`);
    await sleep(50);
  }
}

function binaryBlob() {
  const bytes = Buffer.alloc(256);
  for (let i = 0; i < 256; i++) bytes[i] = i;
  return bytes;
}

// The largest string whose Engine.IO packet (and polling body) stays under the limit.
const MAX_HTTP_BUFFER = 1000000;
function underLimitSize() {
  // Socket.IO packet: `2<ackid>["message-with-ack","<s>"]`, plus the Engine.IO type char `4`.
  const framing = 1 + 1 + 6 + Buffer.byteLength(JSON.stringify(["message-with-ack", ""]));
  let transport = 0;
  if (ARGS.transport !== "websocket") {
    // Polling body: EIO3 (2.x) prefixes each packet with `<len>:`; EIO4 joins packets with
    // `\x1e`. Either may batch a heartbeat packet into the same POST.
    transport = FLAVOUR.eio === 3 ? String(MAX_HTTP_BUFFER).length + 1 + 8 : 1 + 8;
  }
  const safety = 32;
  return MAX_HTTP_BUFFER - framing - transport - safety;
}

// `payload-over-limit` sends a string whose Engine.IO packet, `4` + `2["message","<s>"]`, makes
// what the server measures OVER_LIMIT_BY bytes larger than the limit: over WebSocket (also after
// the upgrade) the message, which is that packet; over polling the POST body, which for Engine.IO
// 4 is that packet too (packets are joined with `\x1e`; a lone one gets nothing) and for
// Engine.IO 3 (2.x) is `<packet length>:<packet>`. A heartbeat batched into the same POST only
// adds to it.
const OVER_LIMIT_BY = 1;
function overLimitSize() {
  const packet = 1 + Buffer.byteLength(`2${JSON.stringify(["message", ""])}`); // + the string
  const target = MAX_HTTP_BUFFER + OVER_LIMIT_BY;
  let envelope = target;
  if (ARGS.transport === "polling" && FLAVOUR.eio === 3) {
    // body = digits(P) + 1 + P = target: try each digit count.
    for (let d = 1; d <= String(target).length; d++) {
      const p = target - d - 1;
      if (String(p).length === d) envelope = p;
    }
  }
  return envelope - packet;
}

// What the server measures for a `payload-over-limit` string of `size` bytes (see overLimitSize).
function overLimitMeasure(size) {
  const packet = 1 + Buffer.byteLength(`2${JSON.stringify(["message", ""])}`) + size;
  if (ARGS.transport === "polling" && FLAVOUR.eio === 3) return String(packet).length + 1 + packet;
  return packet;
}

// How many messages `messages-in-order` sends, and how many may be unanswered at once.
const IN_ORDER_COUNT = 10000;
const IN_ORDER_WINDOW = 100;

// Scenarios that get more than --timeout-ms, by factor (must agree with LONG_SCENARIOS in
// testkit/src/lib.rs).
const LONG_SCENARIOS = { "messages-in-order": 6 };

// What `client-killed` / `client-frozen` allow on top of ping interval + ping timeout before the
// server must have noticed: the observer's polling (50 ms), its round trip, and scheduling on a
// loaded machine.
const HEARTBEAT_SLACK_MS = 1000;

// Starts this script as a child client (same flavour, URL and transport) that connects to `/`,
// reports its socket id and the heartbeat values of its handshake, and then idles until killed.
function spawnChild(ctx) {
  const { spawn } = require("child_process");
  const proc = spawn(
    process.execPath,
    [__filename, "--child", "--client", ARGS.client, "--url", ARGS.url, "--transport", ARGS.transport],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  ctx.children.push(proc);
  ctx.step = "waiting for the child client to connect";
  return new Promise((resolve, reject) => {
    let out = "";
    let err = "";
    proc.stderr.on("data", (d) => (err += d));
    proc.stdout.on("data", (d) => {
      out += d;
      const line = out.split("\n").find((l) => l.startsWith("child "));
      if (line) {
        const [, sid, pingInterval, pingTimeout] = line.trim().split(" ");
        resolve({ proc, sid, pingInterval: Number(pingInterval), pingTimeout: Number(pingTimeout) });
      }
    });
    proc.on("exit", (code) => reject(new ScenarioError(`child client exited (${code}) before connecting: ${err.trim()}`)));
  });
}

// The body of a child client (see spawnChild).
async function childMain() {
  const ctx = new Ctx("child", ARGS.timeoutMs);
  const s = ctx.client("/");
  await connected(ctx, s);
  await nextAuth(ctx, s, {});
  await expectTransport(ctx, s.io);
  const e = s.io.engine;
  const interval = e.pingInterval !== undefined && e.pingInterval !== null ? e.pingInterval : e._pingInterval;
  const timeout = e.pingTimeout !== undefined && e.pingTimeout !== null ? e.pingTimeout : e._pingTimeout;
  process.stdout.write(`child ${s.id} ${interval} ${timeout}\n`);
  setInterval(() => {}, 1 << 30); // idle until killed
}

// A child client vanishes (`signal`): SIGKILL ends the process (its kernel closes the TCP
// connections), SIGSTOP freezes it (connections stay open, nothing answers). The server must
// notice within ping interval + ping timeout (+ slack), as the observer sees through
// `disconnect-reason`. Returns [reason, elapsed ms].
async function vanishingClient(ctx, signal) {
  const observer = ctx.client("/");
  await connected(ctx, observer, "connect of the observer");
  const child = await spawnChild(ctx);
  if (!(child.pingInterval > 0) || !(child.pingTimeout > 0)) {
    fail(`child reported no heartbeat values (${child.pingInterval}, ${child.pingTimeout})`);
  }
  const t0 = Date.now();
  child.proc.kill(signal);
  const reason = await disconnectReason(ctx, observer, child.sid);
  const elapsed = Date.now() - t0;
  const bound = child.pingInterval + child.pingTimeout + HEARTBEAT_SLACK_MS;
  if (elapsed > bound) {
    fail(`the server noticed after ${elapsed} ms (${reason}), over ${bound} ms = ping interval ` +
      `${child.pingInterval} + ping timeout ${child.pingTimeout} + slack ${HEARTBEAT_SLACK_MS}`);
  }
  ctx.note(`reason=${reason} after ${elapsed} ms (bound ${bound} ms)`);
  return [reason, elapsed];
}

// ---------------------------------------------------------------------------------------------
// Scenarios

const SCENARIOS = {
  async "connect-auth"(ctx) {
    const s = ctx.client("/", { auth: { token: "abc" } });
    await connected(ctx, s);
    await nextAuth(ctx, s, { token: "abc" });
    await expectTransport(ctx, s.io);
    ctx.note(`sid=${s.id}`);
  },

  async "connect-no-auth"(ctx) {
    const s = ctx.client("/");
    await connected(ctx, s);
    await nextAuth(ctx, s, {});
    await expectTransport(ctx, s.io);
  },

  async "connect-refused"(ctx) {
    const m = ctx.manager({ auth: { refuse: "true" } });
    const s = ctx.socket(m, "/", { refuse: "true" });
    const companion = keepAlive(ctx, m);
    ctx.step = "waiting for the refusal";
    if (IS_V2) {
      // 2.x: CONNECT_ERROR arrives as an `error` event carrying err.data.
      const outcome = await Promise.race([
        s.rec.next("error").then((a) => ["error", a]),
        s.rec.next("connect").then(() => ["connect", []]),
      ]);
      if (outcome[0] !== "error") fail("connected although refuse was set");
      assertEqual(outcome[1], [{ reason: "refuse was set" }], "error event");
    } else {
      const outcome = await Promise.race([
        s.rec.next("connect_error").then((a) => ["connect_error", a]),
        s.rec.next("connect").then(() => ["connect", []]),
      ]);
      if (outcome[0] !== "connect_error") fail("connected although refuse was set");
      const err = outcome[1][0];
      if (!err || err.message !== "refused by server") {
        fail(`connect_error: expected "refused by server", got ${errorText(err)}`);
      }
      assertEqual(err.data, { reason: "refuse was set" }, "connect_error data");
    }
    if (s.connected) fail("socket is connected after the refusal");
    await companionOk(ctx, companion);
    await expectTransport(ctx, m);
  },

  async "custom-namespace"(ctx) {
    const s = ctx.client("/custom", { auth: { token: "custom" } });
    await connected(ctx, s);
    await nextAuth(ctx, s, { token: "custom" });
    await expectTransport(ctx, s.io);
    ctx.note(`sid=${s.id}`);
  },

  async "invalid-namespace"(ctx) {
    const m = ctx.manager();
    const s = ctx.socket(m, "/nope");
    const companion = keepAlive(ctx, m);
    ctx.step = "waiting for the namespace error";
    const ev = IS_V2 ? "error" : "connect_error";
    const outcome = await Promise.race([
      s.rec.next(ev).then((a) => [ev, a]),
      s.rec.next("connect").then(() => ["connect", []]),
    ]);
    if (outcome[0] !== ev) fail("connected to /nope");
    const err = outcome[1][0];
    const message = err && typeof err === "object" ? err.message : err;
    if (message !== "Invalid namespace") {
      fail(`${ev}: expected "Invalid namespace", got ${errorText(err)}`);
    }
    await companionOk(ctx, companion);
    await expectTransport(ctx, m);
  },

  async "multi-namespace"(ctx) {
    const m = ctx.manager();
    // 2.x clients never send a CONNECT for `/` (the server joins it by itself), so no auth there.
    const rootAuth = IS_V2 ? undefined : { ns: "root" };
    const root = ctx.socket(m, "/", rootAuth);
    const custom = ctx.socket(m, "/custom", { ns: "custom" });
    await connected(ctx, root, "connect of /");
    await connected(ctx, custom, "connect of /custom");
    await nextAuth(ctx, root, rootAuth || {}, "auth on /");
    await nextAuth(ctx, custom, { ns: "custom" }, "auth on /custom");
    if (root.io !== custom.io) fail("the two namespaces use different managers");
    if (!root.io.engine || root.io.engine !== custom.io.engine) fail("engine not shared");
    if (ctx.managers.length !== 1) fail("more than one manager");
    if (!root.id || !custom.id || root.id === custom.id) {
      fail(`unexpected socket ids ${show(root.id)} / ${show(custom.id)}`);
    }
    // Both namespaces answer over the shared connection.
    const [a1] = await emitAck(root, "message-with-ack", "on root");
    const [a2] = await emitAck(custom, "message-with-ack", "on custom");
    assertEqual([a1, a2], ["on root", "on custom"], "acks over the shared engine");
    await expectTransport(ctx, m);
    ctx.note(`engine=${m.engine.id}`);
  },

  async "events-args"(ctx) {
    const s = ctx.client("/");
    await connected(ctx, s);
    const args = [
      "héllo wörld ✓ 😀 日本語 \u2028 \"quoted\" \\ back",
      { nested: { arr: [1, 2.5, -3, true, false, null, "x", [[]]], obj: { "ключ": "значение" } }, empty: {} },
      null,
    ];
    s.emit("message", ...args);
    ctx.step = "waiting for message-back";
    const back = await s.rec.next("message-back");
    assertEqual(back, args, "message-back");
    await expectTransport(ctx, s.io);
  },

  async "ack-client-to-server"(ctx) {
    const s = ctx.client("/");
    await connected(ctx, s);
    const args = ["one", 2, { three: [3, "three", null] }];
    ctx.step = "waiting for the ack";
    const ack = await emitAck(s, "message-with-ack", ...args);
    assertEqual(ack, args, "ack");
    await expectTransport(ctx, s.io);
  },

  async "ack-server-to-client"(ctx) {
    const s = ctx.client("/");
    let asked = null;
    s.on("need-ack", (...args) => {
      const cb = args.pop();
      asked = args;
      if (typeof cb === "function") cb("yes", 42);
    });
    await connected(ctx, s);
    s.emit("server-ack");
    ctx.step = "waiting for got-ack";
    const got = await s.rec.next("got-ack");
    assertEqual(asked, ["please"], "need-ack arguments");
    assertEqual(got, ["yes", 42], "got-ack");
    await expectTransport(ctx, s.io);
  },

  async "binary-both-ways"(ctx) {
    const s = ctx.client("/");
    await connected(ctx, s);
    const args = [
      binaryBlob(),
      { name: "blob", inner: { data: Buffer.from([1, 2, 3]), list: [Buffer.from([255, 0]), "text"] } },
    ];
    s.emit("message", ...args);
    ctx.step = "waiting for message-back";
    const back = await s.rec.next("message-back");
    if (!isBinary(back[0])) fail(`first argument came back as ${show(back[0])}, not binary`);
    assertEqual(back, args, "message-back");
    await expectTransport(ctx, s.io);
  },

  async "binary-ack"(ctx) {
    const s = ctx.client("/");
    await connected(ctx, s);
    const args = ["label", binaryBlob(), { nested: [Buffer.from("sockio"), { deeper: Buffer.from([0]) }] }];
    ctx.step = "waiting for the ack";
    const ack = await emitAck(s, "message-with-ack", ...args);
    if (!isBinary(ack[1])) fail(`binary came back as ${show(ack[1])}`);
    assertEqual(ack, args, "ack");
    await expectTransport(ctx, s.io);
  },

  async "rooms-broadcast"(ctx) {
    const a = ctx.client("/");
    const b = ctx.client("/");
    const c = ctx.client("/");
    await connected(ctx, a, "connect of A");
    await connected(ctx, b, "connect of B");
    await connected(ctx, c, "connect of C");
    ctx.step = "joining r1";
    assertEqual(await emitAck(a, "join", "r1"), [true], "join ack (A)");
    assertEqual(await emitAck(b, "join", "r1"), [true], "join ack (B)");
    assertEqual(await emitAck(a, "rooms"), [[a.id, "r1"].sort()], "rooms of A");
    assertEqual(await emitAck(c, "rooms"), [[c.id]], "rooms of C");

    ctx.step = "to-room r1";
    assertEqual(await emitAck(a, "to-room", "r1", { hello: "room" }), [true], "to-room ack");
    assertEqual(await a.rec.next("room-message"), [{ hello: "room" }], "room-message (A)");
    assertEqual(await b.rec.next("room-message"), [{ hello: "room" }], "room-message (B)");
    ctx.step = "checking that C gets no room-message";
    const leak = await c.rec.within("room-message", 500);
    if (leak) fail(`C received room-message ${show(leak)}`);

    ctx.step = "broadcast";
    assertEqual(await emitAck(a, "broadcast", ["all", 1]), [true], "broadcast ack");
    assertEqual(await b.rec.next("broadcast"), [["all", 1]], "broadcast (B)");
    assertEqual(await c.rec.next("broadcast"), [["all", 1]], "broadcast (C)");
    ctx.step = "checking that A gets no broadcast";
    const echo = await a.rec.within("broadcast", 500);
    if (echo) fail(`A received its own broadcast ${show(echo)}`);

    ctx.step = "leave r1";
    assertEqual(await emitAck(b, "leave", "r1"), [true], "leave ack (B)");
    assertEqual(await emitAck(b, "rooms"), [[b.id]], "rooms of B after leave");
    for (const x of [a, b, c]) await expectTransport(ctx, x.io);
  },

  async "server-call-timeout"(ctx) {
    const s = ctx.client("/");
    let answering = true;
    const questions = [];
    s.on("server-call", (...args) => {
      const cb = args.pop();
      questions.push(args);
      if (answering && typeof cb === "function") cb("answer", 42);
      // when not answering, the callback is simply never called
    });
    await connected(ctx, s);
    ctx.step = "call-client 5000 (answered)";
    assertEqual(await emitAck(s, "call-client", 5000), [{ answer: ["answer", 42] }], "answered call");
    answering = false;
    ctx.step = "call-client 300 (not answered)";
    assertEqual(await emitAck(s, "call-client", 300), [{ error: "timeout" }], "unanswered call");
    assertEqual(questions, [["question"], ["question"]], "server-call arguments");
    await expectTransport(ctx, s.io);
  },

  async "server-disconnect"(ctx) {
    const a = ctx.client("/");
    const b = ctx.client("/");
    await connected(ctx, a, "connect of A");
    await connected(ctx, b, "connect of B");
    await expectTransport(ctx, a.io);
    await expectTransport(ctx, b.io);
    const sid = a.id;
    a.emit("disconnect-me");
    ctx.step = "waiting for A's disconnect";
    const [reason] = await a.rec.next("disconnect");
    if (reason !== "io server disconnect") fail(`A's disconnect reason: ${show(reason)}`);
    const serverReason = await disconnectReason(ctx, b, sid);
    if (serverReason !== "server namespace disconnect") {
      fail(`server-side reason: expected "server namespace disconnect", got ${show(serverReason)}`);
    }
  },

  async "client-disconnect"(ctx) {
    const a = ctx.client("/");
    const b = ctx.client("/");
    await connected(ctx, a, "connect of A");
    await connected(ctx, b, "connect of B");
    await expectTransport(ctx, a.io);
    await expectTransport(ctx, b.io);
    const sid = a.id;
    a.disconnect();
    ctx.step = "waiting for A's disconnect";
    const [reason] = await a.rec.next("disconnect");
    if (reason !== "io client disconnect") fail(`A's disconnect reason: ${show(reason)}`);
    const serverReason = await disconnectReason(ctx, b, sid);
    if (serverReason !== "client namespace disconnect") {
      fail(`server-side reason: expected "client namespace disconnect", got ${show(serverReason)}`);
    }
  },

  async "reconnect-after-restart"(ctx) {
    const s = ctx.client("/", { reconnection: true, auth: { token: "again" } });
    await connected(ctx, s);
    await nextAuth(ctx, s, { token: "again" });
    await expectTransport(ctx, s.io);
    const before = s.id;
    process.stdout.write("@@restart\n");
    ctx.step = "waiting for the disconnect caused by the restart";
    const [reason] = await s.rec.next("disconnect");
    ctx.step = "waiting for the reconnection";
    await s.rec.next("connect");
    await nextAuth(ctx, s, { token: "again" }, "auth after reconnection");
    await expectTransport(ctx, s.io);
    ctx.note(`disconnect reason=${reason}, sid ${before} -> ${s.id}`);
  },

  async "messages-in-order"(ctx) {
    const s = ctx.client("/");
    await connected(ctx, s);
    await nextAuth(ctx, s, {});
    const got = [];
    let sent = 0;
    // Never more than IN_ORDER_WINDOW unanswered: one synchronous burst of 10,000 emits would
    // block this process's event loop (and its pongs) long enough to fail a 200 ms ping timeout.
    const pump = () => {
      while (sent < IN_ORDER_COUNT && sent - got.length < IN_ORDER_WINDOW) s.emit("message", sent++);
    };
    const all = new Promise((resolve) => {
      s.on("message-back", (i) => {
        got.push(i);
        if (got.length % 1000 === 0) ctx.step = `waiting for echoes (${got.length} of ${IN_ORDER_COUNT} so far)`;
        if (got.length === IN_ORDER_COUNT) resolve();
        else if (sent - got.length <= IN_ORDER_WINDOW / 2) pump();
      });
    });
    const t0 = Date.now();
    ctx.step = `waiting for echoes (none of ${IN_ORDER_COUNT} so far)`;
    pump();
    await Promise.race([
      all,
      s.rec.next("disconnect").then(([reason]) => fail(`disconnected (${reason}) after ${got.length} echoes`)),
    ]);
    for (let i = 0; i < IN_ORDER_COUNT; i++) {
      if (got[i] !== i) fail(`echo #${i} was ${show(got[i])}, expected ${i} (order or content broken)`);
    }
    await expectTransport(ctx, s.io);
    ctx.note(`${IN_ORDER_COUNT} in order in ${Date.now() - t0} ms, at most ${IN_ORDER_WINDOW} unanswered`);
  },

  async "client-killed"(ctx) {
    const [reason] = await vanishingClient(ctx, "SIGKILL");
    // The kernel closes a killed process's connections: the server may see that at once
    // ("transport close" / "transport error") or, when nothing of the connection was held open,
    // only through the heartbeat ("ping timeout").
    const accepted = ["transport close", "transport error", "ping timeout"];
    if (!accepted.includes(reason)) fail(`server-side reason: expected one of ${show(accepted)}, got ${show(reason)}`);
  },

  async "client-frozen"(ctx) {
    const [reason] = await vanishingClient(ctx, "SIGSTOP");
    // A frozen process keeps its connections open: only the heartbeat can tell.
    if (reason !== "ping timeout") fail(`server-side reason: expected "ping timeout", got ${show(reason)}`);
  },

  async "payload-under-limit"(ctx) {
    const s = ctx.client("/");
    await connected(ctx, s);
    await expectTransport(ctx, s.io);
    const size = underLimitSize();
    const big = "x".repeat(size);
    ctx.step = `waiting for the ack of ${size} bytes`;
    const ack = await Promise.race([
      emitAck(s, "message-with-ack", big),
      s.rec.next("disconnect").then(([reason]) => fail(`disconnected (${reason}) instead of the ack`)),
    ]);
    if (ack.length !== 1 || ack[0] !== big) {
      fail(`ack did not echo the ${size}-byte string (got ${ack.length} args, length ${ack[0] && ack[0].length})`);
    }
    if (!s.connected) fail("disconnected after the payload");
    ctx.note(`size=${size}`);
  },

  async "payload-over-limit"(ctx) {
    const s = ctx.client("/");
    await connected(ctx, s);
    await expectTransport(ctx, s.io);
    const size = overLimitSize();
    const measured = overLimitMeasure(size);
    if (measured !== MAX_HTTP_BUFFER + OVER_LIMIT_BY) fail(`harness: ${size} bytes make ${measured}`);
    const t0 = Date.now();
    s.emit("message", "y".repeat(size));
    ctx.step = `waiting for the disconnect after the oversized message (${size} bytes)`;
    const got = await s.rec.within("disconnect", 5000);
    if (!got) fail(`still connected 5 s after sending a ${size}-byte string (${measured} bytes on the wire)`);
    const [reason] = got;
    if (reason !== "transport close" && reason !== "transport error") {
      fail(`disconnect reason: expected transport close/error, got ${show(reason)}`);
    }
    ctx.note(`size=${size} (${measured} bytes on the wire), reason=${reason} after ${Date.now() - t0} ms`);
  },
};

// ---------------------------------------------------------------------------------------------
// Runner

async function runOne(name) {
  const fn = SCENARIOS[name];
  if (!fn) return { scenario: name, ok: false, detail: `unknown scenario (client ${ARGS.client})` };
  const timeoutMs = ARGS.timeoutMs * (LONG_SCENARIOS[name] || 1);
  const ctx = new Ctx(name, timeoutMs);
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new ScenarioError(`timed out after ${timeoutMs} ms`)), timeoutMs);
  });
  let result;
  try {
    await Promise.race([fn(ctx), timeout]);
    result = { scenario: name, ok: true, detail: ctx.notes.join("; ") };
  } catch (e) {
    const msg = e instanceof ScenarioError ? e.message : e && e.stack ? e.stack : String(e);
    const seen = ctx.disconnects.length > 0 ? `; disconnects seen: ${ctx.disconnects.join(", ")}` : "";
    result = { scenario: name, ok: false, detail: `${msg} (step: ${ctx.step})${seen}` };
  } finally {
    clearTimeout(timer);
    await ctx.cleanup();
  }
  return result;
}

async function main() {
  let allOk = true;
  for (const name of ARGS.scenarios) {
    const r = await runOne(name);
    if (!r.ok) allOk = false;
    process.stdout.write(JSON.stringify(r) + "\n");
  }
  process.exit(allOk ? 0 : 1);
}

process.on("unhandledRejection", (e) => {
  process.stderr.write(`unhandled rejection: ${e && e.stack ? e.stack : e}\n`);
});

(ARGS.child ? childMain() : main()).catch((e) => {
  process.stderr.write(`fatal: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
