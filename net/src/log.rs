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
