//! The bench app on socketioxide (axum), default settings: `echo`, `broadcast`, `join`, `to-room`
//! on `/`, served at `/socket.io/`. Usage: `bench-socketioxide PORT`.

use serde_json::Value;
use socketioxide::SocketIo;
use socketioxide::extract::{AckSender, Data, SocketRef};

fn main() {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async move {
        let (layer, io) = SocketIo::new_layer();
        io.ns("/", async |s: SocketRef| {
            s.on("echo", async |ack: AckSender, Data(data): Data<Value>| {
                let _ = ack.send(&data);
            });
            s.on(
                "broadcast",
                async |io: SocketIo, ack: AckSender, Data(data): Data<Value>| {
                    let _ = io.emit("bcast", &data).await;
                    let _ = ack.send(&());
                },
            );
            s.on(
                "join",
                async |s: SocketRef, ack: AckSender, Data(room): Data<String>| {
                    s.join(room);
                    let _ = ack.send(&true);
                },
            );
            s.on(
                "to-room",
                async |io: SocketIo, ack: AckSender, Data((room, data)): Data<(String, Value)>| {
                    let _ = io.to(room).emit("bcast", &data).await;
                    let _ = ack.send(&());
                },
            );
        });
        let app = axum::Router::new().layer(layer);
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind");
        println!("listening on {port}");
        axum::serve(listener, app).await.expect("serve");
    });
}
