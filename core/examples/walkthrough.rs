//! Drives one Socket.IO v5 client through the sans-IO core by hand and prints every exchange:
//! polling handshake, namespace connect, an acknowledged event, the upgrade to WebSocket, a binary
//! event and a heartbeat, on a virtual clock.
//!
//! ```text
//! cargo run -p sockio-core --example walkthrough
//! ```

use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::json;
use sockio_core::engineio::{Output, RequestId, SequentialSids, WsAction, WsMessage};
use sockio_core::http::{Request, Response};
use sockio_core::socketio::{Connection, Endpoint, Routing, SocketConfig, SocketEvent};

/// A tiny driver: the parts of a runtime this walkthrough needs.
struct Driver {
    endpoint: Endpoint,
    connection: Option<Box<Connection>>,
    now: Instant,
    next_id: u64,
}

impl Driver {
    fn id(&mut self) -> RequestId {
        self.next_id += 1;
        RequestId(self.next_id)
    }

    fn request(&mut self, method: &str, uri: &str, body: &[u8], upgrade: bool) -> RequestId {
        let mut builder = http::Request::builder().method(method).uri(uri);
        if upgrade {
            builder = builder
                .header("connection", "Upgrade")
                .header("upgrade", "websocket")
                .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
                .header("sec-websocket-version", "13");
        }
        let request: Request = builder
            .body(Bytes::copy_from_slice(body))
            .expect("a valid request");
        let id = self.id();
        let shown = if body.is_empty() {
            String::new()
        } else {
            format!("  body {:?}", String::from_utf8_lossy(body))
        };
        println!("client -> {method} {uri}{shown}");
        let exists = |sid: &str| {
            self.connection
                .as_ref()
                .is_some_and(|c| c.sid().as_str() == sid)
        };
        match self.endpoint.handle_request(self.now, id, &request, exists) {
            Routing::Created {
                connection,
                response,
                ..
            } => {
                self.connection = Some(connection);
                if let Some(response) = response {
                    show_response(&response);
                }
            }
            Routing::Existing { websocket, .. } => {
                let connection = self.connection.as_mut().expect("routed to our connection");
                if websocket {
                    match connection.accept_websocket(self.now, id, &request) {
                        Ok(()) => println!("server -> 101 Switching Protocols"),
                        Err(response) => show_response(&response),
                    }
                } else {
                    connection.handle_request(self.now, id, &request);
                }
            }
            Routing::Respond(response) => show_response(&response),
            _ => println!("server -> (not handled)"),
        }
        self.drain();
        id
    }

    fn ws_send(&mut self, conn: RequestId, text: &str) {
        println!("client -> ws {text:?}");
        let now = self.now;
        if let Some(connection) = self.connection.as_mut() {
            connection.handle_ws_message(now, conn, WsMessage::Text(text.into()));
        }
        self.drain();
    }

    /// The drain rule: after every input, empty the outputs and events, then look at the deadline.
    fn drain(&mut self) {
        let now = self.now;
        let Some(connection) = self.connection.as_mut() else {
            return;
        };
        loop {
            let mut progressed = false;
            while let Some(output) = connection.poll_output() {
                progressed = true;
                match output {
                    Output::Respond { response, .. } => show_response(&response),
                    Output::WebSocketReady { conn } => {
                        while let Some(action) = connection.poll_ws(conn) {
                            match action {
                                WsAction::Send(WsMessage::Text(text)) => {
                                    println!("server -> ws {:?}", &*text)
                                }
                                WsAction::Send(WsMessage::Binary(data)) => {
                                    println!("server -> ws binary {:?}", data.as_ref())
                                }
                                WsAction::Close => println!("server -> ws close"),
                            }
                        }
                    }
                    _ => {}
                }
            }
            while let Some(event) = connection.poll_event() {
                progressed = true;
                println!("   app <- {event:?}");
                // The application: accept every namespace, answer acks with "got it".
                match event {
                    SocketEvent::Connect { namespace, .. } => {
                        let sid = connection.accept_connect(now, &namespace).expect("pending");
                        println!("   app -> accept_connect({namespace}) = {sid}");
                    }
                    SocketEvent::Event {
                        namespace,
                        ack_id: Some(ack_id),
                        ..
                    } => {
                        connection
                            .ack(now, &namespace, ack_id, vec![json!("got it")], vec![])
                            .expect("connected");
                        println!("   app -> ack({ack_id}, \"got it\")");
                    }
                    _ => {}
                }
            }
            if !progressed {
                break;
            }
        }
        if let Some(deadline) = connection.poll_timeout() {
            println!("   (next deadline in {:?})", deadline - now);
        }
    }

    fn advance(&mut self, by: Duration) {
        self.now += by;
        println!("-- clock +{by:?}");
        let now = self.now;
        if let Some(connection) = self.connection.as_mut() {
            connection.handle_timeout(now);
        }
        self.drain();
    }
}

fn show_response(response: &Response) {
    println!(
        "server -> {} {:?}",
        response.status().as_u16(),
        String::from_utf8_lossy(response.body())
    );
}

fn main() {
    let mut driver = Driver {
        endpoint: Endpoint::new(SocketConfig::default(), SequentialSids::default()),
        connection: None,
        now: Instant::now(),
        next_id: 0,
    };
    let base = "/socket.io/?EIO=4&transport=polling";
    driver.request("GET", base, b"", false);
    let sid = driver
        .connection
        .as_ref()
        .map(|c| c.sid().to_string())
        .expect("handshake made a connection");
    let polling = format!("{base}&sid={sid}");
    driver.request("POST", &polling, b"40{\"token\":\"secret\"}", false);
    driver.request("GET", &polling, b"", false);
    driver.request(
        "POST",
        &polling,
        b"421[\"hello\",{\"from\":\"client\"}]",
        false,
    );
    driver.request("GET", &polling, b"", false);

    println!("\n== upgrade to WebSocket");
    let held = driver.request("GET", &polling, b"", false);
    println!("   (GET {held:?} is held: nothing to send yet)");
    let ws = driver.request(
        "GET",
        &format!("/socket.io/?EIO=4&transport=websocket&sid={sid}"),
        b"",
        true,
    );
    driver.ws_send(ws, "2probe");
    driver.ws_send(ws, "5");

    println!("\n== the server emits, with an attachment");
    let now = driver.now;
    if let Some(connection) = driver.connection.as_mut() {
        let placeholder = json!({"_placeholder": true, "num": 0});
        connection
            .emit(
                now,
                "/",
                "image",
                vec![placeholder],
                vec![Bytes::from_static(&[0xde, 0xad, 0xbe, 0xef])],
                None,
            )
            .expect("connected to /");
    }
    driver.drain();

    println!("\n== heartbeat");
    driver.advance(Duration::from_secs(25));
    driver.ws_send(ws, "3");
    driver.advance(Duration::from_secs(25));
    driver.advance(Duration::from_secs(20));
}
