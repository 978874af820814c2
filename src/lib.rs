#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod config;
mod contain;
mod error;
mod gate;
mod job;
pub mod messages;
mod outcome;
mod pool;
mod retry;
mod stats;
mod supervisor;
mod task;
mod worker;

pub use config::PoolBuilder;
pub use error::{BuildError, PoolGone, SubmitError, TrySubmitError};
pub use job::TaskHandle;
pub use messages::{
    Drain, GetStats, GetStatus, Stop, StopReport, Submit, SubmitAndReport, Subscribe, TaskReport,
    TaskStatus, TrySubmit, WhenStopped,
};
pub use outcome::{Outcome, OutcomeKind, StopReason};
pub use pool::Pool;
pub use retry::{Jitter, RetryPolicy, RetryPolicyBuilder, RetryPolicyError};
pub use stats::{PoolEvent, RestartReason, Stats, WorkerStats};
pub use supervisor::Supervisor;
pub use task::{FnTask, Task, TaskContext, TaskId};
