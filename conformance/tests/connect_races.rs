//! A client that leaves while the application's connect handler still runs (a slow lookup): the
//! handler accepts, and the socket's disconnect handler runs with the reason the client left
//! for, on every runtime. The application believes the socket connected once it accepted, so it
//! must hear it leave (python-socketio runs the disconnect handler of such a socket too). Before,
//! the accepted socket joined nothing, its disconnect handler never ran, and whatever the
//! connect handler set up for it stayed (an audit saw it with the official client, over both
//! transports).
//!
//! The order is certain: the client, over polling, asks to join, then sends the Engine.IO close
//! packet; the server's `ok` to that POST means the connection is closed. Only then is the
//! connect handler, waiting all along, let go.

#[path = "support/in_process.rs"]
mod in_process;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::{Duration, Instant};

use in_process::{serve_async, serve_threads};
use serde_json::Value;
use sockio_core::socketio::DisconnectReason;
use sockio_server::{Runtime, Server};
use sockio_testkit::raw_polling::{open, request, session_uri};

/// A bound on every wait: a handler never released, a disconnect handler that never runs.
const WAIT: Duration = Duration::from_secs(10);
/// How often a waiting connect handler looks at its release.
const LOOK: Duration = Duration::from_millis(5);

/// What the test holds: the connect handler's release, whether the handler gave up waiting for
/// it (then it accepted with the race over, and the test proves nothing), and the disconnect
/// reasons.
struct Probe {
    release: Arc<AtomicBool>,
    gave_up: Arc<AtomicBool>,
    left: Receiver<String>,
}

/// What the server's handlers hold of the probe.
#[derive(Clone)]
struct Handlers {
    release: Arc<AtomicBool>,
    gave_up: Arc<AtomicBool>,
}

impl Handlers {
    /// Whether the connect handler may go on (released), noting when it waited too long.
    fn released(&self, waited: Instant) -> bool {
        if self.release.load(Ordering::SeqCst) {
            return true;
        }
        if waited.elapsed() >= WAIT {
            self.gave_up.store(true, Ordering::SeqCst);
            return true;
        }
        false
    }
}

fn probe() -> (Probe, Handlers, Sender<String>) {
    let handlers = Handlers {
        release: Arc::new(AtomicBool::new(false)),
        gave_up: Arc::new(AtomicBool::new(false)),
    };
    let (left_tx, left) = channel();
    let probe = Probe {
        release: handlers.release.clone(),
        gave_up: handlers.gave_up.clone(),
        left,
    };
    (probe, handlers, left_tx)
}

fn async_server<Rt: Runtime>() -> (Server<Rt>, Probe) {
    let (probe, handlers, left) = probe();
    let io = Server::<Rt>::builder().build();
    io.on_connect(move |_socket, _handshake, _auth: Option<Value>| {
        let handlers = handlers.clone();
        async move {
            let waited = Instant::now();
            while !handlers.released(waited) {
                Rt::default().sleep_until(Instant::now() + LOOK).await;
            }
            Ok(())
        }
    });
    io.on_disconnect(move |_socket, reason: DisconnectReason| {
        let _ = left.send(reason.to_string());
        async {}
    });
    (io, probe)
}

fn threads_server() -> (sockio_threads::Server, Probe) {
    let (probe, handlers, left) = probe();
    let io = sockio_threads::Server::builder().build();
    io.on_connect(move |_socket, _handshake, _auth: Option<Value>| {
        let waited = Instant::now();
        while !handlers.released(waited) {
            std::thread::sleep(LOOK);
        }
        Ok(())
    });
    io.on_disconnect(move |_socket, reason: DisconnectReason| {
        let _ = left.send(reason.to_string());
    });
    (io, probe)
}

/// Joins `/` over polling and leaves (the Engine.IO close packet) before the connect handler
/// answers, then lets the handler accept; the disconnect handler must run.
fn leave_during_the_connect_handler(runtime: &str, addr: SocketAddr, probe: &Probe) {
    let uri = session_uri("/socket.io/", &open(addr, "/socket.io/"));
    assert_eq!(
        request(addr, "POST", &uri, b"40").body,
        "ok",
        "{runtime}: CONNECT"
    );
    assert_eq!(
        request(addr, "POST", &uri, b"1").body,
        "ok",
        "{runtime}: close"
    );
    probe.release.store(true, Ordering::SeqCst);
    let reason = probe
        .left
        .recv_timeout(WAIT)
        .unwrap_or_else(|_| panic!("{runtime}: the disconnect handler never ran"));
    assert_eq!(reason, "transport close", "{runtime}");
    assert!(
        !probe.gave_up.load(Ordering::SeqCst),
        "{runtime}: the connect handler was never let go: the close was not answered before it"
    );
}

#[test]
fn a_client_leaving_during_its_connect_handler_is_disconnected_on_tokio() {
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let _entered = runtime.enter();
    let (io, probe) = async_server::<sockio_tokio::Tokio>();
    leave_during_the_connect_handler("tokio", serve_async(&io), &probe);
}

#[test]
fn a_client_leaving_during_its_connect_handler_is_disconnected_on_smol() {
    let (io, probe) = async_server::<sockio_smol::Smol>();
    leave_during_the_connect_handler("smol", serve_async(&io), &probe);
}

#[test]
fn a_client_leaving_during_its_connect_handler_is_disconnected_on_threads() {
    let (io, probe) = threads_server();
    leave_during_the_connect_handler("threads", serve_threads(&io), &probe);
}
