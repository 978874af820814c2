//! ARCHITECTURE.md, The promise, rule 4: a failed worker is replaced in its
//! slot with fresh state, restarts back off, and a crash loop ends in a clean,
//! explained stop.

mod common;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use actix_workerpool::{
    Jitter, Outcome, OutcomeKind, Pool, PoolEvent, RestartReason, StopReason, Task, TaskContext,
};
use common::Events;

/// Reports which worker ran it and which state that worker was made with.
struct Report {
    panics: bool,
}

impl Task for Report {
    /// (worker slot, number of the state it ran with)
    type Output = (usize, u32);
    type Error = Infallible;
    type State = u32;

    async fn run(&mut self, cx: &mut TaskContext<u32>) -> Result<(usize, u32), Infallible> {
        if self.panics {
            panic!("asked to panic");
        }
        Ok((cx.worker(), *cx.state()))
    }
}

const OK: Report = Report { panics: false };
const PANICS: Report = Report { panics: true };

/// A state factory that numbers the states it makes: 0, 1, 2, ...
fn numbered_states() -> impl Fn(usize) -> Result<u32, Infallible> + Send + Sync + 'static {
    let made = Arc::new(AtomicU32::new(0));
    move |_slot| Ok(made.fetch_add(1, Ordering::SeqCst))
}

#[actix_rt::test]
async fn a_panicking_task_restarts_its_worker_in_the_same_slot_with_fresh_state() {
    tokio::time::pause();
    let pool = Pool::builder_with_state(numbered_states())
        .workers(2)
        .restart_backoff(Duration::from_millis(100), Duration::from_secs(1))
        .build()
        .unwrap();
    assert_eq!(common::outcome_of(&pool, OK).await.output(), Some((0, 0)));
    assert_eq!(common::outcome_of(&pool, OK).await.output(), Some((1, 1)));

    let panicked = common::outcome_of(&pool, PANICS).await;
    assert!(
        matches!(panicked, Outcome::Panicked { ref message, attempts: 1 } if message == "asked to panic")
    );

    // Slot 0 waits out its backoff: its turns pass to slot 1, nobody waits.
    assert_eq!(common::outcome_of(&pool, OK).await.output(), Some((1, 1)));
    assert_eq!(common::outcome_of(&pool, OK).await.output(), Some((1, 1)));

    tokio::time::sleep(Duration::from_millis(150)).await;
    // Back in slot 0, with state number 2: made afresh, not inherited.
    assert_eq!(common::outcome_of(&pool, OK).await.output(), Some((0, 2)));
    assert_eq!(common::outcome_of(&pool, OK).await.output(), Some((1, 1)));

    let stats = pool.stats().await.unwrap();
    assert_eq!((stats.restarts, stats.panicked), (1, 1));
    assert_eq!(
        stats.workers.iter().map(|w| w.restarts).collect::<Vec<_>>(),
        [1, 0]
    );
    assert!(stats.balances());
}

#[actix_rt::test]
async fn restart_delays_double_up_to_the_cap_and_a_clean_run_resets_them() {
    tokio::time::pause();
    let pool = Pool::builder_with_state(numbered_states())
        .workers(1)
        .restart_backoff(Duration::from_millis(100), Duration::from_millis(500))
        // The doubling itself, exactly (tests/restart_jitter.rs: the jitter).
        .restart_jitter(Jitter::None)
        .build()
        .unwrap();
    let mut events = Events::subscribe(&pool).await;
    let mut delays = Vec::new();
    let mut panic_to_next_start = Vec::new();
    for _ in 0..5 {
        let panicked_at = {
            common::outcome_of(&pool, PANICS).await;
            actix::clock::Instant::now()
        };
        if let PoolEvent::WorkerRestarted { delay, .. } = events
            .until(|e| matches!(e, PoolEvent::WorkerRestarted { .. }))
            .await
        {
            delays.push(delay.as_millis());
        }
        // The next task can only start on the fresh worker.
        common::outcome_of(&pool, OK).await;
        panic_to_next_start.push((actix::clock::Instant::now() - panicked_at).as_millis());
    }
    // Each OK run resets the streak: every delay is the base.
    assert_eq!(delays, [100; 5]);

    delays.clear();
    for _ in 0..5 {
        let handle = pool.submit(PANICS).await.unwrap();
        handle.await.unwrap();
        if let PoolEvent::WorkerRestarted {
            delay, restarts, ..
        } = events
            .until(|e| matches!(e, PoolEvent::WorkerRestarted { .. }))
            .await
        {
            delays.push(delay.as_millis());
            assert_eq!(restarts, 5 + delays.len() as u64);
        }
    }
    assert_eq!(delays, [100, 200, 400, 500, 500]);
    // On the paused clock, nothing ran on the slot before its backoff was over.
    assert!(
        panic_to_next_start.iter().all(|ms| *ms >= 100),
        "{panic_to_next_start:?}"
    );
}

#[actix_rt::test]
async fn a_crash_loop_stops_the_supervisor_with_every_task_accounted_for() {
    let pool = Pool::builder_with_state(numbered_states())
        .workers(1)
        .queue_capacity(10)
        .restart_limit(3, Duration::from_secs(10))
        .restart_backoff(Duration::ZERO, Duration::ZERO)
        .build()
        .unwrap();
    let mut events = Events::subscribe(&pool).await;
    let handles: Vec<_> = (0..10).map(|_| pool.try_submit(PANICS).unwrap()).collect();
    let ids: Vec<_> = handles.iter().map(|h| h.id()).collect();

    let mut kinds = Vec::new();
    for handle in handles {
        kinds.push(handle.await.unwrap());
    }
    let panicked = kinds
        .iter()
        .filter(|o| o.kind() == OutcomeKind::Panicked)
        .count();
    assert_eq!(
        panicked, 4,
        "three restarts allowed, the fourth is one too many"
    );
    let limit = StopReason::RestartLimit {
        restarts: 3,
        within: Duration::from_secs(10),
    };
    for outcome in &kinds[4..] {
        assert!(matches!(outcome, Outcome::NotRun { reason, .. } if *reason == limit));
    }

    let report = pool.stopped().await.unwrap();
    assert_eq!(report.reason, limit);
    assert_eq!(report.not_run, ids[4..]);
    assert_eq!(pool.stop().await.unwrap(), report);
    assert!(pool.try_submit(OK).is_err());
    events
        .until(|e| matches!(e, PoolEvent::SupervisorStopping { reason } if *reason == limit))
        .await;

    let stats = pool.stats().await.unwrap();
    assert!(stats.balances(), "{stats:?}");
    assert_eq!((stats.restarts, stats.panicked, stats.not_run), (3, 4, 6));
}

#[actix_rt::test]
async fn a_factory_that_always_fails_ends_in_a_clean_stop() {
    tokio::time::pause();
    let pool = Pool::<Report>::builder_with_state(|_| Err::<u32, _>("connection refused"))
        .workers(2)
        .restart_limit(5, Duration::from_secs(60))
        .restart_backoff(Duration::from_millis(10), Duration::from_millis(100))
        .build()
        .unwrap();
    let mut events = Events::subscribe(&pool).await;
    let waiting = pool.try_submit(OK).unwrap();

    match waiting.await.unwrap() {
        Outcome::NotRun { reason, .. } => {
            assert!(matches!(
                reason,
                StopReason::RestartLimit { restarts: 5, .. }
            ))
        }
        other => panic!("expected NotRun, got {other:?}"),
    }
    let report = pool.stopped().await.unwrap();
    assert!(matches!(report.reason, StopReason::RestartLimit { .. }));
    let restarted = events.so_far();
    let reasons: Vec<_> = restarted
        .iter()
        .filter_map(|e| match e {
            PoolEvent::WorkerRestarted { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        reasons,
        vec![RestartReason::StartFailed("connection refused".into()); 5]
    );
    assert_eq!(pool.stats().await.unwrap().restarts, 5);
}

#[actix_rt::test]
async fn a_factory_that_panics_counts_as_a_failed_start_and_is_retried() {
    let calls = Arc::new(AtomicU32::new(0));
    let factory = {
        let calls = calls.clone();
        move |slot: usize| {
            if slot == 0 && calls.fetch_add(1, Ordering::SeqCst) == 0 {
                panic!("no connection yet");
            }
            Ok::<u32, Infallible>(7)
        }
    };
    let pool = Pool::builder_with_state(factory)
        .workers(2)
        .restart_backoff(Duration::ZERO, Duration::ZERO)
        .build()
        .unwrap();
    let mut events = Events::subscribe(&pool).await;
    let restarted = events
        .until(|e| matches!(e, PoolEvent::WorkerRestarted { .. }))
        .await;
    match restarted {
        PoolEvent::WorkerRestarted {
            worker: 0,
            reason: RestartReason::StartFailed(why),
            ..
        } => {
            assert!(why.contains("no connection yet"), "{why}")
        }
        other => panic!("unexpected {other:?}"),
    }
    let outcomes = pool.run_all((0..4).map(|_| OK)).await.unwrap();
    let mut workers: Vec<_> = outcomes
        .into_iter()
        .map(|o| o.output().unwrap().0)
        .collect();
    workers.sort();
    workers.dedup();
    assert_eq!(
        workers,
        [0, 1],
        "both slots run tasks once slot 0 has restarted"
    );
}

/// Panics once let go.
struct PanicsWhenReleased(Option<futures::channel::oneshot::Receiver<()>>);

impl Task for PanicsWhenReleased {
    type Output = ();
    type Error = Infallible;
    type State = ();

    async fn run(&mut self, _: &mut TaskContext<()>) -> Result<(), Infallible> {
        if let Some(release) = self.0.take() {
            let _ = release.await;
        }
        panic!("panics during the drain");
    }
}

#[actix_rt::test]
async fn a_panic_during_a_drain_with_nothing_left_restarts_nothing() {
    tokio::time::pause();
    let pool = Pool::builder()
        .workers(1)
        .restart_limit(0, Duration::from_secs(10))
        .restart_backoff(Duration::from_secs(3600), Duration::from_secs(3600))
        .build()
        .unwrap();
    let (release, held) = futures::channel::oneshot::channel();
    let handle = pool.submit(PanicsWhenReleased(Some(held))).await.unwrap();
    let draining = common::drain_later(&pool);
    actix_rt::task::yield_now().await;
    let started = actix::clock::Instant::now();
    release.send(()).unwrap();

    assert!(matches!(handle.await.unwrap(), Outcome::Panicked { .. }));
    let report = draining.await.unwrap().unwrap();
    // No restart: not against the limit of 0, and no hour-long backoff first.
    assert_eq!(report.reason, StopReason::Drained);
    assert_eq!(actix::clock::Instant::now(), started);
    assert_eq!(pool.stats().await.unwrap().restarts, 0);
}

#[actix_rt::test]
async fn giving_up_hands_back_and_reports_the_tasks_still_waiting_in_the_inbox() {
    let lab = common::Lab::new();
    let pool = Pool::builder()
        .workers(1)
        .restart_limit(0, Duration::from_secs(10))
        .build()
        .unwrap();
    pool.stats().await.unwrap(); // the worker is ready
    let stopped = actix_rt::spawn({
        let pool = pool.clone();
        async move { pool.stopped().await }
    });
    actix_rt::task::yield_now().await;

    // The panic ends the only worker's last allowed life while 2 and 3 still
    // wait in the inbox for it.
    let _panics = pool.try_submit(lab.panics(1)).unwrap();
    let waiting = [
        pool.try_submit(lab.completes(2)).unwrap(),
        pool.try_submit(lab.completes(3)).unwrap(),
    ];
    let ids: Vec<_> = waiting.iter().map(|handle| handle.id()).collect();

    let report = stopped.await.unwrap().unwrap();
    assert!(matches!(report.reason, StopReason::RestartLimit { .. }));
    assert_eq!(
        report.not_run, ids,
        "the report names every task handed back"
    );
    for handle in waiting {
        assert!(matches!(handle.await.unwrap(), Outcome::NotRun { .. }));
    }
    let stats = pool.stats().await.unwrap();
    assert_eq!(stats.not_run, 2);
    assert!(stats.balances());
}

/// ARCHITECTURE.md, The promise, rule 6, with the restart limit: once the
/// supervisor decides to stop, no task starts. Here a worker's panic and
/// another worker's report naming the task it took next from the backlog reach
/// the supervisor together: that task began before the decision, and the events
/// say so in that order.
#[actix_rt::test]
async fn no_task_starts_after_the_restart_limit_decides_to_stop() {
    let mut lab = common::Lab::new();
    let pool = Pool::builder()
        .workers(2)
        .restart_limit(0, Duration::from_secs(60))
        .build()
        .unwrap();
    let mut events = Events::subscribe(&pool).await;
    let (panicking, release_panic) = lab.held_then_panics(0);
    let panicking = pool.try_submit(panicking).unwrap();
    lab.started().await;
    let (other, release_other) = lab.occupy(&pool, 1).await;
    // Waits in the backlog, for whichever worker finishes first.
    let waiting = pool.try_submit(lab.completes(2)).unwrap();
    let waiting_id = waiting.id();
    release_panic.release();
    release_other.release();

    let report = pool.stopped().await.unwrap();
    assert!(matches!(report.reason, StopReason::RestartLimit { .. }));
    assert_eq!(panicking.await.unwrap().kind(), OutcomeKind::Panicked);
    assert_eq!(other.await.unwrap().kind(), OutcomeKind::Completed);
    let before_stop: Vec<PoolEvent> = {
        let mut seen = Vec::new();
        loop {
            let event = events.next().await;
            if matches!(event, PoolEvent::SupervisorStopping { .. }) {
                break seen;
            }
            seen.push(event);
        }
    };
    let started_before = before_stop
        .iter()
        .any(|e| matches!(e, PoolEvent::TaskStarted { task, .. } if *task == waiting_id));
    let kind = waiting.await.unwrap().kind();
    // Give the subscriber every event sent so far.
    for _ in 0..10 {
        actix_rt::task::yield_now().await;
    }
    let after_stop = events.so_far();
    let late_starts: Vec<_> = after_stop
        .iter()
        .filter(|e| matches!(e, PoolEvent::TaskStarted { .. }))
        .collect();
    assert!(
        late_starts.is_empty(),
        "started after the stop: {late_starts:?}"
    );
    // Task 2 started before the decision and ran, or was handed back unrun.
    let expected = if started_before {
        OutcomeKind::Completed
    } else {
        OutcomeKind::NotRun
    };
    assert_eq!(kind, expected, "before the stop: {before_stop:?}");
    let stats = pool.stats().await.unwrap();
    assert!(stats.balances(), "{stats:?}");
}
