//! The line from a supervisor to one of its workers.
//!
//! At most two orders ever wait on it: the supervisor sends `Run` only to an
//! idle worker (which is busy from then until it reports), and `Quit` once,
//! after which it sends nothing more. A two-place ring therefore holds them
//! without allocating, where a general channel pays for a list of blocks, a
//! count of senders and the runtime's cooperative budget on every order.

use std::future::poll_fn;
use std::task::{Context, Poll};
use std::time::Duration;

use actix::clock::Instant;
use crossbeam_utils::CachePadded;

use crate::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use crate::sync::{Arc, ArrayQueue, AtomicWaker};

/// What the two ends share.
struct Shared<O> {
    orders: ArrayQueue<O>,
    /// The worker, while it waits for an order.
    waker: AtomicWaker,
    /// The supervisor let go of its end: no order will come.
    closed: AtomicBool,
    /// The worker is in the middle of a take from the backlog (see
    /// `Backlog::pull_shared`): one flag per worker, so that workers on
    /// different threads never write to the same cache line for it.
    taking: AtomicBool,
    /// The worker's seat: which of its watched attempts (those with a
    /// deadline) it runs, if any, or `ABANDONED` (see [`Sender::abandon`]).
    seat: AtomicU64,
    /// Which attempts the supervisor wants dropped. The worker reads it as
    /// each attempt begins, and the supervisor writes it only to cut one
    /// off: on a line of its own, it stays in the worker's cache while
    /// orders and wake-ups go back and forth.
    abort: CachePadded<Abort>,
    /// The deadline of the watched attempt the seat names, in nanoseconds
    /// after `epoch`; written before the seat says it runs.
    deadline: AtomicU64,
    epoch: Instant,
}

/// In the seat word: the watched attempt numbered in the bits above is running.
const RUNNING: u64 = 1;
/// The seat word of a worker its supervisor has given up on.
const ABANDONED: u64 = u64::MAX;

/// Which attempts the supervisor wants dropped: every one (a shutdown's
/// deadline has passed), and the attempts of one task (a cancel). Two words,
/// so that a cut-off can never undo a shutdown's abort. Beside them, whether
/// the worker may take more from the backlog: read after every attempt,
/// where the abort words are read before it.
struct Abort {
    /// The worker was told to quit: it takes nothing more from the backlog.
    quitting: AtomicBool,
    every: AtomicBool,
    /// `NONE`, or the cut-off word of one task (see [`cut_off_word`]).
    task: AtomicU64,
}

/// In the cut-off word: no task's attempts are to be dropped.
const NONE: u64 = 0;

/// The cut-off word that asks for the attempts of task `id` to be dropped.
/// Task ids never come near `u64::MAX`, so it is never `NONE`. A word left
/// over from a cancel whose task had already ended names no task the worker
/// will run again.
fn cut_off_word(id: u64) -> u64 {
    id.wrapping_add(1)
}

/// The supervisor's end.
pub(super) struct Sender<O>(Arc<Shared<O>>);

/// The worker's end.
pub(super) struct Receiver<O>(Arc<Shared<O>>);

/// A new line, both ends.
pub(super) fn line<O>() -> (Sender<O>, Receiver<O>) {
    let shared = Arc::new(Shared {
        orders: ArrayQueue::new(2),
        waker: AtomicWaker::new(),
        closed: AtomicBool::new(false),
        taking: AtomicBool::new(false),
        seat: AtomicU64::new(0),
        abort: CachePadded::new(Abort {
            quitting: AtomicBool::new(false),
            every: AtomicBool::new(false),
            task: AtomicU64::new(NONE),
        }),
        deadline: AtomicU64::new(0),
        epoch: Instant::now(),
    });
    (Sender(shared.clone()), Receiver(shared))
}

impl<O> Sender<O> {
    /// Sends an order. If the worker is gone the order waits, unread, and
    /// drops with the line.
    pub(super) fn send(&self, order: O) {
        // A third order would break the rule in the module's docs. Should
        // that ever happen, it is dropped (a job in it hands its task back)
        // rather than let the ring grow or the supervisor panic.
        if let Err(order) = self.0.orders.push(order) {
            log::error!("more than two orders waiting for one worker; one is dropped");
            drop(order);
        }
        self.0.waker.wake();
    }
}

impl<O> Sender<O> {
    /// The worker's take flag.
    pub(super) fn taking(&self) -> &AtomicBool {
        &self.0.taking
    }

    /// Gives up on the worker if it is still running its watched attempt
    /// number `seq`: it is stuck. Either this succeeds, and the worker learns
    /// it when the attempt ends (and reports, and takes nothing more), or the
    /// worker ended that attempt first, and its report is on its way.
    pub(super) fn abandon(&self, seq: u64) -> bool {
        self.0
            .seat
            .compare_exchange(
                seq << 1 | RUNNING,
                ABANDONED,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
    }

    /// The deadline of the watched attempt number `seq`, while the worker
    /// runs it: the deadline counts from when the worker began it.
    pub(super) fn running_until(&self, seq: u64) -> Option<Instant> {
        if self.0.seat.load(Ordering::Acquire) != seq << 1 | RUNNING {
            return None;
        }
        // Written before the seat named `seq` (see `begin_watched`); should
        // the worker have moved on since, the supervisor's `abandon(seq)`
        // fails whatever this says.
        let nanos = self.0.deadline.load(Ordering::Relaxed);
        Some(self.0.epoch + Duration::from_nanos(nanos))
    }

    /// Tells the worker to take nothing more from the backlog: it has been
    /// told to quit.
    pub(super) fn take_nothing_more(&self) {
        self.0.abort.quitting.store(true, Ordering::Release);
    }

    /// Asks the worker to drop the attempt in hand at once, and to take
    /// nothing more.
    pub(super) fn abort(&self) {
        self.0.abort.every.store(true, Ordering::Release);
        self.0.waker.wake();
    }

    /// Asks the worker to drop its attempt of task `id`, if it runs one (a
    /// cancel); a shutdown's abort, asked before, stays.
    pub(super) fn cut_off(&self, id: u64) {
        self.0.abort.task.store(cut_off_word(id), Ordering::Release);
        self.0.waker.wake();
    }
}

impl<O> Drop for Sender<O> {
    fn drop(&mut self) {
        self.0.closed.store(true, Ordering::Release);
        self.0.waker.wake();
    }
}

impl<O> Receiver<O> {
    /// The worker's take flag.
    pub(super) fn taking(&self) -> &AtomicBool {
        &self.0.taking
    }

    /// The worker starts its watched attempt number `seq`, to end by
    /// `deadline`.
    pub(super) fn begin_watched(&self, seq: u64, deadline: Instant) {
        let nanos = deadline.saturating_duration_since(self.0.epoch).as_nanos();
        let nanos = u64::try_from(nanos).unwrap_or(u64::MAX);
        self.0.deadline.store(nanos, Ordering::Relaxed);
        // Only the worker moves the seat forward; the supervisor only ever
        // replaces a running number with `ABANDONED`, which ends the worker.
        // `Release`: the deadline above is seen with the number.
        self.0.seat.store(seq << 1 | RUNNING, Ordering::Release);
    }

    /// The worker ended its watched attempt number `seq`: `false` if the
    /// supervisor gave up on it first.
    pub(super) fn end_watched(&self, seq: u64) -> bool {
        self.0
            .seat
            .compare_exchange(
                seq << 1 | RUNNING,
                seq << 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
    }

    /// Whether the supervisor asked for every attempt to be dropped (a
    /// shutdown's deadline).
    pub(super) fn aborted(&self) -> bool {
        self.0.abort.every.load(Ordering::Acquire)
    }

    /// Whether the worker may take a job from the backlog: it has not been
    /// told to quit. (A quit told during a take is read after it: the job
    /// taken is the worker's last.)
    #[inline]
    pub(super) fn may_take(&self) -> bool {
        !self.0.abort.quitting.load(Ordering::Acquire)
    }

    /// Whether the supervisor wants the attempt of task `id` dropped.
    pub(super) fn drops(&self, id: u64) -> bool {
        let abort = &self.0.abort;
        abort.every.load(Ordering::Acquire)
            || abort.task.load(Ordering::Acquire) == cut_off_word(id)
    }

    /// Ready once the supervisor asks for the worker's attempt of task `id`
    /// to be dropped.
    pub(super) fn poll_abort(&self, id: u64, cx: &mut Context<'_>) -> Poll<()> {
        if self.drops(id) {
            return Poll::Ready(());
        }
        // The worker is not waiting for orders while it runs an attempt, so
        // it can wait on the same waker; a wake for an order is spurious here.
        self.0.waker.register(cx.waker());
        if self.drops(id) {
            return Poll::Ready(());
        }
        Poll::Pending
    }

    /// The next order, or `None` once the supervisor has let go of the line
    /// and every order sent is read.
    pub(super) async fn recv(&mut self) -> Option<O> {
        poll_fn(|cx| {
            if let Some(order) = self.0.orders.pop() {
                return Poll::Ready(Some(order));
            }
            self.0.waker.register(cx.waker());
            // Sent (or let go) between the first look and the registration.
            if let Some(order) = self.0.orders.pop() {
                return Poll::Ready(Some(order));
            }
            if self.0.closed.load(Ordering::Acquire) {
                // Close, then read again: an order sent just before the
                // close may have landed after the look above. Seeing the
                // close (`Acquire`) makes every order sent before it visible.
                return Poll::Ready(self.0.orders.pop());
            }
            Poll::Pending
        })
        .await
    }
}

#[cfg(all(test, not(workerpool_loom)))]
mod tests {
    use super::*;

    #[actix_rt::test]
    async fn orders_come_in_the_order_sent_then_none_once_let_go() {
        let (sender, mut receiver) = line::<u8>();
        sender.send(1);
        sender.send(2);
        drop(sender);
        assert_eq!(receiver.recv().await, Some(1));
        assert_eq!(receiver.recv().await, Some(2));
        assert_eq!(receiver.recv().await, None);
    }

    #[actix_rt::test]
    async fn a_waiting_worker_wakes_for_an_order() {
        let (sender, mut receiver) = line::<u8>();
        let waiting = actix_rt::spawn(async move { receiver.recv().await });
        actix_rt::task::yield_now().await;
        assert!(!waiting.is_finished());
        sender.send(7);
        assert_eq!(waiting.await.unwrap(), Some(7));
    }

    #[test]
    fn a_cut_off_drops_only_the_attempt_of_its_task() {
        let (sender, receiver) = line::<u8>();
        let mut cx = Context::from_waker(std::task::Waker::noop());
        sender.cut_off(3);
        assert!(receiver.poll_abort(4, &mut cx).is_pending());
        assert!(receiver.poll_abort(3, &mut cx).is_ready());
        assert!(!receiver.aborted(), "a cut-off is no shutdown");
        sender.abort();
        assert!(receiver.poll_abort(4, &mut cx).is_ready());
        sender.cut_off(5);
        assert!(receiver.aborted(), "a cut-off undid the shutdown's abort");
    }

    #[actix_rt::test]
    async fn a_waiting_worker_wakes_when_the_supervisor_lets_go() {
        let (sender, mut receiver) = line::<u8>();
        let waiting = actix_rt::spawn(async move { receiver.recv().await });
        actix_rt::task::yield_now().await;
        drop(sender);
        assert_eq!(waiting.await.unwrap(), None);
    }
}

/// Model checks (see `crate::sync`): the supervisor's end and the worker's
/// on loom's threads.
#[cfg(all(test, workerpool_loom))]
mod loom_tests {
    use loom::thread;

    use super::*;

    /// A deadline `secs` seconds from now.
    fn later(secs: u64) -> Instant {
        Instant::now() + Duration::from_secs(secs)
    }

    /// The supervisor sends two orders and lets go while the worker reads:
    /// the worker reads both, in order, before it learns the line has ended
    /// (having seen the close, it reads once more).
    #[test]
    fn loom_orders_sent_before_the_sender_drops_are_read_before_none() {
        crate::sync::model(|| {
            let (sender, mut receiver) = line::<u8>();
            let sending = thread::spawn(move || {
                sender.send(1);
                sender.send(2);
            });
            let read = loom::future::block_on(async {
                let mut read = Vec::new();
                while let Some(order) = receiver.recv().await {
                    read.push(order);
                }
                read
            });
            sending.join().unwrap();
            assert_eq!(read, [1, 2]);
        });
    }

    /// The supervisor gives up on attempt 1 while the worker ends it and
    /// starts attempt 2: exactly one of the supervisor and the worker has
    /// its way with attempt 1, and attempt 2 is never given up on for it.
    #[test]
    fn loom_abandon_races_end_watched() {
        crate::sync::model(|| {
            let (sender, receiver) = line::<u8>();
            let working = thread::spawn(move || {
                receiver.begin_watched(1, later(1));
                let ended = receiver.end_watched(1);
                // A worker given up on takes nothing more.
                if ended {
                    receiver.begin_watched(2, later(2));
                    assert!(receiver.end_watched(2), "attempt 2 given up on");
                }
                ended
            });
            let abandoned = sender.abandon(1);
            let ended = working.join().unwrap();
            assert!(!(abandoned && ended), "both had their way with attempt 1");
            // Given up on before it began: the worker ends it, and the
            // supervisor learns so from its report.
            assert!(abandoned || ended);
        });
    }

    /// The supervisor looks at the deadline of attempt 1 while the worker
    /// begins it, ends it and begins attempt 2: if the seat names attempt 1,
    /// what the supervisor reads is attempt 1's deadline (never the one
    /// there before), or attempt 2's once the worker has moved on; and
    /// then it can no longer give up on attempt 1.
    #[test]
    fn loom_running_until_reads_the_deadline_the_seat_names() {
        crate::sync::model(|| {
            let (first, second) = (later(1), later(2));
            let (sender, receiver) = line::<u8>();
            let working = thread::spawn(move || {
                receiver.begin_watched(1, first);
                if receiver.end_watched(1) {
                    receiver.begin_watched(2, second);
                }
            });
            if let Some(deadline) = sender.running_until(1) {
                // Read in nanoseconds: within one of the one written.
                let near =
                    |d: Instant| deadline.max(d) - deadline.min(d) < Duration::from_micros(1);
                if near(second) {
                    assert!(!sender.abandon(1), "gave up on attempt 1 after it ended");
                } else {
                    assert!(near(first), "a deadline nobody wrote");
                }
            }
            working.join().unwrap();
        });
    }

    /// An abort, after an order, wakes the worker waiting on it.
    #[test]
    fn loom_abort_wakes_the_worker() {
        crate::sync::model(|| {
            let (sender, receiver) = line::<u8>();
            let aborting = thread::spawn(move || {
                sender.send(1);
                sender.abort();
                sender
            });
            loom::future::block_on(std::future::poll_fn(|cx| receiver.poll_abort(3, cx)));
            drop(aborting.join().unwrap());
        });
    }
    /// A cancel's cut-off of task 3 races a shutdown's abort while the
    /// worker runs task 3: the worker wakes, and the abort stays whichever
    /// came first (a cut-off never undoes it).
    #[test]
    fn loom_cut_off_wakes_the_worker_and_never_undoes_an_abort() {
        crate::sync::model(|| {
            let (sender, receiver) = line::<u8>();
            let sender = Arc::new(sender);
            let cutting = {
                let sender = sender.clone();
                thread::spawn(move || sender.cut_off(3))
            };
            sender.abort();
            loom::future::block_on(std::future::poll_fn(|cx| receiver.poll_abort(3, cx)));
            cutting.join().unwrap();
            assert!(receiver.aborted(), "a cut-off undid the shutdown's abort");
        });
    }
}

/// Stress: the two ends of many lines on threads of their own, on the real
/// queue.
#[cfg(all(test, not(workerpool_loom)))]
mod stress_tests {
    use std::sync::{Barrier, mpsc};
    use std::thread;

    use super::*;

    /// A deadline a minute from now.
    fn later() -> Instant {
        Instant::now() + Duration::from_secs(60)
    }

    /// A thread sends one or two orders on each line and lets go of it while
    /// the worker reads: every order comes out, in order, before `None`.
    #[test]
    fn stress_orders_sent_before_the_sender_drops_are_read_before_none() {
        const LINES: usize = 50_000;
        let (to_sender, senders) = mpsc::channel::<(Sender<usize>, usize)>();
        let sending = thread::spawn(move || {
            for (sender, n) in senders {
                sender.send(n);
                if n % 2 == 0 {
                    sender.send(n + 1);
                }
            }
        });
        for n in 0..LINES {
            let (sender, mut receiver) = line();
            to_sender.send((sender, n)).unwrap();
            let read = futures::executor::block_on(async {
                let mut read = Vec::new();
                while let Some(order) = receiver.recv().await {
                    read.push(order);
                }
                read
            });
            let expected: &[usize] = if n % 2 == 0 { &[n, n + 1] } else { &[n] };
            assert_eq!(read, expected, "line {n}");
        }
        drop(to_sender);
        sending.join().unwrap();
    }

    /// On each of many lines, the supervisor gives up on the attempt the
    /// worker is ending, and asks for an abort: exactly one of the two has
    /// its way with the attempt, and the abort always wakes the worker.
    #[test]
    fn stress_abandon_races_end_watched() {
        const ROUNDS: usize = 20_000;
        let start = std::sync::Arc::new(Barrier::new(2));
        let (to_supervisor, senders) = mpsc::sync_channel::<Sender<()>>(1);
        let supervising = thread::spawn({
            let start = start.clone();
            move || {
                senders
                    .into_iter()
                    .map(|sender| {
                        start.wait();
                        let abandoned = sender.abandon(1);
                        sender.abort();
                        abandoned
                    })
                    .collect::<Vec<_>>()
            }
        });
        let mut ended = Vec::with_capacity(ROUNDS);
        for _ in 0..ROUNDS {
            let (sender, receiver) = line::<()>();
            receiver.begin_watched(1, later());
            to_supervisor.send(sender).unwrap();
            start.wait();
            ended.push(receiver.end_watched(1));
            futures::executor::block_on(std::future::poll_fn(|cx| receiver.poll_abort(1, cx)));
        }
        drop(to_supervisor);
        let abandoned = supervising.join().unwrap();
        assert_eq!(abandoned.len(), ROUNDS);
        for (abandoned, ended) in abandoned.iter().zip(&ended) {
            assert!(abandoned != ended, "not exactly one had its way");
        }
        eprintln!(
            "{} of {ROUNDS} attempts given up on",
            abandoned.iter().filter(|&&a| a).count()
        );
    }
}
