//! Admission: the queue's capacity, shared by the pool handles and the supervisor.
//!
//! A task holds a [`Permit`] from the moment it is accepted until the
//! supervisor books it as running on a worker (or the task leaves the pool
//! unrun). Counting here, rather than in the supervisor alone, lets
//! `try_submit` answer at once, without a round trip, and bounds the
//! supervisor's mailbox as well as its queue: `do_send` ignores mailbox
//! capacity. The permit is a value that gives its place back when dropped, so
//! every path out of the queue releases it exactly once, by construction.

use tokio::sync::Notify;

use crate::sync::Arc;
use crate::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use crate::task::TaskId;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    Full,
    Closed,
}

/// The closed flag, kept in the same word as the pending count: an admission
/// and a close can then never interleave, so once the gate is closed the count
/// only falls (a drain relies on that to know when nothing more can arrive).
const CLOSED: usize = 1 << (usize::BITS - 1);

#[derive(Debug)]
pub(crate) struct Gate {
    capacity: usize,
    /// `CLOSED` or'ed with the number of accepted tasks not yet handed to a
    /// worker or back to their caller.
    state: AtomicUsize,
    /// Submitters parked on `room`; `release` skips the notification when zero.
    waiters: AtomicUsize,
    room: Notify,
    next_id: AtomicU64,
    /// `submit` refuses rather than waits when the queue is full
    /// ([`Overflow::Reject`](crate::Overflow::Reject)).
    rejects: bool,
    /// `submit` evicts the oldest queued task when the queue is full
    /// ([`Overflow::DropOldest`](crate::Overflow::DropOldest)).
    evicts: bool,
    /// Tasks admitted and places held, for the pool's metrics.
    #[cfg(all(feature = "metrics", not(workerpool_loom)))]
    admissions: Option<crate::telemetry::Admissions>,
}

impl Gate {
    pub(crate) fn new(capacity: usize) -> Self {
        Gate {
            capacity: capacity.min(CLOSED - 1),
            state: AtomicUsize::new(0),
            waiters: AtomicUsize::new(0),
            room: Notify::new(),
            next_id: AtomicU64::new(0),
            rejects: false,
            evicts: false,
            #[cfg(all(feature = "metrics", not(workerpool_loom)))]
            admissions: None,
        }
    }

    /// The gate, with what `submit` does when the queue is full.
    #[cfg(not(workerpool_loom))]
    pub(crate) fn overflowing(self, overflow: crate::Overflow) -> Self {
        Gate {
            rejects: overflow == crate::Overflow::Reject,
            evicts: overflow == crate::Overflow::DropOldest,
            ..self
        }
    }

    /// Whether `submit` refuses rather than waits when the queue is full.
    pub(crate) fn rejects(&self) -> bool {
        self.rejects
    }

    /// Whether `submit` makes room by evicting the oldest queued task.
    pub(crate) fn evicts(&self) -> bool {
        self.evicts
    }

    /// Whether a place is free now.
    pub(crate) fn has_room(&self) -> bool {
        let state = self.state.load(Ordering::SeqCst);
        state & CLOSED == 0 && state < self.capacity
    }

    /// The gate, recording admissions and freed places in the pool's metrics.
    #[cfg(all(feature = "metrics", not(workerpool_loom)))]
    pub(crate) fn recording(self, admissions: crate::telemetry::Admissions) -> Self {
        Gate {
            admissions: Some(admissions),
            ..self
        }
    }

    /// Takes a permit and an id, or says why not.
    #[cfg(not(workerpool_loom))]
    pub(crate) fn try_admit(self: &Arc<Self>) -> Result<(TaskId, Permit), Refusal> {
        Gate::try_admit_to(self)
    }

    /// A new id for the place `permit` holds, which it keeps: the place of a
    /// task evicted to make room, handed to the newer task it made room for,
    /// so that no other submitter takes it first. Never refused, even once
    /// the gate has closed: the place was made before, so the newer task was
    /// accepted before the pool began to stop, which counts the place as
    /// pending until the task is in, then hands it back or runs it.
    #[cfg(not(workerpool_loom))]
    pub(crate) fn reissue(&self, permit: Permit) -> (TaskId, Permit) {
        #[cfg(feature = "metrics")]
        if let Some(admissions) = &self.admissions {
            // One task left the queue, another took its place.
            admissions.place_freed();
            admissions.admitted();
        }
        (TaskId(self.next_id.fetch_add(1, Ordering::Relaxed)), permit)
    }

    /// `try_admit`, as an associated function: the model checks' `Arc` (see
    /// `crate::sync`) cannot be a method's receiver.
    #[inline]
    fn try_admit_to(gate: &Arc<Self>) -> Result<(TaskId, Permit), Refusal> {
        let (id, first) = gate.try_take()?;
        if first {
            // The permits out share one reference to the gate, taken by the
            // first and given up by the last (see `Permit`).
            // SAFETY: `gate` is a live `Arc`, so its pointer is one.
            unsafe { Arc::increment_strong_count(Arc::as_ptr(gate)) };
        }
        let permit = Permit(std::ptr::NonNull::from(&**gate));
        #[cfg(all(feature = "metrics", not(workerpool_loom)))]
        if let Some(admissions) = &gate.admissions {
            admissions.admitted();
        }
        Ok((id, permit))
    }

    /// Takes a place and an id, or says why not; the place is the caller's to
    /// wrap in a [`Permit`]. `true` with the first place taken while none was.
    fn try_take(&self) -> Result<(TaskId, bool), Refusal> {
        let mut state = self.state.load(Ordering::SeqCst);
        loop {
            if state & CLOSED != 0 {
                return Err(Refusal::Closed);
            }
            if state >= self.capacity {
                return Err(Refusal::Full);
            }
            match self.state.compare_exchange_weak(
                state,
                state + 1,
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => break,
                Err(actual) => state = actual,
            }
        }
        let id = TaskId(self.next_id.fetch_add(1, Ordering::Relaxed));
        Ok((id, state == 0))
    }

    /// Waits for a permit; fails only once the gate is closed.
    ///
    /// Cancel safe: dropping the future gives nothing up and leaves no trace.
    ///
    /// Not in the model checks (tokio's `Notify` is not loom's), but in the
    /// stress tests below.
    #[cfg(not(workerpool_loom))]
    pub(crate) async fn admit(self: &Arc<Self>) -> Result<(TaskId, Permit), Refusal> {
        loop {
            match self.try_admit() {
                Err(Refusal::Full) => {}
                decided => return decided,
            }
            let notified = self.room.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            let _parked = Parked::new(&self.waiters);
            // A permit released between the first try and `enable` sent no
            // notification, so look again before sleeping.
            match self.try_admit() {
                Err(Refusal::Full) => notified.await,
                decided => return decided,
            }
        }
    }

    /// Gives a place back; only a dropped [`Permit`] calls this. `true` if it
    /// was the last place taken.
    #[inline]
    fn release(&self) -> bool {
        let before = self.state.fetch_sub(1, Ordering::SeqCst);
        #[cfg(all(feature = "metrics", not(workerpool_loom)))]
        if let Some(admissions) = &self.admissions {
            admissions.place_freed();
        }
        if self.waiters.load(Ordering::SeqCst) > 0 {
            self.room.notify_one();
        }
        before & !CLOSED == 1
    }

    /// Refuses every later admission and wakes every waiting submitter.
    pub(crate) fn close(&self) {
        self.state.fetch_or(CLOSED, Ordering::SeqCst);
        self.room.notify_waiters();
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.state.load(Ordering::SeqCst) & CLOSED != 0
    }

    /// Whether this gate gave out `id`. Ids are handed out in order, so a
    /// task the pool knows nothing of now either ended or never was.
    pub(crate) fn gave_out(&self, id: TaskId) -> bool {
        id.0 < self.next_id.load(Ordering::Relaxed)
    }

    /// Permits held: accepted tasks that the supervisor has not yet booked as
    /// running (queued, or on their way to it).
    pub(crate) fn pending(&self) -> usize {
        self.state.load(Ordering::SeqCst) & !CLOSED
    }
}

/// One place in a pool's queue, held by an accepted task that has not yet
/// run. Dropping it gives the place back (and may wake a waiting submitter).
///
/// A permit points at its gate without a reference count of its own: an
/// `Arc` per permit would cost two atomic operations per task, on the path
/// every task takes. Instead the permits out share one strong reference to
/// the gate, taken when the count of places taken rises from zero and given
/// up when it falls back to zero, so the gate outlives every permit. No two
/// of those transitions can cross: a place is only taken through a live
/// `Arc` (so the gate cannot be freed meanwhile), and the fall to zero is
/// the release of the last permit out, which exists only after the rise
/// that made it has taken its reference.
pub(crate) struct Permit(std::ptr::NonNull<Gate>);

// SAFETY: a permit only calls `Gate::release` (atomics and a `Notify`, all
// `Sync`) through its pointer, from whichever thread drops it.
unsafe impl Send for Permit {}
unsafe impl Sync for Permit {}

impl Drop for Permit {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: the gate lives while any permit is out (see above).
        let gate = unsafe { self.0.as_ref() };
        if gate.release() {
            // SAFETY: the last permit out gives up the reference the first
            // one took, through the pointer of the `Arc` it came from.
            unsafe { Arc::decrement_strong_count(self.0.as_ptr()) };
        }
    }
}

impl std::fmt::Debug for Permit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Permit")
    }
}

/// Counts a submitter as parked for as long as it lives, so that a cancelled
/// `admit` does not leave `release` notifying nobody forever.
struct Parked<'a>(&'a AtomicUsize);

impl<'a> Parked<'a> {
    fn new(waiters: &'a AtomicUsize) -> Self {
        waiters.fetch_add(1, Ordering::SeqCst);
        Parked(waiters)
    }
}

impl Drop for Parked<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(all(test, not(workerpool_loom)))]
mod tests {
    use super::*;

    /// An admission started in the background on a gate with no room.
    fn waiting_admission(gate: &Arc<Gate>) -> actix_rt::task::JoinHandle<Result<TaskId, Refusal>> {
        let gate = gate.clone();
        actix_rt::spawn(async move { gate.admit().await.map(|(id, _permit)| id) })
    }

    fn id_of(admitted: Result<(TaskId, Permit), Refusal>) -> Result<TaskId, Refusal> {
        admitted.map(|(id, permit)| {
            std::mem::forget(permit);
            id
        })
    }

    #[test]
    fn admits_up_to_capacity_then_refuses_full() {
        let gate = Arc::new(Gate::new(2));
        let first = gate.try_admit().unwrap();
        assert_eq!(first.0, TaskId(0));
        assert_eq!(id_of(gate.try_admit()), Ok(TaskId(1)));
        assert_eq!(id_of(gate.try_admit()), Err(Refusal::Full));
        drop(first);
        assert_eq!(id_of(gate.try_admit()), Ok(TaskId(2)));
    }

    #[test]
    fn a_closed_gate_refuses_even_with_room() {
        let gate = Arc::new(Gate::new(2));
        gate.close();
        assert_eq!(id_of(gate.try_admit()), Err(Refusal::Closed));
    }

    #[actix_rt::test]
    async fn a_waiting_admission_proceeds_when_a_permit_is_released() {
        let gate = Arc::new(Gate::new(1));
        let (_, permit) = gate.try_admit().unwrap();
        let waiter = waiting_admission(&gate);
        actix_rt::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(permit);
        assert_eq!(waiter.await.unwrap(), Ok(TaskId(1)));
    }

    #[test]
    fn closing_keeps_the_count_and_a_dropped_permit_still_lowers_it() {
        let gate = Arc::new(Gate::new(3));
        let (_, first) = gate.try_admit().unwrap();
        let (_, _second) = gate.try_admit().unwrap();
        gate.close();
        assert_eq!(gate.pending(), 2);
        drop(first);
        assert_eq!(gate.pending(), 1);
        assert!(gate.is_closed());
        assert_eq!(id_of(gate.try_admit()), Err(Refusal::Closed));
    }

    #[actix_rt::test]
    async fn a_cancelled_admission_leaves_no_parked_waiter_behind() {
        let gate = Arc::new(Gate::new(1));
        let _held = gate.try_admit().unwrap();
        let waiter = waiting_admission(&gate);
        actix_rt::task::yield_now().await;
        assert_eq!(gate.waiters.load(Ordering::SeqCst), 1);
        waiter.abort();
        let _ = waiter.await;
        assert_eq!(gate.waiters.load(Ordering::SeqCst), 0);
    }

    #[actix_rt::test]
    async fn closing_wakes_a_waiting_admission_with_a_refusal() {
        let gate = Arc::new(Gate::new(1));
        let _held = gate.try_admit().unwrap();
        let waiter = waiting_admission(&gate);
        actix_rt::task::yield_now().await;
        gate.close();
        assert_eq!(waiter.await.unwrap(), Err(Refusal::Closed));
    }
}

/// Model checks (see `crate::sync`): admissions, releases, a close, and the
/// owners of the gate letting go, on loom's threads. loom's `Arc` counts the
/// gate's references, the permits' shared one included: a model that leaks
/// the gate fails, and so does one that frees it while a permit is out (the
/// last permit's `decrement_strong_count` then finds no `Arc` to count down).
#[cfg(all(test, workerpool_loom))]
mod loom_tests {
    use loom::thread;

    use super::*;

    fn try_admit(gate: &Arc<Gate>) -> Result<(TaskId, Permit), Refusal> {
        Gate::try_admit_to(gate)
    }

    /// Two threads take a place on a gate of one and give it back, twice
    /// each: never are two permits out, every place comes back, and so does
    /// the permits' reference to the gate.
    #[test]
    fn loom_admissions_never_exceed_capacity() {
        crate::sync::model(|| {
            let gate = Arc::new(Gate::new(1));
            let holders = Arc::new(AtomicUsize::new(0));
            let threads: Vec<_> = (0..2)
                .map(|_| {
                    let (gate, holders) = (gate.clone(), holders.clone());
                    thread::spawn(move || {
                        for _ in 0..2 {
                            if let Ok((_, permit)) = try_admit(&gate) {
                                let before = holders.fetch_add(1, Ordering::SeqCst);
                                assert_eq!(before, 0, "two permits out on a gate of one");
                                holders.fetch_sub(1, Ordering::SeqCst);
                                drop(permit);
                            }
                        }
                    })
                })
                .collect();
            threads.into_iter().for_each(|t| t.join().unwrap());
            assert_eq!(gate.pending(), 0);
            assert_eq!(
                Arc::strong_count(&gate),
                1,
                "the permits kept their reference"
            );
        });
    }

    /// A permit is given back on one thread while another admits (through
    /// an owner it then lets go of, before its own permit) and the last
    /// other owner lets go: the count of places falls to zero and rises from
    /// it in any order against the owners' drops, and the gate is freed
    /// exactly once, by whoever is last, owner or permit.
    #[test]
    fn loom_the_last_permit_and_the_last_owner_let_go_at_once() {
        crate::sync::model(|| {
            let gate = Arc::new(Gate::new(2));
            let (_, held) = try_admit(&gate).unwrap();
            let admitting = thread::spawn({
                let gate = gate.clone();
                move || {
                    let admitted = try_admit(&gate);
                    drop(gate);
                    drop(admitted);
                }
            });
            let releasing = thread::spawn(move || drop(held));
            drop(gate);
            admitting.join().unwrap();
            releasing.join().unwrap();
        });
    }

    /// A close races an admission: the admission either came first, and its
    /// place is counted when the close is done, or it is refused; nothing
    /// is admitted after the close, and the count only falls from there.
    #[test]
    fn loom_close_races_an_admission() {
        crate::sync::model(|| {
            let gate = Arc::new(Gate::new(2));
            let admitting = thread::spawn({
                let gate = gate.clone();
                move || match try_admit(&gate) {
                    Ok((_, permit)) => Some(permit),
                    Err(refusal) => {
                        assert_eq!(refusal, Refusal::Closed);
                        None
                    }
                }
            });
            gate.close();
            let pending = gate.pending();
            assert_eq!(try_admit(&gate).err(), Some(Refusal::Closed));
            let permit = admitting.join().unwrap();
            assert_eq!(
                pending,
                usize::from(permit.is_some()),
                "admitted after the close"
            );
            drop(permit);
            assert_eq!(gate.pending(), 0);
            assert!(gate.is_closed());
        });
    }
}

/// Stress: many threads and tasks at the gate, on the real atomics and
/// tokio's `Notify`.
#[cfg(all(test, not(workerpool_loom)))]
mod stress_tests {
    use std::sync::Weak;
    use std::thread;
    use std::time::Duration;

    use super::*;

    /// Threads take and give back places on a small gate as fast as they
    /// can: never are more permits out than its capacity, every place comes
    /// back, and so does the permits' reference to the gate.
    #[test]
    fn stress_admissions_never_exceed_capacity() {
        const CAPACITY: usize = 3;
        let gate = Arc::new(Gate::new(CAPACITY));
        let holders = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (gate, holders) = (gate.clone(), holders.clone());
                thread::spawn(move || {
                    let mut admitted = 0;
                    for _ in 0..50_000 {
                        if let Ok((_, permit)) = gate.try_admit() {
                            let before = holders.fetch_add(1, Ordering::SeqCst);
                            assert!(before < CAPACITY, "more permits out than places");
                            holders.fetch_sub(1, Ordering::SeqCst);
                            drop(permit);
                            admitted += 1;
                        }
                    }
                    admitted
                })
            })
            .collect();
        let admitted: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert!(admitted > 0);
        assert_all_given_back(&gate);
    }

    /// Every place is back, and the permits let go of the gate's reference.
    fn assert_all_given_back(gate: &Arc<Gate>) {
        assert_eq!(gate.pending(), 0);
        assert_eq!(
            Arc::strong_count(gate),
            1,
            "the permits kept their reference"
        );
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .enable_time()
            .build()
            .unwrap()
    }

    /// Many tasks on a multi-threaded runtime wait for places on a small
    /// gate, hold them across a yield and give them back: every one gets
    /// through (no wake-up is lost), never more at once than its capacity.
    #[test]
    fn stress_waiting_admissions_all_get_through() {
        const CAPACITY: usize = 2;
        const TASKS: usize = 64;
        const EACH: usize = 200;
        let gate = Arc::new(Gate::new(CAPACITY));
        let holders = Arc::new(AtomicUsize::new(0));
        runtime().block_on(async {
            let tasks: Vec<_> = (0..TASKS)
                .map(|_| {
                    let (gate, holders) = (gate.clone(), holders.clone());
                    tokio::spawn(async move {
                        for _ in 0..EACH {
                            let (_, permit) = gate.admit().await.unwrap();
                            let before = holders.fetch_add(1, Ordering::SeqCst);
                            assert!(before < CAPACITY, "more permits out than places");
                            tokio::task::yield_now().await;
                            holders.fetch_sub(1, Ordering::SeqCst);
                            drop(permit);
                        }
                    })
                })
                .collect();
            let all = futures::future::try_join_all(tasks);
            tokio::time::timeout(Duration::from_secs(60), all)
                .await
                .expect("an admission waits for ever: a wake-up was lost")
                .unwrap();
        });
        assert_eq!(gate.waiters.load(Ordering::SeqCst), 0);
        assert_all_given_back(&gate);
    }

    /// The gate closes while tasks wait for places and others are given
    /// back: every waiting admission ends (admitted or refused), and once the
    /// close is done no place is taken: the count only falls.
    #[test]
    fn stress_close_while_admissions_wait() {
        const CAPACITY: usize = 2;
        for _ in 0..20 {
            let gate = Arc::new(Gate::new(CAPACITY));
            runtime().block_on(async {
                let tasks: Vec<_> = (0..32)
                    .map(|_| {
                        let gate = gate.clone();
                        tokio::spawn(async move {
                            let mut admitted = 0;
                            while let Ok((_, permit)) = gate.admit().await {
                                admitted += 1;
                                tokio::task::yield_now().await;
                                drop(permit);
                            }
                            admitted
                        })
                    })
                    .collect();
                tokio::time::sleep(Duration::from_millis(2)).await;
                gate.close();
                let mut last = gate.pending();
                assert!(last <= CAPACITY);
                let all = futures::future::try_join_all(tasks);
                let mut all = std::pin::pin!(all);
                let watch = async {
                    loop {
                        let now = gate.pending();
                        assert!(now <= last, "a place taken after the close");
                        last = now;
                        tokio::task::yield_now().await;
                    }
                };
                let ended = tokio::select! {
                    ended = tokio::time::timeout(Duration::from_secs(60), &mut all) => ended,
                    () = watch => unreachable!(),
                };
                ended
                    .expect("an admission waits for ever after the close")
                    .unwrap();
            });
            assert_eq!(gate.waiters.load(Ordering::SeqCst), 0);
            assert_all_given_back(&gate);
        }
    }

    /// The last permit out is given back on one thread while the last owner
    /// of the gate lets go on another: the gate is freed, whoever is last.
    #[test]
    fn stress_the_last_permit_and_the_last_owner_let_go_at_once() {
        const ROUNDS: usize = 50_000;
        let (to_dropper, permits) = std::sync::mpsc::sync_channel::<Permit>(16);
        let dropping = thread::spawn(move || permits.into_iter().for_each(drop));
        let mut gates: Vec<Weak<Gate>> = Vec::with_capacity(ROUNDS);
        for _ in 0..ROUNDS {
            let gate = Arc::new(Gate::new(1));
            let (_, permit) = gate.try_admit().unwrap();
            gates.push(Arc::downgrade(&gate));
            to_dropper.send(permit).unwrap();
            drop(gate);
        }
        drop(to_dropper);
        dropping.join().unwrap();
        assert!(
            gates.iter().all(|gate| gate.upgrade().is_none()),
            "a gate outlived its owners and its permits"
        );
    }
}
