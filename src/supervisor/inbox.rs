//! The supervisor's inbox for the hot path: jobs from pool handles (the
//! [`Backlog`]), and what workers report.
//!
//! An actix message costs two allocations (its envelope and its queue node);
//! the backlog and the reports are [`Lane`]s, which grow and free a block of
//! places at a time, so a task's trip through the pool allocates next to
//! nothing here. The supervisor reads both in its own context, so it is
//! still the one place that handles what arrives.
//!
//! Reports are read as they come. Each worker sends them all through one
//! channel, so that its exit can never overtake the result it sent before it:
//! a worker on another arbiter through a [`Lane`], and a worker on the
//! supervisor's own thread through a plain queue ([`LocalInbox`]), which
//! costs no atomic operation and no block of places, and wakes the supervisor
//! once per batch rather than once per report.
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

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};

use actix::ActorFuture;

use super::Supervisor;
use super::Watched;
pub(crate) use super::backlog::{Backlog, Take};
use super::lane::Lane;
use crate::gate::Permit;
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
        /// How long the attempt ran, in clock ticks (0 when not timed).
        ran: u64,
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

/// What workers on other arbiters report, on a lane that counts its
/// senders: once every sender is gone, and every report read, it has ended.
struct Reports<T: Task> {
    lane: Lane<Inbound<T>>,
    senders: AtomicUsize,
}

/// What workers on the supervisor's own thread report: a queue that only
/// that thread touches, and that counts its senders too.
struct LocalReports<T: Task> {
    queue: RefCell<VecDeque<Inbound<T>>>,
    senders: Cell<usize>,
    /// The supervisor's inbox reader, to wake for a report.
    reader: RefCell<Option<Waker>>,
    /// The reader has been woken and has not read the queue since: a report
    /// needs no wake of its own.
    woken: Cell<bool>,
    /// The reader is gone: what is added now would never be read.
    closed: Cell<bool>,
}

impl<T: Task> LocalReports<T> {
    fn pop(&self) -> Option<Inbound<T>> {
        self.queue.borrow_mut().pop_front()
    }

    fn len(&self) -> usize {
        self.queue.borrow().len()
    }

    fn wake_reader(&self) {
        if self.woken.get() {
            return;
        }
        if let Some(waker) = &*self.reader.borrow() {
            self.woken.set(true);
            waker.wake_by_ref();
        }
    }

    /// Every report still here, and any added later, is dropped (a job
    /// among them hands its task back as it drops).
    fn close(&self) {
        self.closed.set(true);
        // Dropped outside the borrow: a job's drop runs user code.
        let left = std::mem::take(&mut *self.queue.borrow_mut());
        drop(left);
    }
}

/// Where a worker sends its reports, and takes its next job from: its
/// supervisor's inbox, through the path for the thread the worker runs on.
pub(crate) trait WorkerInbox<T: Task>: 'static {
    /// Sends a worker's report. If the supervisor is gone there is nobody
    /// to tell; a job inside hands its task back as it drops.
    fn report(&self, message: Inbound<T>);

    /// For a worker that has just finished a task: the next job from the
    /// backlog, if workers may take jobs now, with the take that ends once
    /// the report naming the job is sent (see `Backlog::pull_shared`).
    fn take_next<'a>(&'a self, taking: &'a AtomicBool) -> Option<(Job<T>, Option<Take<'a>>)>;
}

/// The sending end of a supervisor's inbox, for workers on other arbiters.
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

impl<T: Task> WorkerInbox<T> for Inbox<T> {
    fn report(&self, message: Inbound<T>) {
        self.reports.lane.push(message);
    }

    fn take_next<'a>(&'a self, taking: &'a AtomicBool) -> Option<(Job<T>, Option<Take<'a>>)> {
        let (job, take) = self.backlog.pull_shared(taking)?;
        Some((job, Some(take)))
    }
}

/// The sending end of a supervisor's inbox, for workers on its own thread.
pub(crate) struct LocalInbox<T: Task> {
    backlog: Arc<Backlog<T>>,
    reports: Rc<LocalReports<T>>,
}

impl<T: Task> Clone for LocalInbox<T> {
    fn clone(&self) -> Self {
        self.reports.senders.set(self.reports.senders.get() + 1);
        LocalInbox {
            backlog: self.backlog.clone(),
            reports: self.reports.clone(),
        }
    }
}

impl<T: Task> Drop for LocalInbox<T> {
    fn drop(&mut self) {
        let senders = self.reports.senders.get() - 1;
        self.reports.senders.set(senders);
        if senders == 0 {
            self.reports.wake_reader();
        }
    }
}

impl<T: Task> WorkerInbox<T> for LocalInbox<T> {
    fn report(&self, message: Inbound<T>) {
        if self.reports.closed.get() {
            drop(message);
            return;
        }
        self.reports.queue.borrow_mut().push_back(message);
        self.reports.wake_reader();
    }

    fn take_next<'a>(&'a self, _: &'a AtomicBool) -> Option<(Job<T>, Option<Take<'a>>)> {
        Some((self.backlog.pull_local()?, None))
    }
}

/// The ends of a new inbox: for workers on other arbiters, for workers on
/// the supervisor's thread, and the supervisor's own. Made on the
/// supervisor's thread, which alone may touch the second and third.
pub(crate) fn inbox<T: Task>(
    backlog: Arc<Backlog<T>>,
) -> (Inbox<T>, LocalInbox<T>, InboxReader<T>) {
    let reports = Arc::new(Reports {
        lane: Lane::new(),
        senders: AtomicUsize::new(1),
    });
    let local = Rc::new(LocalReports {
        queue: RefCell::new(VecDeque::new()),
        senders: Cell::new(1),
        reader: RefCell::new(None),
        woken: Cell::new(false),
        closed: Cell::new(false),
    });
    let reader = InboxReader {
        backlog: backlog.clone(),
        reports: reports.clone(),
        local: local.clone(),
        taken: 0,
    };
    (
        Inbox {
            backlog: backlog.clone(),
            reports,
        },
        LocalInbox {
            backlog,
            reports: local,
        },
        reader,
    )
}

/// The supervisor's end of its inbox. The reports end once every
/// [`Inbox`] and every [`LocalInbox`] is dropped.
pub(crate) struct InboxReader<T: Task> {
    backlog: Arc<Backlog<T>>,
    reports: Arc<Reports<T>>,
    local: Rc<LocalReports<T>>,
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
        if let Some(message) = self.local.pop() {
            return Poll::Ready(Some(message));
        }
        if let Poll::Ready(message) = self.reports.lane.poll_pop(cx) {
            return Poll::Ready(Some(message));
        }
        if self.reports.senders.load(Ordering::Acquire) > 0 || self.local.senders.get() > 0 {
            return Poll::Pending;
        }
        // The last sender left after its last report: read that first.
        Poll::Ready(self.reports.lane.pop())
    }

    /// A report already in, if any.
    fn next_report(&self) -> Option<Inbound<T>> {
        self.local.pop().or_else(|| self.reports.lane.pop())
    }

    /// How many reports are in now.
    fn reports_in(&self) -> usize {
        self.local.len() + self.reports.lane.len()
    }

    /// [`ReadInbox`] is being polled, with this waker: the local reports
    /// wake it through that from now on.
    fn reading(&self, waker: &Waker) {
        let mut reader = self.local.reader.borrow_mut();
        if !reader.as_ref().is_some_and(|w| w.will_wake(waker)) {
            *reader = Some(waker.clone());
        }
        self.local.woken.set(false);
    }

    /// Counts a job taken from the backlog, by the supervisor or a worker.
    pub(super) fn count_taken(&mut self) {
        self.taken += 1;
    }

    /// Wakes [`ReadInbox`], to look at the supervisor's state again (a stop
    /// to decide).
    pub(super) fn wake(&self) {
        if let Some(waker) = &*self.local.reader.borrow() {
            waker.wake_by_ref();
        }
    }

    /// Has [`ReadInbox`] woken when a worker's take from the backlog ends
    /// under the stop bar.
    pub(super) fn wake_when_takes_end(&self) {
        if let Some(waker) = &*self.local.reader.borrow() {
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
        self.local.close();
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
        let read = read_inbox(supervisor, ctx, task);
        // Once per batch of reports, not per task.
        supervisor.publish_metrics();
        read
    }
}

/// Handles what is in the inbox: a batch of reports, then jobs while a
/// worker can take one. `Ready` once the inbox has closed.
#[inline(always)]
fn read_inbox<T: Task>(
    supervisor: &mut Supervisor<T>,
    ctx: &mut actix::Context<Supervisor<T>>,
    task: &mut Context<'_>,
) -> Poll<()> {
    supervisor.inbound.reading(task.waker());
    supervisor.poll_watchdog(ctx, task);
    let mut budget = BATCH;
    supervisor.settle_stop(ctx);
    supervisor.settle_cancels(ctx);
    supervisor.settle_keys(task);
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
        for _ in 0..self.inbound.reports_in() {
            match self.inbound.next_report() {
                Some(message) => {
                    self.receive(message, ctx);
                    self.settle_stop(ctx);
                }
                None => break,
            }
        }
        // A report read here may have freed a worker while `ReadInbox` was
        // not watching for jobs; let it look again.
        self.inbound.wake();
    }

    /// Handles everything already in the inbox, reports and jobs, before
    /// answering a message that must see every job (a status query, a stop).
    pub(super) fn catch_up(&mut self, ctx: &mut actix::Context<Self>) {
        self.catch_up_reports(ctx);
        self.read_backlog();
    }

    /// Takes on every job in the backlog now, into the supervisor's own
    /// queue (or to an idle worker).
    pub(super) fn read_backlog(&mut self) {
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
        while let Some(message) = self.inbound.next_report() {
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
