//! A raw Engine.IO echo server with several clients at once (v4/v3, polling/WebSocket), each
//! driven independently on the virtual clock: one client's ping timeout does not touch the others.

mod support;

use std::time::Duration;

use sockio_core::engineio::{
    CloseReason, Endpoint, EngineConfig, EngineEvent, PacketData, RequestId, WsAction, WsMessage,
};
use support::*;

/// The application: echoes every message of every session back to it.
fn echo_all(h: &mut Harness<Endpoint>, log: &mut Vec<(String, EngineEvent)>) {
    let sids: Vec<String> = h.events.keys().map(|s| s.to_string()).collect();
    for sid in sids {
        for event in h.take_events(&sid) {
            if let EngineEvent::Message(data) = &event
                && h.sessions.contains_key(sid.as_str())
            {
                let data = data.clone();
                h.command(&sid, |s, now| s.send(now, data)).unwrap();
            }
            log.push((sid.clone(), event));
        }
    }
}

#[derive(Debug)]
enum Link {
    Polling {
        uri: String,
        held: Option<RequestId>,
    },
    WebSocket {
        conn: RequestId,
    },
}

/// A scripted client: sends a message every 5 s, answers pings (v4) or pings (v3), unless muted.
#[derive(Debug)]
struct Client {
    name: &'static str,
    sid: String,
    v3: bool,
    link: Link,
    sent: Vec<String>,
    received: Vec<String>,
    /// Stop doing heartbeat duty (and stop polling) from this second on.
    mute_at: Option<u64>,
}

impl Client {
    fn connect(h: &mut Harness<Endpoint>, name: &'static str, eio: &str, ws: bool) -> Client {
        let v3 = eio == "3";
        if ws {
            let conn = h
                .ws_connect(&format!("/engine.io/?EIO={eio}&transport=websocket"))
                .unwrap();
            let open = h.ws_take_text(conn);
            Client {
                name,
                sid: open_sid(&open[0]),
                v3,
                link: Link::WebSocket { conn },
                sent: Vec::new(),
                received: Vec::new(),
                mute_at: None,
            }
        } else {
            let sid = h.open_polling(&format!("EIO={eio}"));
            let uri = format!("/engine.io/?EIO={eio}&transport=polling&sid={sid}");
            Client {
                name,
                sid,
                v3,
                link: Link::Polling { uri, held: None },
                sent: Vec::new(),
                received: Vec::new(),
                mute_at: None,
            }
        }
    }

    /// Splits a polling body into packets.
    fn split(&self, body: &str) -> Vec<String> {
        if !self.v3 {
            return body.split('\x1e').map(str::to_owned).collect();
        }
        // v3: `<len>:<packet>`; the test only uses ASCII, so UTF-16 units are bytes.
        let mut packets = Vec::new();
        let mut rest = body;
        while let Some(colon) = rest.find(':') {
            let len: usize = rest[..colon].parse().unwrap();
            packets.push(rest[colon + 1..colon + 1 + len].to_owned());
            rest = &rest[colon + 1 + len..];
        }
        packets
    }

    fn write(&mut self, h: &mut Harness<Endpoint>, packet: &str) {
        match &self.link {
            Link::Polling { uri, .. } => {
                let body = if self.v3 {
                    format!("{}:{packet}", packet.len())
                } else {
                    packet.to_owned()
                };
                let uri = uri.clone();
                assert_eq!(h.post(&uri, body.as_bytes()).body_text(), "ok");
            }
            Link::WebSocket { conn } => h.ws_send_text(*conn, packet),
        }
    }

    /// Reads what arrived and reacts to it.
    fn read(&mut self, h: &mut Harness<Endpoint>, second: u64) {
        let muted = self.mute_at.is_some_and(|m| second >= m);
        let packets = match &mut self.link {
            Link::Polling { uri, held } => {
                if muted {
                    return; // stops polling altogether
                }
                let uri = uri.clone();
                let body = match held.take() {
                    Some(id) => match h.take_response(id) {
                        Some(response) => Some(body_text(&response)),
                        None => {
                            *held = Some(id);
                            None
                        }
                    },
                    None => match h.get(&uri) {
                        Sent::Answered(response) => Some(body_text(&response)),
                        Sent::Held(id) => {
                            *held = Some(id);
                            None
                        }
                        Sent::NotHandled => unreachable!(),
                    },
                };
                body.map(|b| self.split(&b)).unwrap_or_default()
            }
            Link::WebSocket { conn } => h
                .ws_take(*conn)
                .into_iter()
                .map(|action| match action {
                    WsAction::Send(WsMessage::Text(t)) => t.to_string(),
                    WsAction::Send(WsMessage::Binary(_)) => "<binary>".to_owned(),
                    WsAction::Close => "<close>".to_owned(),
                })
                .collect(),
        };
        for packet in packets {
            match packet.as_str() {
                "2" if !self.v3 => {
                    if !muted {
                        self.write(h, "3");
                    }
                }
                "3" | "6" if self.v3 => {}
                "6" => {}
                p if p.starts_with('4') => self.received.push(p[1..].to_owned()),
                other => self.received.push(format!("<{other}>")),
            }
        }
    }

    fn tick(&mut self, h: &mut Harness<Endpoint>, second: u64) {
        let muted = self.mute_at.is_some_and(|m| second >= m);
        if !h.sessions.contains_key(self.sid.as_str()) {
            return;
        }
        if second.is_multiple_of(5) {
            let message = format!("{}-{second}", self.name);
            self.write(h, &format!("4{message}"));
            self.sent.push(message);
        }
        if self.v3 && second.is_multiple_of(20) && !muted {
            self.write(h, "2");
        }
    }
}

#[test]
fn several_sessions_echo_independently_and_one_timeout_affects_only_its_own() {
    let mut config = EngineConfig::default();
    config.allow_eio3 = true;
    let mut h = Harness::engine(config);
    let mut clients = [
        Client::connect(&mut h, "v4poll", "4", false),
        Client::connect(&mut h, "v4ws", "4", true),
        Client::connect(&mut h, "v3poll", "3", false),
        Client::connect(&mut h, "v3ws", "3", true),
        Client::connect(&mut h, "quitter", "4", false),
    ];
    // The quitter stops polling and ponging at 30 s: its ping goes out at 50 s (25 s after the
    // pong it sent at 25 s) and times out at 70 s.
    clients[4].mute_at = Some(30);
    let mut log = Vec::new();
    let mut quitter_closed_at = None;
    for second in 1..=150 {
        h.advance(Duration::from_secs(1));
        echo_all(&mut h, &mut log);
        for client in clients.iter_mut() {
            client.tick(&mut h, second);
            echo_all(&mut h, &mut log);
            client.read(&mut h, second);
            echo_all(&mut h, &mut log);
        }
        if quitter_closed_at.is_none() && !h.sessions.contains_key(clients[4].sid.as_str()) {
            quitter_closed_at = Some(second);
        }
    }
    // One last read for every still-open client.
    for client in clients.iter_mut() {
        client.read(&mut h, 151);
    }

    assert_eq!(quitter_closed_at, Some(70));
    let closes: Vec<&(String, EngineEvent)> = log
        .iter()
        .filter(|(_, e)| matches!(e, EngineEvent::Closed(_)))
        .collect();
    assert_eq!(
        closes,
        vec![&(
            clients[4].sid.clone(),
            EngineEvent::Closed(CloseReason::PingTimeout)
        )]
    );
    for client in &clients[..4] {
        assert!(
            h.sessions.contains_key(client.sid.as_str()),
            "{} was closed",
            client.name
        );
        assert_eq!(client.sent.len(), 30, "{}", client.name);
        assert_eq!(client.received, client.sent, "{}", client.name);
        let messages: Vec<&EngineEvent> = log
            .iter()
            .filter(|(sid, e)| sid == &client.sid && matches!(e, EngineEvent::Message(_)))
            .map(|(_, e)| e)
            .collect();
        assert_eq!(messages.len(), 30, "{}", client.name);
        assert_eq!(
            messages[0],
            &EngineEvent::Message(PacketData::Text(
                format!("{}-5", client.name).as_str().into()
            ))
        );
    }
    // The quitter's echoes stopped when it stopped polling; what it sent before was echoed.
    let quitter = &clients[4];
    assert_eq!(quitter.received, quitter.sent[..quitter.received.len()]);
    assert!(quitter.received.len() >= 5);
}
