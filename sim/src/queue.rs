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

impl<K: Ord + Copy, V> Default for Queue<K, V> {
    fn default() -> Self {
        Queue {
            keys: Vec::new(),
            vals: Vec::new(),
        }
    }
}

const ARITY: usize = 4;

impl<K: Ord + Copy, V> Queue<K, V> {
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
        let n = self.keys.len();
        if n == 0 {
            return None;
        }
        self.keys.swap(0, n - 1);
        self.vals.swap(0, n - 1);
        let key = self.keys.pop()?;
        let val = self.vals.pop()?;
        let n = n - 1;
        let mut i = 0;
        loop {
            let first = ARITY * i + 1;
            if first >= n {
                break;
            }
            let last = (first + ARITY).min(n);
            let mut m = first;
            for c in first + 1..last {
                if self.keys[c] < self.keys[m] {
                    m = c;
                }
            }
            if self.keys[m] < self.keys[i] {
                self.keys.swap(i, m);
                self.vals.swap(i, m);
                i = m;
            } else {
                break;
            }
        }
        Some((key, val))
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
