//! The first example of python-socketio's "Getting Started", in Rust: an axum app that serves a
//! page and handles namespace `/chat` (the Python original uses aiohttp and `sio.attach(app)`).
//!
//! ```text
//! cargo run --example getting_started      # then open http://127.0.0.1:8080/
//! ```

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use axum::response::Html;
use axum::routing::get;
use sockio::{Server, Socket, SocketIoLayer};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt::init();
    let sio = Server::builder().build();

    let chat = sio.of("/chat");
    chat.on_connect(|socket: Socket, handshake, _auth| async move {
        // python-socketio's `environ['REMOTE_ADDR']`.
        match handshake.remote_addr {
            Some(addr) => println!("connect {} from {}", socket.sid(), addr.ip()),
            None => println!("connect {} from an unknown address", socket.sid()),
        }
        Ok(())
    });
    chat.on(
        "chat message",
        |socket: Socket, data: serde_json::Value| async move {
            println!("message {data}");
            // `emit('reply', room=sid)`: an event with no data, to this client only.
            if let Err(error) = socket.emit("reply", &()).await {
                eprintln!("reply failed: {error}");
            }
        },
    );
    chat.on_disconnect(|socket: Socket, reason| async move {
        println!("disconnect {} ({reason})", socket.sid());
    });

    let app = Router::new()
        .route(
            "/",
            get(|| async { Html(include_str!("getting_started/index.html")) }),
        )
        .route(
            "/static/socket.io.min.js",
            get(|| async {
                (
                    [("content-type", "text/javascript")],
                    include_str!("chat/static/socket.io.min.js"),
                )
            }),
        )
        // `sio.attach(app)`: the layer answers /socket.io/ and passes everything else on.
        .layer(SocketIoLayer::new(sio))
        // The client's address for the layer (`handshake.remote_addr`): axum's `ConnectInfo`,
        // which sockio cannot name without depending on axum, as a plain `SocketAddr`.
        .layer(axum::middleware::map_request(
            |ConnectInfo(addr): ConnectInfo<SocketAddr>, mut request: Request| async move {
                request.extensions_mut().insert(addr);
                request
            },
        ));

    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:8080".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    // The bound address: with `ADDR=127.0.0.1:0` the OS picks the port (the tests do that).
    println!("listening on http://{}/", listener.local_addr()?);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await?;
    Ok(())
}
