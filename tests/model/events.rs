//! The rules for each pool event: starts, ends, panics, hand-backs, restarts
//! and backoff, and the phase the supervisor announces.

use std::time::Duration;

use actix_workerpool::{OutcomeKind, PoolEvent, RestartReason, StopReason, TaskId};
use tokio::time::Instant;

use crate::check::{Check, ensure};
use crate::reference::{Model, Phase, Started, Tracked};

impl Model {
    /// The reason queued tasks are handed back with: that of the first stop
    /// that was not a drain.
    fn hand_back_reason(&self) -> Option<&StopReason> {
        self.stopping.iter().find(|r| **r != StopReason::Drained)
    }

    fn tracked(&mut self, id: TaskId) -> Result<&mut Tracked, String> {
        let index = *self
            .ids
            .get(&id)
            .ok_or_else(|| format!("{id} was never accepted"))?;
        Ok(&mut self.tasks[index])
    }

    pub(crate) fn on_event(&mut self, event: &PoolEvent) -> Check {
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
                let (task, worker) = (*task, *worker);
                ensure!(phase != Phase::Stopping, "a task started after the stop");
                ensure!(*attempt == 1, "there are no retries");
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
                let t = self.tracked(task)?;
                ensure!(
                    t.started.is_none() && t.ended.is_none(),
                    "the task started twice"
                );
                t.started = Some(Started {
                    worker,
                    after,
                    by: now,
                });
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
                ensure!(*attempts == 1, "there are no retries");
                let kind = match event {
                    PoolEvent::TaskCompleted { .. } => OutcomeKind::Completed,
                    PoolEvent::TaskFailed { .. } => OutcomeKind::Failed,
                    _ => OutcomeKind::TimedOut,
                };
                self.ended(*task, *worker, kind)?;
                self.slots[*worker].consecutive = 0;
            }
            PoolEvent::TaskPanicked {
                task,
                worker,
                message,
            } => {
                self.ended(*task, *worker, OutcomeKind::Panicked)?;
                // A panic restarts its worker while the pool runs, and in a
                // drain while anything is left to run (queued: accepted, not
                // started, not ended); never once the pool stops.
                let left = self
                    .tasks
                    .iter()
                    .any(|t| t.started.is_none() && t.ended.is_none());
                let due = match phase {
                    Phase::Running => true,
                    Phase::Draining => left,
                    Phase::Stopping => false,
                };
                if due {
                    self.restarts_due += 1;
                }
                self.slots[*worker].last_panic = due.then(|| message.clone());
            }
            PoolEvent::TaskNotRun { task, reason } => {
                let expected = self.hand_back_reason().cloned();
                ensure!(
                    expected.as_ref() == Some(reason),
                    "handed back with {reason:?}, but the pool stops with {expected:?}"
                );
                self.not_run.push(*task);
                let t = self.tracked(*task)?;
                ensure!(
                    t.started.is_none() && t.ended.is_none(),
                    "a task that started or ended was handed back"
                );
                t.ended = Some(OutcomeKind::NotRun);
                t.ended_reason = Some(reason.clone());
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
                let panicked = slot.last_panic.take();
                ensure!(
                    matches!(reason, RestartReason::Panicked(m) if Some(m) == panicked.as_ref()),
                    "restarted for {reason:?}, but its last panic was {panicked:?}"
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
            }
            PoolEvent::SupervisorStopping { reason } => {
                self.phase = match (phase, reason) {
                    (Phase::Running, StopReason::Drained) => Phase::Draining,
                    (Phase::Running | Phase::Draining, StopReason::Stopped) => Phase::Stopping,
                    (Phase::Running | Phase::Draining, r) if self.is_restart_limit(r) => {
                        Phase::Stopping
                    }
                    _ => return Err(format!("unexpected while {phase:?}")),
                };
                self.stopping.push(reason.clone());
            }
            other => return Err(format!("an event the model does not know: {other:?}")),
        }
        Ok(())
    }

    /// A terminal event of an attempt on `worker`.
    fn ended(&mut self, task: TaskId, worker: usize, kind: OutcomeKind) -> Check {
        let slot = &mut self.slots[worker];
        ensure!(
            slot.busy == Some(task),
            "worker {worker} was running {:?}, not {task}",
            slot.busy
        );
        slot.busy = None;
        slot.tasks_run += 1;
        let t = self.tracked(task)?;
        ensure!(
            t.started.is_some_and(|s| s.worker == worker),
            "it ended on worker {worker} but started as {:?}",
            t.started
        );
        ensure!(t.ended.is_none(), "a second outcome, after {:?}", t.ended);
        t.ended = Some(kind);
        Ok(())
    }
}
