//! What a server does with a message from the broker, and what it publishes for its own
//! operations, written once for every runtime (python-socketio's `PubSubManager` semantics: a
//! host acts locally first, then publishes with its `host_id`; listeners skip their own messages
//! except callbacks, which only the host they name acts on).
//!
//! [`triage`] applies what the [`Hub`] can do by itself (room changes) and returns what needs the
//! runtime's connections ([`Remote`]): deliveries, disconnects and answers to callbacks.

use std::ops::DerefMut;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::hub::{Hub, RoomChangeError, SidRoom};
use crate::payload::Args;

use super::callbacks::{Expect, PendingCallbacks, TooManyPending};
use super::message::{DecodeError, Message, RemoteAck};

/// Where a client's answer to a remote emit goes back to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyAddress {
    /// The host that made the emit.
    pub host_id: String,
    pub ack: RemoteAck,
}

impl ReplyAddress {
    /// The message that carries `args` back to the emitting host.
    pub fn answer(&self, args: Args) -> Message {
        Message::Callback {
            host_id: self.host_id.clone(),
            sid: self.ack.sid.clone(),
            namespace: self.ack.namespace.clone(),
            id: self.ack.id,
            args,
        }
    }
}

/// What the runtime still has to do for a message from the broker.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Remote {
    /// Deliver `event` to this server's clients of `namespace` in `rooms` (all when empty) but
    /// not in `skip`; with `reply_to`, each recipient's answer is published there.
    Deliver {
        event: String,
        args: Args,
        namespace: String,
        rooms: Vec<String>,
        skip: Vec<String>,
        /// Boxed: most deliveries carry none, and inline it made this variant far larger than
        /// the others (clippy's `large_enum_variant`).
        reply_to: Option<Box<ReplyAddress>>,
    },
    /// Disconnect this server's socket `sid` of `namespace`.
    Disconnect { sid: String, namespace: String },
    /// Call this server's remote callback `id` with `args`.
    Answer { id: u64, args: Args },
    /// Nothing left to do: a room change was applied to the hub, the message concerned
    /// another host, or a socket this server does not hold.
    Done,
}

/// Why a message was not acted on; the listener logs it and goes on.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum Ignored {
    #[error(transparent)]
    Undecodable(#[from] DecodeError),
    /// A reserved event name (`connect`, `disconnect`, ...) cannot be emitted.
    #[error("a broker emit of the reserved event {0:?}")]
    ReservedEvent(String),
    /// A room change naming a socket's own room: another socket cannot enter it, nor can it be
    /// closed (the sending server could not tell it was one).
    #[error("a broker room change refused: {0}")]
    SidRoom(#[from] SidRoom),
}

/// Decodes `payload` and applies it for host `me`: room changes to sockets in the hub are done
/// here; the rest is returned. The hub is asked for (`hub`, which locks it) only once the message
/// is decoded and only for a room change or disconnect: decoding a large emit, or this server's
/// own echo, holds up no connect, broadcast or room change meanwhile.
pub fn triage<H: Clone, G: DerefMut<Target = Hub<H>>>(
    payload: &[u8],
    me: &str,
    hub: impl FnOnce() -> G,
) -> Result<Remote, Ignored> {
    let message = Message::decode(payload)?;
    if !message.is_for(me) {
        return Ok(Remote::Done);
    }
    Ok(match message {
        Message::Emit {
            event,
            args,
            namespace,
            rooms,
            skip,
            callback,
            host_id,
        } => {
            if crate::socketio::packet::RESERVED_EVENTS.contains(&event.as_str()) {
                return Err(Ignored::ReservedEvent(event));
            }
            // A publisher without a host id cannot be answered; the event is delivered anyway.
            let reply_to = match (callback, host_id) {
                (Some(ack), Some(host_id)) => Some(Box::new(ReplyAddress { host_id, ack })),
                _ => None,
            };
            Remote::Deliver {
                event,
                args,
                namespace,
                rooms,
                skip,
                reply_to,
            }
        }
        Message::Disconnect { sid, namespace, .. } => {
            if hub().contains(&namespace, &sid) {
                Remote::Disconnect { sid, namespace }
            } else {
                Remote::Done
            }
        }
        Message::EnterRoom {
            sid,
            room,
            namespace,
            ..
        } => {
            // Only the server holding the socket acts; for the others it is unknown. Another
            // socket's own room is refused there, as a local enter_room would be.
            match hub().enter_room(&namespace, &sid, &room) {
                Err(RoomChangeError::SidRoom(refused)) => return Err(refused.into()),
                _ => Remote::Done,
            }
        }
        Message::LeaveRoom {
            sid,
            room,
            namespace,
            ..
        } => {
            // A socket's own room is refused there, as a local leave_room would be.
            match hub().leave_room(&namespace, &sid, &room) {
                Err(RoomChangeError::SidRoom(refused)) => return Err(refused.into()),
                _ => Remote::Done,
            }
        }
        Message::CloseRoom {
            room, namespace, ..
        } => {
            // A socket's own room stays (the sender could not tell it was one).
            hub().close_room(&namespace, &room)?;
            Remote::Done
        }
        Message::Callback { id, args, .. } => Remote::Answer { id, args },
    })
}

/// The local-or-remote decision for a room change or disconnect of socket `sid`: `None` when the
/// socket is this server's (act locally), in `namespace` or in another one (sids are unique
/// across namespaces, so no server holds it in `namespace`: the local call refuses it, as
/// without a client manager), else the message for the server that holds it.
pub fn room_change_elsewhere<H: Clone>(
    hub: &Hub<H>,
    me: &str,
    change: RoomChange,
    namespace: &str,
    sid: &str,
) -> Option<Message> {
    if hub.contains(namespace, sid) || hub.holds_sid(sid) {
        return None;
    }
    let host_id = Some(me.to_owned());
    let (sid, namespace) = (sid.to_owned(), namespace.to_owned());
    Some(match change {
        RoomChange::Enter(room) => Message::EnterRoom {
            sid,
            room: room.to_owned(),
            namespace,
            host_id,
        },
        RoomChange::Leave(room) => Message::LeaveRoom {
            sid,
            room: room.to_owned(),
            namespace,
            host_id,
        },
        RoomChange::Disconnect => Message::Disconnect {
            sid,
            namespace,
            host_id,
        },
    })
}

/// An operation on one socket that another server may have to carry out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoomChange<'a> {
    Enter(&'a str),
    Leave(&'a str),
    Disconnect,
}

/// Whether an emit to `rooms` of `namespace` can only reach this server's clients: a single
/// target that is one of its sockets (a sid is the only member of its own room).
pub fn only_local<H: Clone>(hub: &Hub<H>, namespace: &str, rooms: &[String]) -> bool {
    matches!(rooms, [only] if hub.contains(namespace, only))
}

/// What an emit needs from the broker, decided before it is delivered locally.
#[derive(Debug)]
pub struct ClusterEmit {
    /// The message to publish; `None` when the emit can only reach this server's clients.
    pub message: Option<Message>,
    /// The remote callback registered for the answers: to start
    /// ([`PendingCallbacks::start`]) once the message is published, or to cancel if publishing
    /// fails.
    pub remote_ack: Option<u64>,
}

/// One emit as the application made it.
#[derive(Debug, Clone, Copy)]
pub struct EmitTarget<'a> {
    pub event: &'a str,
    pub args: &'a Args,
    pub namespace: &'a str,
    pub rooms: &'a [String],
    pub skip: &'a [String],
}

/// Plans an emit of host `host_id` for the cluster: unless it can only reach local clients, the
/// message to publish, and with a `callback` (and its timeout) a remote callback registered in
/// `pending` so answers from other servers come back to it.
pub fn plan_emit<H: Clone, C: Clone>(
    hub: &Hub<H>,
    host_id: &str,
    pending: &mut PendingCallbacks<C>,
    now: Instant,
    emit: EmitTarget<'_>,
    callback: Option<(&C, Option<Duration>)>,
) -> Result<ClusterEmit, TooManyPending> {
    if only_local(hub, emit.namespace, emit.rooms) {
        return Ok(ClusterEmit {
            message: None,
            remote_ack: None,
        });
    }
    let ack = match callback {
        Some((callback, timeout)) => Some(RemoteAck {
            // python-socketio's callback names one room (or sid); the answer only echoes it.
            sid: Value::String(emit.rooms.first().cloned().unwrap_or_default()),
            namespace: emit.namespace.to_owned(),
            id: pending.register_unstarted(
                callback.clone(),
                now,
                timeout,
                remote_answers(hub, emit, timeout),
            )?,
        }),
        None => None,
    };
    Ok(ClusterEmit {
        remote_ack: ack.as_ref().map(|ack| ack.id),
        message: Some(Message::Emit {
            event: emit.event.to_owned(),
            args: emit.args.clone(),
            namespace: emit.namespace.to_owned(),
            rooms: emit.rooms.to_vec(),
            skip: emit.skip.to_vec(),
            callback: ack,
            host_id: Some(host_id.to_owned()),
        }),
    })
}

/// What a callback of `emit` can expect from the other servers. An emit with a timeout to one
/// room (most often a client's sid) without members here can only be answered from elsewhere:
/// no answer by its timeout is reported as one, as for a silent client of this server. Other
/// emits may have no recipient elsewhere, so silence there is not an error.
fn remote_answers<H: Clone>(
    hub: &Hub<H>,
    emit: EmitTarget<'_>,
    timeout: Option<Duration>,
) -> Expect {
    match emit.rooms {
        // (A room it skips reaches nobody: nobody's silence is no timeout.)
        [room]
            if timeout.is_some()
                && !emit.skip.contains(room)
                && !hub.has_participants(emit.namespace, room) =>
        {
            Expect::AtLeastOne
        }
        _ => Expect::Any,
    }
}

/// Plans a `call` of host `host_id` to client `sid` of another server: registers `callback` for
/// its one answer (or a timeout after `timeout`) and returns the message to publish with the
/// callback's id.
#[allow(clippy::too_many_arguments)]
pub fn plan_call<C: Clone>(
    host_id: &str,
    pending: &mut PendingCallbacks<C>,
    now: Instant,
    event: &str,
    args: Args,
    namespace: &str,
    sid: &str,
    callback: C,
    timeout: Duration,
) -> Result<(Message, u64), TooManyPending> {
    let id = pending.register_unstarted(callback, now, Some(timeout), Expect::One)?;
    let message = Message::Emit {
        event: event.to_owned(),
        args,
        namespace: namespace.to_owned(),
        rooms: vec![sid.to_owned()],
        skip: Vec::new(),
        callback: Some(RemoteAck {
            sid: Value::String(sid.to_owned()),
            namespace: namespace.to_owned(),
            id,
        }),
        host_id: Some(host_id.to_owned()),
    };
    Ok((message, id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engineio::Sid;
    use serde_json::json;

    fn hub() -> Hub<u8> {
        let mut hub = Hub::new();
        hub.register_socket("/", Sid::from("mine"), 1);
        hub
    }

    fn triage_in(payload: &[u8], me: &str, hub: &mut Hub<u8>) -> Result<Remote, Ignored> {
        triage(payload, me, move || hub)
    }

    fn bytes(value: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&value).unwrap()
    }

    /// Emits, answers and this server's own echo never lock the hub (a runtime's hub lock is
    /// taken by `hub`): only room changes and disconnects need it.
    #[test]
    fn only_room_changes_and_disconnects_ask_for_the_hub() {
        let untouched = || -> &'static mut Hub<u8> { panic!("the hub was asked for") };
        for message in [
            json!({"method": "emit", "event": "e", "data": [], "host_id": "me"}),
            json!({"method": "emit", "event": "e", "data": [1], "host_id": "other"}),
            json!({"method": "callback", "rid": "x", "sid": "s", "namespace": "/", "id": 1,
                   "args": [], "host_id": "me"}),
            json!({"method": "enter_room", "sid": "s", "room": "r", "namespace": "/", "host_id": "me"}),
        ] {
            assert!(
                triage(&bytes(message.clone()), "me", untouched).is_ok(),
                "{message}"
            );
        }
        let mut hub = hub();
        let mut asked = false;
        let enter =
            bytes(json!({"method": "enter_room", "sid": "mine", "room": "r", "namespace": "/"}));
        let _ = triage(&enter, "me", || {
            asked = true;
            &mut hub
        });
        assert!(asked);
    }

    #[test]
    fn own_messages_are_skipped_but_callbacks_for_me_are_answered() {
        let mut hub = hub();
        let own = bytes(json!({"method": "emit", "event": "e", "data": [], "host_id": "me"}));
        assert_eq!(triage_in(&own, "me", &mut hub), Ok(Remote::Done));
        let answer = bytes(
            json!({"method": "callback", "host_id": "me", "sid": "s", "namespace": "/", "id": 9, "args": ["ok"]}),
        );
        assert_eq!(
            triage_in(&answer, "me", &mut hub),
            Ok(Remote::Answer {
                id: 9,
                args: Args::from_parts(vec![json!("ok")], vec![])
            })
        );
        assert_eq!(triage_in(&answer, "other", &mut hub), Ok(Remote::Done));
    }

    #[test]
    fn room_changes_apply_to_own_sockets_only() {
        let mut hub = hub();
        let enter = bytes(
            json!({"method": "enter_room", "sid": "mine", "room": "r", "namespace": "/", "host_id": "x"}),
        );
        assert_eq!(triage_in(&enter, "me", &mut hub), Ok(Remote::Done));
        assert!(hub.rooms_of("/", "mine").contains(&"r".to_owned()));
        let elsewhere = bytes(
            json!({"method": "enter_room", "sid": "theirs", "room": "r", "namespace": "/", "host_id": "x"}),
        );
        assert_eq!(triage_in(&elsewhere, "me", &mut hub), Ok(Remote::Done));
        assert_eq!(hub.participants("/", "r"), vec![Sid::from("mine")]);
        assert!(hub.has_participants("/", "r"));
        let close = bytes(json!({"method": "close_room", "room": "r", "host_id": "x"}));
        assert_eq!(triage_in(&close, "me", &mut hub), Ok(Remote::Done));
        assert!(hub.participants("/", "r").is_empty());
        assert!(!hub.has_participants("/", "r"));
    }

    /// A room change naming a socket's own room is refused where that socket is, and reported
    /// for the listener to log (python-socketio raises there too); another server, which does
    /// not hold the socket, has nothing to refuse.
    #[test]
    fn room_changes_naming_a_sockets_own_room_are_refused_and_reported() {
        let mut hub = hub();
        hub.register_socket("/", Sid::from("other"), 2);
        let refused = SidRoom {
            namespace: "/".into(),
            room: "other".into(),
        };
        let enter = bytes(
            json!({"method": "enter_room", "sid": "mine", "room": "other", "namespace": "/", "host_id": "x"}),
        );
        assert_eq!(
            triage_in(&enter, "me", &mut hub),
            Err(Ignored::SidRoom(refused.clone()))
        );
        assert_eq!(hub.rooms_of("/", "mine"), vec!["mine".to_owned()]);
        let close = bytes(json!({"method": "close_room", "room": "other", "host_id": "x"}));
        assert_eq!(
            triage_in(&close, "me", &mut hub),
            Err(Ignored::SidRoom(refused.clone()))
        );
        assert_eq!(hub.participants("/", "other"), vec![Sid::from("other")]);
        let leave = bytes(
            json!({"method": "leave_room", "sid": "other", "room": "other", "namespace": "/", "host_id": "x"}),
        );
        assert_eq!(
            triage_in(&leave, "me", &mut hub),
            Err(Ignored::SidRoom(refused))
        );
        assert_eq!(hub.participants("/", "other"), vec![Sid::from("other")]);
        let not_here = bytes(
            json!({"method": "enter_room", "sid": "theirs", "room": "other", "namespace": "/", "host_id": "x"}),
        );
        assert_eq!(triage_in(&not_here, "me", &mut hub), Ok(Remote::Done));
    }

    #[test]
    fn disconnects_and_emits_go_to_the_runtime() {
        let mut hub = hub();
        let disconnect = bytes(json!({"method": "disconnect", "sid": "mine", "namespace": "/"}));
        assert_eq!(
            triage_in(&disconnect, "me", &mut hub),
            Ok(Remote::Disconnect {
                sid: "mine".into(),
                namespace: "/".into()
            })
        );
        let not_mine = bytes(json!({"method": "disconnect", "sid": "theirs", "namespace": "/"}));
        assert_eq!(triage_in(&not_mine, "me", &mut hub), Ok(Remote::Done));
        let emit = bytes(
            json!({"method": "emit", "event": "e", "data": [1], "room": "mine",
                                "callback": ["mine", "/", 4], "host_id": "origin"}),
        );
        let Ok(Remote::Deliver {
            reply_to, rooms, ..
        }) = triage_in(&emit, "me", &mut hub)
        else {
            panic!("not a delivery");
        };
        assert_eq!(rooms, vec!["mine".to_owned()]);
        let reply_to = reply_to.expect("an answer address");
        assert_eq!(
            reply_to.answer(Args::from_parts(vec![json!("a")], vec![])),
            Message::Callback {
                host_id: "origin".into(),
                sid: "mine".into(),
                namespace: "/".into(),
                id: 4,
                args: Args::from_parts(vec![json!("a")], vec![])
            }
        );
        // python-socketio's `emit(to=42, callback=cb)` keeps `cb` under the number 42 and looks
        // the answer up by the `sid` it carries: the answer echoes the number, not "42".
        hub.enter_room("/", "mine", "42").expect("enter 42");
        let numeric = bytes(
            json!({"method": "emit", "event": "e", "data": [1], "room": 42,
                                "callback": [42, "/", 5], "host_id": "python"}),
        );
        let Ok(Remote::Deliver {
            reply_to, rooms, ..
        }) = triage_in(&numeric, "me", &mut hub)
        else {
            panic!("not a delivery");
        };
        assert_eq!(rooms, vec!["42".to_owned()]);
        let answer = reply_to
            .expect("an answer address")
            .answer(Args::from_parts(vec![json!("a")], vec![]));
        let wire: serde_json::Value = serde_json::from_slice(&answer.encode()).expect("JSON");
        assert_eq!(wire["sid"], json!(42));
        // And a callback message whose `sid` is a number decodes (one python-socketio sent).
        assert!(matches!(
            Message::decode(&answer.encode()),
            Ok(Message::Callback { sid, .. }) if sid == json!(42)
        ));
        let reserved = bytes(json!({"method": "emit", "event": "disconnect", "data": []}));
        assert_eq!(
            triage_in(&reserved, "me", &mut hub),
            Err(Ignored::ReservedEvent("disconnect".into()))
        );
    }

    #[test]
    fn emits_are_planned_for_the_cluster() {
        let hub = hub();
        let mut pending = PendingCallbacks::default();
        let now = sockio_testkit::clock::start();
        let args = Args::from_parts(vec![json!(1)], vec![]);
        let to = |rooms: &'static [String]| EmitTarget {
            event: "e",
            args: &args,
            namespace: "/",
            rooms,
            skip: &[],
        };
        let mine: &'static [String] = Box::leak(Box::new(["mine".to_owned()]));
        let local =
            plan_emit(&hub, "me", &mut pending, now, to(mine), Some((&"cb", None))).unwrap();
        assert!(local.message.is_none() && local.remote_ack.is_none() && pending.is_empty());
        let room: &'static [String] = Box::leak(Box::new(["room".to_owned()]));
        let plan = plan_emit(&hub, "me", &mut pending, now, to(room), Some((&"cb", None))).unwrap();
        let id = plan.remote_ack.expect("a remote callback");
        let Some(Message::Emit {
            callback, host_id, ..
        }) = plan.message
        else {
            panic!("an emit to publish");
        };
        assert_eq!(
            callback.map(|c| (c.sid, c.id)),
            Some((Value::String("room".to_owned()), id))
        );
        assert_eq!(host_id.as_deref(), Some("me"));
        assert_eq!(pending.answer(id), Some("cb"));
        let (message, call) = plan_call(
            "me",
            &mut pending,
            now,
            "q",
            Args::new(),
            "/",
            "theirs",
            "call",
            Duration::from_secs(1),
        )
        .unwrap();
        assert!(
            matches!(message, Message::Emit { ref rooms, .. } if rooms == &["theirs".to_owned()])
        );
        // Its timeout runs from the publish.
        assert!(pending.expire(now + Duration::from_secs(10)).is_empty());
        pending.start(call, now);
        assert_eq!(
            pending.expire(now + Duration::from_secs(1)),
            vec![super::super::callbacks::Expired::Unanswered("call")]
        );
        assert_ne!(call, id);
    }

    /// An emit with a timeout to a client of another server (one room without members here)
    /// reports that client's silence as a timeout; an emit that may reach nobody elsewhere (a
    /// room with members here, several rooms, no timeout) does not.
    #[test]
    fn a_callback_to_a_client_elsewhere_reports_its_silence() {
        use super::super::callbacks::Expired;
        let mut hub = hub();
        hub.enter_room("/", "mine", "shared").unwrap();
        let mut pending = PendingCallbacks::default();
        let now = sockio_testkit::clock::start();
        let args = Args::new();
        let timeout = Duration::from_secs(5);
        let mut plan = |rooms: &[&str], callback: &'static str, timeout: Option<Duration>| {
            let rooms: Vec<String> = rooms.iter().map(|r| r.to_string()).collect();
            // "skipped" skips the one room it names.
            let skip = if callback == "skipped" {
                rooms.clone()
            } else {
                Vec::new()
            };
            let target = EmitTarget {
                event: "e",
                args: &args,
                namespace: "/",
                rooms: &rooms,
                skip: &skip,
            };
            let id = plan_emit(
                &hub,
                "me",
                &mut pending,
                now,
                target,
                Some((&callback, timeout)),
            )
            .unwrap()
            .remote_ack
            .expect("a remote callback");
            pending.start(id, now);
            id
        };
        plan(&["theirs"], "theirs", Some(timeout));
        plan(&["shared"], "shared", Some(timeout));
        plan(&["theirs", "other"], "two rooms", Some(timeout));
        plan(&["theirs"], "no timeout", None);
        plan(&["theirs"], "skipped", Some(timeout));
        let answered = plan(&["theirs-too"], "answered", Some(timeout));
        assert_eq!(pending.answer(answered), Some("answered"));
        let mut expired = pending.expire(now + timeout);
        expired.sort_by_key(|e| *e.callback());
        assert_eq!(
            expired,
            vec![
                Expired::Done("answered"),
                Expired::Done("shared"),
                Expired::Done("skipped"),
                Expired::Unanswered("theirs"),
                Expired::Done("two rooms"),
            ]
        );
    }

    #[test]
    fn local_or_remote_decisions() {
        let hub = hub();
        assert!(only_local(&hub, "/", &["mine".to_owned()]));
        assert!(!only_local(&hub, "/", &["room".to_owned()]));
        assert!(!only_local(&hub, "/", &[]));
        assert_eq!(
            room_change_elsewhere(&hub, "me", RoomChange::Enter("r"), "/", "mine"),
            None
        );
        // A socket of this server in another namespace: no server holds it in this one.
        assert_eq!(
            room_change_elsewhere(&hub, "me", RoomChange::Enter("r"), "/other", "mine"),
            None
        );
        assert_eq!(
            room_change_elsewhere(&hub, "me", RoomChange::Disconnect, "/", "theirs"),
            Some(Message::Disconnect {
                sid: "theirs".into(),
                namespace: "/".into(),
                host_id: Some("me".into())
            })
        );
    }
}
