//! Typed errors for API misuse and failed operations: the core's shared vocabulary, the same types
//! as the async runtimes'.

pub use sockio_core::api::{CallError, EmitError, ServerError};
