//! Embedding on smol: your own hyper server on smol's executor, where sockio's `SocketIoLayer`
//! answers the Socket.IO path and passes every other request to your application (the smol
//! counterpart of `examples/middleware.rs`).
//!
//! ```text
//! cargo run --example smol_hyper --no-default-features --features smol
//! ADDR=127.0.0.1:9000 cargo run --example smol_hyper --no-default-features --features smol
//! ```
//!
//! hyper reads and writes through its own I/O traits; smol's sockets implement the futures-io
//! ones. `sockio::smol::FuturesIo` connects the two.

/// The application: everything that is not Socket.IO.
#[cfg(feature = "smol")]
mod app {
    use std::convert::Infallible;

    use http::StatusCode;
    use http_body_util::{BodyExt, Limited};

    /// The largest request body the application reads: anything a client sends is read into
    /// memory, so a body with no bound would let one client take all of it.
    pub const MAX_BODY: usize = 64 * 1024;

    pub async fn handle(
        request: http::Request<hyper::body::Incoming>,
    ) -> Result<http::Response<String>, Infallible> {
        let (parts, body) = request.into_parts();
        let announced = parts
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
        // Refused before reading when its length says so; a chunked body, once it goes past.
        if announced.is_some_and(|length| length > MAX_BODY as u64) {
            return Ok(too_large());
        }
        let body = match Limited::new(body, MAX_BODY).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(_) => return Ok(too_large()),
        };
        Ok(http::Response::new(format!(
            "Hello from the application on smol: {} {} ({} bytes)\n",
            parts.method,
            parts.uri.path(),
            body.len()
        )))
    }

    fn too_large() -> http::Response<String> {
        let mut response = http::Response::new(format!("request body over {MAX_BODY} bytes\n"));
        *response.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
        response
    }
}

#[cfg(feature = "smol")]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    use hyper::server::conn::http1;
    use hyper_util::service::TowerToHyperService;
    use sockio::smol::{FuturesIo, Server, Socket, SocketIoLayer};
    use tower::ServiceBuilder;

    tracing_subscriber::fmt::init();
    smol::block_on(async {
        let sio = Server::builder().build();
        sio.on_connect(|socket: Socket, handshake, _auth| async move {
            let from = handshake
                .remote_addr
                .map(|a| a.to_string())
                .unwrap_or_default();
            println!("connect {} from {from}", socket.sid());
            Ok(())
        });
        // The acknowledgement is the handler's return value: the data, back to the sender.
        sio.on(
            "echo",
            |_socket: Socket, data: serde_json::Value| async move { data },
        );
        sio.on_disconnect(|socket: Socket, reason| async move {
            println!("disconnect {} ({reason})", socket.sid());
        });

        let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:8000".to_owned());
        let listener = smol::net::TcpListener::bind(&addr).await?;
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
                .service_fn(app::handle);
            smol::spawn(async move {
                // `with_upgrades`: WebSocket connections are handed to sockio after the 101.
                let served = http1::Builder::new()
                    .serve_connection(FuturesIo::new(stream), TowerToHyperService::new(service))
                    .with_upgrades()
                    .await;
                if let Err(error) = served {
                    eprintln!("connection error: {error}");
                }
            })
            .detach();
        }
    })
}

#[cfg(not(feature = "smol"))]
fn main() {
    eprintln!("this example needs the smol feature: --no-default-features --features smol");
    std::process::exit(1);
}
