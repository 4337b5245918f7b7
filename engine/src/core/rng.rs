//! The core's only source of randomness: a pinned SplitMix64 stream.
//!
//! Pinned on purpose: the simulator promises byte-identical reports for the same seed across
//! versions, so the generator is ours (a dozen lines, with test vectors) rather than a crate whose
//! stream may change in a minor release. No thread RNG, no OS entropy here.

/// SplitMix64 (Steele, Lea, Flood 2014). Passes BigCrush; one `u64` of state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rng {
    state: u64,
}

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng { state: seed }
    }

    /// An independent stream derived from this seed and a label (request id, attempt number, ...).
    pub fn derive(seed: u64, label: u64) -> Rng {
        let mut r = Rng::new(seed ^ mix(label.wrapping_add(GOLDEN)));
        r.next_u64();
        r
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN);
        mix(self.state)
    }

    /// Uniform in `0..n` without modulo bias (Lemire's method). `n == 0` returns 0.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        loop {
            let x = self.next_u64();
            let m = (x as u128) * (n as u128);
            let lo = m as u64;
            if lo >= n || lo >= n.wrapping_neg() % n {
                return (m >> 64) as u64;
            }
        }
    }

    /// Uniform in [0, 1) with 53 bits of precision.
    pub fn unit_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// True with probability `ppm / 1_000_000`.
    pub fn chance_ppm(&mut self, ppm: u32) -> bool {
        self.below(1_000_000) < ppm as u64
    }
}

/// The SplitMix64 finaliser; also a good 64-bit hash mixer.
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// FNV-1a over bytes, then mixed: a stable hash for sticky assignment (never `std`'s `Hash`,
/// whose output is allowed to change between Rust releases).
pub fn stable_hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01B3);
    }
    mix(h)
}

/// A word-at-a-time string hasher (FxHash's step, with SplitMix's finalizer), for maps that are
/// only looked up (never iterated, so their order cannot leak into decisions) on short keys
/// such as deployment ids.
#[derive(Clone, Copy)]
pub struct FastHasher(u64);

impl Default for FastHasher {
    /// A non-zero start, so that leading zero words still move the state.
    fn default() -> Self {
        FastHasher(0x243f_6a88_85a3_08d3)
    }
}

const FX_K: u64 = 0x517c_c1b7_2722_0a95;

impl FastHasher {
    #[inline]
    fn step(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(FX_K);
    }
}

impl std::hash::Hasher for FastHasher {
    fn finish(&self) -> u64 {
        mix(self.0)
    }

    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.step(u64::from_le_bytes(w));
        }
        // The last 1 to 7 bytes without a variable-length copy (as wyhash reads them).
        let rest = chunks.remainder();
        let n = rest.len();
        let w = match n {
            0 => return,
            1..=3 => rest[0] as u64 | (rest[n / 2] as u64) << 8 | (rest[n - 1] as u64) << 16,
            _ => {
                let lo = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]);
                let hi = u32::from_le_bytes([rest[n - 4], rest[n - 3], rest[n - 2], rest[n - 1]]);
                lo as u64 | (hi as u64) << 32
            }
        };
        self.step(w ^ ((n as u64) << 59));
    }

    fn write_u8(&mut self, b: u8) {
        self.step(b as u64 | 0x100);
    }
}

pub type FastMap<K, V> = std::collections::HashMap<K, V, std::hash::BuildHasherDefault<FastHasher>>;

/// A hasher for integer ids (request ids): one multiply and a fold, so consecutive ids spread
/// over the whole table. Only for maps that are looked up, never iterated for decisions.
#[derive(Clone, Copy, Default)]
pub struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        let m = (self.0 as u128).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (m as u64) ^ ((m >> 64) as u64)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ b as u64;
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 ^= v;
    }
}

/// Request id -> value.
pub type IdMap<V> = std::collections::HashMap<u64, V, std::hash::BuildHasherDefault<IdHasher>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_reference_vectors() {
        // Reference outputs of SplitMix64 seeded with 0 (as in the original C code).
        let mut r = Rng::new(0);
        assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
        assert_eq!(r.next_u64(), 0x06C4_5D18_8009_454F);
    }

    #[test]
    fn below_is_in_range_and_roughly_uniform() {
        let mut r = Rng::new(42);
        let mut counts = [0u32; 7];
        for _ in 0..70_000 {
            let v = r.below(7);
            counts[v as usize] += 1;
        }
        for c in counts {
            assert!((9_000..11_000).contains(&c), "{counts:?}");
        }
        assert_eq!(r.below(0), 0);
        assert_eq!(r.below(1), 0);
    }

    #[test]
    fn fast_hasher_tells_short_keys_apart() {
        use std::hash::{BuildHasher, BuildHasherDefault};
        let b = BuildHasherDefault::<FastHasher>::default();
        // Every string of length 0 to 11 over a small alphabet (including a zero byte, so a
        // key and the same key padded with zeros must differ): no two may hash alike.
        let alphabet = [b'a', b'b', 0u8];
        let mut seen = std::collections::HashMap::new();
        let mut keys: Vec<Vec<u8>> = vec![Vec::new()];
        for _ in 0..11 {
            let next: Vec<Vec<u8>> = keys
                .iter()
                .filter(|k| k.len() >= keys.last().map_or(0, |l| l.len()))
                .flat_map(|k| {
                    alphabet.iter().map(move |&c| {
                        let mut k = k.clone();
                        k.push(c);
                        k
                    })
                })
                .collect();
            keys.extend(next);
        }
        for k in &keys {
            let s = String::from_utf8(k.clone()).unwrap();
            if let Some(other) = seen.insert(b.hash_one(&s), s.clone()) {
                panic!("{other:?} and {s:?} hash alike");
            }
        }
        assert!(keys.len() > 200_000, "{}", keys.len());
    }

    #[test]
    fn stable_hash_is_pinned() {
        assert_eq!(stable_hash(b"user-1"), stable_hash(b"user-1"));
        assert_ne!(stable_hash(b"user-1"), stable_hash(b"user-2"));
        assert_eq!(stable_hash(b""), mix(0xcbf2_9ce4_8422_2325));
    }
}
