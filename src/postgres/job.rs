//! A job claimed from the queue, as the pool runs it.

use std::time::Duration;

use crate::retry::RetryPolicy;
use crate::task::{Task, TaskContext};

use super::Durable;

/// A durable job, claimed from the queue, as the in-memory pool of a
/// [`DurableWorker`](super::DurableWorker) runs it: one attempt per claim.
/// Retries go back through the queue (so that another process may make
/// them), so the pool itself never retries one; a failure carries what the
/// job says of it, for the worker to record.
pub struct DurableJob<J: Durable> {
    pub(super) job: J,
    pub(super) id: i64,
}

impl<J: Durable> DurableJob<J> {
    /// The job's id in the queue.
    pub fn id(&self) -> super::JobId {
        super::JobId(self.id)
    }

    /// The job.
    pub fn job(&self) -> &J {
        &self.job
    }
}

/// How a durable job's attempt failed: its error, and what the job says
/// about trying again. Its `Debug` is the error's, as logs and events show it.
pub struct DurableFailure<E> {
    /// The job's error.
    pub error: E,
    /// Whether the job calls it worth another attempt ([`Task::is_retryable`]).
    pub retryable: bool,
    /// The job's own retry policy, if it has one ([`Task::retry_policy`]).
    pub policy: Option<RetryPolicy>,
}

impl<E: std::fmt::Debug> std::fmt::Debug for DurableFailure<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl<J: Durable> Task for DurableJob<J> {
    type Output = J::Output;
    type Error = DurableFailure<J::Error>;
    type State = J::State;

    async fn run(&mut self, cx: &mut TaskContext<J::State>) -> Result<J::Output, Self::Error> {
        match self.job.run(cx).await {
            Ok(output) => Ok(output),
            // Asked here, while the job is at hand; a panic in either is the
            // attempt's panic, which the pool contains.
            Err(error) => Err(DurableFailure {
                retryable: self.job.is_retryable(&error),
                policy: self.job.retry_policy(),
                error,
            }),
        }
    }

    fn timeout(&self) -> Option<Duration> {
        self.job.timeout()
    }

    fn is_retryable(&self, _: &Self::Error) -> bool {
        false
    }

    fn retry_policy(&self) -> Option<RetryPolicy> {
        Some(RetryPolicy::never())
    }
}
