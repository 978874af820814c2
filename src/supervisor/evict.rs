//! Eviction ([`Overflow::DropOldest`](crate::Overflow::DropOldest)): a submit
//! that finds the queue full asks the supervisor to make room, which evicts
//! the oldest task still waiting for its first attempt.
//!
//! The supervisor first reads its inbox (reports of workers that took jobs
//! free their places; jobs in the backlog come into its own queue), so that
//! a task is evicted only if the queue is still full once every place freed
//! is counted, and so that the oldest waiting task is where it can see it:
//! in its queue, or in a key's line. The evicted task's place goes back to
//! the gate, where the submitter takes it (or, should another submitter take
//! it first, asks again). Only a running pool evicts: a stopping one refuses
//! every submit anyway.

use actix::prelude::*;

use super::{Phase, Supervisor};
use crate::dead_letters::DeadReason;
use crate::job::Job;
use crate::outcome::Outcome;
use crate::stats::PoolEvent;
use crate::task::Task;
use crate::telemetry::tell;

/// Asks the supervisor to make room in its full queue; answers whether
/// there is room now (`false`: no queued task could be evicted, or the pool
/// is stopping).
#[derive(Message)]
#[rtype(result = "bool")]
pub(crate) struct MakeRoom;

impl<T: Task> Handler<MakeRoom> for Supervisor<T> {
    type Result = bool;

    fn handle(&mut self, _: MakeRoom, ctx: &mut Self::Context) -> bool {
        self.make_room(ctx)
    }
}

impl<T: Task> Supervisor<T> {
    /// Frees a place in the queue, evicting its oldest waiting task if need
    /// be (see the module docs).
    pub(super) fn make_room(&mut self, ctx: &mut Context<Self>) -> bool {
        if self.phase != Phase::Running {
            return false;
        }
        if self.gate.has_room() {
            return true;
        }
        self.catch_up(ctx);
        if self.gate.has_room() {
            return true;
        }
        let oldest = match (self.queue.oldest_waiting(), self.keys.oldest()) {
            (Some(queued), Some(keyed)) if keyed < queued => self.keys.remove(keyed),
            (Some(queued), _) => self.queue.remove(queued),
            (None, Some(keyed)) => self.keys.remove(keyed),
            (None, None) => None,
        };
        match oldest {
            Some(job) => {
                self.evict(job);
                true
            }
            None => false,
        }
    }

    /// Ends a queued job as evicted; its task goes to the dead letters.
    fn evict(&mut self, job: Job<T>) {
        let id = job.id();
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
    }
}
