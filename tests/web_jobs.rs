//! The actix-web job service of `examples/web_jobs.rs`, tested for real: on
//! 127.0.0.1, through an HTTP client.

#[allow(dead_code)]
#[path = "../examples/web_jobs.rs"]
mod web_jobs;

use std::net::TcpListener;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_workerpool::{Pool, StopReason, StopReport};
use serde_json::{Value, json};
use web_jobs::Job;

struct Service {
    base: String,
    client: awc::Client,
    server: ServerHandle,
    serving: actix_rt::task::JoinHandle<std::io::Result<StopReport>>,
}

fn start(pool: &Pool<Job>) -> Service {
    start_with_deadline(pool, web_jobs::DRAIN_DEADLINE)
}

fn start_with_deadline(pool: &Pool<Job>, deadline: Duration) -> Service {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = web_jobs::server(listener, pool.clone()).unwrap();
    let handle = server.handle();
    let serving = actix_rt::spawn(web_jobs::serve_then_drain(server, pool.clone(), deadline));
    Service {
        base,
        client: awc::Client::default(),
        server: handle,
        serving,
    }
}

impl Service {
    async fn post(&self, body: Value) -> (u16, Value) {
        let mut response = self
            .client
            .post(format!("{}/jobs", self.base))
            .send_json(&body)
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    async fn post_raw(&self, body: &'static str) -> (u16, Value) {
        let mut response = self
            .client
            .post(format!("{}/jobs", self.base))
            .insert_header(("content-type", "application/json"))
            .send_body(body)
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let mut response = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    /// Polls a job until its state is one of `states` (at most 1,000 polls).
    async fn wait_for(&self, id: u64, states: &[&str]) -> Value {
        for _ in 0..1_000 {
            let (status, body) = self.get(&format!("/jobs/{id}")).await;
            assert_eq!(status, 200, "{body}");
            if states.contains(&body["state"].as_str().unwrap()) {
                return body;
            }
            actix_rt::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("job {id} never reached {states:?}");
    }

    /// Stops the server (as Ctrl-C would) and waits for the pool's drain.
    async fn shut_down(self) -> StopReport {
        self.server.stop(true).await;
        self.serving.await.unwrap().unwrap()
    }
}

#[actix_rt::test]
async fn jobs_are_submitted_polled_to_completion_and_counted() {
    let pool = Pool::builder()
        .workers(2)
        .queue_capacity(10)
        .build()
        .unwrap();
    let service = start(&pool);

    let mut ids = Vec::new();
    for (name, fail) in [
        ("a.pdf", false),
        ("b.pdf", false),
        ("c.pdf", true),
        ("d.pdf", false),
    ] {
        let (status, body) = service
            .post(json!({"name": name, "millis": 20, "fail": fail}))
            .await;
        assert_eq!(status, 202, "{body}");
        ids.push(body["id"].as_u64().unwrap());
    }
    for (id, name) in ids.iter().zip(["a.pdf", "b.pdf", "c.pdf", "d.pdf"]) {
        let done = service.wait_for(*id, &["completed", "failed"]).await;
        if name == "c.pdf" {
            assert_eq!(
                done,
                json!({"state": "failed", "attempts": 1, "error": "could not process c.pdf"})
            );
        } else {
            let output = format!("processed {name}");
            assert_eq!(
                done,
                json!({"state": "completed", "attempts": 1, "output": output})
            );
        }
    }
    let (status, stats) = service.get("/stats").await;
    assert_eq!(status, 200);
    assert_eq!(
        (stats["submitted"].as_u64(), stats["completed"].as_u64()),
        (Some(4), Some(3))
    );
    assert_eq!(stats["failed"], 1);

    let report = service.shut_down().await;
    assert_eq!(report.reason, StopReason::Drained);
}

#[actix_rt::test]
async fn bad_input_gets_a_json_4xx_never_a_500() {
    let pool = Pool::builder().workers(1).build().unwrap();
    let service = start(&pool);
    for body in ["{not json", r#"{"millis": 5}"#, r#"{"name": 7}"#, "[]"] {
        let (status, error) = service.post_raw(body).await;
        assert_eq!(status, 400, "{body}: {error}");
        assert!(
            error["error"].as_str().unwrap().starts_with("bad job"),
            "{error}"
        );
    }
    let (status, error) = service.get("/jobs/12345").await;
    assert_eq!((status, error), (404, json!({"error": "no job 12345"})));
    let (status, error) = service.get("/jobs/not-a-number").await;
    assert_eq!(status, 400);
    assert!(
        error["error"].as_str().unwrap().starts_with("bad job id"),
        "{error}"
    );
    assert_eq!(
        pool.stats().await.unwrap().submitted,
        0,
        "nothing bad got in"
    );
    service.shut_down().await;
}

#[actix_rt::test]
async fn a_full_queue_answers_503_and_hands_the_job_back() {
    let pool = Pool::builder()
        .workers(1)
        .queue_capacity(1)
        .build()
        .unwrap();
    let service = start(&pool);
    let (_, long) = service.post(json!({"name": "long", "millis": 1_500})).await;
    service
        .wait_for(long["id"].as_u64().unwrap(), &["running"])
        .await;
    let (status, queued) = service.post(json!({"name": "queued", "millis": 10})).await;
    assert_eq!(status, 202);
    let queued_id = queued["id"].as_u64().unwrap();
    assert_eq!(
        service.get(&format!("/jobs/{queued_id}")).await.1,
        json!({"state": "queued"})
    );

    let refused_job = json!({"name": "one too many", "millis": 10, "fail": false});
    let (status, refused) = service.post(refused_job.clone()).await;
    assert_eq!(status, 503);
    assert_eq!(refused["job"], refused_job, "the job comes back whole");
    assert!(refused["error"].as_str().unwrap().contains("full"));

    // Shutting down drains: both accepted jobs finish, nothing is lost.
    let report = service.shut_down().await;
    assert!(report.not_run.is_empty());
    let stats = pool.stats().await.unwrap();
    assert_eq!(
        (
            stats.submitted,
            stats.completed,
            stats.queued,
            stats.in_flight
        ),
        (2, 2, 0, 0)
    );
}

#[actix_rt::test]
async fn jobs_accepted_just_before_shutdown_still_finish() {
    let pool = Pool::builder()
        .workers(2)
        .queue_capacity(10)
        .build()
        .unwrap();
    let service = start(&pool);
    for n in 0..6 {
        let (status, _) = service
            .post(json!({"name": format!("late-{n}"), "millis": 100}))
            .await;
        assert_eq!(status, 202);
    }
    let report = service.shut_down().await;
    assert_eq!(report.reason, StopReason::Drained);
    let stats = pool.stats().await.unwrap();
    assert_eq!(
        (stats.submitted, stats.completed),
        (6, 6),
        "the drain ran every accepted job"
    );
}

/// The shutdown fits its deadline even when a job would run far longer: the
/// job is cut off and handed back, its state says so, and the drain's report
/// names it.
#[actix_rt::test]
async fn a_job_that_outlasts_the_drain_deadline_is_cut_off_and_reported() {
    let pool = Pool::builder()
        .workers(1)
        .queue_capacity(10)
        .build()
        .unwrap();
    let service = start_with_deadline(&pool, Duration::from_millis(200));
    let (status, long) = service
        .post(json!({"name": "an hour of work", "millis": 3_600_000}))
        .await;
    assert_eq!(status, 202);
    let long_id = long["id"].as_u64().unwrap();
    service.wait_for(long_id, &["running"]).await;
    let (_, queued) = service
        .post(json!({"name": "never started", "millis": 10}))
        .await;
    let queued_id = queued["id"].as_u64().unwrap();

    let report = service.shut_down().await;
    let ids =
        |list: &[actix_workerpool::TaskId]| list.iter().map(|id| id.as_u64()).collect::<Vec<_>>();
    assert_eq!(ids(&report.aborted), [long_id]);
    assert_eq!(ids(&report.not_run), [queued_id]);
    let stats = pool.stats().await.unwrap();
    assert_eq!((stats.aborted, stats.not_run, stats.completed), (1, 1, 0));
    assert!(stats.balances(), "{stats:?}");
}
