//! Resizing at run time: the number of slots in service changes; a slot
//! taken out of service (retired) keeps its number, its worker quits once it
//! holds no task, and it is the first brought back by a later growth.
//!
//! A retired slot's worker quits as every worker does (see
//! [`WorkerLink::quit`](crate::worker::WorkerLink::quit)): it finishes the
//! task in hand and takes no other from the backlog, so shrinking never
//! loses or reruns a task. Should it have taken one just before it was told
//! (its report is on its way), it runs that one too, booked as any other.
//! No worker is started in a retired slot: not after a panic, a loss, a
//! stuck thread or a restart's backoff.

use actix::prelude::*;
use log::debug;

use super::slots::SlotState;
use super::{Phase, Supervisor};
use crate::config::MAX_WORKERS;
use crate::error::ResizeError;
use crate::messages::Resized;
use crate::stats::PoolEvent;
use crate::task::Task;
use crate::telemetry::tell;

/// Asks for the number of slots in service, for the durable worker, which
/// claims as many jobs as the pool can hold.
#[derive(Message)]
#[rtype(result = "usize")]
pub(crate) struct PoolSize;

impl<T: Task> Handler<PoolSize> for Supervisor<T> {
    type Result = usize;

    fn handle(&mut self, _: PoolSize, _: &mut Self::Context) -> usize {
        self.slots.in_service()
    }
}

impl<T: Task> Supervisor<T> {
    /// Keeps `to` slots in service: starts workers in the slots brought in,
    /// and tells the workers of those retired to quit.
    pub(super) fn resize(&mut self, to: usize) -> Result<Resized, ResizeError> {
        if to == 0 {
            return Err(ResizeError::ZeroWorkers);
        }
        if to > MAX_WORKERS {
            return Err(ResizeError::TooManyWorkers { max: MAX_WORKERS });
        }
        // A drain's workers go once the queue is dry: there is nothing to
        // size any more.
        if self.phase != Phase::Running {
            return Err(ResizeError::Stopped);
        }
        let from = self.slots.in_service();
        if to == from {
            return Ok(Resized { from, to });
        }
        tell!(
            info,
            self.name(),
            {},
            "worker pool resized from {from} to {to} workers"
        );
        self.subscribers.emit(|| PoolEvent::Resized { from, to });
        if to > from {
            for slot in self.slots.grow(to - from) {
                self.spawn_worker(slot);
            }
        } else {
            for slot in self.slots.shrink(from - to) {
                self.retire(slot);
            }
        }
        Ok(Resized { from, to })
    }

    /// Tells the worker of a slot just retired to quit after the task in
    /// hand; a slot without a worker is retired at once.
    fn retire(&mut self, slot: usize) {
        self.quit(slot);
        if matches!(self.slots.get(slot).state(), SlotState::Gone) {
            self.leave_empty(slot);
        }
    }

    /// The slot's worker is gone, and none is wanted in its place: the
    /// slot was retired, or the pool is on its way out.
    pub(super) fn leave_empty(&mut self, slot: usize) {
        if self.slots.is_retired(slot) {
            debug!("worker slot {slot} retired");
            self.subscribers
                .emit(|| PoolEvent::WorkerRetired { worker: slot });
        }
        if self.phase == Phase::Draining {
            // A retired slot's last task may have been what the drain
            // waited for.
            self.quit_idle_if_drained();
        }
        self.finish_if_all_gone();
    }

    /// Whether the slot is to get a worker after losing one: it is in
    /// service, and the pool still runs (or drains, with work left).
    pub(super) fn wants_worker(&self, slot: usize) -> bool {
        if self.slots.is_retired(slot) {
            return false;
        }
        match self.phase {
            Phase::Running => true,
            Phase::Draining => self.drain_wants_workers(),
            Phase::Deciding(_) | Phase::Stopping(_) | Phase::Stopped(_) => false,
        }
    }
}
