//! Admission: the queue's capacity, shared by the pool handles and the supervisor.
//!
//! A task holds a permit from the moment it is accepted until the supervisor
//! hands it to a worker (or back to its caller). Counting here, rather than in the
//! supervisor alone, lets `try_submit` answer at once, without a round trip, and
//! bounds the supervisor's mailbox as well as its queue: `do_send` ignores mailbox
//! capacity.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use tokio::sync::Notify;

use crate::task::TaskId;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    Full,
    Closed,
}

#[derive(Debug)]
pub(crate) struct Gate {
    capacity: usize,
    /// Accepted tasks not yet handed to a worker or back to their caller.
    pending: AtomicUsize,
    closed: AtomicBool,
    /// Submitters parked on `room`; `release` skips the notification when zero.
    waiters: AtomicUsize,
    room: Notify,
    next_id: AtomicU64,
}

impl Gate {
    pub(crate) fn new(capacity: usize) -> Self {
        Gate {
            capacity,
            pending: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            waiters: AtomicUsize::new(0),
            room: Notify::new(),
            next_id: AtomicU64::new(0),
        }
    }

    /// Takes a permit and an id, or says why not.
    pub(crate) fn try_admit(&self) -> Result<TaskId, Refusal> {
        if self.is_closed() {
            return Err(Refusal::Closed);
        }
        let mut pending = self.pending.load(Ordering::SeqCst);
        loop {
            if pending >= self.capacity {
                return Err(Refusal::Full);
            }
            match self.pending.compare_exchange_weak(
                pending,
                pending + 1,
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => break,
                Err(actual) => pending = actual,
            }
        }
        Ok(TaskId(self.next_id.fetch_add(1, Ordering::Relaxed)))
    }

    /// Waits for a permit; fails only once the gate is closed.
    pub(crate) async fn admit(&self) -> Result<TaskId, Refusal> {
        loop {
            match self.try_admit() {
                Err(Refusal::Full) => {}
                decided => return decided,
            }
            let notified = self.room.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            self.waiters.fetch_add(1, Ordering::SeqCst);
            // A permit released between the first try and `enable` sent no
            // notification, so look again before sleeping.
            let again = self.try_admit();
            if !matches!(again, Err(Refusal::Full)) {
                self.waiters.fetch_sub(1, Ordering::SeqCst);
                return again;
            }
            notified.await;
            self.waiters.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Gives a permit back: its task left the queue.
    pub(crate) fn release(&self) {
        self.pending.fetch_sub(1, Ordering::SeqCst);
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
        self.closed.store(true, Ordering::SeqCst);
        self.room.notify_waiters();
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Accepted tasks that the supervisor has not yet placed (queued or still in
    /// its mailbox).
    pub(crate) fn pending(&self) -> usize {
        self.pending.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let waiter = actix_rt::spawn({
            let gate = gate.clone();
            async move { gate.admit().await }
        });
        actix_rt::task::yield_now().await;
        assert!(!waiter.is_finished());
        gate.release();
        assert_eq!(waiter.await.unwrap(), Ok(TaskId(1)));
    }

    #[actix_rt::test]
    async fn closing_wakes_a_waiting_admission_with_a_refusal() {
        let gate = std::sync::Arc::new(Gate::new(1));
        gate.try_admit().unwrap();
        let waiter = actix_rt::spawn({
            let gate = gate.clone();
            async move { gate.admit().await }
        });
        actix_rt::task::yield_now().await;
        gate.close();
        assert_eq!(waiter.await.unwrap(), Err(Refusal::Closed));
    }
}
