//! The supervisor actor: the one place that decides where a task goes and the
//! one place that changes a counter.
//!
//! # Dispatch
//!
//! An accepted task reaches the supervisor as a job (the task and the channel to
//! its handle). If a worker is idle, the job goes to the next idle slot after the
//! last one used (round-robin; busy slots are skipped, never waited on);
//! otherwise it waits in the queue and the next worker to finish takes it. Per
//! task that is three actix messages: the job in, `Run` to a worker, `Done` back.
//!
//! # Shutdown
//!
//! [`Stop`] is the quit channel: the queue is handed back at once (each task to
//! its handle as `NotRun`), and every worker gets `Quit`, which it reads only
//! after the task in hand. [`Drain`] closes admission and lets the queue run dry
//! before the workers quit. Either answers once every worker has exited. After
//! that the supervisor stays up, refusing tasks (with the task inside the
//! error), until the last address to it is dropped.

mod idle;
mod queue;

use std::sync::Arc;

use actix::prelude::*;
use futures::channel::oneshot;
use log::{debug, info, warn};

use crate::config::Config;
use crate::error::{SubmitError, TrySubmitError};
use crate::gate::{Gate, Refusal};
use crate::job::{Job, TaskHandle};
use crate::messages::{Drain, GetStats, Stop, StopReport, Submit, TrySubmit};
use crate::outcome::{Outcome, StopReason};
use crate::stats::{Stats, WorkerStats};
use crate::task::Task;
use crate::worker::{Attempt, Quit, Run, Worker};

use idle::IdleSet;
use queue::TaskQueue;

/// An accepted job, sent by a pool handle that already holds its permit.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Enqueue<T: Task>(pub(crate) Job<T>);

/// A worker finished an attempt.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Done<T: Task> {
    pub(crate) slot: usize,
    pub(crate) job: Job<T>,
    pub(crate) result: Attempt<T>,
}

/// A worker actor stopped.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct WorkerExited {
    pub(crate) slot: usize,
}

/// The last [`Pool`](crate::Pool) handle was dropped: nobody can submit any more.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct HandlesDropped;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Running,
    Draining,
    Stopping,
    Stopped,
}

struct Slot<T: Task> {
    worker: Option<Addr<Worker<T>>>,
    busy: bool,
    quitting: bool,
    tasks_run: u64,
}

#[derive(Debug, Default)]
struct Counts {
    submitted: u64,
    completed: u64,
    failed: u64,
    panicked: u64,
    not_run: u64,
    in_flight: usize,
}

/// The actor that owns a pool's workers, queue and counters.
///
/// Start one through [`PoolBuilder::build`](crate::PoolBuilder::build), and talk
/// to it through the [`Pool`](crate::Pool) handle or, from another actor, its
/// `Addr` with the messages in [`messages`](crate::messages).
pub struct Supervisor<T: Task> {
    gate: Arc<Gate>,
    slots: Vec<Slot<T>>,
    idle: IdleSet,
    queue: TaskQueue<T>,
    counts: Counts,
    phase: Phase,
    live_workers: usize,
    reason: Option<StopReason>,
    not_run: Vec<crate::task::TaskId>,
    stop_waiters: Vec<oneshot::Sender<StopReport>>,
}

impl<T: Task> Supervisor<T> {
    /// Starts a supervisor and its workers on the current arbiter.
    pub(crate) fn start(config: Config<T>, gate: Arc<Gate>) -> Addr<Self> {
        Supervisor::create(move |ctx| {
            let me = ctx.address();
            let workers = config.workers;
            let mut idle = IdleSet::new(workers);
            let slots = (0..workers)
                .map(|slot| {
                    idle.insert(slot);
                    let state = (config.state)(slot);
                    Slot {
                        worker: Some(Worker::new(slot, me.clone(), state).start()),
                        busy: false,
                        quitting: false,
                        tasks_run: 0,
                    }
                })
                .collect();
            info!(
                "worker pool started: {workers} workers, queue capacity {}",
                config.queue_capacity
            );
            Supervisor {
                gate,
                slots,
                idle,
                queue: TaskQueue::new(),
                counts: Counts::default(),
                phase: Phase::Running,
                live_workers: workers,
                reason: None,
                not_run: Vec::new(),
                stop_waiters: Vec::new(),
            }
        })
    }

    /// Takes on a job whose permit is held.
    fn accept(&mut self, job: Job<T>) {
        self.counts.submitted += 1;
        match self.phase {
            Phase::Running | Phase::Draining => {
                self.queue.push(job);
                self.pump();
            }
            // Admitted just before the gate closed: hand it straight back.
            Phase::Stopping | Phase::Stopped => {
                self.gate.release();
                self.hand_back(job, StopReason::Stopped);
            }
        }
    }

    /// Gives queued jobs to idle workers, in round-robin order.
    fn pump(&mut self) {
        while !self.queue.is_empty() {
            let Some(slot) = self.idle.take_next() else {
                break;
            };
            let Some(job) = self.queue.pop() else {
                break;
            };
            self.gate.release();
            self.run_on(slot, job);
        }
        if self.phase == Phase::Draining {
            self.quit_idle_if_drained();
        }
    }

    fn run_on(&mut self, slot: usize, job: Job<T>) {
        let entry = &mut self.slots[slot];
        if log::log_enabled!(log::Level::Debug) {
            debug!(
                "{} -> worker {slot} (attempt {})",
                job.id(),
                job.attempts() + 1
            );
        }
        entry.busy = true;
        self.counts.in_flight += 1;
        match &entry.worker {
            Some(worker) => worker.do_send(Run(job)),
            // Idle slots always have a worker: the set only holds live ones.
            None => unreachable!("an idle slot without a worker"),
        }
    }

    fn finish_attempt(&mut self, slot: usize, job: Job<T>, result: Attempt<T>) {
        let entry = &mut self.slots[slot];
        entry.busy = false;
        entry.tasks_run += 1;
        self.counts.in_flight -= 1;
        let attempts = job.attempts();
        let outcome = match result {
            Attempt::Returned(Ok(output)) => {
                self.counts.completed += 1;
                debug!("{} completed on worker {slot}", job.id());
                Outcome::Completed { output, attempts }
            }
            Attempt::Returned(Err(error)) => {
                self.counts.failed += 1;
                warn!("{} failed on worker {slot}: {error:?}", job.id());
                Outcome::Failed { error, attempts }
            }
            Attempt::Panicked(message) => {
                self.counts.panicked += 1;
                warn!("{} panicked on worker {slot}: {message}", job.id());
                Outcome::Panicked { message, attempts }
            }
        };
        job.resolve(outcome);
        self.worker_free(slot);
    }

    fn worker_free(&mut self, slot: usize) {
        if self.slots[slot].quitting {
            return;
        }
        self.idle.insert(slot);
        self.pump();
    }

    fn hand_back(&mut self, job: Job<T>, reason: StopReason) {
        self.counts.not_run += 1;
        self.not_run.push(job.id());
        debug!("{} handed back unrun ({reason})", job.id());
        job.hand_back(reason);
    }

    /// In a drain, once nothing is left to run, idle workers may go.
    fn quit_idle_if_drained(&mut self) {
        if self.queue.is_empty() && self.gate.pending() == 0 {
            for slot in 0..self.slots.len() {
                if self.idle.remove(slot) {
                    self.quit(slot);
                }
            }
        }
    }

    fn quit(&mut self, slot: usize) {
        let entry = &mut self.slots[slot];
        if let (Some(worker), false) = (&entry.worker, entry.quitting) {
            entry.quitting = true;
            worker.do_send(Quit);
        }
    }

    fn begin_stop(&mut self) {
        if matches!(self.phase, Phase::Stopping | Phase::Stopped) {
            return;
        }
        info!(
            "worker pool stopping: {} queued tasks handed back",
            self.queue.len()
        );
        self.gate.close();
        self.phase = Phase::Stopping;
        self.reason = Some(StopReason::Stopped);
        while let Some(job) = self.queue.pop() {
            self.gate.release();
            self.hand_back(job, StopReason::Stopped);
        }
        for slot in 0..self.slots.len() {
            self.idle.remove(slot);
            self.quit(slot);
        }
        self.finish_if_all_exited();
    }

    fn begin_drain(&mut self) {
        if self.phase != Phase::Running {
            return;
        }
        info!(
            "worker pool draining: {} queued tasks to finish",
            self.queue.len()
        );
        self.gate.close();
        self.phase = Phase::Draining;
        self.reason = Some(StopReason::Drained);
        self.quit_idle_if_drained();
    }

    fn finish_if_all_exited(&mut self) {
        if self.live_workers > 0 || !matches!(self.phase, Phase::Draining | Phase::Stopping) {
            return;
        }
        self.phase = Phase::Stopped;
        let report = self.report();
        info!(
            "worker pool stopped ({}): {} completed, {} failed, {} panicked, {} not run",
            report.reason,
            self.counts.completed,
            self.counts.failed,
            self.counts.panicked,
            self.counts.not_run
        );
        for waiter in self.stop_waiters.drain(..) {
            let _ = waiter.send(report.clone());
        }
    }

    fn report(&self) -> StopReport {
        StopReport {
            reason: self.reason.clone().unwrap_or(StopReason::Stopped),
            not_run: self.not_run.clone(),
        }
    }

    /// An answer that comes once the pool has stopped.
    fn when_stopped(&mut self) -> ResponseFuture<StopReport> {
        if self.phase == Phase::Stopped {
            let report = self.report();
            return Box::pin(async move { report });
        }
        let (tx, rx) = oneshot::channel();
        self.stop_waiters.push(tx);
        Box::pin(async move {
            rx.await.unwrap_or(StopReport {
                reason: StopReason::PoolDropped,
                not_run: Vec::new(),
            })
        })
    }

    fn stats(&self) -> Stats {
        Stats {
            submitted: self.counts.submitted,
            completed: self.counts.completed,
            failed: self.counts.failed,
            panicked: self.counts.panicked,
            not_run: self.counts.not_run,
            queued: self.queue.len(),
            in_flight: self.counts.in_flight,
            workers: self
                .slots
                .iter()
                .map(|s| WorkerStats {
                    tasks_run: s.tasks_run,
                })
                .collect(),
        }
    }
}

impl<T: Task> Actor for Supervisor<T> {
    type Context = Context<Self>;
}

impl<T: Task> Handler<Enqueue<T>> for Supervisor<T> {
    type Result = ();

    fn handle(&mut self, Enqueue(job): Enqueue<T>, _: &mut Self::Context) {
        self.accept(job);
    }
}

impl<T: Task> Handler<Done<T>> for Supervisor<T> {
    type Result = ();

    fn handle(&mut self, done: Done<T>, _: &mut Self::Context) {
        self.finish_attempt(done.slot, done.job, done.result);
    }
}

impl<T: Task> Handler<WorkerExited> for Supervisor<T> {
    type Result = ();

    fn handle(&mut self, WorkerExited { slot }: WorkerExited, _: &mut Self::Context) {
        let entry = &mut self.slots[slot];
        if entry.worker.take().is_some() {
            self.live_workers -= 1;
            self.idle.remove(slot);
            debug!("worker {slot} exited");
        }
        self.finish_if_all_exited();
    }
}

impl<T: Task> Handler<HandlesDropped> for Supervisor<T> {
    type Result = ();

    fn handle(&mut self, _: HandlesDropped, _: &mut Self::Context) {
        debug!("last pool handle dropped: draining");
        self.begin_drain();
    }
}

impl<T: Task> Handler<TrySubmit<T>> for Supervisor<T> {
    type Result = Result<TaskHandle<T>, TrySubmitError<T>>;

    fn handle(&mut self, TrySubmit(task): TrySubmit<T>, _: &mut Self::Context) -> Self::Result {
        match self.gate.try_admit() {
            Ok(id) => {
                let (job, handle) = Job::new(id, task);
                self.accept(job);
                Ok(handle)
            }
            Err(Refusal::Full) => Err(TrySubmitError::Full(task)),
            Err(Refusal::Closed) => Err(TrySubmitError::Stopped(task)),
        }
    }
}

impl<T: Task> Handler<Submit<T>> for Supervisor<T> {
    type Result = ResponseFuture<Result<TaskHandle<T>, SubmitError<T>>>;

    fn handle(&mut self, Submit(task): Submit<T>, ctx: &mut Self::Context) -> Self::Result {
        let gate = self.gate.clone();
        let me = ctx.address();
        Box::pin(async move { crate::pool::submit_to(&gate, &me, task).await })
    }
}

impl<T: Task> Handler<Stop> for Supervisor<T> {
    type Result = ResponseFuture<StopReport>;

    fn handle(&mut self, _: Stop, _: &mut Self::Context) -> Self::Result {
        let answer = self.when_stopped();
        self.begin_stop();
        answer
    }
}

impl<T: Task> Handler<Drain> for Supervisor<T> {
    type Result = ResponseFuture<StopReport>;

    fn handle(&mut self, _: Drain, _: &mut Self::Context) -> Self::Result {
        let answer = self.when_stopped();
        self.begin_drain();
        answer
    }
}

impl<T: Task> Handler<GetStats> for Supervisor<T> {
    type Result = MessageResult<GetStats>;

    fn handle(&mut self, _: GetStats, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.stats())
    }
}
