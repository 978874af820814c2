//! The overflow policy: what a submit to a full queue does. `Block` (the
//! default) waits for room; `Reject` hands the task back at once, from every
//! way of submitting but a batch. Paused time where a wait is measured.

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_workerpool::{
    BuildError, DeadLetter, DeadReason, OutcomeKind, Overflow, Pool, PoolBuilder, PoolEvent,
    Submit, SubmitError, SubmitTimeoutError, TaskHandle, TrySubmitError,
};
use common::{Lab, Probe};

/// One worker, busy until released, and a queue of one, full.
async fn full_pool(lab: &mut Lab, overflow: Overflow) -> (Pool<Probe>, common::Release) {
    lab.full_pool(Pool::builder().overflow(overflow)).await
}

#[actix_rt::test]
async fn by_default_submit_waits_for_room() {
    let mut lab = Lab::new();
    let (pool, release) = full_pool(&mut lab, Overflow::Block).await;
    let mut waiting = Box::pin(pool.submit(lab.completes(2)));
    assert!(futures::poll!(waiting.as_mut()).is_pending());
    release.release();
    let handle = waiting.await.expect("accepted once there is room");
    assert_eq!(handle.await.unwrap().output(), Some((2, 0)));
}

#[actix_rt::test]
async fn reject_hands_the_task_back_from_submit_at_once() {
    let mut lab = Lab::new();
    let (pool, _release) = full_pool(&mut lab, Overflow::Reject).await;
    match pool.submit(lab.completes(2)).await {
        Err(SubmitError::Full(task)) => assert_eq!(task.label, 2),
        other => panic!("expected Full, got {other:?}"),
    }
    assert!(matches!(
        pool.try_submit(lab.completes(3)),
        Err(TrySubmitError::Full(_))
    ));
    // Nothing refused was counted.
    let stats = pool.stats().await.unwrap();
    assert_eq!((stats.submitted, stats.queued), (2, 1));
}

#[actix_rt::test]
async fn reject_answers_the_submit_message_at_once() {
    let mut lab = Lab::new();
    let (pool, _release) = full_pool(&mut lab, Overflow::Reject).await;
    let answer = pool.addr().send(Submit(lab.completes(2))).await.unwrap();
    match answer {
        Err(SubmitError::Full(task)) => assert_eq!(task.label, 2),
        other => panic!("expected Full, got {other:?}"),
    }
}

#[actix_rt::test]
async fn reject_makes_submit_timeout_give_up_without_waiting() {
    tokio::time::pause();
    let mut lab = Lab::new();
    let (pool, _release) = full_pool(&mut lab, Overflow::Reject).await;
    let started = tokio::time::Instant::now();
    let refused = pool
        .submit_timeout(lab.completes(2), Duration::from_secs(60))
        .await
        .unwrap_err();
    assert!(matches!(refused, SubmitTimeoutError::Timeout(_)));
    // The paused clock moves only to timers: no timer ran.
    assert_eq!(started.elapsed(), Duration::ZERO);
}

#[actix_rt::test]
async fn a_batch_waits_for_room_whatever_the_policy() {
    let lab = Lab::new();
    let pool = Pool::<Probe>::builder()
        .workers(1)
        .queue_capacity(1)
        .overflow(Overflow::Reject)
        .build()
        .unwrap();
    let outcomes = pool
        .run_all((0..6).map(|n| lab.completes(n)))
        .await
        .unwrap();
    let outputs: Vec<_> = outcomes.into_iter().map(|o| o.output()).collect();
    assert_eq!(outputs, (0..6).map(|n| Some((n, 0))).collect::<Vec<_>>());
}

#[actix_rt::test]
async fn a_rejecting_pool_that_has_stopped_says_stopped() {
    let lab = Lab::new();
    let pool = Pool::<Probe>::builder()
        .overflow(Overflow::Reject)
        .build()
        .unwrap();
    pool.stop().await.unwrap();
    assert!(matches!(
        pool.submit(lab.completes(1)).await,
        Err(SubmitError::Stopped(_))
    ));
}

/// A pool that drops the oldest queued task when full: one worker, busy
/// until released, and a queue of two, full (tasks 1 and 2); what reaches
/// its dead-letter sink.
async fn dropping_pool(
    lab: &mut Lab,
) -> (
    Pool<Probe>,
    common::Release,
    Arc<Mutex<Vec<(u32, DeadReason)>>>,
    Vec<TaskHandle<Probe>>,
) {
    let letters: Arc<Mutex<Vec<(u32, DeadReason)>>> = Arc::default();
    let sink = letters.clone();
    let pool = Pool::<Probe>::builder()
        .workers(1)
        .queue_capacity(2)
        .overflow(Overflow::DropOldest)
        .dead_letters_with(move |letter: DeadLetter<Probe>| {
            sink.lock()
                .unwrap()
                .push((letter.task.label, letter.reason));
        })
        .build()
        .unwrap();
    let (_running, release) = lab.occupy(&pool, 0).await;
    let queued = vec![
        pool.try_submit(lab.completes(1)).unwrap(),
        pool.try_submit(lab.completes(2)).unwrap(),
    ];
    (pool, release, letters, queued)
}

#[actix_rt::test]
async fn drop_oldest_evicts_the_oldest_queued_task_to_make_room() {
    let mut lab = Lab::new();
    let (pool, release, letters, mut queued) = dropping_pool(&mut lab).await;
    let mut events = common::Events::subscribe(&pool).await;

    // Accepted at once, though the queue was full: task 1, the oldest, goes.
    let newest = pool.submit(lab.completes(3)).await.unwrap();
    let oldest = queued.remove(0);
    assert_eq!(oldest.await.unwrap().kind(), OutcomeKind::Evicted);
    assert_eq!(*letters.lock().unwrap(), [(1, DeadReason::Evicted)]);
    let event = events
        .until(|e| matches!(e, PoolEvent::TaskEvicted { .. }))
        .await;
    assert!(matches!(event, PoolEvent::TaskEvicted { task } if task.as_u64() == 1));

    release.release();
    assert_eq!(queued.remove(0).await.unwrap().output(), Some((2, 0)));
    assert_eq!(newest.await.unwrap().output(), Some((3, 0)));
    let ran: Vec<u32> = lab.drain_started().iter().map(|s| s.label).collect();
    assert_eq!(ran, [2, 3], "the evicted task never ran");
    let stats = pool.stats().await.unwrap();
    assert_eq!(
        (stats.evicted, stats.completed, stats.dead_letters),
        (1, 3, 1)
    );
    assert!(stats.balances(), "{stats:?}");
}

#[actix_rt::test]
async fn drop_oldest_makes_room_for_every_way_of_submitting_but_try_submit_and_a_batch() {
    tokio::time::pause();
    let mut lab = Lab::new();
    let (pool, _release, letters, _queued) = dropping_pool(&mut lab).await;
    // `try_submit` never evicts: it says the queue is full.
    assert!(matches!(
        pool.try_submit(lab.completes(3)),
        Err(TrySubmitError::Full(_))
    ));
    let started = tokio::time::Instant::now();
    pool.submit_timeout(lab.completes(4), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(started.elapsed(), Duration::ZERO, "it did not wait");
    pool.addr()
        .send(Submit(lab.completes(5)))
        .await
        .unwrap()
        .unwrap();
    let evicted: Vec<u32> = letters.lock().unwrap().iter().map(|(l, _)| *l).collect();
    assert_eq!(evicted, [1, 2]);
    let stats = pool.stats().await.unwrap();
    assert_eq!((stats.queued, stats.evicted), (2, 2));
}

#[actix_rt::test]
async fn drop_oldest_needs_a_dead_letter_sink() {
    let refused = Pool::<Probe>::builder()
        .overflow(Overflow::DropOldest)
        .build()
        .unwrap_err();
    assert_eq!(refused, BuildError::EvictionWithoutDeadLetters);
}

#[actix_rt::test]
async fn drop_oldest_never_evicts_from_a_stopped_pool() {
    let mut lab = Lab::new();
    let (pool, release, letters, queued) = dropping_pool(&mut lab).await;
    let stop = common::stop_later(&pool);
    while !pool.is_closed() {
        actix_rt::task::yield_now().await;
    }
    assert!(matches!(
        pool.submit(lab.completes(3)).await,
        Err(SubmitError::Stopped(_))
    ));
    release.release();
    stop.await.unwrap().unwrap();
    assert!(letters.lock().unwrap().is_empty());
    for handle in queued {
        assert_eq!(handle.await.unwrap().kind(), OutcomeKind::NotRun);
    }
}

#[actix_rt::test]
async fn the_place_an_eviction_frees_goes_to_the_task_it_was_made_for() {
    let mut lab = Lab::new();
    let (pool, release, letters, _queued) = dropping_pool(&mut lab).await;
    // A batch waits for room (it never evicts)...
    let batch = {
        let pool = pool.clone();
        let tasks: Vec<Probe> = (10..13).map(|n| lab.completes(n)).collect();
        actix_rt::spawn(async move { pool.run_all(tasks).await })
    };
    for _ in 0..20 {
        actix_rt::task::yield_now().await;
    }
    // ... and does not take the place a submit's eviction frees.
    let newest = pool.submit(lab.completes(3)).await.unwrap();
    let evicted: Vec<u32> = letters.lock().unwrap().iter().map(|(l, _)| *l).collect();
    assert_eq!(evicted, [1], "one eviction for one submit");
    assert_eq!(pool.stats().await.unwrap().evicted, 1);
    release.release();
    assert_eq!(newest.await.unwrap().output(), Some((3, 0)));
    let outcomes = batch.await.unwrap().unwrap();
    assert!(outcomes.iter().all(|o| o.kind() == OutcomeKind::Completed));
}

/// The labels of the tasks a pool's dead-letter sink received.
type Letters = Arc<Mutex<Vec<u32>>>;

/// A pool of one worker that evicts, with a queue of one, and what its
/// dead-letter sink receives; the sink holds the supervisor's thread for
/// `hold` after each letter.
fn evicting(builder: PoolBuilder<Probe>, hold: Duration) -> (Pool<Probe>, Letters) {
    let letters = Letters::default();
    let sink = letters.clone();
    let pool = builder
        .workers(1)
        .queue_capacity(1)
        .overflow(Overflow::DropOldest)
        .dead_letters_with(move |letter: DeadLetter<Probe>| {
            sink.lock().unwrap().push(letter.task.label);
            if !hold.is_zero() {
                std::thread::sleep(hold);
            }
        })
        .build()
        .unwrap();
    (pool, letters)
}

/// A submit of `task` to a full queue, which has asked the supervisor for
/// room and waits for its answer.
type Submitting<'a> =
    Pin<Box<dyn Future<Output = Result<TaskHandle<Probe>, SubmitError<Probe>>> + 'a>>;

async fn asking_for_room(pool: &Pool<Probe>, task: Probe) -> Submitting<'_> {
    let mut submit: Submitting<'_> = Box::pin(pool.submit(task));
    assert!(
        futures::poll!(submit.as_mut()).is_pending(),
        "asked for room"
    );
    submit
}

async fn bounded<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(3600), f)
        .await
        .expect("answers within an hour of paused time")
}

#[actix_rt::test]
async fn a_stop_right_behind_an_evicting_submit_answers() {
    tokio::time::pause();
    let lab = Lab::new();
    let backoff = Duration::from_secs(1);
    let (pool, _) = evicting(
        Pool::builder().restart_backoff(backoff, backoff),
        Duration::ZERO,
    );
    // The only slot waits out its restart backoff: nothing runs meanwhile.
    let crashed = bounded(common::outcome_of(&pool, lab.panics(0))).await;
    assert_eq!(crashed.kind(), OutcomeKind::Panicked);
    let queued = pool.try_submit(lab.completes(1)).unwrap();
    let submit = asking_for_room(&pool, lab.completes(3)).await;
    let mut stop = Box::pin(pool.stop());
    assert!(futures::poll!(stop.as_mut()).is_pending());
    let submitted = bounded(submit).await;
    let report = bounded(stop).await.unwrap();
    assert_eq!(bounded(queued).await.unwrap().kind(), OutcomeKind::Evicted);
    // The place was made for task 3 before the stop: it was accepted, and
    // the stop hands it back.
    let newer = submitted.expect("accepted before the stop");
    assert_eq!(bounded(newer).await.unwrap().kind(), OutcomeKind::NotRun);
    assert_eq!(report.not_run.len(), 1, "{report:?}");
}

#[actix_rt::test]
async fn a_drain_right_behind_an_evicting_submit_runs_the_task_it_made_room_for() {
    tokio::time::pause();
    let mut lab = Lab::new();
    let (pool, _) = evicting(Pool::builder(), Duration::ZERO);
    let (_running, release) = lab.occupy(&pool, 0).await;
    let queued = pool.try_submit(lab.completes(1)).unwrap();
    let submit = asking_for_room(&pool, lab.completes(3)).await;
    let mut drain = Box::pin(pool.drain());
    assert!(futures::poll!(drain.as_mut()).is_pending());
    let submitted = bounded(submit).await;
    release.release();
    assert_eq!(bounded(queued).await.unwrap().kind(), OutcomeKind::Evicted);
    let newer = submitted.expect("accepted before the drain");
    assert_eq!(bounded(newer).await.unwrap().output(), Some((3, 0)));
    bounded(drain).await.unwrap();
}

#[actix_rt::test]
async fn submitters_evicting_at_once_each_evict_and_none_waits_for_a_worker() {
    tokio::time::pause();
    let mut lab = Lab::new();
    let (pool, letters) = evicting(Pool::builder(), Duration::ZERO);
    let (_running, _release) = lab.occupy(&pool, 0).await;
    let _queued = pool.try_submit(lab.completes(1)).unwrap();
    let first = asking_for_room(&pool, lab.completes(2)).await;
    let second = asking_for_room(&pool, lab.completes(3)).await;
    // The worker stays busy: neither may wait for it.
    assert!(bounded(first).await.is_ok());
    let _newest = bounded(second).await.expect("accepted");
    assert_eq!(
        *letters.lock().unwrap(),
        [1, 2],
        "each evicted the oldest then"
    );
    let stats = pool.stats().await.unwrap();
    assert_eq!((stats.queued, stats.evicted), (1, 2), "{stats:?}");
}

#[actix_rt::test]
async fn an_evicting_submit_given_up_before_the_supervisor_reads_it_evicts_nothing() {
    let mut lab = Lab::new();
    let (pool, release, letters, queued) = dropping_pool(&mut lab).await;
    {
        let _submit = asking_for_room(&pool, lab.completes(3)).await;
    } // given up: its task was not submitted
    assert_eq!(pool.stats().await.unwrap().evicted, 0);
    release.release();
    for handle in queued {
        assert_eq!(handle.await.unwrap().kind(), OutcomeKind::Completed);
    }
    assert!(letters.lock().unwrap().is_empty());
}

#[actix_rt::test]
async fn an_evicting_submit_given_up_after_its_eviction_leaves_its_task_submitted() {
    let mut lab = Lab::new();
    let (pool, release, letters, _queued) = dropping_pool(&mut lab).await;
    {
        let _submit = asking_for_room(&pool, lab.completes(3)).await;
        // The supervisor has evicted task 1 for it, and admitted it.
        assert_eq!(pool.stats().await.unwrap().evicted, 1);
    } // given up: the handle goes, the task stays
    release.release();
    pool.drain().await.unwrap();
    let stats = pool.stats().await.unwrap();
    // Tasks 0 (the worker's), 2 and 3.
    assert_eq!(stats.completed, 3, "{stats:?}");
    assert_eq!(stats.evicted, 1, "{stats:?}");
    assert_eq!(letters.lock().unwrap().len(), 1);
}

/// A submitter on another thread whose deadline passes while the supervisor
/// is in the middle of evicting for it (its dead-letter sink, here, holds
/// the supervisor's thread a while) finds its task admitted: an eviction is
/// never made for a task that is then handed back.
#[actix_rt::test]
async fn a_submit_from_another_thread_that_times_out_mid_eviction_finds_its_task_admitted() {
    let mut lab = Lab::new();
    // The sink holds the supervisor longer than the submitter's deadline.
    let (pool, letters) = evicting(Pool::builder(), Duration::from_millis(300));
    let (_running, release) = lab.occupy(&pool, 0).await;
    let queued = pool.try_submit(lab.completes(1)).unwrap();
    let elsewhere = actix_rt::Arbiter::new();
    let (sent, submitted) = futures::channel::oneshot::channel();
    let (submitter, task) = (pool.clone(), lab.completes(3));
    elsewhere.spawn(async move {
        let submitted = submitter
            .submit_timeout(task, Duration::from_millis(50))
            .await;
        let _ = sent.send(submitted.map_err(|e| matches!(e, SubmitTimeoutError::Timeout(_))));
    });
    let submitted = bounded(submitted).await.unwrap();
    release.release();
    let first = bounded(queued).await.unwrap().kind();
    match submitted {
        // The usual case: the supervisor had the task before the deadline.
        Ok(newer) => {
            assert_eq!(first, OutcomeKind::Evicted);
            assert_eq!(*letters.lock().unwrap(), [1]);
            assert_eq!(bounded(newer).await.unwrap().output(), Some((3, 0)));
        }
        // A machine so slow that the deadline came before the supervisor
        // read the offer: then nothing was evicted for it.
        Err(timed_out) => {
            assert!(timed_out, "only a timeout");
            assert_eq!(first, OutcomeKind::Completed);
            assert!(letters.lock().unwrap().is_empty());
        }
    }
    elsewhere.stop();
}
