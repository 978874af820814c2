//! The durable mode (feature `postgres`): jobs live in PostgreSQL, and many
//! processes, each with its own pool, share one queue. A job survives the
//! process that enqueued it and any process that ran it.
//!
//! [`Queue`] puts jobs in
//! ([`Queue::enqueue`], or [`enqueue_with`] inside the caller's own
//! transaction) and reads how they went ([`Queue::status`], the dead letters
//! of [`Queue::dead`], [`Queue::requeue`], [`Queue::prune`]).
//! [`Queue::migrate`] creates or upgrades the schema, in one call.
//! [`DurableWorker`] is a worker process's share of the queue: it claims
//! jobs into an in-memory [`Pool`](crate::Pool), and records how each ended.
//!
//! ```no_run
//! use actix_workerpool::postgres::{Durable, DurableJob, DurableWorker, Enqueue, Queue};
//! use actix_workerpool::{Pool, Task, TaskContext};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct Email {
//!     to: String,
//! }
//!
//! impl Task for Email {
//!     type Output = ();
//!     type Error = String;
//!     type State = ();
//!
//!     async fn run(&mut self, _: &mut TaskContext<()>) -> Result<(), String> {
//!         println!("sending to {}", self.to);
//!         Ok(())
//!     }
//! }
//!
//! impl Durable for Email {
//!     const KIND: &'static str = "email"; // its stable name in the queue
//! }
//!
//! #[actix_rt::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let db = "host=/var/run/postgresql user=postgres dbname=jobs";
//!     // Producers: any process, no workers needed. Creates the schema the first time.
//!     let queue = Queue::migrate(db).await?;
//!     let id = queue
//!         .enqueue(&Email { to: "ada@example.com".into() }, Enqueue::new().key("welcome:ada"))
//!         .await?;
//!     // Workers: as many processes as you like.
//!     let pool = Pool::<DurableJob<Email>>::builder().workers(4);
//!     let worker = DurableWorker::builder(db, pool).start().await?;
//!     actix_rt::time::sleep(std::time::Duration::from_secs(1)).await;
//!     println!("{id}: {:?}", queue.status(id).await?.map(|job| job.state));
//!     worker.drain().await; // or `stop`: jobs not started go back to the queue
//!     Ok(())
//! }
//! ```
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
//! # Where the queue meets the pool
//!
//! The seam between the queue and the pool is the pool's own front door: a
//! durable worker submits each claimed job to its [`Pool`](crate::Pool)
//! and awaits its handle, as any caller does. The supervisor, its workers,
//! round-robin, restarts, timeouts, events and stats are the ones the
//! in-memory pool has, and the in-memory path costs exactly what it did: it
//! carries nothing for the durable mode. What changes is where jobs come
//! from (claims, never more than the pool holds: its queue plus its
//! workers) and where their ends go (the table, under the claim's lease).
//! Retries go through the table rather than the supervisor's timers
//! ([`DurableJob`] runs one attempt per claim), so that any process can
//! make them, and attempts are counted where they are claimed.
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
