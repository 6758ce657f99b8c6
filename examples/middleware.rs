//! The second example of python-socketio's "Getting Started", in Rust: the Socket.IO server wraps
//! an existing web application like `socketio.Middleware(sio, app)` wraps a Flask app. Here the
//! application is a plain hyper service and the server is hyper itself, with no framework.
//!
//! ```text
//! cargo run --example middleware      # Socket.IO at http://127.0.0.1:8000/socket.io/
//! ```

use std::convert::Infallible;

use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use sockio::{Server, Socket, SocketIoLayer};
use tower::ServiceBuilder;

/// The "Flask app": everything that is not Socket.IO.
async fn app(
    _request: http::Request<hyper::body::Incoming>,
) -> Result<http::Response<String>, Infallible> {
    Ok(http::Response::new(
        "Hello from the wrapped application\n".to_owned(),
    ))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt::init();
    let sio = Server::builder().build();
    sio.on_connect(|socket: Socket, handshake, _auth| async move {
        // python-socketio's `environ['REMOTE_ADDR']`: the address put in the request below.
        let from = handshake
            .remote_addr
            .map_or_else(|| "an unknown address".to_owned(), |addr| addr.to_string());
        println!("connect {} from {from}", socket.sid());
        Ok(())
    });
    sio.on(
        "my message",
        |_socket: Socket, data: serde_json::Value| async move {
            println!("message {data}");
        },
    );
    sio.on_disconnect(|socket: Socket, reason| async move {
        println!("disconnect {} ({reason})", socket.sid());
    });

    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:8000".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    // The bound address: with `ADDR=127.0.0.1:0` the OS picks the port (the tests do that).
    println!("listening on http://{}/", listener.local_addr()?);
    loop {
        let (stream, remote) = listener.accept().await?;
        // `app = socketio.Middleware(sio, app)`; the client's address (a `SocketAddr` in the
        // request's extensions) is what connect handlers see as `handshake.remote_addr`.
        let service = ServiceBuilder::new()
            .map_request(move |mut request: http::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(remote);
                request
            })
            .layer(SocketIoLayer::new(sio.clone()))
            .service_fn(app);
        let service = TowerToHyperService::new(service);
        tokio::spawn(async move {
            let served = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
                .await;
            if let Err(error) = served {
                eprintln!("connection error: {error}");
            }
        });
    }
}
