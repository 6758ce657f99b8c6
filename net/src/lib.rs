//! Network pieces every sockio runtime shares and the core must not hold (it does no I/O):
//! listening sockets ([`listen`]) and TLS for broker connections ([`tls`]).

pub mod listen;
pub mod tls;
