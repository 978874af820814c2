//! [`Pool`]: the handle through which a program uses a pool.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use actix::{Addr, Recipient};
use futures::FutureExt;

use crate::config::PoolBuilder;
use crate::error::{PoolGone, ResizeError, SubmitError, SubmitTimeoutError, TrySubmitError};
use crate::gate::{Gate, Permit, Refusal};
use crate::job::{Job, TaskHandle};
use crate::messages::{
    Cancel, Cancellation, Drain, DrainWithin, GetStats, GetStatus, Resize, Resized, Stop,
    StopReport, StopWithin, Subscribe, TaskStatus, WhenStopped,
};
use crate::outcome::{Outcome, StopReason};
use crate::stats::{PoolEvent, Stats};
use crate::supervisor::{Backlog, HandlesDropped, MakeRoom, Offering, Room, Supervisor};
use crate::task::{Task, TaskId};

/// A cheap, cloneable handle to a running pool of workers.
///
/// Every method talks to the pool's [`Supervisor`] actor. Dropping the last
/// handle drains the pool, as closing a channel would: every accepted task still
/// runs and its handle still resolves; then the workers stop.
///
/// # Examples
///
/// ```
/// use actix_workerpool::{FnTask, Pool};
///
/// # actix_rt::System::new().block_on(async {
/// let pool = Pool::builder().workers(2).queue_capacity(16).build().unwrap();
/// let handle = pool
///     .submit(FnTask::new("hello", |s| async move { Ok::<_, ()>(s.len()) }))
///     .await
///     .unwrap();
/// assert_eq!(handle.await.unwrap().output(), Some(5));
/// pool.drain().await.unwrap();
/// # });
/// ```
pub struct Pool<T: Task> {
    shared: Arc<Shared<T>>,
}

struct Shared<T: Task> {
    addr: Addr<Supervisor<T>>,
    backlog: Arc<Backlog<T>>,
    gate: Arc<Gate>,
    name: Option<Arc<str>>,
}

impl<T: Task> Drop for Shared<T> {
    fn drop(&mut self) {
        self.addr.do_send(HandlesDropped);
    }
}

impl<T: Task> Clone for Pool<T> {
    fn clone(&self) -> Self {
        Pool {
            shared: self.shared.clone(),
        }
    }
}

impl<T: Task> fmt::Debug for Pool<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("name", &self.name())
            .field("closed", &self.shared.gate.is_closed())
            .finish_non_exhaustive()
    }
}

impl<T> Pool<T>
where
    T: Task<State: Default>,
{
    /// A builder for a pool whose workers each start with `T::State::default()`.
    pub fn builder() -> PoolBuilder<T> {
        PoolBuilder::new(Arc::new(|_| Ok(T::State::default())))
    }
}

impl<T: Task> Pool<T> {
    /// A builder for a pool whose workers each make their local state with
    /// `factory(slot)`: a connection, a client, a buffer. It runs when a worker
    /// starts, on the worker's arbiter, and again for every restart, so a
    /// restarted worker never inherits the state of the one it replaces.
    ///
    /// A factory that returns `Err` or panics counts as a failed start: the slot
    /// is restarted after the restart backoff, and counts against the restart
    /// limit (see [`PoolBuilder::restart_limit`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use actix_workerpool::{Pool, Task, TaskContext};
    ///
    /// /// Appends to the worker's own buffer.
    /// struct Append(&'static str);
    ///
    /// impl Task for Append {
    ///     type Output = usize;
    ///     type Error = ();
    ///     type State = Vec<&'static str>;
    ///
    ///     async fn run(&mut self, cx: &mut TaskContext<Self::State>) -> Result<usize, ()> {
    ///         cx.state_mut().push(self.0);
    ///         Ok(cx.state().len())
    ///     }
    /// }
    ///
    /// # actix_rt::System::new().block_on(async {
    /// let pool = Pool::builder_with_state(|_slot| Ok::<_, std::io::Error>(Vec::new()))
    ///     .workers(1)
    ///     .build()
    ///     .unwrap();
    /// pool.submit(Append("a")).await.unwrap().await.unwrap();
    /// let second = pool.submit(Append("b")).await.unwrap().await.unwrap();
    /// assert_eq!(second.output(), Some(2));
    /// # });
    /// ```
    pub fn builder_with_state<F, E>(factory: F) -> PoolBuilder<T>
    where
        F: Fn(usize) -> Result<T::State, E> + Send + Sync + 'static,
        E: fmt::Display,
    {
        PoolBuilder::new(Arc::new(move |slot| {
            factory(slot).map_err(|e| e.to_string())
        }))
    }

    pub(crate) fn new(
        addr: Addr<Supervisor<T>>,
        backlog: Arc<Backlog<T>>,
        gate: Arc<Gate>,
        name: Option<Arc<str>>,
    ) -> Self {
        Pool {
            shared: Arc::new(Shared {
                addr,
                backlog,
                gate,
                name,
            }),
        }
    }

    /// The name given to [`PoolBuilder::name`], if any.
    pub fn name(&self) -> Option<&str> {
        self.shared.name.as_deref()
    }

    /// Submits a task if the queue has room, without waiting.
    ///
    /// # Errors
    ///
    /// [`TrySubmitError::Full`] when the queue is full, [`TrySubmitError::Stopped`]
    /// when the pool is stopping or stopped; either way the task comes back inside.
    pub fn try_submit(&self, task: T) -> Result<TaskHandle<T>, TrySubmitError<T>> {
        try_submit_to(&self.shared.gate, &self.shared.backlog, task)
    }

    /// Submits a task, waiting for room in the queue if it is full (unless
    /// the pool's overflow policy is [`Overflow::Reject`](crate::Overflow::Reject)).
    ///
    /// # Errors
    ///
    /// [`SubmitError::Stopped`] with the task inside when the pool is
    /// stopping or stopped, including when it stops while this call waits
    /// for room; [`SubmitError::Full`] when the queue is full and the pool
    /// rejects rather than waits.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: if the future is dropped before it resolves, the task was
    /// not submitted (and is dropped with the future). Under
    /// [`Overflow::DropOldest`](crate::Overflow::DropOldest) there is one
    /// exception: once the supervisor has evicted a task to make room for
    /// this one, it is submitted, and runs, even if the future is dropped
    /// before it hears so (its handle goes with the future).
    pub async fn submit(&self, task: T) -> Result<TaskHandle<T>, SubmitError<T>> {
        let Shared { gate, backlog, .. } = &*self.shared;
        // Most submits find room: they take it without building the future
        // that waits for some.
        match try_submit_to(gate, backlog, task) {
            Ok(handle) => Ok(handle),
            Err(TrySubmitError::Full(task)) if gate.rejects() => Err(SubmitError::Full(task)),
            Err(TrySubmitError::Full(task)) => {
                submit_waiting(gate, backlog, &self.shared.addr, task).await
            }
            Err(TrySubmitError::Stopped(task)) => Err(SubmitError::Stopped(task)),
        }
    }

    /// Submits a task, waiting at most `timeout` for room in the queue if it
    /// is full: between [`try_submit`](Self::try_submit), which does not
    /// wait, and [`submit`](Self::submit), which waits as long as it takes.
    /// A task that finds room is accepted at once, whatever the timeout
    /// (zero included); `Duration::MAX` waits as `submit` does.
    ///
    /// # Errors
    ///
    /// [`SubmitTimeoutError::Timeout`] if the queue stayed full until the
    /// deadline (at once, for a pool whose overflow policy is
    /// [`Overflow::Reject`](crate::Overflow::Reject)),
    /// [`SubmitTimeoutError::Stopped`] if the pool is stopping or
    /// stopped, or began to stop meanwhile; either way the task comes back
    /// inside.
    ///
    /// # Cancel safety
    ///
    /// As [`submit`](Self::submit): dropped before it resolves, the task was
    /// not submitted (under `DropOldest`, unless a task was evicted for it
    /// already; a deadline that passes then still finds it submitted).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use actix_workerpool::{FnTask, Pool, SubmitTimeoutError};
    ///
    /// # actix_rt::System::new().block_on(async {
    /// let pool = Pool::builder().workers(1).queue_capacity(1).build().unwrap();
    /// let task = |n: u32| FnTask::new(n, |n| async move { Ok::<_, ()>(n) });
    /// let hold = pool.submit(task(1)).await.unwrap();
    /// # let _ = hold;
    /// match pool.submit_timeout(task(2), Duration::from_millis(10)).await {
    ///     Ok(handle) => println!("accepted as {}", handle.id()),
    ///     Err(SubmitTimeoutError::Timeout(task)) => println!("still full: {} back", task.data()),
    ///     Err(SubmitTimeoutError::Stopped(_)) => println!("the pool is stopping"),
    /// }
    /// # });
    /// ```
    pub async fn submit_timeout(
        &self,
        task: T,
        timeout: Duration,
    ) -> Result<TaskHandle<T>, SubmitTimeoutError<T>> {
        let Shared {
            gate,
            backlog,
            addr,
            ..
        } = &*self.shared;
        let task = match try_submit_to(gate, backlog, task) {
            Ok(handle) => return Ok(handle),
            Err(TrySubmitError::Full(task)) if gate.rejects() => {
                return Err(SubmitTimeoutError::Timeout(task));
            }
            Err(TrySubmitError::Full(task)) => task,
            Err(TrySubmitError::Stopped(task)) => return Err(SubmitTimeoutError::Stopped(task)),
        };
        // One deadline for all that follows: the round trip that makes room,
        // and the wait. A deadline past the clock's end is none.
        let deadline = actix_rt::time::sleep(timeout);
        let mut deadline = std::pin::pin!(deadline);
        let task = if gate.evicts() {
            match make_room_and_submit(addr, task, deadline.as_mut()).await {
                Ok(handle) => return Ok(handle),
                Err(NoRoom::Full(task)) => task,
                Err(NoRoom::Stopped(task)) => return Err(SubmitTimeoutError::Stopped(task)),
                Err(NoRoom::Timeout(task)) => return Err(SubmitTimeoutError::Timeout(task)),
            }
        } else {
            task
        };
        // The wait holds no task: on the deadline it is still here, to
        // hand back.
        let admitted = futures::select_biased! {
            admitted = gate.admit().fuse() => admitted,
            () = deadline.fuse() => return Err(SubmitTimeoutError::Timeout(task)),
        };
        match admitted {
            Ok((id, permit)) => Ok(send_job(backlog, id, permit, task)),
            Err(_closed) => Err(SubmitTimeoutError::Stopped(task)),
        }
    }

    /// Runs a batch, like Go's `NewPool(tasks, n).Run()`: submits every task
    /// (waiting for room as needed, whatever the overflow policy: a batch is
    /// a caller that waits), waits for all of them, and returns their
    /// outcomes in input order. Tasks refused because the pool stopped come back
    /// as [`Outcome::NotRun`].
    ///
    /// # Errors
    ///
    /// [`PoolGone`] if a task's outcome could not be received (see [`TaskHandle`]).
    pub async fn run_all<I>(&self, tasks: I) -> Result<Vec<Outcome<T>>, PoolGone>
    where
        I: IntoIterator<Item = T>,
    {
        let mut started = Vec::new();
        for task in tasks {
            let Shared { gate, backlog, .. } = &*self.shared;
            let submitted = submit_to(gate, backlog, task).await;
            started.push(submitted.map_err(SubmitError::into_inner));
        }
        let mut outcomes = Vec::with_capacity(started.len());
        for entry in started {
            outcomes.push(match entry {
                Ok(handle) => handle.await?,
                Err(task) => Outcome::NotRun {
                    task,
                    reason: StopReason::Stopped,
                    attempts: 0,
                },
            });
        }
        Ok(outcomes)
    }

    /// Stops the pool (the quit channel): see [`Stop`].
    ///
    /// # Errors
    ///
    /// [`PoolGone`] if the supervisor is gone (its `System` stopped).
    pub async fn stop(&self) -> Result<StopReport, PoolGone> {
        self.shared.addr.send(Stop).await.map_err(|_| PoolGone)
    }

    /// Drains the pool: see [`Drain`].
    ///
    /// # Errors
    ///
    /// [`PoolGone`] if the supervisor is gone (its `System` stopped).
    pub async fn drain(&self) -> Result<StopReport, PoolGone> {
        self.shared.addr.send(Drain).await.map_err(|_| PoolGone)
    }

    /// Stops the pool as [`stop`](Self::stop) does, but cuts off whatever
    /// still runs once `deadline` has passed: see [`StopWithin`].
    ///
    /// # Errors
    ///
    /// [`PoolGone`] if the supervisor is gone (its `System` stopped).
    pub async fn stop_within(&self, deadline: Duration) -> Result<StopReport, PoolGone> {
        let message = StopWithin(deadline);
        self.shared.addr.send(message).await.map_err(|_| PoolGone)
    }

    /// Drains the pool as [`drain`](Self::drain) does, for at most
    /// `deadline`: see [`DrainWithin`].
    ///
    /// # Examples
    ///
    /// A service's shutdown that must fit its service manager's stop timeout:
    ///
    /// ```
    /// use std::time::Duration;
    /// use actix_workerpool::{FnTask, Outcome, Pool};
    ///
    /// # actix_rt::System::new().block_on(async {
    /// # tokio::time::pause();
    /// let pool = Pool::builder().workers(1).build().unwrap();
    /// let forever = FnTask::new((), |()| std::future::pending::<Result<(), ()>>());
    /// let handle = pool.submit(forever).await.unwrap();
    /// # actix_rt::task::yield_now().await;
    ///
    /// let report = pool.drain_within(Duration::from_secs(30)).await.unwrap();
    /// assert_eq!(report.aborted, [handle.id()]);
    /// assert!(matches!(handle.await.unwrap(), Outcome::Aborted { attempts: 1, .. }));
    /// # });
    /// ```
    ///
    /// # Errors
    ///
    /// [`PoolGone`] if the supervisor is gone (its `System` stopped).
    pub async fn drain_within(&self, deadline: Duration) -> Result<StopReport, PoolGone> {
        let message = DrainWithin(deadline);
        self.shared.addr.send(message).await.map_err(|_| PoolGone)
    }

    /// A snapshot of the pool's counters.
    ///
    /// # Errors
    ///
    /// [`PoolGone`] if the supervisor is gone (its `System` stopped).
    pub async fn stats(&self) -> Result<Stats, PoolGone> {
        self.shared.addr.send(GetStats).await.map_err(|_| PoolGone)
    }

    /// Waits until the pool has stopped, for whatever reason, without causing a
    /// stop: see [`WhenStopped`].
    ///
    /// # Errors
    ///
    /// [`PoolGone`] if the supervisor is gone (its `System` stopped).
    pub async fn stopped(&self) -> Result<StopReport, PoolGone> {
        self.shared
            .addr
            .send(WhenStopped)
            .await
            .map_err(|_| PoolGone)
    }

    /// Sends every later [`PoolEvent`] to `subscriber` (see [`Subscribe`]).
    ///
    /// # Errors
    ///
    /// [`PoolGone`] if the supervisor is gone (its `System` stopped).
    pub async fn subscribe(&self, subscriber: Recipient<PoolEvent>) -> Result<(), PoolGone> {
        self.shared
            .addr
            .send(Subscribe(subscriber))
            .await
            .map_err(|_| PoolGone)
    }

    /// Where the task with this id is: queued, running, waiting for a retry, or
    /// no longer (or not yet) held by the pool. See [`TaskStatus`].
    ///
    /// # Errors
    ///
    /// [`PoolGone`] if the supervisor is gone (its `System` stopped).
    pub async fn status(&self, id: TaskId) -> Result<TaskStatus, PoolGone> {
        self.shared
            .addr
            .send(GetStatus(id))
            .await
            .map_err(|_| PoolGone)
    }

    /// Cancels the task with this id, as [`TaskHandle::cancel`] does, for
    /// whoever has its id but not its handle (a status page, an operator).
    /// An id the pool never gave out answers [`Cancellation::Unknown`].
    ///
    /// Ids are this pool's own: every pool counts from 0, so an id from
    /// another pool names another task here. A handle always cancels its
    /// own task.
    ///
    /// # Errors
    ///
    /// [`PoolGone`] if the supervisor is gone (its `System` stopped).
    pub async fn cancel(&self, id: TaskId) -> Result<Cancellation, PoolGone> {
        self.shared
            .addr
            .send(Cancel(id))
            .await
            .map_err(|_| PoolGone)
    }

    /// Keeps `workers` worker slots in service from now on, as if the pool
    /// had been built with that many.
    ///
    /// Growing starts the new workers at once (in slots retired earlier
    /// first, then in new ones); as each is ready it takes a queued task,
    /// which frees a place for a submitter waiting for room. Shrinking
    /// retires workers without a task first (restarting, starting, idle),
    /// then busy ones, highest slot first; a busy worker finishes the task in
    /// hand and takes no other, so no task is lost or run twice. Round-robin
    /// goes on over the slots in service. [`Stats::size`] and
    /// [`PoolEvent::Resized`] tell the change, and
    /// [`PoolEvent::WorkerRetired`] each slot as its worker leaves. Slot
    /// numbers (in events, stats and [`TaskContext::worker`](crate::TaskContext::worker))
    /// stay the same for the pool's life, so a state factory may see slot
    /// numbers past the size it was built with.
    ///
    /// ```
    /// # use actix_workerpool::{FnTask, Pool, Resized};
    /// # #[actix_rt::main]
    /// # async fn main() {
    /// # type Job = FnTask<u32, fn(u32) -> std::future::Ready<Result<u32, ()>>>;
    /// let pool = Pool::<Job>::builder().workers(2).build().unwrap();
    /// assert_eq!(pool.resize(8).await, Ok(Resized { from: 2, to: 8 }));
    /// assert_eq!(pool.stats().await.unwrap().size, 8);
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`ResizeError::ZeroWorkers`] for 0, [`ResizeError::TooManyWorkers`]
    /// above [`MAX_WORKERS`](crate::MAX_WORKERS), [`ResizeError::Stopped`]
    /// once a stop or drain has begun, [`ResizeError::PoolGone`] if the
    /// supervisor is gone. The pool keeps its size.
    pub async fn resize(&self, workers: usize) -> Result<Resized, ResizeError> {
        self.shared
            .addr
            .send(Resize(workers))
            .await
            .map_err(|_| PoolGone)?
    }

    /// Whether the pool has stopped accepting tasks (a stop or drain began).
    pub fn is_closed(&self) -> bool {
        self.shared.gate.is_closed()
    }

    /// The supervisor's address, for actors that send it messages directly.
    ///
    /// The address alone does not keep the pool open: when the last `Pool`
    /// handle is dropped the pool drains and then refuses every task, so keep a
    /// `Pool` (it is cheap to clone) for as long as anyone submits through the
    /// address.
    pub fn addr(&self) -> Addr<Supervisor<T>> {
        self.shared.addr.clone()
    }
}

pub(crate) fn try_submit_to<T: Task>(
    gate: &Arc<Gate>,
    backlog: &Backlog<T>,
    task: T,
) -> Result<TaskHandle<T>, TrySubmitError<T>> {
    match gate.try_admit() {
        Ok((id, permit)) => Ok(send_job(backlog, id, permit, task)),
        Err(Refusal::Full) => Err(TrySubmitError::Full(task)),
        Err(Refusal::Closed) => Err(TrySubmitError::Stopped(task)),
    }
}

pub(crate) async fn submit_to<T: Task>(
    gate: &Arc<Gate>,
    backlog: &Backlog<T>,
    task: T,
) -> Result<TaskHandle<T>, SubmitError<T>> {
    match gate.admit().await {
        Ok((id, permit)) => Ok(send_job(backlog, id, permit, task)),
        Err(_) => Err(SubmitError::Stopped(task)),
    }
}

/// For a submit that found the queue full: makes room first, under
/// [`Overflow::DropOldest`](crate::Overflow::DropOldest), then waits for it.
pub(crate) async fn submit_waiting<T: Task>(
    gate: &Arc<Gate>,
    backlog: &Backlog<T>,
    supervisor: &Addr<Supervisor<T>>,
    task: T,
) -> Result<TaskHandle<T>, SubmitError<T>> {
    let task = if gate.evicts() {
        let never = std::pin::pin!(std::future::pending::<()>());
        match make_room_and_submit(supervisor, task, never).await {
            Ok(handle) => return Ok(handle),
            // (`Timeout` does not come: there is no deadline.)
            Err(NoRoom::Full(task) | NoRoom::Timeout(task)) => task,
            Err(NoRoom::Stopped(task)) => return Err(SubmitError::Stopped(task)),
        }
    } else {
        task
    };
    submit_to(gate, backlog, task).await
}

/// Why [`make_room_and_submit`] found no place, with the task.
enum NoRoom<T> {
    /// Nothing to evict (every queued task is on its way to a worker).
    Full(T),
    /// The pool is stopping, or gone.
    Stopped(T),
    /// The deadline passed first.
    Timeout(T),
}

/// Offers the task to the supervisor, which evicts the oldest queued task
/// and admits this one in its place in one step (see `supervisor::evict`),
/// unless `deadline` comes first. `Full` with the task if there was nothing
/// to evict: the caller waits for room then.
async fn make_room_and_submit<T: Task, D: Future<Output = ()>>(
    supervisor: &Addr<Supervisor<T>>,
    task: T,
    deadline: Pin<&mut D>,
) -> Result<TaskHandle<T>, NoRoom<T>> {
    let (offer, offering) = Offering::new(task);
    let mut request = std::pin::pin!(supervisor.send(MakeRoom(offer)).fuse());
    let mut answer = futures::select_biased! {
        answer = request.as_mut() => Some(answer),
        () = deadline.fuse() => None,
    };
    // The offer says whether the task was admitted, unless the supervisor
    // holds it now: its answer, at the end of that step, settles it.
    let admitted = match offering.withdraw() {
        Some(admitted) => admitted,
        None => {
            if answer.is_none() {
                answer = Some(request.as_mut().await);
            }
            match offering.withdraw() {
                Some(admitted) => admitted,
                // An answer comes only after the offer is settled; a
                // supervisor that died in the middle of the step took the
                // task with it, and there is nothing to hand back.
                None => unreachable!("an offer is settled before its answer"),
            }
        }
    };
    let task = match admitted {
        Ok(handle) => return Ok(handle),
        Err(task) => task,
    };
    Err(match answer {
        None => NoRoom::Timeout(task),
        // The supervisor is stopping, or gone.
        Some(Ok(Room::Stopped) | Err(_)) => NoRoom::Stopped(task),
        Some(Ok(Room::Full | Room::Admitted | Room::Withdrawn)) => NoRoom::Full(task),
    })
}

fn send_job<T: Task>(backlog: &Backlog<T>, id: TaskId, permit: Permit, task: T) -> TaskHandle<T> {
    let timing = backlog.stopwatch().accepting();
    let (job, handle) = Job::new(id, permit, task, timing, backlog.route());
    backlog.push(job);
    handle
}
