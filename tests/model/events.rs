//! The rules for each pool event: attempts that start, end, retry or are
//! handed back; panics, restarts and backoff; the phase the supervisor
//! announces.

use std::time::Duration;

use actix_workerpool::{OutcomeKind, PoolEvent, RestartReason, StopReason, TaskId};
use tokio::time::Instant;

use crate::cancels::attempts_named;
use crate::check::{Check, ensure};
use crate::commands::{End, Release};
use crate::probe::panic_message;
use crate::reference::{ExpectRestart, GaveUp, Model, Phase, RetryWait, Started};

impl Model {
    /// The reason queued tasks are handed back with: that of the first stop
    /// that was not a drain.
    fn hand_back_reason(&self) -> Option<&StopReason> {
        self.stopping.iter().find(|r| **r != StopReason::Drained)
    }

    pub(crate) fn index_of(&self, id: TaskId) -> Result<usize, String> {
        self.ids
            .get(&id)
            .copied()
            .ok_or_else(|| format!("{id} was never accepted"))
    }

    /// How the last attempt of task `index` may end, by what it does: empty
    /// if it cannot end by itself (a held task not released, with no timeout).
    pub(crate) fn possible_ends(&self, index: usize) -> Vec<End> {
        let t = &self.tasks[index];
        let release = match (self.released.get(&t.label), t.last_start, self.timeout) {
            (None, _, _) => Release::No,
            (Some(_), _, None) | (Some(_), None, _) => Release::Before,
            (Some(&at), Some(started), Some(timeout)) => {
                if at < started.after + timeout {
                    Release::Before
                } else if at > started.by + timeout {
                    Release::After
                } else {
                    Release::Around
                }
            }
        };
        t.kind.act(t.attempts).ends(release, self.timeout.is_some())
    }

    /// The end of the last attempt of task `index`, known to have ended in a
    /// way that its policy retries (a `Retrying` event, or a hand-back of a
    /// running task): the one such end it may have had.
    fn retried_end(&self, index: usize) -> Result<End, String> {
        let t = &self.tasks[index];
        let ends = self.possible_ends(index);
        ends.iter()
            .copied()
            .find(|end| self.setup.retries(*end, t.attempts))
            .ok_or_else(|| {
                format!(
                    "attempt {} ({:?}) may end {ends:?}: none of them is retried",
                    t.attempts,
                    t.kind.act(t.attempts)
                )
            })
    }

    pub(crate) fn on_event(&mut self, event: &PoolEvent) -> Check {
        self.check_slot_event(event)?;
        // A retired slot's last take is reported with the end before it.
        let last_take = self.take_after.take();
        // A panic's restart is the very next event, if it comes at all.
        if let Some(expected) = self.expect_restart.take() {
            let restarted = matches!(
                event,
            PoolEvent::WorkerRestarted { worker, .. } if *worker == expected.worker
            );
            if !restarted {
                self.no_restart(expected)?;
            }
        }
        let now = Instant::now();
        let after = self.step_start;
        let phase = self.phase;
        let (base, max) = (self.setup.backoff_base.0, self.setup.backoff_max.0);
        match event {
            PoolEvent::TaskStarted {
                task,
                worker,
                attempt,
            } => {
                let (task, worker, attempt) = (*task, *worker, *attempt);
                ensure!(phase != Phase::Stopping, "a task started after the stop");
                let index = self.index_of(task)?;
                // A cancel that took effect ended the task for good: no
                // attempt starts past those its answer names (this event may
                // only have been read after the answer came).
                if let Some(answer) = self.tasks[index].took_effect() {
                    ensure!(
                        Some(attempt) <= attempts_named(answer),
                        "attempt {attempt} started after a cancel answered {answer:?}"
                    );
                }
                if attempt == 1 {
                    // A due retry goes before any task waiting for its first
                    // attempt: none may start while one has been due since
                    // before this step began.
                    let overdue = self.tasks.iter().find(|t| {
                        t.retry.is_some_and(|w| w.latest() <= after) && t.running.is_none()
                    });
                    ensure!(
                        overdue.is_none(),
                        "a first attempt started while a due retry waited: {overdue:?}"
                    );
                }
                self.check_started_on(worker, attempt, last_take)?;
                self.check_key_on_start(index, attempt)?;
                let slot = &mut self.slots[worker];
                ensure!(
                    slot.busy.is_none(),
                    "worker {worker} is busy with {:?}",
                    slot.busy
                );
                if let Some((earliest, _)) = slot.back.take() {
                    ensure!(
                        now >= earliest,
                        "worker {worker} ran a task before its restart backoff was over"
                    );
                }
                slot.busy = Some(task);
                let t = &mut self.tasks[index];
                ensure!(
                    t.running.is_none() && t.ended.is_none(),
                    "the task started while running or after it ended"
                );
                ensure!(
                    attempt == t.attempts + 1,
                    "attempt {attempt} started after {} attempts",
                    t.attempts
                );
                match t.retry.take() {
                    Some(wait) => ensure!(
                        now >= wait.earliest(),
                        "attempt {attempt} started before its retry delay was over: {wait:?}"
                    ),
                    None => ensure!(attempt == 1, "attempt {attempt} started without a retry"),
                }
                t.attempts = attempt;
                let started = Started {
                    worker,
                    after,
                    by: now,
                };
                t.running = Some(started);
                t.last_start = Some(started);
            }
            PoolEvent::TaskCompleted {
                task,
                worker,
                attempts,
            }
            | PoolEvent::TaskFailed {
                task,
                worker,
                attempts,
                ..
            }
            | PoolEvent::TaskTimedOut {
                task,
                worker,
                attempts,
            } => {
                let (end, kind) = match event {
                    PoolEvent::TaskCompleted { .. } => (End::Completed, OutcomeKind::Completed),
                    PoolEvent::TaskFailed { .. } => (End::Failed, OutcomeKind::Failed),
                    _ => (End::TimedOut, OutcomeKind::TimedOut),
                };
                let index = self.attempt_over(*task, *worker, end)?;
                let made = self.tasks[index].attempts;
                ensure!(
                    *attempts == made,
                    "it says {attempts} attempts, {made} were seen"
                );
                ensure!(
                    !self.setup.retries(end, made),
                    "attempt {made} ended {end:?}, which the policy retries, yet the task ended"
                );
                self.tasks[index].ended = Some(kind);
                self.slots[*worker].consecutive = 0;
            }
            PoolEvent::TaskPanicked {
                task,
                worker,
                message,
            } => {
                let index = self.attempt_over(*task, *worker, End::Panicked)?;
                let t = &self.tasks[index];
                ensure!(
                    *message == panic_message(t.label),
                    "the panic message is {message:?}"
                );
                ensure!(
                    !self.setup.retries(End::Panicked, t.attempts),
                    "attempt {} panicked, which the policy retries, yet the task ended",
                    t.attempts
                );
                let label = t.label;
                self.tasks[index].ended = Some(OutcomeKind::Panicked);
                self.on_panic(*worker, label);
            }
            PoolEvent::Retrying {
                task,
                worker,
                attempt,
                delay,
            } => {
                ensure!(
                    phase != Phase::Stopping,
                    "a retry was scheduled after the stop (it should be handed back)"
                );
                let index = self.index_of(*task)?;
                let end = self.retried_end(index)?;
                self.attempt_over(*task, *worker, end)?;
                let t = &mut self.tasks[index];
                ensure!(
                    *attempt == t.attempts,
                    "retrying after attempt {attempt}, but {} were seen",
                    t.attempts
                );
                ensure!(
                    self.setup.retries(end, *attempt),
                    "attempt {attempt} ended {end:?}: no retry allowed"
                );
                let expected = self.setup.retry.ok_or("no policy")?.delay(*attempt);
                ensure!(
                    *delay == expected,
                    "retry delay {delay:?}, expected {expected:?} (no jitter)"
                );
                t.retry = Some(RetryWait {
                    after,
                    by: now,
                    delay: *delay,
                });
                let label = t.label;
                self.retries += 1;
                if end == End::Panicked {
                    self.on_panic(*worker, label);
                } else {
                    self.slots[*worker].consecutive = 0;
                }
            }
            PoolEvent::TaskNotRun { task, reason } => {
                let expected = self.hand_back_reason().cloned();
                ensure!(
                    expected.as_ref() == Some(reason),
                    "handed back with {reason:?}, but the pool stops with {expected:?}"
                );
                self.not_run.push(*task);
                let index = self.index_of(*task)?;
                let t = &self.tasks[index];
                ensure!(t.ended.is_none(), "a task that ended was handed back");
                if let Some(started) = t.running {
                    // Its attempt just ended in a way the policy retries, but
                    // the pool is stopping: it goes back rather than waits.
                    ensure!(
                        phase == Phase::Stopping,
                        "handed back while running (attempt {}, {phase:?})",
                        t.attempts
                    );
                    let end = self.retried_end(index)?;
                    let label = t.label;
                    self.attempt_over(*task, started.worker, end)?;
                    if end == End::Panicked {
                        self.on_panic(started.worker, label);
                    }
                } else {
                    ensure!(
                        (t.attempts == 0) == t.retry.is_none(),
                        "handed back after {} attempts, waiting for a retry: {:?}",
                        t.attempts,
                        t.retry
                    );
                }
                let t = &mut self.tasks[index];
                t.retry = None;
                t.ended = Some(OutcomeKind::NotRun);
                t.ended_reason = Some(reason.clone());
            }
            PoolEvent::TaskCancelled { task, attempts } => {
                self.on_task_cancelled(*task, *attempts)?;
            }
            PoolEvent::WorkerRestarted {
                worker,
                reason,
                restarts,
                delay,
            } => {
                ensure!(
                    phase != Phase::Stopping,
                    "a worker restarted after the stop"
                );
                let slot = &mut self.slots[*worker];
                ensure!(!slot.retired, "retired slot {worker} restarted");
                let panicked = slot.last_panic.take();
                ensure!(
                    matches!(reason, RestartReason::Panicked(m) if Some(m) == panicked.as_ref()),
                    "restarted for {reason:?}, but the panic that calls for it was {panicked:?}"
                );
                ensure!(slot.busy.is_none(), "a busy worker restarted");
                slot.restarts += 1;
                slot.consecutive += 1;
                let doublings = (slot.consecutive - 1).min(16);
                let expected = Duration::from_millis((base << doublings).min(max));
                ensure!(
                    *restarts == slot.restarts && *delay == expected,
                    "expected restart {} of the slot after {expected:?}",
                    slot.restarts
                );
                slot.back = Some((after + *delay, now + *delay));
                self.restarts += 1;
                ensure!(
                    self.restarts <= u64::from(self.setup.restart_limit),
                    "restart {} passes the limit of {}",
                    self.restarts,
                    self.setup.restart_limit
                );
            }
            PoolEvent::Resized { from, to } => self.on_resized(*from, *to)?,
            PoolEvent::WorkerRetired { worker } => self.on_worker_retired(*worker)?,
            PoolEvent::SupervisorStopping { reason } => {
                self.phase = match (phase, reason) {
                    (Phase::Running, StopReason::Drained) => Phase::Draining,
                    (Phase::Running | Phase::Draining, StopReason::Stopped) => Phase::Stopping,
                    (Phase::Running | Phase::Draining, r) if self.is_restart_limit(r) => {
                        ensure!(
                            self.gave_up != GaveUp::No,
                            "gave up, but no panic went past the limit"
                        );
                        Phase::Stopping
                    }
                    _ => return Err(format!("unexpected while {phase:?}")),
                };
                if self.phase == Phase::Stopping {
                    self.stop_asked = false;
                }
                self.stopping.push(reason.clone());
            }
            other => return Err(format!("an event the model does not know: {other:?}")),
        }
        Ok(())
    }

    /// The attempt of `task` on `worker` is over, ending `end`: it must fit
    /// what the attempt does, and it frees the worker. Returns the task's index.
    fn attempt_over(&mut self, task: TaskId, worker: usize, end: End) -> Result<usize, String> {
        let index = self.index_of(task)?;
        let expected = self.possible_ends(index);
        let released = self.released.get(&self.tasks[index].label).copied();
        let slot = &mut self.slots[worker];
        ensure!(
            slot.busy == Some(task),
            "worker {worker} was running {:?}, not {task}",
            slot.busy
        );
        slot.busy = None;
        slot.tasks_run += 1;
        let t = &mut self.tasks[index];
        ensure!(
            t.running.is_some_and(|s| s.worker == worker),
            "its attempt ended on worker {worker}, but it runs as {:?}",
            t.running
        );
        ensure!(t.ended.is_none(), "a second outcome, after {:?}", t.ended);
        ensure!(
            expected.contains(&end),
            "attempt {} ({:?}, released at {released:?}) ended {end:?}, expected one of {expected:?}",
            t.attempts,
            t.kind.act(t.attempts),
        );
        t.running = None;
        if end != End::Panicked {
            self.may_take_last(worker);
        }
        Ok(index)
    }

    /// A panic on `worker` (its task `label` ended or waits for a retry):
    /// whether it calls for a restart, and if so that the restart is the
    /// next event.
    ///
    /// A panic restarts its worker while the pool runs, and in a drain
    /// while any task has not ended (queued, waiting for a retry, or running
    /// on another worker: it may yet ask for a retry); never once the pool
    /// stops, nor in a retired slot. A restart past the limit gives up instead; once it has, panics
    /// restart nothing.
    pub(crate) fn on_panic(&mut self, worker: usize, label: u32) {
        self.slots[worker].last_panic = None;
        // A retired slot gets no fresh worker: its worker just goes.
        if self.slots[worker].retired {
            return;
        }
        let left = self.tasks.iter().any(|t| t.ended.is_none());
        let calls = match self.phase {
            Phase::Running => true,
            Phase::Draining => left,
            Phase::Stopping => false,
        };
        if !calls || self.gave_up != GaveUp::No {
            return;
        }
        if self.restarts == u64::from(self.setup.restart_limit) {
            self.gave_up = if self.stop_asked {
                GaveUp::Maybe
            } else {
                GaveUp::Yes
            };
            return;
        }
        self.slots[worker].last_panic = Some(panic_message(label));
        self.expect_restart = Some(ExpectRestart {
            worker,
            optional: self.stop_asked,
        });
    }

    /// The restart a panic called for did not come next.
    pub(crate) fn no_restart(&mut self, expected: ExpectRestart) -> Check {
        ensure!(
            expected.optional,
            "worker {} was not restarted right after its panic",
            expected.worker
        );
        self.slots[expected.worker].last_panic = None;
        Ok(())
    }
}
