//! A map from request ids to values, built for ids handed out in sequence.
//!
//! Request `id` lives in slot `id mod len` of a ring when that slot is free, else in an overflow
//! hash map. Requests received close together sit side by side, so their state stays in cache
//! and is read ahead by the CPU, and the slot of a request can be found — and prefetched —
//! without reading anything first (a hash table needs its control bytes read before it knows
//! where an entry is). The ring doubles while many requests overflow, up to a bound set by the
//! number of entries, so ids with no pattern at all still cost no more than a hash map.

use crate::core::rng::IdMap;

/// The ring never holds more than this many slots per entry (rounded up to a power of two):
/// enough to cover the id span of requests in flight when a few of them live far longer than
/// the rest, without letting unlucky ids grow it without bound.
const SLOTS_PER_ENTRY: usize = 8;
const MIN_SLOTS: usize = 64;

#[derive(Clone, Debug)]
pub struct SeqSlots<V> {
    ring: Vec<Option<(u64, V)>>,
    overflow: IdMap<V>,
    len: usize,
}

impl<V> Default for SeqSlots<V> {
    fn default() -> Self {
        SeqSlots {
            ring: Vec::new(),
            overflow: IdMap::default(),
            len: 0,
        }
    }
}

impl<V> SeqSlots<V> {
    fn slot(&self, id: u64) -> Option<usize> {
        match self.ring.len() {
            0 => None,
            n => Some((id as usize) & (n - 1)),
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn get(&self, id: &u64) -> Option<&V> {
        if let Some(Some((k, v))) = self.slot(*id).map(|i| &self.ring[i]) {
            if k == id {
                return Some(v);
            }
        }
        if self.overflow.is_empty() {
            None
        } else {
            self.overflow.get(id)
        }
    }

    pub fn get_mut(&mut self, id: &u64) -> Option<&mut V> {
        if let Some(i) = self.slot(*id) {
            if matches!(&self.ring[i], Some((k, _)) if k == id) {
                return self.ring[i].as_mut().map(|(_, v)| v);
            }
        }
        if self.overflow.is_empty() {
            None
        } else {
            self.overflow.get_mut(id)
        }
    }

    pub fn contains_key(&self, id: &u64) -> bool {
        self.get(id).is_some()
    }

    /// Starts loading the slot where `id` would be into the cache (see `hint`); changes nothing.
    #[inline]
    pub fn prefetch_slot(&self, id: u64) {
        if let Some(i) = self.slot(id) {
            crate::core::hint::prefetch(&self.ring[i]);
        }
    }

    /// Inserts or replaces; returns the value `id` had.
    pub fn insert(&mut self, id: u64, v: V) -> Option<V> {
        if self.ring.is_empty() {
            self.ring.resize_with(MIN_SLOTS, || None);
        }
        let i = (id as usize) & (self.ring.len() - 1);
        match &mut self.ring[i] {
            Some((k, old)) if *k == id => return Some(std::mem::replace(old, v)),
            Some(_) => {}
            free @ None => {
                let old = if self.overflow.is_empty() {
                    None
                } else {
                    self.overflow.remove(&id)
                };
                *free = Some((id, v));
                if old.is_none() {
                    self.len += 1;
                }
                return old;
            }
        }
        let old = self.overflow.insert(id, v);
        if old.is_none() {
            self.len += 1;
        }
        let bound = (self.len * SLOTS_PER_ENTRY).next_power_of_two();
        if self.overflow.len() * 8 > self.ring.len() && self.ring.len() < bound {
            self.grow();
        }
        old
    }

    /// Doubles the ring and places every entry again.
    fn grow(&mut self) {
        let n = self.ring.len() * 2;
        let entries: Vec<(u64, V)> = std::mem::take(self).into_iter().collect();
        self.ring.resize_with(n, || None);
        for (id, v) in entries {
            self.insert(id, v);
        }
    }

    pub fn remove(&mut self, id: &u64) -> Option<V> {
        if let Some(i) = self.slot(*id) {
            if matches!(&self.ring[i], Some((k, _)) if k == id) {
                self.len -= 1;
                return self.ring[i].take().map(|(_, v)| v);
            }
        }
        if self.overflow.is_empty() {
            return None;
        }
        let old = self.overflow.remove(id);
        if old.is_some() {
            self.len -= 1;
        }
        old
    }

    /// Entries in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&u64, &V)> {
        self.ring
            .iter()
            .filter_map(|s| s.as_ref().map(|(k, v)| (k, v)))
            .chain(self.overflow.iter())
    }

    pub fn retain(&mut self, mut keep: impl FnMut(&u64, &mut V) -> bool) {
        for s in self.ring.iter_mut() {
            if let Some((k, v)) = s {
                if !keep(k, v) {
                    *s = None;
                    self.len -= 1;
                }
            }
        }
        let before = self.overflow.len();
        self.overflow.retain(|k, v| keep(k, v));
        self.len -= before - self.overflow.len();
    }
}

impl<V> IntoIterator for SeqSlots<V> {
    type Item = (u64, V);
    type IntoIter = std::iter::Chain<
        std::iter::Flatten<std::vec::IntoIter<Option<(u64, V)>>>,
        std::collections::hash_map::IntoIter<u64, V>,
    >;

    /// Entries in no particular order.
    fn into_iter(self) -> Self::IntoIter {
        self.ring.into_iter().flatten().chain(self.overflow)
    }
}

impl<V> FromIterator<(u64, V)> for SeqSlots<V> {
    fn from_iter<I: IntoIterator<Item = (u64, V)>>(iter: I) -> Self {
        let mut s = SeqSlots::default();
        for (k, v) in iter {
            s.insert(k, v);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[derive(Clone, Debug)]
    enum Op {
        Insert(u64, u32),
        Remove(u64),
        Get(u64),
        Retain(u64),
    }

    fn id() -> impl Strategy<Value = u64> {
        // Sequential-ish ids, ids far apart in the ring's sense, and arbitrary ones.
        prop_oneof![0u64..300, (0u64..40).prop_map(|k| k * 64), any::<u64>()]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (id(), any::<u32>()).prop_map(|(k, v)| Op::Insert(k, v)),
            3 => id().prop_map(Op::Remove),
            2 => id().prop_map(Op::Get),
            1 => (1u64..5).prop_map(Op::Retain),
        ]
    }

    proptest! {
        /// Behaves exactly like a map, whatever the ids.
        #[test]
        fn behaves_like_a_map(ops in prop::collection::vec(op(), 0..600)) {
            let mut s = SeqSlots::default();
            let mut m = BTreeMap::new();
            for o in ops {
                match o {
                    Op::Insert(k, v) => prop_assert_eq!(s.insert(k, v), m.insert(k, v)),
                    Op::Remove(k) => prop_assert_eq!(s.remove(&k), m.remove(&k)),
                    Op::Get(k) => {
                        prop_assert_eq!(s.get(&k), m.get(&k));
                        prop_assert_eq!(s.get_mut(&k).copied(), m.get(&k).copied());
                        prop_assert_eq!(s.contains_key(&k), m.contains_key(&k));
                    }
                    Op::Retain(d) => {
                        s.retain(|k, _| k % d != 0);
                        m.retain(|k, _| k % d != 0);
                    }
                }
                prop_assert_eq!(s.len(), m.len());
            }
            let mut all: Vec<(u64, u32)> = s.iter().map(|(k, v)| (*k, *v)).collect();
            all.sort_unstable();
            prop_assert_eq!(&all, &m.iter().map(|(k, v)| (*k, *v)).collect::<Vec<_>>());
            let mut owned: Vec<(u64, u32)> = s.into_iter().collect();
            owned.sort_unstable();
            prop_assert_eq!(owned, all);
        }
    }

    #[test]
    fn sequential_ids_live_in_the_ring() {
        // A sliding window of 1,000 requests in flight over 100,000 ids: the ring grows to cover
        // the window and nothing stays in the overflow map.
        let mut s = SeqSlots::default();
        for id in 0..100_000u64 {
            s.insert(id, id);
            if id >= 1_000 {
                assert_eq!(s.remove(&(id - 1_000)), Some(id - 1_000));
            }
        }
        assert_eq!(s.len(), 1_000);
        assert!(s.overflow.is_empty());
        assert!(s.ring.len() <= 1_000 * SLOTS_PER_ENTRY);
    }

    #[test]
    fn ids_with_no_pattern_keep_the_ring_bounded() {
        let mut s = SeqSlots::default();
        for k in 0..10_000u64 {
            s.insert(k << 32, k);
        }
        assert_eq!(s.len(), 10_000);
        assert!(s.ring.len() <= (10_000 * SLOTS_PER_ENTRY).next_power_of_two());
        for k in 0..10_000u64 {
            assert_eq!(s.get(&(k << 32)), Some(&k));
        }
    }
}
