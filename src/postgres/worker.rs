//! The worker process's side: a [`DurableWorker`] claims jobs of one kind
//! into an in-memory [`Pool`], renews their leases while they run, and
//! records how each ended.

use std::collections::HashMap;
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
use crate::outcome::Outcome;
use crate::retry::RetryPolicy;
use crate::{Pool, PoolBuilder};

/// Builds a [`DurableWorker`]: made by [`DurableWorker::builder`].
///
/// | setting | default | refused |
/// |---|---|---|
/// | [`lease`](Self::lease) | 30 s | under 1 s |
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
    /// process renews every third of it; a process that dies loses its jobs
    /// to another after at most this long.
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

    /// Deletes jobs that ended (done or dead) longer ago than this.
    pub fn retention(mut self, retention: Duration) -> Self {
        self.retention = Some(retention);
        self
    }

    /// Connects, checks the schema, starts the pool and begins claiming.
    pub async fn start(self) -> Result<DurableWorker<J>, DurableError> {
        if self.lease < Duration::from_secs(1) {
            return Err(DurableError::InvalidOption("lease must be at least 1 s"));
        }
        if self.poll_interval.is_zero() {
            return Err(DurableError::InvalidOption(
                "poll_interval must not be zero",
            ));
        }
        let client = connect(&self.conninfo).await?;
        schema::check(&client).await?;
        let (retry, room) = self.pool.durable_settings();
        let pool = self
            .pool
            .build()
            .map_err(|_| DurableError::InvalidOption("the pool's settings were refused"))?;
        let (commands, orders) = mpsc::unbounded_channel();
        let wake = Arc::new(Notify::new());
        let listener = listen(&self.conninfo, J::KIND, wake.clone()).await;
        let state = Loop {
            conninfo: self.conninfo,
            client,
            pool: pool.clone(),
            owner: format!("{}-{:x}", std::process::id(), fastrand::u64(..)),
            lease: self.lease,
            poll_interval: self.poll_interval,
            retention: self.retention,
            retry,
            room,
            held: HashMap::new(),
            unrecorded: Vec::new(),
            claiming: true,
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
pub struct DurableWorker<J: Durable> {
    pool: Pool<DurableJob<J>>,
    commands: mpsc::UnboundedSender<Command>,
    done: Option<actix_rt::task::JoinHandle<()>>,
}

/// What a stop or drain did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DurableReport {
    /// Jobs whose end was recorded (done, to retry, or dead).
    pub recorded: u64,
    /// Jobs claimed but not started, ready again in the queue.
    pub released: u64,
    /// Jobs this process could not record (the database was unreachable);
    /// their leases expire and another process takes them up.
    pub unrecorded: u64,
}

enum Command {
    Stop(oneshot::Sender<DurableReport>),
    Drain(oneshot::Sender<DurableReport>),
}

impl<J: Durable> DurableWorker<J> {
    /// A builder for a worker on the queue at `conninfo`, whose pool is
    /// `pool` (its workers, arbiters, timeouts, retry delays).
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

    /// The in-memory pool the jobs run in: its stats and events.
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
    pool: Pool<DurableJob<J>>,
    owner: String,
    lease: Duration,
    poll_interval: Duration,
    retention: Option<Duration>,
    retry: RetryPolicy,
    /// Jobs the pool can hold at once: its queue and its workers.
    room: usize,
    /// Jobs claimed and not yet recorded: id -> lease token.
    held: HashMap<i64, i64>,
    /// Ends not yet recorded (the database was unreachable): tried again.
    unrecorded: Vec<Ended>,
    claiming: bool,
    /// Woken by a notification of a new ready job.
    wake: Arc<Notify>,
    /// Up while the connection listening for new jobs lives.
    listener: Option<Arc<AtomicBool>>,
    _job: std::marker::PhantomData<fn() -> J>,
}

/// A claimed job's end, to record.
struct Ended {
    id: i64,
    token: i64,
    record: Record,
}

impl<J: Durable> Loop<J> {
    async fn run(mut self, mut orders: mpsc::UnboundedReceiver<Command>) {
        let (ends, mut ended) = mpsc::unbounded_channel::<Ended>();
        let mut renew_at = Instant::now() + self.lease / 3;
        let mut maintain_at = Instant::now();
        let mut finishing: Option<Command> = None;
        let mut report = DurableReport::default();
        let mut backoff = Duration::from_millis(50);
        let mut unhealthy_since: Option<Instant> = None;
        loop {
            // Record what ended, renew leases, reclaim and prune, claim what
            // fits; a database error pauses the rest of the round.
            let now = Instant::now();
            let mut next_due = None;
            let healthy = async {
                if !self.ensure_client().await || !self.record_all(&mut ended, &mut report).await {
                    return false;
                }
                if now >= renew_at {
                    if !self.renew().await {
                        return false;
                    }
                    renew_at = now + self.lease / 3;
                }
                if now >= maintain_at {
                    if !self.maintain().await {
                        return false;
                    }
                    maintain_at = now + self.lease / 2;
                }
                if self.claiming {
                    match self.claim(&ends).await {
                        Ok(due) => next_due = due,
                        Err(error) => {
                            log::warn!("claiming {} jobs failed: {error}", J::KIND);
                            return false;
                        }
                    }
                }
                true
            }
            .await;
            if healthy {
                backoff = Duration::from_millis(50);
                unhealthy_since = None;
            } else {
                backoff = (backoff * 2).min(Duration::from_secs(5));
                unhealthy_since.get_or_insert(now);
            }
            if let Some(command) = finishing.take() {
                // Done once every job held is recorded; or, with the
                // database away for longer than a lease, given up: what is
                // not recorded comes back to the queue as its lease expires.
                let away = unhealthy_since.is_some_and(|since| since.elapsed() >= self.lease);
                if (self.held.is_empty() && self.unrecorded.is_empty()) || away {
                    report.unrecorded = self.held.len() as u64;
                    report_to(command, report);
                    return;
                }
                finishing = Some(command);
            }
            if self.claiming
                && !self
                    .listener
                    .as_ref()
                    .is_some_and(|alive| alive.load(Ordering::Acquire))
            {
                self.listener = listen(&self.conninfo, J::KIND, self.wake.clone()).await;
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
                    let command = order.unwrap_or_else(|| Command::Stop(oneshot::channel().0));
                    self.claiming = false;
                    let stopped = match command {
                        Command::Stop(_) => self.pool.stop().await,
                        Command::Drain(_) => self.pool.drain().await,
                    };
                    if let Err(error) = stopped {
                        log::warn!("the durable worker's pool was already gone: {error}");
                    }
                    finishing = Some(command);
                }
                () = actix_rt::time::sleep(wait) => {}
            }
        }
    }

    /// A working client: the one there is, or a new one.
    async fn ensure_client(&mut self) -> bool {
        if !self.client.is_closed() {
            return true;
        }
        match connect(&self.conninfo).await {
            Ok(client) => {
                log::info!("reconnected to PostgreSQL");
                self.client = client;
                true
            }
            Err(error) => {
                log::warn!("PostgreSQL is unreachable: {error}");
                false
            }
        }
    }

    /// Claims as many due jobs as the pool has room for, and hands them to
    /// it; returns when the next ready job is due, if one is not yet.
    async fn claim(
        &mut self,
        ends: &mpsc::UnboundedSender<Ended>,
    ) -> Result<Option<SystemTime>, DurableError> {
        loop {
            let room = self.room.saturating_sub(self.held.len());
            if room == 0 {
                return Ok(None);
            }
            let claimed =
                store::claim(&self.client, J::KIND, room, &self.owner, self.lease).await?;
            let full = claimed.len() == room;
            for job in claimed {
                self.start(job, ends).await;
            }
            if !full {
                return store::next_due(&self.client, J::KIND).await;
            }
        }
    }

    /// Hands a claimed job to the pool, and has its end sent to `ends`.
    async fn start(&mut self, claimed: Claimed, ends: &mpsc::UnboundedSender<Ended>) {
        let Claimed {
            id,
            token,
            payload,
            attempts,
            max_attempts,
        } = claimed;
        self.held.insert(id, token);
        let job: J = match serde_json::from_value(payload) {
            Ok(job) => job,
            Err(error) => {
                let error = format!("its payload does not deserialize as {}: {error}", J::KIND);
                log::warn!("job {id} is dead: {error}");
                let _ = ends.send(Ended {
                    id,
                    token,
                    record: Record::Dead { error },
                });
                return;
            }
        };
        let handle = match self.pool.submit(DurableJob { job, id }).await {
            Ok(handle) => handle,
            Err(_) => {
                // The pool is stopping: the job goes back unstarted.
                let _ = ends.send(Ended {
                    id,
                    token,
                    record: Record::Release,
                });
                return;
            }
        };
        let ends = ends.clone();
        let retry = self.retry;
        actix_rt::spawn(async move {
            let record = match handle.await {
                Ok(outcome) => record_of(outcome, attempts, max_attempts, retry),
                // Never, by the pool's promise; the lease settles it if so.
                Err(_) => return,
            };
            let _ = ends.send(Ended { id, token, record });
        });
    }

    /// Records every end that came in: the done ones in one statement.
    async fn record_all(
        &mut self,
        ended: &mut mpsc::UnboundedReceiver<Ended>,
        report: &mut DurableReport,
    ) -> bool {
        while let Some(Some(end)) = ended.recv().now_or_never() {
            self.unrecorded.push(end);
        }
        if self.unrecorded.is_empty() {
            return true;
        }
        let (done, others): (Vec<Ended>, Vec<Ended>) = std::mem::take(&mut self.unrecorded)
            .into_iter()
            .partition(|end| matches!(end.record, Record::Done));
        if !done.is_empty() {
            let pairs: Vec<(i64, i64)> = done.iter().map(|end| (end.id, end.token)).collect();
            match store::done(&self.client, &pairs).await {
                Ok(recorded) => {
                    if recorded.len() < pairs.len() {
                        log::warn!(
                            "{} done jobs were no longer this process's (their leases were taken over); not recorded",
                            pairs.len() - recorded.len()
                        );
                    }
                    report.recorded += recorded.len() as u64;
                    for end in &done {
                        self.held.remove(&end.id);
                    }
                }
                Err(error) => {
                    log::warn!("recording done jobs failed: {error}");
                    self.unrecorded = done.into_iter().chain(others).collect();
                    return false;
                }
            }
        }
        let mut others = others.into_iter();
        while let Some(end) = others.next() {
            match store::record(&self.client, end.id, end.token, &end.record).await {
                Ok(mine) => {
                    if !mine {
                        log::warn!(
                            "job {} was no longer this process's; its end is not recorded",
                            end.id
                        );
                    } else if matches!(end.record, Record::Release) {
                        report.released += 1;
                    } else {
                        report.recorded += 1;
                    }
                    self.held.remove(&end.id);
                }
                Err(error) => {
                    log::warn!("recording job {} failed: {error}", end.id);
                    self.unrecorded.push(end);
                    self.unrecorded.extend(others);
                    return false;
                }
            }
        }
        true
    }

    async fn renew(&mut self) -> bool {
        if self.held.is_empty() {
            return true;
        }
        let pairs: Vec<(i64, i64)> = self.held.iter().map(|(id, token)| (*id, *token)).collect();
        match store::renew(&self.client, &pairs, self.lease).await {
            Ok(_) => true,
            Err(error) => {
                log::warn!("renewing leases failed: {error}");
                false
            }
        }
    }

    /// Reclaims expired leases, and prunes old jobs if asked to.
    async fn maintain(&mut self) -> bool {
        match store::reclaim(&self.client).await {
            Ok(0) => {}
            Ok(reclaimed) => {
                log::info!("{reclaimed} jobs with expired leases went back to the queue")
            }
            Err(error) => {
                log::warn!("reclaiming expired leases failed: {error}");
                return false;
            }
        }
        if let Some(retention) = self.retention
            && let Err(error) = store::prune(&self.client, retention).await
        {
            log::warn!("pruning finished jobs failed: {error}");
            return false;
        }
        true
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
        Outcome::NotRun { .. } => return Record::Release,
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
    };
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
/// `wake` for each; the flag it returns falls when that connection ends.
/// `None` if the connection could not be made: polling goes on meanwhile.
async fn listen(conninfo: &str, kind: &'static str, wake: Arc<Notify>) -> Option<Arc<AtomicBool>> {
    let (client, mut connection) = match tokio_postgres::connect(conninfo, NoTls).await {
        Ok(pair) => pair,
        Err(error) => {
            log::warn!("could not listen for new jobs: {error}");
            return None;
        }
    };
    let alive = Arc::new(AtomicBool::new(true));
    let (keep, kept) = oneshot::channel::<Client>();
    let flag = alive.clone();
    actix_rt::spawn(async move {
        // The client lives as long as this task: its connection with it.
        let _client = kept;
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
    if let Err(error) = client.batch_execute("LISTEN workerpool_jobs").await {
        log::warn!("could not listen for new jobs: {error}");
        return None;
    }
    let _ = keep.send(client);
    Some(alive)
}
