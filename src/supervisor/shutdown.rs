//! How a supervisor stops: on `Stop` (hand the queue back, let the tasks in
//! hand finish), on `Drain` (run the queue dry first), or when it gives up after
//! too many restarts (as `Stop`, with its own reason).
//!
//! # The stop decision
//!
//! Once a stop is asked for, no task may start. Workers take tasks from the
//! backlog themselves and report it afterwards, so when the supervisor raises
//! the stop bar, a worker may have taken a task a moment before and its report
//! still be on its way. The supervisor therefore asks in two steps:
//! [`begin_stop`](Supervisor::begin_stop) closes admission and raises the bar
//! (workers take nothing more) and enters `Deciding`; then
//! [`settle_stop`](Supervisor::settle_stop), run between messages, waits until
//! no worker is in the middle of a take (each worker on another thread raises
//! a flag while it takes), reads every report that is in, and only then decides: the
//! `SupervisorStopping` event, the queue handed back, `Quit` to every worker. A
//! task a worker took before the bar rose thus starts (and says so) before the
//! decision, and any other waits in the queue and is handed back.

use std::time::Duration;

use crate::telemetry::tell;
use actix::AsyncContext;
use actix::clock::Instant;
use futures::channel::oneshot;

use actix::ResponseFuture;

use super::backlog::Bar;
use super::slots::SlotState;
use super::{Phase, Supervisor};
use crate::messages::StopReport;
use crate::outcome::StopReason;
use crate::stats::{PoolEvent, RestartReason};
use crate::task::Task;

impl<T: Task> Supervisor<T> {
    /// Asks for a stop: admission closes, workers take nothing more from the
    /// backlog, nothing is dispatched; the decision itself waits for
    /// [`settle_stop`](Self::settle_stop). Idempotent; a stop asked for
    /// during a drain turns it into a stop.
    pub(super) fn begin_stop(&mut self, reason: StopReason) {
        if !self.phase.dispatches() {
            return;
        }
        self.gate.close();
        // Workers finish the task in hand and take no other.
        self.inbound.backlog().bar(Bar::Stopping, true);
        self.phase = Phase::Deciding(reason);
        // The decision is made between messages, never in the middle of
        // handling a report (a restart that gives up is one).
        self.inbound.wake();
    }

    /// Makes the stop decision once every report sent before the stop bar
    /// rose has been read (see the module docs). Run between messages; does
    /// nothing unless a stop waits for its decision.
    #[inline]
    pub(super) fn settle_stop(&mut self, ctx: &mut actix::Context<Self>) {
        if let Phase::Deciding(_) = self.phase {
            self.try_decide_stop(ctx);
        }
    }

    fn try_decide_stop(&mut self, ctx: &mut actix::Context<Self>) {
        let Phase::Deciding(reason) = &self.phase else {
            return;
        };
        let reason = reason.clone();
        // Registered before the look, so that a take ending after it wakes
        // the inbox reader, which comes back here.
        self.inbound.wake_when_takes_end();
        if self.slots.taking() {
            return;
        }
        self.read_every_report(ctx);
        self.decide_stop(reason);
    }

    fn decide_stop(&mut self, reason: StopReason) {
        tell!(
            info,
            self.name(),
            {},
            "worker pool stopping ({reason}): {} queued and {} waiting tasks handed back",
            self.queue.len(),
            self.waiting.len()
        );
        self.phase = Phase::Stopping(reason.clone());
        self.subscribers.emit(|| PoolEvent::SupervisorStopping {
            reason: reason.clone(),
        });
        while let Some(job) = self.queue.pop() {
            self.hand_back(job, reason.clone());
        }
        self.hand_back_keyed(&reason);
        for (_, job) in std::mem::take(&mut self.waiting) {
            self.hand_back(job, reason.clone());
        }
        for slot in 0..self.slots.len() {
            self.quit(slot);
        }
        self.finish_if_all_gone();
    }

    pub(super) fn begin_drain(&mut self) {
        if !matches!(self.phase, Phase::Running) {
            return;
        }
        tell!(
            info,
            self.name(),
            {},
            "worker pool draining: {} queued tasks to finish",
            self.queue.len()
        );
        self.gate.close();
        self.phase = Phase::Draining;
        self.subscribers.emit(|| PoolEvent::SupervisorStopping {
            reason: StopReason::Drained,
        });
        self.quit_idle_if_drained();
    }

    /// Past the restart limit: stop, and say why.
    pub(super) fn give_up(&mut self, last: &RestartReason, ctx: &mut actix::Context<Self>) {
        let policy = self.config.restarts;
        let reason = StopReason::RestartLimit {
            restarts: policy.limit,
            within: policy.within,
        };
        tell!(
            error,
            self.name(),
            {},
            "worker pool stopping, {reason}; the last restart was needed because {last}"
        );
        self.begin_stop(reason);
        self.arm_shutdown_deadline(None, ctx);
    }

    /// Nothing queued, nothing on its way to the queue, nothing waiting to
    /// be retried (a retry a blocked thread owes included: a drain waits for
    /// it as for any task, within its deadline if it has one), and nothing
    /// that may yet ask for a retry with no worker of its own to stay for
    /// it: a task on a retired slot, whose worker quits after it.
    pub(super) fn drained(&self) -> bool {
        self.queue.is_empty()
            && self.keys.waiting() == 0
            && self.gate.pending() == 0
            && self.waiting.is_empty()
            && self.owed.is_empty()
            && !self.slots.retiring_with_task()
    }

    /// Whether a drain still wants workers: something is left to run, or a
    /// task runs, which may yet ask for a retry (a panic's retry should not
    /// wait out its worker's restart backoff while another worker could take
    /// it). Idle workers stay, and slots get fresh ones, until it is not.
    pub(super) fn drain_wants_workers(&self) -> bool {
        self.counts.in_flight > 0 || !self.drained()
    }

    /// In a drain, once nothing is left to run and no task is running, idle
    /// workers may go.
    pub(super) fn quit_idle_if_drained(&mut self) {
        if self.drain_wants_workers() {
            return;
        }
        for slot in 0..self.slots.len() {
            if !matches!(self.slots.get(slot).state(), SlotState::Busy(..)) {
                self.quit(slot);
            }
        }
        self.finish_if_all_gone();
    }

    /// Tells the slot's worker to quit after the task in hand; a slot waiting
    /// out its restart backoff simply ends.
    pub(super) fn quit(&mut self, slot: usize) {
        self.slots.update(slot, |state| match state {
            SlotState::Starting(worker) | SlotState::Idle(worker) => {
                worker.quit();
                SlotState::Quitting { worker, task: None }
            }
            SlotState::Busy(worker, id) => {
                worker.quit();
                SlotState::Quitting {
                    worker,
                    task: Some(id),
                }
            }
            SlotState::Backoff | SlotState::Gone => SlotState::Gone,
            quitting @ SlotState::Quitting { .. } => quitting,
        });
    }

    pub(super) fn finish_if_all_gone(&mut self) {
        if self.slots.live() > 0 || !matches!(self.phase, Phase::Draining | Phase::Stopping(_)) {
            return;
        }
        // The pool does not wait for a blocked thread to give back a task it
        // owes a retry: that task ends timed out.
        self.settle_owed();
        // With no worker left, whatever is still queued can only go back. The
        // gate makes this unreachable in a drain; it is kept as the last guard
        // of the promise that every accepted task ends (ARCHITECTURE.md, rule 1).
        let reason = self.stop_reason();
        while let Some(job) = self.queue.pop() {
            self.hand_back(job, reason.clone());
        }
        self.hand_back_keyed(&reason);
        for (_, job) in std::mem::take(&mut self.waiting) {
            self.hand_back(job, reason.clone());
        }
        // A task admitted just before the gate closed may still be on its way
        // from another thread; it is handed back, and named in the report,
        // when it arrives (see `accept`).
        if self.gate.pending() > 0 {
            return;
        }
        self.phase = Phase::Stopped(reason);
        // No worker will start again: let the inbox end with the last handle.
        self.inbox = None;
        // Arbiters with a worker let go of still running stop when it exits.
        self.placement.stop();
        let report = self.report();
        let c = &self.counts;
        tell!(
            info,
            self.name(),
            {},
            "worker pool stopped ({}): {} completed, {} failed, {} panicked, {} timed out, \
             {} aborted, {} cancelled, {} evicted, {} not run, {} restarts",
            report.reason,
            c.completed,
            c.failed,
            c.panicked,
            c.timed_out,
            c.aborted,
            c.cancelled,
            c.evicted,
            c.not_run,
            c.restarts
        );
        for waiter in self.stop_waiters.drain(..) {
            let _ = waiter.send(report.clone());
        }
    }

    fn report(&self) -> StopReport {
        StopReport {
            reason: self.stop_reason(),
            finished: self.finished.clone(),
            not_run: self.not_run.clone(),
            aborted: self.aborted.clone(),
        }
    }

    /// Starts the clock on a shutdown's deadline, if it has one: the pool's
    /// own, or `within`; the earliest armed wins.
    pub(super) fn arm_shutdown_deadline(
        &mut self,
        within: Option<Duration>,
        ctx: &mut actix::Context<Self>,
    ) {
        let Some(within) = within.or(self.config.shutdown_timeout) else {
            return;
        };
        if matches!(self.phase, Phase::Running | Phase::Stopped(_)) {
            return;
        }
        let Some(at) = Instant::now().checked_add(within) else {
            return;
        };
        if self.shutdown_deadline.is_some_and(|armed| armed <= at) {
            return;
        }
        self.shutdown_deadline = Some(at);
        ctx.run_later(within, move |supervisor, ctx| {
            if supervisor.shutdown_deadline == Some(at) {
                supervisor.shutdown_deadline_passed(within, ctx);
                // Timers run after the inbox reader's turn: publish here.
                supervisor.publish_metrics();
            }
        });
    }

    /// A shutdown's deadline has passed: nothing more starts, what waits is
    /// handed back, what runs is cut off (its task comes back `Aborted` once
    /// its worker lets go of it), and every worker is let go of, so that the
    /// stop answers now, blocked threads or not.
    fn shutdown_deadline_passed(&mut self, within: Duration, ctx: &mut actix::Context<Self>) {
        tell!(
            warn,
            self.name(),
            {},
            "the shutdown's deadline of {within:?} passed: cutting off what still runs"
        );
        // Nothing more starts from here: workers take nothing, nothing is
        // dispatched. A take under way now shows up in a late report, and
        // is cut off with the rest (see `late_report`).
        self.inbound.backlog().bar(Bar::Stopping, true);
        match &self.phase {
            Phase::Running | Phase::Stopped(_) | Phase::Stopping(_) => {}
            Phase::Draining => self.phase = Phase::Stopping(StopReason::Drained),
            // The deadline decides without waiting for takes under way.
            Phase::Deciding(reason) => {
                let reason = reason.clone();
                self.read_every_report(ctx);
                self.decide_stop(reason);
            }
        }
        if !matches!(self.phase, Phase::Stopping(_)) {
            return;
        }
        // What was sent before now: reports, and jobs to hand back.
        self.catch_up(ctx);
        let handed_back = StopReason::Deadline { within };
        while let Some(job) = self.queue.pop() {
            self.hand_back(job, handed_back.clone());
        }
        self.hand_back_keyed(&handed_back);
        for (_, job) in std::mem::take(&mut self.waiting) {
            self.hand_back(job, handed_back.clone());
        }
        for slot in 0..self.slots.len() {
            let state = self.slots.get(slot).state();
            if let (Some(worker), Some(task)) = (state.worker(), state.task()) {
                worker.abort();
                self.aborting.insert(task);
                self.aborted.push(task);
                self.counts.aborted += 1;
                self.counts.in_flight -= 1;
                tell!(warn, self.name(), { task = task.as_u64(), worker = slot },
                    "{task} cut off on worker {slot}: the shutdown's deadline passed");
                self.subscribers
                    .emit(|| PoolEvent::TaskAborted { task, worker: slot });
                self.cut_off_elsewhere(task);
            }
            if !matches!(self.slots.get(slot).state(), SlotState::Gone) {
                self.let_go(slot);
                self.leave_empty(slot);
            }
        }
        self.finish_if_all_gone();
    }

    /// An answer that comes once the pool has stopped.
    pub(super) fn when_stopped(&mut self) -> ResponseFuture<StopReport> {
        if matches!(self.phase, Phase::Stopped(_)) {
            let report = self.report();
            return Box::pin(async move { report });
        }
        let (tx, rx) = oneshot::channel();
        self.stop_waiters.push(tx);
        Box::pin(async move {
            rx.await.unwrap_or(StopReport {
                reason: StopReason::Dropped,
                finished: Vec::new(),
                not_run: Vec::new(),
                aborted: Vec::new(),
            })
        })
    }
}
