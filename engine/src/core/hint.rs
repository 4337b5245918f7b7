//! Cache hints for the simulator's hot loop: it knows which request the next event belongs to
//! one event ahead, and asking the CPU to load that request's state while the current event is
//! processed hides most of the cache misses of touching state last used thousands of events ago.

/// Asks the CPU to bring the cache lines holding `v` into its cache. Has no effect on what the
/// program computes (and none on targets without a prefetch instruction).
#[inline(always)]
pub fn prefetch<T: ?Sized>(v: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let start = v as *const T as *const u8 as usize;
        let end = start + std::mem::size_of_val(v);
        let mut line = start & !63;
        while line < end {
            // SAFETY: a prefetch never faults and writes nothing; it only loads a cache line
            // (here one that belongs to a live reference) into the cache.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(line as *const i8) };
            line += 64;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = v;
}
