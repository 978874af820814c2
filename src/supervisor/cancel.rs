//! Cancelling a task, wherever it is (see [`Cancel`](crate::messages::Cancel)).
//!
//! The supervisor first reads what is in its inbox: the workers' reports, and
//! the jobs still in the backlog, which it takes into its own queue. Every
//! task it was given before the cancel is then where it can see it:
//! - waiting in the queue, or for a retry: taken out, and ended `Cancelled`
//!   at once;
//! - owed a retry by a blocked thread: the retry is taken back, and the task
//!   ends `Cancelled` when the thread gives it back;
//! - running: its worker is asked to cut the attempt off
//!   (`WorkerLink::cut_off`), and the answer waits for the worker's report.
//!   An attempt that ended by itself as the cancel came keeps its outcome,
//!   unless that outcome was a retry, which is then not made;
//! - nowhere: it has ended, or a worker on another thread is in the middle
//!   of taking it from the backlog, its report not sent yet. The supervisor
//!   then does as a stop's decision does (`shutdown.rs`): it bars new takes
//!   ([`Bar::Looking`]), waits for those under way to end, reads their
//!   reports, and looks again. A task it still cannot find has ended, or
//!   never was: ids are handed out in order.
//!
//! Little of this touches a task's way through the pool: the supervisor
//! keeps nothing per task for it, and looks for pending cancels where an
//! attempt ends and once per batch of reports, each behind a check that
//! there are any.

use std::collections::HashMap;

use futures::channel::oneshot;
use log::debug;

use super::Supervisor;
use super::backlog::Bar;
use crate::job::Job;
use crate::messages::Cancellation;
use crate::stats::PoolEvent;
use crate::task::{Task, TaskId};

/// Whoever asked to cancel one task, waiting for the answer. The first
/// asker gets what the cancel did; a later one, for the same task, gets
/// [`Cancellation::Ended`], as does everyone if this is dropped unanswered:
/// the task ended some other way.
#[derive(Default)]
pub(super) struct Askers(Vec<oneshot::Sender<Cancellation>>);

impl Askers {
    pub(super) fn add(&mut self, answer: oneshot::Sender<Cancellation>) {
        self.0.push(answer);
    }

    pub(super) fn merge(&mut self, other: Askers) {
        self.0.extend(other.0);
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Tells the first asker `what`, and every other that the task ended.
    pub(super) fn answer(self, what: Cancellation) {
        let mut askers = self.0.into_iter();
        if let Some(first) = askers.next() {
            // An asker that gave up waiting is no one's concern.
            let _ = first.send(what);
        }
        for asker in askers {
            let _ = asker.send(Cancellation::Ended);
        }
    }
}

/// The cancels waiting for their answer.
#[derive(Default)]
pub(super) struct Cancels {
    /// Tasks whose running attempt is being cut off, until their worker's
    /// report comes (or the attempt ends some other way).
    cutting: HashMap<TaskId, Askers>,
    /// Cancels of tasks not found while a worker was in the middle of a take
    /// from the backlog: looked for again once the takes end.
    looking: Vec<(TaskId, oneshot::Sender<Cancellation>)>,
}

impl Cancels {
    /// Whoever waits for the cut-off of `id`'s attempt, which has ended.
    #[inline]
    pub(super) fn cut_off(&mut self, id: TaskId) -> Option<Askers> {
        if self.cutting.is_empty() {
            return None;
        }
        self.cutting.remove(&id)
    }
}

impl<T: Task> Supervisor<T> {
    /// Cancels task `id`, and answers through `answer` once the cancel has
    /// done what it does (see the module docs).
    pub(super) fn cancel(
        &mut self,
        id: TaskId,
        answer: oneshot::Sender<Cancellation>,
        ctx: &mut actix::Context<Self>,
    ) {
        self.catch_up(ctx);
        if let Err(answer) = self.cancel_held(id, answer) {
            self.look_for(id, answer, ctx);
        }
    }

    /// Cancels `id` if the supervisor holds it; gives `answer` back if not.
    fn cancel_held(
        &mut self,
        id: TaskId,
        answer: oneshot::Sender<Cancellation>,
    ) -> Result<(), oneshot::Sender<Cancellation>> {
        let taken_out = match self.waiting.remove(&id) {
            Some(job) => Some(job),
            None => self.queue.remove(id).or_else(|| self.keys.remove(id)),
        };
        if let Some(job) = taken_out {
            let what = match job.attempts() {
                0 => Cancellation::Queued,
                attempts => Cancellation::WaitingRetry { attempts },
            };
            self.cancel_job(job);
            let _ = answer.send(what);
            // The last task a drain waited for may have been this one.
            self.pump();
        } else if let Some(owed) = self.owed.get_mut(&id) {
            owed.cancel(answer);
        } else if let Some(slot) = self.slots.running(id) {
            if let Some(worker) = self.slots.get(slot).state().worker() {
                worker.cut_off(id);
            }
            self.cancels.cutting.entry(id).or_default().add(answer);
        } else if self.aborting.contains(&id) {
            // A shutdown's deadline cut it off: it ends `Aborted`.
            let _ = answer.send(Cancellation::Ended);
        } else {
            return Err(answer);
        }
        Ok(())
    }

    /// Looks for `id`, which the supervisor does not hold, in the takes of
    /// workers from the backlog (see the module docs).
    fn look_for(
        &mut self,
        id: TaskId,
        answer: oneshot::Sender<Cancellation>,
        ctx: &mut actix::Context<Self>,
    ) {
        self.cancels.looking.push((id, answer));
        self.inbound.backlog().bar(Bar::Looking, true);
        self.settle_looks(ctx);
    }

    /// Answers the cancels that wait for takes to end, once none is under
    /// way. Run between messages.
    #[inline]
    pub(super) fn settle_cancels(&mut self, ctx: &mut actix::Context<Self>) {
        if !self.cancels.looking.is_empty() {
            self.settle_looks(ctx);
        }
    }

    fn settle_looks(&mut self, ctx: &mut actix::Context<Self>) {
        // Registered before the look, so that a take ending after it wakes
        // the inbox reader, which comes back here.
        self.inbound.wake_when_takes_end();
        if self.slots.taking() {
            return;
        }
        // The reports of the takes that ended, naming the jobs they took.
        self.catch_up_reports(ctx);
        for (id, answer) in std::mem::take(&mut self.cancels.looking) {
            if let Err(answer) = self.cancel_held(id, answer) {
                let what = if self.gate.gave_out(id) {
                    Cancellation::Ended
                } else {
                    Cancellation::Unknown
                };
                let _ = answer.send(what);
            }
        }
        self.inbound.backlog().bar(Bar::Looking, false);
    }

    /// A running attempt of `id` ended other than by its worker's report
    /// (its worker stuck, cut off by a shutdown, or lost): a cut-off under
    /// way for it now waits for the retry it is owed, if any, or is over.
    pub(super) fn cut_off_elsewhere(&mut self, id: TaskId) {
        let Some(askers) = self.cancels.cut_off(id) else {
            return;
        };
        match self.owed.get_mut(&id) {
            Some(owed) => owed.take_askers(askers),
            // Dropped: the task ended as it did.
            None => drop(askers),
        }
    }

    /// Ends a job the supervisor holds as cancelled.
    pub(super) fn cancel_job(&mut self, job: Job<T>) {
        let (id, attempts) = (job.id(), job.attempts());
        self.counts.cancelled += 1;
        self.note_finished(id);
        debug!("{id} cancelled after {attempts} attempts");
        self.subscribers
            .emit(|| PoolEvent::TaskCancelled { task: id, attempts });
        job.cancel();
    }
}
