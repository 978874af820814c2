//! The durable mode (feature `postgres`): jobs live in PostgreSQL, and many
//! processes, each with its own pool, share one queue. A job survives the
//! process that enqueued it and any process that ran it.
//!
//! This module has the producer's side so far: [`Queue`] puts jobs in
//! ([`Queue::enqueue`], or [`enqueue_with`] inside the caller's own
//! transaction) and reads how they went ([`Queue::status`], the dead letters
//! of [`Queue::dead`], [`Queue::requeue`], [`Queue::prune`]).
//! [`Queue::migrate`] creates or upgrades the schema, in one call.
//!
//! # The jobs table
//!
//! One table, `workerpool.jobs`, is the queue's one source of truth. A job is
//! `ready` (waiting for its `run_at`), `running` (claimed by a process under
//! a lease: an owner, a token and an expiry the process renews), `done`, or
//! `dead` (failed its last attempt, kept with its last error). Attempts are
//! counted when a job is claimed, so a job that kills its process every time
//! still ends dead. A pending (ready or running) job may carry an
//! idempotency key, unique per kind. A trigger notifies channel
//! `workerpool_jobs` whenever a job becomes ready to run now, so that idle
//! workers hear of it at once.
//!
//! # The client
//!
//! `tokio-postgres`: a connection is a future that can be spawned on the
//! arbiter that made it, while its client is `Send` and `Sync` and talks to
//! it through a channel, so workers on other arbiters can share it; it
//! pipelines the statements of concurrent callers on one connection;
//! notifications come through that same connection; and its
//! `GenericClient` lets a job be enqueued inside the caller's transaction.

mod error;
mod job;
mod queue;
mod schema;
mod store;
mod worker;

pub use error::DurableError;
pub use job::{DurableFailure, DurableJob};
pub use queue::{DEFAULT_MAX_ATTEMPTS, Enqueue, JobId, JobState, JobStatus, Queue, enqueue_with};
pub use schema::SCHEMA_VERSION;
pub use worker::{DurableReport, DurableWorker, DurableWorkerBuilder};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Task;

/// A task that can live in the queue: it is stored as JSON, under a stable
/// name.
///
/// # Examples
///
/// ```
/// use actix_workerpool::postgres::Durable;
/// use actix_workerpool::{Task, TaskContext};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct Email {
///     to: String,
/// }
///
/// impl Task for Email {
///     type Output = ();
///     type Error = String;
///     type State = ();
///
///     async fn run(&mut self, _: &mut TaskContext<()>) -> Result<(), String> {
///         Ok(())
///     }
/// }
///
/// impl Durable for Email {
///     const KIND: &'static str = "email";
/// }
/// ```
pub trait Durable: Task + Serialize + DeserializeOwned {
    /// The job's name in the queue. Keep it stable across releases: jobs
    /// enqueued by an older build are claimed by this name.
    const KIND: &'static str;
}
