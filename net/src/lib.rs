//! Network pieces every sockio runtime shares and the core must not hold (it does no I/O):
//! listening sockets ([`listen`]), WebSocket settings ([`websocket`]) and TLS for broker
//! connections ([`tls`]).

pub mod listen;
pub mod tls;
pub mod websocket;
