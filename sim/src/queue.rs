//! The simulator's event queue: a calendar of time buckets in front of a 4-ary heap.
//!
//! Most events fall due within seconds of virtual time: they go into the bucket of their time
//! (an append), and a bucket is sorted only when virtual time reaches it, so taking the next
//! event is a pop from a short sorted vector that is in cache. Events further out wait in a
//! heap, and join their bucket's sorted run when time gets there; events for the bucket being
//! taken wait in a small heap beside it. Keys are unique (the caller's
//! minor parts are sequence numbers), so the pop order is fully determined by the keys,
//! whatever the layout: the same as a sorted list's (a property test checks this).
//!
//! The heap: against `BinaryHeap`, four children per node halve the depth. Entries are 32 bytes (a 128-bit major key, a 64-bit minor
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

pub struct Heap<V> {
    /// Entry `i` of the heap at position `i + ROOT`.
    groups: Vec<Group<V>>,
    len: usize,
}

impl<V: Copy> Default for Heap<V> {
    fn default() -> Self {
        Heap {
            groups: Vec::new(),
            len: 0,
        }
    }
}

impl<V: Copy> Heap<V> {
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

/// Bucket width: 2^14 us (16.4 ms of virtual time).
const EPOCH_SHIFT: u32 = 14;
/// Buckets ahead of the current one: 1,024 (16.8 s of virtual time); later events wait in the
/// heap.
const BUCKETS: u64 = 1024;

const WORDS: usize = BUCKETS as usize / 64;

fn epoch_of<V>(e: &Entry<V>) -> u64 {
    ((e.major >> 64) as u64) >> EPOCH_SHIFT
}

pub struct Queue<V> {
    /// The entries of epoch `epoch` (and earlier) that were in its bucket or in the heap when
    /// time reached it, sorted by key from largest to smallest (the next entry last).
    current: Vec<Entry<V>>,
    /// Entries pushed for epoch `epoch` (or earlier) after that: a small heap (inserting them
    /// into `current` would take linear time, and a dense workload puts thousands in a bucket).
    late: Heap<V>,
    epoch: u64,
    /// Entries of epoch `e` (in `epoch + 1 .. epoch + BUCKETS` when pushed) in bucket
    /// `e % BUCKETS`, unsorted.
    buckets: Vec<Vec<Entry<V>>>,
    in_buckets: usize,
    /// Bit `i` set when bucket `i` has entries: the next one is found without a walk over empty
    /// buckets (sparse workloads have many).
    occupied: [u64; WORDS],
    /// Entries of later epochs (when pushed).
    far: Heap<V>,
}

impl<V: Copy> Default for Queue<V> {
    fn default() -> Self {
        Queue {
            current: Vec::new(),
            late: Heap::default(),
            epoch: 0,
            buckets: (0..BUCKETS).map(|_| Vec::new()).collect(),
            in_buckets: 0,
            occupied: [0; WORDS],
            far: Heap::default(),
        }
    }
}

impl<V: Copy> Queue<V> {
    pub fn len(&self) -> usize {
        self.current.len() + self.late.len() + self.in_buckets + self.far.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn push(&mut self, key: Key, val: V) {
        let e = Entry {
            major: key.major,
            minor: key.minor,
            val,
        };
        let ep = epoch_of(&e);
        if ep <= self.epoch {
            self.late.push(key, val);
        } else if ep - self.epoch < BUCKETS {
            let i = (ep % BUCKETS) as usize;
            self.buckets[i].push(e);
            self.occupied[i / 64] |= 1 << (i % 64);
            self.in_buckets += 1;
        } else {
            self.far.push(key, val);
        }
    }

    /// The first occupied bucket at or after bucket `from`.
    fn occupied_from(&self, from: usize) -> Option<usize> {
        let mut w = from / 64;
        let mut word = self.occupied[w] & (!0u64 << (from % 64));
        loop {
            if word != 0 {
                return Some(w * 64 + word.trailing_zeros() as usize);
            }
            w += 1;
            if w == WORDS {
                return None;
            }
            word = self.occupied[w];
        }
    }

    /// The next epoch with entries in a bucket.
    fn next_bucket_epoch(&self) -> Option<u64> {
        let start = ((self.epoch + 1) % BUCKETS) as usize;
        let i = self
            .occupied_from(start)
            .or_else(|| self.occupied_from(0))?;
        let ahead = (i + BUCKETS as usize - start) % BUCKETS as usize;
        Some(self.epoch + 1 + ahead as u64)
    }

    /// Makes `current` or `late` hold the next entries, if there are any: moves on to the next
    /// epoch that has some.
    fn fill(&mut self) {
        // Bounded: each turn moves to the next epoch with entries, in a bucket or in the heap
        // (there is one as long as the queue is not empty), and fills `current` from it.
        while self.current.is_empty()
            && self.late.is_empty()
            && (self.in_buckets > 0 || !self.far.is_empty())
        {
            let bucket = self.next_bucket_epoch();
            let far = self
                .far
                .peek_key()
                .map(|k| ((k.major >> 64) as u64) >> EPOCH_SHIFT);
            self.epoch = match (bucket, far) {
                (Some(b), Some(f)) => b.min(f),
                (Some(b), None) => b,
                (None, Some(f)) => self.epoch.max(f),
                (None, None) => break,
            };
            if bucket == Some(self.epoch) {
                let i = (self.epoch % BUCKETS) as usize;
                // The bucket's vector becomes `current` (and `current`'s empty one, with its
                // capacity, the bucket's).
                std::mem::swap(&mut self.current, &mut self.buckets[i]);
                self.occupied[i / 64] &= !(1 << (i % 64));
                self.in_buckets -= self.current.len();
            }
            while let Some(k) = self.far.peek_key() {
                if ((k.major >> 64) as u64) >> EPOCH_SHIFT > self.epoch {
                    break;
                }
                if let Some((key, val)) = self.far.pop() {
                    self.current.push(Entry {
                        major: key.major,
                        minor: key.minor,
                        val,
                    });
                }
            }
            // Largest first; keys are unique, so the order is fully determined.
            self.current
                .sort_unstable_by_key(|e| std::cmp::Reverse((e.major, e.minor)));
        }
    }

    /// Whether the next entry is `late`'s (else `current`'s).
    fn late_first(&self) -> bool {
        match (self.current.last(), self.late.peek_key()) {
            (Some(c), Some(l)) => l < key(c),
            (None, Some(_)) => true,
            _ => false,
        }
    }

    /// The smallest key.
    pub fn peek_key(&mut self) -> Option<Key> {
        self.peek().map(|(k, _)| k)
    }

    /// The entry with the smallest key.
    pub fn peek(&mut self) -> Option<(Key, &V)> {
        self.fill();
        if self.late_first() {
            self.late.peek()
        } else {
            self.current.last().map(|e| (key(e), &e.val))
        }
    }

    /// Removes and returns the entry with the smallest key.
    pub fn pop(&mut self) -> Option<(Key, V)> {
        self.fill();
        if self.late_first() {
            self.late.pop()
        } else {
            self.current.pop().map(|e| (key(&e), e.val))
        }
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
            let mut q = Heap::default();
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
            let mut q = Heap::default();
            for (n, k) in keys.iter().enumerate() {
                q.push(Key { major: *k as u128, minor: n as u64 }, (*k, n));
            }
            while let Some((key, (k, n))) = q.pop() {
                prop_assert_eq!(key, Key { major: k as u128, minor: n as u64 });
            }
        }
    }

    fn time() -> impl Strategy<Value = u64> {
        // Offsets from now: within a bucket, a few buckets on, past the calendar, far past it.
        prop_oneof![
            0u64..20_000,
            0u64..2_000_000,
            (0u64..3).prop_map(|k| k << EPOCH_SHIFT),
            10_000_000u64..40_000_000,
            (0u64..5).prop_map(|k| (k * BUCKETS) << EPOCH_SHIFT),
            1u64 << 40..1u64 << 41,
        ]
    }

    proptest! {
        /// Used as the simulator uses it — pushes never earlier than the last key taken, and
        /// peeks between — the calendar gives the keys in sorted order.
        #[test]
        fn calendar_pops_in_key_order(ops in proptest::collection::vec((0u8..4, time(), 0u64..3), 0..500)) {
            let mut q = Queue::default();
            let mut model: Vec<Key> = Vec::new();
            let mut now = 0u64;
            for (n, (op, dt, tie)) in ops.into_iter().enumerate() {
                match op {
                    0 | 1 => {
                        let at = now + dt;
                        let key = Key { major: ((at as u128) << 64) | tie as u128, minor: n as u64 };
                        q.push(key, n);
                        model.push(key);
                        model.sort();
                    }
                    2 => prop_assert_eq!(q.peek_key(), model.first().copied()),
                    _ => {
                        let got = q.pop().map(|(k, _)| k);
                        let want = (!model.is_empty()).then(|| model.remove(0));
                        prop_assert_eq!(got, want);
                        if let Some(k) = got {
                            now = (k.major >> 64) as u64;
                        }
                    }
                }
                prop_assert_eq!(q.len(), model.len());
            }
            while let Some((k, _)) = q.pop() {
                prop_assert_eq!(k, model.remove(0));
            }
            prop_assert!(model.is_empty() && q.is_empty());
        }
    }
}
