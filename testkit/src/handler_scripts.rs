//! Node scripts (socket.io-client 4.x, run with [`crate::node_script::NodeScript`]) for the
//! handler-dispatch tests every runtime runs against the same server setup: the async runtimes in
//! `tests/api_namespaces.rs`, the threads runtime in `runtime-threads/tests/api.rs`. Each names
//! the server setup it expects and the lines it prints.

/// Against `/chat` with a class-based namespace (answering `add` with `[a + b, "sum"]`) and a
/// function handler of `greet`: prints `connected` (the sid), `greet` and `add` (the acks).
pub const FUNCTION_BEFORE_CLASS: &str = r#"
const socket = io(URL + "/chat", { reconnection: false });
await connected(socket);
out("connected", socket.id);
out("greet", await emitWithAck(socket, "greet", "bob"));
out("add", await emitWithAck(socket, "add", 1, 2));
process.exit(0);
"#;

/// Against a server with `any_namespace` whose `"*"` handlers refuse `auth.user == "mallory"`
/// and answer `where` with the socket's namespace, and whose `/own` answers `where` itself; and
/// `closed`, the same `"*"` handlers without `any_namespace`. Prints `main`, `dynamic`, `own`
/// (the acks), `refused` and `closed` (the connect errors' messages).
pub fn catch_all_namespace(closed: &str) -> String {
    r#"
const main = io(URL, { reconnection: false });
await connected(main);
out("main", await emitWithAck(main, "where"));
const dynamic = io(URL + "/dyn", { reconnection: false, forceNew: true });
await connected(dynamic);
out("dynamic", await emitWithAck(dynamic, "where"));
const own = io(URL + "/own", { reconnection: false, forceNew: true });
await connected(own);
out("own", await emitWithAck(own, "where"));
const refused = io(URL + "/dyn", { auth: { user: "mallory" }, reconnection: false, forceNew: true });
const err = await new Promise((resolve) => { refused.on("connect", () => fail("mallory got in")); refused.on("connect_error", resolve); });
out("refused", err.message);
const elsewhere = io(CLOSED + "/dyn", { reconnection: false, forceNew: true });
const missing = await new Promise((resolve) => { elsewhere.on("connect", () => fail("connected without any_namespace")); elsewhere.on("connect_error", resolve); });
out("closed", missing.message);
process.exit(0);
"#
    .replace("CLOSED", &format!("{closed:?}"))
}

/// Against a server whose `double` handler takes one `u32`: emits `double` with a string, with
/// nothing and with 21, each with a 1 s ack timeout; prints `text`, `none` and `number`, each the
/// ack's arguments or `"no ack"`.
pub const NO_ACK_FOR_MISFIT_ARGUMENTS: &str = r#"
const socket = io(URL, { reconnection: false });
await connected(socket);
const answer = (...args) => new Promise((resolve) =>
  socket.timeout(1000).emit("double", ...args, (err, ...reply) => resolve(err ? "no ack" : reply)));
out("text", await answer("twenty-one"));
out("none", await answer());
out("number", await answer(21));
process.exit(0);
"#;

/// Two clients of two servers sharing a client manager: `a` on `URL`, `b` on `URL_B` (replace it
/// with the second server's URL as a JavaScript string). Prints the sids (`sids`, `{a, b}`),
/// then every event either receives (`ev`, `{who, event, args}`, disconnects included),
/// answering acknowledgement requests with `answer-from-<who>`; exits on the first command.
/// Used by the threads runtime's cluster test and both runtimes' custom-manager tests.
pub const TWO_CLUSTER_CLIENTS: &str = r#"
const options = { transports: ["websocket"], forceNew: true, reconnection: false };
const a = io(URL, options);
const b = io(URL_B, options);
await connected(a);
await connected(b);
for (const [who, socket] of [["a", a], ["b", b]]) {
  socket.onAny((event, ...args) => {
    const ack = typeof args[args.length - 1] === "function" ? args.pop() : null;
    out("ev", { who, event, args });
    if (ack) ack(`answer-from-${who}`);
  });
  socket.on("disconnect", (reason) => out("ev", { who, event: "disconnect", args: [reason] }));
}
out("sids", { a: a.id, b: b.id });
await command();
process.exit(0);
"#;

/// Connects a fresh client to each of `namespaces` in turn and prints `attempt` with what it got:
/// `connected`, or the CONNECT_ERROR's message (the namespace-filter tests of every runtime).
pub fn namespace_attempts(namespaces: &[&str]) -> String {
    format!(
        r#"
const attempt = (nsp) => new Promise((resolve) => {{
  const socket = io(URL + nsp, {{ reconnection: false, forceNew: true }});
  socket.on("connect", () => resolve("connected"));
  socket.on("connect_error", (err) => resolve(err.message));
}});
for (const nsp of {namespaces:?}) out("attempt", await attempt(nsp));
process.exit(0);
"#
    )
}

/// The file named by the panic `call` raises, as its panic hook reports it (`None` when it does
/// not panic): the registration-refusal tests check that the panic points at the caller's line.
/// Sets the process's panic hook for the call and puts the previous one back.
pub fn panic_location(call: impl FnOnce()) -> Option<String> {
    std::thread_local!(static AT: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) });
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|info| {
        let at = info.location().map(|at| at.file().to_owned());
        AT.with(|cell| *cell.borrow_mut() = at);
    }));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(call));
    std::panic::set_hook(previous);
    result.err()?;
    AT.with(|cell| cell.borrow_mut().take())
}

/// Connects over WebSocket and emits `work` with `0..events`, all at once, each asking for an
/// acknowledgement: prints `acks` (the first argument of each, in emit order), or `disconnect`
/// (the reason) if the connection ends first. For the tests of a client far ahead of its
/// handlers (`tests/api_concurrency.rs`, `runtime-threads/tests/fairness.rs`).
pub fn flood_of_acked_work(events: u64) -> String {
    format!(
        r#"
const socket = io(URL, {{ transports: ["websocket"], reconnection: false }});
socket.on("disconnect", (reason) => out("disconnect", reason));
await connected(socket);
const acks = [];
for (let k = 0; k < {events}; k++) acks.push(emitWithAck(socket, "work", k));
out("acks", (await Promise.all(acks)).map((a) => a[0]));
process.exit(0);
"#
    )
}

/// Against a server whose client manager other servers emit to: a WebSocket client that hears
/// `question` without ever answering it (prints `asked` each time) and answers `ping` with
/// `"pong"`; prints `connected` (the sid), then exits on the test's command.
pub const NEVER_ANSWERS_QUESTIONS: &str = r#"
const socket = io(URL, { transports: ["websocket"], reconnection: false });
socket.on("question", () => out("asked"));
socket.on("ping", (callback) => callback("pong"));
await connected(socket);
out("connected", socket.id);
await command();
process.exit(0);
"#;

/// Two clients of two servers sharing a client manager, `a` on `URL` and `b` on `URL_B` (replace
/// it as for [`TWO_CLUSTER_CLIENTS`]): prints the sids (`sids`, `{a, b}`); `b` answers
/// `last-words` with `heard` after 2.5 s; exits on the first command. For both runtimes' test of
/// a call made while its server shuts down.
pub const SLOW_ANSWERING_CLUSTER_CLIENTS: &str = r#"
const options = { transports: ["websocket"], forceNew: true, reconnection: false };
const a = io(URL, options);
const b = io(URL_B, options);
await connected(a);
await connected(b);
b.on("last-words", (ack) => setTimeout(() => ack("heard"), 2500));
out("sids", { a: a.id, b: b.id });
await command();
process.exit(0);
"#;
