//! `examples/smol_hyper.rs` as its users run it: a user's own hyper server on smol, with
//! `sockio::smol::SocketIoLayer` serving the Socket.IO path and the application the rest. The
//! official socket.io-client 4.x drives it over polling only, WebSocket only and
//! polling-then-upgrade; plain HTTP requests reach the application.
//!
//! ```text
//! cargo test -p sockio --no-default-features --features smol --test smol_hyper
//! ```

#![cfg(feature = "smol")]

mod example_support;

use std::io::{Read, Write};

use example_support::{Example, http};
use serde_json::json;
use sockio_testkit::node_script::NodeScript;

/// On each transport mode: an acknowledged echo of a small and of a large payload (larger than
/// one read or write of the I/O adapter), then a disconnect.
const SCRIPT: &str = r#"
for (const via of ["polling", "websocket", "polling+websocket"]) {
  const socket = io(URL, { transports: via.split("+"), reconnection: false, forceNew: true });
  await connected(socket);
  if (via === "polling+websocket" && socket.io.engine.transport.name !== "websocket") {
    await new Promise((resolve) => socket.io.engine.once("upgrade", resolve));
  }
  const [small] = await emitWithAck(socket, "echo", { via });
  const large = "0123456789abcdef".repeat(16 * 1024);
  const [back] = await emitWithAck(socket, "echo", { large });
  out("echoed", { via, id: socket.id, small, large: back.large === large, transport: socket.io.engine.transport.name });
  const gone = new Promise((resolve) => socket.once("disconnect", resolve));
  socket.disconnect();
  out("disconnect", await gone);
}
process.exit(0);
"#;

#[test]
fn a_hyper_server_on_smol_serves_socket_io_and_its_own_application() {
    let mut example = Example::start("smol_hyper", &[("ADDR", "127.0.0.1:0")]);
    let addr = example.listening_addr();

    for (method, target, body) in [
        ("GET", "/", &b""[..]),
        ("GET", "/status?verbose=1", b""),
        ("POST", "/upload", b"0123456789"),
    ] {
        let response = http(addr, method, target, body);
        assert_eq!(response.status, 200, "{method} {target}");
        let path = target.split('?').next().unwrap_or(target);
        assert_eq!(
            response.text(),
            format!(
                "Hello from the application on smol: {method} {path} ({} bytes)\n",
                body.len()
            )
        );
    }
    // The application reads at most 64 KiB of a body: a longer one is refused, from its
    // announced length before a byte of it is read (none is sent here).
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .expect("a read timeout");
    stream
        .write_all(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
        .expect("send the head");
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).expect("the answer");
    assert_eq!(&head, b"HTTP/1.1 413");
    let open = http(addr, "GET", "/socket.io/?EIO=4&transport=polling", b"");
    assert_eq!(open.status, 200);
    assert!(open.text().starts_with("0{\"sid\":"), "{}", open.text());

    let mut client = NodeScript::spawn(&format!("http://{addr}"), SCRIPT);
    for via in ["polling", "websocket", "polling+websocket"] {
        let echoed = client.expect("echoed");
        assert_eq!(echoed["via"], json!(via));
        assert_eq!(echoed["small"], json!({ "via": via }));
        assert_eq!(
            echoed["large"],
            json!(true),
            "{via}: the large echo differs"
        );
        let transport = if via == "polling" {
            "polling"
        } else {
            "websocket"
        };
        assert_eq!(echoed["transport"], json!(transport), "{via}");
        assert_eq!(client.expect("disconnect"), json!("io client disconnect"));
        let id = echoed["id"].as_str().expect("socket id");
        // The connect handler saw the client's address, passed in the request's extensions.
        let connect = example.expect_line(&format!("connect {id} from "));
        assert!(
            connect.contains(&format!("connect {id} from 127.0.0.1:")),
            "{connect}"
        );
        example.expect_exact(&format!("disconnect {id} (client namespace disconnect)"));
    }
    client.finish();
}
