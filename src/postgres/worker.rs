//! The worker process's side: a [`DurableWorker`] claims jobs of one kind
//! into an in-memory [`Pool`], renews their leases while they run, and
//! records how each ended.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use futures::{FutureExt, StreamExt};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::time::Instant;
use tokio_postgres::{AsyncMessage, Client, NoTls};

use super::job::{DurableFailure, DurableJob};
use super::store::{self, Claimed, Record};
use super::{Durable, DurableError, schema};
use crate::contain::debug_text;
use crate::error::TrySubmitError;
use crate::outcome::{Outcome, StopReason};
use crate::retry::RetryPolicy;
use crate::supervisor::PoolSize;
use crate::{Pool, PoolBuilder};

/// The longest lease a worker takes: a process that dies holds its jobs
/// this long at most.
const LONGEST_LEASE: Duration = Duration::from_secs(24 * 3600);

/// Retentions past this keep finished jobs for good: the table's clock
/// cannot go back further.
const LONGEST_RETENTION: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Builds a [`DurableWorker`]: made by [`DurableWorker::builder`].
///
/// | setting | default | refused |
/// |---|---|---|
/// | [`lease`](Self::lease) | 30 s | under 1 s, over a day |
/// | [`poll_interval`](Self::poll_interval) | 1 s | zero |
/// | [`retention`](Self::retention) | keep finished jobs | |
#[must_use = "a builder does nothing until `start` is called"]
pub struct DurableWorkerBuilder<J: Durable> {
    conninfo: String,
    pool: PoolBuilder<DurableJob<J>>,
    lease: Duration,
    poll_interval: Duration,
    retention: Option<Duration>,
}

impl<J: Durable> DurableWorkerBuilder<J> {
    /// How long a claimed job stays this process's without a renewal. The
    /// process renews every third of it while the job runs (so a job with
    /// no timeout that never ends holds its lease for good: give durable
    /// jobs a timeout); a process that dies loses its jobs to another after
    /// at most this long, and one cut off from the database longer than
    /// this may find its jobs run again elsewhere.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// How often an idle worker looks for due jobs when no notification
    /// comes (jobs that became due by the clock, a missed notification).
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// Deletes jobs that ended (done or dead) longer ago than this; over a
    /// hundred years keeps them.
    pub fn retention(mut self, retention: Duration) -> Self {
        self.retention = Some(retention);
        self
    }

    /// Connects, checks the schema, starts the pool and begins claiming.
    pub async fn start(self) -> Result<DurableWorker<J>, DurableError> {
        if self.lease < Duration::from_secs(1) || self.lease > LONGEST_LEASE {
            return Err(DurableError::InvalidOption(
                "lease must be at least 1 s and at most a day",
            ));
        }
        if self.poll_interval.is_zero() {
            return Err(DurableError::InvalidOption(
                "poll_interval must not be zero",
            ));
        }
        if let Some(conflict) = self.pool.durable_conflict() {
            return Err(DurableError::InvalidOption(conflict));
        }
        let client = within(self.lease / 3, connect(&self.conninfo)).await??;
        schema::check(&client).await?;
        let (retry, queue_capacity) = self.pool.durable_settings();
        let pool = self.pool.build().map_err(DurableError::Pool)?;
        let (commands, orders) = mpsc::unbounded_channel();
        let wake = Arc::new(Notify::new());
        let listener = listen(&self.conninfo, J::KIND, wake.clone(), self.lease / 3).await;
        let state = Loop {
            conninfo: self.conninfo,
            client,
            reconnect: false,
            pool: pool.clone(),
            owner: format!("{}-{:x}", std::process::id(), fastrand::u64(..)),
            lease: self.lease,
            poll_interval: self.poll_interval,
            retention: self
                .retention
                .filter(|retention| *retention <= LONGEST_RETENTION),
            retry,
            queue_capacity,
            held: HashMap::new(),
            unrecorded: Vec::new(),
            claiming: true,
            report: DurableReport::default(),
            wake,
            listener,
            _job: std::marker::PhantomData,
        };
        let done = actix_rt::spawn(state.run(orders));
        Ok(DurableWorker {
            pool,
            commands,
            done: Some(done),
        })
    }
}

/// A worker process's share of a durable queue: it claims ready jobs of
/// kind [`J::KIND`](Durable::KIND) (no more than its pool has room for),
/// runs them in its [`Pool`], renews their leases while they run, and
/// records how each ended: done; failed, and ready again after the pool's
/// [`RetryPolicy`] delay; or dead after its last attempt. It also returns
/// jobs whose lease expired (their process died) to the queue.
///
/// Delivery is at least once: a job runs again if its process dies, or
/// loses the database for longer than the lease, before recording its end.
/// Make jobs idempotent (an idempotency key at the mail provider, an
/// upsert).
pub struct DurableWorker<J: Durable> {
    pool: Pool<DurableJob<J>>,
    commands: mpsc::UnboundedSender<Command>,
    done: Option<actix_rt::task::JoinHandle<()>>,
}

/// What a durable worker did over its life, as its stop or drain reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DurableReport {
    /// Jobs whose end it recorded (done, to retry, or dead).
    pub recorded: u64,
    /// Jobs it claimed but did not start, given back to the queue.
    pub released: u64,
    /// Ends it could not record because the job was no longer its own (its
    /// lease had expired and the job was taken up again).
    pub lost: u64,
    /// Jobs whose end it could not record at its stop (the database stayed
    /// unreachable): their leases expire and another process takes them up.
    pub unrecorded: u64,
}

enum Command {
    Stop(oneshot::Sender<DurableReport>),
    Drain(oneshot::Sender<DurableReport>),
}

impl<J: Durable> DurableWorker<J> {
    /// A builder for a worker on the queue at `conninfo`, whose pool is
    /// `pool` (its workers, arbiters, timeouts, retry delays, shutdown
    /// deadline).
    pub fn builder(
        conninfo: impl Into<String>,
        pool: PoolBuilder<DurableJob<J>>,
    ) -> DurableWorkerBuilder<J> {
        DurableWorkerBuilder {
            conninfo: conninfo.into(),
            pool,
            lease: Duration::from_secs(30),
            poll_interval: Duration::from_secs(1),
            retention: None,
        }
    }

    /// The in-memory pool the jobs run in: its stats and events. Stopping
    /// it stops this worker's claiming too.
    pub fn pool(&self) -> &Pool<DurableJob<J>> {
        &self.pool
    }

    /// Stops claiming; gives back the jobs claimed but not started (ready
    /// again at once, no attempt counted); lets those running finish, and
    /// records them.
    pub async fn stop(mut self) -> DurableReport {
        self.finish(Command::Stop).await
    }

    /// Stops claiming, runs every job already claimed, and records them.
    pub async fn drain(mut self) -> DurableReport {
        self.finish(Command::Drain).await
    }

    async fn finish(
        &mut self,
        command: fn(oneshot::Sender<DurableReport>) -> Command,
    ) -> DurableReport {
        let (reply, report) = oneshot::channel();
        let _ = self.commands.send(command(reply));
        let report = report.await.unwrap_or_default();
        if let Some(done) = self.done.take() {
            let _ = done.await;
        }
        report
    }
}

/// The worker's loop, and everything it keeps.
struct Loop<J: Durable> {
    conninfo: String,
    client: Client,
    /// The client stopped answering: make a new one.
    reconnect: bool,
    pool: Pool<DurableJob<J>>,
    owner: String,
    lease: Duration,
    poll_interval: Duration,
    retention: Option<Duration>,
    retry: RetryPolicy,
    /// The pool's queue capacity: it holds that many jobs at once, and as
    /// many more as it has workers (asked at each claim: the pool may be
    /// resized).
    queue_capacity: usize,
    /// Jobs claimed and not yet recorded: id -> lease token. An end is
    /// recorded, and its entry removed, only under the token it was
    /// claimed with.
    held: HashMap<i64, i64>,
    /// Ends not yet recorded (the database was unreachable): tried again.
    unrecorded: Vec<Ended>,
    claiming: bool,
    report: DurableReport,
    /// Woken by a notification of a new ready job.
    wake: Arc<Notify>,
    /// The connection listening for new jobs (its client, which keeps it
    /// open), and a flag that falls when it ends.
    listener: Option<(Client, Arc<AtomicBool>)>,
    _job: std::marker::PhantomData<fn() -> J>,
}

/// A claimed job's end, to record.
struct Ended {
    id: i64,
    token: i64,
    record: Record,
}

/// Runs `work`, giving up after `limit`: a database that stops answering
/// (a half-open connection) must not hold the loop.
async fn within<F: Future>(limit: Duration, work: F) -> Result<F::Output, DurableError> {
    tokio::time::timeout(limit, work)
        .await
        .map_err(|_| DurableError::Timeout(limit))
}

/// An error with its causes, for a log line.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl<J: Durable> Loop<J> {
    async fn run(mut self, mut orders: mpsc::UnboundedReceiver<Command>) {
        let (ends, mut ended) = mpsc::unbounded_channel::<Ended>();
        let mut renew_at = Instant::now() + self.lease / 3;
        let mut maintain_at = Instant::now();
        let mut finishing: Option<Option<Command>> = None;
        let mut backoff = Duration::from_millis(50);
        let mut unhealthy_since: Option<Instant> = None;
        loop {
            // Record what ended, renew leases, reclaim, claim what fits; a
            // database error or silence pauses the rest of the round.
            let now = Instant::now();
            let mut next_due = None;
            let limit = self.lease / 3;
            let round = async {
                self.ensure_client().await?;
                self.record_all(&mut ended).await?;
                if now >= renew_at {
                    self.renew().await?;
                    renew_at = now + self.lease / 3;
                }
                if now >= maintain_at {
                    self.maintain().await?;
                    maintain_at = now + self.lease / 2;
                }
                if self.claiming {
                    next_due = self.claim(&ends).await?;
                }
                Ok::<_, DurableError>(())
            };
            let healthy = match within(limit, round).await.and_then(|round| round) {
                Ok(()) => true,
                Err(error) => {
                    log::warn!("durable worker ({} jobs): {}", J::KIND, chain(&error));
                    if matches!(error, DurableError::Timeout(_)) {
                        self.reconnect = true;
                    }
                    false
                }
            };
            if healthy {
                backoff = Duration::from_millis(50);
                unhealthy_since = None;
            } else {
                backoff = (backoff * 2).min(Duration::from_secs(5));
                unhealthy_since.get_or_insert(now);
            }
            if finishing.is_some() {
                // Done once every job held is recorded; or, with the
                // database away for longer than a lease, given up: what is
                // not recorded comes back to the queue as its lease expires.
                let away = unhealthy_since.is_some_and(|since| since.elapsed() >= self.lease);
                if (self.held.is_empty() && self.unrecorded.is_empty()) || away {
                    self.report.unrecorded = self.held.len() as u64;
                    if let Some(Some(command)) = finishing.take() {
                        report_to(command, self.report.clone());
                    }
                    return;
                }
            }
            let listening = self
                .listener
                .as_ref()
                .is_some_and(|(_, alive)| alive.load(Ordering::Acquire));
            if self.claiming && !listening {
                self.listener =
                    listen(&self.conninfo, J::KIND, self.wake.clone(), self.lease / 3).await;
            }
            let wait = if healthy {
                let until_due = next_due
                    .and_then(|due| due.duration_since(SystemTime::now()).ok())
                    .unwrap_or(self.poll_interval);
                until_due
                    .min(self.poll_interval)
                    .min(renew_at.saturating_duration_since(now))
            } else {
                backoff
            };
            tokio::select! {
                Some(end) = ended.recv() => self.unrecorded.push(end),
                () = self.wake.notified(), if self.claiming => {}
                order = orders.recv(), if finishing.is_none() => {
                    // A dropped handle stops the worker too.
                    finishing = Some(order);
                    let drain = matches!(finishing, Some(Some(Command::Drain(_))));
                    self.stop_claiming(drain);
                }
                () = actix_rt::time::sleep(wait) => {}
            }
            if finishing.is_none() && !self.claiming {
                // The pool stopped underneath (see `start_job`): finish as
                // for a stop nobody asked for.
                finishing = Some(None);
            }
        }
    }

    /// Claims nothing more, and has the pool stop (or drain) in the
    /// background while the loop goes on recording and renewing.
    fn stop_claiming(&mut self, drain: bool) {
        self.claiming = false;
        self.listener = None;
        let pool = self.pool.clone();
        actix_rt::spawn(async move {
            let stopped = if drain {
                pool.drain().await
            } else {
                pool.stop().await
            };
            if let Err(error) = stopped {
                log::warn!("the durable worker's pool was already gone: {error}");
            }
        });
    }

    /// A working client: the one there is, or a new one.
    async fn ensure_client(&mut self) -> Result<(), DurableError> {
        if !self.reconnect && !self.client.is_closed() {
            return Ok(());
        }
        self.client = connect(&self.conninfo).await?;
        // A database that came back may have been migrated meanwhile.
        schema::check(&self.client).await?;
        self.reconnect = false;
        log::info!("reconnected to PostgreSQL");
        Ok(())
    }

    /// Claims as many due jobs as the pool has room for, and hands them to
    /// it; returns when the next ready job is due, if one is not yet.
    async fn claim(
        &mut self,
        ends: &mpsc::UnboundedSender<Ended>,
    ) -> Result<Option<SystemTime>, DurableError> {
        loop {
            let Ok(workers) = self.pool.addr().send(PoolSize).await else {
                return Ok(None);
            };
            let room = self
                .queue_capacity
                .saturating_add(workers)
                .saturating_sub(self.held.len());
            if room == 0 {
                return Ok(None);
            }
            let claimed =
                store::claim(&self.client, J::KIND, room, &self.owner, self.lease).await?;
            let full = claimed.len() == room;
            for job in claimed {
                self.start_job(job, ends);
            }
            if !full || !self.claiming {
                return store::next_due(&self.client, J::KIND).await;
            }
        }
    }

    /// Hands a claimed job to the pool, and has its end sent to `ends`.
    fn start_job(&mut self, claimed: Claimed, ends: &mpsc::UnboundedSender<Ended>) {
        let Claimed {
            id,
            token,
            payload,
            attempts,
            max_attempts,
        } = claimed;
        self.held.insert(id, token);
        let end = move |record| Ended { id, token, record };
        let job: J = match serde_json::from_value(payload) {
            Ok(job) => job,
            Err(error) => {
                let error = format!("its payload does not deserialize as {}: {error}", J::KIND);
                log::warn!("job {id} is dead: {error}");
                let _ = ends.send(end(Record::Dead { error }));
                return;
            }
        };
        let handle = match self.pool.try_submit(DurableJob { job, id }) {
            Ok(handle) => handle,
            // Never while the pool runs: claims fit its room (a shrink
            // meanwhile frees places as the retired workers finish).
            Err(TrySubmitError::Full(_)) => {
                let _ = ends.send(end(Record::Release));
                return;
            }
            Err(TrySubmitError::Stopped(_)) => {
                // The pool stopped underneath (its owner stopped it, or it
                // gave up on restarts): this worker claims nothing more.
                if self.claiming {
                    log::warn!(
                        "the pool of the durable worker for {} jobs stopped; it claims no more",
                        J::KIND
                    );
                    self.claiming = false;
                }
                let _ = ends.send(end(Record::Release));
                return;
            }
        };
        let ends = ends.clone();
        let retry = self.retry;
        actix_rt::spawn(async move {
            let record = match handle.await {
                Ok(outcome) => record_of(outcome, attempts, max_attempts, retry),
                // Never, by the pool's promise; recorded as a failed attempt.
                Err(lost) => failed(lost.to_string(), true, None, attempts, max_attempts, retry),
            };
            let _ = ends.send(end(record));
        });
    }

    /// Records every end that came in: the done ones in one statement.
    async fn record_all(
        &mut self,
        ended: &mut mpsc::UnboundedReceiver<Ended>,
    ) -> Result<(), DurableError> {
        while let Some(Some(end)) = ended.recv().now_or_never() {
            self.unrecorded.push(end);
        }
        if self.unrecorded.is_empty() {
            return Ok(());
        }
        let (done, others): (Vec<Ended>, Vec<Ended>) = std::mem::take(&mut self.unrecorded)
            .into_iter()
            .partition(|end| matches!(end.record, Record::Done));
        if !done.is_empty() {
            let pairs: Vec<(i64, i64)> = done.iter().map(|end| (end.id, end.token)).collect();
            match store::done(&self.client, &pairs).await {
                Ok(recorded) => {
                    let lost = pairs.len() - recorded.len();
                    if lost > 0 {
                        log::warn!(
                            "{lost} jobs done here were no longer this process's (their leases were taken over); not recorded"
                        );
                    }
                    self.report.recorded += recorded.len() as u64;
                    self.report.lost += lost as u64;
                    for end in &done {
                        self.let_go(end);
                    }
                }
                Err(error) => {
                    self.unrecorded = done.into_iter().chain(others).collect();
                    return Err(error);
                }
            }
        }
        let mut others = others.into_iter();
        while let Some(end) = others.next() {
            match store::record(&self.client, end.id, end.token, &end.record).await {
                Ok(true) if matches!(end.record, Record::Release) => self.report.released += 1,
                Ok(true) => self.report.recorded += 1,
                Ok(false) => {
                    log::warn!(
                        "job {} was no longer this process's; its end is not recorded",
                        end.id
                    );
                    self.report.lost += 1;
                }
                Err(error) => {
                    self.unrecorded.push(end);
                    self.unrecorded.extend(others);
                    return Err(error);
                }
            }
            self.let_go(&end);
        }
        Ok(())
    }

    /// Forgets a job whose end is recorded (or refused), if this claim is
    /// the one held: a later claim of the same job keeps its own entry.
    fn let_go(&mut self, end: &Ended) {
        if self.held.get(&end.id) == Some(&end.token) {
            self.held.remove(&end.id);
        }
    }

    async fn renew(&mut self) -> Result<(), DurableError> {
        if self.held.is_empty() {
            return Ok(());
        }
        let pairs: Vec<(i64, i64)> = self.held.iter().map(|(id, token)| (*id, *token)).collect();
        store::renew(&self.client, &pairs, self.lease).await?;
        Ok(())
    }

    /// Reclaims expired leases, and prunes old jobs if asked to. A failed
    /// prune is logged, and claiming goes on.
    async fn maintain(&mut self) -> Result<(), DurableError> {
        let reclaimed = store::reclaim(&self.client).await?;
        if reclaimed > 0 {
            log::info!("{reclaimed} jobs with expired leases went back to the queue");
        }
        if let Some(retention) = self.retention
            && let Err(error) = store::prune(&self.client, retention).await
        {
            log::warn!("pruning finished jobs failed: {}", chain(&error));
        }
        Ok(())
    }
}

/// How an attempt's outcome is recorded: `attempts` (this one included) of
/// `max_attempts` made.
fn record_of<J: Durable>(
    outcome: Outcome<DurableJob<J>>,
    attempts: u32,
    max_attempts: u32,
    pool_retry: RetryPolicy,
) -> Record {
    let (error, retryable, policy) = match outcome {
        Outcome::Completed { .. } => return Record::Done,
        // Handed back before it began (a stop, a shutdown's deadline): the
        // attempt counted at claim did not happen.
        Outcome::NotRun {
            reason:
                StopReason::Stopped
                | StopReason::Drained
                | StopReason::RestartLimit { .. }
                | StopReason::Deadline { .. },
            attempts: 0,
            ..
        } => return Record::Release,
        // Never begun: the worker's pool waits for room rather than evict
        // (`durable_conflict`); should that change, it is released.
        Outcome::Evicted => return Record::Release,
        // Lost with its worker or arbiter, maybe midway: an attempt made.
        Outcome::NotRun { reason, .. } => (format!("lost with its worker ({reason})"), true, None),
        Outcome::Failed {
            error:
                DurableFailure {
                    error,
                    retryable,
                    policy,
                },
            ..
        } => (debug_text(&error), retryable, policy),
        Outcome::Panicked { message, .. } => (
            format!("panicked: {message}"),
            pool_retry.retries_panics(),
            None,
        ),
        Outcome::TimedOut { .. } => ("timed out".to_owned(), true, None),
        Outcome::Aborted { .. } => ("cut off by a shutdown's deadline".to_owned(), true, None),
        // The worker's pool is its own: nothing cancels in it. Should that
        // change, a cancelled attempt is one more failed attempt.
        Outcome::Cancelled { .. } => ("cancelled".to_owned(), true, None),
    };
    failed(error, retryable, policy, attempts, max_attempts, pool_retry)
}

/// A failed attempt's record: another after the policy's delay, or dead.
fn failed(
    error: String,
    retryable: bool,
    policy: Option<RetryPolicy>,
    attempts: u32,
    max_attempts: u32,
    pool_retry: RetryPolicy,
) -> Record {
    if retryable && attempts < max_attempts {
        let policy = policy.unwrap_or(pool_retry);
        Record::Retry {
            delay: policy.delay(attempts, fastrand::f64()),
            error,
        }
    } else {
        Record::Dead { error }
    }
}

fn report_to(command: Command, report: DurableReport) {
    let (Command::Stop(reply) | Command::Drain(reply)) = command;
    let _ = reply.send(report);
}

async fn connect(conninfo: &str) -> Result<Client, DurableError> {
    super::queue::connect(conninfo).await
}

/// Listens for new ready jobs of `kind` on a connection of its own, waking
/// `wake` for each. Returns the connection's client (dropping it closes the
/// connection) and a flag that falls when the connection ends; `None` if it
/// could not be made within `limit`: polling goes on meanwhile.
async fn listen(
    conninfo: &str,
    kind: &'static str,
    wake: Arc<Notify>,
    limit: Duration,
) -> Option<(Client, Arc<AtomicBool>)> {
    let connecting = tokio_postgres::connect(conninfo, NoTls);
    let (client, mut connection) = match within(limit, connecting).await {
        Ok(Ok(pair)) => pair,
        Ok(Err(error)) => {
            log::warn!("could not listen for new jobs: {}", chain(&error));
            return None;
        }
        Err(error) => {
            log::warn!("could not listen for new jobs: {error}");
            return None;
        }
    };
    let alive = Arc::new(AtomicBool::new(true));
    let flag = alive.clone();
    actix_rt::spawn(async move {
        // Ends when the client is dropped, or the connection breaks.
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(note)) if note.payload() == kind => wake.notify_one(),
                Ok(_) => {}
                Err(error) => {
                    log::warn!("the connection listening for new jobs ended: {error}");
                    break;
                }
            }
        }
        flag.store(false, Ordering::Release);
    });
    match within(limit, client.batch_execute("LISTEN workerpool_jobs")).await {
        Ok(Ok(())) => Some((client, alive)),
        Ok(Err(error)) => {
            log::warn!("could not listen for new jobs: {}", chain(&error));
            None
        }
        Err(error) => {
            log::warn!("could not listen for new jobs: {error}");
            None
        }
    }
}
