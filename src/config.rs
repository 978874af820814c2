//! [`PoolBuilder`]: a pool's settings, checked before anything starts.

use std::fmt;
use std::sync::Arc;

use crate::error::BuildError;
use crate::gate::Gate;
use crate::pool::Pool;
use crate::supervisor::Supervisor;
use crate::task::Task;

/// Makes the worker-local state for a slot.
pub(crate) type StateFactory<S> = Arc<dyn Fn(usize) -> S + Send + Sync>;

/// The settings a supervisor starts with, already validated.
pub(crate) struct Config<T: Task> {
    pub(crate) workers: usize,
    pub(crate) queue_capacity: usize,
    pub(crate) state: StateFactory<T::State>,
}

/// Builds a [`Pool`]: made by [`Pool::builder`].
///
/// | setting | default | refused |
/// |---|---|---|
/// | [`workers`](Self::workers) | 4 | 0 |
/// | [`queue_capacity`](Self::queue_capacity) | 1024 | 0 |
///
/// # Examples
///
/// ```
/// use actix_workerpool::{BuildError, FnTask, Pool};
///
/// # type Job = FnTask<u32, fn(u32) -> std::future::Ready<Result<u32, ()>>>;
/// # actix_rt::System::new().block_on(async {
/// let pool = Pool::<Job>::builder().workers(8).queue_capacity(100).build().unwrap();
/// # drop(pool);
///
/// let refused = Pool::<Job>::builder().workers(0).build();
/// assert_eq!(refused.unwrap_err(), BuildError::ZeroWorkers);
/// # });
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct PoolBuilder<T: Task> {
    workers: usize,
    queue_capacity: usize,
    state: StateFactory<T::State>,
}

impl<T: Task> PoolBuilder<T> {
    pub(crate) fn new(state: StateFactory<T::State>) -> Self {
        PoolBuilder {
            workers: 4,
            queue_capacity: 1024,
            state,
        }
    }

    /// How many workers run tasks at once (each holds at most one task).
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = workers;
        self
    }

    /// How many accepted tasks may wait for a worker. When the queue is full,
    /// [`Pool::submit`] waits and [`Pool::try_submit`] refuses.
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.queue_capacity = capacity;
        self
    }

    /// Checks the settings, then starts the supervisor and its workers on the
    /// current arbiter.
    ///
    /// # Errors
    ///
    /// [`BuildError::ZeroWorkers`] and [`BuildError::ZeroCapacity`] for the
    /// settings above; [`BuildError::NoArbiter`] outside a running actix `System`.
    pub fn build(self) -> Result<Pool<T>, BuildError> {
        let config = self.validate()?;
        if actix_rt::Arbiter::try_current().is_none() {
            return Err(BuildError::NoArbiter);
        }
        let gate = Arc::new(Gate::new(config.queue_capacity));
        let addr = Supervisor::start(config, gate.clone());
        Ok(Pool::new(addr, gate))
    }

    fn validate(self) -> Result<Config<T>, BuildError> {
        if self.workers == 0 {
            return Err(BuildError::ZeroWorkers);
        }
        if self.queue_capacity == 0 {
            return Err(BuildError::ZeroCapacity);
        }
        Ok(Config {
            workers: self.workers,
            queue_capacity: self.queue_capacity,
            state: self.state,
        })
    }
}

impl<T: Task> fmt::Debug for PoolBuilder<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolBuilder")
            .field("workers", &self.workers)
            .field("queue_capacity", &self.queue_capacity)
            .finish_non_exhaustive()
    }
}
