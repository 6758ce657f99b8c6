// Drives the official browser bundle of socket.io-client 4.x (dist/socket.io.js, the global `io`)
// through the testkit scenarios against a server that implements the "socket-io" test-server
// profile (see testkit/README.md). The page runs in headless Chromium and is served by the testkit's
// page server (testkit/src/browser.rs) from its own origin, so every request to the server under test
// is cross-origin and the browser enforces CORS on it.
//
//   http://127.0.0.1:PAGE_PORT/index.html?url=http://127.0.0.1:PORT&transport=polling|websocket|upgrade
//        &scenarios=NAME[,NAME...][&timeoutMs=10000]
//
// The page has no stdout, so it POSTs to its own origin instead (same-origin requests, in order):
//   /hello   once the script runs (the harness uses it to tell "the page never loaded" apart);
//   /line    what the Node script prints on stdout: one JSON line per scenario,
//            {"scenario":"...","ok":true|false,"detail":"..."}, and `@@restart` when a scenario wants
//            the harness to restart the server on the same port (reconnect-after-restart);
//   /log     what the Node script would print on stderr (uncaught errors);
//   /done    `ok` or `fail` after the last scenario: the browser's "exit status".
//
// `client-killed` and `client-frozen` need a client that vanishes without closing, which a page
// cannot do to itself. The harness hosts a second Chromium for them (the "child browser"), driven
// through more same-origin POSTs:
//   /child/start   (main page) body: the child page's query string. The harness starts a second
//                  Chromium on index.html?child=1&..., waits for its /child/ready and answers with
//                  that body (JSON {sid, pingInterval, pingTimeout}), or 500 with what went wrong;
//   /child/ready   (child page) its socket id and the heartbeat values of its handshake;
//   /child/log     (child page) errors, kept for the main page's 500 answer;
//   /child/signal  (main page) body `KILL` or `STOP`: every process of the child Chromium is
//                  stopped at once (SIGSTOP) and, for KILL, then SIGKILLed, so no close frame or
//                  close request can leave it; answered once the signals are sent;
//   /child/end     (main page) kills whatever is left of the child Chromium and removes its profile.
"use strict";

(function () {
  // -------------------------------------------------------------------------------------------
  // Reporting to the page server

  let outbox = Promise.resolve();

  // Posts are chained so they reach the harness in the order they were made; a failed post is
  // logged on the console and does not stop the chain.
  function post(path, body) {
    outbox = outbox
      .then(() => fetch(path, { method: "POST", body, cache: "no-store" }))
      .then(
        (res) => {
          if (!res.ok) console.error(`POST ${path}: HTTP ${res.status}`);
        },
        (e) => console.error(`POST ${path}: ${e}`),
      );
    return outbox;
  }

  // A child page's errors go to /child/log, so they never mix with the main page's report.
  const LOG_PATH = new URLSearchParams(location.search).get("child") === "1" ? "/child/log" : "/log";

  function logError(text) {
    console.error(text);
    post(LOG_PATH, text);
  }

  window.addEventListener("error", (e) => {
    logError(`uncaught error: ${e.message} at ${e.filename}:${e.lineno}:${e.colno}`);
  });
  window.addEventListener("unhandledrejection", (e) => {
    const r = e.reason;
    logError(`unhandled rejection: ${r && r.stack ? r.stack : r}`);
  });

  // -------------------------------------------------------------------------------------------
  // Parameters (from the page's query string)

  function parseArgs() {
    const q = new URLSearchParams(location.search);
    const out = {
      // A child page (see the header): connects, reports to /child/ready and idles.
      child: q.get("child") === "1",
      url: q.get("url"),
      transport: q.get("transport"),
      scenarios: String(q.get("scenarios") || "")
        .split(",")
        .filter((s) => s.length > 0),
      timeoutMs: Number(q.get("timeoutMs") || 10000),
    };
    const problems = [];
    if (!out.url) problems.push("url is required");
    if (!["polling", "websocket", "upgrade"].includes(out.transport)) {
      problems.push("transport must be polling, websocket or upgrade");
    }
    if (out.scenarios.length === 0 && !out.child) problems.push("scenarios is required");
    if (!(out.timeoutMs > 0)) problems.push("timeoutMs must be positive");
    return { args: out, problems };
  }

  const { args: ARGS, problems: ARG_PROBLEMS } = parseArgs();

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
    "disconnect",
    "auth",
    "message-back",
    "broadcast",
    "room-message",
    "got-ack",
  ];

  // -------------------------------------------------------------------------------------------
  // Helpers

  class ScenarioError extends Error {}

  function fail(msg) {
    throw new ScenarioError(msg);
  }

  function isBinary(v) {
    return v instanceof ArrayBuffer || ArrayBuffer.isView(v);
  }

  function bytesOf(v) {
    if (v instanceof ArrayBuffer) return new Uint8Array(v);
    return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  }

  function typeName(v) {
    if (v === null) return "null";
    if (typeof v !== "object") return typeof v;
    return Object.prototype.toString.call(v).slice(8, -1);
  }

  // A readable, bounded rendering of a value, binary included (JSON.stringify would lose it).
  function show(v, depth = 0) {
    if (depth > 6) return "…";
    if (typeof v === "string") {
      const s = v.length > 80 ? `${v.slice(0, 80)}… (${v.length} chars)` : v;
      return JSON.stringify(s);
    }
    if (v === undefined) return "undefined";
    if (typeof Blob !== "undefined" && v instanceof Blob) return `Blob(${v.size})`;
    if (isBinary(v)) {
      const b = bytesOf(v);
      const head = Array.from(b.slice(0, 20), (x) => x.toString(16).padStart(2, "0")).join(" ");
      return `${typeName(v)}(${b.length})[${head}${b.length > 20 ? " …" : ""}]`;
    }
    if (Array.isArray(v)) {
      const items = v.slice(0, 20).map((x) => show(x, depth + 1));
      if (v.length > 20) items.push(`… ${v.length - 20} more`);
      return `[${items.join(", ")}]`;
    }
    if (v && typeof v === "object") {
      if (v instanceof Error) return `${v.name}: ${v.message}`;
      const entries = Object.entries(v).map(([k, x]) => `${JSON.stringify(k)}: ${show(x, depth + 1)}`);
      return `{${entries.join(", ")}}`;
    }
    return String(v);
  }

  function errorText(e) {
    if (e instanceof Error) {
      const extra = e.description !== undefined && typeof e.description !== "object" ? ` (${e.description})` : "";
      return `${e.name}: ${e.message}${extra}`;
    }
    return show(e);
  }

  // Structural equality in which any two binary values (ArrayBuffer, typed arrays, DataView) are
  // equal when their bytes are; the scenarios check the received type separately where it matters.
  function deepEqual(a, b) {
    if (isBinary(a) || isBinary(b)) {
      if (!(isBinary(a) && isBinary(b))) return false;
      const x = bytesOf(a);
      const y = bytesOf(b);
      if (x.length !== y.length) return false;
      for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
      return true;
    }
    if (Array.isArray(a) || Array.isArray(b)) {
      if (!(Array.isArray(a) && Array.isArray(b)) || a.length !== b.length) return false;
      return a.every((x, i) => deepEqual(x, b[i]));
    }
    if (a && b && typeof a === "object" && typeof b === "object") {
      const ka = Object.keys(a).sort();
      const kb = Object.keys(b).sort();
      if (!deepEqual(ka, kb)) return false;
      return ka.every((k) => deepEqual(a[k], b[k]));
    }
    return Object.is(a, b);
  }

  function assertEqual(actual, expected, what) {
    if (!deepEqual(actual, expected)) fail(`${what}: expected ${show(expected)}, got ${show(actual)}`);
  }

  // Received binary must be an ArrayBuffer: the client sets binaryType "arraybuffer".
  function assertArrayBuffers(actual, expected, path) {
    if (isBinary(expected) || (typeof Blob !== "undefined" && expected instanceof Blob)) {
      if (!(actual instanceof ArrayBuffer)) fail(`${path} came back as ${typeName(actual)}, not ArrayBuffer`);
      return;
    }
    if (Array.isArray(expected) && Array.isArray(actual)) {
      expected.forEach((x, i) => assertArrayBuffers(actual[i], x, `${path}[${i}]`));
    } else if (expected && typeof expected === "object" && actual && typeof actual === "object") {
      for (const k of Object.keys(expected)) assertArrayBuffers(actual[k], expected[k], `${path}.${k}`);
    }
  }

  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

  // Queues the arguments of events as they arrive, so a scenario can await them in order.
  class Recorder {
    constructor(emitter, events) {
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
      this.child = false; // a child browser was started (ended at cleanup)
    }

    remaining() {
      return Math.max(0, this.deadline - Date.now());
    }

    note(s) {
      this.notes.push(s);
    }

    // A new Manager (one Engine.IO connection).
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
      const m = new io.Manager(ARGS.url, mopts);
      this.managers.push(m);
      return m;
    }

    // A socket for namespace `nsp` on manager `m`, with its recorder as `sock.rec`.
    socket(m, nsp, auth) {
      const s = m.socket(nsp, auth ? { auth } : {});
      s.rec = new Recorder(s, RECORDED);
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
      if (this.child) {
        try {
          await fetch("/child/end", { method: "POST", cache: "no-store" });
        } catch (e) {
          console.error(`POST /child/end: ${e}`);
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
          m._close();
          if (m.engine) m.engine.close();
        } catch (_) {
          /* ignore */
        }
      }
    }
  }

  async function connected(ctx, s, what = "connect") {
    ctx.step = `waiting for ${what} on ${s.nsp}`;
    if (s.connected) return;
    const race = await Promise.race([
      s.rec.next("connect").then(() => "connect"),
      s.rec.next("connect_error").then((a) => `connect_error ${a.map(errorText).join(", ")}`),
    ]);
    if (race !== "connect" && !s.connected) fail(`${what} failed: ${race}`);
  }

  // The client closes the engine as soon as its last socket is refused, which in upgrade mode may
  // be before the upgrade. A companion socket on `/custom` (accepted) keeps the engine open and also
  // shows that a refusal on one namespace leaves the others alone.
  function keepAlive(ctx, m) {
    return ctx.socket(m, "/custom");
  }

  async function companionOk(ctx, companion) {
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

  function allBytes() {
    const bytes = new Uint8Array(256);
    for (let i = 0; i < 256; i++) bytes[i] = i;
    return bytes;
  }

  const utf8 = (s) => new TextEncoder().encode(s);

  // The largest string whose Engine.IO packet (and polling body) stays under the limit.
  const MAX_HTTP_BUFFER = 1000000;
  function underLimitSize() {
    // Socket.IO packet: `2<ackid>["message-with-ack","<s>"]`, plus the Engine.IO type char `4`.
    const framing = 1 + 1 + 6 + utf8(JSON.stringify(["message-with-ack", ""])).length;
    // Polling body (Engine.IO 4): packets joined with `\x1e`; a heartbeat may share the POST.
    const transport = ARGS.transport !== "websocket" ? 1 + 8 : 0;
    const safety = 32;
    return MAX_HTTP_BUFFER - framing - transport - safety;
  }

  // `payload-over-limit` sends a string whose Engine.IO packet, `4` + `2["message","<s>"]`, is
  // OVER_LIMIT_BY bytes over the limit. That packet is the whole WebSocket message, and (Engine.IO
  // 4 joins polling packets with `\x1e` and adds nothing to a lone one) the whole POST body over
  // polling; a heartbeat batched into the same POST only adds to it.
  const OVER_LIMIT_BY = 1;
  function overLimitSize() {
    const framing = 1 + utf8(`2${JSON.stringify(["message", ""])}`).length;
    return MAX_HTTP_BUFFER + OVER_LIMIT_BY - framing;
  }

  // How many messages `messages-in-order` sends, and how many may be unanswered at once.
  const IN_ORDER_COUNT = 10000;
  const IN_ORDER_WINDOW = 100;

  // Scenarios that get more than timeoutMs, by factor (must agree with LONG_SCENARIOS in
  // testkit/src/lib.rs).
  const LONG_SCENARIOS = { "messages-in-order": 6 };

  // What `client-killed` / `client-frozen` allow on top of ping interval + ping timeout before the
  // server must have noticed: the observer's polling (50 ms), its round trip, and scheduling on a
  // loaded machine (the same as the Node and Python scripts).
  const HEARTBEAT_SLACK_MS = 1000;

  // A POST to the page server's /child/... endpoints; the answer's text, or a failure.
  async function childRequest(path, body) {
    let res;
    try {
      res = await fetch(path, { method: "POST", body, cache: "no-store" });
    } catch (e) {
      fail(`POST ${path}: ${e}`);
    }
    const text = await res.text();
    if (!res.ok) fail(`POST ${path}: HTTP ${res.status}: ${text}`);
    return text;
  }

  // Has the harness start a child browser (a second Chromium: same client, URL and transport)
  // that connects to `/` and reports its socket id and the heartbeat values of its handshake.
  async function startChild(ctx) {
    ctx.step = "waiting for the child browser to connect";
    ctx.child = true;
    const query = new URLSearchParams({
      child: "1",
      url: ARGS.url,
      transport: ARGS.transport,
      timeoutMs: String(ARGS.timeoutMs),
    }).toString();
    const text = await childRequest("/child/start", query);
    let child;
    try {
      child = JSON.parse(text);
    } catch (e) {
      fail(`the child browser's report is not JSON: ${show(text)}`);
    }
    if (child.error) fail(`the child browser did not connect: ${child.error}`);
    return child;
  }

  // A child browser vanishes: `KILL` stops every process of that Chromium and then SIGKILLs them
  // (the kernel closes their connections; nothing in Chromium gets to send a close frame or a
  // close request), `STOP` only freezes them (the connections stay open and nothing answers). The
  // server must notice within ping interval + ping timeout (+ slack), as the observer sees through
  // `disconnect-reason`. Returns the server's reason.
  async function vanishingClient(ctx, signal) {
    const observer = ctx.client("/");
    await connected(ctx, observer, "connect of the observer");
    const child = await startChild(ctx);
    if (!(child.pingInterval > 0) || !(child.pingTimeout > 0)) {
      fail(`child reported no heartbeat values (${child.pingInterval}, ${child.pingTimeout})`);
    }
    ctx.step = `sending ${signal} to the child browser`;
    // Taken before the request: the signals are sent before the answer, so the time measured
    // includes the round trip to the page server and is never shorter than the server's.
    const t0 = Date.now();
    await childRequest("/child/signal", signal);
    const reason = await disconnectReason(ctx, observer, child.sid);
    const elapsed = Date.now() - t0;
    const bound = child.pingInterval + child.pingTimeout + HEARTBEAT_SLACK_MS;
    if (elapsed > bound) {
      fail(
        `the server noticed after ${elapsed} ms (${reason}), over ${bound} ms = ping interval ` +
          `${child.pingInterval} + ping timeout ${child.pingTimeout} + slack ${HEARTBEAT_SLACK_MS}`,
      );
    }
    ctx.note(`reason=${reason} after ${elapsed} ms (bound ${bound} ms)`);
    return reason;
  }

  // The body of a child page: connects like a scenario's client and reports to /child/ready.
  async function childMain() {
    const ctx = new Ctx("child", ARGS.timeoutMs);
    let report;
    try {
      if (ARG_PROBLEMS.length > 0 || typeof io !== "function") {
        fail(`page setup: ${ARG_PROBLEMS.concat(typeof io !== "function" ? ["no io"] : []).join("; ")}`);
      }
      const s = ctx.client("/");
      await connected(ctx, s);
      await nextAuth(ctx, s, {});
      await expectTransport(ctx, s.io);
      const e = s.io.engine;
      const interval = e.pingInterval !== undefined && e.pingInterval !== null ? e.pingInterval : e._pingInterval;
      const timeout = e.pingTimeout !== undefined && e.pingTimeout !== null ? e.pingTimeout : e._pingTimeout;
      report = { sid: s.id, pingInterval: interval, pingTimeout: timeout };
    } catch (e) {
      const msg = e instanceof ScenarioError ? e.message : e && e.stack ? e.stack : String(e);
      report = { error: `${msg} (step: ${ctx.step})` };
      post("/child/log", report.error);
    }
    // Idles (connected) until the harness kills or freezes this Chromium.
    await post("/child/ready", JSON.stringify(report));
  }

  // Sends `args` both ways (message → message-back, and as an ack) and checks that every binary
  // value comes back with the same bytes, as an ArrayBuffer.
  async function binaryRoundTrip(ctx, s, args, expected) {
    s.emit("message", ...args);
    ctx.step = "waiting for message-back";
    const back = await s.rec.next("message-back");
    assertArrayBuffers(back, expected, "message-back");
    assertEqual(back, expected, "message-back");
    ctx.step = "waiting for the ack";
    const ack = await emitAck(s, "message-with-ack", ...args);
    assertArrayBuffers(ack, expected, "ack");
    assertEqual(ack, expected, "ack");
  }

  // -------------------------------------------------------------------------------------------
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
      const m = ctx.manager();
      const s = ctx.socket(m, "/", { refuse: "true" });
      const companion = keepAlive(ctx, m);
      ctx.step = "waiting for the refusal";
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
      const outcome = await Promise.race([
        s.rec.next("connect_error").then((a) => ["connect_error", a]),
        s.rec.next("connect").then(() => ["connect", []]),
      ]);
      if (outcome[0] !== "connect_error") fail("connected to /nope");
      const err = outcome[1][0];
      const message = err && typeof err === "object" ? err.message : err;
      if (message !== "Invalid namespace") {
        fail(`connect_error: expected "Invalid namespace", got ${errorText(err)}`);
      }
      await companionOk(ctx, companion);
      await expectTransport(ctx, m);
    },

    async "multi-namespace"(ctx) {
      const m = ctx.manager();
      const root = ctx.socket(m, "/", { ns: "root" });
      const custom = ctx.socket(m, "/custom", { ns: "custom" });
      await connected(ctx, root, "connect of /");
      await connected(ctx, custom, "connect of /custom");
      await nextAuth(ctx, root, { ns: "root" }, "auth on /");
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
        allBytes(),
        { name: "blob", inner: { data: new Uint8Array([1, 2, 3]), list: [new Uint8Array([255, 0]), "text"] } },
      ];
      s.emit("message", ...args);
      ctx.step = "waiting for message-back";
      const back = await s.rec.next("message-back");
      assertArrayBuffers(back, args, "message-back");
      assertEqual(back, args, "message-back");
      await expectTransport(ctx, s.io);
    },

    async "binary-ack"(ctx) {
      const s = ctx.client("/");
      await connected(ctx, s);
      const args = ["label", allBytes(), { nested: [utf8("sockio"), { deeper: new Uint8Array([0]) }] }];
      ctx.step = "waiting for the ack";
      const ack = await emitAck(s, "message-with-ack", ...args);
      assertArrayBuffers(ack, args, "ack");
      assertEqual(ack, args, "ack");
      await expectTransport(ctx, s.io);
    },

    // Browser only: raw ArrayBuffers (not views), plus a view into the middle of a larger buffer,
    // whose bytes outside the view must not travel.
    async "binary-arraybuffer"(ctx) {
      const s = ctx.client("/");
      await connected(ctx, s);
      const whole = allBytes().buffer;
      const backing = new Uint8Array([9, 9, 9, 10, 20, 30, 9, 9]).buffer;
      const args = [whole, { part: new Uint8Array(backing, 3, 3), list: [new ArrayBuffer(4), "text"] }];
      const expected = [allBytes(), { part: new Uint8Array([10, 20, 30]), list: [new Uint8Array(4), "text"] }];
      await binaryRoundTrip(ctx, s, args, expected);
      await expectTransport(ctx, s.io);
    },

    // Browser only: Blobs are sent as binary (read asynchronously by the client, base64 over
    // polling) and come back as ArrayBuffers.
    async "binary-blob"(ctx) {
      const s = ctx.client("/");
      await connected(ctx, s);
      const args = [
        new Blob([allBytes()]),
        { inner: new Blob([utf8("blob ✓"), new Uint8Array([0, 255])], { type: "application/octet-stream" }) },
      ];
      const expected = [allBytes(), { inner: new Uint8Array([...utf8("blob ✓"), 0, 255]) }];
      await binaryRoundTrip(ctx, s, args, expected);
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
      post("/line", "@@restart");
      ctx.step = "waiting for the disconnect caused by the restart";
      const [reason] = await s.rec.next("disconnect");
      ctx.step = "waiting for the reconnection";
      await s.rec.next("connect");
      await nextAuth(ctx, s, { token: "again" }, "auth after reconnection");
      await expectTransport(ctx, s.io);
      ctx.note(`disconnect reason=${reason}, sid ${before} -> ${s.id}`);
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
      const t0 = Date.now();
      s.emit("message", "y".repeat(size));
      ctx.step = `waiting for the disconnect after the oversized message (${size} bytes)`;
      const got = await s.rec.within("disconnect", 5000);
      if (!got) {
        fail(`still connected 5 s after sending a ${size}-byte string (packet ${MAX_HTTP_BUFFER + OVER_LIMIT_BY} bytes)`);
      }
      const [reason] = got;
      if (reason !== "transport close" && reason !== "transport error") {
        fail(`disconnect reason: expected transport close/error, got ${show(reason)}`);
      }
      ctx.note(`size=${size} (packet ${MAX_HTTP_BUFFER + OVER_LIMIT_BY} bytes), reason=${reason} after ${Date.now() - t0} ms`);
    },

    async "messages-in-order"(ctx) {
      const s = ctx.client("/");
      await connected(ctx, s);
      await nextAuth(ctx, s, {});
      const got = [];
      let sent = 0;
      // Never more than IN_ORDER_WINDOW unanswered: one synchronous burst of 10,000 emits would
      // block the page's event loop (and its pongs) long enough to fail the ping timeout.
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
      const reason = await vanishingClient(ctx, "KILL");
      // The kernel closes a killed process's connections: the server may see that at once
      // ("transport close" / "transport error") or, when nothing of the connection was held open,
      // only through the heartbeat ("ping timeout").
      const accepted = ["transport close", "transport error", "ping timeout"];
      if (!accepted.includes(reason)) fail(`server-side reason: expected one of ${show(accepted)}, got ${show(reason)}`);
    },

    async "client-frozen"(ctx) {
      const reason = await vanishingClient(ctx, "STOP");
      // A frozen browser keeps its connections open: only the heartbeat can tell.
      if (reason !== "ping timeout") fail(`server-side reason: expected "ping timeout", got ${show(reason)}`);
    },
  };

  // -------------------------------------------------------------------------------------------
  // Runner

  async function runOne(name) {
    const fn = SCENARIOS[name];
    if (!fn) return { scenario: name, ok: false, detail: "unknown scenario (client browser)" };
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

  // Without a cross-origin server the CORS path would silently go untested.
  function setupProblems() {
    const problems = ARG_PROBLEMS.slice();
    if (typeof io !== "function" || typeof io.Manager !== "function") {
      problems.push("the socket.io-client bundle did not load (no global io.Manager)");
    }
    if (ARGS.url) {
      let target = null;
      try {
        target = new URL(ARGS.url).origin;
      } catch (e) {
        problems.push(`url ${ARGS.url} is not a URL: ${e.message}`);
      }
      if (target !== null && target === location.origin) {
        problems.push(`the server under test (${target}) has the page's own origin: no CORS`);
      }
    }
    return problems;
  }

  async function main() {
    post("/hello", navigator.userAgent);
    const problems = setupProblems();
    let allOk = true;
    for (const name of ARGS.scenarios) {
      const r =
        problems.length > 0
          ? { scenario: name, ok: false, detail: `page setup: ${problems.join("; ")}` }
          : await runOne(name);
      if (!r.ok) allOk = false;
      post("/line", JSON.stringify(r));
    }
    if (problems.length > 0) post("/log", `page setup: ${problems.join("; ")}`);
    await post("/done", allOk ? "ok" : "fail");
  }

  if (ARGS.child) {
    childMain().catch((e) => post("/child/log", `fatal: ${e && e.stack ? e.stack : e}`));
  } else {
    main().catch((e) => {
      logError(`fatal: ${e && e.stack ? e.stack : e}`);
      post("/done", "fail");
    });
  }
})();
