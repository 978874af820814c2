//! (b1) A tokio channel pool on the current thread: the actix `System`'s
//! runtime, so it runs where the pool under test runs by default.

use std::future::{Future, ready};
use std::rc::Rc;

use tokio::sync::{Mutex, mpsc};

use super::NoopJob;
use crate::report::Label;

/// This pool, as the table names it.
pub const LABEL: Label = Label {
    tag: "b1",
    name: "tokio mpsc pool, current thread",
};

/// What a reader does with a job it took off the channel.
pub trait Job: 'static {
    /// Runs the job to its end; the reader takes the next one afterwards.
    fn run(self) -> impl Future<Output = ()>;
}

impl Job for NoopJob {
    fn run(self) -> impl Future<Output = ()> {
        self.answer();
        ready(())
    }
}

/// The submitting end of a pool of reader tasks sharing one bounded channel.
/// Dropping it closes the channel, which ends the readers.
pub struct LocalChannelPool<J> {
    jobs: mpsc::Sender<J>,
}

impl<J: Job> LocalChannelPool<J> {
    /// Spawns `readers` reader tasks on the current arbiter, behind a channel
    /// of `capacity` jobs. Must run inside the actix `System`.
    pub fn start(readers: usize, capacity: usize) -> Self {
        let (jobs, rx) = mpsc::channel(capacity);
        // A tokio `Mutex`, not a `RefCell`: the lock is held across `recv().await`.
        let rx = Rc::new(Mutex::new(rx));
        for _ in 0..readers {
            actix_rt::spawn(read(rx.clone()));
        }
        LocalChannelPool { jobs }
    }

    /// The channel's submitting end.
    pub fn jobs(&self) -> &mpsc::Sender<J> {
        &self.jobs
    }
}

async fn read<J: Job>(jobs: Rc<Mutex<mpsc::Receiver<J>>>) {
    loop {
        // One reader waits on the channel while the others wait for the lock.
        // The guard is a temporary of this statement, so the lock is let go
        // before the job runs and the others can take jobs meanwhile (in a
        // `while let` the guard would live on through the loop's body).
        let job = jobs.lock().await.recv().await;
        match job {
            Some(job) => job.run().await,
            None => break,
        }
    }
}
