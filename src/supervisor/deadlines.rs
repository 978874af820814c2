//! Deadlines the supervisor keeps itself (ARCHITECTURE.md, "The promise", rule 9).
//!
//! A worker enforces its attempt's timeout with a timer on its own thread;
//! that works until the task blocks that thread (a blocking call, a busy
//! loop), and then nothing on the thread runs, the timer included. So the
//! supervisor watches every attempt that has a deadline too: the [`Watch`]
//! in the attempt's slot, and one standing timer ([`Watchdog`]) set to the
//! earliest deadline plus a grace. A worker that has not reported by then is
//! stuck, and the supervisor gives up on it:
//!
//! - the attempt ends there: `TimedOut` (through the task's cell, since the
//!   task itself is still in the blocked thread's hands), or, if the task has
//!   an attempt left, a retry owed to it once the thread gives it back;
//! - the slot is reported stuck (`PoolEvent::WorkerStuck`, `Stats::stuck`)
//!   and gets a fresh worker at once, on a fresh arbiter if it had a
//!   dedicated one (idle workers on the blocked arbiter move with it), so the
//!   pool keeps its N working slots;
//! - whatever the old worker reports later is late: its result is discarded,
//!   and its job goes to the retry it is owed, if any.
//!
//! The worker and the supervisor agree on who ended the attempt through the
//! worker's seat (see `line::Sender::abandon`): a worker that ends its attempt
//! first reports as usual, one given up on takes nothing more.
//!
//! Workers on the supervisor's own arbiter share its thread: a task that
//! blocks it blocks the supervisor too, and nothing can be noticed until it
//! returns. Then the worker finds its deadline passed and reports `TimedOut`
//! in the same turn, before the supervisor's timer can run; should that
//! timer run first (a task that returns `Pending` after blocking), the
//! worker is counted stuck and replaced like any other. Tasks that may block
//! belong on dedicated arbiters (`PoolBuilder::arbiters`).

use std::pin::Pin;
use std::task::Context;
use std::time::Duration;

use actix::clock::{Instant, Sleep};
use futures::channel::oneshot;
use log::debug;

use crate::telemetry::tell;

use super::cancel::Askers;
use super::slots::SlotState;
use super::{Supervisor, Taken};
use crate::contain::drop_contained;
use crate::dead_letters::DeadReason;
use crate::job::{Job, Resolver};
use crate::messages::Cancellation;
use crate::retry::RetryPolicy;
use crate::stats::{PoolEvent, RestartReason};
use crate::task::{Task, TaskId};
use crate::worker::Attempt;

/// An attempt with a deadline, as the supervisor watches it.
pub(super) struct Watch<T: Task> {
    pub(super) task: TaskId,
    pub(super) attempt: u32,
    /// The worker's number for this watched attempt.
    pub(super) seq: u64,
    /// When to look at it: the deadline plus the grace, pushed on by a grace
    /// each time the worker turns out not to be running it.
    check_at: Instant,
    /// Whether the task would get another attempt after timing out.
    retry: bool,
    resolver: Option<Resolver<T>>,
}

/// A task whose worker was given up on while it had an attempt left: it is
/// retried once the blocked thread gives it back.
pub(super) struct Owed<T: Task> {
    /// The slot its stuck worker had.
    slot: usize,
    attempts: u32,
    resolver: Option<Resolver<T>>,
    /// Cancelled meanwhile: who asked. It gets no retry, and ends cancelled
    /// once the thread gives it back (or timed out, if the pool stops first).
    cancelled: Askers,
}

impl<T: Task> Owed<T> {
    pub(super) fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Takes back the retry, for a cancel: see `cancelled`.
    pub(super) fn cancel(&mut self, answer: oneshot::Sender<Cancellation>) {
        self.cancelled.add(answer);
    }

    /// Takes back the retry, for the cancels that were cutting its attempt off.
    pub(super) fn take_askers(&mut self, askers: Askers) {
        self.cancelled.merge(askers);
    }
}

/// What the supervisor needs to watch an attempt that has a timeout. Made
/// where the job is when the attempt is handed out (the supervisor, or the
/// worker that takes the job itself), since the task is in use once it runs.
pub(crate) struct Watched<T: Task> {
    /// How long the attempt may run, from when its worker begins it.
    timeout: Duration,
    /// Whether a timed-out attempt would be retried.
    retry: bool,
    /// The supervisor's hold on the job's cell.
    resolver: Option<Resolver<T>>,
}

impl<T: Task> Watched<T> {
    /// For attempt `attempt` of `job`, whose timeout is `timeout`: whether a
    /// timeout would be retried (by the task's own policy, or else
    /// `pool_retry`), and a hold on the job's cell.
    pub(crate) fn of(
        job: &mut Job<T>,
        timeout: Duration,
        pool_retry: RetryPolicy,
        attempt: u32,
    ) -> Self {
        Watched {
            timeout,
            retry: job
                .retry_policy()
                .unwrap_or(pool_retry)
                .allows_another(attempt),
            resolver: job.resolver(),
        }
    }
}

impl<T: Task> Supervisor<T> {
    /// Books the start of `task`'s attempt `attempt` in `slot`, which has a
    /// timeout, to watch it.
    pub(super) fn watch(&mut self, slot: usize, task: TaskId, attempt: u32, watched: Watched<T>) {
        let timeout = watched.timeout;
        let entry = self.slots.get_mut(slot);
        // Counted whatever follows: the worker counts every attempt with a
        // timeout the same way (see `line::Sender::abandon`).
        entry.watched += 1;
        // The worker begins the attempt at the earliest now, so its deadline
        // is no earlier than this; the check reads the real one.
        let check_at = later(
            Instant::now(),
            timeout.saturating_add(self.config.stuck_grace),
        );
        entry.watch = Some(Watch {
            task,
            attempt,
            seq: entry.watched,
            check_at,
            retry: watched.retry,
            resolver: watched.resolver,
        });
        if self.next_check.is_none_or(|at| check_at < at) {
            self.next_check = Some(check_at);
            // The watchdog shares the actor's task with the inbox reader:
            // a wake for one is a wake for both.
            self.inbound.wake();
        }
    }

    /// Looks at every watched attempt whose time has come; gives up on the
    /// workers still running theirs.
    fn check_deadlines(&mut self, ctx: &mut actix::Context<Self>) {
        let now = Instant::now();
        let grace = self.config.stuck_grace;
        let mut next = None::<Instant>;
        for slot in 0..self.slots.len() {
            let due = self
                .slots
                .get(slot)
                .watch
                .as_ref()
                .is_some_and(|watch| watch.check_at <= now);
            if due {
                let Some(mut watch) = self.slots.get_mut(slot).watch.take() else {
                    continue;
                };
                let state = self.slots.get(slot).state();
                let worker = state.worker().filter(|_| state.task() == Some(watch.task));
                // The deadline the worker set when it began the attempt.
                let running_until = worker.and_then(|w| w.running_until(watch.seq));
                match running_until.map(|deadline| later(deadline, grace)) {
                    Some(stuck_at) if stuck_at <= now => {
                        if worker.is_some_and(|w| w.abandon(watch.seq)) {
                            self.give_up_on(slot, watch, ctx);
                            continue;
                        }
                        // It ended the attempt just now: its report is on its way.
                        watch.check_at = later(now, grace);
                    }
                    Some(stuck_at) => watch.check_at = stuck_at,
                    // Ended (its report is on its way), or not begun yet
                    // (its thread is busy): look again a grace later.
                    None => watch.check_at = later(now, grace),
                }
                self.slots.get_mut(slot).watch = Some(watch);
            }
            if let Some(watch) = &self.slots.get(slot).watch {
                next = Some(next.map_or(watch.check_at, |n| n.min(watch.check_at)));
            }
        }
        self.next_check = next;
    }

    /// The worker in `slot` is stuck in the watched attempt: end the attempt,
    /// report the slot stuck, and put a fresh worker in it.
    fn give_up_on(&mut self, slot: usize, watch: Watch<T>, ctx: &mut actix::Context<Self>) {
        let Watch {
            task,
            attempt,
            retry,
            resolver,
            ..
        } = watch;
        let grace = self.config.stuck_grace;
        tell!(warn, self.name(), { task = task.as_u64(), attempt = attempt, worker = slot },
            "worker {slot} is stuck: {task} ran more than {grace:?} past its deadline; \
             a fresh worker takes its place");
        let entry = self.slots.get_mut(slot);
        entry.stuck += 1;
        entry.tasks_run += 1;
        self.counts.stuck += 1;
        self.counts.in_flight -= 1;
        self.subscribers.emit(|| PoolEvent::WorkerStuck {
            worker: slot,
            task,
            attempt,
        });
        if retry && self.phase.dispatches() {
            debug!("{task} will be retried once its blocked thread gives it back");
            let owed = Owed {
                slot,
                attempts: attempt,
                resolver,
                cancelled: Askers::default(),
            };
            self.owed.insert(task, owed);
        } else {
            self.time_out_owed(slot, task, attempt, resolver.as_ref());
            self.note_finished(task);
        }
        self.cut_off_elsewhere(task);
        self.replace_stuck_worker(slot, ctx);
    }

    /// Ends a task whose worker is stuck as `TimedOut`, through its cell.
    fn time_out_owed(
        &mut self,
        slot: usize,
        task: TaskId,
        attempts: u32,
        resolver: Option<&Resolver<T>>,
    ) {
        if resolver.is_some_and(|resolver| resolver.time_out(attempts)) {
            self.counts.timed_out += 1;
            tell!(warn, self.name(), { task = task.as_u64(), attempts = attempts, worker = slot },
                "{task} timed out on worker {slot}, stuck");
            self.subscribers.emit(|| PoolEvent::TaskTimedOut {
                task,
                worker: slot,
                attempts,
            });
        } else {
            // The job was dropped meanwhile (its arbiter gone), which handed
            // the task back to its handle as `NotRun`: counted as such.
            self.counts.not_run += 1;
            self.not_run.push(task);
        }
    }

    /// A fresh worker for a slot whose worker is stuck, on a thread that is
    /// not blocked; idle workers on the same blocked arbiter move too, and
    /// quitting ones there are let go of. Stuck workers count against the
    /// restart limit, as crashed ones do; a slot retired by a resize gets no
    /// fresh worker, and its stuck one counts as no restart.
    fn replace_stuck_worker(&mut self, slot: usize, ctx: &mut actix::Context<Self>) {
        let arbiter = self.slots.get(slot).arbiter;
        // Dropping the line leaves the stuck worker to end by itself: it
        // reports once its thread comes back, and takes nothing more.
        self.let_go(slot);
        let retired = arbiter.and_then(|id| self.placement.retire(id));
        if self.slots.is_retired(slot) {
            self.leave_empty(slot);
        } else {
            let entry = self.slots.get_mut(slot);
            entry.restarts += 1;
            let restarts = entry.restarts;
            self.counts.restarts += 1;
            self.subscribers.emit(|| PoolEvent::WorkerRestarted {
                worker: slot,
                reason: RestartReason::Stuck,
                restarts,
                delay: Duration::ZERO,
            });
            let policy = self.config.restarts;
            if !self.restart_window.allow(Instant::now(), &policy) {
                self.give_up(&RestartReason::Stuck, ctx);
            }
            if !self.wants_worker(slot) {
                self.leave_empty(slot);
                return;
            }
            self.spawn_worker(slot);
        }
        if !self.phase.dispatches() {
            return;
        }
        // Workers started on the retired arbiter without a task in hand
        // move off it; those told to quit there could not, blocked.
        if let Some((index, places)) = retired {
            for sibling in (0..self.slots.len()).filter(|&s| s != slot && s % places == index) {
                if self.slots.get(sibling).arbiter != arbiter {
                    continue;
                }
                match self.slots.get(sibling).state() {
                    SlotState::Idle(_) | SlotState::Starting(_) => {
                        debug!("worker {sibling} moves off the blocked arbiter");
                        self.let_go(sibling);
                        self.spawn_worker(sibling);
                    }
                    SlotState::Quitting { task: None, .. } => {
                        self.let_go(sibling);
                        self.leave_empty(sibling);
                    }
                    _ => {}
                }
            }
        }
        self.pump();
    }

    /// A report from a worker the supervisor gave up on (stuck, or cut off by
    /// a shutdown's deadline): its result is discarded; its job goes to the
    /// retry it is owed or to the outcome the shutdown gave it, or else, its
    /// outcome already given, is let go.
    pub(super) fn late_report(
        &mut self,
        slot: usize,
        mut job: Job<T>,
        result: Attempt<T>,
        next: Option<Taken<T>>,
        ctx: &mut actix::Context<Self>,
    ) {
        let id = job.id();
        drop_contained("Drop of a late result", result);
        if let Some(owed) = self.owed.remove(&id) {
            drop(owed.resolver);
            if !owed.cancelled.is_empty() {
                let attempts = job.attempts();
                self.cancel_job(job);
                owed.cancelled
                    .answer(Cancellation::WaitingRetry { attempts });
                // A drain may have waited for that retry alone.
                self.pump();
            } else if let Some(crashes) = self.crashed_too_often(&mut job) {
                // A worker stuck in it counts as one it crashed: a task that
                // blocks every thread it runs on is a poison task too.
                self.quarantine(slot, job, Attempt::TimedOut, crashes);
                self.pump();
            } else {
                self.retry_later(slot, job, ctx);
            }
        } else if self.aborting.remove(&id) {
            job.abort();
        } else {
            // Its outcome was given already: timed out while the thread
            // was blocked. The task itself comes only now.
            debug!("{id}: a late result from worker {slot} discarded");
            let attempts = job.attempts();
            let task = self.config.dead_letters.is_some().then(|| job.into_task());
            self.send_dead_letter(id, task.flatten(), attempts, DeadReason::TimedOut);
        }
        if let Some(taken) = next {
            self.took_after_cut_off(slot, taken);
        }
        // A place given back may have been the last a stop waited for.
        self.finish_if_all_gone();
    }

    /// A worker cut off by a shutdown's deadline had taken a job from the
    /// backlog just before: the job is booked as taken, and as cut off with
    /// the rest. The worker gives it back (unstarted, if it saw the abort in
    /// time) and it ends `Aborted`.
    fn took_after_cut_off(&mut self, slot: usize, taken: Taken<T>) {
        let id = taken.id;
        self.inbound.count_taken();
        self.counts.submitted += 1;
        drop(taken);
        self.counts.aborted += 1;
        self.aborting.insert(id);
        self.aborted.push(id);
        tell!(warn, self.name(), { task = id.as_u64(), worker = slot },
            "{id} cut off on worker {slot}, which took it as the shutdown's deadline passed");
        self.subscribers.emit(|| PoolEvent::TaskAborted {
            task: id,
            worker: slot,
        });
    }

    /// Ends every task still owed a retry by a blocked thread as `TimedOut`:
    /// the pool is stopping, and does not wait for such a thread.
    pub(super) fn settle_owed(&mut self) {
        for (task, owed) in std::mem::take(&mut self.owed) {
            debug!("{task}: its thread is still blocked and the pool is stopping");
            self.time_out_owed(owed.slot, task, owed.attempts, owed.resolver.as_ref());
            self.note_finished(task);
        }
    }

    /// Lets go of the worker in `slot`, which is stuck or cut off by a
    /// shutdown's deadline: the slot has no worker from now on, and whatever
    /// the old one reports is late. Its arbiter is kept running until it has
    /// exited, so that it can hand back what it holds.
    pub(super) fn let_go(&mut self, slot: usize) {
        let entry = self.slots.get_mut(slot);
        entry.watch = None;
        let (generation, arbiter) = (entry.generation, entry.arbiter);
        // Reports from the old worker no longer match the slot.
        entry.generation = generation.wrapping_add(1);
        if self.slots.get(slot).state().worker().is_some() {
            self.let_go_of.insert((slot, generation), arbiter);
            if let Some(arbiter) = arbiter {
                self.placement.hold(arbiter);
            }
        }
        self.slots.set(slot, SlotState::Gone);
    }
}

/// The supervisor's standing timer for the deadlines it watches, set to
/// `Supervisor::next_check`. The inbox reader polls it (see
/// [`Supervisor::poll_watchdog`]): a future of its own in the actor's
/// context would be polled on every wake of the actor, which is every task.
pub(super) struct Watchdog {
    sleep: Pin<Box<Sleep>>,
    set_for: Option<Instant>,
}

impl Watchdog {
    pub(super) fn new() -> Self {
        Watchdog {
            sleep: Box::pin(actix::clock::sleep_until(Instant::now())),
            set_for: None,
        }
    }
}

impl<T: Task> Supervisor<T> {
    /// Checks the deadlines whose time has come, and sets the watchdog for
    /// the next; wakes `task` when that comes.
    pub(super) fn poll_watchdog(&mut self, ctx: &mut actix::Context<Self>, task: &mut Context<'_>) {
        while let Some(at) = self.next_check {
            let watchdog = &mut self.watchdog;
            if watchdog.set_for != Some(at) {
                watchdog.sleep.as_mut().reset(at);
                watchdog.set_for = Some(at);
            }
            if watchdog.sleep.as_mut().poll(task).is_pending() {
                return;
            }
            watchdog.set_for = None;
            self.check_deadlines(ctx);
            self.settle_stop(ctx);
        }
    }
}

/// `at + by`, or as late as the clock goes: user settings and timeouts may
/// be as long as `Duration::MAX`, and `Instant + Duration` panics on overflow.
fn later(at: Instant, by: Duration) -> Instant {
    at.checked_add(by)
        .or_else(|| at.checked_add(crate::job::LONGEST_TIMEOUT))
        .unwrap_or(at)
}
