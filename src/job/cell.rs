//! The one allocation a task makes in the pool: a cell shared by the task's job
//! and its handle. It holds the task for as long as the job lives, then the
//! task's outcome until the handle takes it.
//!
//! A channel to the handle would be a second home for the task: the job would
//! carry it through the queue while a oneshot, allocated beside it, waited for
//! the outcome (which may be the task itself, handed back). One cell for both
//! halves the memory a queued task costs.

use std::marker::PhantomData;
use std::task::{Context, Poll};

use crate::contain::drop_contained;
use crate::outcome::Outcome;
use crate::sync::atomic::{AtomicU8, AtomicU32, Ordering};
use crate::sync::{Arc, AtomicWaker, UnsafeCell};
use crate::task::Task;

/// The writer may still use the slot.
const PENDING: u8 = 0;
/// The slot holds the outcome, and belongs to the reader.
const RESOLVED: u8 = 1;
/// The writer went without an outcome.
const ABANDONED: u8 = 2;
/// The supervisor ended the task as timed out, through a [`Resolver`],
/// while the writer still had it on a blocked thread. The slot stays the
/// writer's; the reader makes the outcome from `timed_out_after` alone.
const TIMED_OUT: u8 = 3;

struct Cell<T: Task> {
    state: AtomicU8,
    /// The attempts of a task ended `TIMED_OUT`, written before that state.
    timed_out_after: AtomicU32,
    slot: UnsafeCell<Slot<T>>,
    waker: AtomicWaker,
}

enum Slot<T: Task> {
    Task(T),
    Outcome(Outcome<T>),
    Empty,
}

// SAFETY: `slot` is used by one side at a time. The `Writer` (there is one,
// and it is not `Clone`) uses it while the state is `PENDING` or `TIMED_OUT`,
// and sets `RESOLVED` or `ABANDONED` with `Release` after its last use; the
// `Reader` (one, not `Clone`) uses it only after seeing one of those two with
// `Acquire`, never in `TIMED_OUT`. A `Resolver` never touches it. What
// crosses threads in the slot is a task or its outcome, both `Send`.
unsafe impl<T: Task> Send for Cell<T> {}
unsafe impl<T: Task> Sync for Cell<T> {}

/// Makes a cell holding `task`, and its two ends.
pub(super) fn new<T: Task>(task: T) -> (Writer<T>, Reader<T>) {
    let cell = Arc::new(Cell {
        state: AtomicU8::new(PENDING),
        timed_out_after: AtomicU32::new(0),
        slot: UnsafeCell::new(Slot::Task(task)),
        waker: AtomicWaker::new(),
    });
    (Writer(cell.clone(), PhantomData), Reader(cell))
}

/// The job's end: the task's owner until it writes the outcome.
///
/// Not `Sync`: it lends out `&T`, and a task need not be `Sync`.
pub(super) struct Writer<T: Task>(Arc<Cell<T>>, PhantomData<std::cell::Cell<()>>);

impl<T: Task> Writer<T> {
    fn slot(&self) -> &Slot<T> {
        // SAFETY: a writer is consumed when it resolves, so while it exists
        // the state is `PENDING` and the slot is the writer's alone.
        unsafe { &*self.0.slot.get() }
    }

    fn slot_mut(&mut self) -> &mut Slot<T> {
        // SAFETY: as in `slot`; `&mut self` makes this the only reference.
        unsafe { &mut *self.0.slot.get() }
    }

    pub(super) fn task(&self) -> Option<&T> {
        match self.slot() {
            Slot::Task(task) => Some(task),
            _ => None,
        }
    }

    pub(super) fn task_mut(&mut self) -> Option<&mut T> {
        match self.slot_mut() {
            Slot::Task(task) => Some(task),
            _ => None,
        }
    }

    pub(super) fn take_task(&mut self) -> Option<T> {
        match std::mem::replace(self.slot_mut(), Slot::Empty) {
            Slot::Task(task) => Some(task),
            _ => None,
        }
    }

    /// Hands `outcome` to the reader, and wakes it. What the slot held before
    /// (the task, unless it was taken out) is dropped only after that, and if
    /// the reader is gone, so is the outcome: their `Drop` is user code, which
    /// may panic, so it runs contained, once the outcome is out of the way.
    ///
    /// `watched`: the supervisor holds a [`Resolver`] for this cell, and may
    /// have ended it as timed out already; then this outcome is too late, and
    /// stays in the slot, unread, until the cell is dropped.
    pub(super) fn resolve(mut self, outcome: Outcome<T>, watched: bool) {
        let previous = std::mem::replace(self.slot_mut(), Slot::Outcome(outcome));
        if !watched {
            self.finish(RESOLVED);
        } else if self
            .0
            .state
            .compare_exchange(PENDING, RESOLVED, Ordering::Release, Ordering::Relaxed)
            .is_ok()
        {
            self.0.waker.wake();
        }
        if let Slot::Task(task) = previous {
            drop_contained("Drop of a task", task);
        }
        let this = std::mem::ManuallyDrop::new(self);
        // SAFETY: `this` is never used or dropped again, so the `Arc` is read
        // out of it exactly once; its own `Drop` (which would mark the cell
        // abandoned) must not run after `RESOLVED`.
        let cell = unsafe { std::ptr::read(&this.0) };
        // The last owner: the reader is gone, and the outcome drops here.
        if let Some(cell) = Arc::into_inner(cell) {
            drop_contained("Drop of an outcome nobody waits for", cell);
        }
    }

    /// Gives the slot up to the reader for good. Only for a cell that no
    /// [`Resolver`] watches: nobody else changes its state.
    fn finish(&self, state: u8) {
        self.0.state.store(state, Ordering::Release);
        self.0.waker.wake();
    }

    /// Ends the cell without an outcome in it, for a job whose outcome goes
    /// elsewhere (a report to an actor): `false` if a [`Resolver`] ended it
    /// first, and the outcome must not go out.
    pub(super) fn claim(self) -> bool {
        let claimed = self
            .0
            .state
            .compare_exchange(PENDING, RESOLVED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        // Dropping the writer now finds the state settled and leaves it.
        drop(self);
        claimed
    }

    /// A second way to end this cell, for the supervisor: see [`Resolver`].
    pub(super) fn resolver(&self) -> Resolver<T> {
        Resolver(Some(self.0.clone()))
    }
}

impl<T: Task> Drop for Writer<T> {
    fn drop(&mut self) {
        // A compare-exchange, not a store: a resolver may have ended the
        // cell meanwhile (dropping a writer is off the common path).
        let abandoned =
            self.0
                .state
                .compare_exchange(PENDING, ABANDONED, Ordering::Release, Ordering::Relaxed);
        if abandoned.is_ok() {
            self.0.waker.wake();
        }
    }
}

/// The supervisor's hold on a task whose attempt has a deadline: if the
/// task's worker is stuck past it, the supervisor ends the task as timed out
/// through this, without the task itself (which the blocked thread still
/// holds), so that whoever waits on the handle is not held up by that thread.
pub(crate) struct Resolver<T: Task>(Option<Arc<Cell<T>>>);

impl<T: Task> Resolver<T> {
    /// Ends the task as [`Outcome::TimedOut`] after `attempts`, unless its
    /// writer gave it an outcome first; says whether this one did.
    pub(crate) fn time_out(&self, attempts: u32) -> bool {
        let Some(cell) = &self.0 else { return false };
        cell.timed_out_after.store(attempts, Ordering::Relaxed);
        let ended = cell
            .state
            .compare_exchange(PENDING, TIMED_OUT, Ordering::Release, Ordering::Relaxed)
            .is_ok();
        if ended {
            cell.waker.wake();
        }
        ended
    }
}

impl<T: Task> Drop for Resolver<T> {
    fn drop(&mut self) {
        // The last owner drops what the cell holds: user values, contained.
        if let Some(cell) = self.0.take().and_then(Arc::into_inner) {
            drop_contained("Drop of a task's cell", cell);
        }
    }
}

/// The handle's end.
pub(super) struct Reader<T: Task>(Arc<Cell<T>>);

/// The writer went without writing an outcome.
pub(super) struct Abandoned;

impl<T: Task> Reader<T> {
    /// Whether the task has its outcome (or never will): the writer is
    /// done with the cell, or a resolver ended it.
    pub(super) fn has_ended(&self) -> bool {
        self.0.state.load(Ordering::Acquire) != PENDING
    }

    pub(super) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Result<Outcome<T>, Abandoned>> {
        let cell = &*self.0;
        let mut state = cell.state.load(Ordering::Acquire);
        if state == PENDING {
            cell.waker.register(cx.waker());
            // Look again: the writer may have finished before the waker was in.
            state = cell.state.load(Ordering::Acquire);
            if state == PENDING {
                return Poll::Pending;
            }
        }
        if state == TIMED_OUT {
            // The slot is still the writer's: the outcome carries no value.
            let attempts = cell.timed_out_after.load(Ordering::Relaxed);
            return Poll::Ready(Ok(Outcome::TimedOut { attempts }));
        }
        // SAFETY: the state is `RESOLVED` or `ABANDONED` (seen with
        // `Acquire`), so the writer is done with the slot for good; `&mut
        // self` makes this the only reader.
        let slot = unsafe { &mut *cell.slot.get() };
        Poll::Ready(match std::mem::replace(slot, Slot::Empty) {
            Slot::Outcome(outcome) => Ok(outcome),
            // Abandoned, or the outcome was taken by an earlier poll.
            Slot::Task(_) | Slot::Empty => Err(Abandoned),
        })
    }
}

#[cfg(all(test, not(workerpool_loom)))]
mod tests {
    use std::convert::Infallible;
    use std::sync::atomic::AtomicUsize;
    use std::task::{Wake, Waker};

    use super::*;
    use crate::task::TaskContext;

    struct Echo(u32);

    impl Task for Echo {
        type Output = u32;
        type Error = Infallible;
        type State = ();

        async fn run(&mut self, _: &mut TaskContext<()>) -> Result<u32, Infallible> {
            Ok(self.0)
        }
    }

    /// A waker that counts its wake-ups.
    #[derive(Default)]
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn completed(output: u32) -> Outcome<Echo> {
        Outcome::Completed {
            output,
            attempts: 1,
        }
    }

    #[test]
    fn the_writer_holds_the_task_until_it_resolves() {
        let (mut writer, _reader) = new(Echo(7));
        assert_eq!(writer.task().map(|t| t.0), Some(7));
        writer.task_mut().unwrap().0 = 8;
        assert_eq!(writer.take_task().map(|t| t.0), Some(8));
        assert!(writer.task().is_none());
    }

    #[test]
    fn a_waiting_reader_is_woken_with_the_outcome() {
        let (writer, mut reader) = new(Echo(1));
        let count = Arc::new(Count::default());
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        assert!(reader.poll(&mut cx).is_pending());
        writer.resolve(completed(5), false);
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        match reader.poll(&mut cx) {
            Poll::Ready(Ok(outcome)) => assert_eq!(outcome.output(), Some(5)),
            _ => panic!("expected the outcome"),
        }
    }

    #[test]
    fn a_writer_dropped_without_an_outcome_leaves_the_reader_abandoned() {
        let (writer, mut reader) = new(Echo(1));
        drop(writer);
        let mut cx = Context::from_waker(Waker::noop());
        assert!(matches!(reader.poll(&mut cx), Poll::Ready(Err(Abandoned))));
    }

    #[test]
    fn an_outcome_written_on_another_thread_is_read_whole() {
        for i in 0..200 {
            let (writer, mut reader) = new(Echo(i));
            let thread = std::thread::spawn(move || writer.resolve(completed(i), false));
            let outcome = futures::executor::block_on(std::future::poll_fn(|cx| reader.poll(cx)));
            thread.join().unwrap();
            assert_eq!(outcome.ok().and_then(Outcome::output), Some(i));
        }
    }

    fn poll_now(reader: &mut Reader<Echo>) -> Poll<Result<Outcome<Echo>, Abandoned>> {
        reader.poll(&mut Context::from_waker(Waker::noop()))
    }

    #[test]
    fn a_resolver_times_a_cell_out_and_the_writer_comes_too_late() {
        let (writer, mut reader) = new(Echo(1));
        let resolver = writer.resolver();
        assert!(poll_now(&mut reader).is_pending());
        assert!(resolver.time_out(2));
        match poll_now(&mut reader) {
            Poll::Ready(Ok(Outcome::TimedOut { attempts: 2 })) => {}
            _ => panic!("expected the resolver's TimedOut"),
        }
        // The blocked thread comes back with a result: nobody reads it.
        writer.resolve(completed(9), true);
        drop(resolver);
    }

    #[test]
    fn a_writer_that_resolves_first_wins_over_its_resolver() {
        let (writer, mut reader) = new(Echo(1));
        let resolver = writer.resolver();
        writer.resolve(completed(4), true);
        assert!(!resolver.time_out(1));
        match poll_now(&mut reader) {
            Poll::Ready(Ok(outcome)) => assert_eq!(outcome.output(), Some(4)),
            _ => panic!("expected the writer's outcome"),
        }
    }

    #[test]
    fn a_writer_dropped_after_its_resolver_ended_the_cell_leaves_it_timed_out() {
        let (writer, mut reader) = new(Echo(1));
        let resolver = writer.resolver();
        assert!(resolver.time_out(1));
        drop(writer);
        assert!(matches!(
            poll_now(&mut reader),
            Poll::Ready(Ok(Outcome::TimedOut { attempts: 1 }))
        ));
    }
}

/// Model checks (see `crate::sync`): every interleaving of a writer, its
/// reader and a resolver on loom's threads.
#[cfg(all(test, workerpool_loom))]
mod loom_tests {
    use std::convert::Infallible;
    use std::future::poll_fn;
    use std::task::{Wake, Waker};

    use loom::thread;

    use super::*;
    use crate::task::TaskContext;

    /// Something loom counts: a model that leaks one, or drops one twice, fails.
    type Token = loom::sync::Arc<()>;

    fn token() -> Token {
        loom::sync::Arc::new(())
    }

    /// A task that holds a token, and whose output is one.
    struct Held(Token);

    impl Task for Held {
        type Output = Token;
        type Error = Infallible;
        type State = ();

        async fn run(&mut self, _: &mut TaskContext<()>) -> Result<Token, Infallible> {
            Ok(self.0.clone())
        }
    }

    fn completed() -> Outcome<Held> {
        Outcome::Completed {
            output: token(),
            attempts: 1,
        }
    }

    /// A waker that counts its wake-ups (loom runs its threads one at a
    /// time, so a plain atomic counts them all).
    #[derive(Default)]
    struct Count(std::sync::atomic::AtomicUsize);

    impl Wake for Count {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// The writer resolves on one thread while the reader polls on another:
    /// a reader that was told to wait is woken exactly once, and the outcome
    /// it then reads is the one written, whole (loom checks the slot's
    /// accesses for races); the task and the outcome each drop once.
    #[test]
    fn loom_resolve_while_the_reader_polls() {
        crate::sync::model(|| {
            let (writer, mut reader) = new(Held(token()));
            let writing = thread::spawn(move || writer.resolve(completed(), false));
            let count = std::sync::Arc::new(Count::default());
            let waker = Waker::from(count.clone());
            let first = reader.poll(&mut Context::from_waker(&waker));
            writing.join().unwrap();
            let wakes = count.0.load(Ordering::SeqCst);
            let outcome = match first {
                Poll::Pending => {
                    assert_eq!(wakes, 1, "a waiting reader is woken, once");
                    match reader.poll(&mut Context::from_waker(Waker::noop())) {
                        Poll::Ready(outcome) => outcome,
                        Poll::Pending => panic!("woken, but still pending"),
                    }
                }
                Poll::Ready(outcome) => {
                    assert!(wakes <= 1);
                    outcome
                }
            };
            assert!(matches!(
                outcome,
                Ok(Outcome::Completed { attempts: 1, .. })
            ));
        });
    }

    /// A writer dropped on one thread while the reader waits on another: the
    /// reader wakes and finds the cell abandoned, and drops the task.
    #[test]
    fn loom_writer_dropped_while_the_reader_waits() {
        crate::sync::model(|| {
            let (writer, mut reader) = new(Held(token()));
            let dropping = thread::spawn(move || drop(writer));
            let outcome = loom::future::block_on(poll_fn(|cx| reader.poll(cx)));
            dropping.join().unwrap();
            assert!(matches!(outcome, Err(Abandoned)));
        });
    }

    /// A resolver times the cell out while its writer resolves it, and the
    /// reader waits: exactly one of the two ends it, and the reader sees that
    /// one's outcome; the late outcome drops with the cell.
    #[test]
    fn loom_time_out_while_the_writer_resolves() {
        crate::sync::model(|| {
            let (writer, mut reader) = new(Held(token()));
            let resolver = writer.resolver();
            let writing = thread::spawn(move || writer.resolve(completed(), true));
            let timing_out = thread::spawn(move || resolver.time_out(2));
            let outcome = loom::future::block_on(poll_fn(|cx| reader.poll(cx)));
            let timed_out = timing_out.join().unwrap();
            writing.join().unwrap();
            match outcome {
                Ok(Outcome::TimedOut { attempts: 2 }) => assert!(timed_out),
                Ok(Outcome::Completed { .. }) => assert!(!timed_out),
                _ => panic!("neither the writer's outcome nor the resolver's"),
            }
        });
    }

    /// A resolver times the cell out while its writer is dropped without an
    /// outcome: the reader sees whichever came first.
    #[test]
    fn loom_time_out_while_the_writer_is_dropped() {
        crate::sync::model(|| {
            let (writer, mut reader) = new(Held(token()));
            let resolver = writer.resolver();
            let dropping = thread::spawn(move || drop(writer));
            let timed_out = resolver.time_out(1);
            let outcome = loom::future::block_on(poll_fn(|cx| reader.poll(cx)));
            dropping.join().unwrap();
            match outcome {
                Ok(Outcome::TimedOut { attempts: 1 }) => assert!(timed_out),
                Err(Abandoned) => assert!(!timed_out),
                _ => panic!("neither abandoned nor timed out"),
            }
        });
    }

    /// All three ends let go at once, the reader unread: whichever is last
    /// drops the cell, and the task and the outcome in it, once.
    #[test]
    fn loom_every_end_lets_go_at_once() {
        crate::sync::model(|| {
            let (writer, reader) = new(Held(token()));
            let resolver = writer.resolver();
            let writing = thread::spawn(move || writer.resolve(completed(), true));
            let timing_out = thread::spawn(move || {
                resolver.time_out(1);
            });
            drop(reader);
            writing.join().unwrap();
            timing_out.join().unwrap();
        });
    }
}

/// Stress: threads racing the ends of many cells, on the real atomics.
#[cfg(all(test, not(workerpool_loom)))]
mod stress_tests {
    use std::convert::Infallible;
    use std::future::poll_fn;
    use std::sync::atomic::AtomicUsize;
    use std::sync::mpsc;
    use std::thread;

    use super::*;
    use crate::task::TaskContext;

    static MADE: AtomicUsize = AtomicUsize::new(0);
    static DROPPED: AtomicUsize = AtomicUsize::new(0);

    /// Counts itself made and dropped: each must drop once.
    struct Tracked;

    impl Tracked {
        fn new() -> Self {
            MADE.fetch_add(1, Ordering::Relaxed);
            Tracked
        }
    }

    impl Drop for Tracked {
        fn drop(&mut self) {
            DROPPED.fetch_add(1, Ordering::Relaxed);
        }
    }

    struct Job(#[allow(dead_code)] Tracked);

    impl Task for Job {
        type Output = (usize, Tracked);
        type Error = Infallible;
        type State = ();

        async fn run(&mut self, _: &mut TaskContext<()>) -> Result<Self::Output, Infallible> {
            Ok((0, Tracked::new()))
        }
    }

    /// Writers resolve (or are dropped), resolvers time out and readers wait,
    /// each on a thread of its own and all at once: every reader gets the
    /// outcome of whichever end came first, exactly one of the writer and
    /// the resolver wins, and every task and outcome drops exactly once.
    #[test]
    fn stress_writers_resolvers_and_readers_race() {
        const CELLS: usize = 50_000;
        let (to_writer, writers) = mpsc::channel::<(usize, Writer<Job>)>();
        let (to_resolver, resolvers) = mpsc::channel::<(usize, Resolver<Job>)>();
        let (to_reader, readers) = mpsc::channel::<(usize, Reader<Job>)>();
        let writing = thread::spawn(move || {
            for (i, writer) in writers {
                if i % 5 == 0 {
                    drop(writer);
                } else {
                    let outcome = Outcome::Completed {
                        output: (i, Tracked::new()),
                        attempts: 1,
                    };
                    writer.resolve(outcome, i % 2 == 0);
                }
            }
        });
        let resolving = thread::spawn(move || {
            resolvers
                .into_iter()
                .map(|(i, resolver)| (i, resolver.time_out(3)))
                .collect::<Vec<_>>()
        });
        let reading = thread::spawn(move || {
            readers
                .into_iter()
                .map(|(i, mut reader)| {
                    let outcome = futures::executor::block_on(poll_fn(|cx| reader.poll(cx)));
                    let seen = match outcome {
                        Ok(Outcome::Completed { output: (n, _), .. }) => {
                            assert_eq!(n, i, "another cell's outcome");
                            'C'
                        }
                        Ok(Outcome::TimedOut { attempts: 3 }) => 'T',
                        Err(Abandoned) => 'A',
                        Ok(_) => panic!("an outcome nobody wrote"),
                    };
                    (i, seen)
                })
                .collect::<Vec<_>>()
        });
        for i in 0..CELLS {
            let (writer, reader) = new(Job(Tracked::new()));
            // Watched cells (even ones) have a resolver racing their writer.
            if i % 2 == 0 {
                to_resolver.send((i, writer.resolver())).unwrap();
            }
            to_reader.send((i, reader)).unwrap();
            to_writer.send((i, writer)).unwrap();
        }
        drop((to_writer, to_resolver, to_reader));
        writing.join().unwrap();
        let won: std::collections::HashMap<_, _> = resolving.join().unwrap().into_iter().collect();
        let seen = reading.join().unwrap();
        assert_eq!(seen.len(), CELLS);
        let mut timed_out = 0;
        for (i, seen) in seen {
            let expected = match (won.get(&i), i % 5 == 0) {
                (Some(true), _) => 'T',
                (_, true) => 'A',
                (_, false) => 'C',
            };
            assert_eq!(seen, expected, "cell {i}");
            timed_out += usize::from(seen == 'T');
        }
        assert_eq!(
            MADE.load(Ordering::Relaxed),
            DROPPED.load(Ordering::Relaxed),
            "a task or an outcome leaked, or dropped twice"
        );
        // Not a check of the code, but of the test: the races happened.
        eprintln!("{timed_out} of {CELLS} cells timed out");
    }
}
