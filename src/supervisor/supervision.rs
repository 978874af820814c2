//! Supervision proper: how an attempt's end is booked, and how a slot whose
//! worker panicked, vanished or failed to start gets a fresh one.

use actix::prelude::*;
use log::{debug, warn};

use super::slots::SlotState;
use super::{Phase, Supervisor};
use crate::job::Job;
use crate::outcome::{Outcome, StopReason};
use crate::stats::{PoolEvent, RestartReason};
use crate::task::{Task, TaskId};
use crate::worker::{Attempt, Quit};

impl<T: Task> Supervisor<T> {
    pub(super) fn finish_attempt(
        &mut self,
        slot: usize,
        job: Job<T>,
        result: Attempt<T>,
        ctx: &mut Context<Self>,
    ) {
        let entry = self.slots.get_mut(slot);
        entry.tasks_run += 1;
        self.counts.in_flight -= 1;
        let (id, attempts) = (job.id(), job.attempts());
        let mut panic_message = None;
        let outcome = match result {
            Attempt::Returned(Ok(output)) => {
                self.counts.completed += 1;
                debug!("{id} completed on worker {slot}");
                self.subscribers.emit(|| PoolEvent::TaskCompleted {
                    task: id,
                    worker: slot,
                    attempts,
                });
                Outcome::Completed { output, attempts }
            }
            Attempt::Returned(Err(error)) => {
                self.counts.failed += 1;
                warn!("{id} failed on worker {slot}: {error:?}");
                self.subscribers.emit(|| PoolEvent::TaskFailed {
                    task: id,
                    worker: slot,
                    attempts,
                    error: format!("{error:?}"),
                });
                Outcome::Failed { error, attempts }
            }
            Attempt::Panicked(message) => {
                self.counts.panicked += 1;
                warn!("{id} panicked on worker {slot}: {message}");
                self.subscribers.emit(|| PoolEvent::TaskPanicked {
                    task: id,
                    worker: slot,
                    message: message.clone(),
                });
                panic_message = Some(message.clone());
                Outcome::Panicked { message, attempts }
            }
            Attempt::TimedOut => {
                self.counts.timed_out += 1;
                warn!("{id} timed out on worker {slot}");
                self.subscribers.emit(|| PoolEvent::TaskTimedOut {
                    task: id,
                    worker: slot,
                    attempts,
                });
                Outcome::TimedOut { attempts }
            }
        };
        job.resolve(outcome);
        self.after_attempt(slot, panic_message, ctx);
    }

    /// The slot's worker is done with its task: it takes the next one, quits,
    /// or (after a panic) makes way for a fresh worker.
    pub(super) fn after_attempt(
        &mut self,
        slot: usize,
        panicked: Option<String>,
        ctx: &mut Context<Self>,
    ) {
        let mut replace = false;
        self.slots.update(slot, |state| match state {
            SlotState::Busy(worker, _) if panicked.is_some() => {
                worker.do_send(Quit);
                replace = true;
                SlotState::Gone
            }
            SlotState::Busy(worker, _) => SlotState::Idle(worker),
            // Told to quit while busy: now only its exit is awaited.
            SlotState::Quitting { .. } => SlotState::Quitting { task: None },
            other => other,
        });
        match panicked {
            Some(message) if replace => self.restart(slot, RestartReason::Panicked(message), ctx),
            Some(_) => {}
            None => {
                self.slots.get_mut(slot).consecutive_restarts = 0;
                self.pump();
            }
        }
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
            SlotState::Quitting { task } => {
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
                self.finish_if_all_gone();
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
        warn!("{id} was lost with its worker and handed back unrun");
        self.counts.in_flight -= 1;
        self.counts.not_run += 1;
        self.not_run.push(id);
        self.subscribers.emit(|| PoolEvent::TaskNotRun {
            task: id,
            reason: StopReason::Dropped,
        });
    }

    /// Gives `slot` (whose worker is gone or going) a fresh worker after the
    /// backoff, unless the pool is stopping or the restart limit is passed.
    pub(super) fn restart(&mut self, slot: usize, reason: RestartReason, ctx: &mut Context<Self>) {
        if matches!(self.phase, Phase::Stopping | Phase::Stopped) {
            self.finish_if_all_gone();
            return;
        }
        let policy = self.config.restarts;
        if !self
            .restart_window
            .allow(actix::clock::Instant::now(), &policy)
        {
            self.give_up(&reason);
            return;
        }
        let entry = self.slots.get_mut(slot);
        entry.restarts += 1;
        entry.consecutive_restarts += 1;
        let (restarts, delay) = (entry.restarts, policy.backoff(entry.consecutive_restarts));
        self.counts.restarts += 1;
        warn!("worker {slot} restarts in {delay:?}: {reason}");
        self.subscribers.emit(|| PoolEvent::WorkerRestarted {
            worker: slot,
            reason,
            restarts,
            delay,
        });
        self.slots.set(slot, SlotState::Backoff);
        if delay.is_zero() {
            self.respawn(slot, ctx);
        } else {
            ctx.run_later(delay, move |supervisor, ctx| supervisor.respawn(slot, ctx));
        }
    }

    /// The backoff is over: start the slot's new worker, if it is still wanted.
    pub(super) fn respawn(&mut self, slot: usize, ctx: &mut Context<Self>) {
        if !matches!(self.slots.get(slot).state(), SlotState::Backoff) {
            return;
        }
        let wanted = match self.phase {
            Phase::Running => true,
            Phase::Draining => !self.drained(),
            Phase::Stopping | Phase::Stopped => false,
        };
        if wanted {
            self.spawn_worker(slot, ctx);
        } else {
            self.slots.set(slot, SlotState::Gone);
            self.finish_if_all_gone();
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
