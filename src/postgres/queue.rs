//! The producer's side: putting jobs in the queue, from any process, and
//! reading how they went.

use std::fmt;
use std::time::{Duration, SystemTime};

use tokio_postgres::{Client, GenericClient, NoTls, Row};

use super::{Durable, DurableError, schema};

/// A job's id in the queue, the same in every process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JobId(pub i64);

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "job {}", self.0)
    }
}

/// How a job is to be enqueued: when it may run, before which others, under
/// which idempotency key, and how many attempts it gets.
///
/// | setting | default |
/// |---|---|
/// | [`run_at`](Self::run_at) / [`delay`](Self::delay) | now |
/// | [`priority`](Self::priority) | 0 (higher runs first) |
/// | [`key`](Self::key) | none |
/// | [`max_attempts`](Self::max_attempts) | 3 |
///
/// A job's attempts are its own (`max_attempts`), not the worker pool's
/// [`RetryPolicy`](crate::RetryPolicy)'s, whose delays they follow.
#[derive(Debug, Clone, Default)]
#[must_use = "the settings do nothing until given to `enqueue`"]
pub struct Enqueue {
    run_at: Option<SystemTime>,
    delay: Option<Duration>,
    priority: i16,
    key: Option<String>,
    max_attempts: Option<u32>,
}

/// [`Enqueue`]'s settings, checked, as the statements take them.
struct Checked {
    max_attempts: i32,
    /// In microseconds.
    delay: Option<i64>,
    run_at: Option<SystemTime>,
}

/// The latest time a job may be set to run: the end of the year 9999, as
/// a span from the epoch (and the longest delay).
const FARTHEST: Duration = Duration::from_secs(253_402_300_799);

/// Attempts a job gets unless [`Enqueue::max_attempts`] says otherwise.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;

impl Enqueue {
    /// The defaults: run now, priority 0, no key, three attempts.
    pub fn new() -> Self {
        Enqueue::default()
    }

    /// Not before `at` (the database's clock decides when that is).
    pub fn run_at(mut self, at: SystemTime) -> Self {
        self.run_at = Some(at);
        self.delay = None;
        self
    }

    /// Not before `delay` from now, by the database's clock.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self.run_at = None;
        self
    }

    /// Ready jobs of higher priority are claimed first; among equals, the
    /// one due first.
    pub fn priority(mut self, priority: i16) -> Self {
        self.priority = priority;
        self
    }

    /// The idempotency key: while a job of the same kind with this key is
    /// pending (ready or running), enqueueing again adds nothing and returns
    /// that job's id.
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Attempts the job gets in all, counted as workers claim it: past the
    /// last, a failed job is dead. At least 1.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = Some(attempts);
        self
    }

    /// The settings as the statements take them, or the first one out of
    /// range.
    fn checked(&self) -> Result<Checked, DurableError> {
        Ok(Checked {
            max_attempts: self.checked_max_attempts()?,
            delay: self.checked_delay()?,
            run_at: self.checked_run_at()?,
        })
    }

    fn checked_max_attempts(&self) -> Result<i32, DurableError> {
        let attempts = self.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS);
        if attempts == 0 {
            return Err(DurableError::InvalidOption(
                "max_attempts must be at least 1",
            ));
        }
        i32::try_from(attempts)
            .map_err(|_| DurableError::InvalidOption("max_attempts must fit in 32 bits"))
    }

    /// The delay in whole microseconds, as PostgreSQL keeps intervals.
    fn checked_delay(&self) -> Result<Option<i64>, DurableError> {
        self.delay
            .map(|delay| {
                if delay > FARTHEST {
                    return Err(DurableError::InvalidOption("delay past the year 9999"));
                }
                Ok(delay.as_micros() as i64)
            })
            .transpose()
    }

    /// The time to run at, if one was given: before the epoch is due now,
    /// past the year 9999 is refused (PostgreSQL's and the client's clocks
    /// stop not far beyond).
    fn checked_run_at(&self) -> Result<Option<SystemTime>, DurableError> {
        let Some(at) = self.run_at else {
            return Ok(None);
        };
        match at.duration_since(SystemTime::UNIX_EPOCH) {
            Err(_) => Ok(Some(SystemTime::UNIX_EPOCH)),
            Ok(since) if since > FARTHEST => {
                Err(DurableError::InvalidOption("run_at past the year 9999"))
            }
            Ok(_) => Ok(Some(at)),
        }
    }
}

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum JobState {
    /// Waiting for its time (`run_at`), or for a worker.
    Ready,
    /// Claimed by a worker process, under a lease.
    Running,
    /// Ran to success.
    Done,
    /// Failed its last attempt, or could not be read: a dead letter, kept
    /// with its last error until requeued or pruned.
    Dead,
}

impl JobState {
    fn parse(text: &str) -> Option<JobState> {
        Some(match text {
            "ready" => JobState::Ready,
            "running" => JobState::Running,
            "done" => JobState::Done,
            "dead" => JobState::Dead,
            _ => return None,
        })
    }
}

/// A job as the queue has it now.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct JobStatus {
    /// The job's id.
    pub id: JobId,
    /// Its task type's [`Durable::KIND`].
    pub kind: String,
    /// Where it is in its life.
    pub state: JobState,
    /// Attempts begun so far (counted when a worker claims it).
    pub attempts: u32,
    /// Attempts it gets in all.
    pub max_attempts: u32,
    /// When it may run next (for a job that is ready).
    pub run_at: SystemTime,
    /// The error of its last failed attempt, if any.
    pub last_error: Option<String>,
    /// When it ended (done or dead).
    pub finished_at: Option<SystemTime>,
}

const STATUS_COLUMNS: &str =
    "id, kind, state, attempts, max_attempts, run_at, last_error, finished_at";

impl JobStatus {
    fn from_row(row: &Row) -> Result<JobStatus, DurableError> {
        let state: &str = row.get("state");
        Ok(JobStatus {
            id: JobId(row.get("id")),
            kind: row.get("kind"),
            state: JobState::parse(state).ok_or(DurableError::InvalidOption(
                "unknown job state in the database",
            ))?,
            attempts: row.get::<_, i32>("attempts").max(0) as u32,
            max_attempts: row.get::<_, i32>("max_attempts").max(0) as u32,
            run_at: row.get("run_at"),
            last_error: row.get("last_error"),
            finished_at: row.get("finished_at"),
        })
    }
}

/// A connection to the queue, for producers (and for reading how jobs went):
/// enqueue from any process, with or without workers.
///
/// # Examples
///
/// ```no_run
/// # use actix_workerpool::postgres::{Durable, Enqueue, Queue};
/// # #[derive(serde::Serialize, serde::Deserialize)] struct Email { to: String }
/// # impl actix_workerpool::Task for Email {
/// #     type Output = (); type Error = String; type State = ();
/// #     async fn run(&mut self, _: &mut actix_workerpool::TaskContext<()>) -> Result<(), String> { Ok(()) }
/// # }
/// # impl Durable for Email { const KIND: &'static str = "email"; }
/// # actix_rt::System::new().block_on(async {
/// let queue = Queue::migrate("host=/var/run/postgresql dbname=app").await?;
/// let email = Email { to: "ada@example.com".into() };
/// let id = queue.enqueue(&email, Enqueue::new().key("welcome:ada")).await?;
/// println!("{id}: {:?}", queue.status(id).await?.map(|job| job.state));
/// # Ok::<_, actix_workerpool::postgres::DurableError>(())
/// # });
/// ```
pub struct Queue {
    client: Client,
}

impl Queue {
    /// Connects (a `tokio-postgres` connection string, such as
    /// `host=localhost user=app dbname=app`), and checks that the database
    /// has the schema this build works with.
    ///
    /// The connection runs on the current arbiter, and ends with it; the
    /// queue may be used from any thread. A queue does not reconnect: once
    /// its connection is gone (the server restarted), every call fails with
    /// [`DurableError::Query`], and a new `Queue` is needed. Under
    /// `REPEATABLE READ` or `SERIALIZABLE`, [`enqueue_with`] with a key can
    /// fail with a serialization error, to be retried as any.
    pub async fn connect(conninfo: &str) -> Result<Queue, DurableError> {
        let client = connect(conninfo).await?;
        schema::check(&client).await?;
        Ok(Queue { client })
    }

    /// Connects, and brings the database's schema to the version this build
    /// works with (creating it if needed): the one call a deployment makes.
    /// Safe to run from several processes at once.
    pub async fn migrate(conninfo: &str) -> Result<Queue, DurableError> {
        let mut client = connect(conninfo).await?;
        schema::migrate(&mut client).await?;
        Ok(Queue { client })
    }

    /// Puts `job` in the queue; returns its id, or, if `options` has a key
    /// that a pending job of the same kind holds, that job's id.
    pub async fn enqueue<J: Durable>(
        &self,
        job: &J,
        options: Enqueue,
    ) -> Result<JobId, DurableError> {
        enqueue_with(&self.client, job, options).await
    }

    /// Puts many jobs in the queue in one statement, with the same options;
    /// returns their ids, in the order of `jobs`. Keys are per job, so a
    /// batch takes none.
    pub async fn enqueue_batch<J: Durable>(
        &self,
        jobs: &[J],
        options: Enqueue,
    ) -> Result<Vec<JobId>, DurableError> {
        if options.key.is_some() {
            return Err(DurableError::InvalidOption(
                "a batch takes no key: enqueue keyed jobs one by one",
            ));
        }
        let payloads = jobs.iter().map(payload).collect::<Result<Vec<_>, _>>()?;
        let Checked {
            max_attempts,
            delay,
            run_at,
        } = options.checked()?;
        let rows = self
            .client
            .query(
                "INSERT INTO workerpool.jobs (kind, payload, priority, run_at, max_attempts) \
                 SELECT $1, payload, $3, \
                        COALESCE($4, now() + make_interval(secs => $5::bigint / 1e6), now()), $6 \
                 FROM unnest($2::jsonb[]) WITH ORDINALITY AS batch(payload, n) ORDER BY n \
                 RETURNING id",
                &[
                    &J::KIND,
                    &payloads,
                    &options.priority,
                    &run_at,
                    &delay,
                    &max_attempts,
                ],
            )
            .await?;
        // Ids are handed out in insertion order, which follows `n`.
        let mut ids: Vec<JobId> = rows.iter().map(|row| JobId(row.get(0))).collect();
        ids.sort_unstable();
        Ok(ids)
    }

    /// The job's state now; `None` if there is no such job (or it was pruned).
    pub async fn status(&self, id: JobId) -> Result<Option<JobStatus>, DurableError> {
        let row = self
            .client
            .query_opt(
                &format!("SELECT {STATUS_COLUMNS} FROM workerpool.jobs WHERE id = $1"),
                &[&id.0],
            )
            .await?;
        row.as_ref().map(JobStatus::from_row).transpose()
    }

    /// How many jobs of `kind` are in each state (states with none are left out).
    pub async fn counts(&self, kind: &str) -> Result<Vec<(JobState, u64)>, DurableError> {
        let rows = self
            .client
            .query(
                "SELECT state, count(*) FROM workerpool.jobs WHERE kind = $1 \
                 GROUP BY state ORDER BY state",
                &[&kind],
            )
            .await?;
        rows.iter()
            .map(|row| {
                let state = JobState::parse(row.get(0)).ok_or(DurableError::InvalidOption(
                    "unknown job state in the database",
                ))?;
                Ok((state, row.get::<_, i64>(1).max(0) as u64))
            })
            .collect()
    }

    /// Dead jobs of `kind`, the most recent first, at most `limit` of them.
    pub async fn dead(&self, kind: &str, limit: u32) -> Result<Vec<JobStatus>, DurableError> {
        let rows = self
            .client
            .query(
                &format!(
                    "SELECT {STATUS_COLUMNS} FROM workerpool.jobs \
                     WHERE state = 'dead' AND kind = $1 \
                     ORDER BY finished_at DESC, id DESC LIMIT $2"
                ),
                &[&kind, &i64::from(limit)],
            )
            .await?;
        rows.iter().map(JobStatus::from_row).collect()
    }

    /// Puts a dead job back in the queue, ready now, with its attempts
    /// counted afresh; `false` if it is not dead (or not there), or if a
    /// pending job of its kind holds its idempotency key now.
    pub async fn requeue(&self, id: JobId) -> Result<bool, DurableError> {
        let updated = self
            .client
            .execute(
                "UPDATE workerpool.jobs AS j SET state = 'ready', attempts = 0, run_at = now(), \
                 finished_at = NULL WHERE j.id = $1 AND j.state = 'dead' \
                 AND (j.key IS NULL OR NOT EXISTS ( \
                     SELECT 1 FROM workerpool.jobs AS p WHERE p.kind = j.kind AND p.key = j.key \
                     AND p.state IN ('ready', 'running')))",
                &[&id.0],
            )
            .await?;
        Ok(updated == 1)
    }

    /// Deletes jobs that ended (done or dead) longer than `retention` ago;
    /// returns how many.
    pub async fn prune(&self, retention: Duration) -> Result<u64, DurableError> {
        super::store::prune(&self.client, retention).await
    }
}

/// [`Queue::enqueue`], through the caller's own client or transaction: in a
/// transaction, the job exists only if the transaction commits (and workers
/// hear of it only then).
///
/// ```no_run
/// # use actix_workerpool::postgres::{enqueue_with, Durable, Enqueue};
/// # #[derive(serde::Serialize, serde::Deserialize)] struct Email { to: String }
/// # impl actix_workerpool::Task for Email {
/// #     type Output = (); type Error = String; type State = ();
/// #     async fn run(&mut self, _: &mut actix_workerpool::TaskContext<()>) -> Result<(), String> { Ok(()) }
/// # }
/// # impl Durable for Email { const KIND: &'static str = "email"; }
/// # async fn signup(client: &mut tokio_postgres::Client) -> Result<(), Box<dyn std::error::Error>> {
/// let transaction = client.transaction().await?;
/// transaction.execute("INSERT INTO users (email) VALUES ($1)", &[&"ada@example.com"]).await?;
/// enqueue_with(&transaction, &Email { to: "ada@example.com".into() }, Enqueue::new()).await?;
/// transaction.commit().await?; // the user and the e-mail job, or neither
/// # Ok(()) }
/// ```
pub async fn enqueue_with<C, J>(
    client: &C,
    job: &J,
    options: Enqueue,
) -> Result<JobId, DurableError>
where
    C: GenericClient + Sync,
    J: Durable,
{
    let payload = payload(job)?;
    let Checked {
        max_attempts,
        delay,
        run_at,
    } = options.checked()?;
    // The key's pending job may end between the insert that finds it and the
    // look that reads its id: then the insert goes through the next time.
    loop {
        let inserted = client
            .query_opt(
                "INSERT INTO workerpool.jobs (kind, payload, priority, run_at, max_attempts, key) \
                 VALUES ($1, $2, $3, \
                         COALESCE($4, now() + make_interval(secs => $5::bigint / 1e6), now()), \
                         $6, $7) \
                 ON CONFLICT (kind, key) WHERE key IS NOT NULL AND state IN ('ready', 'running') \
                 DO NOTHING RETURNING id",
                &[
                    &J::KIND,
                    &payload,
                    &options.priority,
                    &run_at,
                    &delay,
                    &max_attempts,
                    &options.key,
                ],
            )
            .await?;
        if let Some(row) = inserted {
            return Ok(JobId(row.get(0)));
        }
        let pending = client
            .query_opt(
                "SELECT id FROM workerpool.jobs \
                 WHERE kind = $1 AND key = $2 AND state IN ('ready', 'running')",
                &[&J::KIND, &options.key],
            )
            .await?;
        if let Some(row) = pending {
            return Ok(JobId(row.get(0)));
        }
    }
}

/// A job's payload: its JSON.
fn payload<J: Durable>(job: &J) -> Result<serde_json::Value, DurableError> {
    serde_json::to_value(job).map_err(|source| DurableError::Serialize {
        kind: J::KIND,
        source,
    })
}

/// A client whose connection runs on the current arbiter.
pub(super) async fn connect(conninfo: &str) -> Result<Client, DurableError> {
    let (client, connection) = tokio_postgres::connect(conninfo, NoTls)
        .await
        .map_err(DurableError::Connect)?;
    actix_rt::spawn(async move {
        if let Err(error) = connection.await {
            log::warn!("PostgreSQL connection ended: {error}");
        }
    });
    Ok(client)
}
