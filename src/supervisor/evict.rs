//! Making room in a full queue, for a pool that drops the oldest
//! ([`Overflow::DropOldest`](crate::Overflow::DropOldest)).
//!
//! A submit that finds the queue full takes an id, but no place, and sends
//! its job here ([`Evict`]). The supervisor reads its inbox first, so that
//! every waiting job is in its own queue, in order, and evicts the one that
//! has waited longest for its first attempt (a task waiting for a retry holds
//! no place, and is never evicted). The newcomer takes the evicted job's
//! place (its permit moves over), so the count of places never passes the
//! capacity, and goes to the back of the queue. The evicted task ends
//! [`Outcome::Evicted`] and goes to the dead-letter sink, which such a pool
//! must have.
//!
//! Should every place be held by a job a worker is in the middle of taking
//! (its report on the way), there is none to evict: those places free up as
//! the reports are read, and the newcomer waits for one of them. Until the
//! supervisor has given the newcomer a place, it is not counted anywhere, as
//! a task still on its way in.

use actix::prelude::*;
use log::debug;

use super::Supervisor;
use crate::dead_letters::DeadReason;
use crate::job::Job;
use crate::outcome::Outcome;
use crate::stats::PoolEvent;
use crate::task::Task;

/// A job accepted without a place, for the supervisor to make room for.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Evict<T: Task>(pub(crate) Job<T>);

impl<T: Task> Handler<Evict<T>> for Supervisor<T> {
    type Result = ();

    fn handle(&mut self, Evict(job): Evict<T>, ctx: &mut Self::Context) {
        self.make_room_for(job, ctx);
    }
}

impl<T: Task> Supervisor<T> {
    /// Gives `job` a place: the one of the job that has waited longest, which
    /// is evicted, or else the next place to free up.
    pub(super) fn make_room_for(&mut self, mut job: Job<T>, ctx: &mut Context<Self>) {
        self.catch_up(ctx);
        if self.phase.hands_back() {
            // Stopping: it goes back as every queued task does.
            self.counts.submitted += 1;
            let reason = self.stop_reason();
            self.hand_back(job, reason);
            self.finish_if_all_gone();
            return;
        }
        let oldest = match self.queue.remove_oldest_waiting() {
            Some(oldest) => Some(oldest),
            None => self.next_submitted(),
        };
        if let Some(mut oldest) = oldest
            && let Some(place) = oldest.take_permit()
        {
            job.give_place(place);
            self.evict(oldest);
            self.accept(job);
            return;
        }
        // Every place is held by a job a worker is taking: one frees up as
        // its report is read.
        let gate = self.gate.clone();
        let wait = async move { gate.place().await };
        ctx.spawn(wait.into_actor(self).map(move |place, supervisor, _| {
            match place {
                Ok(place) => {
                    job.give_place(place);
                    supervisor.accept(job);
                }
                // Closed meanwhile: handed back as the pool stops.
                Err(_) => {
                    supervisor.counts.submitted += 1;
                    let reason = supervisor.stop_reason();
                    supervisor.hand_back(job, reason);
                    supervisor.finish_if_all_gone();
                }
            }
            supervisor.publish_metrics();
        }));
    }

    /// Ends a job that waited longest in a full queue: evicted, its task
    /// to the dead-letter sink.
    fn evict(&mut self, job: Job<T>) {
        let (id, attempts) = (job.id(), job.attempts());
        self.counts.evicted += 1;
        self.note_finished(id);
        debug!("{id} evicted from the full queue");
        self.subscribers
            .emit(|| PoolEvent::TaskEvicted { task: id });
        let task = job.resolve_keeping_task(Outcome::Evicted { attempts });
        self.send_dead_letter(id, task, attempts, DeadReason::Evicted);
    }
}
