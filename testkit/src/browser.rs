//! The official socket.io-client 4.x inside headless Chromium.
//!
//! The browser bundle (`dist/socket.io.js` of the socket.io-client package that [`ensure_clients`]
//! installs; no CDN) runs the page script `clients/browser/scenarios.js`, the browser twin of
//! `clients/node/scenarios.js`. A tiny page server (std only, here) serves the page from its own
//! port of 127.0.0.1: a different origin from the Socket.IO server under test, so every request the
//! client makes to that server is cross-origin and Chromium enforces CORS on it. The page has no
//! stdout; it POSTs its output lines to the page server (same-origin), which hands them to
//! [`run_browser_scenarios`] exactly as [`run_scenarios`](crate::run_scenarios) hands over a
//! client's stdout lines, [`RESTART_LINE`](crate::RESTART_LINE) included.
//!
//! * [`ensure_browser`] makes sure `/usr/bin/chromium` exists (installing Debian's `chromium` when
//!   running as root on a bare machine).
//! * [`run_browser_scenarios`] runs one Chromium process through a list of [`scenarios`].
//!
//! `client-killed` and `client-frozen` need a client that vanishes without closing, which a page
//! cannot do to itself: on the page's request the page server starts a second Chromium (the child
//! browser) on the same page in child mode, which connects and reports its socket id, and then
//! stops every process of that Chromium at once (SIGSTOP) and, for `client-killed`, SIGKILLs them
//! all. Killing the whole process tree, frozen first, is what a killed Node or Python client is:
//! the kernel closes the connections and no part of Chromium gets to send a WebSocket close frame
//! or a close request. (Closing the tab would make Chromium close the WebSocket with 1001 "going
//! away"; killing only the renderer leaves the sockets to the network service, which closes them
//! as it sees fit.)

use std::collections::{HashMap, VecDeque};
use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::{
    RunOutput, SCENARIO_TIMEOUT, STDERR_CAP, ScenarioResult, TransportMode, clients_dir,
    ensure_clients, kill, missing_all, parse_result, read_capped,
};

/// Where Debian's `chromium` package puts its launcher.
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// The scenarios the page script runs, in the order it runs them best (the restart last).
///
/// Every scenario of the Node script ([`ALL_SCENARIOS`](crate::ALL_SCENARIOS)) plus two that only
/// a browser has: `binary-arraybuffer` (raw `ArrayBuffer`s and a view into the middle of a larger
/// buffer) and `binary-blob` (`Blob`s). In both, every binary value must come back as an
/// `ArrayBuffer` with the same bytes, through `message-back` and through an ack. `client-killed`
/// and `client-frozen` kill or freeze a second Chromium (see the module docs).
pub const BROWSER_SCENARIOS: &[&str] = &[
    "connect-auth",
    "connect-no-auth",
    "connect-refused",
    "custom-namespace",
    "invalid-namespace",
    "multi-namespace",
    "events-args",
    "ack-client-to-server",
    "ack-server-to-client",
    "binary-both-ways",
    "binary-ack",
    "binary-arraybuffer",
    "binary-blob",
    "rooms-broadcast",
    "server-call-timeout",
    "server-disconnect",
    "client-disconnect",
    "messages-in-order",
    "client-killed",
    "client-frozen",
    "payload-under-limit",
    "payload-over-limit",
    "reconnect-after-restart",
];

/// The browser's scenarios (see [`BROWSER_SCENARIOS`]).
pub fn scenarios() -> Vec<&'static str> {
    BROWSER_SCENARIOS.to_vec()
}

/// Chromium's flags. The first four are what headless Chromium needs in a container run as root
/// (no sandbox, no GPU) and to stay off the network (no component updates, no safe-browsing
/// lists); the throttling ones keep a page's timers on time, which the 300 ms ping interval of the
/// test profile relies on.
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-breakpad",
];

/// How long the page may take to load and report in before the run is given up.
const PAGE_LOAD_TIMEOUT: Duration = Duration::from_secs(30);

/// How long Chromium's helper processes get to exit after the browser process is killed (they
/// hold its stderr pipe and files in the profile).
const TEARDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a child browser may take to start, load its page, connect and report.
const CHILD_READY_TIMEOUT: Duration = Duration::from_secs(20);

/// procps' `kill`, which sends the child browser's processes SIGSTOP and SIGKILL (std can only
/// SIGKILL its own children, and the workspace forbids `unsafe`).
pub(crate) const KILL_PROGRAM: &str = "/bin/kill";

// ------------------------------------------------------------------------------------------------
// Installation

/// Makes sure Chromium is installed at [`CHROMIUM`] and returns that path.
///
/// When it is missing and the process runs as root (CI machines start bare), installs Debian's
/// `chromium` ([`crate::debian::ensure_program`]). Runs once per process.
pub fn ensure_browser() -> Result<PathBuf, String> {
    static DONE: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    DONE.get_or_init(install_browser).clone()
}

fn install_browser() -> Result<PathBuf, String> {
    crate::debian::ensure_program(Path::new(CHROMIUM), "chromium")
}

// ------------------------------------------------------------------------------------------------
// Running the page

/// Runs `scenarios` in the official browser client against `url` (e.g. `http://127.0.0.1:PORT`,
/// a server implementing the socket-io test-server profile, which allows CORS for any origin) over
/// `transport`, in one headless Chromium process.
///
/// Same shape and semantics as [`run_scenarios`](crate::run_scenarios): one [`ScenarioResult`]
/// per requested scenario, in order (a scenario never reported gets a failed entry saying why);
/// `timeout` bounds the whole run; `on_line` sees every line the page reports, on the calling
/// thread, so [`restart_on_request`](crate::restart_on_request) works. `exit_ok` means the page
/// reported that every scenario passed before the timeout. Chromium is killed and its temporary
/// profile removed at the end, whatever happened.
pub fn run_browser_scenarios(
    url: &str,
    transport: TransportMode,
    scenarios: &[&str],
    timeout: Duration,
    on_line: &mut dyn FnMut(&str),
) -> RunOutput {
    if let Err(e) = ensure_clients() {
        return missing_all(
            scenarios,
            format!("harness: installing the clients failed: {e}"),
        );
    }
    let chromium = match ensure_browser() {
        Ok(p) => p,
        Err(e) => return missing_all(scenarios, format!("harness: no Chromium: {e}")),
    };
    let (tx, rx) = mpsc::channel();
    let page_server = match PageServer::start(tx, Some(chromium.clone())) {
        Ok(s) => s,
        Err(e) => return missing_all(scenarios, format!("harness: page server: {e}")),
    };
    let page_url = format!(
        "http://{}/index.html?url={}&transport={}&scenarios={}&timeoutMs={}",
        page_server.addr,
        percent_encode(url),
        transport.as_str(),
        percent_encode(&scenarios.join(",")),
        SCENARIO_TIMEOUT.as_millis()
    );
    // Like run_scenarios, the bound starts with the client, not with the installs before it.
    let deadline = Instant::now() + timeout;
    let mut browser = match Browser::launch(&chromium, &page_url) {
        Ok(b) => b,
        Err(e) => return missing_all(scenarios, format!("harness: {e}")),
    };

    let outcome = collect(&rx, &mut browser, deadline, on_line);
    let mut stderr_text = browser.close();
    page_server.children.end();
    drop(page_server);
    for line in &outcome.log {
        stderr_text.push_str(&format!("page: {line}\n"));
    }
    let why_missing = match outcome.end {
        End::Done(_) => "no result: the page finished without reporting it",
        End::TimedOut if !outcome.hello => {
            stderr_text.push_str(&format!(
                "\nharness: the page did not load within {:?} (nothing reached the page server)\n",
                timeout.min(PAGE_LOAD_TIMEOUT)
            ));
            "no result: the page never loaded"
        }
        End::TimedOut => {
            stderr_text.push_str(&format!(
                "\nharness: the browser run timed out after {timeout:?}; Chromium was killed\n"
            ));
            "no result: the run timed out"
        }
        End::BrowserExited(ref status) => {
            stderr_text.push_str(&format!(
                "\nharness: Chromium exited on its own ({status}) before the page finished\n"
            ));
            "no result: Chromium exited before reporting it"
        }
    };
    let exit_ok = matches!(outcome.end, End::Done(true));
    if matches!(outcome.end, End::Done(false)) {
        stderr_text.push_str("\nharness: the page reported a failure\n");
    }
    RunOutput {
        results: order_results(scenarios, outcome.reported, why_missing),
        stderr: stderr_text,
        exit_ok,
    }
}

/// How a run ended.
enum End {
    /// The page posted `/done`: `true` if every scenario passed.
    Done(bool),
    TimedOut,
    BrowserExited(String),
}

struct Collected {
    reported: Vec<ScenarioResult>,
    log: Vec<String>,
    hello: bool,
    end: End,
}

/// Forwards the page's lines to `on_line` until the page is done, the deadline passes or Chromium
/// exits by itself.
fn collect(
    rx: &Receiver<PageMsg>,
    browser: &mut Browser,
    deadline: Instant,
    on_line: &mut dyn FnMut(&str),
) -> Collected {
    let load_deadline = deadline.min(Instant::now() + PAGE_LOAD_TIMEOUT);
    let mut out = Collected {
        reported: Vec::new(),
        log: Vec::new(),
        hello: false,
        end: End::TimedOut,
    };
    loop {
        let now = Instant::now();
        let until = if out.hello { deadline } else { load_deadline };
        if now >= until {
            out.end = End::TimedOut;
            return out;
        }
        // Wake up now and then to notice a Chromium that died without a word.
        match rx.recv_timeout((until - now).min(Duration::from_millis(250))) {
            Ok(PageMsg::Hello(agent)) => {
                out.hello = true;
                out.log.push(format!("loaded in {agent}"));
            }
            Ok(PageMsg::Line(line)) => {
                out.hello = true;
                on_line(&line);
                if let Some(r) = parse_result(&line) {
                    out.reported.push(r);
                }
            }
            Ok(PageMsg::Log(text)) => out.log.push(text),
            Ok(PageMsg::Done(ok)) => {
                out.end = End::Done(ok);
                return out;
            }
            Err(RecvTimeoutError::Timeout) => {
                if let Some(status) = browser.exited() {
                    out.end = End::BrowserExited(status);
                    return out;
                }
            }
            Err(RecvTimeoutError::Disconnected) => {
                // The page server is gone; nothing more can arrive.
                out.end = End::TimedOut;
                return out;
            }
        }
    }
}

/// One result per requested scenario, in the requested order; anything reported but not
/// requested is a script bug, kept as a failure.
fn order_results(
    scenarios: &[&str],
    mut reported: Vec<ScenarioResult>,
    why_missing: &str,
) -> Vec<ScenarioResult> {
    let mut results = Vec::with_capacity(scenarios.len());
    for name in scenarios {
        match reported.iter().position(|r| r.scenario == *name) {
            Some(i) => results.push(reported.remove(i)),
            None => results.push(ScenarioResult {
                scenario: (*name).to_string(),
                ok: false,
                detail: why_missing.to_string(),
            }),
        }
    }
    for mut r in reported {
        r.ok = false;
        r.detail = format!("unexpected result (not requested): {}", r.detail);
        results.push(r);
    }
    results
}

/// Percent-encodes everything but RFC 3986's unreserved characters, for a query parameter value.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

// ------------------------------------------------------------------------------------------------
// Chromium

/// One headless Chromium with its own temporary profile. Dropping it (also on a panic in
/// `on_line`) kills it and removes the profile.
struct Browser {
    child: Option<Child>,
    profile: PathBuf,
    stderr: Option<Receiver<String>>,
}

impl Browser {
    fn launch(chromium: &Path, page_url: &str) -> Result<Browser, String> {
        let profile = new_profile_dir()?;
        // HOME and the XDG dirs point into the profile too: Chromium's crash handler and caches
        // otherwise write under the real home, and would outlive the run.
        let home = profile.join("home");
        if let Err(e) = fs::create_dir_all(&home) {
            let _ = fs::remove_dir_all(&profile);
            return Err(format!("cannot create {}: {e}", home.display()));
        }
        let spawned = Command::new(chromium)
            .args(CHROMIUM_FLAGS)
            .arg(format!(
                "--user-data-dir={}",
                profile.join("data").display()
            ))
            .arg(page_url)
            .env("HOME", &home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("XDG_CACHE_HOME", home.join(".cache"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) => {
                let _ = fs::remove_dir_all(&profile);
                return Err(format!("cannot start {}: {e}", chromium.display()));
            }
        };
        let (tx, rx) = mpsc::channel();
        if let Some(stderr) = child.stderr.take() {
            thread::spawn(move || {
                let _ = tx.send(read_capped(stderr, STDERR_CAP));
            });
        }
        Ok(Browser {
            child: Some(child),
            profile,
            stderr: Some(rx),
        })
    }

    /// The browser process's id, while it has not been closed.
    fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `Some(status)` once the browser process has exited by itself.
    fn exited(&mut self) -> Option<String> {
        let child = self.child.as_mut()?;
        match child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            Ok(None) => None,
            Err(e) => Some(format!("cannot wait for it: {e}")),
        }
    }

    /// Kills Chromium, removes its profile and returns its stderr (capped).
    fn close(&mut self) -> String {
        if let Some(mut child) = self.child.take() {
            // Its helper processes notice the browser's death and exit by themselves.
            kill(&mut child);
        }
        // The stderr pipe closes when the last helper process has exited.
        let mut text = match self.stderr.take() {
            Some(rx) => match rx.recv_timeout(TEARDOWN_TIMEOUT) {
                Ok(raw) => without_noise(&raw),
                Err(_) => format!(
                    "harness: Chromium's helpers kept its stderr open for {TEARDOWN_TIMEOUT:?}\n"
                ),
            },
            None => String::new(),
        };
        if let Err(e) = remove_dir_patiently(&self.profile) {
            text.push_str(&format!("\nharness: {e}\n"));
        }
        text
    }
}

/// Chromium's stderr without its complaints about the missing D-Bus (every container lacks one),
/// which would otherwise bury anything useful in a failure report.
fn without_noise(stderr: &str) -> String {
    let mut out = String::new();
    for line in stderr.lines().filter(|l| !l.contains(":ERROR:dbus/")) {
        out.push_str(line);
        out.push('\n');
    }
    out
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.close();
    }
}

/// The prefix of every temporary Chromium profile directory in [`std::env::temp_dir`]: the test
/// process's id follows, so a test can check that its runs left nothing behind.
pub const PROFILE_PREFIX: &str = "sockio-testkit-chromium-";

fn new_profile_dir() -> Result<PathBuf, String> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!(
        "{PROFILE_PREFIX}{}-{}-{nanos}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    fs::create_dir(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    Ok(dir)
}

/// Removes `dir`, retrying while exiting helper processes may still be writing into it.
fn remove_dir_patiently(dir: &Path) -> Result<(), String> {
    let deadline = Instant::now() + TEARDOWN_TIMEOUT;
    loop {
        match fs::remove_dir_all(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) if Instant::now() >= deadline => {
                return Err(format!(
                    "cannot remove the Chromium profile {}: {e}",
                    dir.display()
                ));
            }
            Err(_) => thread::sleep(Duration::from_millis(50)),
        }
    }
}

// ------------------------------------------------------------------------------------------------
// The page server

/// What the page reported.
enum PageMsg {
    /// The script started (the browser's user agent).
    Hello(String),
    /// A stdout-like line: a scenario result or [`RESTART_LINE`](crate::RESTART_LINE).
    Line(String),
    /// A stderr-like line (uncaught errors).
    Log(String),
    /// The last post: `true` if every scenario passed.
    Done(bool),
}

/// The largest request the page server reads (headers plus body); the page's posts are a few KB.
const MAX_REQUEST: usize = 1 << 20;

/// A minimal HTTP/1.1 server on a free port of 127.0.0.1: one request per connection (it answers
/// with `Connection: close`), a thread per connection. It serves the page, the page script and
/// the socket.io-client bundle, and turns the page's POSTs into [`PageMsg`]s. Stopped on drop.
struct PageServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
    /// The child browser of `client-killed` / `client-frozen`.
    children: Arc<ChildHost>,
}

impl PageServer {
    /// `chromium` is what a child browser runs (`None`: the page cannot start one).
    fn start(tx: Sender<PageMsg>, chromium: Option<PathBuf>) -> Result<PageServer, String> {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("cannot bind: {e}"))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("no local address: {e}"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop_flag = Arc::clone(&stop);
        let children = Arc::new(ChildHost::new(chromium, addr));
        let host = Arc::clone(&children);
        let accept = thread::spawn(move || {
            for conn in listener.incoming() {
                if stop_flag.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = conn else { continue };
                let tx = tx.clone();
                let host = Arc::clone(&host);
                thread::spawn(move || serve(stream, &tx, &host));
            }
        });
        Ok(PageServer {
            addr,
            stop,
            accept: Some(accept),
            children,
        })
    }
}

impl Drop for PageServer {
    fn drop(&mut self) {
        self.children.end();
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the blocking accept() so the thread sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

struct Request {
    method: String,
    path: String,
    body: Vec<u8>,
}

fn serve(mut stream: TcpStream, tx: &Sender<PageMsg>, children: &ChildHost) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let response = match read_request(&mut stream) {
        Ok(req) => respond(&req, tx, children),
        Err(e) => Response::text(400, &e),
    };
    let _ = stream.write_all(&response.into_bytes());
    let _ = stream.flush();
    let _ = stream.shutdown(Shutdown::Both);
}

fn read_request(stream: &mut TcpStream) -> Result<Request, String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i;
        }
        if buf.len() > MAX_REQUEST {
            return Err("request head too large".into());
        }
        let n = stream
            .read(&mut chunk)
            .map_err(|e| format!("read error: {e}"))?;
        if n == 0 {
            return Err("connection closed before the request head ended".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let method = request_line.next().unwrap_or_default().to_string();
    let target = request_line.next().unwrap_or_default();
    let path = target.split('?').next().unwrap_or_default().to_string();
    let mut content_length = 0usize;
    for line in lines {
        if let Some((name, value)) = line.split_once(':')
            && name.trim().eq_ignore_ascii_case("content-length")
        {
            content_length = value
                .trim()
                .parse()
                .map_err(|_| format!("bad Content-Length {value:?}"))?;
        }
    }
    if content_length > MAX_REQUEST {
        return Err(format!("body of {content_length} bytes is too large"));
    }
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < content_length {
        let n = stream
            .read(&mut chunk)
            .map_err(|e| format!("read error: {e}"))?;
        if n == 0 {
            return Err("connection closed before the body ended".into());
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(content_length);
    Ok(Request { method, path, body })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

struct Response {
    status: u16,
    content_type: &'static str,
    body: Vec<u8>,
}

impl Response {
    fn text(status: u16, text: &str) -> Response {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            body: text.as_bytes().to_vec(),
        }
    }

    fn into_bytes(self) -> Vec<u8> {
        let reason = match self.status {
            200 => "OK",
            204 => "No Content",
            409 => "Conflict",
            400 => "Bad Request",
            404 => "Not Found",
            405 => "Method Not Allowed",
            _ => "Internal Server Error",
        };
        let mut out = format!(
            "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\n\
             Cache-Control: no-store\r\nConnection: close\r\n\r\n",
            self.status,
            self.content_type,
            self.body.len()
        )
        .into_bytes();
        out.extend_from_slice(&self.body);
        out
    }
}

fn respond(req: &Request, tx: &Sender<PageMsg>, children: &ChildHost) -> Response {
    let clients = clients_dir();
    let file = |path: PathBuf, content_type: &'static str| match fs::read(&path) {
        Ok(body) => Response {
            status: 200,
            content_type,
            body,
        },
        Err(e) => Response::text(500, &format!("cannot read {}: {e}", path.display())),
    };
    let body = || String::from_utf8_lossy(&req.body).into_owned();
    match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/" | "/index.html") => file(
            clients.join("browser").join("index.html"),
            "text/html; charset=utf-8",
        ),
        ("GET", "/scenarios.js") => file(
            clients.join("browser").join("scenarios.js"),
            "text/javascript; charset=utf-8",
        ),
        ("GET", "/socket.io.js") => file(
            clients
                .join("node_modules")
                .join("socket.io-client")
                .join("dist")
                .join("socket.io.js"),
            "text/javascript; charset=utf-8",
        ),
        ("POST", "/hello") => post(tx, PageMsg::Hello(body())),
        ("POST", "/line") => {
            let text = body();
            let mut sent = Response::text(204, "");
            for line in text.lines() {
                sent = post(tx, PageMsg::Line(line.to_string()));
            }
            sent
        }
        ("POST", "/log") => post(tx, PageMsg::Log(body())),
        ("POST", "/done") => post(tx, PageMsg::Done(body().trim() == "ok")),
        ("POST", "/child/start") => children.start(body().trim()),
        ("POST", "/child/ready") => children.ready(body()),
        ("POST", "/child/log") => {
            let text = body();
            children.log(&text);
            // Also in the run's report, as the main page's own errors are.
            let _ = tx.send(PageMsg::Log(format!("child browser: {text}")));
            Response::text(204, "")
        }
        ("POST", "/child/signal") => children.signal(body().trim()),
        ("POST", "/child/end") => {
            children.end();
            Response::text(204, "")
        }
        (
            _,
            "/hello" | "/line" | "/log" | "/done" | "/child/start" | "/child/ready" | "/child/log"
            | "/child/signal" | "/child/end",
        ) => Response::text(405, "POST only"),
        _ => Response::text(404, "not found"),
    }
}

fn post(tx: &Sender<PageMsg>, msg: PageMsg) -> Response {
    match tx.send(msg) {
        Ok(()) => Response::text(204, ""),
        // The run is over; the page's late posts have nowhere to go.
        Err(_) => Response::text(503, "the run is over"),
    }
}

// ------------------------------------------------------------------------------------------------
// The child browser

/// Hosts at most one child browser at a time for the page (see the module docs and the header of
/// `clients/browser/scenarios.js`).
struct ChildHost {
    chromium: Option<PathBuf>,
    /// The page server's address: the child loads its page from the same origin.
    page_addr: SocketAddr,
    state: Mutex<ChildState>,
    changed: Condvar,
}

#[derive(Default)]
struct ChildState {
    browser: Option<Browser>,
    /// Bumped whenever a child is started or ended, so a start still waiting for its child's
    /// report knows when that child is gone.
    generation: u64,
    /// What the child page posted to `/child/ready`.
    ready: Option<String>,
    /// What the child page posted to `/child/log`.
    log: Vec<String>,
}

impl ChildHost {
    fn new(chromium: Option<PathBuf>, page_addr: SocketAddr) -> ChildHost {
        ChildHost {
            chromium,
            page_addr,
            state: Mutex::default(),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, ChildState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts a child browser on the page with `query` (ending any previous one) and answers with
    /// the child's report once it has connected.
    fn start(&self, query: &str) -> Response {
        if query.is_empty() || !query.bytes().all(|b| b.is_ascii_graphic()) {
            return Response::text(400, "the body must be the child page's query string");
        }
        let Some(chromium) = &self.chromium else {
            return Response::text(500, "this page server cannot start a child browser");
        };
        let (generation, previous) = {
            let mut st = self.lock();
            st.generation += 1;
            st.ready = None;
            st.log.clear();
            (st.generation, st.browser.take())
        };
        self.changed.notify_all();
        if let Some(previous) = previous {
            terminate(previous);
        }
        let url = format!("http://{}/index.html?{query}", self.page_addr);
        let browser = match Browser::launch(chromium, &url) {
            Ok(b) => b,
            Err(e) => return Response::text(500, &format!("cannot start the child browser: {e}")),
        };
        let mut st = self.lock();
        if st.generation != generation {
            drop(st);
            terminate(browser);
            return Response::text(409, "the child browser was ended while it started");
        }
        st.browser = Some(browser);
        let deadline = Instant::now() + CHILD_READY_TIMEOUT;
        loop {
            if st.generation != generation {
                return Response::text(409, "the child browser was ended before it reported");
            }
            if let Some(report) = st.ready.take() {
                return Response {
                    status: 200,
                    content_type: "application/json",
                    body: report.into_bytes(),
                };
            }
            let exited = st.browser.as_mut().and_then(Browser::exited);
            let now = Instant::now();
            if exited.is_some() || now >= deadline {
                let why = match exited {
                    Some(status) => format!("the child browser exited ({status})"),
                    None => {
                        format!("the child browser did not report within {CHILD_READY_TIMEOUT:?}")
                    }
                };
                let log = st.log.join("; ");
                let browser = st.browser.take();
                st.generation += 1;
                drop(st);
                let stderr = browser.map(terminate).unwrap_or_default();
                let tail: String = stderr
                    .chars()
                    .rev()
                    .take(2000)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                return Response::text(
                    500,
                    &format!("{why}; its page logged: [{log}]; its stderr ends: {tail}"),
                );
            }
            st = self
                .changed
                .wait_timeout(st, (deadline - now).min(Duration::from_millis(250)))
                .map(|(guard, _)| guard)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }

    fn ready(&self, report: String) -> Response {
        self.lock().ready = Some(report);
        self.changed.notify_all();
        Response::text(204, "")
    }

    fn log(&self, text: &str) {
        let mut st = self.lock();
        if st.log.len() < 50 {
            st.log.push(text.to_string());
        }
    }

    /// `KILL`: freezes every process of the child browser, then SIGKILLs them all. `STOP`: only
    /// freezes them. Answers once the signals are sent.
    fn signal(&self, which: &str) -> Response {
        if which != "KILL" && which != "STOP" {
            return Response::text(400, "the body must be KILL or STOP");
        }
        let st = self.lock();
        let Some(root) = st.browser.as_ref().and_then(Browser::pid) else {
            return Response::text(409, "no child browser is running");
        };
        let frozen = match freeze_tree(root) {
            Ok(pids) => pids,
            Err(e) => return Response::text(500, &e),
        };
        if which == "KILL"
            && let Err(e) = send_signal("KILL", &frozen)
        {
            return Response::text(500, &e);
        }
        Response::text(204, "")
    }

    /// Kills what is left of the child browser (if any) and removes its profile.
    fn end(&self) {
        let browser = {
            let mut st = self.lock();
            st.generation += 1;
            st.ready = None;
            st.browser.take()
        };
        self.changed.notify_all();
        if let Some(browser) = browser {
            terminate(browser);
        }
    }
}

/// Ends a child browser whatever state it is in (running, frozen, killed): every process of its
/// tree is frozen and then SIGKILLed (a frozen helper would never notice the browser's death and
/// would keep the stderr pipe open), then the usual close. Returns its stderr.
fn terminate(mut browser: Browser) -> String {
    // Without procps' kill (freeze_tree fails) nothing can have been frozen either, and the
    // close alone kills the browser process, whose helpers then exit by themselves.
    if let Some(pids) = browser.pid().and_then(|root| freeze_tree(root).ok()) {
        let _ = send_signal("KILL", &pids);
    }
    browser.close()
}

/// Sends SIGSTOP to `root` and all its descendants, again until no new process turns up (a
/// process may fork until its own stop), and returns them all. Stopped first, nothing in the tree
/// can react to the others' death (or anything else) before it is killed.
fn freeze_tree(root: u32) -> Result<Vec<u32>, String> {
    let mut stopped: Vec<u32> = Vec::new();
    for _ in 0..20 {
        let fresh: Vec<u32> = process_tree(root)
            .into_iter()
            .filter(|p| !stopped.contains(p))
            .collect();
        if fresh.is_empty() {
            break;
        }
        send_signal("STOP", &fresh)?;
        stopped.extend(fresh);
    }
    Ok(stopped)
}

/// `root` and all its descendants, from every process's parent in `/proc/<pid>/stat`.
fn process_tree(root: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    if let Ok(dir) = fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            if let Some(ppid) = fs::read_to_string(entry.path().join("stat"))
                .ok()
                .and_then(|stat| parent_of(&stat))
            {
                children.entry(ppid).or_default().push(pid);
            }
        }
    }
    let mut tree = vec![root];
    let mut queue = VecDeque::from([root]);
    while let Some(pid) = queue.pop_front() {
        for &child in children.get(&pid).map(Vec::as_slice).unwrap_or_default() {
            if !tree.contains(&child) {
                tree.push(child);
                queue.push_back(child);
            }
        }
    }
    tree
}

/// The parent pid in the text of `/proc/<pid>/stat`: `pid (comm) state ppid ...`, where `comm`
/// may hold spaces and parentheses, so the fields are counted from the last `)`.
fn parent_of(stat: &str) -> Option<u32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// Sends `SIG<signal>` to `pids` with procps' `kill` (installed when missing, as Chromium is).
/// A process that exited in the meantime is no error.
fn send_signal(signal: &str, pids: &[u32]) -> Result<(), String> {
    if pids.is_empty() {
        return Ok(());
    }
    let kill = crate::debian::ensure_program(Path::new(KILL_PROGRAM), "procps")?;
    let out = Command::new(&kill)
        .args(["-s", signal])
        .args(pids.iter().map(u32::to_string))
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", kill.display()))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let real_errors: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.contains("No such process"))
        .collect();
    if out.status.success() || real_errors.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} -s {signal} {pids:?} failed ({}): {}",
            kill.display(),
            out.status,
            real_errors.join("; ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(addr: SocketAddr, raw: &str) -> String {
        let mut stream = TcpStream::connect(addr).expect("connect to the page server");
        stream.write_all(raw.as_bytes()).expect("send");
        let mut out = String::new();
        stream.read_to_string(&mut out).expect("read the response");
        out
    }

    #[test]
    fn page_server_serves_the_page_and_forwards_posts() {
        let (tx, rx) = mpsc::channel();
        let server = PageServer::start(tx, None).expect("page server");
        let page = request(
            server.addr,
            "GET /index.html?url=x HTTP/1.1\r\nHost: a\r\n\r\n",
        );
        assert!(page.starts_with("HTTP/1.1 200 OK\r\n"), "{page}");
        assert!(
            page.contains("<script src=\"/scenarios.js\"></script>"),
            "{page}"
        );

        let body = "{\"scenario\":\"a\",\"ok\":true}\n@@restart";
        let posted = request(
            server.addr,
            &format!(
                "POST /line HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ),
        );
        assert!(posted.starts_with("HTTP/1.1 204 "), "{posted}");
        let lines: Vec<String> = rx
            .try_iter()
            .map(|m| match m {
                PageMsg::Line(l) => l,
                _ => panic!("not a line"),
            })
            .collect();
        assert_eq!(lines, ["{\"scenario\":\"a\",\"ok\":true}", "@@restart"]);

        request(
            server.addr,
            "POST /done HTTP/1.1\r\ncontent-length: 2\r\n\r\nok",
        );
        assert!(matches!(rx.try_recv(), Ok(PageMsg::Done(true))));
        let wrong = request(server.addr, "GET /line HTTP/1.1\r\n\r\n");
        assert!(wrong.starts_with("HTTP/1.1 405 "), "{wrong}");
        let missing = request(server.addr, "GET /etc/passwd HTTP/1.1\r\n\r\n");
        assert!(missing.starts_with("HTTP/1.1 404 "), "{missing}");
        let bad = request(
            server.addr,
            "POST /log HTTP/1.1\r\nContent-Length: x\r\n\r\n",
        );
        assert!(bad.starts_with("HTTP/1.1 400 "), "{bad}");
    }

    #[test]
    fn child_endpoints_without_a_child() {
        let (tx, _rx) = mpsc::channel();
        let server = PageServer::start(tx, None).expect("page server");
        let post = |path: &str, body: &str| {
            request(
                server.addr,
                &format!(
                    "POST {path} HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                ),
            )
        };
        let start = post("/child/start", "child=1&url=x");
        assert!(start.starts_with("HTTP/1.1 500 "), "{start}");
        assert!(post("/child/start", "").starts_with("HTTP/1.1 400 "));
        let signal = post("/child/signal", "KILL");
        assert!(signal.starts_with("HTTP/1.1 409 "), "{signal}");
        assert!(post("/child/signal", "HUP").starts_with("HTTP/1.1 400 "));
        assert!(post("/child/end", "").starts_with("HTTP/1.1 204 "));
        let get = request(server.addr, "GET /child/end HTTP/1.1\r\n\r\n");
        assert!(get.starts_with("HTTP/1.1 405 "), "{get}");
    }

    #[test]
    fn reads_the_parent_from_proc_stat() {
        assert_eq!(parent_of("42 (a b) c) S 7 42 42 0 -1"), Some(7));
        assert_eq!(parent_of("1 (init) S 0 1 1"), Some(0));
        assert_eq!(parent_of("garbage"), None);
    }

    fn state_of(pid: u32) -> Option<char> {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        stat[stat.rfind(')')? + 1..].trim_start().chars().next()
    }

    #[test]
    fn freezes_and_kills_a_whole_process_tree() {
        // A shell with two children of its own, like Chromium with its helpers.
        let mut root = Command::new("sh")
            .args(["-c", "sleep 60 & sleep 60 & wait"])
            .spawn()
            .expect("sh");
        let pid = root.id();
        let deadline = Instant::now() + Duration::from_secs(10);
        while process_tree(pid).len() < 3 {
            assert!(Instant::now() < deadline, "the children never appeared");
            thread::sleep(Duration::from_millis(20));
        }
        let tree = freeze_tree(pid).expect("freeze");
        assert_eq!(tree.len(), 3, "{tree:?}");
        assert_eq!(tree[0], pid);
        for p in &tree {
            let deadline = Instant::now() + Duration::from_secs(5);
            while state_of(*p) != Some('T') {
                assert!(Instant::now() < deadline, "{p} is {:?}", state_of(*p));
                thread::sleep(Duration::from_millis(10));
            }
        }
        send_signal("KILL", &tree).expect("kill");
        let status = root.wait().expect("wait");
        assert!(!status.success());
        // The orphaned sleeps are reaped by init (or whatever subreaper); they must be gone or
        // zombies, never stopped or running.
        for p in &tree[1..] {
            let deadline = Instant::now() + Duration::from_secs(5);
            while matches!(state_of(*p), Some(c) if c != 'Z') {
                assert!(Instant::now() < deadline, "{p} is {:?}", state_of(*p));
                thread::sleep(Duration::from_millis(10));
            }
        }
        // Signalling processes that are gone is no error.
        send_signal("KILL", &tree).expect("kill again");
    }

    #[test]
    fn percent_encodes_query_values() {
        assert_eq!(
            percent_encode("http://127.0.0.1:80/a b"),
            "http%3A%2F%2F127.0.0.1%3A80%2Fa%20b"
        );
        assert_eq!(percent_encode("a-b_c.d~e"), "a-b_c.d~e");
    }

    #[test]
    fn browser_scenarios_cover_the_node_ones() {
        for s in crate::ALL_SCENARIOS {
            assert!(BROWSER_SCENARIOS.contains(s), "{s} missing");
        }
        assert!(BROWSER_SCENARIOS.contains(&"binary-arraybuffer"));
        assert!(BROWSER_SCENARIOS.contains(&"binary-blob"));
        assert_eq!(BROWSER_SCENARIOS.last(), Some(&"reconnect-after-restart"));
    }

    #[test]
    fn results_follow_the_requested_order() {
        let r = |s: &str, ok| ScenarioResult {
            scenario: s.into(),
            ok,
            detail: String::new(),
        };
        let out = order_results(
            &["a", "b", "c"],
            vec![r("c", true), r("a", true), r("x", true)],
            "missing",
        );
        let names: Vec<_> = out.iter().map(|r| (r.scenario.as_str(), r.ok)).collect();
        assert_eq!(
            names,
            [("a", true), ("b", false), ("c", true), ("x", false)]
        );
        assert_eq!(out[1].detail, "missing");
    }
}
