//! The one allocation a task makes in the pool: a cell shared by the task's job
//! and its handle. It holds the task for as long as the job lives, then the
//! task's outcome until the handle takes it.
//!
//! A channel to the handle would be a second home for the task: the job would
//! carry it through the queue while a oneshot, allocated beside it, waited for
//! the outcome (which may be the task itself, handed back). One cell for both
//! halves the memory a queued task costs.

use std::cell::UnsafeCell;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll};

use futures::task::AtomicWaker;

use crate::contain::drop_contained;
use crate::outcome::Outcome;
use crate::task::Task;

/// The writer may still use the slot.
const PENDING: u8 = 0;
/// The slot holds the outcome, and belongs to the reader.
const RESOLVED: u8 = 1;
/// The writer went without an outcome.
const ABANDONED: u8 = 2;

struct Cell<T: Task> {
    state: AtomicU8,
    slot: UnsafeCell<Slot<T>>,
    waker: AtomicWaker,
}

enum Slot<T: Task> {
    Task(T),
    Outcome(Outcome<T>),
    Empty,
}

// SAFETY: `slot` is used by one side at a time. The `Writer` (there is one,
// and it is not `Clone`) uses it only while the state is `PENDING`, and sets
// `RESOLVED` with `Release` after its last use; the `Reader` (one, not `Clone`)
// uses it only after seeing `RESOLVED` with `Acquire`. What crosses threads in
// the slot is a task or its outcome, both `Send`.
unsafe impl<T: Task> Send for Cell<T> {}
unsafe impl<T: Task> Sync for Cell<T> {}

/// Makes a cell holding `task`, and its two ends.
pub(super) fn new<T: Task>(task: T) -> (Writer<T>, Reader<T>) {
    let cell = Arc::new(Cell {
        state: AtomicU8::new(PENDING),
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
    pub(super) fn resolve(mut self, outcome: Outcome<T>) {
        let previous = std::mem::replace(self.slot_mut(), Slot::Outcome(outcome));
        self.finish(RESOLVED);
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

    /// Gives the slot up to the reader for good.
    fn finish(&self, state: u8) {
        self.0.state.store(state, Ordering::Release);
        self.0.waker.wake();
    }
}

impl<T: Task> Drop for Writer<T> {
    fn drop(&mut self) {
        // Only this writer ever changes the state, so it sees its own store.
        if self.0.state.load(Ordering::Relaxed) == PENDING {
            self.finish(ABANDONED);
        }
    }
}

/// The handle's end.
pub(super) struct Reader<T: Task>(Arc<Cell<T>>);

/// The writer went without writing an outcome.
pub(super) struct Abandoned;

impl<T: Task> Reader<T> {
    pub(super) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Result<Outcome<T>, Abandoned>> {
        let cell = &*self.0;
        if cell.state.load(Ordering::Acquire) == PENDING {
            cell.waker.register(cx.waker());
            // Look again: the writer may have finished before the waker was in.
            if cell.state.load(Ordering::Acquire) == PENDING {
                return Poll::Pending;
            }
        }
        // SAFETY: the state is no longer `PENDING` (seen with `Acquire`), so
        // the writer is done with the slot for good; `&mut self` makes this
        // the only reader.
        let slot = unsafe { &mut *cell.slot.get() };
        Poll::Ready(match std::mem::replace(slot, Slot::Empty) {
            Slot::Outcome(outcome) => Ok(outcome),
            // Abandoned, or the outcome was taken by an earlier poll.
            Slot::Task(_) | Slot::Empty => Err(Abandoned),
        })
    }
}

#[cfg(test)]
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
        writer.resolve(completed(5));
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
            let thread = std::thread::spawn(move || writer.resolve(completed(i)));
            let outcome = futures::executor::block_on(std::future::poll_fn(|cx| reader.poll(cx)));
            thread.join().unwrap();
            assert_eq!(outcome.ok().and_then(Outcome::output), Some(i));
        }
    }
}
