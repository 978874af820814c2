//! The backlog: accepted tasks waiting for a worker, in the order they came.
//!
//! Pool handles add to it; the supervisor takes from it for idle workers, in
//! round-robin order; and a worker that has just finished a task takes the
//! next one itself, then names it in the report of the task it finished. While
//! tasks wait, then, a task costs one message (its worker's report) rather
//! than three (the job in, `Run` out, the report back), and a busy worker goes
//! from task to task without sleeping in between. The supervisor stays the one
//! bookkeeper: it learns of every job a worker took from that worker's report,
//! and until then counts the job as queued.
//!
//! Workers take jobs only while the supervisor lets them: not while a worker
//! is idle (that worker goes first, in round-robin order), not while the
//! supervisor holds older jobs of its own (due retries, which go first), and
//! not once the pool is stopping.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};

use crossbeam_utils::CachePadded;
use futures::task::AtomicWaker;

use actix::WeakRecipient;

use super::keys::Keyed;
use super::lane::Lane;
use crate::gate::Gate;
use crate::job::{Job, OpenRoute, Route};
use crate::latency::Stopwatch;
use crate::messages::Cancel;
use crate::task::Task;

/// A reason for workers to leave the backlog to the supervisor.
#[derive(Debug, Clone, Copy)]
#[repr(u8)]
pub(super) enum Bar {
    /// A worker is idle: it takes the next job, from the supervisor.
    Idle = 1,
    /// The supervisor's own queue holds older jobs.
    Held = 2,
    /// The pool is stopping: workers finish the task in hand and take no other.
    Stopping = 4,
    /// A cancel looks for a task that a worker may be taking: the supervisor
    /// waits for takes under way to end, as a stop's decision does, and no
    /// new one begins meanwhile.
    Looking = 8,
}

/// The bars under which the supervisor waits for takes under way to end.
const WAITS_FOR_TAKES: u8 = Bar::Stopping as u8 | Bar::Looking as u8;

pub(crate) struct Backlog<T: Task> {
    /// Grows a block at a time: a waiting job costs its own size and a word,
    /// and nothing is reserved for the pool's capacity.
    jobs: Lane<Job<T>>,
    /// Jobs ever added. With the supervisor's count of those it knows have
    /// left, this gives the jobs still waiting, including one that a worker
    /// took and whose report is still on its way.
    pushed: AtomicU64,
    /// Why workers may not take jobs themselves now: any of [`Bar`]'s bits.
    /// On a cache line of its own: workers on other threads read it at every
    /// take, and the handles' pushes write the fields around it.
    bars: CachePadded<AtomicU8>,
    /// The supervisor, while a stop waits for takes under way to end.
    takes_done: AtomicWaker,
    gate: Arc<Gate>,
    /// Whether the pool times its tasks: jobs are accepted here.
    stopwatch: Stopwatch,
    /// The way to the supervisor, for the handles of the jobs accepted here.
    route: Route,
    /// The route, open from the moment the supervisor has an address (before
    /// it starts: a handle may cancel its task at once) until the last of the
    /// supervisor and the pool handles lets go of this backlog.
    open: std::sync::OnceLock<OpenRoute>,
    /// Where keyed jobs go instead (see `keys.rs`): weak, so that the
    /// backlog, which the supervisor holds, does not keep it alive.
    keyed_to: std::sync::OnceLock<WeakRecipient<Keyed<T>>>,
}

/// A take from the backlog by a worker on another thread: its `taking` flag
/// stays up until this is dropped, which the worker does once its report
/// naming the job is sent.
pub(crate) struct Take<'a> {
    taking: &'a AtomicBool,
    bars: &'a AtomicU8,
    takes_done: &'a AtomicWaker,
}

impl Drop for Take<'_> {
    fn drop(&mut self) {
        // `SeqCst`, against the supervisor's look at the flag after raising
        // the stop (or looking) bar: if it saw the flag up, this sees the
        // bar, and wakes it.
        self.taking.store(false, Ordering::SeqCst);
        if self.bars.load(Ordering::SeqCst) & WAITS_FOR_TAKES != 0 {
            self.takes_done.wake();
        }
    }
}

impl<T: Task> Backlog<T> {
    pub(crate) fn new(gate: Arc<Gate>, stopwatch: Stopwatch) -> Self {
        Backlog {
            stopwatch,
            route: Route::new(),
            open: std::sync::OnceLock::new(),
            keyed_to: std::sync::OnceLock::new(),
            jobs: Lane::new(),
            pushed: AtomicU64::new(0),
            bars: CachePadded::new(AtomicU8::new(0)),
            takes_done: AtomicWaker::new(),
            gate,
        }
    }

    /// How the pool times its tasks.
    #[inline]
    pub(crate) fn stopwatch(&self) -> Stopwatch {
        self.stopwatch
    }

    /// The way to the supervisor, for a new job's handle.
    #[inline]
    pub(crate) fn route(&self) -> Route {
        self.route
    }

    /// Opens the route to the supervisor, once.
    pub(super) fn open_route(&self, supervisor: actix::WeakRecipient<Cancel>) {
        let _ = self.open.set(self.route.open(supervisor));
    }

    /// Sends keyed jobs to the supervisor, once it has an address.
    pub(super) fn send_keyed_to(&self, supervisor: WeakRecipient<Keyed<T>>) {
        let _ = self.keyed_to.set(supervisor);
    }

    /// Adds an accepted job, whose permit is held, and wakes the supervisor
    /// if it is waiting for one; a keyed job goes to the supervisor itself.
    /// If the supervisor is gone, the job drops here and hands its task back.
    #[inline]
    pub(crate) fn push(&self, job: Job<T>) {
        if job.key().is_some() {
            return self.send_keyed(job);
        }
        self.pushed.fetch_add(1, Ordering::Relaxed);
        self.jobs.push(job);
    }

    #[inline(never)]
    fn send_keyed(&self, job: Job<T>) {
        match self.keyed_to.get().and_then(WeakRecipient::upgrade) {
            Some(supervisor) => supervisor.do_send(Keyed(job)),
            // Gone: the job drops, handing its task back.
            None => drop(job),
        }
    }

    /// For a worker on the supervisor's own thread that has just finished a
    /// task: the next job, if workers may take jobs now. Its permit is still
    /// held: the worker hands it to the supervisor in its report, and the
    /// supervisor drops it once it has booked the job as running, so that the
    /// job counts as queued, and holds its place, until then.
    ///
    /// Such a worker takes and reports in one poll of its thread, which the
    /// supervisor shares, so no stop can fall in between: a look at the bars
    /// is enough.
    #[inline]
    pub(crate) fn pull_local(&self) -> Option<Job<T>> {
        if self.bars.load(Ordering::Acquire) != 0 {
            return None;
        }
        self.take()
    }

    /// [`pull_local`](Self::pull_local) for a worker on another thread,
    /// which raises its own `taking` flag for the take, until it drops the
    /// [`Take`] after its report is sent. A stop that raises its bar looks at
    /// every worker's flag afterwards, and waits for those it finds up (see
    /// `Slots::taking`); a take that begins after the bar sees it. A flag of
    /// its own, rather than a count shared by all workers, keeps workers on
    /// different threads off each other's cache lines.
    pub(crate) fn pull_shared<'a>(&'a self, taking: &'a AtomicBool) -> Option<(Job<T>, Take<'a>)> {
        // `SeqCst`, with the raising of the stop bar and the look at this
        // flag after it: either this take sees the bar, or the stop sees
        // the flag up.
        taking.store(true, Ordering::SeqCst);
        let take = Take {
            taking,
            bars: &self.bars,
            takes_done: &self.takes_done,
        };
        if self.bars.load(Ordering::SeqCst) != 0 {
            return None;
        }
        Some((self.take()?, take))
    }

    /// For the supervisor, waiting for takes under way to end: `waker` is
    /// woken when one ends under the stop or looking bar.
    pub(super) fn wake_when_takes_end(&self, waker: &Waker) {
        self.takes_done.register(waker);
    }

    /// For the supervisor: the next job, its permit still held.
    pub(super) fn take(&self) -> Option<Job<T>> {
        self.jobs.pop()
    }

    /// For the supervisor: the next job, or a wake-up when one is added.
    pub(super) fn poll_take(&self, cx: &mut Context<'_>) -> Poll<Job<T>> {
        self.jobs.poll_pop(cx)
    }

    pub(super) fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    /// Jobs ever added.
    pub(super) fn pushed(&self) -> u64 {
        self.pushed.load(Ordering::Acquire)
    }

    /// Raises or lowers one reason for workers to leave the backlog alone.
    pub(super) fn bar(&self, bar: Bar, raised: bool) {
        // `SeqCst` for the stop bar's sake: see `pull_shared`.
        if raised {
            self.bars.fetch_or(bar as u8, Ordering::SeqCst);
        } else {
            self.bars.fetch_and(!(bar as u8), Ordering::SeqCst);
        }
    }

    /// The supervisor is gone (or never started): no task is admitted any
    /// more, and every job still here, and any added later, is dropped, which
    /// hands its task back unrun and gives its place back.
    pub(super) fn close(&self) {
        self.gate.close();
        self.bar(Bar::Stopping, true);
        self.jobs.close();
    }
}
