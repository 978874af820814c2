//! What a pool runs: the [`Task`] trait, the context a task runs in, and
//! [`FnTask`], which makes a task from data and a closure.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use crate::retry::RetryPolicy;

/// A unit of work that a [`Pool`](crate::Pool) runs on one of its workers.
///
/// `run` borrows the task rather than consuming it, so that the same value can be
/// run again (a retry) or handed back to the caller if the pool stops before it ran.
/// The future that `run` returns executes on the worker's arbiter and need not be
/// `Send`; the task value itself is `Send`, since it may travel to a worker on
/// another arbiter.
///
/// A panic anywhere in `run` or in the future it returns is caught on the
/// worker: the task ends [`Panicked`](crate::Outcome::Panicked) and the worker is
/// replaced. A task spawned with `actix_rt::spawn` panics on its own; to carry
/// its panic over, `std::panic::resume_unwind(join_error.into_panic())`.
///
/// `State` is the worker-local state that a task gets through its
/// [`TaskContext`]: `()` for tasks that need none; a connection or a buffer for
/// tasks that do. Every worker owns one value of it.
///
/// # Examples
///
/// ```
/// use actix_workerpool::{Task, TaskContext};
///
/// struct Double(u64);
///
/// impl Task for Double {
///     type Output = u64;
///     type Error = std::convert::Infallible;
///     type State = ();
///
///     async fn run(&mut self, _cx: &mut TaskContext<()>) -> Result<u64, Self::Error> {
///         Ok(self.0 * 2)
///     }
/// }
/// ```
pub trait Task: Send + 'static {
    /// What a successful run produces.
    type Output: Send + 'static;
    /// What a failed run produces; it is handed to whoever waits on the task.
    type Error: fmt::Debug + Send + 'static;
    /// The worker-local state this task uses; `()` for none.
    type State: 'static;

    /// Runs one attempt of the task on the worker that `cx` describes.
    fn run(
        &mut self,
        cx: &mut TaskContext<Self::State>,
    ) -> impl Future<Output = Result<Self::Output, Self::Error>>;

    /// How long one attempt of this task may run, overriding the pool's
    /// [`task_timeout`](crate::PoolBuilder::task_timeout); `None` (the default)
    /// keeps the pool's.
    ///
    /// The time counts from when the attempt begins on its worker. An attempt
    /// past it is cancelled (its future dropped) and the task ends
    /// [`TimedOut`](crate::Outcome::TimedOut) (or is retried, if its policy
    /// allows); its worker is free at once. A result that comes at or past
    /// the deadline is discarded, so a zero here times every attempt out. A
    /// task that blocks its thread past the deadline is ended by the
    /// supervisor (see [`PoolBuilder::stuck_grace`](crate::PoolBuilder::stuck_grace)).
    fn timeout(&self) -> Option<Duration> {
        None
    }

    /// Whether `error` is worth another attempt, if the retry policy has one
    /// left: `true` (the default) for a transient error, `false` for a permanent
    /// one, which ends the task at once as [`Failed`](crate::Outcome::Failed).
    fn is_retryable(&self, error: &Self::Error) -> bool {
        let _ = error;
        true
    }

    /// This task's own retry policy, overriding the pool's
    /// [`retry`](crate::PoolBuilder::retry); `None` (the default) keeps the pool's.
    fn retry_policy(&self) -> Option<RetryPolicy> {
        None
    }

    /// The task's key, for work that must not overlap (the jobs of one
    /// account, the edits of one document): tasks with the same key run one
    /// at a time, in the order they were submitted, while tasks with other
    /// keys, or none, run in parallel as usual. A task holds its key from
    /// its first attempt to its outcome, so a retry holds back the tasks
    /// behind it with the same key. `None` (the default): no key.
    ///
    /// Asked once, as the task is submitted. A panic in it is contained and
    /// logged; the task then runs without a key.
    ///
    /// A keyed task reaches the supervisor as an actix message, and from
    /// there a worker, rather than through the backlog that workers take
    /// from themselves; tasks waiting for their key hold their place in
    /// the queue. See the README's "Keeping order per key" for what that
    /// costs.
    fn key(&self) -> Option<TaskKey> {
        None
    }
}

/// What orders the tasks that must not overlap: see [`Task::key`].
///
/// ```
/// use actix_workerpool::TaskKey;
///
/// let account = TaskKey::new(42);
/// let document = TaskKey::hashed("invoice-2026-0042");
/// assert_eq!(document, TaskKey::hashed("invoice-2026-0042"));
/// # let _ = account;
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskKey(u64);

impl TaskKey {
    /// A key from a number (an account id).
    pub const fn new(key: u64) -> Self {
        TaskKey(key)
    }

    /// A key from any hashable value (a string id, a UUID). Two values
    /// that hash alike share a key, which only makes their tasks wait for
    /// each other; with 64 bits that is as rare as it gets.
    pub fn hashed<K: std::hash::Hash + ?Sized>(key: &K) -> Self {
        use std::hash::{BuildHasher, BuildHasherDefault};
        let hasher = BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default();
        TaskKey(hasher.hash_one(key))
    }

    /// The key as a number.
    pub const fn as_u64(self) -> u64 {
        self.0
    }
}

impl From<u64> for TaskKey {
    fn from(key: u64) -> Self {
        TaskKey(key)
    }
}

/// The pool-assigned identity of an accepted task, unique within its pool.
///
/// Ids are given out in submission order, starting at 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskId(pub(crate) u64);

impl From<u64> for TaskId {
    /// An id from its number, to look a task up (say, from a URL).
    fn from(id: u64) -> Self {
        TaskId(id)
    }
}

impl TaskId {
    /// The id as a number.
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "task#{}", self.0)
    }
}

/// What a running task knows about where it runs, and the worker's local state.
#[derive(Debug)]
pub struct TaskContext<S> {
    worker: usize,
    task_id: TaskId,
    attempt: u32,
    state: S,
}

impl<S> TaskContext<S> {
    pub(crate) fn new(worker: usize, state: S) -> Self {
        TaskContext {
            worker,
            task_id: TaskId(0),
            attempt: 0,
            state,
        }
    }

    pub(crate) fn begin(&mut self, task_id: TaskId, attempt: u32) {
        self.task_id = task_id;
        self.attempt = attempt;
    }

    /// The slot number of the worker running this attempt: from 0, below
    /// the pool's size, unless the pool has been resized (a growth while
    /// retired workers still finish their task adds slots past them; see
    /// [`Pool::resize`](crate::Pool::resize)).
    pub fn worker(&self) -> usize {
        self.worker
    }

    /// The id of the task being run.
    pub fn task_id(&self) -> TaskId {
        self.task_id
    }

    /// Which attempt this is, counting from 1.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The worker's local state.
    pub fn state(&self) -> &S {
        &self.state
    }

    /// The worker's local state, mutably.
    pub fn state_mut(&mut self) -> &mut S {
        &mut self.state
    }
}

/// A task made of data and a closure, like Go's `NewTask(f, data)`.
///
/// Each attempt calls the closure with a clone of the data, so the data is still
/// there for a retry, and comes back intact (through [`FnTask::into_data`]) if the
/// task is handed back unrun.
///
/// # Examples
///
/// ```
/// use actix_workerpool::{FnTask, Outcome, Pool};
///
/// # actix_rt::System::new().block_on(async {
/// let pool = Pool::builder().workers(2).build().unwrap();
/// let task = FnTask::new(21u64, |n| async move { Ok::<_, String>(n * 2) });
/// let outcome = pool.submit(task).await.unwrap().await.unwrap();
/// assert!(matches!(outcome, Outcome::Completed { output: 42, .. }));
/// # });
/// ```
pub struct FnTask<D, F> {
    data: D,
    f: F,
    key: Option<TaskKey>,
}

impl<D, F> FnTask<D, F> {
    /// Makes a task that runs `f(data.clone())` on each attempt.
    pub fn new<Fut>(data: D, f: F) -> Self
    where
        // Stated here as well as on the `Task` impl so that closures infer
        // their argument type.
        F: Fn(D) -> Fut,
    {
        FnTask { data, f, key: None }
    }

    /// The task, with a key: it runs after every task with the same key
    /// submitted before it has ended (see [`Task::key`]).
    ///
    /// ```
    /// use actix_workerpool::{FnTask, Pool};
    ///
    /// # actix_rt::System::new().block_on(async {
    /// let pool = Pool::builder().workers(4).build().unwrap();
    /// let deposit = |account: u64, cents: i64| {
    ///     FnTask::new(cents, |cents| async move { Ok::<_, ()>(cents) }).keyed(account)
    /// };
    /// // Run one after the other, in this order; other accounts meanwhile in parallel.
    /// let first = pool.submit(deposit(7, 100)).await.unwrap();
    /// let second = pool.submit(deposit(7, -40)).await.unwrap();
    /// assert_eq!(first.await.unwrap().output(), Some(100));
    /// assert_eq!(second.await.unwrap().output(), Some(-40));
    /// # });
    /// ```
    pub fn keyed(self, key: impl Into<TaskKey>) -> Self {
        FnTask {
            key: Some(key.into()),
            ..self
        }
    }

    /// The task's data.
    pub fn data(&self) -> &D {
        &self.data
    }

    /// Gives the data back, dropping the closure.
    pub fn into_data(self) -> D {
        self.data
    }
}

impl<D: fmt::Debug, F> fmt::Debug for FnTask<D, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FnTask")
            .field("data", &self.data)
            .finish_non_exhaustive()
    }
}

impl<D, F, Fut, O, E> Task for FnTask<D, F>
where
    D: Clone + Send + 'static,
    F: Fn(D) -> Fut + Send + 'static,
    Fut: Future<Output = Result<O, E>> + 'static,
    O: Send + 'static,
    E: fmt::Debug + Send + 'static,
{
    type Output = O;
    type Error = E;
    type State = ();

    fn run(&mut self, _cx: &mut TaskContext<()>) -> impl Future<Output = Result<O, E>> {
        (self.f)(self.data.clone())
    }

    fn key(&self) -> Option<TaskKey> {
        self.key
    }
}
