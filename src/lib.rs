#![doc = include_str!("../README.md")]
#![warn(missing_docs)]
// Two modules need `unsafe`, and say why at each use: the task's cell
// (`job::cell`) and the queue's permits (`gate`).
#![deny(unsafe_code)]
// The model-check build (see `sync`) has only the lock-free parts, and what
// they use: the rest of the crate is left out, and much of what is left unused.
#![cfg_attr(workerpool_loom, allow(dead_code, unused_imports))]

#[cfg(not(workerpool_loom))]
mod config;
mod contain;
#[cfg(not(workerpool_loom))]
mod dead_letters;
#[cfg(not(workerpool_loom))]
mod error;
#[allow(unsafe_code)]
mod gate;
#[cfg(not(workerpool_loom))]
mod job;
#[cfg(workerpool_loom)]
mod job {
    #[allow(unsafe_code)]
    pub(crate) mod cell;
}
#[cfg(not(workerpool_loom))]
mod latency;
#[cfg(not(workerpool_loom))]
pub mod messages;
mod outcome;
#[cfg(not(workerpool_loom))]
mod pool;
#[cfg(all(feature = "postgres", not(workerpool_loom)))]
pub mod postgres;
mod retry;
#[cfg(not(workerpool_loom))]
mod stats;
#[cfg(not(workerpool_loom))]
mod supervisor;
#[cfg(workerpool_loom)]
mod supervisor {
    pub(crate) mod lane;
}
mod sync;
mod task;
#[cfg(not(workerpool_loom))]
mod telemetry;
#[cfg(not(workerpool_loom))]
mod worker;
#[cfg(workerpool_loom)]
mod worker {
    pub(crate) mod line;
}

#[cfg(not(workerpool_loom))]
pub use config::{MAX_WORKERS, Overflow, PoolBuilder};
#[cfg(not(workerpool_loom))]
pub use dead_letters::{DeadLetter, DeadReason};
#[cfg(not(workerpool_loom))]
pub use error::{
    BuildError, PoolGone, ResizeError, SubmitError, SubmitTimeoutError, TrySubmitError,
};
#[cfg(not(workerpool_loom))]
pub use job::TaskHandle;
#[cfg(not(workerpool_loom))]
pub use latency::Latency;
#[cfg(not(workerpool_loom))]
pub use messages::{
    Cancel, Cancellation, Drain, DrainWithin, GetStats, GetStatus, Resize, Resized, Stop,
    StopReport, StopWithin, Submit, SubmitAndReport, Subscribe, TaskReport, TaskStatus, TrySubmit,
    WhenStopped,
};
pub use outcome::{Outcome, OutcomeKind, StopReason};
#[cfg(not(workerpool_loom))]
pub use pool::Pool;
pub use retry::{Jitter, RetryPolicy, RetryPolicyBuilder, RetryPolicyError};
#[cfg(not(workerpool_loom))]
pub use stats::{PoolEvent, RestartReason, Stats, WorkerState, WorkerStats};
#[cfg(not(workerpool_loom))]
pub use supervisor::Supervisor;
pub use task::{FnTask, Task, TaskContext, TaskId, TaskKey};
