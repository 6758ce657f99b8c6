//! Shared helpers of the tests that run the examples as their users do: the example's binary
//! (built with the features of the running test build), started as a child process on a port the
//! OS picks, and driven by the official Node client or by plain HTTP requests. Blocking std code
//! only, so the same helpers serve the tokio, smol and threads builds.
#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How long one awaited step may take before the test fails (it only bounds a hang).
pub const STEP: Duration = Duration::from_secs(30);

/// How long building one example may take (a cold build links a whole web stack).
const BUILD_TIMEOUT: Duration = Duration::from_secs(900);

/// The features of this test build, as `cargo build` flags.
fn feature_flags() -> Vec<String> {
    let features: Vec<&str> = [
        ("tokio", cfg!(feature = "tokio")),
        ("smol", cfg!(feature = "smol")),
        ("threads", cfg!(feature = "threads")),
    ]
    .into_iter()
    .filter_map(|(name, on)| on.then_some(name))
    .collect();
    let mut flags = vec!["--no-default-features".to_owned()];
    if !features.is_empty() {
        flags.push("--features".to_owned());
        flags.push(features.join(","));
    }
    flags
}

/// The target directory and profile flags of this test build, from the test binary's own path
/// (`<target-dir>/<profile>/deps/<test>-<hash>`).
fn target_dir_and_profile() -> (PathBuf, Vec<String>) {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary lives in <target-dir>/<profile>/deps");
    let target_dir = profile_dir
        .parent()
        .expect("the profile directory has a parent")
        .to_owned();
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => Vec::new(),
        Some("release") => vec!["--release".to_owned()],
        Some(other) => vec!["--profile".to_owned(), other.to_owned()],
    };
    (target_dir, profile)
}

/// The binary of example `name`, built with this test build's features and profile.
///
/// `cargo test` compiles the examples but leaves them under hashed names (and only when no
/// `--test` filter is given), and `target/<profile>/examples/<name>` may hold a build with other
/// features (the chat example is one file for every runtime). So the example is always built here
/// with the same features: a no-op when it is fresh, and cargo's JSON messages name the exact
/// executable. Cargo releases its build lock before running tests, so this nested call does not
/// wait on the `cargo test` that runs us. Built once per test process.
pub fn example_binary(name: &str) -> PathBuf {
    static BUILT: Mutex<BTreeMap<String, PathBuf>> = Mutex::new(BTreeMap::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(path) = built.get(name) {
        return path.clone();
    }
    let (target_dir, profile) = target_dir_and_profile();
    let mut command = Command::new(env!("CARGO"));
    // Cargo gives the test process its package's variables (`CARGO_MANIFEST_DIR`, ...). Build
    // scripts that watch one of them (ring's watches `CARGO_MANIFEST_DIR`) would see it changed
    // and rebuild half the tree here, and again in the next ordinary build: drop them.
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        if name.starts_with("CARGO_PKG_")
            || matches!(
                name,
                "CARGO_MANIFEST_DIR"
                    | "CARGO_MANIFEST_PATH"
                    | "CARGO_MANIFEST_LINKS"
                    | "CARGO_CRATE_NAME"
                    | "CARGO_BIN_NAME"
                    | "CARGO_PRIMARY_PACKAGE"
                    | "CARGO_TARGET_TMPDIR"
                    | "CARGO_RUSTC_CURRENT_DIR"
                    | "OUT_DIR"
            )
        {
            command.env_remove(name);
        }
    }
    command
        .arg("build")
        .arg("--manifest-path")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .args(["-p", "sockio", "--example", name])
        .args(feature_flags())
        .args(profile)
        .arg("--target-dir")
        .arg(&target_dir)
        .arg("--message-format=json-render-diagnostics")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let described = format!("{command:?}");
    let (success, stdout, stderr) = run_to_end(command, BUILD_TIMEOUT);
    assert!(
        success,
        "building example {name} failed: {described}\n--- stderr\n{stderr}"
    );
    let executable = stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| {
            message["reason"] == "compiler-artifact"
                && message["target"]["name"] == name
                && message["target"]["kind"]
                    .as_array()
                    .is_some_and(|kinds| kinds.iter().any(|k| k == "example"))
        })
        .find_map(|message| message["executable"].as_str().map(PathBuf::from))
        .unwrap_or_else(|| {
            panic!("cargo named no executable for example {name}: {described}\n{stdout}")
        });
    let executable = hashed_copy(&executable).unwrap_or(executable);
    built.insert(name.to_owned(), executable.clone());
    executable
}

/// The file `<name>-<hash>` that cargo hard-linked to `executable` (`<dir>/<name>`): unlike
/// `<name>`, it belongs to this feature set alone, so a build for other features (another test
/// process) cannot replace it under us.
#[cfg(unix)]
fn hashed_copy(executable: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let inode = std::fs::metadata(executable).ok()?.ino();
    let prefix = format!("{}-", executable.file_name()?.to_str()?);
    std::fs::read_dir(executable.parent()?)
        .ok()?
        .filter_map(Result::ok)
        .find(|entry| {
            entry
                .file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(&prefix))
                && entry.metadata().is_ok_and(|m| m.ino() == inode)
        })
        .map(|entry| entry.path())
}

#[cfg(not(unix))]
fn hashed_copy(_executable: &Path) -> Option<PathBuf> {
    None
}

/// Runs `command` to its end (killed after `timeout`): whether it exited 0, its stdout, its
/// stderr.
pub fn run_to_end(mut command: Command, timeout: Duration) -> (bool, String, String) {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let out_reader = thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let (done_tx, done_rx) = channel();
    thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        let _ = done_tx.send(text);
    });
    // Stderr reaches its end when the process exits (or closes it); that bounds the wait.
    let (mut err, timed_out) = match done_rx.recv_timeout(timeout) {
        Ok(text) => (text, false),
        Err(_) => {
            let _ = child.kill();
            (done_rx.recv().unwrap_or_default(), true)
        }
    };
    let status = child.wait().expect("wait for the child");
    let out = out_reader.join().unwrap_or_default();
    if timed_out {
        err.push_str(&format!("\n(killed after {timeout:?})"));
    }
    (status.success() && !timed_out, out, err)
}

/// A running example: its stdout lines are read as they come; killed when dropped.
pub struct Example {
    name: String,
    child: Child,
    lines: Receiver<String>,
    /// Lines read but not used up by [`wait_for`](Self::wait_for).
    pending: VecDeque<String>,
    seen: Vec<String>,
    stderr: Arc<Mutex<String>>,
}

impl Example {
    /// Starts example `name` (built by [`example_binary`]) with `env` added to its environment.
    pub fn start(name: &str, env: &[(&str, &str)]) -> Example {
        let binary = example_binary(name);
        let mut command = Command::new(&binary);
        command
            .envs(env.iter().copied())
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut stderr_pipe = child.stderr.take().expect("piped stderr");
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Example {
            name: name.to_owned(),
            child,
            lines,
            pending: VecDeque::new(),
            seen: Vec::new(),
            stderr,
        }
    }

    /// What the example printed so far, for failure messages.
    pub fn context(&self) -> String {
        format!(
            "example {}: stdout so far: {:#?}\nstderr: {}",
            self.name,
            self.seen,
            self.stderr.lock().unwrap_or_else(|e| e.into_inner())
        )
    }

    /// The first stdout line (in printed order) for which `matches` returns `Some`, which it
    /// returns; that line is used up, the others stay for later calls (a server's lines about
    /// different clients may interleave). Fails the test when the example exits first or prints
    /// nothing matching within [`STEP`].
    pub fn wait_for<T>(&mut self, what: &str, mut matches: impl FnMut(&str) -> Option<T>) -> T {
        for (index, line) in self.pending.iter().enumerate() {
            if let Some(found) = matches(line) {
                self.pending.remove(index);
                return found;
            }
        }
        let deadline = Instant::now() + STEP;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if let Some(found) = matches(&line) {
                        return found;
                    }
                    self.pending.push_back(line);
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!("no {what} within {STEP:?}\n{}", self.context())
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait().ok();
                    panic!(
                        "the example ended ({status:?}) before {what}\n{}",
                        self.context()
                    )
                }
            }
        }
    }

    /// Waits for the line `listening on http://<addr>/` the embedding examples print once bound.
    pub fn listening_addr(&mut self) -> SocketAddr {
        self.wait_for("the `listening on` line", |line| {
            line.strip_prefix("listening on http://")
                .and_then(|rest| rest.trim_end_matches('/').parse().ok())
        })
    }

    /// Waits for a line starting with `prefix` and returns it.
    pub fn expect_line(&mut self, prefix: &str) -> String {
        self.wait_for(&format!("a line starting with {prefix:?}"), |line| {
            line.starts_with(prefix).then(|| line.to_owned())
        })
    }

    /// Waits for the line `expected`, exactly.
    pub fn expect_exact(&mut self, expected: &str) {
        self.wait_for(&format!("the line {expected:?}"), |line| {
            (line == expected).then_some(())
        });
    }
}

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The address in sockio's `sockio serving` log line (tracing at INFO): `addr=Some(<addr>)`.
/// The chat example binds inside `serve_with`, so this line, printed once the listener is bound,
/// is the first moment its port is known and open.
pub fn serving_addr(line: &str) -> Option<SocketAddr> {
    if !line.contains("sockio serving") {
        return None;
    }
    let start = line.find("Some(")? + "Some(".len();
    let end = start + line[start..].find(')')?;
    line[start..end].parse().ok()
}

/// A plain HTTP/1.1 response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`); reads the whole response.
pub fn http(addr: SocketAddr, method: &str, target: &str, body: &[u8]) -> Response {
    let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream.set_read_timeout(Some(STEP)).expect("read timeout");
    let head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).expect("send the head");
    stream.write_all(body).expect("send the body");
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .unwrap_or_else(|e| panic!("{method} {target}: reading the response failed: {e}"));
    parse_response(&raw).unwrap_or_else(|| {
        panic!(
            "{method} {target}: not an HTTP response: {:?}",
            String::from_utf8_lossy(&raw)
        )
    })
}

fn parse_response(raw: &[u8]) -> Option<Response> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let rest = &raw[end + 4..];
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    let body = if chunked {
        let mut body = Vec::new();
        let mut rest = rest;
        loop {
            let line_end = rest.windows(2).position(|w| w == b"\r\n")?;
            let size =
                usize::from_str_radix(std::str::from_utf8(&rest[..line_end]).ok()?.trim(), 16)
                    .ok()?;
            rest = &rest[line_end + 2..];
            if size == 0 {
                break;
            }
            body.extend_from_slice(rest.get(..size)?);
            rest = rest.get(size + 2..)?;
        }
        body
    } else {
        rest.to_vec()
    };
    Some(Response {
        status,
        headers,
        body,
    })
}

/// Runs the Node script file `script` with `args`, the official clients on `NODE_PATH`, to its
/// end (killed after `timeout`): whether it exited 0, its stdout and its stderr.
pub fn run_node_file(script: &Path, args: &[&str], timeout: Duration) -> (bool, String, String) {
    sockio_testkit::ensure_clients().expect("the official clients install");
    let mut command = Command::new("node");
    command
        .arg(script)
        .args(args)
        .env(
            "NODE_PATH",
            sockio_testkit::clients_dir().join("node_modules"),
        )
        .stdin(Stdio::null());
    run_to_end(command, timeout)
}
