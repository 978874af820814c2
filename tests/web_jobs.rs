//! The actix-web job service of `examples/web_jobs/`, tested for real: on
//! 127.0.0.1, through an HTTP client; and its binary, run as a process.
#![cfg(feature = "metrics")]

#[path = "support/built_example.rs"]
mod built_example;
#[allow(dead_code)]
#[path = "../examples/web_jobs/main.rs"]
mod web_jobs;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use built_example::built_example;

use actix_web::dev::ServerHandle;
use actix_workerpool::{Pool, PoolBuilder, StopReason, StopReport};
use serde_json::{Value, json};
use web_jobs::Job;

struct Service {
    base: String,
    client: awc::Client,
    server: ServerHandle,
    serving: actix_rt::task::JoinHandle<std::io::Result<StopReport>>,
}

/// A response: status, headers, and the body as JSON.
struct Reply {
    status: u16,
    headers: awc::http::header::HeaderMap,
    body: Value,
}

impl Reply {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header: {:?}", self.headers))
            .to_str()
            .unwrap()
    }

    /// The `error` of a JSON error body, checked to be one.
    fn error(&self) -> &str {
        assert_eq!(self.header("content-type"), "application/json");
        self.body["error"]
            .as_str()
            .unwrap_or_else(|| panic!("not a JSON error: {}", self.body))
    }
}

async fn start(builder: PoolBuilder<Job>) -> (Pool<Job>, Service) {
    start_with_deadline(builder, web_jobs::DRAIN_DEADLINE).await
}

async fn start_with_deadline(
    builder: PoolBuilder<Job>,
    deadline: Duration,
) -> (Pool<Job>, Service) {
    let (pool, metrics) = web_jobs::build_pool(builder).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = web_jobs::server(listener, pool.clone(), metrics)
        .await
        .unwrap();
    let handle = server.handle();
    let serving = actix_rt::spawn(web_jobs::serve_then_drain(server, pool.clone(), deadline));
    let service = Service {
        base,
        client: awc::Client::default(),
        server: handle,
        serving,
    };
    (pool, service)
}

async fn reply<S>(mut response: awc::ClientResponse<S>) -> Reply
where
    S: futures::Stream<Item = Result<actix_web::web::Bytes, awc::error::PayloadError>> + Unpin,
{
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.body().limit(1 << 20).await.unwrap();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| panic!("{status}: not JSON: {}", String::from_utf8_lossy(&bytes)));
    Reply {
        status,
        headers,
        body,
    }
}

impl Service {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn post(&self, body: Value) -> (u16, Value) {
        let reply = self.post_json(body).await;
        (reply.status, reply.body)
    }

    async fn post_json(&self, body: Value) -> Reply {
        let response = self.client.post(self.url("/jobs")).send_json(&body);
        reply(response.await.unwrap()).await
    }

    async fn post_raw(&self, body: &'static str) -> (u16, Value) {
        let reply = self.post_with("application/json", body.to_owned()).await;
        (reply.status, reply.body)
    }

    async fn post_with(&self, content_type: &str, body: String) -> Reply {
        let request = self.client.post(self.url("/jobs"));
        let request = match content_type {
            "" => request,
            _ => request.insert_header(("content-type", content_type)),
        };
        reply(request.send_body(body).await.unwrap()).await
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let reply = self.request("GET", path).await;
        (reply.status, reply.body)
    }

    async fn request(&self, method: &str, path: &str) -> Reply {
        let method = awc::http::Method::from_bytes(method.as_bytes()).unwrap();
        let response = self.client.request(method, self.url(path)).send();
        reply(response.await.unwrap()).await
    }

    async fn text(&self, path: &str) -> (u16, String, String) {
        let mut response = self.client.get(self.url(path)).send().await.unwrap();
        let content_type = response.headers().get("content-type").unwrap();
        let content_type = content_type.to_str().unwrap().to_owned();
        let body = response.body().limit(1 << 20).await.unwrap();
        let body = String::from_utf8(body.to_vec()).unwrap();
        (response.status().as_u16(), content_type, body)
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
    let (_pool, service) = start(Pool::builder().workers(2).queue_capacity(10)).await;

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
    let (pool, service) = start(Pool::builder().workers(1)).await;
    for body in [
        "{not json",
        r#"{"millis": 5}"#,
        r#"{"name": 7}"#,
        "[]",
        r#"{"name": "a", "milis": 5}"#,
    ] {
        let (status, error) = service.post_raw(body).await;
        assert_eq!(status, 400, "{body}: {error}");
        assert!(
            error["error"].as_str().unwrap().starts_with("bad job"),
            "{error}"
        );
    }
    let (_, typo) = service.post_raw(r#"{"name": "a", "milis": 5}"#).await;
    assert!(
        typo["error"]
            .as_str()
            .unwrap()
            .contains("unknown field `milis`"),
        "a misspelt field is named, not ignored: {typo}"
    );
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
async fn unknown_routes_and_wrong_methods_get_json_404_and_405_with_allow() {
    let (_pool, service) = start(Pool::builder().workers(1)).await;

    let missing = service.request("GET", "/nothing/here").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.error(), "no route for GET /nothing/here");
    let missing = service.request("POST", "/jobs/1/cancel").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.error(), "no route for POST /jobs/1/cancel");

    for (method, path, allow) in [
        ("GET", "/jobs", "POST"),
        ("PUT", "/jobs", "POST"),
        ("PUT", "/jobs/1", "GET, HEAD, DELETE"),
        ("POST", "/stats", "GET, HEAD"),
        ("POST", "/stats/history", "GET, HEAD"),
        ("POST", "/metrics", "GET, HEAD"),
        ("POST", "/", "GET, HEAD"),
    ] {
        let refused = service.request(method, path).await;
        assert_eq!(refused.status, 405, "{method} {path}");
        assert_eq!(refused.header("allow"), allow, "{method} {path}");
        assert_eq!(
            refused.error(),
            format!("{method} is not allowed on {path}; use {allow}")
        );
    }
    // HEAD answers as GET would, without the body.
    let head = |path: &str| service.client.head(service.url(path)).send();
    let mut refused = head("/jobs").await.unwrap();
    assert_eq!(refused.status().as_u16(), 405);
    assert_eq!(refused.headers().get("allow").unwrap(), "POST");
    assert!(refused.body().await.unwrap().is_empty());
    for path in ["/", "/stats", "/metrics"] {
        let mut found = head(path).await.unwrap();
        assert_eq!(found.status().as_u16(), 200, "HEAD {path}");
        assert!(found.body().await.unwrap().is_empty(), "HEAD {path}");
    }
    service.shut_down().await;
}

#[actix_rt::test]
async fn bodies_too_large_or_not_json_get_413_and_415() {
    let (pool, service) = start(Pool::builder().workers(1)).await;

    let huge = json!({"name": "x".repeat(web_jobs::JSON_LIMIT)}).to_string();
    let too_large = service.post_with("application/json", huge).await;
    assert_eq!(too_large.status, 413);
    assert_eq!(
        too_large.error(),
        "bad job: the body is larger than 16384 bytes"
    );

    let job = json!({"name": "a.pdf"}).to_string();
    for content_type in ["", "text/plain", "application/x-www-form-urlencoded"] {
        let refused = service.post_with(content_type, job.clone()).await;
        assert_eq!(refused.status, 415, "content-type {content_type:?}");
        assert_eq!(
            refused.error(),
            "bad job: send it as JSON, with content-type: application/json"
        );
    }
    let accepted = service
        .post_with("application/json; charset=utf-8", job)
        .await;
    assert_eq!(accepted.status, 202, "{}", accepted.body);
    assert_eq!(pool.stats().await.unwrap().submitted, 1);
    service.shut_down().await;
}

#[actix_rt::test]
async fn jobs_out_of_bounds_get_422_naming_the_bound() {
    let (pool, service) = start(Pool::builder().workers(1)).await;
    let longest = "n".repeat(web_jobs::MAX_NAME_CHARS);
    let too_long = "n".repeat(web_jobs::MAX_NAME_CHARS + 1);
    for (job, error) in [
        (
            json!({"name": "a year", "millis": 31_536_000_000_u64}),
            "millis must be at most 60000 (one minute); got 31536000000",
        ),
        (
            json!({"name": "a", "millis": 60_001}),
            "millis must be at most 60000 (one minute); got 60001",
        ),
        (json!({"name": ""}), "name must not be empty"),
        (json!({"name": "  "}), "name must not be empty"),
        (
            json!({"name": too_long}),
            "name must be at most 200 characters; this one has 201",
        ),
    ] {
        let refused = service.post_json(job.clone()).await;
        assert_eq!(refused.status, 422, "{job}");
        assert_eq!(refused.error(), error);
    }
    assert_eq!(pool.stats().await.unwrap().submitted, 0);

    // The bounds themselves are allowed: a name of 200 characters (in
    // characters, not bytes) and a job of exactly a minute.
    let (status, body) = service.post(json!({"name": longest})).await;
    assert_eq!(status, 202, "{body}");
    let (status, body) = service.post(json!({"name": "é".repeat(200)})).await;
    assert_eq!(status, 202, "{body}");
    let (status, body) = service
        .post(json!({"name": "a minute", "millis": web_jobs::MAX_MILLIS}))
        .await;
    assert_eq!(status, 202, "{body}");
    // Only the one-minute job is left by now, or soon: cut it off.
    service.server.stop(true).await;
    pool.stop_within(Duration::from_millis(100)).await.unwrap();
}

#[actix_rt::test]
async fn a_full_queue_answers_503_and_hands_the_job_back() {
    let (pool, service) = start(Pool::builder().workers(1).queue_capacity(1)).await;
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
async fn delete_cancels_a_queued_or_running_job_and_says_which() {
    let (pool, service) = start(Pool::builder().workers(1).queue_capacity(2)).await;
    let (_, long) = service
        .post(json!({"name": "long", "millis": 60_000}))
        .await;
    let long = long["id"].as_u64().unwrap();
    service.wait_for(long, &["running"]).await;
    let (_, queued) = service.post(json!({"name": "queued", "millis": 10})).await;
    let queued = queued["id"].as_u64().unwrap();

    let delete = |id: u64| {
        let path = format!("/jobs/{id}");
        let service = &service;
        async move { service.request("DELETE", &path).await }
    };
    let taken_out = delete(queued).await;
    assert_eq!(
        (taken_out.status, taken_out.body),
        (200, json!({"cancelled": "queued"}))
    );
    let cut_off = delete(long).await;
    assert_eq!(
        (cut_off.status, cut_off.body),
        (200, json!({"cancelled": "running"}))
    );
    for id in [queued, long] {
        let state = service.wait_for(id, &["cancelled"]).await;
        assert!(state["attempts"].is_u64(), "{state}");
    }
    // A second time: the job has ended, and says how.
    let again = delete(long).await;
    assert_eq!(again.status, 409);
    assert_eq!(again.error(), format!("job {long} has ended"));
    assert_eq!(again.body["state"]["state"], "cancelled");
    let unknown = delete(999).await;
    assert_eq!((unknown.status, unknown.error()), (404, "no job 999"));

    // The worker was not held up: a new job runs at once.
    let (_, next) = service.post(json!({"name": "next", "millis": 1})).await;
    service
        .wait_for(next["id"].as_u64().unwrap(), &["completed"])
        .await;
    let stats = pool.stats().await.unwrap();
    assert_eq!(
        (stats.cancelled, stats.completed, stats.restarts),
        (2, 1, 0)
    );
    service.shut_down().await;
}

#[actix_rt::test]
async fn jobs_accepted_just_before_shutdown_still_finish() {
    let (pool, service) = start(Pool::builder().workers(2).queue_capacity(10)).await;
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
    let (pool, service) = start_with_deadline(
        Pool::builder().workers(1).queue_capacity(10),
        Duration::from_millis(200),
    )
    .await;
    let (status, long) = service
        .post(json!({"name": "a minute of work", "millis": web_jobs::MAX_MILLIS}))
        .await;
    assert_eq!(status, 202);
    let long_id = long["id"].as_u64().unwrap();
    service.wait_for(long_id, &["running"]).await;
    let (_, queued) = service
        .post(json!({"name": "never started", "millis": 10}))
        .await;
    let queued_id = queued["id"].as_u64().unwrap();

    // Well before the minute the job would run: the drain's deadline cut it off.
    let report = actix_rt::time::timeout(Duration::from_secs(30), service.shut_down())
        .await
        .expect("the shutdown did not wait for the job");
    let ids =
        |list: &[actix_workerpool::TaskId]| list.iter().map(|id| id.as_u64()).collect::<Vec<_>>();
    assert_eq!(ids(&report.aborted), [long_id]);
    assert_eq!(ids(&report.not_run), [queued_id]);
    let stats = pool.stats().await.unwrap();
    assert_eq!((stats.aborted, stats.not_run, stats.completed), (1, 1, 0));
    assert!(stats.balances(), "{stats:?}");
}

#[actix_rt::test]
async fn metrics_are_prometheus_text_with_the_pools_name() {
    let (pool, service) = start(Pool::builder().workers(1)).await;
    let (_, job) = service.post(json!({"name": "a.pdf", "millis": 5})).await;
    service
        .wait_for(job["id"].as_u64().unwrap(), &["completed"])
        .await;
    // The counters are published once the supervisor has read the report
    // that the job ended; a stats round trip comes after it.
    assert_eq!(pool.stats().await.unwrap().completed, 1);

    let (status, content_type, text) = service.text("/metrics").await;
    assert_eq!(status, 200);
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    let completed = text
        .lines()
        .find(|line| {
            line.starts_with("workerpool_tasks_finished_total{")
                && line.contains(r#"outcome="completed""#)
        })
        .unwrap_or_else(|| panic!("no completed count in\n{text}"));
    assert!(completed.contains(r#"pool="jobs""#), "{completed}");
    assert!(completed.ends_with(" 1"), "{completed}");
    for expected in [
        "# TYPE workerpool_tasks_finished_total counter",
        "# TYPE workerpool_tasks_submitted_total counter",
        "# TYPE workerpool_tasks_queued gauge",
        "# TYPE workerpool_workers_live gauge",
        // Histograms, not summaries: buckets add up across instances.
        "# TYPE workerpool_tasks_wait_duration_seconds histogram",
        "# TYPE messaging_process_duration_seconds histogram",
        r#"workerpool_workers_live{pool="jobs"} 1"#,
        r#"messaging_process_duration_seconds_bucket{pool="jobs",messaging_system="actix_workerpool",messaging_operation_name="process",le="+Inf"} 1"#,
        r#"messaging_process_duration_seconds_count{pool="jobs",messaging_system="actix_workerpool",messaging_operation_name="process"} 1"#,
        r#"workerpool_tasks_wait_duration_seconds_count{pool="jobs"} 1"#,
    ] {
        assert!(text.contains(expected), "no {expected:?} in\n{text}");
    }
    service.shut_down().await;
}

#[actix_rt::test]
async fn stats_show_latency_worker_states_and_the_latest_failures() {
    let (pool, service) = start(Pool::builder().workers(2).queue_capacity(10)).await;
    let (_, ok) = service.post(json!({"name": "ok.pdf", "millis": 20})).await;
    let (_, bad) = service
        .post(json!({"name": "bad.pdf", "millis": 1, "fail": true}))
        .await;
    let bad_id = bad["id"].as_u64().unwrap();
    service
        .wait_for(ok["id"].as_u64().unwrap(), &["completed"])
        .await;
    service.wait_for(bad_id, &["failed"]).await;

    let (_, stats) = service.get("/stats").await;
    assert_eq!(stats["pool"], "jobs");
    for (which, entries) in [("waited", 2), ("ran", 2)] {
        let latency = &stats["latency"][which];
        assert_eq!(latency["count"], entries, "{stats}");
        let p50 = latency["p50_ms"].as_f64().unwrap();
        let max = latency["max_ms"].as_f64().unwrap();
        assert!(0.0 <= p50 && p50 <= max, "{latency}");
    }
    assert!(
        stats["latency"]["ran"]["max_ms"].as_f64().unwrap() >= 20.0,
        "the 20 ms job ran at least 20 ms: {stats}"
    );
    let workers = stats["workers"].as_array().unwrap();
    assert_eq!(workers.len(), 2);
    for (slot, worker) in workers.iter().enumerate() {
        assert_eq!(worker["slot"], slot);
        assert_eq!(worker["state"], "idle", "{worker}");
        assert_eq!(worker["description"], "idle");
        assert_eq!(worker["task"], Value::Null);
    }
    let failures = stats["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{stats}");
    assert_eq!(failures[0]["task"], bad_id);
    assert_eq!(failures[0]["kind"], "failed");
    assert_eq!(failures[0]["error"], "could not process bad.pdf");
    assert!(failures[0]["worker"].as_u64().unwrap() < 2);
    assert!(failures[0]["at_ms"].as_u64().unwrap() > 1_600_000_000_000);

    // A running job shows on its worker.
    let (_, long) = service.post(json!({"name": "long", "millis": 5_000})).await;
    let long_id = long["id"].as_u64().unwrap();
    let running = service.wait_for(long_id, &["running"]).await;
    let (_, stats) = service.get("/stats").await;
    let slot = running["worker"].as_u64().unwrap() as usize;
    let worker = &stats["workers"][slot];
    assert_eq!(worker["state"], "busy", "{stats}");
    assert_eq!(worker["task"], long_id);
    assert_eq!(worker["description"], format!("busy with task#{long_id}"));
    assert_eq!(stats["in_flight"], 1);

    service.server.stop(true).await;
    pool.stop_within(Duration::from_millis(100)).await.unwrap();
}

#[actix_rt::test]
async fn a_job_that_times_out_is_listed_among_the_failures() {
    let builder = Pool::builder()
        .workers(1)
        .task_timeout(Duration::from_millis(50));
    let (_pool, service) = start(builder).await;
    let (_, slow) = service.post(json!({"name": "slow", "millis": 2_000})).await;
    let slow_id = slow["id"].as_u64().unwrap();
    service.wait_for(slow_id, &["timed_out"]).await;
    let (_, stats) = service.get("/stats").await;
    assert_eq!(stats["timed_out"], 1);
    let failures = stats["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{stats}");
    assert_eq!(failures[0]["task"], slow_id);
    assert_eq!(failures[0]["worker"], 0);
    assert_eq!(failures[0]["kind"], "timed_out");
    assert_eq!(failures[0]["error"], "timed out (attempt 1)");
    service.shut_down().await;
}

#[test]
fn failures_are_read_from_the_pools_events() {
    use actix_workerpool::{PoolEvent, TaskId};
    use web_jobs::Failure;
    let failure = |task, worker, kind, error: &str| Failure {
        task,
        worker,
        kind,
        error: error.to_owned(),
        at_ms: 7,
    };
    let failed = PoolEvent::TaskFailed {
        task: TaskId::from(3),
        worker: 1,
        attempts: 1,
        // The `Debug` form of the task's `String` error.
        error: format!("{:?}", "could not process \"a.pdf\""),
    };
    assert_eq!(
        Failure::from_event(failed, 7),
        Some(failure(3, 1, "failed", r#"could not process "a.pdf""#))
    );
    let retried = PoolEvent::TaskFailed {
        task: TaskId::from(4),
        worker: 0,
        attempts: 2,
        error: "Timeout".to_owned(),
    };
    assert_eq!(
        Failure::from_event(retried, 7),
        Some(failure(4, 0, "failed", "Timeout (after 2 attempts)"))
    );
    let panicked = PoolEvent::TaskPanicked {
        task: TaskId::from(5),
        worker: 2,
        message: "index out of bounds".to_owned(),
    };
    assert_eq!(
        Failure::from_event(panicked, 7),
        Some(failure(5, 2, "panicked", "index out of bounds"))
    );
    let timed_out = PoolEvent::TaskTimedOut {
        task: TaskId::from(6),
        worker: 3,
        attempts: 2,
    };
    assert_eq!(
        Failure::from_event(timed_out, 7),
        Some(failure(6, 3, "timed_out", "timed out (attempt 2)"))
    );
    let completed = PoolEvent::TaskCompleted {
        task: TaskId::from(7),
        worker: 0,
        attempts: 1,
    };
    assert_eq!(Failure::from_event(completed, 7), None);
}

#[test]
fn failures_keep_the_latest_twenty_newest_first() {
    let failures = web_jobs::Failures::default();
    for task in 0..25 {
        failures.push(web_jobs::Failure {
            task,
            worker: 0,
            kind: "failed",
            error: format!("error {task}"),
            at_ms: task,
        });
    }
    let latest = failures.latest();
    assert_eq!(latest.len(), web_jobs::FAILURES_KEPT);
    let tasks: Vec<u64> = latest.iter().map(|failure| failure.task).collect();
    assert_eq!(tasks, (5..25).rev().collect::<Vec<_>>());
}

#[test]
fn the_history_keeps_the_last_five_minutes() {
    let history = web_jobs::History::default();
    for second in 0..(web_jobs::HISTORY_SAMPLES as u64 + 10) {
        history.push(web_jobs::Sample {
            at_ms: second * 1_000,
            queued: 0,
            in_flight: 0,
            waiting_retry: 0,
        });
    }
    let samples = history.samples();
    assert_eq!(samples.len(), 300);
    assert_eq!(samples[0].at_ms, 10_000, "the oldest went first");
    assert_eq!(samples[299].at_ms, 309_000);
}

#[actix_rt::test]
async fn the_history_grows_by_a_sample_a_second() {
    let (_pool, service) = start(Pool::builder().workers(1)).await;
    let (status, history) = service.get("/stats/history").await;
    assert_eq!(status, 200);
    assert_eq!(history["every_ms"], 1_000);
    let first = history["samples"].as_array().unwrap().len();
    assert!(first >= 1, "a sample as the server starts: {history}");

    let started = Instant::now();
    let grown = loop {
        let (_, history) = service.get("/stats/history").await;
        let samples = history["samples"].as_array().unwrap().clone();
        if samples.len() >= first + 2 {
            break samples;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the history did not grow: {history}"
        );
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    };
    let at = |sample: &Value| sample["at_ms"].as_u64().unwrap();
    assert!(
        grown.windows(2).all(|pair| at(&pair[0]) <= at(&pair[1])),
        "samples in time order: {grown:?}"
    );
    for sample in &grown {
        assert_eq!(sample["queued"], 0);
        assert_eq!(sample["in_flight"], 0);
        assert_eq!(sample["waiting_retry"], 0);
    }
    service.shut_down().await;
}

#[actix_rt::test]
async fn the_dashboard_is_one_page_that_loads_nothing_from_elsewhere() {
    let (_pool, service) = start(Pool::builder().workers(1)).await;
    let mut response = service.client.get(service.url("/")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let headers = response.headers().clone();
    assert_eq!(
        headers.get("content-type").unwrap(),
        "text/html; charset=utf-8"
    );
    let csp = headers
        .get("content-security-policy")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(csp.starts_with("default-src 'none';"), "{csp}");
    assert!(csp.contains("connect-src 'self'"), "{csp}");
    let page = response.body().limit(1 << 20).await.unwrap();
    let page = String::from_utf8(page.to_vec()).unwrap();
    assert!(page.starts_with("<!doctype html>"));
    for id in [
        "submitted",
        "completed",
        "failed",
        "panicked",
        "timed_out",
        "queued",
        "in_flight",
        "waiting_retry",
        "retries",
        "restarts",
        "wait-p50",
        "run-p99",
        "queue-chart",
        "workers",
        "failures",
    ] {
        assert!(page.contains(&format!(r#"id="{id}""#)), "no #{id}");
    }
    assert!(!page.contains("://"), "the page names no other site");
    assert!(!page.contains(" src="), "the page loads no script or image");
    service.shut_down().await;
}

#[test]
fn the_address_comes_from_bind_then_the_environment_then_the_default() {
    use web_jobs::{Command, parse_args};
    let args = |list: &[&str]| list.iter().map(|arg| arg.to_string()).collect::<Vec<_>>();
    let env = || Some("0.0.0.0:9000".to_owned());
    assert_eq!(
        parse_args(args(&[]), None),
        Ok(Command::Serve("127.0.0.1:8080".into()))
    );
    assert_eq!(
        parse_args(args(&[]), env()),
        Ok(Command::Serve("0.0.0.0:9000".into()))
    );
    assert_eq!(
        parse_args(args(&["--bind", "127.0.0.1:0"]), env()),
        Ok(Command::Serve("127.0.0.1:0".into()))
    );
    assert_eq!(
        parse_args(args(&["--bind=[::1]:0"]), None),
        Ok(Command::Serve("[::1]:0".into()))
    );
    assert_eq!(parse_args(args(&["--help"]), None), Ok(Command::Help));
    assert!(parse_args(args(&["--bind"]), None).is_err());
    assert!(parse_args(args(&["--bind="]), None).is_err());
    assert_eq!(
        parse_args(args(&["--port", "80"]), None),
        Err(r#"unknown argument "--port""#.to_owned())
    );
}

/// The `web_jobs` example, built with this test's features (so that it is
/// the build `cargo test` made, not a second one).
fn example() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let mut features = vec!["metrics"];
            if cfg!(feature = "tracing") {
                features.push("tracing");
            }
            if cfg!(feature = "postgres") {
                features.push("postgres");
            }
            built_example("web_jobs", &features)
        })
        .clone()
}

/// The service run as a process, killed when dropped (a test that fails
/// leaves nothing behind).
struct Process {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Process {
    fn spawn(args: &[&str], env: Option<&str>) -> Process {
        let mut command = Command::new(example());
        command
            .args(args)
            .env_remove(web_jobs::BIND_ENV)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(addr) = env {
            command.env(web_jobs::BIND_ENV, addr);
        }
        let mut child = command.spawn().expect("start the web_jobs example");
        let (send, lines) = mpsc::channel();
        for output in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let send = send.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(output).lines().map_while(Result::ok) {
                    let _ = send.send(line);
                }
            });
        }
        Process { child, lines }
    }

    /// The first line (of stdout or stderr) that contains `needle`, within `limit`.
    fn line(&self, needle: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(line) => seen.push(line),
                Err(_) => panic!("no line with {needle:?} within {limit:?}; saw {seen:?}"),
            }
        }
    }

    /// The address of the `listening on http://ADDR` line.
    fn address(&self) -> String {
        let line = self.line("listening on http://", Duration::from_secs(30));
        let address = line.strip_prefix("listening on ");
        address.unwrap_or_else(|| panic!("{line:?}")).to_owned()
    }

    /// Sends a signal, as `kill -SIGNAL` does.
    fn signal(&self, signal: &str) {
        let sent = Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success());
    }

    /// Waits (at most `limit`) for the process to exit by itself.
    fn exit_status(&mut self, limit: Duration) -> std::process::ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("its status") {
                return status;
            }
            assert!(
                started.elapsed() < limit,
                "the process did not exit within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[actix_rt::test]
async fn the_binary_prints_its_address_serves_and_drains_on_ctrl_c_or_sigterm() {
    // Two copies at once, one told by --bind (which wins over the
    // environment) and one by the environment: with port 0 each gets a port
    // of its own.
    let mut by_flag = Process::spawn(&["--bind", "127.0.0.1:0"], Some("127.0.0.1:1"));
    let mut by_env = Process::spawn(&[], Some("127.0.0.1:0"));
    let (first, second) = (by_flag.address(), by_env.address());
    assert_ne!(first, second);
    for base in [&first, &second] {
        let port: u16 = base.rsplit(':').next().unwrap().parse().unwrap();
        assert!(base.starts_with("http://127.0.0.1:"), "{base}");
        assert!(port > 1, "{base}");
    }

    let client = awc::Client::default();
    for base in [&first, &second] {
        let job = json!({"name": "a.pdf", "millis": 5_000});
        let mut accepted = client
            .post(format!("{base}/jobs"))
            .send_json(&job)
            .await
            .unwrap();
        assert_eq!(accepted.status().as_u16(), 202);
        let _ = accepted.body().await;
    }
    let mut page = client.get(format!("{second}/")).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let page = page.body().await.unwrap();
    assert!(page.starts_with(b"<!doctype html>"));
    drop(client);

    // Ctrl-C (SIGINT), or SIGTERM as a service manager sends, while the jobs
    // run: the server stops, the pool drains (the job finishes rather than
    // being cut off), and the process exits cleanly.
    by_flag.signal("INT");
    by_env.signal("TERM");
    for process in [&mut by_flag, &mut by_env] {
        let drained = process.line("job pool drained", Duration::from_secs(30));
        assert!(
            drained.ends_with("job pool drained: 1 finished, 0 handed back, 0 cut off"),
            "{drained}"
        );
        assert!(process.exit_status(Duration::from_secs(30)).success());
    }
}

#[test]
fn the_binary_refuses_bad_arguments_and_addresses_with_a_message() {
    let mut unknown = Process::spawn(&["--port", "80"], None);
    let error = unknown.line("web_jobs:", Duration::from_secs(30));
    assert_eq!(error, r#"web_jobs: unknown argument "--port""#);
    assert_eq!(unknown.exit_status(Duration::from_secs(10)).code(), Some(2));

    let mut unusable = Process::spawn(&["--bind", "not-an-address"], None);
    let error = unusable.line("web_jobs:", Duration::from_secs(30));
    assert_eq!(
        error,
        "web_jobs: cannot listen on not-an-address: invalid socket address"
    );
    assert_eq!(
        unusable.exit_status(Duration::from_secs(10)).code(),
        Some(1)
    );
}
