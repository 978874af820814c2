//! Hand-rolled pools the pool under test is measured against, built in the
//! same process and run in the same repetitions:
//!
//! * (b1) [`local_channel`]: a tokio channel pool on the actix `System`'s
//!   current-thread runtime;
//! * (b2) [`threaded_channel`]: the same pool on a 2-thread tokio runtime;
//! * (c) [`round_robin`]: plain actix actors fed round-robin with `Addr::send`.
//!
//! The channel pools have the shape of a Go worker pool: one bounded `mpsc`
//! channel of jobs, read by N tasks that share its receiver, each job
//! answered through its own `futures::channel::oneshot` (tokio's oneshot
//! joins tokio's cooperative budget and stalls bursts; this one does not).

pub mod local_channel;
pub mod round_robin;
pub mod threaded_channel;

use std::convert::Infallible;
use std::future::Future;

use futures::FutureExt;
use futures::channel::oneshot;
use tokio::sync::mpsc;

/// What every baseline task returns.
pub type TaskResult = Result<(), Infallible>;

/// A no-op job on a channel pool: the task is nothing, so all it carries is
/// where its result goes.
pub struct NoopJob(oneshot::Sender<TaskResult>);

impl NoopJob {
    /// Runs the job: sends its (empty) result.
    pub fn answer(self) {
        // Nobody waiting for the result is not the reader's problem.
        let _ = self.0.send(Ok(()));
    }

    /// Puts a no-op job on `jobs` without waiting and returns a future of
    /// whether it completed.
    ///
    /// # Panics
    ///
    /// If the channel refuses the job: the scenarios size every channel so
    /// that it never has to.
    pub fn try_send(jobs: &mpsc::Sender<NoopJob>) -> impl Future<Output = bool> + use<> {
        let (reply, result) = oneshot::channel();
        jobs.try_send(NoopJob(reply))
            .unwrap_or_else(|e| panic!("the job channel refused a job: {e}"));
        result.map(completed)
    }

    /// One round trip the way a caller writes it: send (waiting for room, if
    /// there were none), then wait for the result. Returns whether it
    /// completed.
    pub async fn round_trip(jobs: &mpsc::Sender<NoopJob>) -> bool {
        let (reply, result) = oneshot::channel();
        if jobs.send(NoopJob(reply)).await.is_err() {
            panic!("the job channel is closed");
        }
        completed(result.await)
    }
}

fn completed(result: Result<TaskResult, oneshot::Canceled>) -> bool {
    matches!(result, Ok(Ok(())))
}
