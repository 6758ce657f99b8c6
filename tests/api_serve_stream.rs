//! Serving on a stream that is not a TCP connection, accepted by the application and handed to
//! `sockio_tokio::serve_stream` (tokio-io) or `sockio_smol::serve_stream` (futures-io): a Unix
//! socket, and a TLS connection (tokio-rustls on tokio, futures-rustls on smol). The official
//! client cannot dial a Unix socket itself, so a byte relay forwards its TCP connections to the
//! socket (as a reverse proxy in front of such a server would); for TLS the relay is the TLS
//! client, so the official client's every transport runs over the server's TLS stream.

#![cfg(feature = "tokio")]

mod api_support;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

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
        // No peer IP was handed over (a Unix socket has none; the TLS tests pass `None` too): the
        // handshake says so instead of inventing one.
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

/// A TLS server stream reports the end of its stream in ways a raw socket does not (a read that
/// returns nothing ends it for good): every transport, the WebSocket's included, must work over
/// one. A review found a zero-length read that would have closed every such WebSocket at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smol_serves_a_tls_stream() {
    let (io, mut remotes) = echo_server::<sockio_smol::Smol>();
    let certificates =
        sockio_testkit::tls::TestCertificates::generate().expect("test certificates");
    let acceptor = futures_rustls::TlsAcceptor::from(Arc::new(tls_server_config(&certificates)));
    let connector = futures_rustls::TlsConnector::from(Arc::new(tls_client_config(&certificates)));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let server_addr = listener.local_addr().expect("address");
    let relay = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the relay");
    let relay_addr = relay.local_addr().expect("relay address");
    // smol's executor runs on its own thread, beside the test's tokio runtime: the TLS server,
    // and the relay that is the official client's TLS client.
    std::thread::spawn(move || {
        smol::block_on(async move {
            let listener = smol::Async::new(listener).expect("async listener");
            let relay = smol::Async::new(relay).expect("async relay");
            smol::spawn(async move {
                while let Ok((plain, _)) = relay.accept().await {
                    let connector = connector.clone();
                    smol::spawn(async move {
                        let Ok(tcp) = smol::net::TcpStream::connect(server_addr).await else {
                            return;
                        };
                        let name = rustls_pki_types::ServerName::try_from("localhost")
                            .expect("server name");
                        let Ok(tls) = connector.connect(name, tcp).await else {
                            return;
                        };
                        let (plain_in, plain_out) = smol::io::split(plain);
                        let (tls_in, tls_out) = smol::io::split(tls);
                        let _ = smol::future::race(
                            smol::io::copy(plain_in, tls_out),
                            smol::io::copy(tls_in, plain_out),
                        )
                        .await;
                    })
                    .detach();
                }
            })
            .detach();
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let io = io.clone();
                // What sockio's own listener gives its connections.
                sockio_smol::tune_tcp_stream(&tcp);
                assert!(tcp.get_ref().nodelay().expect("TCP_NODELAY read back"));
                smol::spawn(async move {
                    if let Ok(tls) = acceptor.accept(tcp).await {
                        sockio_smol::serve_stream(io, tls, None).await;
                    }
                })
                .detach();
            }
        })
    });
    check_echo(&format!("http://{relay_addr}"), &mut remotes).await;
}

/// The same over tokio-rustls, served with `sockio_tokio::serve_stream`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_serves_a_tls_stream() {
    let (io, mut remotes) = echo_server::<sockio::tokio::Tokio>();
    let certificates =
        sockio_testkit::tls::TestCertificates::generate().expect("test certificates");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls_server_config(&certificates)));
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls_client_config(&certificates)));
    let (listener, server_addr) = listen().await;
    let serving = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let io = io.clone();
            // What sockio's own listener gives its connections.
            sockio::tokio::tune_tcp_stream(&tcp);
            assert!(tcp.nodelay().expect("TCP_NODELAY read back"));
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(tcp).await {
                    sockio::tokio::serve_stream(io, tls, None).await;
                }
            });
        }
    });
    let (relay, relay_addr) = listen().await;
    let relaying = tokio::spawn(async move {
        while let Ok((mut plain, _)) = relay.accept().await {
            let connector = connector.clone();
            tokio::spawn(async move {
                let Ok(tcp) = tokio::net::TcpStream::connect(server_addr).await else {
                    return;
                };
                let name =
                    rustls_pki_types::ServerName::try_from("localhost").expect("server name");
                let Ok(mut tls) = connector.connect(name, tcp).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut plain, &mut tls).await;
            });
        }
    });
    check_echo(&format!("http://{relay_addr}"), &mut remotes).await;
    serving.abort();
    relaying.abort();
}

fn tls_server_config(certificates: &sockio_testkit::tls::TestCertificates) -> rustls::ServerConfig {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_file_iter(certificates.server_certificate())
        .expect("server certificate")
        .collect::<Result<Vec<_>, _>>()
        .expect("server certificate");
    let key = PrivateKeyDer::from_pem_file(certificates.server_key()).expect("server key");
    rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("server TLS settings")
}

fn tls_client_config(certificates: &sockio_testkit::tls::TestCertificates) -> rustls::ClientConfig {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_file_iter(certificates.ca_file()).expect("CA") {
        roots.add(certificate.expect("CA")).expect("trusted CA");
    }
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}
