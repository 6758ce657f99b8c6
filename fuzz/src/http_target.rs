//! The `http_request` target: arbitrary HTTP requests (method, path and query, headers, body)
//! through a Socket.IO endpoint and, when routed to one, the connection they name.
//!
//! Format ([`Input`]): a config byte, then requests until the input ends, each a flags byte
//! (bit 0: prefix the target with `/socket.io/?`; bit 1: add WebSocket upgrade headers; bits 2-4:
//! the method, an index into [`METHODS`]), the target text, a header count (low 3 bits), the
//! header names and values as byte strings, and the body.
//! The sessions the requests create are then abandoned (config bit 7: the clients hang up rather
//! than fall silent); the driver checks they all end.

use http::Method;
use sockio_core::engineio::CloseReason;

use crate::driver::{Driver, Sent};
use crate::input::Input;
use crate::stateful::{METHODS, config};

pub mod flag {
    pub const PREFIX: u8 = 1;
    pub const WEBSOCKET: u8 = 2;
    /// The method index is `(flags >> METHOD_SHIFT) & 7`.
    pub const METHOD_SHIFT: u8 = 2;
}

pub fn http_request(data: &[u8]) {
    let mut input = Input::new(data);
    let config_byte = input.u8();
    let mut engine_config = config(config_byte);
    engine_config.engine.cors.allowed_origins =
        sockio_core::http::AllowedOrigins::List(vec!["https://good.example".to_owned()]);
    let mut driver = Driver::new(engine_config);
    let mut requests = 0;
    while !input.is_empty() && requests < 64 {
        requests += 1;
        let flags = input.u8();
        let target = input.text();
        let mut headers: Vec<(&[u8], &[u8])> = Vec::new();
        for _ in 0..(input.u8() & 7) {
            headers.push((input.bytes(), input.bytes()));
        }
        let body = input.bytes();
        if flags & flag::WEBSOCKET != 0 {
            headers.extend_from_slice(&Driver::WS_HEADERS);
        }
        let uri = if flags & flag::PREFIX != 0 {
            format!("/socket.io/?{target}")
        } else {
            target
        };
        let method = METHODS[usize::from((flags >> flag::METHOD_SHIFT) & 7)];
        let Ok(method) = Method::from_bytes(method.as_bytes()) else {
            continue;
        };
        let Some(request) = Driver::build(method, &uri, &headers, body) else {
            continue;
        };
        if let Sent::Answered(response) = driver.request(&request) {
            let status = response.status().as_u16();
            assert!((100..600).contains(&status), "status {status} for {uri:?}");
        }
    }
    // One session is closed by the application, the rest are abandoned by their clients.
    if let Some(sid) = driver.sids().first() {
        driver.command(sid, |c, now| c.close(now, CloseReason::ForcedClose));
    }
    driver.finish(config_byte & 0x80 != 0);
}
