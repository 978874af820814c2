//! The synchronisation the hand-written lock-free parts are built on (the
//! task's cell, the lanes, the worker line, the gate), in one place, so that
//! they can be model-checked with [`loom`](https://docs.rs/loom), as tokio
//! checks its own.
//!
//! A normal build re-exports what those parts have always used: `std`'s
//! atomics, `Arc` and `UnsafeCell`, `futures`' `AtomicWaker` and
//! `crossbeam-queue`'s queues. The model-check build,
//!
//! ```text
//! RUSTFLAGS="--cfg workerpool_loom" cargo test --release --lib loom
//! ```
//!
//! (with a target directory of its own, as `.ci/run` gives it, so as not to
//! throw the normal build away), compiles only those four parts and what
//! they use, on loom's atomics, `Arc` and `UnsafeCell`, and on stand-ins that
//! loom sees through for the rest: the queues are crossbeam's algorithm, with
//! its orderings, ported onto loom's atomics, and the waker is a waker behind
//! loom's lock. Each part's `loom_tests` then has loom run a few threads
//! through every interleaving of their operations (and every value a load may
//! read), up to two preemptions each by default (`LOOM_MAX_PREEMPTIONS`
//! raises it). What they check is this crate's own protocol around the
//! queues: states, close flags, fences, wake-ups, the reads again after a
//! close, the gate's shared reference.
//!
//! The cfg is this crate's own, not tokio's `loom`: under `--cfg loom`, tokio
//! leaves out `net` and `signal`, and `actix-rt` no longer builds. The gate's
//! `admit` (a wait on tokio's `Notify`, which loom cannot see into) is left
//! out of the model checks, and stress-tested instead.

#[cfg(not(workerpool_loom))]
pub(crate) use std::cell::UnsafeCell;
#[cfg(not(workerpool_loom))]
pub(crate) use std::sync::{Arc, atomic};

#[cfg(not(workerpool_loom))]
pub(crate) use crossbeam_queue::{ArrayQueue, SegQueue};
#[cfg(not(workerpool_loom))]
pub(crate) use futures::task::AtomicWaker;

#[cfg(workerpool_loom)]
pub(crate) use loom::sync::atomic;
#[cfg(workerpool_loom)]
pub(crate) use stand_ins::{Arc, ArrayQueue, AtomicWaker, SegQueue, UnsafeCell};

/// Runs a model check: `loom::model`, with at most two preemptions in any
/// one interleaving unless `LOOM_MAX_PREEMPTIONS` says otherwise (as tokio
/// runs its own), which keeps the models with three threads to seconds
/// rather than hours.
#[cfg(all(test, workerpool_loom))]
pub(crate) fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = builder.preemption_bound.or(Some(2));
    builder.check(f);
}

#[cfg(workerpool_loom)]
#[allow(unsafe_code)]
mod stand_ins {
    //! The model-check build's stand-ins, each with the part of the API of
    //! what it stands for that this crate uses.

    use std::mem::MaybeUninit;
    use std::task::Waker;

    use loom::sync::Mutex;
    use loom::sync::atomic::{AtomicUsize, Ordering, fence};

    /// `std::sync::Arc` on loom's, which tracks the count (a leak, or a
    /// count that reaches zero twice, fails the model).
    pub(crate) struct Arc<T>(loom::sync::Arc<T>);

    impl<T> Arc<T> {
        pub(crate) fn new(value: T) -> Self {
            Arc(loom::sync::Arc::new(value))
        }

        /// loom's `Arc` has no `into_inner`: this one gives the value back if
        /// this was the last reference, and otherwise lets go of it. Two
        /// owners letting go at once may then both get `None`, and the value
        /// drops with the last of them rather than come back: either way it
        /// drops once, which is what the models check.
        pub(crate) fn into_inner(this: Self) -> Option<T> {
            loom::sync::Arc::try_unwrap(this.0).ok()
        }

        pub(crate) fn as_ptr(this: &Self) -> *const T {
            loom::sync::Arc::as_ptr(&this.0)
        }

        /// # Safety
        /// As `std::sync::Arc::increment_strong_count`.
        pub(crate) unsafe fn increment_strong_count(ptr: *const T) {
            // SAFETY: passed on from the caller.
            unsafe { loom::sync::Arc::increment_strong_count(ptr) }
        }

        /// # Safety
        /// As `std::sync::Arc::decrement_strong_count`.
        pub(crate) unsafe fn decrement_strong_count(ptr: *const T) {
            // SAFETY: passed on from the caller.
            unsafe { loom::sync::Arc::decrement_strong_count(ptr) }
        }

        pub(crate) fn strong_count(this: &Self) -> usize {
            loom::sync::Arc::strong_count(&this.0)
        }
    }

    impl<T> Clone for Arc<T> {
        fn clone(&self) -> Self {
            Arc(self.0.clone())
        }
    }

    impl<T> std::ops::Deref for Arc<T> {
        type Target = T;

        fn deref(&self) -> &T {
            &self.0
        }
    }

    /// `std::cell::UnsafeCell` on loom's, whose accesses loom checks for
    /// races: `get` counts as a write to the value, at the moment it is
    /// called (the pointer is used at once, by the callers here).
    pub(crate) struct UnsafeCell<T>(loom::cell::UnsafeCell<T>);

    impl<T> UnsafeCell<T> {
        pub(crate) fn new(value: T) -> Self {
            UnsafeCell(loom::cell::UnsafeCell::new(value))
        }

        pub(crate) fn get(&self) -> *mut T {
            self.0.with_mut(|ptr| ptr)
        }
    }

    /// `futures`' `AtomicWaker`, as a waker behind a lock: `wake` after
    /// `register` wakes that waker, once. (loom's own prints on every use.)
    pub(crate) struct AtomicWaker(Mutex<Option<Waker>>);

    impl AtomicWaker {
        pub(crate) fn new() -> Self {
            AtomicWaker(Mutex::new(None))
        }

        pub(crate) fn register(&self, waker: &Waker) {
            *self.0.lock().unwrap() = Some(waker.clone());
        }

        pub(crate) fn wake(&self) {
            let waker = self.0.lock().unwrap().take();
            if let Some(waker) = waker {
                waker.wake();
            }
        }
    }

    /// `crossbeam_queue::SegQueue`, for models that push a few messages: a
    /// ring as below, of a size no model fills. (crossbeam's `SegQueue` is
    /// a list of such rings, with the same protocol on each place, and the
    /// same `SeqCst` fence before a pop that may find it empty.)
    pub(crate) struct SegQueue<T>(ArrayQueue<T>);

    impl<T> SegQueue<T> {
        const PLACES: usize = 8;

        pub(crate) fn new() -> Self {
            SegQueue(ArrayQueue::new(Self::PLACES))
        }

        pub(crate) fn push(&self, value: T) {
            if self.0.push(value).is_err() {
                panic!("a model pushed more than {} messages", Self::PLACES);
            }
        }

        pub(crate) fn pop(&self) -> Option<T> {
            self.0.pop()
        }

        pub(crate) fn is_empty(&self) -> bool {
            self.0.is_empty()
        }

        pub(crate) fn len(&self) -> usize {
            self.0.len()
        }
    }

    /// `crossbeam_queue::ArrayQueue`, its algorithm and its orderings as in
    /// crossbeam-queue 0.3 (a ring of stamped places, and a head and a tail
    /// that count laps), on loom's atomics: a lock would give the code
    /// around it synchronisation that the real queue does not, and hide a
    /// missing fence. Spins yield to loom's other threads.
    pub(crate) struct ArrayQueue<T> {
        head: AtomicUsize,
        tail: AtomicUsize,
        buffer: Box<[Place<T>]>,
        cap: usize,
        one_lap: usize,
    }

    struct Place<T> {
        stamp: AtomicUsize,
        value: loom::cell::UnsafeCell<MaybeUninit<T>>,
    }

    // SAFETY: as crossbeam's: a value is handed from one thread to another
    // through its place's stamp.
    unsafe impl<T: Send> Send for ArrayQueue<T> {}
    unsafe impl<T: Send> Sync for ArrayQueue<T> {}

    impl<T> ArrayQueue<T> {
        pub(crate) fn new(cap: usize) -> Self {
            assert!(cap > 0);
            let buffer = (0..cap)
                .map(|i| Place {
                    stamp: AtomicUsize::new(i),
                    value: loom::cell::UnsafeCell::new(MaybeUninit::uninit()),
                })
                .collect();
            ArrayQueue {
                head: AtomicUsize::new(0),
                tail: AtomicUsize::new(0),
                buffer,
                cap,
                one_lap: (cap + 1).next_power_of_two(),
            }
        }

        pub(crate) fn push(&self, value: T) -> Result<(), T> {
            let mut tail = self.tail.load(Ordering::Relaxed);
            loop {
                let index = tail & (self.one_lap - 1);
                let lap = tail & !(self.one_lap - 1);
                let new_tail = if index + 1 < self.cap {
                    tail + 1
                } else {
                    lap.wrapping_add(self.one_lap)
                };
                let place = &self.buffer[index];
                let stamp = place.stamp.load(Ordering::Acquire);
                if tail == stamp {
                    match self.tail.compare_exchange_weak(
                        tail,
                        new_tail,
                        Ordering::SeqCst,
                        Ordering::Relaxed,
                    ) {
                        Ok(_) => {
                            // SAFETY: the stamp says the place is empty, and
                            // the tail now says it is this push's.
                            place
                                .value
                                .with_mut(|p| unsafe { p.write(MaybeUninit::new(value)) });
                            place.stamp.store(tail + 1, Ordering::Release);
                            return Ok(());
                        }
                        Err(t) => tail = t,
                    }
                } else if stamp.wrapping_add(self.one_lap) == tail + 1 {
                    fence(Ordering::SeqCst);
                    let head = self.head.load(Ordering::Relaxed);
                    if head.wrapping_add(self.one_lap) == tail {
                        return Err(value);
                    }
                    loom::thread::yield_now();
                    tail = self.tail.load(Ordering::Relaxed);
                } else {
                    loom::thread::yield_now();
                    tail = self.tail.load(Ordering::Relaxed);
                }
            }
        }

        pub(crate) fn pop(&self) -> Option<T> {
            let mut head = self.head.load(Ordering::Relaxed);
            loop {
                let index = head & (self.one_lap - 1);
                let lap = head & !(self.one_lap - 1);
                let place = &self.buffer[index];
                let stamp = place.stamp.load(Ordering::Acquire);
                if head + 1 == stamp {
                    let new = if index + 1 < self.cap {
                        head + 1
                    } else {
                        lap.wrapping_add(self.one_lap)
                    };
                    match self.head.compare_exchange_weak(
                        head,
                        new,
                        Ordering::SeqCst,
                        Ordering::Relaxed,
                    ) {
                        Ok(_) => {
                            // SAFETY: the stamp says the place is full, and
                            // the head now says it is this pop's.
                            let value = place.value.with(|p| unsafe { p.read().assume_init() });
                            place
                                .stamp
                                .store(head.wrapping_add(self.one_lap), Ordering::Release);
                            return Some(value);
                        }
                        Err(h) => head = h,
                    }
                } else if stamp == head {
                    fence(Ordering::SeqCst);
                    let tail = self.tail.load(Ordering::Relaxed);
                    if tail == head {
                        return None;
                    }
                    loom::thread::yield_now();
                    head = self.head.load(Ordering::Relaxed);
                } else {
                    loom::thread::yield_now();
                    head = self.head.load(Ordering::Relaxed);
                }
            }
        }

        pub(crate) fn is_empty(&self) -> bool {
            let head = self.head.load(Ordering::SeqCst);
            let tail = self.tail.load(Ordering::SeqCst);
            tail == head
        }

        pub(crate) fn len(&self) -> usize {
            loop {
                let tail = self.tail.load(Ordering::SeqCst);
                let head = self.head.load(Ordering::SeqCst);
                if self.tail.load(Ordering::SeqCst) == tail {
                    let hix = head & (self.one_lap - 1);
                    let tix = tail & (self.one_lap - 1);
                    return if hix < tix {
                        tix - hix
                    } else if hix > tix {
                        self.cap - hix + tix
                    } else if tail == head {
                        0
                    } else {
                        self.cap
                    };
                }
            }
        }
    }

    impl<T> Drop for ArrayQueue<T> {
        fn drop(&mut self) {
            while self.pop().is_some() {}
        }
    }
}
