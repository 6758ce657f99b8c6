//! 2,000 concurrent WebSocket clients (socket.io-client 4.x in one Node process) against the
//! threads runtime: all connect, then all receive one broadcast. Prints the time to connect them
//! all, the server's resident memory and its thread count (about 2,000 threads: one per
//! connection; a few seconds in a debug build on 2 cores, so it runs with the rest of the suite):
//!
//! ```sh
//! cargo test -p sockio-threads --test two_thousand -- --nocapture
//! ```

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sockio_threads::{Server, Socket};

const CLIENTS: usize = 2000;

const CLIENT_SCRIPT: &str = r#"
const { io } = require('socket.io-client');
const [url, n] = [process.argv[2], Number(process.argv[3])];
let connected = 0, received = 0, failed = 0;
const sockets = [];
const started = Date.now();
for (let i = 0; i < n; i++) {
  const s = io(url, { forceNew: true, transports: ['websocket'], reconnection: false, timeout: 60000 });
  s.on('connect', () => { if (++connected === n) console.log(`connected ${n} ${Date.now() - started}`); });
  s.on('connect_error', (e) => { failed++; console.log(`connect_error ${e.message}`); });
  s.on('hello', (d) => {
    if (d === 'world' && ++received === n) {
      console.log(`received ${n}`);
      for (const s of sockets) s.close();
      setTimeout(() => process.exit(0), 200);
    }
  });
  sockets.push(s);
}
setTimeout(() => { console.log(`timeout connected=${connected} received=${received} failed=${failed}`); process.exit(1); }, 120000);
"#;

fn proc_status(field: &str) -> String {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|line| line.starts_with(field))
        .map(|line| line[field.len()..].trim().to_owned())
        .unwrap_or_default()
}

#[test]
fn two_thousand_websocket_clients_connect_and_get_a_broadcast() {
    let io = Server::builder().build();
    let connects = Arc::new(AtomicUsize::new(0));
    let counter = connects.clone();
    io.on_connect(move |_socket: Socket, _handshake, _auth| {
        counter.fetch_add(1, Ordering::SeqCst);
        Ok(())
    });
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let serving = io.clone();
    std::thread::spawn(move || serving.serve_std(listener));

    sockio_testkit::ensure_clients().expect("installing the official clients");
    let modules =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../testkit/clients/node_modules");
    let script = std::env::temp_dir().join(format!("sockio-2000-{}.js", std::process::id()));
    std::fs::write(&script, CLIENT_SCRIPT).expect("write the client script");
    let before = (proc_status("VmRSS:"), proc_status("Threads:"));
    let started = Instant::now();
    let mut child = Command::new("node")
        .arg(&script)
        .arg(format!("http://{addr}"))
        .arg(CLIENTS.to_string())
        .env("NODE_PATH", &modules)
        .stdout(Stdio::piped())
        .spawn()
        .expect("node");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();

    let mut client_reported = None;
    for line in lines.by_ref() {
        let line = line.expect("read");
        if let Some(rest) = line.strip_prefix("connected ") {
            client_reported = Some(rest.to_owned());
            break;
        }
        assert!(!line.starts_with("timeout"), "clients: {line}");
        println!("client: {line}");
    }
    let connect_time = started.elapsed();
    // Every connect handler has run once the clients saw their CONNECT.
    let deadline = Instant::now() + Duration::from_secs(10);
    while connects.load(Ordering::SeqCst) < CLIENTS && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(connects.load(Ordering::SeqCst), CLIENTS);
    assert_eq!(io.connection_count(), CLIENTS);
    let rss = proc_status("VmRSS:");
    let threads = proc_status("Threads:");

    let broadcast = Instant::now();
    io.emit("hello", &"world").send().expect("broadcast");
    let mut all_received = false;
    for line in lines.by_ref() {
        let line = line.expect("read");
        if line == format!("received {CLIENTS}") {
            all_received = true;
            break;
        }
        assert!(!line.starts_with("timeout"), "clients: {line}");
    }
    let broadcast_time = broadcast.elapsed();
    let _ = child.wait();
    let _ = std::fs::remove_file(&script);
    assert!(all_received, "not every client got the broadcast");
    println!(
        "{CLIENTS} WebSocket clients: all connected in {connect_time:.2?} (client-side {} ms), \
         broadcast received by all in {broadcast_time:.2?}; server VmRSS {rss} (before: {}), \
         Threads {threads} (before: {})",
        client_reported.unwrap_or_default(),
        before.0,
        before.1
    );
    io.shutdown(Duration::from_secs(5));
}
