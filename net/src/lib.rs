//! Network pieces every sockio runtime shares and the core must not hold (it does no I/O):
//! listening sockets ([`listen`]) and TLS for broker connections (`tls`, with the `tls` feature,
//! which the runtimes' broker features turn on). WebSocket framing is protocol, so it is the
//! core's (`sockio_core::websocket`).

pub mod listen;
#[cfg(feature = "tls")]
pub mod tls;
