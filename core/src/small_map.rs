//! [`SmallMap`]: a map that is a short list while it holds few entries and a hash map past that.
//!
//! A connection's namespaces are such a map: almost every connection has one or two, and the
//! first insert into a `HashMap` reserves room for three entries plus its control bytes (about
//! 0.4 KiB per connection for the namespace map, bench/ANALYSIS.md). A client that joins many
//! namespaces still gets hash lookups, so it cannot make each of its packets slow.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;

/// Entries kept as a list; one more turns the map into a hash map.
const FEW: usize = 8;

/// A map from `K` to `V`, small while it holds at most eight entries.
#[derive(Debug)]
pub struct SmallMap<K, V> {
    repr: Repr<K, V>,
}

#[derive(Debug)]
enum Repr<K, V> {
    Few(Vec<(K, V)>),
    Many(HashMap<K, V>),
}

impl<K, V> Default for SmallMap<K, V> {
    fn default() -> Self {
        SmallMap {
            repr: Repr::default(),
        }
    }
}

impl<K, V> Default for Repr<K, V> {
    fn default() -> Self {
        Repr::Few(Vec::new())
    }
}

impl<K: Eq + Hash, V> SmallMap<K, V> {
    /// An empty map (allocates nothing).
    pub fn new() -> Self {
        Self::default()
    }

    /// The value of `key`.
    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        match &self.repr {
            Repr::Few(entries) => entries
                .iter()
                .find(|(k, _)| k.borrow() == key)
                .map(|(_, v)| v),
            Repr::Many(map) => map.get(key),
        }
    }

    /// The value of `key`, to change.
    pub fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        match &mut self.repr {
            Repr::Few(entries) => entries
                .iter_mut()
                .find(|(k, _)| k.borrow() == key)
                .map(|(_, v)| v),
            Repr::Many(map) => map.get_mut(key),
        }
    }

    /// Sets `key` to `value`; returns the value it replaced.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        match &mut self.repr {
            Repr::Few(entries) => {
                if let Some((_, old)) = entries.iter_mut().find(|(k, _)| *k == key) {
                    return Some(std::mem::replace(old, value));
                }
                if entries.len() < FEW {
                    // Room for exactly what is held: most maps never hold a second entry.
                    entries.reserve_exact(1);
                    entries.push((key, value));
                    return None;
                }
                let mut map: HashMap<K, V> = std::mem::take(entries).into_iter().collect();
                map.insert(key, value);
                self.repr = Repr::Many(map);
                None
            }
            Repr::Many(map) => map.insert(key, value),
        }
    }

    /// Removes `key`; returns its value.
    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        match &mut self.repr {
            Repr::Few(entries) => {
                let at = entries.iter().position(|(k, _)| k.borrow() == key)?;
                let (_, value) = entries.swap_remove(at);
                if entries.is_empty() {
                    *entries = Vec::new();
                }
                Some(value)
            }
            Repr::Many(map) => map.remove(key),
        }
    }

    /// Takes every entry out, in no particular order, leaving the map empty (and unallocated).
    pub fn take_all(&mut self) -> Vec<(K, V)> {
        match std::mem::take(&mut self.repr) {
            Repr::Few(entries) => entries,
            Repr::Many(map) => map.into_iter().collect(),
        }
    }

    /// Every entry, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        let (few, many) = match &self.repr {
            Repr::Few(entries) => (Some(entries.iter().map(|(k, v)| (k, v))), None),
            Repr::Many(map) => (None, Some(map.iter())),
        };
        few.into_iter().flatten().chain(many.into_iter().flatten())
    }

    /// How many entries it holds.
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Few(entries) => entries.len(),
            Repr::Many(map) => map.len(),
        }
    }

    /// Whether it holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_as_a_map_below_and_above_the_list_size() {
        let mut map: SmallMap<String, usize> = SmallMap::new();
        for n in 0..(3 * FEW) {
            assert_eq!(map.insert(format!("k{n}"), n), None);
            assert_eq!(map.len(), n + 1);
            for m in 0..=n {
                assert_eq!(map.get(format!("k{m}").as_str()), Some(&m), "{m} of {n}");
            }
            assert_eq!(map.get("absent"), None);
        }
        assert_eq!(map.insert("k3".to_owned(), 33), Some(3));
        *map.get_mut("k4").expect("k4") = 44;
        assert_eq!(map.get("k4"), Some(&44));
        let mut seen: Vec<usize> = map.iter().map(|(_, v)| *v).collect();
        seen.sort_unstable();
        assert_eq!(seen.len(), 3 * FEW);
        assert!(seen.contains(&33) && seen.contains(&44));
        for n in 0..FEW {
            assert!(map.remove(format!("k{n}").as_str()).is_some());
            assert_eq!(map.remove(format!("k{n}").as_str()), None);
        }
        let mut rest: Vec<usize> = map.take_all().into_iter().map(|(_, v)| v).collect();
        rest.sort_unstable();
        assert_eq!(rest.len(), 2 * FEW);
        assert!(map.is_empty());
        assert_eq!(map.get("k20"), None);
    }

    #[test]
    fn a_short_list_replaces_and_removes_in_place() {
        let mut map: SmallMap<String, &str> = SmallMap::new();
        map.insert("a".to_owned(), "1");
        map.insert("b".to_owned(), "2");
        assert_eq!(map.insert("a".to_owned(), "3"), Some("1"));
        assert_eq!(map.len(), 2);
        assert_eq!(map.remove("a"), Some("3"));
        assert_eq!(map.get("b"), Some(&"2"));
        assert_eq!(map.get("a"), None);
        map.insert("c".to_owned(), "4");
        assert_eq!(
            map.take_all(),
            vec![("b".to_owned(), "2"), ("c".to_owned(), "4")]
        );
        assert!(map.is_empty());
    }
}
