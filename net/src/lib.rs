//! Network pieces every sockio runtime shares and the core must not hold (it does no I/O):
//! listening sockets ([`listen`]), the time each of a host's addresses gets to connect
//! ([`connect_share`]), what an accepted connection may hold unsent
//! ([`limit_unsent`]), servers' identities for thread marks ([`next_server_id`]), log lines written through a budget ([`throttled_log!`]: the
//! budget is the core's, the clock and `tracing` are here; and the lines both runtimes write for
//! what remote input can trigger, such as [`log_handler_panicked!`], and an emit that did not reach
//! a recipient, [`report_undelivered`]) and TLS for broker
//! connections (`tls`, with the `tls` feature, which the runtimes' broker features turn on).
//! WebSocket framing is protocol, so it is the core's (`sockio_core::websocket`).

mod connect_share;
pub mod listen;
mod log;
mod publish_answers;
mod server_id;
pub mod sid_table;
mod unsent;
pub use connect_share::connect_share;
pub use log::{LOGGED_TEXT_MAX, for_log, report_unacknowledged, report_undelivered};
pub use publish_answers::{BatchLog, PublishAnswer, answer_batch, answer_settled};
pub use server_id::{ServerId, next_server_id};
pub use unsent::{UNSENT_LIMIT, limit_unsent, tune_client_connection};

// What `throttled_log!` expands to, reachable from the crates that call it.
#[doc(hidden)]
pub use sockio_core::log_throttle as __log_throttle;
#[doc(hidden)]
pub use tracing as __tracing;
#[cfg(feature = "tls")]
pub mod tls;
