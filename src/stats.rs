//! The [`Stats`] snapshot.

/// A snapshot of a pool's counters, taken by the supervisor between two messages.
///
/// Every snapshot balances: `submitted == completed + failed + panicked + not_run
/// + queued + in_flight` (see [`Stats::balances`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Tasks the supervisor has taken on.
    pub submitted: u64,
    /// Tasks that ended [`Completed`](crate::Outcome::Completed).
    pub completed: u64,
    /// Tasks that ended [`Failed`](crate::Outcome::Failed).
    pub failed: u64,
    /// Tasks that ended [`Panicked`](crate::Outcome::Panicked).
    pub panicked: u64,
    /// Tasks handed back [`NotRun`](crate::Outcome::NotRun).
    pub not_run: u64,
    /// Tasks waiting in the queue for a worker.
    pub queued: usize,
    /// Tasks running on a worker.
    pub in_flight: usize,
    /// One entry per worker slot, in slot order.
    pub workers: Vec<WorkerStats>,
}

/// One worker slot's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerStats {
    /// Task attempts this slot has run to an end.
    pub tasks_run: u64,
}

impl Stats {
    /// Tasks that have reached their outcome.
    pub fn finished(&self) -> u64 {
        self.completed + self.failed + self.panicked + self.not_run
    }

    /// Whether every submitted task is accounted for: finished, queued or in flight.
    pub fn balances(&self) -> bool {
        self.submitted == self.finished() + self.queued as u64 + self.in_flight as u64
    }
}
