//! Recycled buffers for the tape's activations, gradients, max-pool indices and scratch.
//!
//! A pass at batch 16 allocates tens of buffers of 10–50 MB, and the next pass allocates
//! the same sizes again. Fresh allocations of that size cost a memset (a zeroed `Vec`) or
//! the kernel's page clearing (memory the allocator had given back): 8–15 % of a run in
//! the profiles. Buffers handed back here are handed out again for the same length
//! without either.
//!
//! A buffer from [`take`] holds stale values (finite or not) from its last use: only
//! code that writes every element before reading it may use one; code that adds into its
//! output zeroes it first.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

/// Most bytes the pool holds unless a job asks for more ([`keep_at_least`]): more than one
/// pass of the largest shipped network at batch 32 frees, so a run reuses everything; a
/// buffer over the cap goes back to the allocator.
const MAX_POOLED_BYTES: usize = 1 << 30;

/// The pool's current cap, in bytes.
static CAP: AtomicUsize = AtomicUsize::new(MAX_POOLED_BYTES);

/// How much larger than the request a reused buffer may be.
const SLACK: f64 = 2.0;

/// Free buffers by capacity.
struct Pool<T> {
    by_capacity: BTreeMap<usize, Vec<Vec<T>>>,
    bytes: usize,
    max_bytes: usize,
}

impl<T: Copy + Default> Pool<T> {
    const ELEMENT: usize = std::mem::size_of::<T>();

    fn new(max_bytes: usize) -> Self {
        Self {
            by_capacity: BTreeMap::new(),
            bytes: 0,
            max_bytes,
        }
    }

    /// The smallest free buffer that holds `len` elements without wasting more than
    /// `1 − 1/SLACK` of itself, resized to `len`.
    fn take(&mut self, len: usize) -> Option<Vec<T>> {
        let (&capacity, free) = self.by_capacity.range_mut(len..).next()?;
        if capacity as f64 > len as f64 * SLACK {
            return None;
        }
        let mut v = free.pop()?;
        if free.is_empty() {
            self.by_capacity.remove(&capacity);
        }
        self.bytes -= capacity * Self::ELEMENT;
        // Shrinking keeps the capacity; growing within it writes zeros to the new tail.
        v.resize(len, T::default());
        Some(v)
    }

    fn give(&mut self, v: Vec<T>) {
        let bytes = v.capacity() * Self::ELEMENT;
        if bytes > 0 && self.bytes + bytes <= self.max_bytes {
            self.bytes += bytes;
            self.by_capacity.entry(v.capacity()).or_default().push(v);
        }
    }
}

static POOL: Mutex<Option<Pool<f32>>> = Mutex::new(None);

/// Max-pool argmax indices, pooled apart from the values.
static INDEX_POOL: Mutex<Option<Pool<u32>>> = Mutex::new(None);

/// Whether [`take`] fills its buffers with NaN (see [`poison_taken_buffers`]).
static POISON: AtomicBool = AtomicBool::new(false);

fn lock<T>(pool: &'static Mutex<Option<Pool<T>>>) -> MutexGuard<'static, Option<Pool<T>>> {
    // Each operation on a pool is one push or pop, so a lock poisoned by a panic
    // elsewhere still guards a consistent pool.
    pool.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A buffer of `len` from `pool` (or fresh), filled with `poison` when poisoning is on.
fn take_from<T: Copy + Default>(pool: &'static Mutex<Option<Pool<T>>>, len: usize, poison: T) -> Vec<T> {
    let reused = lock(pool).as_mut().and_then(|p| p.take(len));
    // A fresh allocation is zeroed: fresh pages from the OS need no memset.
    let mut v = reused.unwrap_or_else(|| vec![T::default(); len]);
    if POISON.load(Ordering::Relaxed) {
        v.fill(poison);
    }
    v
}

fn give_to<T: Copy + Default>(pool: &'static Mutex<Option<Pool<T>>>, v: Vec<T>, max_bytes: usize) {
    lock(pool).get_or_insert_with(|| Pool::new(max_bytes)).give(v);
}

/// A buffer of `len` elements whose contents are unspecified: the caller must write every
/// element before reading any.
pub fn take(len: usize) -> Vec<f32> {
    take_from(&POOL, len, f32::NAN)
}

/// From now on, [`take`] fills every buffer with NaN (and [`take_indices`] with an index
/// out of any plane), so that code reading an element it did not write first shows up as
/// NaN in its results, or panics. For tests: it costs a memset.
pub fn poison_taken_buffers() {
    POISON.store(true, Ordering::Relaxed);
}

/// Hands a buffer back for reuse (it is dropped instead when the pool is full).
pub fn give(v: Vec<f32>) {
    give_to(&POOL, v, CAP.load(Ordering::Relaxed));
}

/// Raises the pool's cap to hold one pass of `bytes` (a large model's pass at a large
/// batch) with a quarter to spare; [`release`] lowers it again.
pub fn keep_at_least(bytes: u64) {
    let wanted = usize::try_from(bytes.saturating_add(bytes / 4)).unwrap_or(usize::MAX);
    CAP.fetch_max(wanted, Ordering::Relaxed);
    if let Some(pool) = lock(&POOL).as_mut() {
        pool.max_bytes = pool.max_bytes.max(wanted);
    }
}

/// A buffer from [`take`] (contents unspecified) that goes back to the pool when dropped:
/// scratch for the length of a scope, e.g. one rayon task's.
pub struct Scratch(Vec<f32>);

impl Scratch {
    pub fn new(len: usize) -> Self {
        Self(take(len))
    }
}

impl std::ops::Deref for Scratch {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        &self.0
    }
}

impl std::ops::DerefMut for Scratch {
    fn deref_mut(&mut self) -> &mut [f32] {
        &mut self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        give(std::mem::take(&mut self.0));
    }
}

/// An index buffer of `len` elements whose contents are unspecified, like [`take`].
pub fn take_indices(len: usize) -> Vec<u32> {
    take_from(&INDEX_POOL, len, u32::MAX)
}

/// Hands an index buffer back for reuse.
pub fn give_indices(v: Vec<u32>) {
    give_to(&INDEX_POOL, v, MAX_POOLED_BYTES / 4);
}

/// Frees every pooled buffer (between jobs, so an idle studio gives its memory back).
pub fn release() {
    CAP.store(MAX_POOLED_BYTES, Ordering::Relaxed);
    let dropped = (lock(&POOL).take(), lock(&INDEX_POOL).take());
    drop(dropped);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hands_back_the_smallest_buffer_that_fits_within_the_slack_and_respects_the_cap() {
        let mut pool = Pool::new(40_000);
        let small = vec![7.0f32; 1000];
        let large = vec![7.0f32; 3000];
        let (small_ptr, large_ptr) = (small.as_ptr(), large.as_ptr());
        pool.give(large);
        pool.give(small);
        assert_eq!(pool.bytes, 16_000);
        assert!(pool.take(1001).is_none(), "3000 is more than twice 1001: too wasteful");
        let a = pool.take(800).expect("the 1000-element buffer fits 800");
        assert_eq!((a.as_ptr(), a.len()), (small_ptr, 800));
        let b = pool.take(2000).expect("the 3000-element buffer fits 2000");
        assert_eq!((b.as_ptr(), b.len()), (large_ptr, 2000));
        assert_eq!(pool.bytes, 0);
        pool.give(a);
        // Grown back within its capacity: the new tail is zero.
        let c = pool.take(1000).unwrap();
        assert_eq!(c.as_ptr(), small_ptr);
        assert!(c[..800].iter().all(|&v| v == 7.0) && c[800..].iter().all(|&v| v == 0.0));
        pool.give(b);
        pool.give(c);
        pool.give(vec![0.0; 6000]);
        assert_eq!(pool.bytes, 40_000);
        pool.give(vec![0.0; 1]);
        assert_eq!(pool.bytes, 40_000, "a buffer over the cap is not kept");
    }
}
