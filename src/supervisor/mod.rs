//! The supervisor actor: the one place that decides where a task goes and the
//! one place that changes a counter.
//!
//! # Dispatch
//!
//! An accepted task reaches the supervisor as a job (the task's id, its
//! attempt count, and the cell its task and outcome live in), through the
//! [`backlog`]. If a worker is idle, the supervisor gives it the job: to the
//! next idle slot after the last one used (round-robin; busy, starting and
//! restarting slots are skipped, never waited on). Otherwise the job waits in
//! the backlog, and the next worker to finish a task takes it from there
//! itself and names it in its report, so the supervisor still books where
//! every task runs. Per task that is one message under load (the worker's
//! report) and three on an idle pool (the job in, `Run` to a worker, the
//! report back). They travel on channels rather than as actix messages (see
//! [`inbox`]), so that a task allocates next to nothing beyond its cell; the
//! supervisor's public messages stay actix messages.
//!
//! # Restarts
//!
//! A slot gets a fresh worker, with fresh state from the pool's factory, when a
//! task panics on it, when its worker stops unasked (a task it held comes back
//! `NotRun` with [`StopReason::Dropped`]), or when making the worker's state
//! fails. Each restart waits out a backoff that doubles per restart of that slot
//! in a row; more restarts within the window than the limit allows, and the
//! supervisor gives up: it stops as [`Stop`](crate::messages::Stop) would, with
//! [`StopReason::RestartLimit`]. Unlike `actix::Supervisor`, no message in
//! flight is lost to a restart: the task in hand has its outcome before its
//! worker is replaced.
//!
//! # Shutdown
//!
//! [`Stop`](crate::messages::Stop) is the quit channel: the queue is handed
//! back at once (each task to its handle as `NotRun`), and every worker gets
//! `Quit`, which it reads only after the task in hand; busy workers take no
//! more tasks from the backlog. [`Drain`](crate::messages::Drain) closes
//! admission and lets the queue run dry before the workers quit. Either
//! answers once every worker has exited. After that the supervisor stays up,
//! refusing tasks (with the task inside the error), until the last address to
//! it is dropped.

mod backlog;
mod cancel;
mod deadlines;
mod events;
mod evict;
mod handlers;
mod idle;
mod inbox;
mod keys;
mod lane;
mod placement;
mod queue;
mod resize;
mod restarts;
mod shutdown;
mod slots;
mod supervision;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use actix::prelude::*;
use futures::channel::oneshot;
use log::debug;

use crate::config::Config;
use crate::gate::Gate;
use crate::job::Job;
use crate::latency::{Latencies, Stopwatch};
use crate::messages::{StopReport, TaskStatus};
use crate::outcome::StopReason;
use crate::stats::{PoolEvent, Stats, WorkerStats};
use crate::task::{Task, TaskId};
use crate::telemetry::tell;
use crate::worker::{self, Seat};

use cancel::Cancels;
pub(crate) use deadlines::Watched;
use deadlines::{Owed, Watchdog};
use events::Subscribers;
pub(crate) use evict::{MakeRoom, Offering, Room};
pub(crate) use inbox::{Backlog, Inbound, Inbox, LocalInbox, Taken, WorkerInbox};
use inbox::{InboxReader, ReadInbox};
pub(crate) use keys::Turn;
use keys::{Keyed, Keys};
use placement::Placement;
use queue::TaskQueue;
#[cfg(feature = "postgres")]
pub(crate) use resize::PoolSize;
pub(crate) use restarts::RestartPolicy;
use restarts::RestartWindow;
use slots::{SlotState, Slots};

/// The last [`Pool`](crate::Pool) handle was dropped: nobody can submit any more.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct HandlesDropped;

/// Where the supervisor is in its life. A stop goes through `Deciding`:
/// admission is closed and workers take nothing more, but the decision (and
/// its event) waits until every report sent before it has been read, so that
/// no task is seen to start after it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    Running,
    /// Accepting nothing new, running what it holds; `Drained` once empty.
    Draining,
    /// A stop was asked for (`Stop`, or the restart limit) and waits for the
    /// reports already on their way; nothing is dispatched meanwhile.
    Deciding(StopReason),
    /// Stopping: queued tasks handed back, workers told to quit.
    Stopping(StopReason),
    Stopped(StopReason),
}

impl Phase {
    /// Why the pool is stopping (or stopped), once it is.
    fn reason(&self) -> Option<StopReason> {
        match self {
            Phase::Running => None,
            Phase::Draining => Some(StopReason::Drained),
            Phase::Deciding(reason) | Phase::Stopping(reason) | Phase::Stopped(reason) => {
                Some(reason.clone())
            }
        }
    }

    /// Whether queued tasks go to workers.
    fn dispatches(&self) -> bool {
        matches!(self, Phase::Running | Phase::Draining)
    }

    /// Whether a stop has been decided: what is queued goes back.
    fn hands_back(&self) -> bool {
        matches!(self, Phase::Stopping(_) | Phase::Stopped(_))
    }
}

#[derive(Debug, Default)]
struct Counts {
    submitted: u64,
    completed: u64,
    failed: u64,
    panicked: u64,
    timed_out: u64,
    not_run: u64,
    aborted: u64,
    cancelled: u64,
    evicted: u64,
    in_flight: usize,
    restarts: u64,
    retries: u64,
    stuck: u64,
    dead_letters: u64,
    quarantined: u64,
}

/// The actor that owns a pool's workers, queue and counters.
///
/// Start one through [`PoolBuilder::build`](crate::PoolBuilder::build), and talk
/// to it through the [`Pool`](crate::Pool) handle or, from another actor, its
/// `Addr` with the messages in [`messages`](crate::messages).
pub struct Supervisor<T: Task> {
    config: Config<T>,
    gate: Arc<Gate>,
    slots: Slots<T>,
    queue: TaskQueue<T>,
    counts: Counts,
    phase: Phase,
    restart_window: RestartWindow,
    /// For the stop report: what ended, what went back unrun and what a
    /// deadline cut off, once a shutdown began.
    finished: Vec<TaskId>,
    not_run: Vec<TaskId>,
    aborted: Vec<TaskId>,
    stop_waiters: Vec<oneshot::Sender<StopReport>>,
    subscribers: Subscribers,
    placement: Placement,
    /// Jobs waiting out a retry delay, off any worker.
    waiting: BTreeMap<TaskId, Job<T>>,
    /// Tasks owed a retry once the blocked thread of a stuck worker gives
    /// them back (see [`deadlines`]).
    owed: HashMap<TaskId, Owed<T>>,
    /// Tasks a shutdown's deadline cut off, whose workers still hold them.
    aborting: HashSet<TaskId>,
    /// Workers let go of (stuck, or cut off), by slot and generation, until
    /// they exit; their arbiters are kept running until then.
    let_go_of: HashMap<(usize, u32), Option<placement::ArbiterId>>,
    /// The earliest deadline armed for the shutdown under way.
    shutdown_deadline: Option<actix::clock::Instant>,
    /// When the watchdog looks at deadlines next.
    next_check: Option<actix::clock::Instant>,
    watchdog: Watchdog,
    /// How the pool times its tasks, and how long they waited and ran.
    stopwatch: Stopwatch,
    latencies: Latencies,
    /// Cancels waiting for their answer.
    cancels: Cancels,
    /// The keys taken, and the jobs waiting for them.
    keys: Keys<T>,
    /// Its share of the pool's metrics (feature `metrics`).
    #[cfg(feature = "metrics")]
    metrics: Option<crate::telemetry::PoolMetrics>,
    /// For new workers, on other arbiters and on this one; dropped once
    /// the pool has stopped, so that the inbox's reports end with the last
    /// worker.
    inbox: Option<(Inbox<T>, LocalInbox<T>)>,
    inbound: InboxReader<T>,
}

impl<T: Task> Supervisor<T> {
    /// Starts a supervisor and its workers on `arbiter`, or on the current
    /// arbiter; returns its address and the backlog that pool handles add jobs to.
    pub(crate) fn start(
        config: Config<T>,
        gate: Arc<Gate>,
        arbiter: Option<&actix_rt::ArbiterHandle>,
    ) -> (Addr<Self>, Arc<Backlog<T>>) {
        let stopwatch = Stopwatch::new(config.latency);
        let backlog = Arc::new(Backlog::new(gate.clone(), stopwatch));
        let for_supervisor = backlog.clone();
        let init = move |ctx: &mut Context<Self>| {
            ctx.spawn(ReadInbox);
            Supervisor::new(config, gate, for_supervisor)
        };
        let addr = match arbiter {
            Some(arbiter) => Supervisor::start_in_arbiter(arbiter, init),
            None => Supervisor::create(init),
        };
        backlog.open_route(addr.clone().recipient().downgrade());
        backlog.send_keyed_to(addr.clone().recipient::<Keyed<T>>().downgrade());
        (addr, backlog)
    }

    #[cfg_attr(not(feature = "metrics"), allow(unused_mut))]
    fn new(mut config: Config<T>, gate: Arc<Gate>, backlog: Arc<Backlog<T>>) -> Self {
        let (inbox, local_inbox, inbound) = inbox::inbox(backlog.clone());
        let stopwatch = backlog.stopwatch();
        tell!(
            info,
            config.name.as_deref(),
            {},
            "worker pool started: {} workers, queue capacity {}",
            config.workers,
            config.queue_capacity
        );
        #[cfg(feature = "metrics")]
        let metrics = config.metrics.take();
        let mut supervisor = Supervisor {
            slots: Slots::new(config.workers, backlog.clone()),
            placement: Placement::new(config.arbiters),
            config,
            gate,
            queue: TaskQueue::new(backlog),
            counts: Counts::default(),
            phase: Phase::Running,
            restart_window: RestartWindow::default(),
            finished: Vec::new(),
            not_run: Vec::new(),
            aborted: Vec::new(),
            stop_waiters: Vec::new(),
            subscribers: Subscribers::default(),
            waiting: BTreeMap::new(),
            owed: HashMap::new(),
            aborting: HashSet::new(),
            let_go_of: HashMap::new(),
            shutdown_deadline: None,
            next_check: None,
            watchdog: Watchdog::new(),
            stopwatch,
            latencies: Latencies::new(stopwatch),
            cancels: Cancels::default(),
            keys: Keys::new(),
            #[cfg(feature = "metrics")]
            metrics,
            inbox: Some((inbox, local_inbox)),
            inbound,
        };
        for slot in 0..supervisor.slots.len() {
            supervisor.spawn_worker(slot);
        }
        supervisor
    }

    fn spawn_worker(&mut self, slot: usize) {
        // Workers are started only before the pool has stopped, while the
        // supervisor still holds its inbox.
        let Some((inbox, local_inbox)) = &self.inbox else {
            return;
        };
        let entry = self.slots.get_mut(slot);
        entry.generation = entry.generation.wrapping_add(1);
        entry.watch = None;
        entry.watched = 0;
        let placed = self.placement.arbiter_for(slot);
        entry.arbiter = placed.as_ref().map(|(id, _)| *id);
        let generation = entry.generation;
        let config = &self.config;
        let link = match placed {
            Some((_, arbiter)) => {
                worker::start_on(Seat::new(slot, generation, inbox.clone(), config), arbiter)
            }
            None => worker::start_here(Seat::new(slot, generation, local_inbox.clone(), config)),
        };
        self.slots.set(slot, SlotState::Starting(link));
    }

    /// Takes on a job accepted by a message handler, behind any job submitted
    /// before it that still waits in the inbox.
    fn enqueue(&mut self, job: Job<T>) {
        if let Some(key) = job.key() {
            // Its order is its key's, not the backlog's.
            self.accept_keyed(job, key);
        } else if self.inbound.has_jobs() {
            self.inbound.backlog().push(job);
        } else {
            // Nothing older waits.
            self.accept(job);
        }
    }

    /// Takes on a job whose permit is held, read from the inbox.
    fn accept(&mut self, job: Job<T>) {
        self.counts.submitted += 1;
        // Admitted just before the gate closed: it goes straight back.
        let Some(job) = self.unless_stopping(job) else {
            return;
        };
        // Straight to an idle worker, if nothing older waits here.
        let waiting = if self.queue.is_empty() {
            self.dispatch(job).err()
        } else {
            Some(job)
        };
        if let Some(job) = waiting {
            self.queue.push(job);
        }
        self.pump();
    }

    /// Hands `job` back if a stop has been decided (it was admitted, or its
    /// key came free, just before), and finishes the stop if it waited for
    /// nothing else; the job otherwise.
    fn unless_stopping(&mut self, job: Job<T>) -> Option<Job<T>> {
        if !self.phase.hands_back() {
            return Some(job);
        }
        let reason = self.stop_reason();
        self.hand_back(job, reason);
        self.finish_if_all_gone();
        None
    }

    /// Gives queued jobs to idle workers, in round-robin order.
    fn pump(&mut self) {
        // Checked first: with a backlog, no worker is idle, and this is all
        // that runs.
        while self.slots.has_idle() && self.phase.dispatches() {
            // Retries and jobs read early (for a status query, say) first:
            // they are older than what still waits in the backlog.
            let Some(job) = self.queue.pop().or_else(|| self.next_submitted()) else {
                break;
            };
            if let Err(job) = self.dispatch(job) {
                self.queue.push_front(job);
                break;
            }
        }
        if matches!(self.phase, Phase::Draining) {
            self.quit_idle_if_drained();
        }
    }

    /// Why the pool let go of a task it holds: it is stopping.
    fn stop_reason(&self) -> StopReason {
        // Asked only once a stop is under way; `Stopped` keeps the answer
        // well defined should that ever not hold.
        self.phase.reason().unwrap_or(StopReason::Stopped)
    }

    /// Gives the job to the next idle worker in round-robin order, or gives
    /// it back if none is idle.
    fn dispatch(&mut self, mut job: Job<T>) -> Result<(), Job<T>> {
        let id = job.id();
        if !self.phase.dispatches() || !self.slots.has_idle() {
            return Err(job);
        }
        let attempt = job.attempts() + 1;
        let timeout = job.timeout(self.config.task_timeout);
        let watched = match &timeout {
            Ok(Some(timeout)) => Some(Watched::of(&mut job, *timeout, self.config.retry, attempt)),
            _ => None,
        };
        // A worker is idle, so this finds it.
        let Some((slot, worker)) = self.slots.take_idle(id) else {
            return Err(job);
        };
        self.counts.in_flight += 1;
        debug!("{id} -> worker {slot} (attempt {attempt})");
        // Booked as running: its place in the queue is free.
        drop(job.take_permit());
        worker.run(job, timeout);
        if let Some(watched) = watched {
            self.watch(slot, id, attempt, watched);
        }
        self.subscribers.emit(|| PoolEvent::TaskStarted {
            task: id,
            worker: slot,
            attempt,
        });
        Ok(())
    }

    /// Whether the supervisor reads jobs from its inbox now: when a worker can
    /// take one, or to hand them back.
    fn takes_jobs(&self) -> bool {
        self.slots.has_idle() || self.phase.hands_back()
    }

    /// Notes a task that ended while the pool stops, for the stop report.
    fn note_finished(&mut self, id: TaskId) {
        if !matches!(self.phase, Phase::Running) {
            self.finished.push(id);
        }
    }

    fn hand_back(&mut self, job: Job<T>, reason: StopReason) {
        let id = job.id();
        self.counts.not_run += 1;
        self.not_run.push(id);
        debug!("{id} handed back unrun ({reason})");
        self.subscribers.emit(|| PoolEvent::TaskNotRun {
            task: id,
            reason: reason.clone(),
        });
        job.hand_back(reason);
    }

    fn is_current(&self, slot: usize, generation: u32) -> bool {
        slot < self.slots.len() && self.slots.get(slot).generation == generation
    }

    /// Where the task with this id is; a scan of the queue, so not for the
    /// hot path (it is bounded by the queue's capacity).
    fn status_of(&self, id: TaskId) -> TaskStatus {
        if let Some(job) = self.waiting.get(&id) {
            return TaskStatus::WaitingRetry {
                attempts: job.attempts(),
            };
        }
        if let Some(owed) = self.owed.get(&id) {
            return TaskStatus::WaitingRetry {
                attempts: owed.attempts(),
            };
        }
        if let Some(worker) = self.slots.running(id) {
            return TaskStatus::Running { worker };
        }
        if self.keys.holds(id) {
            return TaskStatus::Queued;
        }
        if let Some(job) = self.queue.find(id) {
            // A due retry is still between attempts, as the stats count it.
            return match job.attempts() {
                0 => TaskStatus::Queued,
                attempts => TaskStatus::WaitingRetry { attempts },
            };
        }
        TaskStatus::Unknown
    }

    fn stats(&self) -> Stats {
        // Read once, so that both counts below move together.
        let in_inbox = self.inbound.jobs_waiting();
        Stats {
            submitted: self.counts.submitted + in_inbox as u64,
            completed: self.counts.completed,
            failed: self.counts.failed,
            panicked: self.counts.panicked,
            timed_out: self.counts.timed_out,
            aborted: self.counts.aborted,
            cancelled: self.counts.cancelled,
            evicted: self.counts.evicted,
            not_run: self.counts.not_run,
            // Each of these holds a permit, so there are never more of them
            // than the queue's capacity.
            queued: self.queue.len() - self.queue.retries() + in_inbox + self.keys.waiting(),
            in_flight: self.counts.in_flight,
            waiting_retry: self.waiting_retry(),
            retries: self.counts.retries,
            dead_letters: self.counts.dead_letters,
            quarantined: self.counts.quarantined,
            restarts: self.counts.restarts,
            stuck: self.counts.stuck,
            waited: self.latencies.waited.summary(),
            ran: self.latencies.ran.summary(),
            size: self.slots.in_service(),
            workers: self
                .slots
                .listed()
                .map(|s| WorkerStats {
                    tasks_run: s.tasks_run,
                    restarts: s.restarts,
                    stuck: s.stuck,
                    state: s.public(),
                })
                .collect(),
        }
    }

    /// Tasks between two attempts: waiting out their delay, due and waiting
    /// for a worker, or owed a retry by a blocked thread.
    fn waiting_retry(&self) -> usize {
        self.waiting.len() + self.queue.retries() + self.owed.len()
    }

    /// Brings the metrics up to the counts (feature `metrics`). Called
    /// after each batch of reports (`ReadInbox`, which actix also polls after
    /// every message a handler took, so their changes are published too),
    /// after each of the supervisor's timers, and on every `stats()`.
    #[inline]
    pub(super) fn publish_metrics(&mut self) {
        #[cfg(feature = "metrics")]
        {
            let c = &self.counts;
            let tally = crate::telemetry::Tally {
                finished: [
                    c.completed,
                    c.failed,
                    c.panicked,
                    c.timed_out,
                    c.aborted,
                    c.cancelled,
                    c.evicted,
                    c.not_run,
                ],
                retries: c.retries,
                restarts: c.restarts,
                stuck: c.stuck,
                dead_letters: c.dead_letters,
                quarantined: c.quarantined,
                in_flight: c.in_flight,
                waiting_retry: self.waiting_retry(),
                live_workers: self.slots.live(),
            };
            if let Some(metrics) = &mut self.metrics {
                metrics.publish(tally);
            }
        }
    }

    /// Records a reported attempt's times: how long it ran, and how long the
    /// task waited for its first attempt, the first time one is reported.
    #[inline]
    fn record_times(&mut self, job: &mut Job<T>, ran: u64) {
        if !self.stopwatch().is_on() {
            return;
        }
        let waited = job.take_wait();
        self.latencies.record(waited, ran);
        #[cfg(feature = "metrics")]
        if let Some(metrics) = &self.metrics {
            metrics.attempt(waited, ran);
        }
    }

    /// How the pool times its tasks.
    fn stopwatch(&self) -> Stopwatch {
        self.stopwatch
    }

    /// The pool's name, for log lines.
    fn name(&self) -> Option<&str> {
        self.config.name.as_deref()
    }
}

impl<T: Task> Actor for Supervisor<T> {
    type Context = Context<Self>;

    fn stopped(&mut self, _: &mut Self::Context) {
        self.gate.close();
        self.placement.stop();
    }
}

/// A supervisor dropped without stopping (its `System` or arbiter stopped)
/// closes the gate, so that submitters are refused rather than left waiting.
impl<T: Task> Drop for Supervisor<T> {
    fn drop(&mut self) {
        self.gate.close();
    }
}
