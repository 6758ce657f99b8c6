//! The test-server profiles on the async runtimes (tokio, smol), written once against
//! `sockio_server::Runtime`: "socket-io" (what the testkit's scenarios expect; the Node reference
//! server implements the same in `testkit/clients/node/reference-server.js`) and "bench".

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use sockio_server::{Args, CallError, ConnectRefused, Runtime, Server, Socket};

use crate::ProfileOptions;

/// Builds a server with the socket-io profile's options and handlers.
pub fn socket_io<Rt: Runtime>(options: &ProfileOptions) -> Server<Rt> {
    let mut builder = Server::<Rt>::builder();
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
        // One client's events are handled in arrival order, so `messages-in-order` observes the
        // whole path (client → server → client) rather than the scheduling of concurrent handlers.
        .async_handlers(false)
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
            let Some((room, data)) = room_and_rest(args) else {
                return ack(false);
            };
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
        // Operations on any client of the cluster (with `--manager`, the server holding it acts).
        ns.on(
            "enter-room-of",
            |socket: Socket<Rt>, (sid, room): (String, String)| async move {
                let ns = socket.server().of(socket.namespace());
                ns.enter_room(&sid, &room).is_ok()
            },
        );
        ns.on(
            "leave-room-of",
            |socket: Socket<Rt>, (sid, room): (String, String)| async move {
                let ns = socket.server().of(socket.namespace());
                ns.leave_room(&sid, &room).is_ok()
            },
        );
        ns.on(
            "close-room",
            |socket: Socket<Rt>, room: String| async move {
                socket
                    .server()
                    .of(socket.namespace())
                    .close_room(&room)
                    .is_ok()
            },
        );
        ns.on(
            "disconnect-sid",
            |socket: Socket<Rt>, sid: String| async move {
                let ns = socket.server().of(socket.namespace());
                match ns.disconnect(&sid).await {
                    Ok(()) => json!(true),
                    Err(error) => json!({ "error": error.to_string() }),
                }
            },
        );
        ns.on(
            "call-sid",
            |socket: Socket<Rt>, (sid, event): (String, String)| async move {
                let answer = socket
                    .server()
                    .of(socket.namespace())
                    .call(&event, &"from-server")
                    .to(&sid)
                    .timeout(Duration::from_secs(10))
                    .await;
                match answer {
                    Ok(answer) => json!({ "answer": answer.values }),
                    Err(error) => json!({ "error": error.to_string() }),
                }
            },
        );
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

/// Builds a server with the bench profile: default engine settings, `echo`, `broadcast`, `join`
/// and `to-room` on `/`.
pub fn bench<Rt: Runtime>(options: &ProfileOptions) -> Server<Rt> {
    let mut builder = Server::<Rt>::builder();
    if let Some(manager) = &options.manager {
        builder = builder.client_manager(manager.clone());
    }
    let io = builder.build();
    let ns = io.of("/");
    ns.on_args(
        "echo",
        |_socket: Socket<Rt>, args: Args| async move { args },
    );
    ns.on_args("broadcast", |socket: Socket<Rt>, args: Args| async move {
        let _ = socket.server().emit_args("bcast", args).await;
        Args::default()
    });
    ns.on("join", |socket: Socket<Rt>, room: String| async move {
        socket.enter_room(&room).is_ok()
    });
    ns.on_args("to-room", |socket: Socket<Rt>, args: Args| async move {
        if let Some((room, data)) = room_and_rest(args) {
            let _ = socket.server().emit_args("bcast", data).to(&room).await;
        }
        Args::default()
    });
    io
}

/// `[room, rest...]` of a `to-room` event; `None` when the first argument is not a string.
pub(crate) fn room_and_rest(args: Args) -> Option<(String, Args)> {
    let room = args.values.first()?.as_str()?.to_owned();
    let rest = Args::from_parts(args.values[1..].to_vec(), args.attachments);
    Some((room, rest))
}

pub(crate) fn ack(value: impl serde::Serialize) -> Args {
    sockio_core::payload::to_args(&value).unwrap_or_default()
}
