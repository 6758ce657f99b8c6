//! The runtime-neutral registry of a server's sockets: per namespace, which sockets exist, which
//! connection owns each (a handle of the runtime's choosing), their rooms and their user sessions.
//!
//! A [`Hub`] is plain data with no locks, threads, clocks or I/O; a runtime keeps one behind its
//! own lock (or shards it) and drives the connections it names. It answers the application's
//! room and session commands and selects the recipients of a broadcast:
//!
//! ```
//! use sockio_core::engineio::Sid;
//! use sockio_core::hub::Hub;
//!
//! // The handle is whatever the runtime uses to reach a connection; here a number.
//! let mut hub: Hub<u32> = Hub::new();
//! hub.register_socket("/", Sid::from("a"), 1);
//! hub.register_socket("/", Sid::from("b"), 2);
//! hub.enter_room("/", "a", "lobby").unwrap();
//!
//! let lobby: Vec<_> = hub.recipients("/", &["lobby"], &[] as &[&str]);
//! assert_eq!(lobby, vec![(Sid::from("a"), 1)]);
//! let everyone_but_a = hub.recipients("/", &[] as &[&str], &["a"]);
//! assert_eq!(everyone_but_a, vec![(Sid::from("b"), 2)]);
//! ```

use std::collections::HashMap;

use serde_json::Value;

use crate::engineio::Sid;
use crate::engineio::sid::SidMap;
use crate::socketio::{BroadcastTarget, RoomIndex};

/// A command named a socket the hub does not know in that namespace.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no socket {sid} in namespace {namespace}")]
pub struct UnknownSocket {
    pub namespace: String,
    pub sid: String,
}

/// A room command named a socket's own room (its sid): only that socket is ever in it (unlike
/// python-socketio, which allows both). Were it allowed, a socket entering another's sid room
/// would receive every emit meant for that client alone, and closing one would cut its socket
/// off from them. Only the sids of this hub's own sockets are known here: another server of a
/// cluster can still be given a room named after one of them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("room {room} of namespace {namespace} is a socket's own room (its sid)")]
pub struct SidRoom {
    pub namespace: String,
    pub room: String,
}

/// Why a socket could not enter or leave a room.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RoomChangeError {
    #[error(transparent)]
    UnknownSocket(#[from] UnknownSocket),
    #[error(transparent)]
    SidRoom(#[from] SidRoom),
}

/// The sockets, rooms and sessions of one namespace.
#[derive(Debug)]
struct NamespaceEntry<H> {
    rooms: RoomIndex<Sid>,
    owners: SidMap<H>,
    sessions: HashMap<Sid, Value>,
}

impl<H> Default for NamespaceEntry<H> {
    fn default() -> Self {
        NamespaceEntry {
            rooms: RoomIndex::new(),
            owners: SidMap::default(),
            sessions: HashMap::new(),
        }
    }
}

/// The per-namespace registry of sockets, generic over the runtime's connection handle `H`. See
/// the [module docs](self).
#[derive(Debug)]
pub struct Hub<H> {
    namespaces: HashMap<String, NamespaceEntry<H>>,
}

impl<H> Default for Hub<H> {
    fn default() -> Self {
        Hub {
            namespaces: HashMap::new(),
        }
    }
}

impl<H: Clone> Hub<H> {
    /// An empty hub.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers socket `sid` of `namespace`, owned by the connection `handle`, and puts it in its
    /// own room (named by its sid). Registering again replaces the handle. `sid` is one the
    /// server made (as [`SocketEvent::Connect`](crate::socketio::SocketEvent::Connect) reports
    /// it): the owners are hashed without a defence against ids chosen to collide.
    pub fn register_socket(&mut self, namespace: &str, sid: Sid, handle: H) {
        let entry = self.namespaces.entry(namespace.to_owned()).or_default();
        // A v4 socket's sid is known before the socket exists (`/nsp#<engine sid>`), so others
        // may have entered a room of that name: on this server, the socket's own room is its
        // alone (the others of a cluster keep their own rooms).
        if !entry.owners.contains_key(sid.as_str()) {
            entry.rooms.close_room(sid.as_str());
        }
        entry.rooms.join(&sid, sid.as_str());
        entry.owners.insert(sid, handle);
    }

    /// Forgets socket `sid` of `namespace`: its rooms, owner and session. Returns its handle when
    /// it was known. A namespace left without sockets is dropped.
    pub fn forget_socket(&mut self, namespace: &str, sid: &str) -> Option<H> {
        let entry = self.namespaces.get_mut(namespace)?;
        let sid = Sid::from(sid);
        entry.rooms.remove_member(&sid);
        entry.sessions.remove(sid.as_str());
        let handle = entry.owners.remove(sid.as_str());
        if entry.owners.is_empty() && entry.rooms.member_count() == 0 {
            self.namespaces.remove(namespace);
        }
        handle
    }

    /// The handle of the connection that owns socket `sid` of `namespace`.
    pub fn owner(&self, namespace: &str, sid: &str) -> Option<H> {
        self.entry(namespace)?.owners.get(sid).cloned()
    }

    /// True when socket `sid` is registered in `namespace`.
    pub fn contains(&self, namespace: &str, sid: &str) -> bool {
        self.entry(namespace)
            .is_some_and(|entry| entry.owners.contains_key(sid))
    }

    /// True when socket `sid` is registered in any namespace: socket ids are unique across
    /// namespaces, so no other server holds a socket of that id.
    pub fn holds_sid(&self, sid: &str) -> bool {
        self.namespaces
            .values()
            .any(|entry| entry.owners.contains_key(sid))
    }

    /// The namespaces that have sockets, sorted (python-socketio's `get_namespaces`).
    pub fn namespaces(&self) -> Vec<String> {
        let mut namespaces: Vec<String> = self
            .namespaces
            .iter()
            .filter(|(_, entry)| !entry.owners.is_empty())
            .map(|(name, _)| name.clone())
            .collect();
        namespaces.sort();
        namespaces
    }

    /// Number of sockets registered in `namespace`.
    pub fn socket_count(&self, namespace: &str) -> usize {
        self.entry(namespace).map_or(0, |entry| entry.owners.len())
    }

    /// Puts socket `sid` of `namespace` in `room`; another socket's own room (its sid) is
    /// refused.
    pub fn enter_room(
        &mut self,
        namespace: &str,
        sid: &str,
        room: &str,
    ) -> Result<(), RoomChangeError> {
        // The socket first: a server that does not hold it has nothing to refuse.
        if !self.contains(namespace, sid) {
            return Err(unknown(namespace, sid).into());
        }
        self.may_enter(namespace, sid, room)?;
        let entry = self.known_mut(namespace, sid)?;
        entry.rooms.join(&Sid::from(sid), room);
        Ok(())
    }

    /// Refuses to let socket `sid` (of this server or another) enter `room` when `room` is the
    /// own room of another socket of this server. A server asked to put one of its sockets in
    /// a room checks the same for its own sockets, but it cannot know the sids of the asking
    /// server: the asking server checks first.
    pub fn may_enter(&self, namespace: &str, sid: &str, room: &str) -> Result<(), SidRoom> {
        if room != sid && self.contains(namespace, room) {
            return Err(sid_room(namespace, room));
        }
        Ok(())
    }

    /// Takes socket `sid` of `namespace` out of `room`; its own room (its sid) is refused.
    pub fn leave_room(
        &mut self,
        namespace: &str,
        sid: &str,
        room: &str,
    ) -> Result<(), RoomChangeError> {
        let entry = self.known_mut(namespace, sid)?;
        may_leave(namespace, sid, room)?;
        entry.rooms.leave(&Sid::from(sid), room);
        Ok(())
    }

    /// Removes every socket of `namespace` from `room`; returns those that were in it. A
    /// socket's own room (its sid) is refused.
    pub fn close_room(&mut self, namespace: &str, room: &str) -> Result<Vec<Sid>, SidRoom> {
        match self.namespaces.get_mut(namespace) {
            Some(entry) if entry.owners.contains_key(room) => Err(sid_room(namespace, room)),
            Some(entry) => Ok(entry.rooms.close_room(room)),
            None => Ok(Vec::new()),
        }
    }

    /// The rooms socket `sid` of `namespace` is in, its own sid room included (empty when
    /// unknown).
    pub fn rooms_of(&self, namespace: &str, sid: &str) -> Vec<String> {
        self.entry(namespace)
            .map(|entry| {
                entry
                    .rooms
                    .rooms_of(&Sid::from(sid))
                    .iter()
                    .map(|room| room.to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The sockets of `namespace` in `room`.
    pub fn participants(&self, namespace: &str, room: &str) -> Vec<Sid> {
        self.entry(namespace)
            .map(|entry| entry.rooms.members_of(room))
            .unwrap_or_default()
    }

    /// Whether `room` of `namespace` has a socket, without listing them.
    pub fn has_participants(&self, namespace: &str, room: &str) -> bool {
        self.entry(namespace)
            .is_some_and(|entry| entry.rooms.has_members(room))
    }

    /// The user session of socket `sid` of `namespace` (`null` when nothing was saved).
    pub fn session(&self, namespace: &str, sid: &str) -> Result<Value, UnknownSocket> {
        let entry = self
            .entry(namespace)
            .filter(|entry| entry.owners.contains_key(sid))
            .ok_or_else(|| unknown(namespace, sid))?;
        Ok(entry.sessions.get(sid).cloned().unwrap_or(Value::Null))
    }

    /// Saves the user session of socket `sid` of `namespace`.
    pub fn save_session(
        &mut self,
        namespace: &str,
        sid: &str,
        session: Value,
    ) -> Result<(), UnknownSocket> {
        let entry = self.known_mut(namespace, sid)?;
        entry.sessions.insert(Sid::from(sid), session);
        Ok(())
    }

    /// The recipients of a broadcast in `namespace`: the sockets in any of `rooms` (every socket
    /// when `rooms` is empty) except those listed in `skip`, each with its owner's handle.
    pub fn recipients<R: AsRef<str>, S: AsRef<str>>(
        &self,
        namespace: &str,
        rooms: &[R],
        skip: &[S],
    ) -> Vec<(Sid, H)> {
        let Some(entry) = self.entry(namespace) else {
            return Vec::new();
        };
        if rooms.is_empty() && skip.is_empty() {
            // Everyone: the owners are the namespace's members, without a selection to build
            // and look up one by one (a tenth of the sender's instructions per delivery).
            return entry
                .owners
                .iter()
                .map(|(sid, handle)| (sid.clone(), handle.clone()))
                .collect();
        }
        let mut target = if rooms.is_empty() {
            BroadcastTarget::all()
        } else {
            BroadcastTarget::rooms(rooms.iter())
        };
        target.skip = skip.iter().map(|s| Sid::from(s.as_ref())).collect();
        entry
            .rooms
            .select(&target)
            .into_iter()
            .filter_map(|sid| {
                let handle = entry.owners.get(&sid)?.clone();
                Some((sid, handle))
            })
            .collect()
    }

    fn entry(&self, namespace: &str) -> Option<&NamespaceEntry<H>> {
        self.namespaces.get(namespace)
    }

    fn known_mut(
        &mut self,
        namespace: &str,
        sid: &str,
    ) -> Result<&mut NamespaceEntry<H>, UnknownSocket> {
        self.namespaces
            .get_mut(namespace)
            .filter(|entry| entry.owners.contains_key(sid))
            .ok_or_else(|| unknown(namespace, sid))
    }
}

/// Refuses to take socket `sid` out of its own room (its sid): what is meant for that
/// client alone goes through that room, so an emit to it would reach nobody while the socket
/// is still connected (and a `call`, which finds the socket itself, still would). Needs no
/// hub: a server checks it for a socket of another server too.
pub fn may_leave(namespace: &str, sid: &str, room: &str) -> Result<(), SidRoom> {
    if room == sid {
        return Err(sid_room(namespace, room));
    }
    Ok(())
}

fn sid_room(namespace: &str, room: &str) -> SidRoom {
    SidRoom {
        namespace: namespace.to_owned(),
        room: room.to_owned(),
    }
}

fn unknown(namespace: &str, sid: &str) -> UnknownSocket {
    UnknownSocket {
        namespace: namespace.to_owned(),
        sid: sid.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sids(mut v: Vec<(Sid, u8)>) -> Vec<(String, u8)> {
        v.sort();
        v.into_iter().map(|(s, h)| (s.to_string(), h)).collect()
    }

    const NONE: &[&str] = &[];

    #[test]
    fn register_puts_socket_in_its_own_room() {
        let mut hub = Hub::new();
        hub.register_socket("/", Sid::from("a"), 1u8);
        assert_eq!(hub.rooms_of("/", "a"), vec!["a".to_owned()]);
        assert_eq!(hub.owner("/", "a"), Some(1));
        assert_eq!(hub.owner("/other", "a"), None);
        assert!(hub.contains("/", "a"));
        assert_eq!(hub.socket_count("/"), 1);
        assert_eq!(
            sids(hub.recipients("/", &["a"], NONE)),
            vec![("a".into(), 1)]
        );
    }

    #[test]
    fn namespaces_are_those_with_sockets() {
        let mut hub = Hub::new();
        assert!(hub.namespaces().is_empty());
        hub.register_socket("/chat", Sid::from("a"), 1u8);
        hub.register_socket("/", Sid::from("b"), 2u8);
        hub.register_socket("/chat", Sid::from("c"), 3u8);
        assert_eq!(hub.namespaces(), vec!["/".to_owned(), "/chat".to_owned()]);
        hub.forget_socket("/chat", "a");
        hub.forget_socket("/chat", "c");
        assert_eq!(hub.namespaces(), vec!["/".to_owned()]);
    }

    #[test]
    fn everyone_is_every_socket_whatever_rooms_it_left() {
        let mut hub = Hub::new();
        for (i, sid) in ["a", "b", "c", "d"].into_iter().enumerate() {
            hub.register_socket("/", Sid::from(sid), i as u8);
        }
        hub.register_socket("/other", Sid::from("e"), 9);
        hub.enter_room("/", "a", "lobby").unwrap();
        // A socket out of every room but its own still hears the whole namespace.
        hub.leave_room("/", "a", "lobby").unwrap();
        hub.forget_socket("/", "c");
        let everyone = vec![("a".into(), 0), ("b".into(), 1), ("d".into(), 3)];
        assert_eq!(sids(hub.recipients("/", NONE, NONE)), everyone);
        // The same set as the room selection gives (a skip of nobody takes that path).
        assert_eq!(sids(hub.recipients("/", NONE, &["nobody"])), everyone);
    }

    #[test]
    fn rooms_and_broadcast_selection() {
        let mut hub = Hub::new();
        for (i, sid) in ["a", "b", "c"].into_iter().enumerate() {
            hub.register_socket("/", Sid::from(sid), i as u8);
        }
        hub.register_socket("/chat", Sid::from("x"), 9);
        hub.enter_room("/", "a", "r").unwrap();
        hub.enter_room("/", "b", "r").unwrap();
        hub.enter_room("/", "c", "s").unwrap();
        assert_eq!(
            sids(hub.recipients("/", &["r"], NONE)),
            vec![("a".into(), 0), ("b".into(), 1)]
        );
        assert_eq!(
            sids(hub.recipients("/", &["r", "s"], &["b"])),
            vec![("a".into(), 0), ("c".into(), 2)]
        );
        assert_eq!(
            sids(hub.recipients("/", NONE, &["a", "c"])),
            vec![("b".into(), 1)]
        );
        assert_eq!(
            sids(hub.recipients("/chat", NONE, NONE)),
            vec![("x".into(), 9)]
        );
        assert!(hub.recipients("/missing", NONE, NONE).is_empty());
        let mut p = hub.participants("/", "r");
        p.sort();
        assert_eq!(p, vec![Sid::from("a"), Sid::from("b")]);
        hub.leave_room("/", "a", "r").unwrap();
        assert_eq!(hub.participants("/", "r"), vec![Sid::from("b")]);
        let closed = hub.close_room("/", "r");
        assert_eq!(closed, Ok(vec![Sid::from("b")]));
        assert!(hub.participants("/", "r").is_empty());
    }

    /// A room entered under a sid before that socket existed (a v4 sid can be predicted) is
    /// emptied when the socket registers: emits to its sid reach it alone.
    #[test]
    fn a_room_named_after_a_socket_before_it_existed_becomes_its_alone() {
        let mut hub = Hub::new();
        hub.register_socket("/", Sid::from("x"), 1u8);
        hub.enter_room("/", "x", "/admin#s2").unwrap();
        hub.register_socket("/", Sid::from("/admin#s2"), 2u8);
        assert_eq!(
            sids(hub.recipients("/", &["/admin#s2"], NONE)),
            vec![("/admin#s2".into(), 2)]
        );
        assert_eq!(hub.rooms_of("/", "x"), vec!["x".to_owned()]);
        // Registering again (a new handle) keeps what the socket itself joined.
        hub.enter_room("/", "/admin#s2", "lobby").unwrap();
        hub.register_socket("/", Sid::from("/admin#s2"), 3u8);
        assert!(hub.rooms_of("/", "/admin#s2").contains(&"lobby".to_owned()));
    }

    #[test]
    fn a_sockets_own_room_is_neither_entered_by_another_nor_closed() {
        let mut hub = Hub::new();
        hub.register_socket("/", Sid::from("a"), 0u8);
        hub.register_socket("/", Sid::from("b"), 1u8);
        hub.register_socket("/chat", Sid::from("c"), 2u8);
        let refused = sid_room("/", "b");
        assert_eq!(hub.enter_room("/", "a", "b"), Err(refused.clone().into()));
        assert_eq!(hub.close_room("/", "b"), Err(refused.clone()));
        // b alone still hears what is meant for it.
        assert_eq!(
            sids(hub.recipients("/", &["b"], NONE)),
            vec![("b".into(), 1)]
        );
        // Nor can it leave it; entering it again is harmless. A sid of another namespace is an
        // ordinary room name here.
        assert_eq!(hub.leave_room("/", "b", "b"), Err(refused.clone().into()));
        assert_eq!(
            sids(hub.recipients("/", &["b"], NONE)),
            vec![("b".into(), 1)]
        );
        hub.enter_room("/", "b", "b").unwrap();
        hub.enter_room("/", "a", "c").unwrap();
        assert_eq!(hub.close_room("/", "c"), Ok(vec![Sid::from("a")]));
        // The check for a socket of another server (one this hub does not know).
        assert_eq!(
            hub.may_enter("/", "elsewhere", "a"),
            Err(sid_room("/", "a"))
        );
        assert_eq!(hub.may_enter("/", "elsewhere", "lobby"), Ok(()));
        // Once its socket is gone, the name is free.
        hub.forget_socket("/", "b");
        hub.enter_room("/", "a", "b").unwrap();
        assert_eq!(hub.close_room("/", "b"), Ok(vec![Sid::from("a")]));
    }

    #[test]
    fn unknown_sockets_are_errors() {
        let mut hub: Hub<u8> = Hub::new();
        hub.register_socket("/", Sid::from("a"), 1);
        assert!(hub.enter_room("/", "zz", "r").is_err());
        assert!(hub.leave_room("/chat", "a", "r").is_err());
        assert!(hub.session("/", "zz").is_err());
        let err = hub.save_session("/", "zz", Value::Null).unwrap_err();
        assert_eq!(err.to_string(), "no socket zz in namespace /");
        assert!(hub.rooms_of("/", "zz").is_empty());
    }

    #[test]
    fn sessions_and_forgetting() {
        let mut hub = Hub::new();
        hub.register_socket("/", Sid::from("a"), 1u8);
        assert_eq!(hub.session("/", "a").unwrap(), Value::Null);
        hub.save_session("/", "a", serde_json::json!({"user": "ann"}))
            .unwrap();
        assert_eq!(hub.session("/", "a").unwrap()["user"], "ann");
        hub.enter_room("/", "a", "r").unwrap();
        assert_eq!(hub.forget_socket("/", "a"), Some(1));
        assert_eq!(hub.forget_socket("/", "a"), None);
        assert!(hub.session("/", "a").is_err());
        assert!(hub.participants("/", "r").is_empty());
        assert!(hub.recipients("/", NONE, NONE).is_empty());
        assert_eq!(hub.socket_count("/"), 0);
    }

    #[test]
    fn reregistering_replaces_the_handle() {
        let mut hub = Hub::new();
        hub.register_socket("/", Sid::from("a"), 1u8);
        hub.register_socket("/", Sid::from("a"), 2u8);
        assert_eq!(hub.owner("/", "a"), Some(2));
        assert_eq!(hub.recipients("/", NONE, NONE).len(), 1);
    }
}
