//! The two ways a scenario feeds a pool, whichever pool it is: a stream of
//! tasks with a bounded window, and one task at a time.
//!
//! Both take a `submit` closure that starts one task at once (not when its
//! future is first polled) and returns a future of whether the task completed.
//! Both panic unless every task completed, so that a broken pool cannot
//! report a fast time.

use std::collections::VecDeque;
use std::future::Future;
use std::time::{Duration, Instant};

/// Most tasks the streaming submitter leaves outstanding at once.
pub const WINDOW: usize = 1024;

/// Submits `tasks` tasks with at most [`WINDOW`] outstanding, waiting for the
/// oldest when the window is full, and returns the time taken.
///
/// # Panics
///
/// Unless every task completed.
pub async fn stream<F>(tasks: usize, mut submit: impl FnMut() -> F) -> Duration
where
    F: Future<Output = bool>,
{
    let mut window = VecDeque::with_capacity(WINDOW);
    let mut completed = 0usize;
    let start = Instant::now();
    for _ in 0..tasks {
        if window.len() == WINDOW {
            let oldest: F = window.pop_front().expect("the window is full");
            completed += usize::from(oldest.await);
        }
        window.push_back(submit());
    }
    for task in window {
        completed += usize::from(task.await);
    }
    let elapsed = start.elapsed();
    assert_eq!(completed, tasks, "some tasks did not complete");
    elapsed
}

/// Runs `count` round trips one after the other (the next starts once the
/// previous one's result is in) and returns each one's time in nanoseconds,
/// sorted.
///
/// `round_trip` submits one task and waits for its result, so it includes
/// whatever waiting the submit itself does.
///
/// # Panics
///
/// Unless every round trip completed.
pub async fn round_trips<F>(count: usize, mut round_trip: impl FnMut() -> F) -> Vec<u64>
where
    F: Future<Output = bool>,
{
    let mut times = Vec::with_capacity(count);
    let mut completed = 0usize;
    for _ in 0..count {
        let start = Instant::now();
        let done = round_trip().await;
        let elapsed = start.elapsed();
        completed += usize::from(done);
        // A round trip beyond u64 nanoseconds (584 years) is not one we will see.
        times.push(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX));
    }
    assert_eq!(completed, count, "some round trips did not complete");
    times.sort_unstable();
    times
}
