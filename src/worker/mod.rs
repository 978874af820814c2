//! A worker: makes its state, then runs the tasks its supervisor sends it, one
//! at a time, and reports how each attempt went. While tasks wait in the
//! backlog, a worker that finishes one takes the next itself, and says so in
//! its report.
//!
//! A worker is a task on its arbiter rather than an actix actor, and its
//! orders come through a line of its own ([`line`](mod@line)) rather than as actix
//! messages: it is woken once per task it is sent, and an actor would pay on
//! each wake for a look at its (unused) mailbox and for its context's
//! bookkeeping, and two allocations per message. Its loop runs each task's
//! future in place, unboxed. What made it an actor, a life of its own on an
//! arbiter, it keeps: it is spawned there, and when it ends, however it ends,
//! its seat tells the supervisor.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use actix::clock::Instant;
use actix_rt::ArbiterHandle;

use crate::config::{Config, StateFactory};
use crate::contain::{catch, contain, drop_contained};
use crate::job::Job;
use crate::latency::{self, Stopwatch};
use crate::supervisor::{Inbound, Inbox, LocalInbox, Taken, Watched, WorkerInbox};
use crate::task::{Task, TaskContext};
use crate::telemetry::AttemptSpan;

mod line;

/// What a supervisor tells its worker.
enum Order<T: Task> {
    /// Run one attempt of this job, for at most this long from its start
    /// (`Err`: the task's `timeout` panicked, with this message).
    Run(Job<T>, Result<Option<Duration>, String>),
    /// The quit channel: finish the task in hand, then stop. Orders are read
    /// one at a time, so it is read only once the task in hand is done.
    Quit,
}

/// The supervisor's end of the line to one worker.
pub(crate) struct WorkerLink<T: Task>(line::Sender<Order<T>>);

impl<T: Task> WorkerLink<T> {
    /// Gives the worker a job. If the worker is gone, the job waits unread
    /// and drops with the line, handing its task back, once the supervisor
    /// lets go of the link on the worker's exit report, which accounts for it.
    pub(crate) fn run(&self, job: Job<T>, timeout: Result<Option<Duration>, String>) {
        self.0.send(Order::Run(job, timeout));
    }

    /// Gives up on the worker if it still runs its watched attempt `seq`
    /// (see `line::Sender::abandon`).
    pub(crate) fn abandon(&self, seq: u64) -> bool {
        self.0.abandon(seq)
    }

    /// The deadline of the watched attempt `seq`, if the worker runs it now.
    pub(crate) fn running_until(&self, seq: u64) -> Option<Instant> {
        self.0.running_until(seq)
    }

    /// Asks the worker to drop the attempt in hand at once, and to take
    /// nothing more.
    pub(crate) fn abort(&self) {
        self.0.abort();
    }

    /// Asks the worker to drop its attempt of task `id`, if it runs one (a
    /// cancel); it goes on to the next task.
    pub(crate) fn cut_off(&self, id: crate::task::TaskId) {
        self.0.cut_off(id.as_u64());
    }

    /// The quit channel: the worker finishes the task in hand, takes no
    /// other from the backlog, and ends.
    pub(crate) fn quit(&self) {
        self.0.take_nothing_more();
        self.0.send(Order::Quit);
    }

    /// Whether the worker is in the middle of a take from the backlog.
    pub(crate) fn is_taking(&self) -> bool {
        self.0.taking().load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// How one attempt ended, as the worker saw it.
pub(crate) enum Attempt<T: Task> {
    Returned(Result<T::Output, T::Error>),
    /// With the panic's message, boxed: a thin pointer keeps every report
    /// (most of which carry no message) a word smaller; panics are rare.
    #[allow(clippy::box_collection)]
    Panicked(Box<String>),
    TimedOut,
    /// The supervisor asked for the attempt to be dropped (a shutdown's
    /// deadline passed, or the task was cancelled).
    Aborted,
}

/// What a worker needs to know about its place in the pool.
pub(crate) struct Seat<T: Task, I: WorkerInbox<T>> {
    slot: usize,
    generation: u32,
    /// Its supervisor's inbox, through the path for the worker's thread.
    inbox: I,
    state: StateFactory<T::State>,
    timeout: Option<Duration>,
    /// The pool's retry policy, for tasks without one of their own.
    retry: crate::retry::RetryPolicy,
    /// The pool's name, for each attempt's span.
    pool: Option<Arc<str>>,
    /// Whether attempts are timed.
    stopwatch: Stopwatch,
}

impl<T: Task, I: WorkerInbox<T>> Seat<T, I> {
    pub(crate) fn new(slot: usize, generation: u32, inbox: I, config: &Config<T>) -> Self {
        Seat {
            slot,
            generation,
            inbox,
            state: config.state.clone(),
            timeout: config.task_timeout,
            retry: config.retry,
            pool: config.name.clone(),
            stopwatch: Stopwatch::new(config.latency),
        }
    }
}

impl<T: Task, I: WorkerInbox<T>> Seat<T, I> {
    /// Reports an attempt's end (and how long it ran, in clock ticks), and
    /// the job taken from the backlog next.
    #[inline]
    fn done(&self, job: Job<T>, result: Attempt<T>, ran: u64, next: Option<Taken<T>>) {
        self.inbox.report(Inbound::Done {
            slot: self.slot,
            generation: self.generation,
            job,
            result,
            ran,
            next,
        });
    }
}

/// The seat reports the worker's exit when it is dropped: when the worker's
/// loop ends, when its arbiter stops and drops it mid-task, and when it is
/// sent to an arbiter that has already stopped and is never started at all.
impl<T: Task, I: WorkerInbox<T>> Drop for Seat<T, I> {
    fn drop(&mut self) {
        self.inbox.report(Inbound::Exited {
            slot: self.slot,
            generation: self.generation,
        });
    }
}

/// Starts a worker for `seat` on the current arbiter (its supervisor's), and
/// returns the line to it.
pub(crate) fn start_here<T: Task>(seat: Seat<T, LocalInbox<T>>) -> WorkerLink<T> {
    let (link, orders) = line::line();
    actix_rt::spawn(work(seat, orders));
    WorkerLink(link)
}

/// Starts a worker for `seat` on `arbiter`, and returns the line to it.
pub(crate) fn start_on<T: Task>(seat: Seat<T, Inbox<T>>, arbiter: ArbiterHandle) -> WorkerLink<T> {
    let (link, orders) = line::line();
    // The worker's future holds its state and its task's future, which need
    // not be `Send`: it is made on the arbiter's own thread.
    arbiter.spawn_fn(move || {
        actix_rt::spawn(work(seat, orders));
    });
    WorkerLink(link)
}

/// A worker's life: makes its state (a factory that fails or panics is
/// reported, and the worker ends), says it is ready, then serves orders.
async fn work<T: Task, I: WorkerInbox<T>>(seat: Seat<T, I>, orders: line::Receiver<Order<T>>) {
    let Seat {
        slot, generation, ..
    } = seat;
    let error = match catch(|| (seat.state)(slot)) {
        Ok(Ok(state)) => {
            seat.inbox.report(Inbound::Ready { slot, generation });
            let cx = serve(&seat, orders, TaskContext::new(slot, state)).await;
            drop_contained("Drop of a worker's state", cx);
            return;
        }
        Ok(Err(error)) => error,
        Err(message) => format!("panicked: {message}"),
    };
    seat.inbox.report(Inbound::Failed {
        slot,
        generation,
        error,
    });
}

/// The worker's loop: one attempt per `Run`, its result sent back with the
/// job, until `Quit` (or the supervisor drops the line). After each attempt
/// the worker takes the next job from the backlog itself, if one waits and
/// the supervisor lets it, and says so in the same report; it goes back to
/// its orders only when it has nothing in hand. Gives the worker's state
/// back at the end, for its owner to drop.
///
/// An attempt with a deadline is watched: the worker marks it running in its
/// seat, and if the supervisor gave up on it meanwhile (the thread was stuck
/// past the deadline), the worker reports its result, which the supervisor
/// discards, and ends without taking anything more.
async fn serve<T: Task, I: WorkerInbox<T>>(
    seat: &Seat<T, I>,
    mut orders: line::Receiver<Order<T>>,
    mut cx: TaskContext<T::State>,
) -> TaskContext<T::State> {
    let mut watched: u64 = 0;
    // Tasks taken from the backlog since the worker last gave its thread up
    // on purpose (not reset when it waits: at worst it yields a little early).
    let mut in_a_row: u32 = 0;
    while let Some(Order::Run(mut job, mut timeout)) = orders.recv().await {
        let mut started = seat.stopwatch.now();
        loop {
            let id = job.id();
            let (task, attempt) = job.start_attempt();
            cx.begin(id, attempt);
            let span = AttemptSpan::new(seat.pool.as_deref(), id, attempt, seat.slot);
            // The attempt's time starts now, as it begins, not when it was
            // handed out: it may have waited for this thread.
            let deadline = match &timeout {
                Ok(timeout) => timeout.map(deadline_after),
                Err(_) => None,
            };
            if let Some(deadline) = deadline {
                watched += 1;
                orders.begin_watched(watched, deadline);
            }
            // The attempt runs in place, in this future (see `Attempting`),
            // unless it was cut off (cancelled) as it was handed out: then
            // none of its code runs.
            let result = if orders.drops(id.as_u64()) {
                Attempt::Aborted
            } else {
                match timeout.map(|_| catch(|| span.in_scope(|| task.run(&mut cx)))) {
                    Ok(Ok(run)) => {
                        // Dropped inside `catch_unwind`: its `Drop` is the task's
                        // code too.
                        let mut run = std::pin::pin!(Some(run));
                        // Without a deadline there is no timer: most tasks have none.
                        let timer = std::pin::pin!(deadline.map(actix_rt::time::sleep_until));
                        let ended = match run.as_mut().as_pin_mut() {
                            Some(run) => {
                                Attempting::new(id, run, timer, deadline, &orders, &span).await
                            }
                            // Not reached: `run` was filled just above.
                            None => Attempt::Aborted,
                        };
                        end_attempt(run, ended, &span)
                    }
                    // `Task::timeout` panicked, or the call that makes the future.
                    Ok(Err(message)) | Err(message) => Attempt::Panicked(Box::new(message)),
                }
            };
            let ended = seat.stopwatch.now();
            job.started_at(started);
            let ran = latency::ran(started, ended);
            if deadline.is_some() && !orders.end_watched(watched) {
                seat.done(job, result, ran, None);
                return cx;
            }
            // A worker whose task panicked is replaced, and one told to
            // quit is on its way out: they take nothing more.
            let took = match result {
                Attempt::Panicked(_) => None,
                _ if !orders.may_take() => None,
                _ => seat.inbox.take_next(orders.taking()),
            };
            let Some((mut next, take)) = took else {
                seat.done(job, result, ran, None);
                break;
            };
            let next_timeout = next.timeout(seat.timeout);
            // For the supervisor, should this attempt get stuck: whether a
            // timeout would be retried (asked now: the task will be in use
            // then), and a hold on the task's cell.
            let watch = match &next_timeout {
                Ok(Some(timeout)) => {
                    Some(Box::new(Watched::of(&mut next, *timeout, seat.retry, 1)))
                }
                _ => None,
            };
            let taken = Taken {
                id: next.id(),
                permit: next.take_permit(),
                watch,
            };
            seat.done(job, result, ran, Some(taken));
            // The take is over once its report is sent (see `Backlog::pull_shared`).
            drop(take);
            if orders.aborted() {
                // A shutdown's deadline passed while this worker took the
                // job: it is given back unstarted, and ends `Aborted`.
                seat.done(next, Attempt::Aborted, 0, None);
                return cx;
            }
            job = next;
            timeout = next_timeout;
            // Tasks that never wait would otherwise keep this worker's thread
            // to itself for as long as the backlog lasts: after a run of
            // them, it gives the thread up. Counted here rather than with
            // the runtime's budget, whose every look costs a thread-local;
            // tasks that do wait give the thread up by themselves.
            in_a_row += 1;
            let yields = in_a_row == TAKES_PER_TURN;
            if yields {
                in_a_row = 0;
                tokio::task::yield_now().await;
            }
            // The clock is read once between two attempts, the next one
            // starting as this one ended, unless the worker gave its thread
            // up in between: what ran meanwhile is not the next task's time.
            started = if yields { seat.stopwatch.now() } else { ended };
        }
    }
    cx
}

/// How many tasks a worker takes from the backlog in a row before it gives
/// its thread up: tokio's own budget for one turn of a task.
const TAKES_PER_TURN: u32 = 128;

/// When an attempt that begins now must end. `Job::timeout` keeps timeouts
/// short enough to add to the clock; should that ever fail, the attempt gets
/// the longest deadline there is rather than none, so that the worker and
/// the supervisor still agree that it has one.
fn deadline_after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .or_else(|| now.checked_add(crate::job::LONGEST_TIMEOUT))
        .unwrap_or(now)
}

/// Drops the attempt's future, which ended as `ended`, inside the attempt's
/// span; a panic in its `Drop` is the attempt's end, unless it had panicked
/// already.
fn end_attempt<T: Task, F>(
    run: Pin<&mut Option<F>>,
    ended: Attempt<T>,
    span: &AttemptSpan,
) -> Attempt<T> {
    let mut run = run;
    match catch(|| span.in_scope(|| run.set(None))) {
        Ok(()) => ended,
        Err(_) if matches!(ended, Attempt::Panicked(_)) => ended,
        Err(message) => {
            drop_contained("Drop of an attempt's result", ended);
            Attempt::Panicked(Box::new(message))
        }
    }
}

/// One attempt under way: the task's future, polled inside `catch_unwind`
/// until its deadline (`None`: none), against its timer and the
/// supervisor's abort flag. It ends `Returned`, `Panicked` (a panic in the
/// call that makes the future, or in the future), `TimedOut` or `Aborted`.
///
/// The deadline counts from when the attempt begins. A result that comes at
/// or after it, even in the same turn as the timer, is discarded: the
/// attempt timed out.
///
/// A plain future whose parts the worker pins in its own, rather than an
/// `async` function in a `CatchUnwind`: so its poll is inlined into the
/// worker's, which matters on the path every task takes.
struct Attempting<'a, T: Task, F> {
    /// The task's id, which a cancel's cut-off names.
    id: u64,
    /// Polled before: the future has waited since.
    waited: bool,
    run: Pin<&'a mut F>,
    timer: Pin<&'a mut Option<actix_rt::time::Sleep>>,
    deadline: Option<Instant>,
    orders: &'a line::Receiver<Order<T>>,
    /// Entered on every poll of the task's future.
    span: &'a AttemptSpan,
}

impl<'a, T: Task, F> Attempting<'a, T, F> {
    fn new(
        id: crate::task::TaskId,
        run: Pin<&'a mut F>,
        timer: Pin<&'a mut Option<actix_rt::time::Sleep>>,
        deadline: Option<Instant>,
        orders: &'a line::Receiver<Order<T>>,
        span: &'a AttemptSpan,
    ) -> Self {
        Attempting {
            id: id.as_u64(),
            waited: false,
            run,
            timer,
            deadline,
            orders,
            span,
        }
    }
}

impl<T, F> Future for Attempting<'_, T, F>
where
    T: Task,
    F: Future<Output = Result<T::Output, T::Error>>,
{
    type Output = Attempt<T>;

    // Always: it runs once or twice per task, and its caller is generic
    // over the worker's inbox, which keeps the compiler from inlining it.
    #[inline(always)]
    fn poll(self: Pin<&mut Self>, waker: &mut std::task::Context<'_>) -> Poll<Attempt<T>> {
        let this = self.get_mut();
        // A cut-off that came while the attempt waited: its code is not
        // polled again. (The first poll follows the worker's own look, just
        // before it made the future.)
        if this.waited && this.orders.drops(this.id) {
            return Poll::Ready(Attempt::Aborted);
        }
        this.waited = true;
        match catch(|| this.span.in_scope(|| this.run.as_mut().poll(waker))) {
            Ok(Poll::Ready(result)) => {
                if this
                    .deadline
                    .is_some_and(|deadline| Instant::now() >= deadline)
                {
                    // Entered inside the catch too: the span is a subscriber's.
                    contain("Drop of a result past its deadline", || {
                        this.span.in_scope(|| drop(result))
                    });
                    return Poll::Ready(Attempt::TimedOut);
                }
                return Poll::Ready(Attempt::Returned(result));
            }
            Ok(Poll::Pending) => {}
            Err(message) => return Poll::Ready(Attempt::Panicked(Box::new(message))),
        }
        if let Some(timer) = this.timer.as_mut().as_pin_mut()
            && timer.poll(waker).is_ready()
        {
            return Poll::Ready(Attempt::TimedOut);
        }
        if this.orders.poll_abort(this.id, waker).is_ready() {
            return Poll::Ready(Attempt::Aborted);
        }
        Poll::Pending
    }
}
