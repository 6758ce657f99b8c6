//! Typed errors for API misuse and failed operations: the core's shared vocabulary, so every
//! runtime reports the same types.

pub use sockio_core::api::{CallError, EmitError, PublishError, ServerError};
