//! A worker shares its arbiter: one that takes task after task from the
//! backlog, none of which ever waits, still gives its thread up now and then,
//! so that the other futures on that thread (the supervisor, an actix-web
//! handler, a timer) are not held up until the backlog runs dry.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use actix_workerpool::{Outcome, Pool, Task, TaskContext};

/// Notes, as it runs, how often the ticker had run by then.
struct Look {
    ticks: Arc<AtomicU64>,
}

impl Task for Look {
    type Output = u64;
    type Error = ();
    type State = ();

    async fn run(&mut self, _: &mut TaskContext<()>) -> Result<u64, ()> {
        Ok(self.ticks.load(Ordering::Relaxed))
    }
}

const TASKS: u64 = 10_000;

#[actix_rt::test]
async fn a_worker_taking_tasks_back_to_back_lets_other_futures_on_its_thread_run() {
    let pool = Pool::builder()
        .workers(1)
        .queue_capacity(TASKS as usize)
        .build()
        .unwrap();
    // Let the worker start, so that it takes the tasks from the backlog itself.
    pool.run_all([]).await.unwrap();
    let ticks = Arc::new(AtomicU64::new(0));
    let mut handles = Vec::new();
    for _ in 0..TASKS {
        let task = Look {
            ticks: ticks.clone(),
        };
        handles.push(pool.try_submit(task).unwrap());
    }
    // A future on the same thread that counts each of its turns.
    let ticker = actix_rt::spawn({
        let ticks = ticks.clone();
        async move {
            loop {
                ticks.fetch_add(1, Ordering::Relaxed);
                actix_rt::task::yield_now().await;
            }
        }
    });
    let mut seen = Vec::new();
    for handle in handles {
        match handle.await.unwrap() {
            Outcome::Completed { output, .. } => seen.push(output),
            other => panic!("expected Completed, got {other:?}"),
        }
    }
    ticker.abort();
    seen.dedup();
    // A worker gives its thread up after 128 tasks in a row (about 78
    // times here); one that gave it up only when the backlog ran dry would
    // show one or two turns, and one that took 256 in a row 39.
    assert!(
        seen.len() as u64 > TASKS / 256,
        "the ticker ran between tasks only {} times over {TASKS} tasks",
        seen.len()
    );
    assert_eq!(pool.stats().await.unwrap().completed, TASKS);
}
