//! Eviction ([`Overflow::DropOldest`](crate::Overflow::DropOldest)): a submit
//! that finds the queue full asks the supervisor to make room, which evicts
//! the oldest task still waiting for its first attempt.
//!
//! The supervisor first reads its inbox (reports of workers that took jobs
//! free their places; jobs in the backlog come into its own queue), so that
//! a task is evicted only if the queue is still full once every place freed
//! is counted, and so that the oldest waiting task is where it can see it:
//! in its queue, or in a key's line. The evicted task's place goes to the
//! submitter, with a new id (`Gate::reissue`), so that no other submitter
//! takes it first. Only a running pool evicts: a stopping one refuses every
//! submit anyway. A stop decided while such a place is on its way to its
//! submitter waits for the task to come in, as it waits for any task
//! admitted before it (`Gate::reissue` never refuses), and then hands it
//! back, or a drain runs it.

use actix::prelude::*;

use super::{Phase, Supervisor};
use crate::dead_letters::DeadReason;
use crate::gate::Permit;
use crate::job::Job;
use crate::outcome::Outcome;
use crate::stats::PoolEvent;
use crate::task::Task;
use crate::telemetry::tell;

/// Asks the supervisor to make room in its full queue.
#[derive(Message)]
#[rtype(result = "Room")]
pub(crate) struct MakeRoom;

/// What a [`MakeRoom`] found or did.
pub(crate) enum Room {
    /// A place was free already (another submitter may take it first).
    Free,
    /// A task was evicted: its place, for the newer task (see
    /// `Gate::reissue`).
    Freed(Permit),
    /// No queued task in reach (all on their way to a worker), or the pool
    /// is stopping.
    None,
}

impl<T: Task> Handler<MakeRoom> for Supervisor<T> {
    type Result = MessageResult<MakeRoom>;

    fn handle(&mut self, _: MakeRoom, ctx: &mut Self::Context) -> Self::Result {
        MessageResult(self.make_room(ctx))
    }
}

impl<T: Task> Supervisor<T> {
    /// Frees a place in the queue, evicting its oldest waiting task if need
    /// be (see the module docs).
    pub(super) fn make_room(&mut self, ctx: &mut Context<Self>) -> Room {
        if self.phase != Phase::Running {
            return Room::None;
        }
        if self.gate.has_room() {
            return Room::Free;
        }
        self.catch_up(ctx);
        // A report read there may have made the pool give up: a stopping
        // pool evicts nothing.
        if self.phase != Phase::Running {
            return Room::None;
        }
        if self.gate.has_room() {
            return Room::Free;
        }
        let oldest = match (self.queue.oldest_waiting(), self.keys.oldest()) {
            (Some(queued), Some(keyed)) if keyed < queued => self.keys.remove(keyed),
            (Some(queued), _) => self.queue.remove(queued),
            (None, Some(keyed)) => self.keys.remove(keyed),
            (None, None) => None,
        };
        match oldest.and_then(|job| self.evict(job)) {
            Some(permit) => Room::Freed(permit),
            None => Room::None,
        }
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
