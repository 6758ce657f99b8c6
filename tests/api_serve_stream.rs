//! Serving on a stream that is not a TCP connection: a Unix socket, accepted by the application
//! and handed to `sockio_tokio::serve_stream` (tokio-io) or `sockio_smol::serve_stream`
//! (futures-io). The official client cannot dial a Unix socket itself, so a byte relay forwards
//! its TCP connections to the socket (as a reverse proxy in front of such a server would).

#![cfg(feature = "tokio")]

mod api_support;

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use api_support::{Node, listen, recv};
use serde_json::{Value, json};
use sockio::server::{Args, Runtime, Server, Socket};
use tokio::sync::mpsc;

/// A server that acknowledges `echo` with its arguments (binary attachments included) and reports each connection's remote IP.
fn echo_server<Rt: Runtime>() -> (Server<Rt>, mpsc::UnboundedReceiver<Option<IpAddr>>) {
    let io = Server::<Rt>::builder().build();
    let (tx, rx) = mpsc::unbounded_channel();
    io.on_connect(
        move |_socket: Socket<Rt>, handshake, _auth: Option<Value>| {
            let _ = tx.send(handshake.remote_addr.map(|a| a.ip()));
            async { Ok(()) }
        },
    );
    io.of("/").on_args(
        "echo",
        |_socket: Socket<Rt>, args: Args| async move { args },
    );
    (io, rx)
}

/// Polling only, WebSocket only and polling-then-upgrade, one acknowledged echo with binary on
/// each.
const ECHO_SCRIPT: &str = r#"
for (const transports of [["polling"], ["websocket"], ["polling", "websocket"]]) {
  const socket = io(URL, { transports, reconnection: false, forceNew: true });
  await connected(socket);
  const [answer] = await emitWithAck(socket, "echo", { via: transports.join("+"), bytes: Buffer.from([1, 2, 255]) });
  if (transports.length === 2 && socket.io.engine.transport.name !== "websocket") {
    await new Promise((resolve) => socket.io.engine.once("upgrade", resolve));
  }
  out("echo", { via: answer.via, bytes: [...answer.bytes], transport: socket.io.engine.transport.name });
  socket.disconnect();
}
process.exit(0);
"#;

fn socket_path(runtime: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!(
        "sockio-serve-stream-{runtime}-{}.sock",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&path);
    path
}

/// Forwards every TCP connection to the Unix socket at `path`, bytes only.
async fn relay_to(path: &Path) -> std::net::SocketAddr {
    let (listener, addr) = listen().await;
    let path = path.to_owned();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let path = path.clone();
            tokio::spawn(async move {
                if let Ok(mut unix) = tokio::net::UnixStream::connect(&path).await {
                    let _ = tokio::io::copy_bidirectional(&mut tcp, &mut unix).await;
                }
            });
        }
    });
    addr
}

async fn check_echo(url: &str, remotes: &mut mpsc::UnboundedReceiver<Option<IpAddr>>) {
    let mut client = Node::spawn(url, ECHO_SCRIPT);
    for via in ["polling", "websocket", "polling+websocket"] {
        let echo = client.expect("echo").await;
        assert_eq!(echo["via"], json!(via));
        assert_eq!(echo["bytes"], json!([1, 2, 255]), "{via}");
        let expected = if via == "polling" {
            "polling"
        } else {
            "websocket"
        };
        assert_eq!(echo["transport"], json!(expected), "{via}");
        // A Unix socket has no peer IP: the handshake says so instead of inventing one.
        let remote = recv(remotes, "the connect handler").await;
        assert_eq!(remote, None, "{via}");
    }
    client.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_serves_a_unix_socket() {
    let (io, mut remotes) = echo_server::<sockio::tokio::Tokio>();
    let path = socket_path("tokio");
    let listener = tokio::net::UnixListener::bind(&path).expect("bind the Unix socket");
    let serving = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(sockio::tokio::serve_stream(io.clone(), stream, None));
        }
    });
    let addr = relay_to(&path).await;
    check_echo(&format!("http://{addr}"), &mut remotes).await;
    serving.abort();
    let _ = std::fs::remove_file(&path);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smol_serves_a_unix_socket() {
    let (io, mut remotes) = echo_server::<sockio_smol::Smol>();
    let path = socket_path("smol");
    let listener = smol::net::unix::UnixListener::bind(&path).expect("bind the Unix socket");
    // smol's executor runs on its own thread, beside the test's tokio runtime.
    std::thread::spawn(move || {
        smol::block_on(async move {
            while let Ok((stream, _)) = listener.accept().await {
                smol::spawn(sockio_smol::serve_stream(io.clone(), stream, None)).detach();
            }
        })
    });
    let addr = relay_to(&path).await;
    check_echo(&format!("http://{addr}"), &mut remotes).await;
    let _ = std::fs::remove_file(&path);
}
