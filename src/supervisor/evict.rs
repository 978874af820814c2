//! Eviction ([`Overflow::DropOldest`](crate::Overflow::DropOldest)): a submit
//! that finds the queue full offers its task to the supervisor, which makes
//! room by evicting the oldest task still waiting for its first attempt, and
//! admits the newer task in the same step.
//!
//! The supervisor first reads its inbox (reports of workers that took jobs
//! free their places; jobs in the backlog come into its own queue), so that
//! a task is evicted only if the queue is still full once every place freed
//! is counted, and so that the oldest waiting task is where it can see it:
//! in its queue, or in a key's line. The newer task takes the evicted one's
//! place, with a new id (`Gate::reissue`), and goes into the supervisor's
//! queue at once: no other submitter takes its place first, a stop or drain
//! that comes next finds it there, and a submitter evicting right after finds
//! it to evict. Only a running pool evicts: a stopping one refuses every
//! submit anyway.
//!
//! The task travels in an [`Offer`], which the submitter can withdraw (its
//! deadline passed, or its future was dropped) until the supervisor claims
//! it: a withdrawn offer evicts nothing. A claimed one is the supervisor's
//! until its answer, and then holds the task's handle (admitted) or the task
//! (not), so that the submitter finds it whatever becomes of the answer; a
//! submitter that gave up meanwhile leaves it to the supervisor, which drops
//! the handle (the task runs) or the task.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use actix::prelude::*;

use super::{Phase, Supervisor};
use crate::contain::drop_contained;
use crate::dead_letters::DeadReason;
use crate::gate::{Permit, Refusal};
use crate::job::{Job, TaskHandle};
use crate::outcome::Outcome;
use crate::stats::PoolEvent;
use crate::task::{Task, TaskId};
use crate::telemetry::tell;

/// A task offered to a full queue, for the supervisor to make room for and
/// admit (see the module docs): the message's end.
pub(crate) struct Offer<T: Task>(Arc<Mutex<Offered<T>>>);

enum Offered<T: Task> {
    /// The submitter's: not admitted (yet), or handed back.
    Task(T),
    /// The supervisor has it, until its answer.
    InHand,
    /// The supervisor has it, and the submitter has given up: whatever the
    /// answer, the supervisor lets go of it.
    Abandoned,
    /// Admitted: its handle, for the submitter.
    Admitted(TaskHandle<T>),
    /// Taken back by the submitter, or let go of by the supervisor.
    Withdrawn,
}

impl<T: Task> Clone for Offer<T> {
    fn clone(&self) -> Self {
        Offer(self.0.clone())
    }
}

/// The submitter's end of an [`Offer`]. Dropped (its submit given up), it
/// withdraws the task, or drops the handle of a task admitted already, or
/// leaves the task to the supervisor that holds it.
pub(crate) struct Offering<T: Task>(Offer<T>);

impl<T: Task> Offering<T> {
    /// Offers `task`: the offer to send, and the submitter's end.
    pub(crate) fn new(task: T) -> (Offer<T>, Self) {
        let offer = Offer(Arc::new(Mutex::new(Offered::Task(task))));
        (offer.clone(), Offering(offer))
    }

    /// The task's handle if the supervisor admitted it, else the task,
    /// withdrawn, so that nothing is evicted for it any more; `None` while
    /// the supervisor holds it (its answer settles the offer).
    pub(crate) fn withdraw(&self) -> Option<Result<TaskHandle<T>, T>> {
        let mut offered = self.0.lock();
        match std::mem::replace(&mut *offered, Offered::Withdrawn) {
            Offered::Task(task) => Some(Err(task)),
            Offered::Admitted(handle) => Some(Ok(handle)),
            other => {
                *offered = other;
                None
            }
        }
    }
}

impl<T: Task> Drop for Offering<T> {
    fn drop(&mut self) {
        let mut offered = self.0.lock();
        let left = match std::mem::replace(&mut *offered, Offered::Withdrawn) {
            Offered::InHand | Offered::Abandoned => {
                *offered = Offered::Abandoned;
                None
            }
            other => Some(other),
        };
        drop(offered);
        // On the submitter's side: a task's `Drop` is the caller's.
        drop(left);
    }
}

impl<T: Task> Offer<T> {
    /// No user code runs under the lock, so a poisoned lock still holds a
    /// sound state.
    fn lock(&self) -> MutexGuard<'_, Offered<T>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// For the supervisor: the task, to hold until it answers; `None` if the
    /// submitter withdrew it first.
    fn claim(&self) -> Option<T> {
        let mut offered = self.lock();
        match std::mem::replace(&mut *offered, Offered::InHand) {
            Offered::Task(task) => Some(task),
            other => {
                *offered = other;
                None
            }
        }
    }

    /// For the supervisor, as it answers: the task's handle (admitted) or
    /// the task (not), for the submitter; or, if it has given up, dropped.
    fn settle(&self, admitted: Result<TaskHandle<T>, T>) {
        let mut offered = self.lock();
        if matches!(*offered, Offered::Abandoned) {
            *offered = Offered::Withdrawn;
            drop(offered);
            // An admitted task runs all the same; a refused one is user code
            // to drop here, in the supervisor.
            drop_contained("Drop of a task whose submit was given up", admitted);
            return;
        }
        *offered = match admitted {
            Ok(handle) => Offered::Admitted(handle),
            Err(task) => Offered::Task(task),
        };
    }
}

/// Asks the supervisor to make room in its full queue for the offered task,
/// and to admit it.
#[derive(Message)]
#[rtype(result = "Room")]
pub(crate) struct MakeRoom<T: Task>(pub(crate) Offer<T>);

/// What became of a [`MakeRoom`]'s offer.
pub(crate) enum Room {
    /// Admitted: its handle is in the offer.
    Admitted,
    /// Not admitted: no queued task in reach (all on their way to a
    /// worker), and no place free.
    Full,
    /// Not admitted: the pool is stopping.
    Stopped,
    /// The submitter withdrew its offer first: nothing was evicted for it.
    Withdrawn,
}

impl<T: Task> Handler<MakeRoom<T>> for Supervisor<T> {
    type Result = MessageResult<MakeRoom<T>>;

    fn handle(&mut self, MakeRoom(offer): MakeRoom<T>, ctx: &mut Self::Context) -> Self::Result {
        // Held from here to the answer, so that a submitter that gives up
        // meanwhile (from another thread) cannot waste the eviction.
        let Some(task) = offer.claim() else {
            return MessageResult(Room::Withdrawn);
        };
        let (room, admitted) = match self.place_making_room(ctx) {
            Ok((id, permit)) => {
                let timing = self.stopwatch().accepting();
                let route = self.inbound.backlog().route();
                let (job, handle) = Job::new(id, permit, task, timing, route);
                self.enqueue(job);
                (Room::Admitted, Ok(handle))
            }
            Err(Refusal::Full) => (Room::Full, Err(task)),
            Err(Refusal::Closed) => (Room::Stopped, Err(task)),
        };
        offer.settle(admitted);
        MessageResult(room)
    }
}

impl<T: Task> Supervisor<T> {
    /// A place for a task submitted now: a free one, else (in a pool that
    /// evicts) the place of the oldest task waiting in the queue, evicted
    /// for it.
    pub(super) fn place_making_room(
        &mut self,
        ctx: &mut Context<Self>,
    ) -> Result<(TaskId, Permit), Refusal> {
        if !self.gate.evicts() || self.gate.has_room() {
            return self.gate.try_admit();
        }
        match self.make_room(ctx) {
            Some(permit) => Ok(self.gate.reissue(permit)),
            // A place found free may go to another submitter first: then
            // the queue is full again, and this one waits (or is refused).
            None => self.gate.try_admit(),
        }
    }

    /// The place of the oldest task waiting in the full queue, evicted (see
    /// the module docs); `None` if a place is free already, no queued task
    /// is in reach (all on their way to a worker), or the pool is stopping.
    fn make_room(&mut self, ctx: &mut Context<Self>) -> Option<Permit> {
        if self.phase != Phase::Running {
            return None;
        }
        self.catch_up(ctx);
        // The reports read there may have freed a place, or made the pool
        // give up: a stopping pool evicts nothing.
        if self.phase != Phase::Running || self.gate.has_room() {
            return None;
        }
        let oldest = match (self.queue.oldest_waiting(), self.keys.oldest()) {
            (Some(queued), Some(keyed)) if keyed < queued => self.keys.remove(keyed),
            (Some(queued), _) => self.queue.remove(queued),
            (None, Some(keyed)) => self.keys.remove(keyed),
            (None, None) => None,
        };
        oldest.and_then(|job| self.evict(job))
    }

    /// Ends a queued job as evicted; its task goes to the dead letters, and
    /// its place is returned, for the task it makes room for.
    fn evict(&mut self, mut job: Job<T>) -> Option<Permit> {
        let id = job.id();
        let permit = job.take_permit();
        self.counts.evicted += 1;
        tell!(
            warn,
            self.name(),
            { task = id.as_u64() },
            "{id} evicted from the full queue to make room for a newer task"
        );
        self.subscribers
            .emit(|| PoolEvent::TaskEvicted { task: id });
        let task = job.resolve_keeping_task(Outcome::Evicted);
        self.send_dead_letter(id, task, 0, DeadReason::Evicted);
        permit
    }
}
