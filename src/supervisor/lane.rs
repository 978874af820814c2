//! A lane: an unbounded, lock-free queue whose one reader (the supervisor)
//! is woken when something is added, and which its reader can close.
//!
//! Both of the supervisor's inbound paths are lanes: the backlog of jobs and
//! the channel workers report on. A lane grows a block of 31 places at a time
//! and frees each block once it is read, so a message costs its own size and
//! a word, and none is allocated on its own.

use std::task::{Context, Poll};

use crate::sync::atomic::{AtomicBool, Ordering, fence};
use crate::sync::{AtomicWaker, SegQueue};

pub(super) struct Lane<M> {
    queue: SegQueue<M>,
    /// The reader, while it waits.
    waker: AtomicWaker,
    /// The reader is gone: what is added now would never be read.
    closed: AtomicBool,
}

impl<M> Lane<M> {
    pub(super) fn new() -> Self {
        Lane {
            queue: SegQueue::new(),
            waker: AtomicWaker::new(),
            closed: AtomicBool::new(false),
        }
    }

    /// Adds a message and wakes the reader if it waits. On a closed lane the
    /// message is dropped at once.
    pub(super) fn push(&self, message: M) {
        self.queue.push(message);
        // Pairs with the fence in `close`: either this sees the lane closed,
        // or `close` sees the message.
        fence(Ordering::SeqCst);
        if self.closed.load(Ordering::Relaxed) {
            self.clear();
            return;
        }
        self.wake();
    }

    /// Wakes the reader if it waits.
    pub(super) fn wake(&self) {
        self.waker.wake();
    }

    /// The next message, if any.
    pub(super) fn pop(&self) -> Option<M> {
        // Two loads: much cheaper than a `pop` that finds nothing, which is
        // what most looks at an idle pool's lanes find.
        if self.queue.is_empty() {
            return None;
        }
        self.queue.pop()
    }

    /// The next message, or a wake-up when one is added.
    pub(super) fn poll_pop(&self, cx: &mut Context<'_>) -> Poll<M> {
        if let Some(message) = self.pop() {
            return Poll::Ready(message);
        }
        self.waker.register(cx.waker());
        // Added between the first look and the registration: no wake came.
        match self.pop() {
            Some(message) => Poll::Ready(message),
            None => Poll::Pending,
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    pub(super) fn len(&self) -> usize {
        self.queue.len()
    }

    /// The reader is gone: every message still here, and any added later,
    /// is dropped (a job among them hands its task back as it drops).
    pub(super) fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        self.clear();
    }

    fn clear(&self) {
        while let Some(message) = self.queue.pop() {
            drop(message);
        }
    }
}

#[cfg(all(test, not(workerpool_loom)))]
mod tests {
    use super::*;

    #[test]
    fn messages_come_out_in_the_order_they_went_in() {
        let lane = Lane::new();
        (0..100).for_each(|n| lane.push(n));
        assert_eq!(lane.len(), 100);
        let out: Vec<_> = std::iter::from_fn(|| lane.pop()).collect();
        assert_eq!(out, (0..100).collect::<Vec<_>>());
        assert!(lane.is_empty());
    }

    #[test]
    fn a_closed_lane_drops_what_it_holds_and_what_comes_later() {
        let lane = Lane::new();
        let held = std::sync::Arc::new(());
        lane.push(held.clone());
        lane.close();
        lane.push(held.clone());
        assert!(lane.is_empty());
        assert_eq!(std::sync::Arc::strong_count(&held), 1);
    }

    #[actix_rt::test]
    async fn a_waiting_reader_wakes_for_a_message() {
        let lane = std::sync::Arc::new(Lane::new());
        let reader = lane.clone();
        let waiting =
            actix_rt::spawn(async move { std::future::poll_fn(|cx| reader.poll_pop(cx)).await });
        actix_rt::task::yield_now().await;
        assert!(!waiting.is_finished());
        lane.push(7);
        assert_eq!(waiting.await.unwrap(), 7);
    }
}

/// Model checks (see `crate::sync`): a lane's writers, its reader and its
/// close on loom's threads.
#[cfg(all(test, workerpool_loom))]
mod loom_tests {
    use std::future::poll_fn;

    use loom::sync::Arc;
    use loom::sync::atomic::AtomicUsize;
    use loom::thread;

    use super::*;

    /// Something loom counts: a model that leaks one, or drops one twice, fails.
    type Token = Arc<()>;

    /// A push on one thread wakes the reader waiting on another.
    #[test]
    fn loom_push_wakes_a_waiting_reader() {
        crate::sync::model(|| {
            let lane = Arc::new(Lane::new());
            let pushing = thread::spawn({
                let lane = lane.clone();
                move || lane.push(7)
            });
            let message = loom::future::block_on(poll_fn(|cx| lane.poll_pop(cx)));
            pushing.join().unwrap();
            assert_eq!(message, 7);
            assert!(lane.is_empty());
        });
    }

    /// Pushes on one thread while the reader takes one and closes the lane on
    /// another: every message is either read or dropped by the close (or by
    /// the push that saw it closed), none is left behind.
    #[test]
    fn loom_push_while_the_reader_closes() {
        crate::sync::model(|| {
            let token = Token::new(());
            let lane = Arc::new(Lane::new());
            let pushing = thread::spawn({
                let (lane, token) = (lane.clone(), token.clone());
                move || {
                    lane.push(token.clone());
                    lane.push(token);
                }
            });
            drop(lane.pop());
            lane.close();
            pushing.join().unwrap();
            assert!(lane.is_empty(), "a message outlived the close");
            assert_eq!(Arc::strong_count(&token), 1, "a message was kept");
        });
    }

    /// Two writers push while the reader closes: as above, and a push that
    /// sees the lane closed may drop the other writer's message too.
    #[test]
    fn loom_two_writers_push_while_the_reader_closes() {
        crate::sync::model(|| {
            let token = Token::new(());
            let lane = Arc::new(Lane::new());
            let writers: Vec<_> = (0..2)
                .map(|_| {
                    let (lane, token) = (lane.clone(), token.clone());
                    thread::spawn(move || lane.push(token))
                })
                .collect();
            lane.close();
            writers.into_iter().for_each(|w| w.join().unwrap());
            assert!(lane.is_empty(), "a message outlived the close");
            assert_eq!(Arc::strong_count(&token), 1, "a message was kept");
        });
    }

    /// The supervisor's reports (`supervisor::inbox`, which is not in this
    /// build): a lane, and a count of its senders; a sender pushes, then
    /// lets go, and the last one wakes the reader. This is
    /// `InboxReader::poll_report`, line for line.
    struct Reports {
        lane: Lane<u32>,
        senders: AtomicUsize,
    }

    impl Reports {
        fn send_and_let_go(&self, message: u32) {
            self.lane.push(message);
            if self.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
                self.lane.wake();
            }
        }

        fn poll_report(&self, cx: &mut Context<'_>) -> Poll<Option<u32>> {
            if let Poll::Ready(message) = self.lane.poll_pop(cx) {
                return Poll::Ready(Some(message));
            }
            if self.senders.load(Ordering::Acquire) > 0 {
                return Poll::Pending;
            }
            Poll::Ready(self.lane.pop())
        }
    }

    /// Two senders each send a report and let go while the reader reads
    /// until the end: the reader pops, sees every sender gone, and pops once
    /// more before it concludes the reports have ended, so it reads both.
    #[test]
    fn loom_reports_sent_before_the_last_sender_goes_are_all_read() {
        crate::sync::model(|| {
            let reports = Arc::new(Reports {
                lane: Lane::new(),
                senders: AtomicUsize::new(2),
            });
            let senders: Vec<_> = (1..=2)
                .map(|n| {
                    let reports = reports.clone();
                    thread::spawn(move || reports.send_and_let_go(n))
                })
                .collect();
            let mut read = Vec::new();
            loom::future::block_on(poll_fn(|cx| {
                loop {
                    match reports.poll_report(cx) {
                        Poll::Ready(Some(message)) => read.push(message),
                        Poll::Ready(None) => return Poll::Ready(()),
                        Poll::Pending => return Poll::Pending,
                    }
                }
            }));
            senders.into_iter().for_each(|s| s.join().unwrap());
            read.sort_unstable();
            assert_eq!(read, [1, 2]);
        });
    }
}

/// Stress: many threads on one lane, on the real queue.
#[cfg(all(test, not(workerpool_loom)))]
mod stress_tests {
    use std::future::poll_fn;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;
    use std::thread;

    use super::*;

    const WRITERS: usize = 4;
    const EACH: usize = 50_000;

    /// Writers push on their own threads while a waiting reader (`poll_pop`)
    /// and two other takers (`pop`, as workers take from the backlog) read:
    /// each message comes out exactly once, and each taker sees any one
    /// writer's messages in the order they were pushed.
    #[test]
    fn stress_writers_and_takers() {
        /// `None` tells a taker to stop.
        type Message = Option<(usize, usize)>;
        let lane = Arc::new(Lane::<Message>::new());
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let lane = lane.clone();
                thread::spawn(move || (0..EACH).for_each(|n| lane.push(Some((w, n)))))
            })
            .collect();
        let check = |taken: &mut Vec<usize>, last: &mut [Option<usize>], m: (usize, usize)| {
            let (w, n) = m;
            assert!(last[w].is_none_or(|l| l < n), "out of order");
            last[w] = Some(n);
            taken.push(w * EACH + n);
        };
        let reader = thread::spawn({
            let lane = lane.clone();
            move || {
                let (mut taken, mut last) = (Vec::new(), [None; WRITERS]);
                while let Some(m) = futures::executor::block_on(poll_fn(|cx| lane.poll_pop(cx))) {
                    check(&mut taken, &mut last, m);
                }
                taken
            }
        });
        let takers: Vec<_> = (0..2)
            .map(|_| {
                let lane = lane.clone();
                thread::spawn(move || {
                    let (mut taken, mut last) = (Vec::new(), [None; WRITERS]);
                    loop {
                        match lane.pop() {
                            Some(Some(m)) => check(&mut taken, &mut last, m),
                            Some(None) => return taken,
                            None => thread::yield_now(),
                        }
                    }
                })
            })
            .collect();
        writers.into_iter().for_each(|w| w.join().unwrap());
        // One stop for each of the three: each takes exactly one, and stops.
        (0..3).for_each(|_| lane.push(None));
        let mut seen = vec![0u8; WRITERS * EACH];
        for taken in takers.into_iter().chain([reader]) {
            for m in taken.join().unwrap() {
                seen[m] += 1;
            }
        }
        assert!(
            seen.iter().all(|&n| n == 1),
            "a message lost or taken twice"
        );
        assert!(lane.is_empty());
    }

    static MADE: AtomicUsize = AtomicUsize::new(0);
    static DROPPED: AtomicUsize = AtomicUsize::new(0);

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

    /// Writers push while the reader reads, then closes the lane, and they
    /// go on pushing: every message is read or dropped, once, and none is
    /// left in the lane.
    #[test]
    fn stress_writers_push_while_the_reader_closes() {
        for round in 0..20 {
            let lane = Arc::new(Lane::new());
            let pushed = Arc::new(AtomicUsize::new(0));
            let writers: Vec<_> = (0..WRITERS)
                .map(|_| {
                    let (lane, pushed) = (lane.clone(), pushed.clone());
                    thread::spawn(move || {
                        for _ in 0..2_000 {
                            lane.push(Tracked::new());
                            pushed.fetch_add(1, Ordering::Relaxed);
                        }
                    })
                })
                .collect();
            // Read some (more each round), then close mid-stream.
            let mut read = 0;
            while read < round * 200 {
                if lane.pop().is_some() {
                    read += 1;
                }
            }
            lane.close();
            writers.into_iter().for_each(|w| w.join().unwrap());
            assert!(lane.is_empty(), "a message outlived the close");
            assert!(pushed.load(Ordering::Relaxed) >= read);
        }
        assert_eq!(
            MADE.load(Ordering::Relaxed),
            DROPPED.load(Ordering::Relaxed),
            "a message leaked, or dropped twice"
        );
    }
}
