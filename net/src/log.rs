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

/// Events a client sent before the server disconnected its socket were dropped unhandled
/// (`sockio_core::api::drop_events_of_disconnected`).
#[macro_export]
macro_rules! log_events_of_disconnected_dropped {
    ($dropped:expr) => {
        $crate::throttled_log!(
            info,
            dropped = $dropped,
            "events queued for a socket the server disconnected were dropped unhandled"
        )
    };
}

/// A handler panicked (`$message`: the panic's text).
#[macro_export]
macro_rules! log_handler_panicked {
    ($handler:expr, $message:expr) => {
        $crate::throttled_log!(
            error,
            handler = $handler,
            panic = %$crate::for_log(&$message),
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
            event = %$crate::for_log($event),
            error = %$crate::for_log(&($error).to_string()),
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
            event = %$crate::for_log($event),
            error = %$crate::for_log(&($error).to_string()),
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
            ignored = %$crate::for_log(&($ignored).to_string()),
            "ignoring a message from the broker"
        )
    };
}

/// A message from the broker (`$broker`: "Redis", "RabbitMQ") of `$size` bytes, over the
/// `$limit` a subscriber keeps, was dropped. Anyone who can publish on the channel can cause it.
#[macro_export]
macro_rules! log_broker_message_dropped {
    ($broker:expr, $size:expr, $limit:expr) => {
        $crate::throttled_log!(
            error,
            broker = $broker,
            size = $size,
            limit = $limit,
            "dropped a message from the broker larger than the limit"
        )
    };
}

/// A batch of `$messages` messages could not be published (`$error`). Throttled: with the
/// broker down, an application emitting in a loop fails a batch per emit, each after its own
/// connect attempts, and wrote a line for each.
#[macro_export]
macro_rules! log_publish_failed {
    ($error:expr, $messages:expr) => {
        $crate::throttled_log!(
            error,
            error = %$error,
            messages = $messages,
            "publishing to the broker failed"
        )
    };
}

/// Logs what a broker batch's outcome asks for (`$line`, a [`BatchLog`](crate::BatchLog)),
/// from the runtime that expands it: its target and its own throttle.
#[macro_export]
macro_rules! log_batch {
    ($line:expr) => {
        match $line {
            $crate::BatchLog::Failed { error, messages } => {
                $crate::log_publish_failed!(error, messages);
            }
            $crate::BatchLog::Refused { first, messages } => {
                $crate::__tracing::error!(error = %first, messages, "the broker refused messages");
            }
        }
    };
}

/// The most of a text from outside (a client's event name, a broker message's field) a log line
/// holds, in bytes of its escaped form.
pub const LOGGED_TEXT_MAX: usize = 512;

/// `text` escaped (so it cannot start a line of its own) and cut to [`LOGGED_TEXT_MAX`] bytes,
/// saying how much was left out: a 64 MiB field of a broker message, or a 1 MB event name,
/// must not become a log line of its size ten times every 10 s.
pub fn for_log(text: &str) -> String {
    let mut out = String::new();
    for (at, c) in text.char_indices() {
        let escaped = c.escape_debug();
        if out.len() + escaped.len() > LOGGED_TEXT_MAX {
            out.push_str(&format!("... ({} more bytes)", text.len() - at));
            return out;
        }
        out.extend(escaped);
    }
    out
}

/// An emit that did not reach one of its recipients: a warning when it overflowed the client's
/// outbound queue (the client is disconnected with `outbound queue full`, and what was queued
/// for it is lost) or was larger alone than any queue holds (not sent; the client stays; at
/// most 10 lines per 10 s, as a broadcast gives one per recipient), else (the client was
/// already gone) a debug line.
pub fn report_undelivered(
    sid: &sockio_core::engineio::Sid,
    error: &sockio_core::socketio::CommandError,
) {
    use sockio_core::socketio::CommandError;
    if error.is_overflow() {
        tracing::warn!(
            %sid,
            "a client's outbound queue is full (max_buffered_packets / max_buffered_bytes): it is \
             disconnected, and what was queued for it is lost"
        );
    } else if let CommandError::Send(send) = error
        && send.is_oversized()
    {
        crate::throttled_log!(
            warn,
            %sid,
            %send,
            "an emit larger than a client's outbound queue holds (max_buffered_bytes or \
             max_buffered_packets) was not sent to this client; it stays connected"
        );
    } else {
        tracing::debug!(%sid, %error, "emit not delivered to this client");
    }
}

/// A handler's answer (an acknowledgement) that could not be sent: a warning when it was larger
/// alone than the client's outbound queue holds (at most 10 lines per 10 s), else (the client
/// was gone, or its queue overflowed, which is reported as it closes) a debug line.
pub fn report_unacknowledged(error: &sockio_core::socketio::CommandError) {
    use sockio_core::socketio::CommandError;
    if let CommandError::Send(send) = error
        && send.is_oversized()
    {
        crate::throttled_log!(
            warn,
            %send,
            "a handler's answer larger than a client's outbound queue holds \
             (max_buffered_bytes or max_buffered_packets) was not sent; the client stays \
             connected"
        );
    } else {
        tracing::debug!(%error, "acknowledgement not delivered");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logged_text_is_escaped_and_cut() {
        assert_eq!(for_log("a\nb\"c"), "a\\nb\\\"c");
        let long = "x".repeat(10_000);
        let logged = for_log(&long);
        assert!(logged.starts_with(&"x".repeat(LOGGED_TEXT_MAX)), "{logged}");
        assert!(logged.ends_with(&format!("... ({} more bytes)", 10_000 - LOGGED_TEXT_MAX)));
        // Cut between characters, never inside one or inside an escape.
        let logged = for_log(&"é\n".repeat(1_000));
        assert!(logged.len() <= LOGGED_TEXT_MAX + 32, "{}", logged.len());
        assert!(logged.contains("é\\n... ("), "{logged}");
    }
}
