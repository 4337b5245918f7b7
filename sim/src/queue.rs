//! The simulator's event queue: a 4-ary min-heap laid out for the cache.
//!
//! Popping is the queue's hot path (one pop per simulated attempt). Against `BinaryHeap`, four
//! children per node halve the depth. Entries are 32 bytes (a 128-bit major key, a 64-bit minor
//! key, an 8-byte value), with the root at offset 3 and groups of four aligned to 128 bytes, so
//! the four children of a node fill one pair of adjacent cache lines: a sift reads and moves
//! within those lines only, and picks the smallest child by a tournament of branch-free
//! compares. Keys are unique (the caller's minor parts are sequence numbers), so the pop order
//! is fully determined by the keys, whatever the heap's layout.

/// A queue key: ordered by `major`, then `minor`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    pub major: u128,
    pub minor: u64,
}

/// One entry: 32 bytes for an 8-byte value, so a node's four children fill two adjacent lines.
#[derive(Clone, Copy)]
#[repr(C)]
struct Entry<V> {
    major: u128,
    minor: u64,
    val: V,
}

/// One node's four children, aligned to the pair of cache lines they fill.
#[derive(Clone, Copy)]
#[repr(C, align(128))]
struct Group<V>([Entry<V>; ARITY]);

const ARITY: usize = 4;
/// Where the root sits (so that the children of each node share a group).
const ROOT: usize = ARITY - 1;

pub struct Queue<V> {
    /// Entry `i` of the heap at position `i + ROOT`.
    groups: Vec<Group<V>>,
    len: usize,
}

impl<V: Copy> Default for Queue<V> {
    fn default() -> Self {
        Queue {
            groups: Vec::new(),
            len: 0,
        }
    }
}

impl<V: Copy> Queue<V> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline(always)]
    fn at(&self, i: usize) -> &Entry<V> {
        let p = i + ROOT;
        &self.groups[p / ARITY].0[p % ARITY]
    }

    #[inline(always)]
    fn set(&mut self, i: usize, e: Entry<V>) {
        let p = i + ROOT;
        self.groups[p / ARITY].0[p % ARITY] = e;
    }

    /// The smallest key.
    pub fn peek_key(&self) -> Option<Key> {
        (!self.is_empty()).then(|| key(self.at(0)))
    }

    /// The entry with the smallest key.
    pub fn peek(&self) -> Option<(Key, &V)> {
        (!self.is_empty()).then(|| (key(self.at(0)), &self.at(0).val))
    }

    pub fn push(&mut self, key: Key, val: V) {
        let e = Entry {
            major: key.major,
            minor: key.minor,
            val,
        };
        let mut i = self.len;
        if (i + ROOT) / ARITY >= self.groups.len() {
            self.groups.push(Group([e; ARITY]));
        }
        self.len += 1;
        // Move parents down into the hole until the new key's place is found.
        while i > 0 {
            let parent = (i - 1) / ARITY;
            if below(self.at(parent), &e) {
                break;
            }
            let pe = *self.at(parent);
            self.set(i, pe);
            i = parent;
        }
        self.set(i, e);
    }

    /// Removes and returns the entry with the smallest key.
    pub fn pop(&mut self) -> Option<(Key, V)> {
        let n = self.len.checked_sub(1)?;
        self.len = n;
        let last = *self.at(n);
        if n == 0 {
            return Some((key(&last), last.val));
        }
        let top = *self.at(0);
        // Sift the last entry down from the root, moving the smaller child up into the hole.
        let mut i = 0;
        loop {
            let first = ARITY * i + 1;
            if first >= n {
                break;
            }
            // The children of node i are exactly group i + 1.
            let kids = &self.groups[i + 1].0;
            let j = if first + ARITY <= n {
                // All four: a tournament (two independent compares, then one), which compiles
                // to conditional moves, not branches.
                let a = usize::from(below(&kids[1], &kids[0]));
                let b = 2 + usize::from(below(&kids[3], &kids[2]));
                if below(&kids[b], &kids[a]) {
                    b
                } else {
                    a
                }
            } else {
                let mut j = 0;
                for c in 1..n - first {
                    if below(&kids[c], &kids[j]) {
                        j = c;
                    }
                }
                j
            };
            let child = kids[j];
            if !below(&child, &last) {
                break;
            }
            self.set(i, child);
            i = first + j;
        }
        self.set(i, last);
        Some((key(&top), top.val))
    }
}

fn key<V>(e: &Entry<V>) -> Key {
    Key {
        major: e.major,
        minor: e.minor,
    }
}

/// Whether `a`'s key is below `b`'s, computed without branches.
#[inline(always)]
fn below<V>(a: &Entry<V>, b: &Entry<V>) -> bool {
    (a.major < b.major) | ((a.major == b.major) & (a.minor < b.minor))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn children_share_a_group() {
        // Heap index i sits at i + ROOT: the children 4i+1..=4i+4 of node i at 4i+4..=4i+7.
        for i in 0..100 {
            assert_eq!((ARITY * i + 1 + ROOT) % ARITY, 0);
        }
        assert_eq!(std::mem::size_of::<Entry<u64>>(), 32);
        assert_eq!(std::mem::size_of::<Group<u64>>(), 128);
        assert_eq!(std::mem::align_of::<Group<u64>>(), 128);
    }

    proptest! {
        /// Any interleaving of pushes and pops yields keys in the order a sorted list would,
        /// ties of the major part included.
        #[test]
        fn pops_in_key_order(ops in proptest::collection::vec((any::<bool>(), 0u32..50, 0u32..3), 0..400)) {
            let mut q = Queue::default();
            let mut model: Vec<Key> = Vec::new();
            for (n, (push, k, hi)) in ops.into_iter().enumerate() {
                if push || model.is_empty() {
                    // Unique keys, as the simulator's are: the minor part a sequence number
                    // (counting down here too, so minor order differs from push order).
                    let minor = if n % 2 == 0 { n as u64 } else { 10_000 - n as u64 };
                    let key = Key { major: ((hi as u128) << 64) | k as u128, minor };
                    q.push(key, n);
                    model.push(key);
                    model.sort();
                } else {
                    let want = model.remove(0);
                    let (got, _) = q.pop().unwrap();
                    prop_assert_eq!(got, want);
                }
                prop_assert_eq!(q.len(), model.len());
                prop_assert_eq!(q.peek_key(), model.first().copied());
            }
            while let Some((k, _)) = q.pop() {
                prop_assert_eq!(k, model.remove(0));
            }
            prop_assert!(model.is_empty() && q.is_empty());
        }

        /// Values travel with their keys.
        #[test]
        fn values_follow_keys(keys in proptest::collection::vec(0u64..1000, 0..200)) {
            let mut q = Queue::default();
            for (n, k) in keys.iter().enumerate() {
                q.push(Key { major: *k as u128, minor: n as u64 }, (*k, n));
            }
            while let Some((key, (k, n))) = q.pop() {
                prop_assert_eq!(key, Key { major: k as u128, minor: n as u64 });
            }
        }
    }
}
