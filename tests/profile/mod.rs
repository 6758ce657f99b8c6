//! The "socket-io" test-server profile (the one the testkit's scenarios expect; the Node reference
//! server implements the same in `testkit/clients/node/reference-server.js`), written once with the
//! public sockio API for every runtime, and a [`TestServer`] that runs it in-process on a chosen
//! runtime.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use sockio::server::{AllowedOrigins, Args, CallError, ConnectRefused, Runtime, Server, Socket};
use sockio_testkit::TestServer;

mod threads;

/// The profile's ping timeout here. The conformance profile says 200 ms; on a loaded two-core CI
/// machine a client process can be starved that long and every socket then dies of "ping timeout"
/// at once. No scenario of these tests measures the heartbeat, so a second keeps them about
/// protocol behaviour rather than scheduler luck.
pub const PING_TIMEOUT: Duration = Duration::from_millis(1000);

/// Builds a server with the profile's options and handlers.
pub fn socket_io_profile<Rt: Runtime>() -> Server<Rt> {
    let io = Server::<Rt>::builder()
        .ping_interval(Duration::from_millis(300))
        .ping_timeout(PING_TIMEOUT)
        .connect_timeout(Duration::from_millis(1000))
        .max_http_buffer_size(1_000_000)
        .cors_allowed_origins(AllowedOrigins::Any)
        .allow_eio3(true)
        .build();
    let reasons: Arc<Mutex<HashMap<String, String>>> = Arc::default();
    for name in ["/", "/custom"] {
        let ns = io.of(name);
        ns.on_connect(
            |socket: Socket<Rt>, _handshake, auth: Option<Value>| async move {
                let auth = auth.unwrap_or_else(|| json!({}));
                if auth["refuse"] == json!(true) || auth["refuse"] == json!("true") {
                    return Err(ConnectRefused::new("refused by server")
                        .with_data(json!({"reason": "refuse was set"})));
                }
                // Sent right after the CONNECT reply.
                let _ = socket.emit("auth", &auth).await;
                Ok(())
            },
        );
        ns.on_args("message", |socket: Socket<Rt>, args: Args| async move {
            let _ = socket.emit_args("message-back", args).await;
            Args::default()
        });
        ns.on_args(
            "message-with-ack",
            |_socket: Socket<Rt>, args: Args| async move { args },
        );
        ns.on("join", |socket: Socket<Rt>, room: String| async move {
            socket.enter_room(&room).is_ok()
        });
        ns.on("leave", |socket: Socket<Rt>, room: String| async move {
            socket.leave_room(&room).is_ok()
        });
        ns.on_args("broadcast", |socket: Socket<Rt>, args: Args| async move {
            let _ = socket
                .server()
                .of(socket.namespace())
                .emit_args("broadcast", args)
                .skip_sid(socket.sid())
                .await;
            ack(true)
        });
        ns.on_args("to-room", |socket: Socket<Rt>, args: Args| async move {
            let Some(room) = args
                .values
                .first()
                .and_then(Value::as_str)
                .map(str::to_owned)
            else {
                return ack(false);
            };
            let data = Args::from_parts(args.values[1..].to_vec(), args.attachments);
            let _ = socket
                .server()
                .of(socket.namespace())
                .emit_args("room-message", data)
                .to(&room)
                .await;
            ack(true)
        });
        ns.on(
            "call-client",
            |socket: Socket<Rt>, timeout_ms: u64| async move {
                match socket
                    .call("server-call", &"question")
                    .timeout(Duration::from_millis(timeout_ms))
                    .await
                {
                    Ok(answer) => json!({ "answer": answer.values }),
                    Err(CallError::Timeout) => json!({ "error": "timeout" }),
                    Err(other) => json!({ "error": other.to_string() }),
                }
            },
        );
        ns.on_args("server-ack", |socket: Socket<Rt>, _args: Args| async move {
            let replier = socket.clone();
            let _ = socket
                .emit("need-ack", &"please")
                .callback_args(Some(Duration::from_secs(10)), move |answer| {
                    if let Ok(args) = answer {
                        let replier = replier.clone();
                        let server = replier.server().clone();
                        let task = server.start_background_task(async move {
                            let _ = replier.emit_args("got-ack", args).await;
                        });
                        drop(task); // runs on without being awaited
                    }
                })
                .await;
            Args::default()
        });
        ns.on(
            "disconnect-me",
            |socket: Socket<Rt>, _: Option<Value>| async move {
                let _ = socket.disconnect().await;
            },
        );
        let recorded = reasons.clone();
        ns.on(
            "disconnect-reason",
            move |_socket: Socket<Rt>, sid: String| {
                let reason = recorded.lock().expect("reasons").get(&sid).cloned();
                async move { reason }
            },
        );
        ns.on("rooms", |socket: Socket<Rt>, _: Option<Value>| async move {
            let mut rooms = socket.rooms();
            rooms.sort();
            rooms
        });
        let recorded = reasons.clone();
        ns.on_disconnect(move |socket: Socket<Rt>, reason| {
            recorded
                .lock()
                .expect("reasons")
                .insert(socket.sid().to_string(), reason.as_str().to_owned());
            async {}
        });
    }
    io
}

fn ack(value: impl serde::Serialize) -> Args {
    sockio::payload::to_args(&value).unwrap_or_default()
}

/// Which runtime serves the profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeKind {
    Tokio,
    Smol,
    Threads,
}

impl RuntimeKind {
    pub fn all() -> [RuntimeKind; 3] {
        [RuntimeKind::Tokio, RuntimeKind::Smol, RuntimeKind::Threads]
    }
}

/// Stops a running server.
enum Running {
    /// Dropping the runtime kills every task and connection at once, as when a process dies.
    Tokio(tokio::runtime::Runtime),
    /// smol's executor is global, so its tasks cannot be dropped at once: the server runs in a
    /// child process (this test binary, see [`serve_in_this_process`]) that a restart kills.
    Process(std::process::Child),
    /// `abort()` cuts every TCP stream of the threads server, as when a process dies.
    Threads {
        server: sockio_threads::Server,
        accept: std::thread::JoinHandle<()>,
    },
}

/// The environment variable that turns this test binary into a profile server:
/// `<runtime>:<addr>`.
pub const SERVE_ENV: &str = "SOCKIO_TEST_PROFILE_SERVE";

/// When [`SERVE_ENV`] is set, serves the profile on that runtime and address until killed.
pub fn serve_in_this_process() {
    let Ok(spec) = std::env::var(SERVE_ENV) else {
        return;
    };
    let (kind, addr) = spec.split_once(':').expect("runtime:addr");
    let listener = std::net::TcpListener::bind(addr).expect("bind the profile address");
    match kind {
        "smol" => {
            let io = socket_io_profile::<sockio_smol::Smol>();
            if let Err(error) = smol::block_on(io.serve_std(listener)) {
                eprintln!("profile server stopped: {error}");
            }
        }
        other => panic!("unknown runtime {other}"),
    }
}

/// The profile served in-process; a restart stops the server and serves a fresh one on the same
/// port.
pub struct InProcessServer {
    kind: RuntimeKind,
    running: Option<Running>,
    addr: SocketAddr,
}

impl InProcessServer {
    pub fn start(kind: RuntimeKind) -> Result<Self, String> {
        Self::start_on(kind, "127.0.0.1:0".parse().map_err(|e| format!("{e}"))?)
    }

    fn start_on(kind: RuntimeKind, addr: SocketAddr) -> Result<Self, String> {
        let listener =
            std::net::TcpListener::bind(addr).map_err(|e| format!("bind {addr}: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let running = match kind {
            RuntimeKind::Tokio => {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .map_err(|e| e.to_string())?;
                runtime.spawn(async move {
                    let io = socket_io_profile::<sockio_tokio::Tokio>();
                    if let Err(error) = io.serve_std(listener).await {
                        eprintln!("test server stopped: {error}");
                    }
                });
                Running::Tokio(runtime)
            }
            RuntimeKind::Smol => {
                drop(listener); // the child binds the same port
                let child =
                    std::process::Command::new(std::env::current_exe().map_err(|e| e.to_string())?)
                        .args([
                            "--ignored",
                            "--exact",
                            "profile_server_process",
                            "--nocapture",
                        ])
                        .env(SERVE_ENV, format!("smol:{addr}"))
                        .stdout(std::process::Stdio::null())
                        .spawn()
                        .map_err(|e| format!("cannot start the profile server: {e}"))?;
                wait_until_listening(addr)?;
                Running::Process(child)
            }
            RuntimeKind::Threads => {
                let server = threads::socket_io_profile();
                let serving = server.clone();
                let accept = std::thread::spawn(move || {
                    if let Err(error) = serving.serve_std(listener) {
                        eprintln!("threads test server stopped: {error}");
                    }
                });
                Running::Threads { server, accept }
            }
        };
        Ok(InProcessServer {
            kind,
            running: Some(running),
            addr,
        })
    }

    fn stop(&mut self) {
        match self.running.take() {
            Some(Running::Tokio(runtime)) => runtime.shutdown_background(),
            Some(Running::Process(mut child)) => {
                let _ = child.kill();
                let _ = child.wait();
            }
            Some(Running::Threads { server, accept }) => {
                server.abort();
                let _ = accept.join();
            }
            None => {}
        }
    }
}

/// Waits until something accepts TCP connections on `addr`.
fn wait_until_listening(addr: SocketAddr) -> Result<(), String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        if std::time::Instant::now() > deadline {
            return Err(format!("the profile server never listened on {addr}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

impl TestServer for InProcessServer {
    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn restart(&mut self) -> Result<(), String> {
        self.stop();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            match Self::start_on(self.kind, self.addr) {
                Ok(fresh) => {
                    *self = fresh;
                    return Ok(());
                }
                Err(error) if std::time::Instant::now() > deadline => return Err(error),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }
}

impl Drop for InProcessServer {
    fn drop(&mut self) {
        self.stop();
    }
}
