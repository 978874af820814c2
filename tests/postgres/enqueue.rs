//! Putting jobs in the queue: ids, options, idempotency keys, transactions,
//! and what can be read back.

use std::time::{Duration, SystemTime};

use actix_workerpool::postgres::{
    DEFAULT_MAX_ATTEMPTS, DurableError, Enqueue, JobState, Queue, enqueue_with,
};

use crate::cluster::Cluster;
use crate::{Invoice, email};

async fn queue() -> (Queue, String) {
    let db = Cluster::shared().database();
    (Queue::migrate(&db).await.expect("migrate"), db)
}

#[actix_rt::test]
async fn an_enqueued_job_is_ready_with_its_payload_and_no_attempts() {
    let (queue, db) = queue().await;
    let before = SystemTime::now() - Duration::from_secs(5);
    let id = queue
        .enqueue(&email("ada@example.com"), Enqueue::new())
        .await
        .unwrap();
    let job = queue.status(id).await.unwrap().expect("the job");
    assert_eq!(job.id, id);
    assert_eq!(job.kind, "email");
    assert_eq!(job.state, JobState::Ready);
    assert_eq!((job.attempts, job.max_attempts), (0, DEFAULT_MAX_ATTEMPTS));
    assert!(job.run_at >= before && job.run_at <= SystemTime::now() + Duration::from_secs(5));
    assert_eq!((job.last_error, job.finished_at), (None, None));
    let payload: serde_json::Value = crate::client(&db)
        .await
        .query_one(
            "SELECT payload FROM workerpool.jobs WHERE id = $1",
            &[&id.0],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(payload, serde_json::json!({ "to": "ada@example.com" }));
}

#[actix_rt::test]
async fn ids_are_distinct_and_unknown_ids_have_no_status() {
    let (queue, _db) = queue().await;
    let a = queue.enqueue(&email("a"), Enqueue::new()).await.unwrap();
    let b = queue.enqueue(&email("b"), Enqueue::new()).await.unwrap();
    assert_ne!(a, b);
    assert_eq!(
        queue
            .status(actix_workerpool::postgres::JobId(b.0 + 1000))
            .await
            .unwrap(),
        None
    );
}

#[actix_rt::test]
async fn a_key_held_by_a_pending_job_returns_that_job_and_adds_nothing() {
    let (queue, db) = queue().await;
    let first = queue
        .enqueue(&email("a"), Enqueue::new().key("welcome:a"))
        .await
        .unwrap();
    let again = queue
        .enqueue(&email("a, again"), Enqueue::new().key("welcome:a"))
        .await
        .unwrap();
    assert_eq!(again, first);
    // Keys are per kind, and other keys are other jobs.
    let invoice = queue
        .enqueue(&Invoice { number: 1 }, Enqueue::new().key("welcome:a"))
        .await
        .unwrap();
    let other = queue
        .enqueue(&email("b"), Enqueue::new().key("welcome:b"))
        .await
        .unwrap();
    assert!(invoice != first && other != first && invoice != other);
    let client = crate::client(&db).await;
    let count: i64 = client
        .query_one("SELECT count(*) FROM workerpool.jobs", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 3);
    // Still pending while running; once it ended, the key is free again.
    client
        .execute(
            "UPDATE workerpool.jobs SET state = 'running' WHERE id = $1",
            &[&first.0],
        )
        .await
        .unwrap();
    assert_eq!(
        queue
            .enqueue(&email("a"), Enqueue::new().key("welcome:a"))
            .await
            .unwrap(),
        first
    );
    client
        .execute(
            "UPDATE workerpool.jobs SET state = 'done', finished_at = now() WHERE id = $1",
            &[&first.0],
        )
        .await
        .unwrap();
    let after = queue
        .enqueue(&email("a"), Enqueue::new().key("welcome:a"))
        .await
        .unwrap();
    assert_ne!(after, first);
}

#[actix_rt::test]
async fn concurrent_enqueues_with_one_key_make_one_job() {
    let (_queue, db) = queue().await;
    // A connection each, so that the server runs them at once.
    let mut queues = Vec::new();
    for _ in 0..8 {
        queues.push(Queue::connect(&db).await.unwrap());
    }
    let emails: Vec<_> = (0..8).map(|n| email(&n.to_string())).collect();
    let enqueues: Vec<_> = queues
        .iter()
        .zip(&emails)
        .map(|(queue, email)| queue.enqueue(email, Enqueue::new().key("once")))
        .collect();
    let ids: std::collections::HashSet<_> = futures::future::join_all(enqueues)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(ids.len(), 1);
}

#[actix_rt::test]
async fn delays_times_priorities_and_attempts_are_kept() {
    let (queue, _db) = queue().await;
    let now = SystemTime::now();
    let delayed = queue
        .enqueue(
            &email("later"),
            Enqueue::new().delay(Duration::from_secs(3600)),
        )
        .await
        .unwrap();
    let at = now + Duration::from_secs(7 * 24 * 3600);
    let scheduled = queue
        .enqueue(
            &email("next week"),
            Enqueue::new().run_at(at).priority(-3).max_attempts(7),
        )
        .await
        .unwrap();
    let delayed = queue.status(delayed).await.unwrap().unwrap();
    assert!(delayed.run_at >= now + Duration::from_secs(3590));
    assert!(delayed.run_at <= now + Duration::from_secs(3610));
    let scheduled = queue.status(scheduled).await.unwrap().unwrap();
    let off = scheduled
        .run_at
        .duration_since(at)
        .unwrap_or_else(|e| e.duration());
    assert!(off < Duration::from_millis(1), "run_at off by {off:?}");
    assert_eq!(scheduled.max_attempts, 7);
}

#[actix_rt::test]
async fn zero_attempts_is_refused_with_a_typed_error() {
    let (queue, _db) = queue().await;
    match queue
        .enqueue(&email("x"), Enqueue::new().max_attempts(0))
        .await
    {
        Err(DurableError::InvalidOption(message)) => assert!(message.contains("max_attempts")),
        other => panic!("expected InvalidOption, got {other:?}"),
    }
}

#[actix_rt::test]
async fn a_job_enqueued_in_a_rolled_back_transaction_does_not_exist() {
    let (queue, db) = queue().await;
    let mut client = crate::client(&db).await;
    let transaction = client.transaction().await.unwrap();
    let lost = enqueue_with(&transaction, &email("rolled back"), Enqueue::new())
        .await
        .unwrap();
    transaction.rollback().await.unwrap();
    assert_eq!(queue.status(lost).await.unwrap(), None);

    let transaction = client.transaction().await.unwrap();
    let kept = enqueue_with(&transaction, &email("committed"), Enqueue::new())
        .await
        .unwrap();
    // Not visible to others until the commit.
    assert_eq!(queue.status(kept).await.unwrap(), None);
    transaction.commit().await.unwrap();
    assert_eq!(
        queue.status(kept).await.unwrap().unwrap().state,
        JobState::Ready
    );
}

#[actix_rt::test]
async fn dead_jobs_are_listed_requeued_and_pruned() {
    let (queue, db) = queue().await;
    let a = queue.enqueue(&email("a"), Enqueue::new()).await.unwrap();
    let b = queue.enqueue(&email("b"), Enqueue::new()).await.unwrap();
    let done = queue.enqueue(&email("c"), Enqueue::new()).await.unwrap();
    let client = crate::client(&db).await;
    client
        .execute(
            "UPDATE workerpool.jobs SET state = 'dead', attempts = 3, last_error = 'smtp: 550', \
             finished_at = now() - interval '2 days' WHERE id = ANY($1)",
            &[&vec![a.0, b.0]],
        )
        .await
        .unwrap();
    client
        .execute(
            "UPDATE workerpool.jobs SET state = 'done', finished_at = now() WHERE id = $1",
            &[&done.0],
        )
        .await
        .unwrap();
    let dead = queue.dead("email", 10).await.unwrap();
    assert_eq!(dead.len(), 2);
    assert!(
        dead.iter()
            .all(|job| job.last_error.as_deref() == Some("smtp: 550"))
    );
    assert!(queue.dead("invoice", 10).await.unwrap().is_empty());

    assert!(queue.requeue(a).await.unwrap());
    assert!(
        !queue.requeue(a).await.unwrap(),
        "only a dead job is requeued"
    );
    let requeued = queue.status(a).await.unwrap().unwrap();
    assert_eq!(
        (requeued.state, requeued.attempts, requeued.finished_at),
        (JobState::Ready, 0, None)
    );

    // b ended two days ago, `done` just now.
    assert_eq!(
        queue.prune(Duration::from_secs(24 * 3600)).await.unwrap(),
        1
    );
    assert_eq!(queue.status(b).await.unwrap(), None);
    assert!(queue.status(done).await.unwrap().is_some());
}

#[actix_rt::test]
async fn a_batch_enqueues_every_job_in_order_and_refuses_a_key() {
    let (queue, db) = queue().await;
    let emails: Vec<_> = (0..50).map(|n| email(&format!("batch {n}"))).collect();
    let ids = queue
        .enqueue_batch(&emails, Enqueue::new().priority(2))
        .await
        .unwrap();
    assert_eq!(ids.len(), 50);
    let client = crate::client(&db).await;
    for (n, id) in ids.iter().enumerate() {
        let row = client
            .query_one(
                "SELECT payload, priority FROM workerpool.jobs WHERE id = $1",
                &[&id.0],
            )
            .await
            .unwrap();
        assert_eq!(
            row.get::<_, serde_json::Value>(0),
            serde_json::json!({ "to": format!("batch {n}") })
        );
        assert_eq!(row.get::<_, i16>(1), 2);
    }
    match queue.enqueue_batch(&emails, Enqueue::new().key("k")).await {
        Err(DurableError::InvalidOption(message)) => assert!(message.contains("key")),
        other => panic!("expected InvalidOption, got {other:?}"),
    }
}

#[actix_rt::test]
async fn times_past_the_year_9999_are_refused_and_times_before_1970_are_due_now() {
    let (queue, _db) = queue().await;
    let far = SystemTime::UNIX_EPOCH + Duration::from_secs(1 << 45);
    for options in [
        Enqueue::new().run_at(far),
        Enqueue::new().delay(Duration::MAX),
    ] {
        match queue.enqueue(&email("x"), options).await {
            Err(DurableError::InvalidOption(message)) => assert!(message.contains("9999")),
            other => panic!("expected InvalidOption, got {other:?}"),
        }
    }
    let early = SystemTime::UNIX_EPOCH - Duration::from_secs(1 << 45);
    let id = queue
        .enqueue(&email("early"), Enqueue::new().run_at(early))
        .await
        .unwrap();
    let job = queue.status(id).await.unwrap().unwrap();
    assert!(job.run_at <= SystemTime::now());
}

#[actix_rt::test]
async fn a_dead_job_whose_key_a_pending_job_holds_is_not_requeued() {
    let (queue, db) = queue().await;
    let old = queue
        .enqueue(&email("a"), Enqueue::new().key("k"))
        .await
        .unwrap();
    crate::client(&db)
        .await
        .execute(
            "UPDATE workerpool.jobs SET state = 'dead', finished_at = now() WHERE id = $1",
            &[&old.0],
        )
        .await
        .unwrap();
    let new = queue
        .enqueue(&email("a"), Enqueue::new().key("k"))
        .await
        .unwrap();
    assert_ne!(new, old);
    assert!(!queue.requeue(old).await.unwrap());
    assert_eq!(
        queue.status(old).await.unwrap().unwrap().state,
        JobState::Dead
    );
}
