//! (b2) The tokio channel pool of (b1) on a 2-thread tokio runtime: what a
//! tokio application would write to use two cores.

use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::Runtime;
use tokio::sync::{Mutex, mpsc};

use super::NoopJob;
use crate::drive;
use crate::report::Label;

/// This pool, as the table names it.
pub const LABEL: Label = Label {
    tag: "b2",
    name: "tokio mpsc pool, 2-thread runtime",
};

/// Threads of the runtime this pool runs on.
pub const THREADS: usize = 2;

/// Builds the runtime this pool runs on.
pub fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(THREADS)
        .build()
        .expect("the machine can start two threads")
}

/// The submitting end of a pool of no-op readers sharing one bounded channel
/// on a multi-thread runtime. Dropping it closes the channel, which ends the
/// readers.
pub struct ThreadedChannelPool {
    jobs: mpsc::Sender<NoopJob>,
}

impl ThreadedChannelPool {
    /// Spawns `readers` reader tasks on `rt`, behind a channel of `capacity`
    /// jobs.
    pub fn start(rt: &Runtime, readers: usize, capacity: usize) -> Self {
        let (jobs, rx) = mpsc::channel(capacity);
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..readers {
            rt.spawn(read(rx.clone()));
        }
        ThreadedChannelPool { jobs }
    }

    /// Streams `tasks` no-op tasks through the pool (see [`drive::stream`])
    /// and returns the time taken.
    ///
    /// The submitter runs as a task on the runtime, not in `block_on` on the
    /// calling thread: that is where a tokio application submits from, and it
    /// keeps the whole pool on the runtime's two threads, as many as the
    /// machine has cores. In `block_on` it would get a third thread to itself
    /// and every job and result would cross threads to reach it.
    ///
    /// # Panics
    ///
    /// Unless every task completed.
    pub fn stream(&self, rt: &Runtime, tasks: usize) -> Duration {
        let jobs = self.jobs.clone();
        let submitter =
            rt.spawn(async move { drive::stream(tasks, || NoopJob::try_send(&jobs)).await });
        rt.block_on(submitter)
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
    }
}

async fn read(jobs: Arc<Mutex<mpsc::Receiver<NoopJob>>>) {
    loop {
        // As in (b1): the guard is a temporary of this statement, so the lock
        // is let go before the job runs.
        let job = jobs.lock().await.recv().await;
        match job {
            Some(job) => job.answer(),
            None => break,
        }
    }
}
