//! Admission: the queue's capacity, shared by the pool handles and the supervisor.
//!
//! A task holds a permit from the moment it is accepted until the supervisor
//! hands it to a worker (or back to its caller). Counting here, rather than in the
//! supervisor alone, lets `try_submit` answer at once, without a round trip, and
//! bounds the supervisor's mailbox as well as its queue: `do_send` ignores mailbox
//! capacity.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use tokio::sync::Notify;

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
}

impl Gate {
    pub(crate) fn new(capacity: usize) -> Self {
        Gate {
            capacity: capacity.min(CLOSED - 1),
            state: AtomicUsize::new(0),
            waiters: AtomicUsize::new(0),
            room: Notify::new(),
            next_id: AtomicU64::new(0),
        }
    }

    /// Takes a permit and an id, or says why not.
    pub(crate) fn try_admit(&self) -> Result<TaskId, Refusal> {
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
        Ok(TaskId(self.next_id.fetch_add(1, Ordering::Relaxed)))
    }

    /// Waits for a permit; fails only once the gate is closed.
    ///
    /// Cancel safe: dropping the future gives nothing up and leaves no trace.
    pub(crate) async fn admit(&self) -> Result<TaskId, Refusal> {
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

    /// Gives a permit back: its task left the queue.
    pub(crate) fn release(&self) {
        self.state.fetch_sub(1, Ordering::SeqCst);
        if self.waiters.load(Ordering::SeqCst) > 0 {
            self.room.notify_one();
        }
    }

    /// A job leaves the queue: if it has never run, it still holds the permit
    /// it was admitted with (a retry re-enters the queue without one).
    pub(crate) fn release_for<T: crate::task::Task>(&self, job: &crate::job::Job<T>) {
        if job.attempts() == 0 {
            self.release();
        }
    }

    /// Refuses every later admission and wakes every waiting submitter.
    pub(crate) fn close(&self) {
        self.state.fetch_or(CLOSED, Ordering::SeqCst);
        self.room.notify_waiters();
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.state.load(Ordering::SeqCst) & CLOSED != 0
    }

    /// Accepted tasks that the supervisor has not yet placed (queued or still in
    /// its mailbox).
    pub(crate) fn pending(&self) -> usize {
        self.state.load(Ordering::SeqCst) & !CLOSED
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

#[cfg(test)]
mod tests {
    use super::*;

    /// An admission started in the background on a gate with no room.
    fn waiting_admission(
        gate: &std::sync::Arc<Gate>,
    ) -> actix_rt::task::JoinHandle<Result<TaskId, Refusal>> {
        let gate = gate.clone();
        actix_rt::spawn(async move { gate.admit().await })
    }

    #[test]
    fn admits_up_to_capacity_then_refuses_full() {
        let gate = Gate::new(2);
        assert_eq!(gate.try_admit(), Ok(TaskId(0)));
        assert_eq!(gate.try_admit(), Ok(TaskId(1)));
        assert_eq!(gate.try_admit(), Err(Refusal::Full));
        gate.release();
        assert_eq!(gate.try_admit(), Ok(TaskId(2)));
    }

    #[test]
    fn a_closed_gate_refuses_even_with_room() {
        let gate = Gate::new(2);
        gate.close();
        assert_eq!(gate.try_admit(), Err(Refusal::Closed));
    }

    #[actix_rt::test]
    async fn a_waiting_admission_proceeds_when_a_permit_is_released() {
        let gate = std::sync::Arc::new(Gate::new(1));
        gate.try_admit().unwrap();
        let waiter = waiting_admission(&gate);
        actix_rt::task::yield_now().await;
        assert!(!waiter.is_finished());
        gate.release();
        assert_eq!(waiter.await.unwrap(), Ok(TaskId(1)));
    }

    #[test]
    fn closing_keeps_the_count_and_release_still_lowers_it() {
        let gate = Gate::new(3);
        gate.try_admit().unwrap();
        gate.try_admit().unwrap();
        gate.close();
        assert_eq!(gate.pending(), 2);
        gate.release();
        assert_eq!(gate.pending(), 1);
        assert!(gate.is_closed());
        assert_eq!(gate.try_admit(), Err(Refusal::Closed));
    }

    #[actix_rt::test]
    async fn a_cancelled_admission_leaves_no_parked_waiter_behind() {
        let gate = std::sync::Arc::new(Gate::new(1));
        gate.try_admit().unwrap();
        let waiter = waiting_admission(&gate);
        actix_rt::task::yield_now().await;
        assert_eq!(gate.waiters.load(Ordering::SeqCst), 1);
        waiter.abort();
        let _ = waiter.await;
        assert_eq!(gate.waiters.load(Ordering::SeqCst), 0);
    }

    #[actix_rt::test]
    async fn closing_wakes_a_waiting_admission_with_a_refusal() {
        let gate = std::sync::Arc::new(Gate::new(1));
        gate.try_admit().unwrap();
        let waiter = waiting_admission(&gate);
        actix_rt::task::yield_now().await;
        gate.close();
        assert_eq!(waiter.await.unwrap(), Err(Refusal::Closed));
    }
}
