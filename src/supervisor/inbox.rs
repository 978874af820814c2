//! The supervisor's inbox for the hot path: jobs from pool handles (the
//! [`Backlog`]), and what workers report.
//!
//! An actix message costs two allocations (its envelope and its queue node);
//! the backlog and the reports are [`Lane`]s, which grow and free a block of
//! places at a time, so a task's trip through the pool allocates next to
//! nothing here. The supervisor reads both in its own context, so it is
//! still the one place that handles what arrives.
//!
//! Reports are read as they come. Workers send them all through one channel,
//! so that a worker's exit can never overtake the result it sent before it.
//! Jobs are taken from the backlog only when a worker is idle (or the pool is
//! stopping, to hand them back); busy workers take their next job from it
//! themselves.
//!
//! A message to the supervisor's mailbox can arrive while what was sent before
//! it still waits in the inbox. A stats request reads the reports in first,
//! and counts the jobs still waiting; a status query, a stop and a drain read
//! the jobs in too ([`Supervisor::catch_up`]), so that they see every task
//! submitted before them. A job admitted on another thread while a stop is
//! under way is caught by the gate: a stop reports only once every admitted
//! job has come in and been handed back.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};

use actix::ActorFuture;

use super::Supervisor;
use super::Watched;
pub(crate) use super::backlog::Backlog;
use super::lane::Lane;
use crate::gate::{Gate, Permit};
use crate::job::Job;
use crate::task::{Task, TaskId};
use crate::worker::Attempt;

/// Messages read from the inbox in one go before other work of the
/// supervisor's (its mailbox, its timers) gets a turn.
const BATCH: usize = 256;

/// What workers report to the supervisor through its inbox.
pub(crate) enum Inbound<T: Task> {
    /// A worker finished an attempt, and took the job `next` from the
    /// backlog, if it is now running that.
    Done {
        slot: usize,
        generation: u32,
        job: Job<T>,
        result: Attempt<T>,
        next: Option<Taken<T>>,
    },
    /// A worker made its state and can take tasks.
    Ready { slot: usize, generation: u32 },
    /// A worker could not make its state, and is stopping.
    Failed {
        slot: usize,
        generation: u32,
        error: String,
    },
    /// A worker is gone (it quit, or was dropped with its arbiter).
    Exited { slot: usize, generation: u32 },
}

/// A job a worker took from the backlog itself, as its report names it.
pub(crate) struct Taken<T: Task> {
    pub(crate) id: TaskId,
    /// The job's place in the queue, given back once the supervisor has
    /// booked the job as running.
    pub(crate) permit: Option<Permit>,
    /// What the supervisor needs to watch the attempt, if it has a timeout.
    /// Boxed: most tasks have none, and every report carries this field.
    pub(crate) watch: Option<Box<Watched<T>>>,
}

/// What workers report, on a lane that counts its senders: once every
/// sender is gone, and every report read, it has ended.
struct Reports<T: Task> {
    lane: Lane<Inbound<T>>,
    senders: AtomicUsize,
}

/// The sending end of a supervisor's inbox.
pub(crate) struct Inbox<T: Task> {
    backlog: Arc<Backlog<T>>,
    reports: Arc<Reports<T>>,
}

impl<T: Task> Clone for Inbox<T> {
    fn clone(&self) -> Self {
        self.reports.senders.fetch_add(1, Ordering::Relaxed);
        Inbox {
            backlog: self.backlog.clone(),
            reports: self.reports.clone(),
        }
    }
}

impl<T: Task> Drop for Inbox<T> {
    fn drop(&mut self) {
        if self.reports.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            // The supervisor learns that its reports have ended.
            self.reports.lane.wake();
        }
    }
}

impl<T: Task> Inbox<T> {
    /// A new inbox, and the end its supervisor reads.
    pub(crate) fn new(gate: Arc<Gate>) -> (Self, InboxReader<T>) {
        let backlog = Arc::new(Backlog::new(gate));
        let reports = Arc::new(Reports {
            lane: Lane::new(),
            senders: AtomicUsize::new(1),
        });
        let reader = InboxReader {
            backlog: backlog.clone(),
            reports: reports.clone(),
            waker: None,
            taken: 0,
        };
        (Inbox { backlog, reports }, reader)
    }

    /// Where pool handles add jobs.
    pub(crate) fn backlog(&self) -> &Arc<Backlog<T>> {
        &self.backlog
    }

    /// Sends a worker's report. If the supervisor is gone there is nobody to
    /// tell; a job inside hands its task back as it drops.
    pub(crate) fn report(&self, message: Inbound<T>) {
        self.reports.lane.push(message);
    }
}

/// The supervisor's end of its inbox. The reports end once every [`Inbox`]
/// is dropped.
pub(crate) struct InboxReader<T: Task> {
    backlog: Arc<Backlog<T>>,
    reports: Arc<Reports<T>>,
    /// Wakes [`ReadInbox`], after a worker freed up outside it.
    waker: Option<Waker>,
    /// Jobs known to have left the backlog: taken by the supervisor, or by a
    /// worker whose report has been read.
    taken: u64,
}

impl<T: Task> InboxReader<T> {
    pub(super) fn backlog(&self) -> &Arc<Backlog<T>> {
        &self.backlog
    }

    pub(super) fn has_jobs(&self) -> bool {
        !self.backlog.is_empty()
    }

    /// Jobs waiting in the backlog, as far as the supervisor knows: accepted,
    /// and queued as much as those in the supervisor's own queue.
    pub(super) fn jobs_waiting(&self) -> usize {
        (self.backlog.pushed() - self.taken) as usize
    }

    /// The next report, or a wake-up when one comes; `None` once the reports
    /// have ended.
    fn poll_report(&self, cx: &mut Context<'_>) -> Poll<Option<Inbound<T>>> {
        if let Poll::Ready(message) = self.reports.lane.poll_pop(cx) {
            return Poll::Ready(Some(message));
        }
        if self.reports.senders.load(Ordering::Acquire) > 0 {
            return Poll::Pending;
        }
        // The last sender left after its last report: read that first.
        Poll::Ready(self.reports.lane.pop())
    }

    /// Counts a job taken from the backlog, by the supervisor or a worker.
    pub(super) fn count_taken(&mut self) {
        self.taken += 1;
    }

    /// Wakes [`ReadInbox`], to look at the supervisor's state again (a stop
    /// to decide).
    pub(super) fn wake(&self) {
        if let Some(waker) = &self.waker {
            waker.wake_by_ref();
        }
    }

    /// Has [`ReadInbox`] woken when a worker's take from the backlog ends
    /// under the stop bar.
    pub(super) fn wake_when_takes_end(&self) {
        if let Some(waker) = &self.waker {
            self.backlog.wake_when_takes_end(waker);
        }
    }
}

/// A supervisor dropped without stopping (its `System` stopped) hands back
/// whatever still waits, and whatever is added later.
impl<T: Task> Drop for InboxReader<T> {
    fn drop(&mut self) {
        self.backlog.close();
        self.reports.lane.close();
    }
}

/// The supervisor's standing task: reads its inbox, a batch per turn, for as
/// long as anyone can send to it.
pub(super) struct ReadInbox;

impl<T: Task> ActorFuture<Supervisor<T>> for ReadInbox {
    type Output = ();

    fn poll(
        self: Pin<&mut Self>,
        supervisor: &mut Supervisor<T>,
        ctx: &mut actix::Context<Supervisor<T>>,
        task: &mut Context<'_>,
    ) -> Poll<()> {
        let waker = &mut supervisor.inbound.waker;
        if !waker.as_ref().is_some_and(|w| w.will_wake(task.waker())) {
            *waker = Some(task.waker().clone());
        }
        let mut budget = BATCH;
        supervisor.settle_stop(ctx);
        // Reports first: each may free a worker for a job.
        let closed = loop {
            if budget == 0 {
                return come_back_later(task);
            }
            match supervisor.inbound.poll_report(task) {
                Poll::Ready(Some(message)) => {
                    supervisor.receive(message, ctx);
                    // A report that made the supervisor give up: decide now,
                    // having read every report that is in.
                    supervisor.settle_stop(ctx);
                }
                // Closed once the pool has stopped and every worker is gone;
                // by then the gate has seen every admitted job in.
                Poll::Ready(None) => break true,
                Poll::Pending => break false,
            }
            budget -= 1;
        };
        // Not looked at (so not woken for) while no worker could take a job:
        // a worker that frees up sends a report, which wakes this.
        while supervisor.takes_jobs() {
            if budget == 0 {
                return come_back_later(task);
            }
            match supervisor.inbound.backlog.poll_take(task) {
                Poll::Ready(job) => {
                    supervisor.inbound.count_taken();
                    supervisor.accept(job);
                }
                Poll::Pending => break,
            }
            budget -= 1;
        }
        if closed {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

/// More is waiting: come back after the mailbox and timers had a turn.
fn come_back_later(task: &mut Context<'_>) -> Poll<()> {
    task.waker().wake_by_ref();
    Poll::Pending
}

impl<T: Task> Supervisor<T> {
    /// Handles the reports already in the inbox, before answering a message
    /// that must see them (a stats request).
    pub(super) fn catch_up_reports(&mut self, ctx: &mut actix::Context<Self>) {
        // Only what is there now: workers on other arbiters may keep sending.
        for _ in 0..self.inbound.reports.lane.len() {
            match self.inbound.reports.lane.pop() {
                Some(message) => {
                    self.receive(message, ctx);
                    self.settle_stop(ctx);
                }
                None => break,
            }
        }
        // A report read here may have freed a worker while `ReadInbox` was
        // not watching for jobs; let it look again.
        if let Some(waker) = &self.inbound.waker {
            waker.wake_by_ref();
        }
    }

    /// Handles everything already in the inbox, reports and jobs, before
    /// answering a message that must see every job (a status query, a stop).
    pub(super) fn catch_up(&mut self, ctx: &mut actix::Context<Self>) {
        self.catch_up_reports(ctx);
        // Only what is there now: handles on other threads may keep adding.
        for _ in 0..self.inbound.jobs_waiting() {
            match self.inbound.backlog.take() {
                Some(job) => {
                    self.inbound.count_taken();
                    self.accept(job);
                }
                None => break,
            }
        }
    }

    /// Handles every report in the inbox, until none is left: for a stop's
    /// decision, once no worker can be in the middle of sending one that
    /// names a task it took. Ends: under the stop bar, workers take nothing
    /// new, so each sends at most what it has in hand.
    pub(super) fn read_every_report(&mut self, ctx: &mut actix::Context<Self>) {
        while let Some(message) = self.inbound.reports.lane.pop() {
            self.receive(message, ctx);
        }
    }

    /// The next job waiting in the backlog; it counts as submitted from here on.
    pub(super) fn next_submitted(&mut self) -> Option<Job<T>> {
        let job = self.inbound.backlog.take()?;
        self.inbound.count_taken();
        self.counts.submitted += 1;
        Some(job)
    }
}
