//! The simulator's event queue: a 4-ary min-heap with its keys stored apart from its values.
//!
//! Popping is the queue's hot path (one pop per simulated attempt). Against `BinaryHeap`, four
//! children per node halve the depth, and a sift reads keys only — four adjacent keys share
//! one or two cache lines — so a pop costs fewer cache misses and branch mispredictions. Keys are
//! unique (the caller's keys end in a sequence number), so the pop order is fully determined by
//! the keys, whatever the heap's layout.

pub struct Queue<K, V> {
    keys: Vec<K>,
    vals: Vec<V>,
}

impl<K: Ord + Copy, V: Copy> Default for Queue<K, V> {
    fn default() -> Self {
        Queue {
            keys: Vec::new(),
            vals: Vec::new(),
        }
    }
}

const ARITY: usize = 4;

impl<K: Ord + Copy, V: Copy> Queue<K, V> {
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The smallest key.
    pub fn peek_key(&self) -> Option<&K> {
        self.keys.first()
    }

    /// The entry with the smallest key.
    pub fn peek(&self) -> Option<(&K, &V)> {
        Some((self.keys.first()?, self.vals.first()?))
    }

    pub fn push(&mut self, key: K, val: V) {
        self.keys.push(key);
        self.vals.push(val);
        let mut i = self.keys.len() - 1;
        while i > 0 {
            let parent = (i - 1) / ARITY;
            if key < self.keys[parent] {
                self.keys.swap(i, parent);
                self.vals.swap(i, parent);
                i = parent;
            } else {
                break;
            }
        }
    }

    /// Removes and returns the entry with the smallest key.
    pub fn pop(&mut self) -> Option<(K, V)> {
        let last_k = self.keys.pop()?;
        let last_v = self.vals.pop()?;
        let n = self.keys.len();
        if n == 0 {
            return Some((last_k, last_v));
        }
        let top = (self.keys[0], self.vals[0]);
        // Sift the last entry down from the root, moving the smaller child up into the hole
        // (one write per level instead of a swap).
        let mut i = 0;
        loop {
            let first = ARITY * i + 1;
            let m = if first + ARITY <= n {
                // All four children: a tournament (two independent compares, then one), which
                // the compiler turns into conditional moves rather than branches it mispredicts.
                let a = pick(&self.keys, first, first + 1);
                let b = pick(&self.keys, first + 2, first + 3);
                pick(&self.keys, a, b)
            } else if first < n {
                let mut m = first;
                for c in first + 1..n {
                    m = pick(&self.keys, m, c);
                }
                m
            } else {
                break;
            };
            if self.keys[m] < last_k {
                self.keys[i] = self.keys[m];
                self.vals[i] = self.vals[m];
                i = m;
            } else {
                break;
            }
        }
        self.keys[i] = last_k;
        self.vals[i] = last_v;
        Some(top)
    }
}

/// The index of the smaller of `keys[a]` and `keys[b]` (`a` on a tie, which unique keys never
/// have).
#[inline(always)]
fn pick<K: Ord>(keys: &[K], a: usize, b: usize) -> usize {
    if keys[b] < keys[a] {
        b
    } else {
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any interleaving of pushes and pops yields keys in the order a sorted list would.
        #[test]
        fn pops_in_key_order(ops in proptest::collection::vec((any::<bool>(), 0u32..50), 0..400)) {
            let mut q = Queue::default();
            let mut model: Vec<(u32, u64)> = Vec::new();
            for (n, (push, k)) in ops.into_iter().enumerate() {
                if push || model.is_empty() {
                    // Unique keys, as the simulator's are: (value, sequence number).
                    q.push((k, n as u64), n);
                    model.push((k, n as u64));
                    model.sort();
                } else {
                    let want = model.remove(0);
                    let (got, v) = q.pop().unwrap();
                    prop_assert_eq!(got, want);
                    prop_assert_eq!(v as u64, want.1);
                }
                prop_assert_eq!(q.len(), model.len());
                prop_assert_eq!(q.peek_key().copied(), model.first().copied());
            }
            while let Some((k, _)) = q.pop() {
                prop_assert_eq!(k, model.remove(0));
            }
            prop_assert!(model.is_empty() && q.is_empty());
        }
    }
}
