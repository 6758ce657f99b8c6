//! The "socket-io" test-server profile (the one the testkit's scenarios expect; the Node reference
//! server implements the same in `testkit/clients/node/reference-server.js`), written with the
//! public sockio API, and a [`TestServer`] that runs it in-process on its own tokio runtime.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use sockio::{AllowedOrigins, Args, CallError, ConnectRefused, Server, Socket};
use sockio_testkit::TestServer;

/// The profile's ping timeout here. The conformance profile says 200 ms; on a loaded two-core CI
/// machine a client process can be starved that long and every socket then dies of "ping timeout"
/// at once. No scenario of these tests measures the heartbeat, so a second keeps them about
/// protocol behaviour rather than scheduler luck.
pub const PING_TIMEOUT: Duration = Duration::from_millis(1000);

/// Builds a server with the profile's options and handlers.
pub fn socket_io_profile() -> Server {
    let io = Server::builder()
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
            |socket: Socket, _handshake, auth: Option<Value>| async move {
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
        ns.on_args("message", |socket: Socket, args: Args| async move {
            let _ = socket.emit_args("message-back", args).await;
            Args::default()
        });
        ns.on_args(
            "message-with-ack",
            |_socket: Socket, args: Args| async move { args },
        );
        ns.on("join", |socket: Socket, room: String| async move {
            socket.enter_room(&room).is_ok()
        });
        ns.on("leave", |socket: Socket, room: String| async move {
            socket.leave_room(&room).is_ok()
        });
        ns.on_args("broadcast", |socket: Socket, args: Args| async move {
            let _ = socket
                .server()
                .of(socket.namespace())
                .emit_args("broadcast", args)
                .skip_sid(socket.sid())
                .await;
            ack(true)
        });
        ns.on_args("to-room", |socket: Socket, args: Args| async move {
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
            |socket: Socket, timeout_ms: u64| async move {
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
        ns.on_args("server-ack", |socket: Socket, _args: Args| async move {
            let replier = socket.clone();
            let _ = socket
                .emit("need-ack", &"please")
                .callback_args(Some(Duration::from_secs(10)), move |answer| {
                    if let Ok(args) = answer {
                        let replier = replier.clone();
                        tokio::spawn(async move {
                            let _ = replier.emit_args("got-ack", args).await;
                        });
                    }
                })
                .await;
            Args::default()
        });
        ns.on(
            "disconnect-me",
            |socket: Socket, _: Option<Value>| async move {
                let _ = socket.disconnect().await;
            },
        );
        let recorded = reasons.clone();
        ns.on("disconnect-reason", move |_socket: Socket, sid: String| {
            let reason = recorded.lock().expect("reasons").get(&sid).cloned();
            async move { reason }
        });
        ns.on("rooms", |socket: Socket, _: Option<Value>| async move {
            let mut rooms = socket.rooms();
            rooms.sort();
            rooms
        });
        let recorded = reasons.clone();
        ns.on_disconnect(move |socket: Socket, reason| {
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

/// The profile served in-process on a dedicated tokio runtime; a restart drops the runtime (every
/// connection dies at once, as when a process is killed) and serves a fresh server on the same port.
pub struct InProcessServer {
    runtime: Option<tokio::runtime::Runtime>,
    addr: SocketAddr,
}

impl InProcessServer {
    pub fn start() -> Result<Self, String> {
        Self::start_on("127.0.0.1:0".parse().map_err(|e| format!("{e}"))?)
    }

    fn start_on(addr: SocketAddr) -> Result<Self, String> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let listener =
            std::net::TcpListener::bind(addr).map_err(|e| format!("bind {addr}: {e}"))?;
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
            let io = socket_io_profile();
            if let Err(error) = io.serve_listener(listener).await {
                eprintln!("test server stopped: {error}");
            }
        });
        Ok(InProcessServer {
            runtime: Some(runtime),
            addr,
        })
    }
}

impl TestServer for InProcessServer {
    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn restart(&mut self) -> Result<(), String> {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            match Self::start_on(self.addr) {
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
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
