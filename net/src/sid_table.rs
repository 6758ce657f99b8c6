//! Tables of connections or sessions by sid.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;

/// Removes `key` from `table` only while it still names `entry` itself: a custom sid generator
/// may give an id again, and an old entry's end must not drop the newer one that took its sid.
/// True when it was removed.
pub fn remove_if_same<K, Q, V, S>(
    table: &mut HashMap<K, Arc<V>, S>,
    key: &Q,
    entry: &Arc<V>,
) -> bool
where
    K: Borrow<Q> + Eq + Hash,
    Q: Eq + Hash + ?Sized,
    S: BuildHasher,
{
    if table
        .get(key)
        .is_some_and(|known| Arc::ptr_eq(known, entry))
    {
        table.remove(key);
        return true;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_entry_itself_is_removed() {
        let (old, new) = (Arc::new(1), Arc::new(1));
        let mut table = HashMap::new();
        table.insert("x".to_owned(), new.clone());
        assert!(!remove_if_same(&mut table, "x", &old));
        assert!(table.contains_key("x"));
        assert!(remove_if_same(&mut table, "x", &new));
        assert!(table.is_empty());
    }
}
