//! Room index of one Socket.IO namespace (python-socketio semantics).
//!
//! A [`RoomIndex`] records which members (sockets) belong to a namespace and
//! which rooms each of them is in, and answers "who receives this broadcast?"
//! ([`RoomIndex::select`]).
//!
//! Semantics, following python-socketio's `BaseManager`:
//!
//! * Every socket is expected to be in a room named after its own sid. The
//!   index does not do that itself: the caller joins it explicitly.
//! * A room exists exactly while it has at least one member: it is created by
//!   the first [`join`](RoomIndex::join) and disappears when its last member
//!   leaves (by [`leave`](RoomIndex::leave),
//!   [`remove_member`](RoomIndex::remove_member) or
//!   [`close_room`](RoomIndex::close_room)).
//! * A member of the namespace may be in no room at all (after
//!   [`insert_member`](RoomIndex::insert_member), or after leaving its last
//!   room); it is still reached by a broadcast to the whole namespace. Only
//!   [`remove_member`](RoomIndex::remove_member) takes it out of the
//!   namespace.
//! * A broadcast ([`BroadcastTarget`]) goes to every member of the namespace,
//!   or to the union of some rooms, minus the members of the excluded rooms,
//!   minus explicitly skipped members; each recipient is selected once.
//!
//! The index is a plain data structure with no interior locking: the runtime
//! keeps one per namespace behind a lock (or sharded).
//!
//! ```
//! use sockio_core::socketio::rooms::{BroadcastTarget, RoomIndex};
//!
//! let mut ns: RoomIndex<u32> = RoomIndex::new();
//! for sid in 1..=4u32 {
//!     ns.join(&sid, &sid.to_string()); // every socket is in its own room
//! }
//! ns.join(&1, "chat");
//! ns.join(&2, "chat");
//! ns.join(&3, "chat");
//! ns.join(&3, "muted");
//!
//! // emit(to="chat", skip_sid=1), skipping the "muted" room too.
//! let target = BroadcastTarget::room("chat").except_room("muted").skip(1);
//! assert_eq!(ns.select(&target), vec![2]);
//!
//! ns.remove_member(&2); // disconnect
//! let mut everyone = ns.select(&BroadcastTarget::all());
//! everyone.sort();
//! assert_eq!(everyone, vec![1, 3, 4]);
//! ```
//!
//! # Representation
//!
//! Each member gets a dense slot number `0..member_count()`: `keys[slot]` is
//! the member and `memberships[slot]` the rooms it is in (join order), each
//! with the member's position in that room's list; `rooms` maps a room name to
//! the slots of its members (`Vec<u32>`, in no particular order). Slots are
//! kept dense (removing a member moves the last slot into its place), and a
//! leave `swap_remove`s from the room's list, fixing the position recorded for
//! the member moved. So:
//!
//! * a broadcast walks plain vectors and never hashes a candidate: the whole
//!   namespace is a copy of `keys`, a room a gather through its slot list,
//!   both cut around the positions of skipped members; de-duplication
//!   (unions) and other exclusions (excluded rooms, skips in a union) use a
//!   bit set over the slots or, when the candidates are few compared to the
//!   namespace (so that clearing such a set would dominate), sorting, and
//!   scans of the candidate's own short room list;
//! * membership changes cost one hash lookup of the member and one of the room
//!   name per room touched, plus scans of the concerned members' room lists
//!   (usually 1 to 3 entries).
//!
//! The room names held by the memberships are clones of the keys of `rooms`
//! (one allocation per room name, shared).
//!
//! In the complexities below, `n` is the number of members of the namespace,
//! `r` the number of rooms of the member concerned and `|room|` the number of
//! members of a room; hash-map operations count as O(1) (expected). Limits:
//! at most `u32::MAX` members (a panic beyond).

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::sync::Arc;

/// Name of a room; an `Arc<str>` so that clones are cheap.
pub type RoomName = Arc<str>;

/// Without a bit set, up to this many skipped members are checked by a linear
/// scan of their slots; above it by a binary search.
const SKIP_LINEAR_MAX: usize = 8;

/// A bit set over all the slots is used by a broadcast when it costs at most
/// this many 64-bit words per candidate to clear (it then costs far less than
/// the candidates' own handling).
const MASK_WORDS_PER_CANDIDATE: usize = 4;

/// The members of the excluded rooms are marked in the bit set when they are
/// at most this many per candidate; otherwise each candidate's room list is
/// scanned for them.
const EXCEPT_MARKS_PER_CANDIDATE: usize = 4;

/// The room index of one namespace. See the [module documentation](self).
#[derive(Debug, Clone)]
pub struct RoomIndex<K> {
    /// Member → slot.
    ids: HashMap<K, u32>,
    /// Slot → member.
    keys: Vec<K>,
    /// Slot → rooms of the member (join order, no duplicates), each with the
    /// position of the member in that room's list.
    memberships: Vec<Vec<(RoomName, u32)>>,
    /// Room → slots of its members (no duplicates); never empty.
    rooms: HashMap<RoomName, Vec<u32>>,
}

impl<K: Clone + Eq + Hash> Default for RoomIndex<K> {
    fn default() -> Self {
        Self::new()
    }
}

/// How a broadcast may use a bit set over all the slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MaskPolicy {
    /// When it is cheap compared to the candidates (see the constants).
    Auto,
    /// Always (for tests: exercises the bit-set paths).
    #[cfg(test)]
    Always,
    /// Never (for tests: exercises the sorting and scanning paths).
    #[cfg(test)]
    Never,
}

/// Adds a room to a member's list. The first room gets a list of one: nearly every socket is in
/// its own room only, and a plain first push reserves four entries (96 bytes per connection,
/// bench/ANALYSIS.md, idle memory); later pushes grow the list as usual.
fn add_membership(list: &mut Vec<(RoomName, u32)>, entry: (RoomName, u32)) {
    if list.capacity() == 0 {
        list.reserve_exact(1);
    }
    list.push(entry);
}

impl<K: Clone + Eq + Hash> RoomIndex<K> {
    /// An empty index: no members, no rooms. O(1), allocates nothing.
    pub fn new() -> Self {
        Self {
            ids: HashMap::new(),
            keys: Vec::new(),
            memberships: Vec::new(),
            rooms: HashMap::new(),
        }
    }

    /// Adds `member` to `room`; returns true if it was not there.
    ///
    /// Registers the member in the namespace if it is new, and creates the
    /// room if it does not exist (the only case that allocates the name).
    ///
    /// O(min(r, |room|)) to see whether it is already there (usually r ≤ 3),
    /// plus O(1) expected.
    pub fn join(&mut self, member: &K, room: &str) -> bool {
        let id = self.register(member);
        let rooms_of_member = &self.memberships[id as usize];
        if let Some((name, list)) = self.rooms.get_key_value(room) {
            let present = if rooms_of_member.len() <= list.len() {
                rooms_of_member.iter().any(|(n, _)| same(n, name))
            } else {
                list.contains(&id)
            };
            if present {
                return false;
            }
            let name = name.clone();
            let Some(list) = self.rooms.get_mut(room) else {
                unreachable!("room found just above");
            };
            let pos = to_u32(list.len());
            list.push(id);
            add_membership(&mut self.memberships[id as usize], (name, pos));
        } else {
            let name: RoomName = Arc::from(room);
            self.rooms.insert(name.clone(), vec![id]);
            add_membership(&mut self.memberships[id as usize], (name, 0));
        }
        true
    }

    /// Registers a member of the namespace without any room (so that a
    /// broadcast to the whole namespace reaches it). Returns true if it was
    /// not a member yet; an existing member keeps its rooms.
    ///
    /// O(1) expected.
    pub fn insert_member(&mut self, member: &K) -> bool {
        if self.ids.contains_key(member) {
            return false;
        }
        self.register(member);
        true
    }

    /// Removes `member` from `room`; returns true if it was there. The room
    /// disappears if it becomes empty. The member stays in the namespace, even
    /// if it is now in no room (use [`remove_member`](Self::remove_member) on
    /// disconnect).
    ///
    /// O(r) plus O(r') for the member moved into its place in the room's list
    /// (usually both ≤ 3).
    pub fn leave(&mut self, member: &K, room: &str) -> bool {
        let (Some(&id), Some((name, _))) = (self.ids.get(member), self.rooms.get_key_value(room))
        else {
            return false;
        };
        let rooms_of_member = &mut self.memberships[id as usize];
        let Some(k) = rooms_of_member.iter().position(|(n, _)| same(n, name)) else {
            return false;
        };
        let (name, pos) = rooms_of_member.remove(k);
        shrink_when_sparse(rooms_of_member);
        if let Some(moved) = self.detach(&name, pos) {
            self.reposition(moved, &name, pos);
        }
        true
    }

    /// Removes the member from every room and from the namespace; returns the
    /// rooms it was in (in join order; empty for an unknown member). Rooms
    /// left empty disappear.
    ///
    /// O(r + Σ r') where the r' are the room counts of the members moved in
    /// the room lists and in the slots (usually O(r)).
    pub fn remove_member(&mut self, member: &K) -> Vec<RoomName> {
        let Some(id) = self.ids.remove(member) else {
            return Vec::new();
        };
        let slot = id as usize;
        let rooms = std::mem::take(&mut self.memberships[slot]);
        // The members moved into the leaver's places, with their new positions. Fixed
        // afterwards, per member: a member sharing many rooms with the leaver (most often
        // another socket of the same client) is then searched through once, not once a room.
        if rooms.len() <= ROOMS_SCANNED_MAX {
            for (name, pos) in &rooms {
                if let Some(moved) = self.detach(name, *pos) {
                    self.reposition(moved, name, *pos);
                }
            }
        } else {
            let mut moves: Vec<(u32, &RoomName, u32)> = Vec::new();
            for (name, pos) in &rooms {
                if let Some(moved) = self.detach(name, *pos) {
                    moves.push((moved, name, *pos));
                }
            }
            self.reposition_all(&mut moves);
        }
        // Keep the slots dense: the last member moves into the freed slot.
        self.keys.swap_remove(slot);
        self.memberships.swap_remove(slot);
        if let Some(moved) = self.keys.get(slot) {
            match self.ids.get_mut(moved) {
                Some(moved_id) => *moved_id = id,
                None => unreachable!("every slot is registered"),
            }
            for (name, pos) in &self.memberships[slot] {
                match self.rooms.get_mut(&**name) {
                    Some(list) => list[*pos as usize] = id,
                    None => unreachable!("a member's rooms exist"),
                }
            }
        }
        rooms.into_iter().map(|(name, _)| name).collect()
    }

    /// Removes every member from `room`, which disappears; returns them (in
    /// no particular order; empty for an unknown room). They stay members of
    /// the namespace and of their other rooms.
    ///
    /// O(Σ r) over the members of the room (usually O(|room|)).
    pub fn close_room(&mut self, room: &str) -> Vec<K> {
        let Some((name, list)) = self.rooms.remove_entry(room) else {
            return Vec::new();
        };
        shrink_map_when_sparse(&mut self.rooms);
        let mut removed = Vec::with_capacity(list.len());
        for id in list {
            let rooms_of_member = &mut self.memberships[id as usize];
            if let Some(k) = rooms_of_member.iter().position(|(n, _)| same(n, &name)) {
                rooms_of_member.remove(k);
                shrink_when_sparse(rooms_of_member);
            }
            removed.push(self.keys[id as usize].clone());
        }
        removed
    }

    /// The rooms `member` is in, in join order (empty for an unknown member).
    ///
    /// O(r).
    pub fn rooms_of(&self, member: &K) -> Vec<RoomName> {
        match self.ids.get(member) {
            Some(&id) => self.memberships[id as usize]
                .iter()
                .map(|(name, _)| name.clone())
                .collect(),
            None => Vec::new(),
        }
    }

    /// The members of `room`, in no particular order (empty for an unknown
    /// room).
    ///
    /// O(|room|).
    pub fn members_of(&self, room: &str) -> Vec<K> {
        match self.rooms.get(room) {
            Some(list) => list
                .iter()
                .map(|&id| self.keys[id as usize].clone())
                .collect(),
            None => Vec::new(),
        }
    }

    /// Whether `room` has a member, without listing them.
    ///
    /// O(1) expected.
    pub fn has_members(&self, room: &str) -> bool {
        self.rooms.get(room).is_some_and(|list| !list.is_empty())
    }

    /// Whether `member` is a member of the namespace (in any room or none).
    ///
    /// O(1) expected.
    pub fn contains_member(&self, member: &K) -> bool {
        self.ids.contains_key(member)
    }

    /// Whether `member` is in `room`.
    ///
    /// O(min(r, |room|)) (usually r ≤ 3).
    pub fn is_in_room(&self, member: &K, room: &str) -> bool {
        let (Some(&id), Some((name, list))) =
            (self.ids.get(member), self.rooms.get_key_value(room))
        else {
            return false;
        };
        let rooms_of_member = &self.memberships[id as usize];
        if rooms_of_member.len() <= list.len() {
            rooms_of_member.iter().any(|(n, _)| same(n, name))
        } else {
            list.contains(&id)
        }
    }

    /// Number of members of the namespace. O(1).
    pub fn member_count(&self) -> usize {
        self.keys.len()
    }

    /// Number of (non-empty) rooms. O(1).
    pub fn room_count(&self) -> usize {
        self.rooms.len()
    }

    /// The recipients of a broadcast, each once, in no particular order.
    ///
    /// Complexity as for [`select_into`](Self::select_into).
    pub fn select(&self, target: &BroadcastTarget<K>) -> Vec<K> {
        let mut out = Vec::new();
        self.select_into(target, &mut out);
        out
    }

    /// The recipients of a broadcast, each once, in no particular order,
    /// appended to `out` (which is not cleared first: a caller reusing one
    /// buffer across broadcasts clears it itself, keeping its capacity).
    ///
    /// Room names of `target` that are unknown select nobody (in `rooms`) or
    /// exclude nobody (in `except_rooms`); a room or member named twice counts
    /// once.
    ///
    /// Complexity, with `C` the number of candidates (`n` for an empty
    /// `target.rooms`, otherwise the sum of the sizes of the target rooms),
    /// `S = |skip|`, plus one clone per recipient and one hash lookup per
    /// entry of `target`:
    ///
    /// * the whole namespace or a single room, with no excluded room: a
    ///   straight copy, O(C), cut around the skipped members' positions,
    ///   O(S log S) (O(S · r) more to find them in a room);
    /// * otherwise O(C) with a bit set over the namespace, O(n / 64) to clear
    ///   (used when n / 64 ≤ 4·C, so always for the whole namespace), O(S) and
    ///   O(Σ |excluded room|) to mark the exclusions (the latter when it is
    ///   ≤ 4·C); without one (few candidates in a large namespace),
    ///   O(C log C) to de-duplicate a union, O(C · min(S, 8) + C log S) to
    ///   check skipped members; and excluded rooms not marked are checked on
    ///   each candidate's room list, O(C · r · |except_rooms|).
    pub fn select_into(&self, target: &BroadcastTarget<K>, out: &mut Vec<K>) {
        self.select_with(target, out, MaskPolicy::Auto);
    }

    fn select_with(&self, target: &BroadcastTarget<K>, out: &mut Vec<K>, policy: MaskPolicy) {
        let n = self.keys.len();

        // The target rooms (unknown ones and duplicates dropped); none means
        // the whole namespace, unless rooms were named.
        let mut lists: Vec<(&RoomName, &[u32])> = Vec::new();
        // Rooms named twice count once: checked against those taken so far while they are few,
        // through a set past that (a list of thousands of rooms was quadratic).
        let mut taken: HashSet<*const u8> = HashSet::new();
        for name in &target.rooms {
            if let Some((name, list)) = self.rooms.get_key_value(&**name) {
                let new = if lists.len() < ROOMS_SCANNED_MAX {
                    !lists.iter().any(|(n, _)| same(n, name))
                } else {
                    if taken.is_empty() {
                        taken.extend(lists.iter().map(|(n, _)| n.as_ptr()));
                    }
                    taken.insert(name.as_ptr())
                };
                if new {
                    lists.push((name, list));
                }
            }
        }
        let whole = target.rooms.is_empty();
        if !whole && lists.is_empty() {
            return;
        }
        let candidates = if whole {
            n
        } else {
            lists.iter().map(|(_, l)| l.len()).sum()
        };

        // What is excluded.
        let except: Vec<(&RoomName, &[u32])> = target
            .except_rooms
            .iter()
            .filter_map(|name| self.rooms.get_key_value(&**name))
            .map(|(name, list)| (name, list.as_slice()))
            .collect();
        let mut skip: Vec<u32> = target
            .skip
            .iter()
            .filter_map(|m| self.ids.get(m).copied())
            .collect();

        // The whole namespace or a single room, maybe with skipped members:
        // copies of the runs between the positions of the skipped members.
        if except.is_empty() && lists.len() <= 1 {
            out.reserve(candidates);
            match lists.first() {
                None => {
                    // A slot is its position in `keys`.
                    skip.sort_unstable();
                    skip.dedup();
                    let mut start = 0;
                    for &cut in &skip {
                        out.extend_from_slice(&self.keys[start..cut as usize]);
                        start = cut as usize + 1;
                    }
                    out.extend_from_slice(&self.keys[start..]);
                }
                Some((name, list)) => {
                    // A skipped member's position in the room is in its own
                    // room list.
                    let mut cuts: Vec<u32> = skip
                        .iter()
                        .filter_map(|&id| {
                            self.memberships[id as usize]
                                .iter()
                                .find(|(n, _)| same(n, name))
                                .map(|(_, pos)| *pos)
                        })
                        .collect();
                    cuts.sort_unstable();
                    cuts.dedup();
                    let mut start = 0;
                    for &cut in &cuts {
                        self.copy(&list[start..cut as usize], out);
                        start = cut as usize + 1;
                    }
                    self.copy(&list[start..], out);
                }
            }
            return;
        }

        let mask_ok = match policy {
            MaskPolicy::Auto => n.div_ceil(64) <= MASK_WORDS_PER_CANDIDATE * candidates,
            #[cfg(test)]
            MaskPolicy::Always => true,
            #[cfg(test)]
            MaskPolicy::Never => false,
        };
        let dedup_by_mask = lists.len() > 1 && mask_ok;
        let except_marks: usize = except.iter().map(|(_, l)| l.len()).sum();
        let except_by_mask = !except.is_empty()
            && mask_ok
            && (except_marks <= EXCEPT_MARKS_PER_CANDIDATE * candidates
                || policy != MaskPolicy::Auto);
        let mut mask = (dedup_by_mask || except_by_mask).then(|| Bits::new(n));
        if let Some(mask) = &mut mask {
            for &id in &skip {
                mask.set(id);
            }
            skip.clear();
            if except_by_mask {
                for (_, list) in &except {
                    for &id in *list {
                        mask.set(id);
                    }
                }
            }
        }
        let except_scan: Vec<&RoomName> = if except_by_mask {
            Vec::new()
        } else {
            except.iter().map(|(name, _)| *name).collect()
        };
        let skip_sorted = skip.len() > SKIP_LINEAR_MAX;
        if skip_sorted {
            skip.sort_unstable();
        }

        out.reserve(candidates);
        match mask {
            // Everything is in the bit set: the tightest loops.
            Some(mask) if whole => self.copy_clear(&mask, out),
            Some(mut mask) if skip.is_empty() && except_scan.is_empty() => {
                self.gather(&lists, false, out, |id| !mask.test_and_set(id));
            }
            mut mask => {
                let keep = |id: u32| -> bool {
                    if let Some(mask) = &mut mask
                        && mask.test_and_set(id)
                    {
                        return false;
                    }
                    let skipped = if skip_sorted {
                        skip.binary_search(&id).is_ok()
                    } else {
                        skip.contains(&id)
                    };
                    !skipped
                        && (except_scan.is_empty()
                            || !self.memberships[id as usize]
                                .iter()
                                .any(|(name, _)| except_scan.iter().any(|e| Arc::ptr_eq(name, e))))
                };
                if whole {
                    let mut keep = keep;
                    for (id, key) in self.keys.iter().enumerate() {
                        if keep(id as u32) {
                            out.push(key.clone());
                        }
                    }
                } else {
                    // Without a bit set, a union is de-duplicated by sorting.
                    self.gather(&lists, lists.len() > 1 && !dedup_by_mask, out, keep);
                }
            }
        }
    }

    /// Pushes the members of the slots in `ids`.
    fn copy(&self, ids: &[u32], out: &mut Vec<K>) {
        out.extend(ids.iter().map(|&id| self.keys[id as usize].clone()));
    }

    /// Pushes the members of the slots whose bit is clear in `mask`, copying
    /// whole runs of 64 where no bit is set.
    fn copy_clear(&self, mask: &Bits, out: &mut Vec<K>) {
        for (keys, &word) in self.keys.chunks(64).zip(&mask.0) {
            if word == 0 {
                out.extend_from_slice(keys);
            } else {
                let mut free = !word;
                if keys.len() < 64 {
                    free &= (1 << keys.len()) - 1;
                }
                while free != 0 {
                    out.push(keys[free.trailing_zeros() as usize].clone());
                    free &= free - 1;
                }
            }
        }
    }

    /// Pushes the members of the slots listed in `lists` that `keep` accepts
    /// (after sorting and de-duplicating the slots if `sort_dedup`).
    fn gather(
        &self,
        lists: &[(&RoomName, &[u32])],
        sort_dedup: bool,
        out: &mut Vec<K>,
        mut keep: impl FnMut(u32) -> bool,
    ) {
        if sort_dedup {
            let mut ids: Vec<u32> = lists.iter().flat_map(|(_, l)| l.iter().copied()).collect();
            ids.sort_unstable();
            ids.dedup();
            for id in ids {
                if keep(id) {
                    out.push(self.keys[id as usize].clone());
                }
            }
        } else {
            for (_, list) in lists {
                for &id in *list {
                    if keep(id) {
                        out.push(self.keys[id as usize].clone());
                    }
                }
            }
        }
    }

    /// The slot of `member`, registering it (in no room) if it is new.
    fn register(&mut self, member: &K) -> u32 {
        if let Some(&id) = self.ids.get(member) {
            return id;
        }
        let id = to_u32(self.keys.len());
        // Both clones before any change, so that a panicking clone leaves the
        // index as it was.
        let (key, slot_key) = (member.clone(), member.clone());
        self.ids.insert(key, id);
        self.keys.push(slot_key);
        self.memberships.push(Vec::new());
        id
    }

    /// Removes the entry at `pos` of room `name`'s list (whose member has
    /// already dropped the room from its own list); drops the room if it is
    /// now empty. Returns the member moved into `pos`, whose own record of its
    /// position the caller fixes ([`reposition`](Self::reposition)).
    fn detach(&mut self, name: &RoomName, pos: u32) -> Option<u32> {
        let Some(list) = self.rooms.get_mut(&**name) else {
            unreachable!("a member's rooms exist");
        };
        list.swap_remove(pos as usize);
        if list.is_empty() {
            self.rooms.remove(&**name);
            shrink_map_when_sparse(&mut self.rooms);
            return None;
        }
        let moved = list.get(pos as usize).copied();
        shrink_when_sparse(list);
        moved
    }

    /// Records that member `moved` is now at `pos` in room `name`'s list. O(r).
    fn reposition(&mut self, moved: u32, name: &RoomName, pos: u32) {
        if let Some(entry) = self.memberships[moved as usize]
            .iter_mut()
            .find(|(n, _)| same(n, name))
        {
            entry.1 = pos;
        }
    }

    /// [`reposition`](Self::reposition) for each of `moves`, (member, room, position): a member
    /// with many moves gets its rooms indexed once. O(Σ r') over the members moved.
    fn reposition_all(&mut self, moves: &mut [(u32, &RoomName, u32)]) {
        moves.sort_unstable_by_key(|(moved, _, _)| *moved);
        for group in moves.chunk_by(|a, b| a.0 == b.0) {
            let moved = group[0].0;
            if group.len() <= ROOMS_SCANNED_MAX {
                for (_, name, pos) in group {
                    self.reposition(moved, name, *pos);
                }
                continue;
            }
            let rooms_of_member = &mut self.memberships[moved as usize];
            let at: HashMap<*const u8, usize> = rooms_of_member
                .iter()
                .enumerate()
                .map(|(k, (n, _))| (n.as_ptr(), k))
                .collect();
            for (_, name, pos) in group {
                if let Some(&k) = at.get(&name.as_ptr()) {
                    rooms_of_member[k].1 = *pos;
                }
            }
        }
    }

    /// Checks that the structures agree; panics otherwise. For tests.
    #[cfg(test)]
    fn check_invariants(&self) {
        let n = self.keys.len();
        assert_eq!(self.memberships.len(), n);
        assert_eq!(self.ids.len(), n);
        for (id, key) in self.keys.iter().enumerate() {
            assert_eq!(
                self.ids.get(key),
                Some(&(id as u32)),
                "slot {id} misregistered"
            );
        }
        let mut entries = 0;
        for (id, rooms) in self.memberships.iter().enumerate() {
            for (i, (name, pos)) in rooms.iter().enumerate() {
                assert!(
                    !rooms[..i].iter().any(|(n, _)| n == name),
                    "room {name:?} listed twice for a member"
                );
                let (key, list) = self
                    .rooms
                    .get_key_value(&**name)
                    .expect("member's room does not exist");
                assert!(Arc::ptr_eq(key, name), "room name not shared");
                assert_eq!(list.get(*pos as usize), Some(&(id as u32)), "bad position");
                entries += 1;
            }
        }
        let mut listed = 0;
        for (name, list) in &self.rooms {
            assert!(!list.is_empty(), "empty room {name:?} left behind");
            listed += list.len();
        }
        // Every list entry is some member's (name, pos), and vice versa.
        assert_eq!(entries, listed);
    }
}

/// The same room: the names held by memberships share the allocation of the
/// room's key (`check_invariants`), so a pointer comparison, whatever the
/// length of the name (comparing the text made long names a cost per member).
fn same(a: &RoomName, b: &RoomName) -> bool {
    Arc::ptr_eq(a, b)
}

/// Past this many entries a list is not scanned for one: a set or an index is built.
const ROOMS_SCANNED_MAX: usize = 8;

/// Gives back a list's spare room once it is at most a quarter full: a socket that joined
/// thousands of rooms, or a room that had thousands of members, would otherwise keep that
/// peak for as long as it lives. Amortised O(1): the list shrinks to twice its length.
fn shrink_when_sparse<T>(list: &mut Vec<T>) {
    if list.capacity() > 16 && list.len() * 4 <= list.capacity() {
        list.shrink_to(list.len() * 2);
    }
}

/// [`shrink_when_sparse`] for a namespace's map of rooms (a hash table never shrinks itself).
fn shrink_map_when_sparse<V>(map: &mut HashMap<RoomName, V>) {
    if map.capacity() > 64 && map.len() * 4 <= map.capacity() {
        map.shrink_to(map.len() * 2);
    }
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).expect("more than u32::MAX members in a namespace")
}

/// A bit set over the slots of a namespace.
struct Bits(Vec<u64>);

impl Bits {
    fn new(len: usize) -> Self {
        Self(vec![0; len.div_ceil(64)])
    }

    fn set(&mut self, i: u32) {
        self.0[(i >> 6) as usize] |= 1 << (i & 63);
    }

    /// Sets bit `i`; returns whether it was already set.
    fn test_and_set(&mut self, i: u32) -> bool {
        let word = &mut self.0[(i >> 6) as usize];
        let bit = 1 << (i & 63);
        let was = *word & bit != 0;
        *word |= bit;
        was
    }
}

/// Whom a broadcast goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BroadcastTarget<K> {
    /// Empty = every member of the namespace; otherwise the union of these rooms.
    pub rooms: Vec<RoomName>,
    /// Members of any of these rooms are skipped.
    pub except_rooms: Vec<RoomName>,
    /// These members are skipped (python-socketio's skip_sid, one or many).
    pub skip: Vec<K>,
}

impl<K> Default for BroadcastTarget<K> {
    /// Same as [`BroadcastTarget::all`].
    fn default() -> Self {
        Self::all()
    }
}

impl<K> BroadcastTarget<K> {
    /// Every member of the namespace.
    pub fn all() -> Self {
        Self {
            rooms: Vec::new(),
            except_rooms: Vec::new(),
            skip: Vec::new(),
        }
    }

    /// The members of one room.
    pub fn room(name: &str) -> Self {
        Self {
            rooms: vec![Arc::from(name)],
            ..Self::all()
        }
    }

    /// The union of several rooms. Note that no room at all means every
    /// member of the namespace, as for [`all`](Self::all).
    pub fn rooms<I: IntoIterator<Item = S>, S: AsRef<str>>(names: I) -> Self {
        Self {
            rooms: names.into_iter().map(|n| Arc::from(n.as_ref())).collect(),
            ..Self::all()
        }
    }

    /// Also skips the members of room `name`.
    pub fn except_room(mut self, name: &str) -> Self {
        self.except_rooms.push(Arc::from(name));
        self
    }

    /// Also skips `member`.
    pub fn skip(mut self, member: K) -> Self {
        self.skip.push(member);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
        v.sort();
        v
    }

    /// `select` under every mask policy (which must agree, without
    /// duplicates), sorted.
    fn sel<K>(idx: &RoomIndex<K>, t: &BroadcastTarget<K>) -> Vec<K>
    where
        K: Clone + Eq + Hash + Ord + std::fmt::Debug,
    {
        let want = sorted(idx.select(t));
        assert!(want.windows(2).all(|w| w[0] < w[1]), "duplicates: {want:?}");
        for policy in [MaskPolicy::Always, MaskPolicy::Never] {
            let mut got = Vec::new();
            idx.select_with(t, &mut got, policy);
            assert_eq!(sorted(got), want, "{policy:?}");
        }
        want
    }

    fn names(v: &[RoomName]) -> Vec<&str> {
        v.iter().map(|r| &**r).collect()
    }

    fn sorted_names(v: Vec<RoomName>) -> Vec<String> {
        sorted(v.iter().map(|r| r.to_string()).collect())
    }

    /// Members 1..=n, each in its own sid room `s{i}`, and in `even`/`odd`,
    /// and multiples of 3 in `three`.
    fn sample(n: u32) -> RoomIndex<u32> {
        let mut idx = RoomIndex::new();
        for i in 1..=n {
            assert!(idx.join(&i, &format!("s{i}")));
            assert!(idx.join(&i, if i % 2 == 0 { "even" } else { "odd" }));
            if i % 3 == 0 {
                assert!(idx.join(&i, "three"));
            }
        }
        idx.check_invariants();
        idx
    }

    #[test]
    fn new_and_default_are_empty() {
        let idx: RoomIndex<u32> = RoomIndex::new();
        assert_eq!(idx.member_count(), 0);
        assert_eq!(idx.room_count(), 0);
        assert!(sel(&idx, &BroadcastTarget::all()).is_empty());
        let idx: RoomIndex<String> = RoomIndex::default();
        assert_eq!(idx.member_count(), 0);
        assert_eq!(idx.room_count(), 0);
    }

    #[test]
    fn join_registers_member_and_room() {
        let mut idx = RoomIndex::new();
        assert!(idx.join(&1u32, "a"));
        assert!(idx.contains_member(&1));
        assert!(idx.is_in_room(&1, "a"));
        assert_eq!(idx.member_count(), 1);
        assert_eq!(idx.room_count(), 1);
        assert_eq!(idx.members_of("a"), vec![1]);
        assert_eq!(names(&idx.rooms_of(&1)), ["a"]);
        idx.check_invariants();
    }

    #[test]
    fn join_twice_is_a_no_op() {
        let mut idx = RoomIndex::new();
        assert!(idx.join(&1u32, "a"));
        assert!(!idx.join(&1, "a"));
        assert_eq!(names(&idx.rooms_of(&1)), ["a"]);
        assert_eq!(idx.members_of("a"), vec![1]);
        assert_eq!(idx.room_count(), 1);
        assert_eq!(idx.member_count(), 1);
        idx.check_invariants();
    }

    #[test]
    fn join_shares_the_room_name() {
        let mut idx = RoomIndex::new();
        idx.join(&1u32, "a");
        idx.join(&2u32, "a");
        let r1 = idx.rooms_of(&1);
        let r2 = idx.rooms_of(&2);
        assert!(Arc::ptr_eq(&r1[0], &r2[0]));
        idx.check_invariants();
    }

    #[test]
    fn rooms_of_is_in_join_order() {
        let mut idx = RoomIndex::new();
        for r in ["sid", "c", "a", "b"] {
            idx.join(&7u32, r);
        }
        assert_eq!(names(&idx.rooms_of(&7)), ["sid", "c", "a", "b"]);
        assert!(idx.leave(&7, "c"));
        assert_eq!(names(&idx.rooms_of(&7)), ["sid", "a", "b"]);
        idx.join(&7, "c");
        assert_eq!(names(&idx.rooms_of(&7)), ["sid", "a", "b", "c"]);
        idx.check_invariants();
    }

    #[test]
    fn room_names_are_case_sensitive_and_may_be_empty() {
        let mut idx = RoomIndex::new();
        assert!(idx.join(&1u32, "Room"));
        assert!(idx.join(&1, "room"));
        assert!(idx.join(&1, ""));
        assert_eq!(idx.room_count(), 3);
        assert!(idx.is_in_room(&1, ""));
        assert_eq!(sel(&idx, &BroadcastTarget::room("")), vec![1]);
        idx.check_invariants();
    }

    #[test]
    fn insert_member_without_room() {
        let mut idx = RoomIndex::new();
        assert!(idx.insert_member(&1u32));
        assert!(!idx.insert_member(&1));
        assert!(idx.contains_member(&1));
        assert!(idx.rooms_of(&1).is_empty());
        assert_eq!(idx.member_count(), 1);
        assert_eq!(idx.room_count(), 0);
        assert_eq!(sel(&idx, &BroadcastTarget::all()), vec![1]);
        // Joining later works; re-inserting keeps the rooms.
        assert!(idx.join(&1, "a"));
        assert!(!idx.insert_member(&1));
        assert_eq!(names(&idx.rooms_of(&1)), ["a"]);
        idx.check_invariants();
    }

    #[test]
    fn leave_removes_and_drops_empty_room() {
        let mut idx = RoomIndex::new();
        idx.join(&1u32, "a");
        idx.join(&2u32, "a");
        idx.join(&1u32, "b");
        assert!(idx.leave(&1, "a"));
        assert!(!idx.is_in_room(&1, "a"));
        assert_eq!(idx.members_of("a"), vec![2]);
        assert_eq!(idx.room_count(), 2);
        assert!(idx.leave(&2, "a"));
        assert_eq!(idx.room_count(), 1);
        assert!(idx.members_of("a").is_empty());
        // Leaving the last room keeps the member in the namespace.
        assert!(idx.leave(&1, "b"));
        assert_eq!(idx.room_count(), 0);
        assert!(idx.contains_member(&1));
        assert!(idx.contains_member(&2));
        assert_eq!(sorted(sel(&idx, &BroadcastTarget::all())), vec![1, 2]);
        idx.check_invariants();
    }

    #[test]
    fn leave_a_room_not_in() {
        let mut idx = RoomIndex::new();
        idx.join(&1u32, "a");
        idx.join(&2u32, "b");
        // Existing room, not a member of it.
        assert!(!idx.leave(&1, "b"));
        // Unknown room.
        assert!(!idx.leave(&1, "zzz"));
        // Unknown member.
        assert!(!idx.leave(&9, "a"));
        assert!(!idx.contains_member(&9));
        // Leave twice.
        assert!(idx.leave(&1, "a"));
        assert!(!idx.leave(&1, "a"));
        assert_eq!(idx.members_of("b"), vec![2]);
        assert_eq!(idx.room_count(), 1);
        assert_eq!(idx.member_count(), 2);
        idx.check_invariants();
    }

    #[test]
    fn remove_member_leaves_no_trace() {
        let mut idx = RoomIndex::new();
        idx.join(&1u32, "s1");
        idx.join(&1, "shared");
        idx.join(&1, "alone");
        idx.join(&2u32, "s2");
        idx.join(&2, "shared");
        let rooms = idx.remove_member(&1);
        assert_eq!(names(&rooms), ["s1", "shared", "alone"]);
        assert!(!idx.contains_member(&1));
        assert!(idx.rooms_of(&1).is_empty());
        assert!(!idx.is_in_room(&1, "shared"));
        assert_eq!(idx.members_of("shared"), vec![2]);
        // Rooms left empty are gone.
        assert_eq!(
            sorted(idx.rooms.keys().map(|r| r.to_string()).collect()),
            ["s2", "shared"]
        );
        assert_eq!(idx.member_count(), 1);
        assert_eq!(idx.room_count(), 2);
        assert_eq!(sel(&idx, &BroadcastTarget::all()), vec![2]);
        idx.check_invariants();
    }

    #[test]
    fn remove_unknown_or_roomless_member() {
        let mut idx: RoomIndex<u32> = RoomIndex::new();
        assert!(idx.remove_member(&1).is_empty());
        idx.insert_member(&1);
        assert!(idx.remove_member(&1).is_empty());
        assert!(!idx.contains_member(&1));
        assert_eq!(idx.member_count(), 0);
        assert!(idx.remove_member(&1).is_empty());
        idx.check_invariants();
    }

    #[test]
    fn remove_member_then_rejoin() {
        let mut idx = RoomIndex::new();
        idx.join(&1u32, "a");
        idx.remove_member(&1);
        assert!(idx.join(&1, "a"));
        assert_eq!(names(&idx.rooms_of(&1)), ["a"]);
        idx.check_invariants();
    }

    #[test]
    fn close_room_removes_everyone_from_it() {
        let mut idx = sample(10);
        let closed = idx.close_room("even");
        assert_eq!(sorted(closed), vec![2, 4, 6, 8, 10]);
        assert!(idx.members_of("even").is_empty());
        assert_eq!(idx.room_count(), 10 + 1 + 1); // sid rooms, odd, three
        // Members stay in the namespace and their other rooms.
        assert_eq!(idx.member_count(), 10);
        assert_eq!(names(&idx.rooms_of(&6)), ["s6", "three"]);
        assert!(idx.is_in_room(&6, "three"));
        assert!(sel(&idx, &BroadcastTarget::room("even")).is_empty());
        // The room can be created again.
        assert!(idx.join(&3, "even"));
        assert_eq!(idx.members_of("even"), vec![3]);
        idx.check_invariants();
    }

    #[test]
    fn close_unknown_room() {
        let mut idx = sample(4);
        assert!(idx.close_room("nope").is_empty());
        assert_eq!(idx.member_count(), 4);
        assert_eq!(idx.room_count(), 4 + 2 + 1);
        idx.check_invariants();
    }

    #[test]
    fn close_room_twice_and_sid_room() {
        let mut idx = sample(4);
        assert_eq!(idx.close_room("s1"), vec![1]);
        assert!(idx.close_room("s1").is_empty());
        assert!(idx.contains_member(&1));
        assert_eq!(names(&idx.rooms_of(&1)), ["odd"]);
        idx.check_invariants();
    }

    #[test]
    fn members_of_and_queries_on_unknowns() {
        let idx = sample(6);
        assert_eq!(sorted(idx.members_of("three")), vec![3, 6]);
        assert!(idx.members_of("nope").is_empty());
        assert!(idx.has_members("three"));
        assert!(!idx.has_members("nope"));
        assert!(idx.rooms_of(&99).is_empty());
        assert!(!idx.contains_member(&99));
        assert!(!idx.is_in_room(&99, "odd"));
        assert!(!idx.is_in_room(&1, "nope"));
        assert!(!idx.is_in_room(&1, "even"));
        assert!(idx.is_in_room(&1, "odd"));
    }

    #[test]
    fn select_all() {
        let idx = sample(5);
        assert_eq!(
            sorted(sel(&idx, &BroadcastTarget::all())),
            vec![1, 2, 3, 4, 5]
        );
        assert_eq!(
            sorted(sel(&idx, &BroadcastTarget::default())),
            vec![1, 2, 3, 4, 5]
        );
        // An empty list of rooms is "everyone".
        assert_eq!(
            sorted(sel(&idx, &BroadcastTarget::rooms(Vec::<&str>::new()))),
            vec![1, 2, 3, 4, 5]
        );
    }

    #[test]
    fn select_one_room() {
        let idx = sample(10);
        assert_eq!(
            sorted(sel(&idx, &BroadcastTarget::room("three"))),
            vec![3, 6, 9]
        );
        assert_eq!(sel(&idx, &BroadcastTarget::room("s4")), vec![4]);
        assert!(sel(&idx, &BroadcastTarget::room("nope")).is_empty());
    }

    #[test]
    fn select_union_with_overlap() {
        let idx = sample(12);
        let got = sel(&idx, &BroadcastTarget::rooms(["even", "three"]));
        assert_eq!(sorted(got), vec![2, 3, 4, 6, 8, 9, 10, 12]);
        // Same room twice, unknown rooms, sid rooms overlapping.
        let got = sel(
            &idx,
            &BroadcastTarget::rooms(["three", "nope", "three", "s3", "s5"]),
        );
        assert_eq!(sorted(got), vec![3, 5, 6, 9, 12]);
        // Union of disjoint rooms covering everyone.
        let got = sel(&idx, &BroadcastTarget::rooms(["even", "odd"]));
        assert_eq!(sorted(got), (1..=12).collect::<Vec<_>>());
        // Only unknown rooms: nobody (not everyone).
        assert!(sel(&idx, &BroadcastTarget::rooms(["x", "y"])).is_empty());
    }

    #[test]
    fn select_except_rooms() {
        let idx = sample(12);
        let t = BroadcastTarget::all().except_room("even");
        assert_eq!(sorted(sel(&idx, &t)), vec![1, 3, 5, 7, 9, 11]);
        let t = BroadcastTarget::all()
            .except_room("even")
            .except_room("three");
        assert_eq!(sorted(sel(&idx, &t)), vec![1, 5, 7, 11]);
        let t = BroadcastTarget::room("three").except_room("even");
        assert_eq!(sorted(sel(&idx, &t)), vec![3, 9]);
        // Excluding an unknown room excludes nobody.
        let t = BroadcastTarget::room("three").except_room("nope");
        assert_eq!(sorted(sel(&idx, &t)), vec![3, 6, 9, 12]);
        // Excluding the target room itself.
        let t = BroadcastTarget::room("three").except_room("three");
        assert!(sel(&idx, &t).is_empty());
        // Union with exclusion.
        let t = BroadcastTarget::rooms(["three", "s1", "s2"]).except_room("odd");
        assert_eq!(sorted(sel(&idx, &t)), vec![2, 6, 12]);
    }

    #[test]
    fn select_skip() {
        let idx = sample(6);
        let t = BroadcastTarget::all().skip(2);
        assert_eq!(sorted(sel(&idx, &t)), vec![1, 3, 4, 5, 6]);
        let t = BroadcastTarget::room("even").skip(4).skip(6);
        assert_eq!(sel(&idx, &t), vec![2]);
        // Skipping a non-member or a member outside the room is harmless.
        let t = BroadcastTarget::room("three").skip(99).skip(1);
        assert_eq!(sorted(sel(&idx, &t)), vec![3, 6]);
        // Skipping the same member twice.
        let t = BroadcastTarget::all().skip(1).skip(1);
        assert_eq!(sorted(sel(&idx, &t)), vec![2, 3, 4, 5, 6]);
    }

    #[test]
    fn select_except_rooms_and_skip_together() {
        let idx = sample(12);
        let t = BroadcastTarget::rooms(["even", "three"])
            .except_room("s4")
            .except_room("s9")
            .skip(2)
            .skip(12);
        assert_eq!(sorted(sel(&idx, &t)), vec![3, 6, 8, 10]);
        let t = BroadcastTarget::all().except_room("odd").skip(2).skip(3);
        assert_eq!(sorted(sel(&idx, &t)), vec![4, 6, 8, 10, 12]);
        let t = BroadcastTarget::room("even").except_room("three").skip(8);
        assert_eq!(sorted(sel(&idx, &t)), vec![2, 4, 10]);
    }

    #[test]
    fn select_all_with_skip_of_many() {
        let idx = sample(1000);
        // Above and below the linear-scan threshold.
        for skipped in [SKIP_LINEAR_MAX, SKIP_LINEAR_MAX + 1, 500, 1000, 2000] {
            let mut t = BroadcastTarget::all();
            t.skip = (1..=skipped as u32).collect();
            let got = sorted(sel(&idx, &t));
            let want: Vec<u32> = ((skipped as u32).min(1000) + 1..=1000).collect();
            assert_eq!(got, want, "skip {skipped}");
            // Same through a room and a union.
            let mut t2 = BroadcastTarget::room("three");
            t2.skip = t.skip.clone();
            let want: Vec<u32> = want.iter().copied().filter(|i| i % 3 == 0).collect();
            assert_eq!(sorted(sel(&idx, &t2)), want);
            let mut t3 = BroadcastTarget::rooms(["three", "s999", "s3"]);
            t3.skip = t.skip.clone();
            assert_eq!(sorted(sel(&idx, &t3)), want);
        }
    }

    #[test]
    fn select_each_recipient_once() {
        let mut idx = RoomIndex::new();
        for m in 0u32..100 {
            for r in 0..10 {
                if (m + r) % 3 != 0 {
                    idx.join(&m, &format!("r{r}"));
                }
            }
        }
        let rooms: Vec<String> = (0..10).map(|r| format!("r{r}")).collect();
        let got = sel(&idx, &BroadcastTarget::rooms(&rooms));
        let unique: BTreeSet<u32> = got.iter().copied().collect();
        assert_eq!(unique.len(), got.len());
        assert_eq!(unique, (0..100).collect());
    }

    #[test]
    fn select_into_appends_and_reuses_buffer() {
        let idx = sample(4);
        let mut buf = vec![100];
        idx.select_into(&BroadcastTarget::room("even"), &mut buf);
        assert_eq!(buf[0], 100);
        assert_eq!(sorted(buf[1..].to_vec()), vec![2, 4]);
        buf.clear();
        idx.select_into(&BroadcastTarget::room("odd"), &mut buf);
        assert_eq!(sorted(buf.clone()), vec![1, 3]);
        buf.clear();
        idx.select_into(&BroadcastTarget::rooms(["odd", "s1"]), &mut buf);
        assert_eq!(sorted(buf.clone()), vec![1, 3]);
    }

    #[test]
    fn string_keys() {
        let mut idx: RoomIndex<String> = RoomIndex::new();
        let a = "sidA".to_string();
        let b = "sidB".to_string();
        idx.join(&a, &a);
        idx.join(&b, &b);
        idx.join(&a, "chat");
        idx.join(&b, "chat");
        let t = BroadcastTarget::room("chat").skip(a.clone());
        assert_eq!(sel(&idx, &t), vec![b.clone()]);
        let t = BroadcastTarget::all().except_room(&b);
        assert_eq!(sel(&idx, &t), vec![a.clone()]);
        assert_eq!(sorted_names(idx.remove_member(&a)), ["chat", "sidA"]);
        idx.check_invariants();
    }

    #[test]
    fn broadcast_target_builders() {
        let t: BroadcastTarget<u32> = BroadcastTarget::all();
        assert!(t.rooms.is_empty() && t.except_rooms.is_empty() && t.skip.is_empty());
        assert_eq!(BroadcastTarget::<u32>::default(), t);
        let t = BroadcastTarget::room("a")
            .except_room("b")
            .skip(1u32)
            .skip(2);
        assert_eq!(names(&t.rooms), ["a"]);
        assert_eq!(names(&t.except_rooms), ["b"]);
        assert_eq!(t.skip, vec![1, 2]);
        let owned = vec!["x".to_string(), "y".to_string()];
        let t: BroadcastTarget<u32> = BroadcastTarget::rooms(&owned);
        assert_eq!(names(&t.rooms), ["x", "y"]);
        let t: BroadcastTarget<u32> = BroadcastTarget::rooms(["p"]);
        assert_eq!(names(&t.rooms), ["p"]);
    }

    #[test]
    fn large_namespace_stays_consistent() {
        let mut idx = sample(10_000);
        assert_eq!(idx.member_count(), 10_000);
        assert_eq!(sel(&idx, &BroadcastTarget::all()).len(), 10_000);
        assert_eq!(sel(&idx, &BroadcastTarget::room("even")).len(), 5_000);
        for i in (1..=10_000u32).step_by(2) {
            idx.remove_member(&i);
        }
        assert!(idx.members_of("odd").is_empty());
        assert_eq!(idx.member_count(), 5_000);
        assert_eq!(idx.room_count(), 5_000 + 1 + 1);
        idx.close_room("even");
        assert_eq!(idx.room_count(), 5_000 + 1);
        idx.check_invariants();
    }

    // ---- model-based property test -------------------------------------

    /// Naive reference model.
    #[derive(Default, Debug)]
    struct Model {
        members: BTreeSet<u8>,
        rooms: BTreeMap<String, BTreeSet<u8>>,
    }

    impl Model {
        fn join(&mut self, m: u8, r: &str) -> bool {
            self.members.insert(m);
            self.rooms.entry(r.to_string()).or_default().insert(m)
        }
        fn insert_member(&mut self, m: u8) -> bool {
            self.members.insert(m)
        }
        fn leave(&mut self, m: u8, r: &str) -> bool {
            let Some(set) = self.rooms.get_mut(r) else {
                return false;
            };
            let was = set.remove(&m);
            if set.is_empty() {
                self.rooms.remove(r);
            }
            was
        }
        fn rooms_of(&self, m: u8) -> BTreeSet<String> {
            self.rooms
                .iter()
                .filter(|(_, s)| s.contains(&m))
                .map(|(r, _)| r.clone())
                .collect()
        }
        fn remove_member(&mut self, m: u8) -> BTreeSet<String> {
            let rooms = self.rooms_of(m);
            for r in &rooms {
                self.leave(m, r);
            }
            self.members.remove(&m);
            rooms
        }
        fn close_room(&mut self, r: &str) -> BTreeSet<u8> {
            self.rooms.remove(r).unwrap_or_default()
        }
        fn members_of(&self, r: &str) -> BTreeSet<u8> {
            self.rooms.get(r).cloned().unwrap_or_default()
        }
        fn select(&self, t: &BroadcastTarget<u8>) -> BTreeSet<u8> {
            self.members
                .iter()
                .copied()
                .filter(|m| t.rooms.is_empty() || t.rooms.iter().any(|r| self.in_room(*m, r)))
                .filter(|m| !t.except_rooms.iter().any(|r| self.in_room(*m, r)))
                .filter(|m| !t.skip.contains(m))
                .collect()
        }
        fn in_room(&self, m: u8, r: &str) -> bool {
            self.rooms.get(r).is_some_and(|s| s.contains(&m))
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Join(u8, String),
        InsertMember(u8),
        Leave(u8, String),
        RemoveMember(u8),
        CloseRoom(String),
        Select(BroadcastTarget<u8>),
    }

    /// Two sockets of one client in the same thousand rooms: when one leaves, the other moves
    /// into its place in every room, and its positions are fixed through one index of its rooms.
    #[test]
    fn a_member_leaving_many_shared_rooms_keeps_the_other_in_place() {
        let mut idx: RoomIndex<u32> = RoomIndex::new();
        let rooms: Vec<String> = (0..1000).map(|r| format!("room-{r}")).collect();
        for room in &rooms {
            idx.join(&2, room);
            idx.join(&1, room);
        }
        idx.join(&3, "room-7");
        assert_eq!(idx.remove_member(&2).len(), 1000);
        idx.check_invariants();
        assert_eq!(idx.rooms_of(&1).len(), 1000);
        assert_eq!(sel(&idx, &BroadcastTarget::room("room-999")), vec![1]);
        assert_eq!(sel(&idx, &BroadcastTarget::room("room-7")), vec![1, 3]);
        for room in rooms.iter().rev() {
            assert!(idx.leave(&1, room));
        }
        idx.check_invariants();
        assert_eq!(idx.room_count(), 1);
    }

    /// A broadcast to many rooms, some named twice, reaches each member once.
    #[test]
    fn a_union_of_many_rooms_named_twice_selects_each_member_once() {
        let mut idx: RoomIndex<u32> = RoomIndex::new();
        for m in 0..50u32 {
            idx.join(&m, &format!("room-{}", m % 20));
        }
        let mut names: Vec<String> = (0..20).map(|r| format!("room-{r}")).collect();
        names.extend((0..20).map(|r| format!("room-{r}")));
        assert_eq!(
            sel(&idx, &BroadcastTarget::rooms(names)),
            (0..50).collect::<Vec<_>>()
        );
    }

    /// A socket that joined many rooms and left them, and a namespace that had many rooms, give
    /// the room back: their lists and the map of rooms shrink.
    #[test]
    fn room_lists_and_the_map_shrink_after_a_peak() {
        let mut idx: RoomIndex<u32> = RoomIndex::new();
        idx.join(&0, "stays");
        for r in 0..10_000 {
            idx.join(&1, &format!("room-{r}"));
            idx.join(&2, &format!("room-{r}"));
        }
        for r in 0..10_000 {
            idx.leave(&1, &format!("room-{r}"));
        }
        idx.check_invariants();
        assert!(idx.memberships[idx.ids[&1] as usize].capacity() <= 16);
        assert!(idx.rooms.capacity() >= 10_000);
        idx.remove_member(&2);
        idx.check_invariants();
        assert_eq!(idx.room_count(), 1);
        assert!(idx.rooms.capacity() <= 64, "{}", idx.rooms.capacity());
        // A room that had many members.
        for m in 10..5_000 {
            idx.join(&m, "crowd");
        }
        for m in 10..4_999 {
            idx.leave(&m, "crowd");
        }
        assert!(idx.rooms["crowd"].capacity() <= 16);
        idx.check_invariants();
    }

    mod model_based {
        use super::*;
        use proptest::prelude::*;

        /// Members of the small namespace: few enough that every room is shared.
        const MEMBERS: u8 = 24;
        /// Members of the large one: past 64, the bit set over the slots takes several words and
        /// `select`'s automatic policy mixes the bit-set and scanning paths.
        const MANY_MEMBERS: u8 = 200;

        fn room(members: u8) -> impl Strategy<Value = String> {
            // A few shared rooms, many more rarely used (members in more than eight rooms,
            // broadcasts to more than eight), plus sid-like rooms ("s<member>").
            prop_oneof![
                2 => (0u8..6).prop_map(|r| format!("r{r}")),
                1 => (0u8..40).prop_map(|r| format!("w{r}")),
                2 => (0..members).prop_map(|m| format!("s{m}")),
            ]
        }

        fn target(members: u8) -> impl Strategy<Value = BroadcastTarget<u8>> {
            (
                prop_oneof![
                    prop::collection::vec(room(members), 0..5),
                    prop::collection::vec(room(members), 9..20),
                ],
                prop::collection::vec(room(members), 0..3),
                prop_oneof![
                    prop::collection::vec(0..members, 0..4),
                    prop::collection::vec(0..members, 15..30),
                ],
            )
                .prop_map(|(rooms, except, skip)| {
                    let mut t = BroadcastTarget::rooms(rooms);
                    for r in except {
                        t = t.except_room(&r);
                    }
                    t.skip = skip;
                    t
                })
        }

        fn op(members: u8) -> impl Strategy<Value = Op> {
            prop_oneof![
                6 => (0..members, room(members)).prop_map(|(m, r)| Op::Join(m, r)),
                1 => (0..members).prop_map(Op::InsertMember),
                3 => (0..members, room(members)).prop_map(|(m, r)| Op::Leave(m, r)),
                1 => (0..members).prop_map(Op::RemoveMember),
                1 => room(members).prop_map(Op::CloseRoom),
                3 => target(members).prop_map(Op::Select),
            ]
        }

        /// Joins that fill the large namespace before the mixed operations.
        fn join(members: u8) -> impl Strategy<Value = Op> {
            (0..members, room(members)).prop_map(|(m, r)| Op::Join(m, r))
        }

        fn set_of_names(v: Vec<RoomName>) -> BTreeSet<String> {
            let n = v.len();
            let s: BTreeSet<String> = v.iter().map(|r| r.to_string()).collect();
            assert_eq!(s.len(), n, "duplicate room names");
            s
        }

        fn set_of_members(v: Vec<u8>) -> BTreeSet<u8> {
            let n = v.len();
            let s: BTreeSet<u8> = v.into_iter().collect();
            assert_eq!(s.len(), n, "duplicate members");
            s
        }

        /// Runs `ops` on an index and on the reference model, comparing every answer and the
        /// whole state after each operation.
        fn agrees(ops: &[Op], members: u8) -> Result<(), TestCaseError> {
            let mut idx: RoomIndex<u8> = RoomIndex::new();
            let mut model = Model::default();
            let mut buf = Vec::new();
            for (i, op) in ops.iter().enumerate() {
                match op {
                    Op::Join(m, r) => prop_assert_eq!(idx.join(m, r), model.join(*m, r)),
                    Op::InsertMember(m) => {
                        prop_assert_eq!(idx.insert_member(m), model.insert_member(*m))
                    }
                    Op::Leave(m, r) => prop_assert_eq!(idx.leave(m, r), model.leave(*m, r)),
                    Op::RemoveMember(m) => {
                        prop_assert_eq!(set_of_names(idx.remove_member(m)), model.remove_member(*m))
                    }
                    Op::CloseRoom(r) => {
                        prop_assert_eq!(set_of_members(idx.close_room(r)), model.close_room(r))
                    }
                    Op::Select(t) => {
                        let want = model.select(t);
                        prop_assert_eq!(set_of_members(idx.select(t)), want.clone());
                        buf.clear();
                        idx.select_into(t, &mut buf);
                        prop_assert_eq!(set_of_members(buf.clone()), want.clone());
                        for policy in [MaskPolicy::Always, MaskPolicy::Never] {
                            buf.clear();
                            idx.select_with(t, &mut buf, policy);
                            prop_assert_eq!(set_of_members(buf.clone()), want.clone());
                        }
                    }
                }
                idx.check_invariants();
                prop_assert_eq!(idx.member_count(), model.members.len());
                prop_assert_eq!(idx.room_count(), model.rooms.len());
                // The whole state after every operation in the small namespace; in the large one
                // (hundreds of rooms times hundreds of members) after the last.
                if members > MEMBERS && i + 1 < ops.len() {
                    continue;
                }
                for m in 0..members {
                    prop_assert_eq!(idx.contains_member(&m), model.members.contains(&m));
                    prop_assert_eq!(set_of_names(idx.rooms_of(&m)), model.rooms_of(m));
                }
                for r in model.rooms.keys() {
                    prop_assert_eq!(set_of_members(idx.members_of(r)), model.members_of(r));
                    prop_assert_eq!(idx.has_members(r), !model.members_of(r).is_empty());
                    for m in 0..members {
                        prop_assert_eq!(idx.is_in_room(&m, r), model.in_room(m, r));
                    }
                }
                prop_assert_eq!(
                    set_of_members(idx.select(&BroadcastTarget::all())),
                    model.members.clone()
                );
            }
            Ok(())
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn agrees_with_reference_model(ops in prop::collection::vec(op(MEMBERS), 1..120)) {
                agrees(&ops, MEMBERS)?;
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]

            #[test]
            fn agrees_with_reference_model_in_a_large_namespace(
                joins in prop::collection::vec(join(MANY_MEMBERS), 150..400),
                ops in prop::collection::vec(op(MANY_MEMBERS), 1..60),
            ) {
                let all: Vec<Op> = joins.into_iter().chain(ops).collect();
                agrees(&all, MANY_MEMBERS)?;
            }
        }
    }
}
