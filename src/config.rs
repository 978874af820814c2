//! [`PoolBuilder`]: a pool's settings, checked before anything starts.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use actix_rt::ArbiterHandle;

use actix::Recipient;

use crate::dead_letters::{DeadLetter, Sink};
use crate::error::BuildError;
use crate::gate::Gate;
use crate::pool::Pool;
use crate::retry::{Jitter, RetryPolicy};
use crate::supervisor::{RestartPolicy, Supervisor};
use crate::task::Task;

/// What a pool does with a task submitted to a full queue: see
/// [`PoolBuilder::overflow`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Overflow {
    /// [`submit`](crate::Pool::submit) waits for room (backpressure);
    /// [`try_submit`](crate::Pool::try_submit) hands the task back.
    #[default]
    Block,
    /// Every submit hands the task back at once, `submit` included
    /// ([`SubmitError::Full`](crate::SubmitError::Full)), but a batch
    /// ([`run_all`](crate::Pool::run_all)), which waits: for callers that
    /// must never wait, such as a request handler that answers 503.
    Reject,
    /// Every submit makes room by evicting the oldest task waiting in the
    /// queue for its first attempt, whose place it takes (a round trip to
    /// the supervisor, no wait for a worker), but
    /// [`try_submit`](crate::Pool::try_submit), which hands the task back
    /// ([`TrySubmitError::Full`](crate::TrySubmitError::Full)), a
    /// [`SubmitAndReport`](crate::SubmitAndReport), refused the same way,
    /// and a batch, which waits: for work where the newest matters most
    /// (sensor readings, refreshes). The evicted task ends
    /// [`Outcome::Evicted`](crate::Outcome::Evicted) and goes to the
    /// dead-letter sink, which such a pool must have. Tasks that have run
    /// (waiting for a retry, or running) are never evicted; should no queued
    /// task be found (all of them on their way to a worker at that moment),
    /// the submit waits for room as under `Block`. The supervisor evicts and
    /// admits the newer task in one step: a submit given up before that step
    /// (dropped, or past its `submit_timeout`) evicts nothing; one given up
    /// after it leaves its task submitted.
    DropOldest,
}

/// The most worker slots a pool keeps in service: a bound that no real pool
/// comes near, so that a mistaken size is refused rather than started.
pub const MAX_WORKERS: usize = 1 << 16;

/// Makes the worker-local state for a slot; the error is already text.
pub(crate) type StateFactory<S> = Arc<dyn Fn(usize) -> Result<S, String> + Send + Sync>;

/// The settings a supervisor starts with, already validated.
pub(crate) struct Config<T: Task> {
    pub(crate) workers: usize,
    pub(crate) queue_capacity: usize,
    pub(crate) state: StateFactory<T::State>,
    pub(crate) task_timeout: Option<Duration>,
    pub(crate) restarts: RestartPolicy,
    pub(crate) arbiters: Option<usize>,
    pub(crate) retry: RetryPolicy,
    pub(crate) stuck_grace: Duration,
    pub(crate) shutdown_timeout: Option<Duration>,
    pub(crate) name: Option<Arc<str>>,
    /// Whether tasks are timed (`Stats::waited`, `Stats::ran`).
    pub(crate) latency: bool,
    /// Where tasks that end without success go, if anywhere.
    pub(crate) dead_letters: Option<Sink<T>>,
    /// Crashes after which a task is not run again.
    pub(crate) quarantine_after: u32,
    /// The supervisor's share of the pool's metrics, registered by `build`
    /// on its caller's thread (where a recorder may be installed for it alone).
    #[cfg(feature = "metrics")]
    pub(crate) metrics: Option<crate::telemetry::PoolMetrics>,
}

/// Builds a [`Pool`]: made by [`Pool::builder`] or [`Pool::builder_with_state`].
///
/// | setting | default | refused |
/// |---|---|---|
/// | [`workers`](Self::workers) | 4 | 0, or more than [`MAX_WORKERS`] |
/// | [`queue_capacity`](Self::queue_capacity) | 1024 | 0 |
/// | [`task_timeout`](Self::task_timeout) | none | zero |
/// | [`restart_limit`](Self::restart_limit) | 50 restarts within 10 s | a zero window |
/// | [`restart_backoff`](Self::restart_backoff) | 10 ms, doubling, up to 1 s | base above max |
/// | [`restart_jitter`](Self::restart_jitter) | [`Jitter::Equal`]: half the backoff, plus up to the other half | |
/// | [`arbiters`](Self::arbiters) | the supervisor's own arbiter | 0, or more than [`MAX_WORKERS`] |
/// | [`arbiter`](Self::arbiter) | the current arbiter | |
/// | [`retry`](Self::retry) | one attempt, no retries | (checked by [`RetryPolicy::builder`]) |
/// | [`stuck_grace`](Self::stuck_grace) | 1 s | zero |
/// | [`shutdown_timeout`](Self::shutdown_timeout) | none: a stop waits for the tasks in hand | zero |
/// | [`name`](Self::name) | none | empty |
/// | [`latency`](Self::latency) | tasks are timed | |
/// | [`dead_letters`](Self::dead_letters) | none: tasks that end without success are dropped once their handle has the outcome | |
/// | [`quarantine_after`](Self::quarantine_after) | 3 crashes | 0 |
/// | [`overflow`](Self::overflow) | [`Overflow::Block`]: `submit` waits for room | [`Overflow::DropOldest`] without a dead-letter sink |
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use actix_workerpool::{BuildError, FnTask, Pool};
///
/// # type Job = FnTask<u32, fn(u32) -> std::future::Ready<Result<u32, ()>>>;
/// # actix_rt::System::new().block_on(async {
/// let pool = Pool::<Job>::builder()
///     .workers(8)
///     .queue_capacity(100)
///     .task_timeout(Duration::from_secs(30))
///     .build()
///     .unwrap();
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
    task_timeout: Option<Duration>,
    restarts: RestartPolicy,
    arbiters: Option<usize>,
    retry: RetryPolicy,
    arbiter: Option<ArbiterHandle>,
    stuck_grace: Duration,
    shutdown_timeout: Option<Duration>,
    name: Option<String>,
    latency: bool,
    dead_letters: Option<Sink<T>>,
    quarantine_after: u32,
    overflow: Overflow,
}

impl<T: Task> PoolBuilder<T> {
    pub(crate) fn new(state: StateFactory<T::State>) -> Self {
        PoolBuilder {
            workers: 4,
            queue_capacity: 1024,
            state,
            task_timeout: None,
            restarts: RestartPolicy::default(),
            arbiters: None,
            retry: RetryPolicy::never(),
            arbiter: None,
            stuck_grace: Duration::from_secs(1),
            shutdown_timeout: None,
            name: None,
            latency: true,
            dead_letters: None,
            quarantine_after: 3,
            overflow: Overflow::Block,
        }
    }

    /// Whether the pool times its tasks: how long each waited for its first
    /// attempt and how long each attempt ran, in [`Stats::waited`] and
    /// [`Stats::ran`] (and, with the `metrics` feature, in two histograms).
    /// On by default.
    ///
    /// Timing reads the CPU's clock twice per task (as it is accepted, and
    /// as each attempt ends; once more when an attempt starts after its
    /// worker waited for it) and makes two histogram entries. That matters
    /// only for tasks that take well under a microsecond: on the machine of
    /// the README's "Performance", a stream of no-op tasks on 4 workers took
    /// 207 ns each timed against 175 ns untimed, two thirds of the difference
    /// being the clock reads, without which no task can be timed.
    /// Untimed, the latency figures (and the `metrics` feature's histograms)
    /// stay empty.
    ///
    /// [`Stats::waited`]: crate::Stats::waited
    /// [`Stats::ran`]: crate::Stats::ran
    pub fn latency(mut self, timed: bool) -> Self {
        self.latency = timed;
        self
    }

    /// A name for the pool, which its log lines, its `tracing` spans and
    /// events (feature `tracing`) and its metrics (feature `metrics`, label
    /// `pool`) carry, so that several pools in one program can be told
    /// apart. None by default: log lines and metrics then carry none (no
    /// `pool` label).
    ///
    /// # Examples
    ///
    /// ```
    /// use actix_workerpool::{FnTask, Pool};
    ///
    /// # type Job = FnTask<u32, fn(u32) -> std::future::Ready<Result<u32, ()>>>;
    /// # actix_rt::System::new().block_on(async {
    /// let emails = Pool::<Job>::builder().name("emails").build().unwrap();
    /// assert_eq!(emails.name(), Some("emails"));
    /// # });
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// How long past an attempt's deadline its worker may stay silent before
    /// the supervisor counts it stuck (its thread blocked), ends the attempt
    /// itself and puts a fresh worker in the slot. See
    /// [`PoolEvent::WorkerStuck`](crate::PoolEvent::WorkerStuck).
    ///
    /// Only attempts with a timeout have a deadline. Workers on the
    /// supervisor's own arbiter share its thread, so a task that blocks it
    /// blocks the supervisor too: give tasks that may block dedicated arbiters
    /// ([`arbiters`](Self::arbiters)).
    pub fn stuck_grace(mut self, grace: Duration) -> Self {
        self.stuck_grace = grace;
        self
    }

    /// A deadline for every stop and drain of the pool, the one that dropping
    /// the last handle starts included: past it, what is running is cut off
    /// and handed back as [`Aborted`](crate::Outcome::Aborted), what is
    /// queued as [`NotRun`](crate::Outcome::NotRun), and the stop answers.
    /// [`Pool::stop_within`] and [`Pool::drain_within`] give one per call.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = Some(timeout);
        self
    }

    /// How many workers run tasks at once (each holds at most one task):
    /// from 1 to [`MAX_WORKERS`]. [`Pool::resize`] changes it later.
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

    /// How long one attempt of a task may run before it is cancelled and ends
    /// [`TimedOut`](crate::Outcome::TimedOut). A task can override it through
    /// [`Task::timeout`]. No timeout by default.
    pub fn task_timeout(mut self, timeout: Duration) -> Self {
        self.task_timeout = Some(timeout);
        self
    }

    /// The restart intensity, as OTP's supervisors count it: if more than
    /// `restarts` worker restarts happen within `within` (all slots together),
    /// the supervisor gives up and stops, handing back every queued task with
    /// [`StopReason::RestartLimit`](crate::StopReason::RestartLimit).
    ///
    /// A worker is restarted when a task panics on it, when it stops unasked,
    /// or when making its state fails. `restarts` may be 0: give up at the
    /// first one.
    pub fn restart_limit(mut self, restarts: u32, within: Duration) -> Self {
        self.restarts.limit = restarts;
        self.restarts.within = within;
        self
    }

    /// The delay before a slot's worker is restarted: `base` the first time,
    /// doubling with each restart of that slot in a row (a task that ends
    /// without panicking resets it), never more than `max`.
    pub fn restart_backoff(mut self, base: Duration, max: Duration) -> Self {
        self.restarts.backoff_base = base;
        self.restarts.backoff_max = max;
        self
    }

    /// How the restart backoff is randomised, so that slots whose workers
    /// crash together (a database gone for all of them) do not restart
    /// together, and crash together again: [`Jitter::Equal`] (the default)
    /// waits half the backoff plus up to the other half, [`Jitter::Full`]
    /// anywhere up to the backoff, [`Jitter::None`] the backoff exactly.
    /// [`PoolEvent::WorkerRestarted`](crate::PoolEvent::WorkerRestarted)
    /// says the delay each restart got.
    pub fn restart_jitter(mut self, jitter: Jitter) -> Self {
        self.restarts.jitter = jitter;
        self
    }

    /// Sends every task that ends without success (failed, panicked or
    /// timed out, after its last attempt) to `sink`, as a [`DeadLetter`]
    /// with the task's value, so that the application can keep it. The
    /// task's handle still gets its outcome; tasks that complete, are
    /// cancelled or are handed back do not come (their caller gets them).
    /// Sent with `do_send`: the pool never waits for the sink. A task timed
    /// out while its worker's thread was blocked comes only once the thread
    /// gives it back (never, if it never does).
    ///
    /// # Examples
    ///
    /// ```
    /// use actix::prelude::*;
    /// use actix_workerpool::{DeadLetter, FnTask, Pool};
    ///
    /// type Mail = FnTask<&'static str, fn(&'static str) -> std::future::Ready<Result<(), String>>>;
    ///
    /// /// Keeps the mails that could not be sent, for a person to look at.
    /// struct Undelivered(Vec<&'static str>);
    ///
    /// impl Actor for Undelivered {
    ///     type Context = Context<Self>;
    /// }
    ///
    /// impl Handler<DeadLetter<Mail>> for Undelivered {
    ///     type Result = ();
    ///
    ///     fn handle(&mut self, letter: DeadLetter<Mail>, _: &mut Self::Context) {
    ///         log::warn!("kept {} ({})", letter.id, letter.reason);
    ///         self.0.push(letter.task.into_data());
    ///     }
    /// }
    ///
    /// # actix_rt::System::new().block_on(async {
    /// let undelivered = Undelivered(Vec::new()).start();
    /// let pool = Pool::<Mail>::builder()
    ///     .dead_letters(undelivered.recipient())
    ///     .build()
    ///     .unwrap();
    /// # });
    /// ```
    pub fn dead_letters(mut self, sink: Recipient<DeadLetter<T>>) -> Self {
        self.dead_letters = Some(Sink::Actor(sink));
        self
    }

    /// [`dead_letters`](Self::dead_letters), to a closure rather than an
    /// actor. It is called on the supervisor's thread, so it must not block
    /// (send the letter on, to a channel or an actor, to do I/O with it); a
    /// panic in it is caught and logged. (A panic while it holds a letter
    /// whose task's `Drop` panics too is a double panic, which aborts the
    /// process: no pool can catch that.)
    pub fn dead_letters_with<F>(mut self, sink: F) -> Self
    where
        F: Fn(DeadLetter<T>) + Send + Sync + 'static,
    {
        self.dead_letters = Some(Sink::Call(Arc::new(sink)));
        self
    }

    /// Quarantines poison tasks: a task whose attempts have crashed their
    /// worker (panicked) `crashes` times is not run again, though its retry
    /// policy would allow another attempt. It ends
    /// [`Panicked`](crate::Outcome::Panicked), goes to the dead-letter sink
    /// ([`DeadReason::Quarantined`](crate::DeadReason::Quarantined)), and
    /// [`PoolEvent::TaskQuarantined`](crate::PoolEvent::TaskQuarantined) tells.
    ///
    /// Each crash restarts a worker, and restarts count against the
    /// [`restart_limit`](Self::restart_limit): without a quarantine, one task
    /// retried through its panics could stop the whole pool. A worker given
    /// up on as stuck in the task (its thread blocked past the attempt's
    /// deadline, see [`stuck_grace`](Self::stuck_grace)) counts as a crash
    /// too; such a task ends [`TimedOut`](crate::Outcome::TimedOut). Panics
    /// are retried only with
    /// [`RetryPolicyBuilder::retry_panics`](crate::RetryPolicyBuilder::retry_panics),
    /// timeouts always while attempts remain.
    ///
    /// The guard is per task, while the restart limit counts every slot's
    /// restarts together: it keeps one poison task from stopping the pool
    /// only if `crashes` is within the restart limit, and several poison
    /// tasks at once may still pass it. 3 by default; 65,536 or more (up to
    /// `u32::MAX`) means never.
    pub fn quarantine_after(mut self, crashes: u32) -> Self {
        self.quarantine_after = crashes;
        self
    }

    /// What a submit to a full queue does: wait for room
    /// ([`Overflow::Block`], the default), or hand the task back at once
    /// ([`Overflow::Reject`]), `submit` included.
    /// [`try_submit`](crate::Pool::try_submit) never waits, and
    /// [`run_all`](crate::Pool::run_all) always does.
    ///
    /// # Examples
    ///
    /// ```
    /// use actix_workerpool::{FnTask, Overflow, Pool, SubmitError};
    ///
    /// # actix_rt::System::new().block_on(async {
    /// let pool = Pool::builder()
    ///     .workers(1)
    ///     .queue_capacity(2)
    ///     .overflow(Overflow::Reject)
    ///     .build()
    ///     .unwrap();
    /// let task = |n: u32| FnTask::new(n, |n| async move { Ok::<_, ()>(n) });
    /// // Two fill the queue: a submit that finds room returns at once,
    /// // before the pool has taken anything out.
    /// let _first = pool.submit(task(1)).await.unwrap();
    /// let _second = pool.submit(task(2)).await.unwrap();
    /// match pool.submit(task(3)).await {
    ///     Err(SubmitError::Full(task)) => assert_eq!(*task.data(), 3),
    ///     other => panic!("{other:?}"),
    /// }
    /// # });
    /// ```
    pub fn overflow(mut self, overflow: Overflow) -> Self {
        self.overflow = overflow;
        self
    }

    /// How failed tasks are retried, unless a task names its own policy
    /// ([`Task::retry_policy`]). By default, never.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Spreads the workers over `arbiters` dedicated arbiters (threads), slot
    /// `i` on arbiter `i % arbiters`, instead of running them on the
    /// supervisor's arbiter.
    ///
    /// Worth it for tasks that block or burn CPU: they then run on every core
    /// (on 2 cores, tasks of about 1 ms of arithmetic ran 1.9 times as fast on
    /// 2 arbiters as on one). For async, I/O-bound tasks the default is
    /// faster: a task that finds a worker idle on another arbiter crosses
    /// threads on its way there and back, and even under a steady stream of
    /// tasks, which busy workers take for themselves, no-op tasks cost about
    /// 0.33 µs each on 2 arbiters against 0.20 µs on one; see the README's
    /// "Performance" section. If a worker's arbiter stops,
    /// the worker is lost; its slot is restarted on a fresh arbiter. The pool
    /// stops its arbiters when it stops.
    ///
    /// An arbiter whose thread the system refuses (out of threads or memory)
    /// does not fail the pool: the workers placed on it run on the
    /// supervisor's arbiter, with an error logged, until a thread can be
    /// started for it (each worker started there asks again).
    pub fn arbiters(mut self, arbiters: usize) -> Self {
        self.arbiters = Some(arbiters);
        self
    }

    /// Starts the supervisor (and, unless [`arbiters`](Self::arbiters) says
    /// otherwise, its workers) on this arbiter instead of the current one: a
    /// pool that an application places, built from anywhere.
    ///
    /// # Examples
    ///
    /// ```
    /// use actix_rt::Arbiter;
    /// use actix_workerpool::{FnTask, Pool};
    ///
    /// # type Job = FnTask<u32, fn(u32) -> std::future::Ready<Result<u32, ()>>>;
    /// # actix_rt::System::new().block_on(async {
    /// let jobs_thread = Arbiter::new();
    /// let pool = Pool::<Job>::builder().arbiter(jobs_thread.handle()).build().unwrap();
    /// pool.drain().await.unwrap();
    /// jobs_thread.stop();
    /// # });
    /// ```
    pub fn arbiter(mut self, arbiter: ArbiterHandle) -> Self {
        self.arbiter = Some(arbiter);
        self
    }

    /// For a durable worker: the retry policy (its delays), and the queue's
    /// capacity (the pool holds that many jobs, and one per worker).
    #[cfg(feature = "postgres")]
    pub(crate) fn durable_settings(&self) -> (RetryPolicy, usize) {
        (self.retry, self.queue_capacity)
    }

    /// For a durable worker: a setting its pool cannot have, if it has one.
    /// The queue in PostgreSQL keeps the jobs that fail for good (its own
    /// dead letters, with every attempt's error), and the worker claims only
    /// what fits in the pool, waiting for room.
    #[cfg(feature = "postgres")]
    pub(crate) fn durable_conflict(&self) -> Option<&'static str> {
        if self.dead_letters.is_some() {
            return Some(
                "a durable worker's pool takes no dead-letter sink: jobs that fail for good \
                 stay in the queue as dead",
            );
        }
        if self.overflow != Overflow::Block {
            return Some("a durable worker's pool waits for room (Overflow::Block)");
        }
        None
    }

    /// Checks the settings, then starts the supervisor and its workers on the
    /// current arbiter (or the one given to [`arbiter`](Self::arbiter)).
    ///
    /// The first timed pool built in a process calibrates the clock that times
    /// tasks (see [`Stats::waited`](crate::Stats::waited)): a busy wait of up
    /// to a fraction of a second, on the calling thread. With the `metrics`
    /// feature, the pool registers its metrics here, with the recorder
    /// installed for this thread or globally.
    ///
    /// # Errors
    ///
    /// A [`BuildError`] naming the first setting refused (see the table above);
    /// [`BuildError::NoArbiter`] outside a running actix `System`;
    /// [`BuildError::ArbiterStopped`] if the arbiter given to
    /// [`arbiter`](Self::arbiter) has stopped. Should that arbiter stop later,
    /// the pool stops with it: its tasks come back as
    /// [`NotRun`](crate::Outcome::NotRun) and later submissions are refused as
    /// stopped.
    pub fn build(self) -> Result<Pool<T>, BuildError> {
        let arbiter = self.arbiter.clone();
        let self_overflow = self.overflow;
        #[allow(unused_mut)]
        let mut config = self.validate()?;
        match &arbiter {
            None if actix_rt::Arbiter::try_current().is_none() => {
                return Err(BuildError::NoArbiter);
            }
            // `spawn` fails only once the arbiter's event loop is gone.
            Some(arbiter) if !arbiter.spawn(async {}) => return Err(BuildError::ArbiterStopped),
            _ => {}
        }
        let gate = Gate::new(config.queue_capacity).overflowing(self_overflow);
        #[cfg(feature = "metrics")]
        let gate = {
            let (admissions, metrics) = crate::telemetry::register(config.name.as_deref());
            config.metrics = Some(metrics);
            gate.recording(admissions)
        };
        let gate = Arc::new(gate);
        let name = config.name.clone();
        let (addr, backlog) = Supervisor::start(config, gate.clone(), arbiter.as_ref());
        Ok(Pool::new(addr, backlog, gate, name))
    }

    fn validate(self) -> Result<Config<T>, BuildError> {
        if self.workers == 0 {
            return Err(BuildError::ZeroWorkers);
        }
        if self.workers > MAX_WORKERS {
            return Err(BuildError::TooManyWorkers { max: MAX_WORKERS });
        }
        if self.overflow == Overflow::DropOldest && self.dead_letters.is_none() {
            return Err(BuildError::EvictionWithoutDeadLetters);
        }
        if self.queue_capacity == 0 {
            return Err(BuildError::ZeroCapacity);
        }
        if self.task_timeout == Some(Duration::ZERO) {
            return Err(BuildError::ZeroTimeout);
        }
        match self.arbiters {
            Some(0) => return Err(BuildError::ZeroArbiters),
            Some(arbiters) if arbiters > MAX_WORKERS => {
                return Err(BuildError::TooManyArbiters { max: MAX_WORKERS });
            }
            _ => {}
        }
        if self.stuck_grace.is_zero() {
            return Err(BuildError::ZeroStuckGrace);
        }
        if self.shutdown_timeout == Some(Duration::ZERO) {
            return Err(BuildError::ZeroShutdownTimeout);
        }
        if self.name.as_deref() == Some("") {
            return Err(BuildError::EmptyName);
        }
        if self.quarantine_after == 0 {
            return Err(BuildError::ZeroQuarantine);
        }
        let restarts = self.restarts;
        if restarts.within.is_zero() {
            return Err(BuildError::ZeroRestartWindow);
        }
        if restarts.backoff_base > restarts.backoff_max {
            return Err(BuildError::RestartBackoff {
                base: restarts.backoff_base,
                max: restarts.backoff_max,
            });
        }
        Ok(Config {
            workers: self.workers,
            queue_capacity: self.queue_capacity,
            state: self.state,
            task_timeout: self.task_timeout,
            restarts,
            arbiters: self.arbiters,
            retry: self.retry,
            stuck_grace: self.stuck_grace,
            shutdown_timeout: self.shutdown_timeout,
            name: self.name.map(Arc::from),
            latency: self.latency,
            dead_letters: self.dead_letters,
            quarantine_after: self.quarantine_after,
            #[cfg(feature = "metrics")]
            metrics: None,
        })
    }
}

impl<T: Task> fmt::Debug for PoolBuilder<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolBuilder")
            .field("workers", &self.workers)
            .field("queue_capacity", &self.queue_capacity)
            .field("task_timeout", &self.task_timeout)
            .field("restarts", &self.restarts)
            .field("arbiters", &self.arbiters)
            .field("retry", &self.retry)
            .field("stuck_grace", &self.stuck_grace)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("name", &self.name)
            .field("latency", &self.latency)
            .field("dead_letters", &self.dead_letters.is_some())
            .field("quarantine_after", &self.quarantine_after)
            .field("overflow", &self.overflow)
            .finish_non_exhaustive()
    }
}
