//! A lane: an unbounded, lock-free queue whose one reader (the supervisor)
//! is woken when something is added, and which its reader can close.
//!
//! Both of the supervisor's inbound paths are lanes: the backlog of jobs and
//! the channel workers report on. A lane grows a block of 31 places at a time
//! and frees each block once it is read, so a message costs its own size and
//! a word, and none is allocated on its own.

use std::sync::atomic::{AtomicBool, Ordering, fence};
use std::task::{Context, Poll};

use crossbeam_queue::SegQueue;
use futures::task::AtomicWaker;

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

#[cfg(test)]
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
