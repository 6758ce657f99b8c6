//! [`throttled_log!`](crate::throttled_log): a `tracing` event written through a
//! [`LogThrottle`](sockio_core::log_throttle::LogThrottle) of its own, the clock read here, on the
//! runtimes' side of the sans-IO boundary.

/// Writes a `tracing` event (level `error`, `warn`, `info`, ...) through a
/// [`LogThrottle`](sockio_core::log_throttle::LogThrottle) of its own, adding the field
/// `suppressed`: for the runtimes' lines that remote input can trigger at will.
#[macro_export]
macro_rules! throttled_log {
    ($level:ident, $($field_or_message:tt)+) => {{
        static THROTTLE: $crate::__log_throttle::LogThrottle =
            $crate::__log_throttle::LogThrottle::new();
        if let $crate::__log_throttle::LogVerdict::Write { suppressed } =
            THROTTLE.admit(::std::time::Instant::now())
        {
            $crate::__tracing::$level!(suppressed, $($field_or_message)+);
        }
    }};
}

// The lines both runtimes write for what remote input can trigger, written once here. Macros, not
// functions: each call site keeps a throttle of its own (a process may serve with several
// runtimes). Text a client chose is escaped, so it cannot start a line of its own.

/// A handler panicked (`$message`: the panic's text).
#[macro_export]
macro_rules! log_handler_panicked {
    ($handler:expr, $message:expr) => {
        $crate::throttled_log!(
            error,
            handler = $handler,
            panic = %($message).escape_debug(),
            "a handler panicked"
        )
    };
}

/// An event's arguments did not fit its handler's type, and the event was dropped.
#[macro_export]
macro_rules! log_arguments_mismatch {
    ($sid:expr, $namespace:expr, $event:expr, $error:expr) => {
        $crate::throttled_log!(
            warn,
            sid = %$sid,
            namespace = $namespace,
            event = $event,
            error = %($error).to_string().escape_debug(),
            "event arguments do not match the handler's type; event dropped"
        )
    };
}

/// A handler's return value could not be serialized into its acknowledgement.
#[macro_export]
macro_rules! log_unsendable_reply {
    ($event:expr, $error:expr) => {
        $crate::throttled_log!(
            warn,
            event = $event,
            error = %($error).to_string().escape_debug(),
            "the handler's return value cannot be sent as an ack"
        )
    };
}

/// A message from the broker that this server ignores (`$ignored`: why).
#[macro_export]
macro_rules! log_broker_message_ignored {
    ($ignored:expr) => {
        $crate::throttled_log!(
            warn,
            ignored = %($ignored).to_string().escape_debug(),
            "ignoring a message from the broker"
        )
    };
}
