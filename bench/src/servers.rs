//! The servers under test: how to start each one as a child process, and its memory.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::net::Result;

/// A server under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ServerKind {
    SockioTokio,
    SockioSmol,
    SockioThreads,
    Socketioxide,
    Node,
    Python,
    /// The raw WebSocket echo server: the floor for idle, connect storm and echo.
    Floor,
}

impl ServerKind {
    pub const ALL: [ServerKind; 7] = [
        ServerKind::SockioTokio,
        ServerKind::SockioSmol,
        ServerKind::SockioThreads,
        ServerKind::Socketioxide,
        ServerKind::Node,
        ServerKind::Python,
        ServerKind::Floor,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ServerKind::SockioTokio => "sockio-tokio",
            ServerKind::SockioSmol => "sockio-smol",
            ServerKind::SockioThreads => "sockio-threads",
            ServerKind::Socketioxide => "socketioxide",
            ServerKind::Node => "node",
            ServerKind::Python => "python",
            ServerKind::Floor => "raw-ws-floor",
        }
    }

    pub fn parse(name: &str) -> Option<ServerKind> {
        ServerKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Whether it speaks Socket.IO (the floor only answers the echo frames).
    pub fn is_socket_io(self) -> bool {
        self != ServerKind::Floor
    }

    /// What it is, for the report.
    pub fn describe(self) -> &'static str {
        match self {
            ServerKind::SockioTokio => "sockio, tokio runtime (2 worker threads)",
            ServerKind::SockioSmol => "sockio, smol runtime (global executor, SMOL_THREADS=2)",
            ServerKind::SockioThreads => "sockio, OS-thread runtime",
            ServerKind::Socketioxide => "socketioxide on axum (tokio, 2 worker threads)",
            ServerKind::Node => "socket.io on Node.js (one process)",
            ServerKind::Python => "python-socketio AsyncServer on uvicorn (one worker)",
            ServerKind::Floor => "tokio-tungstenite echo (2 worker threads), no Socket.IO",
        }
    }
}

/// Where the repository and the binaries are.
#[derive(Clone, Debug)]
pub struct Paths {
    pub root: PathBuf,
    /// The directory of `sockio-bench` itself (holds `sockio-conformance` of the same profile).
    pub bin_dir: PathBuf,
}

impl Paths {
    pub fn discover(root: Option<PathBuf>) -> Result<Paths> {
        let exe = std::env::current_exe()?;
        let bin_dir = exe
            .parent()
            .ok_or("the executable has no directory")?
            .to_path_buf();
        let root = root.unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default()
        });
        Ok(Paths { root, bin_dir })
    }

    pub fn peers(&self) -> PathBuf {
        self.root.join("bench").join("peers")
    }

    /// The command that starts `kind` on `port`, or why it cannot.
    pub fn command(&self, kind: ServerKind, port: u16) -> Result<Command> {
        let port = port.to_string();
        let need = |p: PathBuf| -> Result<PathBuf> {
            if p.exists() {
                Ok(p)
            } else {
                Err(format!(
                    "{} is missing: run bench/run.sh (it builds the peers)",
                    p.display()
                )
                .into())
            }
        };
        let cmd = match kind {
            ServerKind::SockioTokio | ServerKind::SockioSmol | ServerKind::SockioThreads => {
                let runtime = match kind {
                    ServerKind::SockioTokio => "tokio",
                    ServerKind::SockioSmol => "smol",
                    _ => "threads",
                };
                let mut c = Command::new(need(self.bin_dir.join("sockio-conformance"))?);
                // smol's global executor runs SMOL_THREADS threads (default 1): 2, like the
                // 2 tokio workers, so both runtimes get the same number of task threads.
                if kind == ServerKind::SockioSmol {
                    c.env("SMOL_THREADS", "2");
                }
                c.args([
                    "serve",
                    "--runtime",
                    runtime,
                    "--profile",
                    "bench",
                    "--port",
                    &port,
                ]);
                c
            }
            ServerKind::Socketioxide => {
                let mut c = Command::new(need(
                    self.peers()
                        .join("socketioxide/target/release/bench-socketioxide"),
                )?);
                c.arg(&port);
                c
            }
            ServerKind::Node => {
                need(self.peers().join("node/node_modules/socket.io"))?;
                let mut c = Command::new("node");
                c.arg(self.peers().join("node/server.js")).arg(&port);
                c
            }
            ServerKind::Python => {
                let mut c = Command::new(need(self.peers().join("python/.venv/bin/python"))?);
                c.arg(self.peers().join("python/server.py")).arg(&port);
                c
            }
            ServerKind::Floor => {
                let mut c = Command::new(std::env::current_exe()?);
                c.args(["floor", "--port", &port]);
                c
            }
        };
        Ok(cmd)
    }
}

/// A running server process, killed on drop.
pub struct RunningServer {
    pub addr: SocketAddr,
    child: Child,
}

impl RunningServer {
    /// Starts `kind`; its output goes to `target/bench-logs/<name>-<phase>.log` (one file per
    /// start, so a later start does not overwrite the log of one that failed).
    pub fn start(paths: &Paths, kind: ServerKind, phase: &str) -> Result<RunningServer> {
        let port = free_port()?;
        let log = std::fs::File::create(log_path(paths, kind, phase))?;
        let mut cmd = paths.command(kind, port)?;
        // Profiling: SOCKIO_BENCH_WRAP="heaptrack -o /tmp/ht" (or "perf record -g -o ...") runs
        // every server under that command.
        if let Ok(wrap) = std::env::var("SOCKIO_BENCH_WRAP") {
            let mut words = wrap.split_whitespace();
            if let Some(program) = words.next() {
                let mut wrapped = Command::new(program);
                wrapped
                    .args(words)
                    .arg(cmd.get_program())
                    .args(cmd.get_args());
                cmd = wrapped;
            }
        }
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", kind.name()))?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut server = RunningServer { addr, child };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                break;
            }
            if let Some(status) = server.child.try_wait()? {
                return Err(format!("{} exited at start: {status}", kind.name()).into());
            }
            if Instant::now() > deadline {
                return Err(format!("{} did not listen within 60 s", kind.name()).into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // Let the runtime settle (python imports, node JIT) before the baseline memory.
        std::thread::sleep(Duration::from_millis(500));
        Ok(server)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory of the process and its descendants, in bytes.
    pub fn rss(&self) -> u64 {
        tree_rss(self.pid())
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        for pid in descendants(self.child.id()) {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where the output of `kind`'s server started for `phase` goes (the directory is created).
pub fn log_path(paths: &Paths, kind: ServerKind, phase: &str) -> PathBuf {
    let dir = paths.root.join("target").join("bench-logs");
    let _ = std::fs::create_dir_all(&dir);
    dir.join(format!("{}-{phase}.log", kind.name()))
}

fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

fn descendants(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut stack = vec![pid];
    while let Some(p) = stack.pop() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let Ok(children) = std::fs::read_to_string(task.path().join("children")) else {
                continue;
            };
            for c in children.split_whitespace().filter_map(|c| c.parse().ok()) {
                out.push(c);
                stack.push(c);
            }
        }
    }
    out
}

/// VmRSS of one process, in bytes.
pub fn process_rss(pid: u32) -> u64 {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return 0;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn tree_rss(pid: u32) -> u64 {
    over_tree(pid, process_rss)
}

/// `per_process` of a process plus that of each of its descendants.
fn over_tree<T: std::iter::Sum<T>>(pid: u32, per_process: impl Fn(u32) -> T) -> T {
    std::iter::once(pid)
        .chain(descendants(pid))
        .map(per_process)
        .sum()
}

/// Clock ticks per second of `/proc/PID/stat`'s times: USER_HZ, 100 on every Linux the kernel
/// exposes to user space (the value `getconf CLK_TCK` prints).
const USER_HZ: f64 = 100.0;

/// CPU time in seconds: what a process ran itself (utime) and what the kernel ran for it
/// (stime). The split tells a server's own work from its system calls' and interrupts'.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CpuTime {
    pub user: f64,
    pub system: f64,
}

impl CpuTime {
    pub fn total(self) -> f64 {
        self.user + self.system
    }
}

impl std::ops::Sub for CpuTime {
    type Output = CpuTime;

    fn sub(self, earlier: CpuTime) -> CpuTime {
        CpuTime {
            user: self.user - earlier.user,
            system: self.system - earlier.system,
        }
    }
}

impl std::iter::Sum for CpuTime {
    fn sum<I: Iterator<Item = CpuTime>>(times: I) -> CpuTime {
        times.fold(CpuTime::default(), |sum, time| CpuTime {
            user: sum.user + time.user,
            system: sum.system + time.system,
        })
    }
}

/// utime and stime of one process (zero when it is gone).
pub fn process_cpu(pid: u32) -> CpuTime {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return CpuTime::default();
    };
    // The command name (field 2) is in parentheses and may hold spaces: count from after it,
    // where field 3 is the first; utime and stime are fields 14 and 15.
    let Some((_, after_name)) = stat.rsplit_once(')') else {
        return CpuTime::default();
    };
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let seconds = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0) as f64
            / USER_HZ
    };
    CpuTime {
        user: seconds(11),
        system: seconds(12),
    }
}

/// utime + stime of one process, in seconds (0 when it is gone).
pub fn process_cpu_secs(pid: u32) -> f64 {
    process_cpu(pid).total()
}

/// utime and stime of a process and its descendants.
pub fn tree_cpu(pid: u32) -> CpuTime {
    over_tree(pid, process_cpu)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_used_cpu_time_and_a_gone_one_none() {
        let busy_until = Instant::now() + Duration::from_millis(50);
        let mut spins = 0u64;
        while Instant::now() < busy_until {
            spins = spins.wrapping_add(1);
        }
        assert!(spins > 0);
        assert!(process_cpu_secs(std::process::id()) > 0.0);
        assert!(process_cpu(std::process::id()).user > 0.0);
        assert_eq!(process_cpu_secs(u32::MAX), 0.0);
    }
}
