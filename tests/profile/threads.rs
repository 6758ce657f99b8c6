//! The "socket-io" test-server profile on the threads runtime: the same handlers as
//! [`super::socket_io_profile`], as plain closures with blocking calls.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use sockio_threads::{AllowedOrigins, Args, CallError, ConnectRefused, Server, Socket};

use super::PING_TIMEOUT;

/// Builds a server with the profile's options and handlers.
pub fn socket_io_profile() -> Server {
    let io = Server::builder()
        .ping_interval(Duration::from_millis(300))
        .ping_timeout(PING_TIMEOUT)
        .connect_timeout(Duration::from_millis(1000))
        .max_http_buffer_size(1_000_000)
        .cors_allowed_origins(AllowedOrigins::Any)
        .allow_eio3(true)
        .handler_threads(8)
        .build();
    let reasons: Arc<Mutex<HashMap<String, String>>> = Arc::default();
    for name in ["/", "/custom"] {
        let ns = io.of(name);
        ns.on_connect(|socket: Socket, _handshake, auth: Option<Value>| {
            let auth = auth.unwrap_or_else(|| json!({}));
            if auth["refuse"] == json!(true) || auth["refuse"] == json!("true") {
                return Err(ConnectRefused::new("refused by server")
                    .with_data(json!({"reason": "refuse was set"})));
            }
            // Sent right after the CONNECT reply.
            let _ = socket.emit("auth", &auth).send();
            Ok(())
        });
        ns.on_args("message", |socket: Socket, args: Args| {
            let _ = socket.emit_args("message-back", args).send();
            Args::default()
        });
        ns.on_args("message-with-ack", |_socket: Socket, args: Args| args);
        ns.on("join", |socket: Socket, room: String| {
            socket.enter_room(&room).is_ok()
        });
        ns.on("leave", |socket: Socket, room: String| {
            socket.leave_room(&room).is_ok()
        });
        ns.on_args("broadcast", |socket: Socket, args: Args| {
            let _ = socket
                .server()
                .of(socket.namespace())
                .emit_args("broadcast", args)
                .skip_sid(socket.sid())
                .send();
            ack(true)
        });
        ns.on_args("to-room", |socket: Socket, args: Args| {
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
                .send();
            ack(true)
        });
        ns.on(
            "call-client",
            |socket: Socket, timeout_ms: u64| match socket
                .call("server-call", &"question")
                .timeout(Duration::from_millis(timeout_ms))
                .send()
            {
                Ok(answer) => json!({ "answer": answer.values }),
                Err(CallError::Timeout) => json!({ "error": "timeout" }),
                Err(other) => json!({ "error": other.to_string() }),
            },
        );
        ns.on_args("server-ack", |socket: Socket, _args: Args| {
            let replier = socket.clone();
            let _ = socket
                .emit("need-ack", &"please")
                .callback_args(Some(Duration::from_secs(10)), move |answer| {
                    if let Ok(args) = answer {
                        // The callback may emit directly: it runs outside every lock.
                        let _ = replier.emit_args("got-ack", args).send();
                    }
                })
                .send();
            Args::default()
        });
        ns.on("disconnect-me", |socket: Socket, _: Option<Value>| {
            let _ = socket.disconnect();
        });
        let recorded = reasons.clone();
        ns.on("disconnect-reason", move |_socket: Socket, sid: String| {
            recorded.lock().expect("reasons").get(&sid).cloned()
        });
        ns.on("rooms", |socket: Socket, _: Option<Value>| {
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
        });
    }
    io
}

fn ack(value: impl serde::Serialize) -> Args {
    sockio_threads::payload::to_args(&value).unwrap_or_default()
}
