//! Supervision proper: how an attempt's end is booked, and how a slot whose
//! worker panicked, vanished or failed to start gets a fresh one.

use actix::prelude::*;
use log::debug;

use crate::telemetry::{tell, warnings_wanted};

use super::Supervisor;
use super::slots::SlotState;
use crate::contain::{debug_text, drop_contained};
use crate::dead_letters::{DeadLetter, DeadReason};
use crate::job::Job;
use crate::messages::Cancellation;
use crate::outcome::{Outcome, StopReason};
use crate::retry::RetryPolicy;
use crate::stats::{PoolEvent, RestartReason};
use crate::task::{Task, TaskId};
use crate::worker::Attempt;

use super::Taken;

impl<T: Task> Supervisor<T> {
    pub(super) fn finish_attempt(
        &mut self,
        slot: usize,
        mut job: Job<T>,
        result: Attempt<T>,
        ran: u64,
        next: Option<Taken<T>>,
        ctx: &mut Context<Self>,
    ) {
        let entry = self.slots.get_mut(slot);
        entry.tasks_run += 1;
        // The attempt is over: its deadline no longer matters.
        entry.watch = None;
        self.counts.in_flight -= 1;
        self.record_times(&mut job, ran);
        let panic_message = match &result {
            Attempt::Panicked(message) => Some(String::clone(message)),
            _ => None,
        };
        let crashes = panic_message.as_ref().map(|_| job.crashed());
        if let Some(askers) = self.cancels.cut_off(job.id()) {
            // Cancelled while it ran: cut off, or, if it ended by itself as
            // the cancel came, not retried; a last end stands.
            if matches!(result, Attempt::Aborted) || self.wants_retry(&job, &result) {
                let attempts = job.attempts();
                drop_contained("Drop of a cancelled attempt's result", result);
                self.cancel_job(job);
                askers.answer(Cancellation::Running {
                    worker: slot,
                    attempts,
                });
            } else {
                self.conclude(slot, job, result, None);
                askers.answer(Cancellation::Ended);
            }
        } else if self.wants_retry(&job, &result) {
            if let Some(crashes) = crashes.filter(|c| *c >= self.config.quarantine_after) {
                self.quarantine(slot, job, result, crashes);
            } else {
                self.retry_soon(slot, job, &result, ctx);
            }
        } else {
            self.conclude(slot, job, result, None);
        }
        self.after_attempt(slot, panic_message, next, ctx);
    }

    /// Sends a failed attempt's task to wait for its retry, and says so.
    fn retry_soon(
        &mut self,
        slot: usize,
        job: Job<T>,
        result: &Attempt<T>,
        ctx: &mut Context<Self>,
    ) {
        if warnings_wanted!() {
            let (id, attempt) = (job.id(), job.attempts());
            tell!(warn, self.name(), { task = id.as_u64(), attempt = attempt, worker = slot },
                "{id} attempt {attempt} failed on worker {slot} ({}); it will be retried",
                describe(result));
        }
        self.retry_later(slot, job, ctx);
    }

    /// Counts a worker given up on as stuck in `job` as one it crashed;
    /// the count, if that is as many as the pool allows.
    pub(super) fn crashed_too_often(&self, job: &mut Job<T>) -> Option<u32> {
        Some(job.crashed()).filter(|crashes| *crashes >= self.config.quarantine_after)
    }

    /// Ends a task that has crashed its worker `crashes` times, as many as
    /// the pool allows: no more attempts, whatever its policy says.
    pub(super) fn quarantine(
        &mut self,
        slot: usize,
        job: Job<T>,
        result: Attempt<T>,
        crashes: u32,
    ) {
        let id = job.id();
        self.counts.quarantined += 1;
        tell!(warn, self.name(), { task = id.as_u64(), crashes = crashes, worker = slot },
            "{id} crashed its worker {crashes} times and is not run again");
        self.subscribers
            .emit(|| PoolEvent::TaskQuarantined { task: id, crashes });
        self.conclude(slot, job, result, Some(crashes));
    }

    /// Whether the attempt's end calls for another attempt. The task's own
    /// code (`is_retryable`, `retry_policy`) is asked only after a failure.
    fn wants_retry(&self, job: &Job<T>, result: &Attempt<T>) -> bool {
        let retryable = match result {
            Attempt::Returned(Ok(_)) | Attempt::Aborted => return false,
            Attempt::Returned(Err(error)) => job.is_retryable(error),
            Attempt::TimedOut => true,
            Attempt::Panicked(_) => self.retry_policy(job).retries_panics(),
        };
        retryable && self.retry_policy(job).allows_another(job.attempts())
    }

    pub(super) fn retry_policy(&self, job: &Job<T>) -> RetryPolicy {
        job.retry_policy().unwrap_or(self.config.retry)
    }

    /// Parks the job on a timer in the supervisor, off any worker, until its
    /// next attempt is due. A pool that is stopping hands it back instead.
    pub(super) fn retry_later(&mut self, slot: usize, job: Job<T>, ctx: &mut Context<Self>) {
        if self.phase.hands_back() {
            let reason = self.stop_reason();
            self.hand_back(job, reason);
            return;
        }
        let (id, failed_attempt) = (job.id(), job.attempts());
        let delay = self
            .retry_policy(&job)
            .delay(failed_attempt, fastrand::f64());
        self.counts.retries += 1;
        debug!("{id} waits {delay:?} before attempt {}", failed_attempt + 1);
        self.subscribers.emit(|| PoolEvent::Retrying {
            task: id,
            worker: slot,
            attempt: failed_attempt,
            delay,
        });
        self.waiting.insert(id, job);
        ctx.run_later(delay, move |supervisor, _| {
            supervisor.retry_due(id);
            // Timers run after the inbox reader's turn: publish here.
            supervisor.publish_metrics();
        });
    }

    /// A retry's delay is over: the task goes to the front of the queue, for
    /// whichever worker round-robin picks.
    fn retry_due(&mut self, id: TaskId) {
        // Gone already if a stop handed it back meanwhile.
        if let Some(job) = self.waiting.remove(&id) {
            self.queue.push_front(job);
            self.pump();
        }
    }

    /// Books the attempt's end as the task's outcome and sends it to the
    /// handle; a task that ends without success goes on to the dead-letter
    /// sink, if the pool has one (`quarantined`: after so many crashes).
    // Always: it runs once per task, from a handler too large for the
    // compiler to inline it into by itself.
    #[inline(always)]
    fn conclude(&mut self, slot: usize, job: Job<T>, result: Attempt<T>, quarantined: Option<u32>) {
        self.note_finished(job.id());
        match result {
            Attempt::Returned(Ok(output)) => self.complete(slot, job, output),
            // Kept out of line: the common end above stays small.
            other => self.conclude_without_success(slot, job, other, quarantined),
        }
    }

    /// The common end: the task completed.
    #[inline(always)]
    fn complete(&mut self, slot: usize, job: Job<T>, output: T::Output) {
        let (id, attempts) = (job.id(), job.attempts());
        self.counts.completed += 1;
        debug!("{id} completed on worker {slot}");
        self.subscribers.emit(|| PoolEvent::TaskCompleted {
            task: id,
            worker: slot,
            attempts,
        });
        job.resolve(Outcome::Completed { output, attempts });
    }

    #[inline(never)]
    fn conclude_without_success(
        &mut self,
        slot: usize,
        job: Job<T>,
        result: Attempt<T>,
        quarantined: Option<u32>,
    ) {
        let (id, attempts) = (job.id(), job.attempts());
        let sink = || self.config.dead_letters.is_some();
        let (outcome, dead) = match result {
            // Not sent here (see `conclude`); kept whole should that change.
            Attempt::Returned(Ok(output)) => return self.complete(slot, job, output),
            Attempt::Returned(Err(error)) => {
                self.counts.failed += 1;
                // The error's `Debug` is user code: asked once, and contained.
                let text = (sink() || warnings_wanted!() || !self.subscribers.is_empty())
                    .then(|| debug_text(&error));
                if let Some(text) = &text {
                    tell!(warn, self.name(), { task = id.as_u64(), attempts = attempts, worker = slot },
                        "{id} failed on worker {slot}: {text}");
                }
                self.subscribers.emit(|| PoolEvent::TaskFailed {
                    task: id,
                    worker: slot,
                    attempts,
                    error: text.clone().unwrap_or_default(),
                });
                let dead = text.map(|error| DeadReason::Failed { error });
                (Outcome::Failed { error, attempts }, dead)
            }
            Attempt::Panicked(message) => {
                let message = *message;
                self.counts.panicked += 1;
                tell!(warn, self.name(), { task = id.as_u64(), attempts = attempts, worker = slot },
                    "{id} panicked on worker {slot}: {message}");
                self.subscribers.emit(|| PoolEvent::TaskPanicked {
                    task: id,
                    worker: slot,
                    message: message.clone(),
                });
                let dead = sink().then(|| match quarantined {
                    Some(crashes) => DeadReason::Quarantined {
                        crashes,
                        message: message.clone(),
                    },
                    None => DeadReason::Panicked {
                        message: message.clone(),
                    },
                });
                (Outcome::Panicked { message, attempts }, dead)
            }
            Attempt::TimedOut => {
                self.counts.timed_out += 1;
                tell!(warn, self.name(), { task = id.as_u64(), attempts = attempts, worker = slot },
                    "{id} timed out on worker {slot}");
                self.subscribers.emit(|| PoolEvent::TaskTimedOut {
                    task: id,
                    worker: slot,
                    attempts,
                });
                let dead = match quarantined {
                    // Its workers were stuck in it, so often.
                    Some(crashes) => DeadReason::Quarantined {
                        crashes,
                        message: "timed out, its worker's thread blocked".to_owned(),
                    },
                    None => DeadReason::TimedOut,
                };
                (Outcome::TimedOut { attempts }, Some(dead))
            }
            // Only a worker already let go of is asked to abort, and its
            // reports go to `late_report`; kept whole should that not hold.
            Attempt::Aborted => {
                self.counts.aborted += 1;
                return job.abort();
            }
        };
        match dead.filter(|_| sink()) {
            Some(reason) => {
                let task = job.resolve_keeping_task(outcome);
                self.send_dead_letter(id, task, attempts, reason);
            }
            None => job.resolve(outcome),
        }
    }

    /// Sends a task that ended without success to the dead-letter sink.
    pub(super) fn send_dead_letter(
        &mut self,
        id: TaskId,
        task: Option<T>,
        attempts: u32,
        reason: DeadReason,
    ) {
        let (Some(sink), Some(task)) = (&self.config.dead_letters, task) else {
            return;
        };
        self.counts.dead_letters += 1;
        sink.send(DeadLetter {
            id,
            task,
            attempts,
            reason,
        });
    }

    /// The slot's worker is done with its task: it runs `next`, which it took
    /// from the backlog itself, or it takes the next one from here, quits, or
    /// (after a panic) makes way for a fresh worker.
    pub(super) fn after_attempt(
        &mut self,
        slot: usize,
        panicked: Option<String>,
        next: Option<Taken<T>>,
        ctx: &mut Context<Self>,
    ) {
        let mut replace = false;
        let next_id = next.as_ref().map(|taken| taken.id);
        // Under load, the busy worker has moved on to a job it took itself:
        // nothing changes but the task it runs.
        let moved_on =
            panicked.is_none() && next_id.is_some_and(|id| self.slots.moves_on(slot, id));
        if !moved_on {
            self.slots.update(slot, |state| match state {
                // A worker whose task panicked takes no other (see `worker::serve`).
                SlotState::Busy(worker, _) if panicked.is_some() => {
                    worker.quit();
                    replace = true;
                    SlotState::Gone
                }
                SlotState::Busy(worker, _) => match next_id {
                    Some(id) => SlotState::Busy(worker, id),
                    None => SlotState::Idle(worker),
                },
                // Told to quit while busy: it finishes what it holds, then exits.
                SlotState::Quitting { worker, .. } => SlotState::Quitting {
                    worker,
                    task: next_id,
                },
                other => other,
            });
        }
        if let Some(taken) = next {
            self.took_from_backlog(slot, taken);
        }
        match panicked {
            Some(message) if replace => self.restart(slot, RestartReason::Panicked(message), ctx),
            // A quitting worker's task panicked: it goes, as it was told.
            // Its task's end may be what a drain waited for.
            Some(_) => self.pump(),
            None => {
                self.slots.get_mut(slot).consecutive_restarts = 0;
                self.pump();
            }
        }
    }

    /// Books a job that a worker took from the backlog, as `dispatch` books
    /// one it hands out; then, and only then, its place in the queue is free.
    fn took_from_backlog(&mut self, slot: usize, taken: Taken<T>) {
        let Taken { id, permit, watch } = taken;
        self.inbound.count_taken();
        self.counts.submitted += 1;
        self.counts.in_flight += 1;
        drop(permit);
        if let Some(watched) = watch {
            self.watch(slot, id, 1, *watched);
        }
        debug!("{id} -> worker {slot} (attempt 1, taken from the backlog)");
        self.subscribers.emit(|| PoolEvent::TaskStarted {
            task: id,
            worker: slot,
            attempt: 1,
        });
    }

    /// A worker is gone. Expected if it was told to quit; otherwise it was lost,
    /// with whatever task it held, and its slot is restarted.
    pub(super) fn worker_exited(&mut self, slot: usize, ctx: &mut Context<Self>) {
        enum Exit {
            Expected(Option<TaskId>),
            Lost(Option<TaskId>),
            /// No worker to lose: a late exit of one already replaced.
            Stale,
        }
        let mut exit = Exit::Stale;
        self.slots.update(slot, |state| match state {
            SlotState::Quitting { task, .. } => {
                exit = Exit::Expected(task);
                SlotState::Gone
            }
            SlotState::Busy(_, id) => {
                exit = Exit::Lost(Some(id));
                SlotState::Gone
            }
            SlotState::Starting(_) | SlotState::Idle(_) => {
                exit = Exit::Lost(None);
                SlotState::Gone
            }
            other @ (SlotState::Backoff | SlotState::Gone) => other,
        });
        match exit {
            Exit::Expected(task) => {
                if let Some(id) = task {
                    self.count_lost(id);
                }
                self.leave_empty(slot);
            }
            Exit::Lost(task) => {
                if let Some(id) = task {
                    self.count_lost(id);
                }
                self.restart(slot, RestartReason::Lost, ctx);
            }
            Exit::Stale => {}
        }
    }

    /// A task lost with its worker: the job's own drop handed it back to its
    /// handle (`NotRun`, `StopReason::Dropped`); here it is counted.
    pub(super) fn count_lost(&mut self, id: TaskId) {
        self.cut_off_elsewhere(id);
        tell!(
            warn,
            self.name(),
            { task = id.as_u64() },
            "{id} was lost with its worker and handed back unrun"
        );
        self.counts.in_flight -= 1;
        self.counts.not_run += 1;
        self.subscribers.emit(|| PoolEvent::TaskNotRun {
            task: id,
            reason: StopReason::Dropped,
        });
    }

    /// Gives `slot` (whose worker is gone or going) a fresh worker after the
    /// backoff, unless the pool is stopping or the restart limit is passed.
    pub(super) fn restart(&mut self, slot: usize, reason: RestartReason, ctx: &mut Context<Self>) {
        if !self.wants_worker(slot) {
            self.leave_empty(slot);
            return;
        }
        let policy = self.config.restarts;
        if !self
            .restart_window
            .allow(actix::clock::Instant::now(), &policy)
        {
            self.give_up(&reason, ctx);
            return;
        }
        let entry = self.slots.get_mut(slot);
        entry.restarts += 1;
        entry.consecutive_restarts += 1;
        let delay = policy.delay(entry.consecutive_restarts, fastrand::f64());
        let restarts = entry.restarts;
        self.counts.restarts += 1;
        tell!(warn, self.name(), { worker = slot, restarts = restarts },
            "worker {slot} restarts in {delay:?}: {reason}");
        self.subscribers.emit(|| PoolEvent::WorkerRestarted {
            worker: slot,
            reason,
            restarts,
            delay,
        });
        self.slots.set(slot, SlotState::Backoff);
        // The backoff of this worker's end: a slot retired and brought back
        // meanwhile has a later generation, and a backoff of its own.
        let generation = self.slots.get(slot).generation;
        if delay.is_zero() {
            self.respawn(slot, generation);
        } else {
            ctx.run_later(delay, move |supervisor, _| {
                supervisor.respawn(slot, generation);
                supervisor.publish_metrics();
            });
        }
    }

    /// The backoff is over: start the slot's new worker, if it is still wanted.
    pub(super) fn respawn(&mut self, slot: usize, generation: u32) {
        if !matches!(self.slots.get(slot).state(), SlotState::Backoff)
            || self.slots.get(slot).generation != generation
        {
            return;
        }
        if self.wants_worker(slot) {
            self.spawn_worker(slot);
        } else {
            self.slots.set(slot, SlotState::Gone);
            self.leave_empty(slot);
        }
    }

    /// The slot's worker could not make its state: restart the slot, unless
    /// it was told to quit meanwhile.
    pub(super) fn worker_failed(&mut self, slot: usize, error: String, ctx: &mut Context<Self>) {
        tell!(
            warn,
            self.name(),
            { worker = slot },
            "worker {slot} failed to start: {error}"
        );
        let mut was_starting = false;
        self.slots.update(slot, |state| match state {
            SlotState::Starting(_) => {
                was_starting = true;
                SlotState::Gone
            }
            // Told to quit while starting: its exit is all that is left.
            other => other,
        });
        if was_starting {
            self.restart(slot, RestartReason::StartFailed(error), ctx);
        }
    }

    pub(super) fn worker_ready(&mut self, slot: usize) {
        self.slots.update(slot, |state| match state {
            SlotState::Starting(worker) => SlotState::Idle(worker),
            // Told to quit before it was ready: its exit is all that is left.
            other => other,
        });
        debug!("worker {slot} ready");
        self.pump();
    }
}

/// How an attempt went, in a few words for the log.
fn describe<T: Task>(result: &Attempt<T>) -> String {
    match result {
        Attempt::Returned(Ok(_)) => "completed".to_owned(),
        Attempt::Returned(Err(error)) => debug_text(error),
        Attempt::Panicked(message) => format!("panicked: {message}"),
        Attempt::TimedOut => "timed out".to_owned(),
        Attempt::Aborted => "aborted".to_owned(),
    }
}
