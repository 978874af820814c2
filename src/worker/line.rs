//! The line from a supervisor to one of its workers.
//!
//! At most two orders ever wait on it: the supervisor sends `Run` only to an
//! idle worker (which is busy from then until it reports), and `Quit` once,
//! after which it sends nothing more. A two-place ring therefore holds them
//! without allocating, where a general channel pays for a list of blocks, a
//! count of senders and the runtime's cooperative budget on every order.

use std::future::poll_fn;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;

use crossbeam_queue::ArrayQueue;
use futures::task::AtomicWaker;

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

#[cfg(test)]
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

    #[actix_rt::test]
    async fn a_waiting_worker_wakes_when_the_supervisor_lets_go() {
        let (sender, mut receiver) = line::<u8>();
        let waiting = actix_rt::spawn(async move { receiver.recv().await });
        actix_rt::task::yield_now().await;
        drop(sender);
        assert_eq!(waiting.await.unwrap(), None);
    }
}
