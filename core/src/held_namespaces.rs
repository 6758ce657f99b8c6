//! A connection's events kept in order per namespace while a connect or disconnect handler runs
//! apart from its dispatcher.
//!
//! A connection's events are handled in arrival order, by one dispatcher at a time. Event
//! handlers may run apart (with async handlers), but a connect or disconnect handler that waited
//! (for a database, a broker, another event) held the dispatcher, and with it every later event of
//! its client on every namespace; python-socketio with async handlers and the Node.js server go
//! on with the client's other namespaces. So, with async handlers, the runtimes run such a handler
//! apart and *hold* its namespace here. The dispatcher then parks that namespace's later events
//! (its socket's departure, a client joining it again) and the connection's end (`Closed`, which
//! comes last), until the handler is done and the namespace is released; the parked events then go
//! back to the front of the queue, in their order.
//!
//! Parked events are few: the core refuses a client's packets for a namespace whose connect is
//! unanswered, and a socket that left sends nothing, so a held namespace parks its departure or a
//! new connect, and at most an event that raced its connect's answer.

use std::collections::VecDeque;

use bytestring::ByteString;

use crate::api::Backlog;
use crate::socketio::SocketEvent;

/// The namespaces of a connection whose connect or disconnect handler runs apart, and the events
/// parked behind them. A pointer's size while nothing is held (every connection has one).
#[derive(Debug, Default)]
pub struct HeldNamespaces(Option<Box<Holds>>);

#[derive(Debug, Default)]
struct Holds {
    /// One entry per handler running apart (a namespace's next lifecycle event parks behind it,
    /// so a namespace is held at most once).
    held: Vec<ByteString>,
    /// Events taken from the queue while their namespace (or, for `Closed`, any) was held, with
    /// their weights, in the order they were taken.
    parked: VecDeque<(SocketEvent, usize)>,
}

/// The namespace of a connect or disconnect: the events whose handler may run apart.
pub fn lifecycle_namespace(event: &SocketEvent) -> Option<&ByteString> {
    match event {
        SocketEvent::Connect { namespace, .. } | SocketEvent::Disconnect { namespace, .. } => {
            Some(namespace)
        }
        _ => None,
    }
}

/// The namespace of an event the dispatcher hands to a handler. (Acknowledgements go to their
/// callbacks, never through the dispatcher.)
fn dispatched_namespace(event: &SocketEvent) -> Option<&ByteString> {
    match event {
        SocketEvent::Event { namespace, .. } => Some(namespace),
        other => lifecycle_namespace(other),
    }
}

impl HeldNamespaces {
    /// Whether no namespace is held (nothing is parked then): the dispatcher's fast path.
    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// Holds `namespace`: its connect or disconnect handler, just taken from the queue, runs
    /// apart. Call before the dispatcher takes its next event.
    pub fn hold(&mut self, namespace: ByteString) {
        self.0.get_or_insert_default().held.push(namespace);
    }

    /// Parks `event` if it must wait for a held namespace: one of its own, or, for `Closed`,
    /// any. Gives it back otherwise.
    pub fn park(&mut self, event: SocketEvent, weight: usize) -> Option<(SocketEvent, usize)> {
        let Some(holds) = self.0.as_mut() else {
            return Some((event, weight));
        };
        let waits = match &event {
            SocketEvent::Closed(_) => true,
            other => dispatched_namespace(other).is_some_and(|of| holds.held.contains(of)),
        };
        if waits {
            holds.parked.push_back((event, weight));
            return None;
        }
        Some((event, weight))
    }

    /// Parks the events at the front of `queue` that must wait for a held namespace, uncounting
    /// them from `backlog`, so that the next event there is one that need not (or none). The
    /// runtimes' dispatchers call it before taking an event.
    pub fn park_front(
        &mut self,
        queue: &mut VecDeque<(SocketEvent, usize)>,
        backlog: &mut Backlog,
    ) {
        while !self.is_empty() {
            let Some((event, weight)) = queue.pop_front() else {
                return;
            };
            match self.park(event, weight) {
                Some(unparked) => {
                    queue.push_front(unparked);
                    return;
                }
                None => backlog.remove(weight),
            }
        }
    }

    /// Releases `namespace` (its handler is done): the events parked behind it, then a parked
    /// `Closed` once nothing is held, go back to the front of `queue`, in their order, counted in
    /// `backlog` again. Returns whether any went back.
    pub fn release(
        &mut self,
        namespace: &str,
        queue: &mut VecDeque<(SocketEvent, usize)>,
        backlog: &mut Backlog,
    ) -> bool {
        let Some(holds) = self.0.as_mut() else {
            return false;
        };
        let Some(at) = holds.held.iter().position(|held| held == namespace) else {
            return false;
        };
        holds.held.swap_remove(at);
        let everything = holds.held.is_empty();
        let mut back = Vec::new();
        let mut kept = VecDeque::new();
        for (event, weight) in holds.parked.drain(..) {
            let goes_back = match &event {
                SocketEvent::Closed(_) => everything,
                other => dispatched_namespace(other).is_some_and(|of| of == namespace),
            };
            if goes_back {
                back.push((event, weight));
            } else {
                kept.push_back((event, weight));
            }
        }
        holds.parked = kept;
        if everything {
            // (Nothing is parked without a hold.)
            self.0 = None;
        }
        let any = !back.is_empty();
        for (event, weight) in back.into_iter().rev() {
            backlog.add(weight);
            if matches!(event, SocketEvent::Closed(_)) {
                // Last: behind the events of other namespaces put back before and not yet
                // taken (nothing follows it from the connection).
                queue.push_back((event, weight));
            } else {
                queue.push_front((event, weight));
            }
        }
        any
    }

    /// The parked events, for the runtimes' look at the departures waiting for dispatch
    /// ([`callbacks_hold_dispatch`](crate::api::callbacks_hold_dispatch)).
    pub fn parked(&self) -> impl Iterator<Item = &SocketEvent> {
        self.0
            .iter()
            .flat_map(|holds| holds.parked.iter().map(|(event, _)| event))
    }

    /// [`drop_events_of_disconnected`](crate::api::drop_events_of_disconnected) for the parked
    /// events, called with it for every event queued: an event of a socket the server
    /// disconnected is not handled, parked or not. Returns how many were taken out.
    pub fn drop_events_of_disconnected(&mut self, queued: &SocketEvent) -> usize {
        let Some(holds) = self.0.as_mut() else {
            return 0;
        };
        // Parked events are not in the runtime's backlog.
        let mut uncounted = Backlog::default();
        crate::api::drop_events_of_disconnected(&mut holds.parked, &mut uncounted, queued)
    }

    /// Takes every parked event out (the connection is abandoned: nobody will handle them).
    pub fn take_parked(&mut self) -> impl Iterator<Item = SocketEvent> + use<> {
        self.0
            .as_mut()
            .map(|holds| std::mem::take(&mut holds.parked))
            .unwrap_or_default()
            .into_iter()
            .map(|(event, _)| event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engineio::{CloseReason, Sid};
    use crate::socketio::DisconnectReason;

    fn connect(namespace: &str) -> SocketEvent {
        SocketEvent::Connect {
            namespace: namespace.into(),
            sid: Sid::new(format!("{namespace}-sid")),
            auth: None,
        }
    }

    fn disconnect(namespace: &str) -> SocketEvent {
        SocketEvent::Disconnect {
            namespace: namespace.into(),
            sid: Sid::new(format!("{namespace}-sid")),
            reason: DisconnectReason::ClientNamespaceDisconnect,
        }
    }

    fn event(namespace: &str, name: &str) -> SocketEvent {
        SocketEvent::Event {
            namespace: namespace.into(),
            sid: Sid::new(format!("{namespace}-sid")),
            event: name.into(),
            args: Vec::new(),
            attachments: Vec::new(),
            ack_id: None,
        }
    }

    fn closed() -> SocketEvent {
        SocketEvent::Closed(CloseReason::TransportClose)
    }

    /// `queue` as `kind:namespace` strings.
    fn names(queue: &VecDeque<(SocketEvent, usize)>) -> Vec<String> {
        queue
            .iter()
            .map(|(event, _)| match event {
                SocketEvent::Connect { namespace, .. } => format!("connect:{namespace}"),
                SocketEvent::Disconnect { namespace, .. } => format!("disconnect:{namespace}"),
                SocketEvent::Event {
                    namespace, event, ..
                } => format!("{event}:{namespace}"),
                SocketEvent::Closed(_) => "closed".into(),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn nothing_parks_while_nothing_is_held() {
        let mut holds = HeldNamespaces::default();
        assert!(holds.is_empty());
        for event in [connect("/a"), event("/a", "e"), disconnect("/a"), closed()] {
            assert!(holds.park(event, 1).is_some());
        }
    }

    #[test]
    fn a_held_namespace_parks_its_own_events_and_the_end_but_not_the_others() {
        let mut holds = HeldNamespaces::default();
        holds.hold("/admin".into());
        assert!(!holds.is_empty());
        assert!(holds.park(event("/", "ping"), 1).is_some());
        assert!(holds.park(connect("/chat"), 1).is_some());
        assert!(holds.park(disconnect("/admin"), 2).is_none());
        assert!(holds.park(connect("/admin"), 3).is_none());
        assert!(holds.park(closed(), 4).is_none());
    }

    #[test]
    fn a_release_puts_the_namespaces_parked_events_back_in_front_in_their_order() {
        let mut holds = HeldNamespaces::default();
        holds.hold("/a".into());
        holds.hold("/b".into());
        assert!(holds.park(disconnect("/a"), 10).is_none());
        assert!(holds.park(disconnect("/b"), 20).is_none());
        assert!(holds.park(connect("/a"), 30).is_none());
        assert!(holds.park(closed(), 40).is_none());
        let mut queue = VecDeque::from([(event("/c", "later"), 5)]);
        let mut backlog = Backlog::default();

        assert!(holds.release("/a", &mut queue, &mut backlog));
        assert_eq!(names(&queue), ["disconnect:/a", "connect:/a", "later:/c"]);
        assert_eq!((backlog.events, backlog.bytes), (2, 40));

        // `Closed` waits for the last held namespace, and comes after its events.
        queue.clear();
        assert!(holds.release("/b", &mut queue, &mut backlog));
        assert_eq!(names(&queue), ["disconnect:/b", "closed"]);
        assert!(holds.is_empty());
        assert_eq!(holds.take_parked().count(), 0);
    }

    #[test]
    fn closed_goes_back_behind_the_events_released_before_it_and_not_yet_taken() {
        let mut holds = HeldNamespaces::default();
        holds.hold("/a".into());
        holds.hold("/b".into());
        assert!(holds.park(disconnect("/a"), 1).is_none());
        assert!(holds.park(closed(), 1).is_none());
        assert_eq!(holds.parked().count(), 2);
        let mut queue = VecDeque::new();
        let mut backlog = Backlog::default();
        assert!(holds.release("/a", &mut queue, &mut backlog));
        assert!(holds.release("/b", &mut queue, &mut backlog));
        assert_eq!(names(&queue), ["disconnect:/a", "closed"]);
        assert_eq!(holds.parked().count(), 0);
    }

    #[test]
    fn releasing_a_namespace_not_held_changes_nothing() {
        let mut holds = HeldNamespaces::default();
        holds.hold("/a".into());
        assert!(holds.park(closed(), 1).is_none());
        let mut queue = VecDeque::new();
        let mut backlog = Backlog::default();
        assert!(!holds.release("/b", &mut queue, &mut backlog));
        assert!(queue.is_empty());
        assert_eq!(holds.take_parked().count(), 1);
    }

    #[test]
    fn a_server_side_disconnect_drops_its_sockets_parked_events() {
        let mut holds = HeldNamespaces::default();
        holds.hold("/a".into());
        assert!(holds.park(event("/a", "raced"), 1).is_none());
        let left = SocketEvent::Disconnect {
            namespace: "/a".into(),
            sid: Sid::new("/a-sid"),
            reason: DisconnectReason::ServerNamespaceDisconnect,
        };
        assert_eq!(holds.drop_events_of_disconnected(&disconnect("/a")), 0);
        assert_eq!(holds.drop_events_of_disconnected(&left), 1);
        assert_eq!(holds.take_parked().count(), 0);
    }

    #[test]
    fn park_front_parks_up_to_the_first_event_that_need_not_wait() {
        let mut holds = HeldNamespaces::default();
        holds.hold("/a".into());
        let mut queue = VecDeque::from([
            (disconnect("/a"), 1),
            (connect("/a"), 2),
            (event("/b", "goes"), 4),
            (event("/a", "after"), 8),
        ]);
        let mut backlog = Backlog {
            events: 4,
            bytes: 15,
        };
        holds.park_front(&mut queue, &mut backlog);
        assert_eq!(names(&queue), ["goes:/b", "after:/a"]);
        assert_eq!((backlog.events, backlog.bytes), (2, 12));
        assert_eq!(holds.parked().count(), 2);
    }

    #[test]
    fn a_release_with_nothing_parked_puts_nothing_back() {
        let mut holds = HeldNamespaces::default();
        holds.hold("/a".into());
        let mut queue = VecDeque::new();
        let mut backlog = Backlog::default();
        assert!(!holds.release("/a", &mut queue, &mut backlog));
        assert!(holds.is_empty());
        assert_eq!(backlog.events, 0);
    }
}
