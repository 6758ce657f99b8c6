//! The test-server profiles on the threads runtime: the same handlers as [`crate::profile`], as
//! plain closures with blocking calls.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use sockio_threads::{Args, CallError, ConnectRefused, Server, Socket};

use crate::ProfileOptions;
use crate::profile::{ack, room_and_rest};

/// Builds a server with the socket-io profile's options and handlers.
pub fn socket_io(options: &ProfileOptions) -> Server {
    let mut builder = Server::builder();
    if let Some(manager) = &options.manager {
        builder = builder.client_manager(manager.clone());
    }
    let io = builder
        .ping_interval(options.ping_interval)
        .ping_timeout(options.ping_timeout)
        .upgrade_timeout(options.upgrade_timeout)
        .attachment_timeout(options.attachment_timeout)
        .connect_timeout(Duration::from_millis(5000))
        .max_http_buffer_size(1_000_000)
        .cors_allowed_origins(options.allowed_origins())
        .allow_eio3(true)
        // As in the async profile: one client's events in arrival order.
        .async_handlers(false)
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
            let Some((room, data)) = room_and_rest(args) else {
                return ack(false);
            };
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
        // Operations on any client of the cluster (with `--manager`, the server holding it acts).
        ns.on(
            "enter-room-of",
            |socket: Socket, (sid, room): (String, String)| {
                let ns = socket.server().of(socket.namespace());
                ns.enter_room(&sid, &room).is_ok()
            },
        );
        ns.on(
            "leave-room-of",
            |socket: Socket, (sid, room): (String, String)| {
                let ns = socket.server().of(socket.namespace());
                ns.leave_room(&sid, &room).is_ok()
            },
        );
        ns.on("close-room", |socket: Socket, room: String| {
            socket
                .server()
                .of(socket.namespace())
                .close_room(&room)
                .is_ok()
        });
        ns.on("disconnect-sid", |socket: Socket, sid: String| match socket
            .server()
            .of(socket.namespace())
            .disconnect(&sid)
        {
            Ok(()) => json!(true),
            Err(error) => json!({ "error": error.to_string() }),
        });
        ns.on(
            "call-sid",
            |socket: Socket, (sid, event): (String, String)| {
                let answer = socket
                    .server()
                    .of(socket.namespace())
                    .call(&event, &"from-server")
                    .to(&sid)
                    .timeout(Duration::from_secs(10))
                    .send();
                match answer {
                    Ok(answer) => json!({ "answer": answer.values }),
                    Err(error) => json!({ "error": error.to_string() }),
                }
            },
        );
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

/// Builds a server with the bench profile (see [`crate::profile::bench`]).
pub fn bench(options: &ProfileOptions) -> Server {
    let mut builder = Server::builder();
    if let Some(manager) = &options.manager {
        builder = builder.client_manager(manager.clone());
    }
    let io = builder.build();
    let ns = io.of("/");
    ns.on_args("echo", |_socket: Socket, args: Args| args);
    ns.on_args("broadcast", |socket: Socket, args: Args| {
        let _ = socket.server().emit_args("bcast", args).send();
        Args::default()
    });
    ns.on("join", |socket: Socket, room: String| {
        socket.enter_room(&room).is_ok()
    });
    ns.on_args("to-room", |socket: Socket, args: Args| {
        if let Some((room, data)) = room_and_rest(args) {
            let _ = socket.server().emit_args("bcast", data).to(&room).send();
        }
        Args::default()
    });
    io
}
