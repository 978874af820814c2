//! A job service on actix-web, with the pool shared as `web::Data`: a JSON API,
//! Prometheus metrics and a live dashboard, in one binary.
//!
//! ```sh
//! cargo run --example web_jobs --features metrics                      # http://127.0.0.1:8080
//! cargo run --example web_jobs --features metrics -- --bind 127.0.0.1:0  # any free port
//! curl -s -XPOST localhost:8080/jobs -H 'content-type: application/json' \
//!      -d '{"name": "report.pdf", "millis": 500}'    # 202 {"id":0}
//! curl -s localhost:8080/jobs/0                     # queued / running / completed / failed
//! curl -s localhost:8080/stats                      # counters, latency, workers, failures
//! curl -s localhost:8080/metrics                    # the same, for Prometheus
//! # and the dashboard, in a browser: http://127.0.0.1:8080/
//! ```
//!
//! The address comes from `--bind ADDR`, else the environment variable
//! `WEB_JOBS_BIND`, else [`DEFAULT_BIND`]. Once the socket is bound, the
//! service prints one line on stdout, `listening on http://127.0.0.1:41234`,
//! so that with port 0 a script (or a test) learns which port it got.
//!
//! | route | answers |
//! |---|---|
//! | `GET /` | the dashboard: one HTML page, with nothing to fetch but this service's JSON, that refreshes itself every second |
//! | `POST /jobs` `{"name", "millis", "fail"}` | 202 `{"id"}`; 503 `{"error", "job"}` when the queue is full or the pool is stopping (the job comes back) |
//! | `GET /jobs/{id}` | 200 `{"state": "queued" \| "running" \| "waiting_retry" \| "completed" \| "failed" \| ...}`; 404 for an unknown id |
//! | `GET /stats` | 200: the pool's counters, wait and run latency, each worker slot's state, the latest failures |
//! | `GET /stats/history` | 200: queue depth and tasks in flight, sampled every second for the last 5 minutes |
//! | `GET /metrics` | 200: the pool's metrics in Prometheus' text format (label `pool="jobs"`) |
//!
//! Every route that reads also answers HEAD. Every error has a JSON body,
//! `{"error": "..."}`: 404 for an unknown route, 405 with an `Allow` header
//! for a method a route does not take, 413 for a body over [`JSON_LIMIT`],
//! 415 for a `POST /jobs` that is not `application/json`, 400 for JSON that
//! does not parse as a job, and 422 for a job out of bounds (a `name` empty
//! or longer than [`MAX_NAME_CHARS`], `millis` over [`MAX_MILLIS`]).
//!
//! Ctrl-C, or the SIGTERM that a service manager sends, stops the server
//! (SIGTERM lets open requests finish first), and the pool drains before the
//! process exits: every accepted job finishes, or, should some run longer
//! than [`DRAIN_DEADLINE`], is cut off and handed back (`"aborted"`), so that
//! the whole shutdown fits a service manager's stop timeout of 30 s
//! (systemd's `TimeoutStopSec`, Kubernetes' `terminationGracePeriodSeconds`):
//! at most [`SERVER_SHUTDOWN`] for open connections, then at most
//! [`DRAIN_DEADLINE`] for the jobs. The pool's own `shutdown_timeout` is the
//! same deadline, so that any other stop of it is bounded too.
//!
//! What the crate keeps (where a job is: [`Pool::status`]) and what the app
//! keeps (the result of a finished job, in [`Results`]) are split on purpose:
//! the pool holds no history, so an app decides how long results live.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Write as _};
use std::net::TcpListener;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix::{Actor, Context};
use actix_web::dev::Server;
use actix_web::http::{StatusCode, header};
use actix_web::{
    App, FromRequest, Handler, HttpRequest, HttpResponse, HttpServer, Resource, Responder, Route,
    error, web,
};
use actix_workerpool::{
    BuildError, Jitter, Latency, Outcome, Pool, PoolBuilder, PoolEvent, RetryPolicy, Stats,
    StopReport, Task, TaskContext, TaskId, TaskStatus, TrySubmitError, WorkerState, WorkerStats,
};
use log::info;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The pool's name: its metrics carry it as the label `pool`.
pub const POOL_NAME: &str = "jobs";

/// Where the service listens unless told otherwise.
pub const DEFAULT_BIND: &str = "127.0.0.1:8080";

/// The environment variable that names the address, when `--bind` does not.
pub const BIND_ENV: &str = "WEB_JOBS_BIND";

/// The longest job a client may ask for: one minute.
pub const MAX_MILLIS: u64 = 60_000;

/// The longest job name, in characters.
pub const MAX_NAME_CHARS: usize = 200;

/// The largest `POST /jobs` body, in bytes: a job is a few dozen.
pub const JSON_LIMIT: usize = 16 * 1024;

/// How long one attempt may run: longer than any job a client may ask for,
/// so that only an attempt that hangs times out.
pub const TASK_TIMEOUT: Duration = Duration::from_secs(90);

/// How often the queue depth is sampled for the dashboard's chart.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(1);

/// How many samples the history keeps: 5 minutes' worth.
pub const HISTORY_SAMPLES: usize = 300;

/// How many of the latest failures the dashboard lists.
pub const FAILURES_KEPT: usize = 20;

/// The histogram buckets for the wait and run durations, in seconds: from
/// half a millisecond to past the longest job. With buckets set, Prometheus
/// gets real histograms (which add up across instances) rather than
/// summaries.
const BUCKETS: [f64; 16] = [
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    90.0,
];

/// The dashboard, in the binary: the service is one file to deploy.
const DASHBOARD: &str = include_str!("dashboard.html");

/// The dashboard may run its own inline script and style and talk to this
/// service, and nothing else: it works offline, and even a bug that put a
/// job's name into the page as markup (the page sets text, never markup)
/// could not make it load anything from elsewhere.
const DASHBOARD_CSP: &str = "default-src 'none'; script-src 'unsafe-inline'; \
    style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'";

/// A job as a client posts it.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct JobRequest {
    pub name: String,
    /// How long the work takes.
    #[serde(default)]
    pub millis: u64,
    /// Whether the work fails (every attempt).
    #[serde(default)]
    pub fail: bool,
}

impl JobRequest {
    /// Why the service refuses this job, if it does: a name that says
    /// nothing or too much, or work that would hold a worker too long.
    pub fn out_of_bounds(&self) -> Option<String> {
        let chars = self.name.chars().count();
        if self.name.trim().is_empty() {
            Some("name must not be empty".to_owned())
        } else if chars > MAX_NAME_CHARS {
            Some(format!(
                "name must be at most {MAX_NAME_CHARS} characters; this one has {chars}"
            ))
        } else if self.millis > MAX_MILLIS {
            Some(format!(
                "millis must be at most {MAX_MILLIS} (one minute); got {}",
                self.millis
            ))
        } else {
            None
        }
    }
}

/// The task: "processes" the named file.
pub struct Job(pub JobRequest);

impl Task for Job {
    type Output = String;
    type Error = String;
    type State = ();

    async fn run(&mut self, _: &mut TaskContext<()>) -> Result<String, String> {
        actix_rt::time::sleep(Duration::from_millis(self.0.millis)).await;
        if self.0.fail {
            return Err(format!("could not process {}", self.0.name));
        }
        Ok(format!("processed {}", self.0.name))
    }
}

/// The results of finished jobs, and the ids of those accepted but not yet
/// finished (for the moment between `try_submit` and the supervisor seeing the
/// job, when the pool cannot say where it is yet).
#[derive(Default)]
pub struct Results {
    jobs: Mutex<HashMap<u64, Option<Value>>>,
}

impl Results {
    fn accepted(&self, id: TaskId) {
        self.jobs.lock().unwrap().insert(id.as_u64(), None);
    }

    fn finished(&self, id: TaskId, outcome: Outcome<Job>) {
        let result = match outcome {
            Outcome::Completed { output, attempts } => {
                json!({"state": "completed", "attempts": attempts, "output": output})
            }
            Outcome::Failed { error, attempts } => {
                json!({"state": "failed", "attempts": attempts, "error": error})
            }
            Outcome::Panicked { message, attempts } => {
                json!({"state": "panicked", "attempts": attempts, "error": message})
            }
            Outcome::TimedOut { attempts } => json!({"state": "timed_out", "attempts": attempts}),
            // A real service would store the job to run it again later.
            Outcome::Aborted { attempts, .. } => json!({"state": "aborted", "attempts": attempts}),
            Outcome::NotRun { reason, .. } => {
                json!({"state": "not_run", "reason": reason.to_string()})
            }
        };
        self.jobs.lock().unwrap().insert(id.as_u64(), Some(result));
    }

    /// `None`: never accepted here; `Some(None)`: accepted, not finished.
    fn get(&self, id: u64) -> Option<Option<Value>> {
        self.jobs.lock().unwrap().get(&id).cloned()
    }
}

/// Milliseconds since the Unix epoch: what the dashboard's clock reads.
fn unix_millis() -> u64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH);
    since.map_or(0, |since| since.as_millis() as u64)
}

/// One failed, panicked or timed-out task, as the dashboard lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    pub task: u64,
    pub worker: usize,
    /// `failed`, `panicked` or `timed_out`.
    pub kind: &'static str,
    pub error: String,
    /// When the pool said so, in milliseconds since the Unix epoch.
    pub at_ms: u64,
}

impl Failure {
    /// The failure an event tells of, if it tells of one.
    pub fn from_event(event: PoolEvent, at_ms: u64) -> Option<Failure> {
        let (task, worker, kind, error) = match event {
            PoolEvent::TaskFailed {
                task,
                worker,
                attempts,
                error,
            } => {
                // The event carries the error's `Debug` form; for this
                // service's `String` errors that is a quoted, escaped
                // literal, which reads better unquoted.
                let error = serde_json::from_str::<String>(&error).unwrap_or(error);
                let error = match attempts {
                    1 => error,
                    _ => format!("{error} (after {attempts} attempts)"),
                };
                (task, worker, "failed", error)
            }
            PoolEvent::TaskPanicked {
                task,
                worker,
                message,
            } => (task, worker, "panicked", message),
            PoolEvent::TaskTimedOut {
                task,
                worker,
                attempts,
            } => {
                let error = format!("timed out (attempt {attempts})");
                (task, worker, "timed_out", error)
            }
            _ => return None,
        };
        Some(Failure {
            task: task.as_u64(),
            worker,
            kind,
            error,
            at_ms,
        })
    }
}

/// The latest failures, newest first, at most [`FAILURES_KEPT`].
#[derive(Default)]
pub struct Failures(Mutex<VecDeque<Failure>>);

impl Failures {
    pub fn push(&self, failure: Failure) {
        let mut latest = self.0.lock().unwrap();
        latest.push_front(failure);
        latest.truncate(FAILURES_KEPT);
    }

    pub fn latest(&self) -> Vec<Failure> {
        self.0.lock().unwrap().iter().cloned().collect()
    }
}

/// Subscribes to the pool's events and keeps the failures they tell of.
struct FailureLog(Arc<Failures>);

impl Actor for FailureLog {
    type Context = Context<Self>;
}

impl actix::Handler<PoolEvent> for FailureLog {
    type Result = ();

    fn handle(&mut self, event: PoolEvent, _: &mut Context<Self>) {
        if let Some(failure) = Failure::from_event(event, unix_millis()) {
            self.0.push(failure);
        }
    }
}

/// One point of the dashboard's chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Sample {
    pub at_ms: u64,
    pub queued: usize,
    pub in_flight: usize,
    pub waiting_retry: usize,
}

/// The last [`HISTORY_SAMPLES`] samples, oldest first. The server keeps them,
/// not the page, so that a reload (or a second viewer) sees the same past.
#[derive(Default)]
pub struct History(Mutex<VecDeque<Sample>>);

impl History {
    pub fn push(&self, sample: Sample) {
        let mut samples = self.0.lock().unwrap();
        if samples.len() == HISTORY_SAMPLES {
            samples.pop_front();
        }
        samples.push_back(sample);
    }

    pub fn samples(&self) -> Vec<Sample> {
        self.0.lock().unwrap().iter().copied().collect()
    }
}

/// What every route shares.
pub struct Shared {
    pool: Pool<Job>,
    metrics: PrometheusHandle,
    results: Results,
    failures: Arc<Failures>,
    history: History,
}

/// Builds the pool from `builder`, named [`POOL_NAME`], with its metrics
/// going to a Prometheus recorder of its own, whose handle renders them.
///
/// The pool registers its metrics as it is built, with the recorder in place
/// then, and records into them from then on. A recorder of its own rather
/// than the global one: the tests build many pools in one process.
pub fn build_pool(builder: PoolBuilder<Job>) -> Result<(Pool<Job>, PrometheusHandle), BuildError> {
    let recorder = PrometheusBuilder::new()
        // `_total` on counters and `_seconds` on durations, as Prometheus'
        // own naming rules (and OpenTelemetry's export to it) have them.
        .with_recommended_naming(true)
        .set_buckets(&BUCKETS)
        .expect("the buckets are not empty")
        .build_recorder();
    let metrics = recorder.handle();
    let pool = metrics::with_local_recorder(&recorder, || builder.name(POOL_NAME).build())?;
    Ok((pool, metrics))
}

/// The pool the service runs on, and its metrics.
pub fn pool() -> (Pool<Job>, PrometheusHandle) {
    let retry = RetryPolicy::builder()
        .max_attempts(2)
        .base_delay(Duration::from_millis(100))
        .jitter(Jitter::Full)
        .build()
        .expect("a valid retry policy");
    let builder = Pool::builder()
        .workers(4)
        .queue_capacity(100)
        .task_timeout(TASK_TIMEOUT)
        .retry(retry)
        // Bounds every stop, not only the drain below: dropping the last
        // handle, say, on an early return.
        .shutdown_timeout(DRAIN_DEADLINE);
    build_pool(builder).expect("valid settings, inside the actix System")
}

async fn post_job(shared: web::Data<Shared>, job: web::Json<JobRequest>) -> HttpResponse {
    let job = job.into_inner();
    if let Some(why) = job.out_of_bounds() {
        return HttpResponse::UnprocessableEntity().json(json!({"error": why}));
    }
    match shared.pool.try_submit(Job(job)) {
        Ok(handle) => {
            let id = handle.id();
            shared.results.accepted(id);
            let shared = shared.into_inner();
            // The outcome is recorded whoever asks, and whenever.
            actix_rt::spawn(async move {
                if let Ok(outcome) = handle.await {
                    shared.results.finished(id, outcome);
                }
            });
            HttpResponse::Accepted().json(json!({"id": id.as_u64()}))
        }
        Err(refused) => {
            let error = match &refused {
                TrySubmitError::Full(_) => "the job queue is full; try again later",
                TrySubmitError::Stopped(_) => "the service is shutting down",
            };
            let Job(job) = refused.into_inner();
            HttpResponse::ServiceUnavailable().json(json!({"error": error, "job": job}))
        }
    }
}

async fn get_job(shared: web::Data<Shared>, id: web::Path<u64>) -> HttpResponse {
    let id = id.into_inner();
    let accepted = match shared.results.get(id) {
        Some(Some(finished)) => return HttpResponse::Ok().json(finished),
        Some(None) => true,
        None => false,
    };
    let state = match shared.pool.status(TaskId::from(id)).await {
        Ok(TaskStatus::Queued) => json!({"state": "queued"}),
        Ok(TaskStatus::Running { worker }) => json!({"state": "running", "worker": worker}),
        Ok(TaskStatus::WaitingRetry { attempts }) => {
            json!({"state": "waiting_retry", "attempts": attempts})
        }
        // Accepted, and not finished: on its way to the supervisor, or its
        // outcome on its way to `Results`.
        _ if accepted => json!({"state": "queued"}),
        _ => return HttpResponse::NotFound().json(json!({"error": format!("no job {id}")})),
    };
    HttpResponse::Ok().json(state)
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

fn latency_json(latency: &Latency) -> Value {
    json!({
        "count": latency.count,
        "p50_ms": millis(latency.p50),
        "p99_ms": millis(latency.p99),
        "max_ms": millis(latency.max),
    })
}

fn worker_json(slot: usize, worker: &WorkerStats) -> Value {
    let (state, task) = match worker.state {
        WorkerState::Starting => ("starting", None),
        WorkerState::Idle => ("idle", None),
        WorkerState::Busy { task } => ("busy", Some(task)),
        WorkerState::Restarting => ("restarting", None),
        WorkerState::Quitting { task } => ("quitting", task),
        WorkerState::Stopped => ("stopped", None),
        // A state a later version of the crate adds: its text still says it.
        _ => ("other", None),
    };
    json!({
        "slot": slot,
        "state": state,
        "task": task.map(TaskId::as_u64),
        "description": worker.state.to_string(),
        "tasks_run": worker.tasks_run,
        "restarts": worker.restarts,
        "stuck": worker.stuck,
    })
}

fn stats_json(stats: &Stats, failures: Vec<Failure>) -> Value {
    let workers: Vec<Value> = stats
        .workers
        .iter()
        .enumerate()
        .map(|(slot, worker)| worker_json(slot, worker))
        .collect();
    json!({
        "pool": POOL_NAME,
        "submitted": stats.submitted, "completed": stats.completed, "failed": stats.failed,
        "panicked": stats.panicked, "timed_out": stats.timed_out, "aborted": stats.aborted,
        "not_run": stats.not_run, "queued": stats.queued, "in_flight": stats.in_flight,
        "waiting_retry": stats.waiting_retry, "retries": stats.retries,
        "restarts": stats.restarts, "stuck": stats.stuck,
        "latency": {"waited": latency_json(&stats.waited), "ran": latency_json(&stats.ran)},
        "workers": workers,
        "failures": failures,
    })
}

async fn get_stats(shared: web::Data<Shared>) -> HttpResponse {
    match shared.pool.stats().await {
        Ok(stats) => HttpResponse::Ok().json(stats_json(&stats, shared.failures.latest())),
        Err(gone) => HttpResponse::ServiceUnavailable().json(json!({"error": gone.to_string()})),
    }
}

async fn get_history(shared: web::Data<Shared>) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "every_ms": SAMPLE_EVERY.as_millis() as u64,
        "samples": shared.history.samples(),
    }))
}

async fn get_metrics(shared: web::Data<Shared>) -> HttpResponse {
    // Histogram entries reach what `render` reads at upkeep.
    shared.metrics.run_upkeep();
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(shared.metrics.render())
}

async fn dashboard() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CONTENT_SECURITY_POLICY, DASHBOARD_CSP))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(DASHBOARD)
}

async fn no_route(request: HttpRequest) -> HttpResponse {
    let error = format!("no route for {} {}", request.method(), request.path());
    HttpResponse::NotFound().json(json!({ "error": error }))
}

/// A resource that takes the methods of `routes`, and answers any other with
/// a 405 that says which ones it takes (`allow`), as HTTP asks.
fn resource(path: &str, allow: &'static str, routes: Vec<Route>) -> Resource {
    let refuse = move |request: HttpRequest| async move {
        let error = format!(
            "{} is not allowed on {}; use {allow}",
            request.method(),
            request.path()
        );
        HttpResponse::MethodNotAllowed()
            .insert_header((header::ALLOW, allow))
            .json(json!({ "error": error }))
    };
    routes
        .into_iter()
        .fold(web::resource(path), Resource::route)
        .default_service(web::to(refuse))
}

/// A resource to read: GET, and HEAD (the same answer without its body, which
/// actix-web leaves out) for checks such as `curl -I`.
fn get<F, Args>(path: &str, handler: F) -> Resource
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    let routes = vec![web::get().to(handler.clone()), web::head().to(handler)];
    resource(path, "GET, HEAD", routes)
}

/// A resource that takes a POST only.
fn post<F, Args>(path: &str, handler: F) -> Resource
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    resource(path, "POST", vec![web::post().to(handler)])
}

fn json_error(err: error::JsonPayloadError, _: &HttpRequest) -> actix_web::Error {
    use error::JsonPayloadError::{ContentType, Overflow, OverflowKnownLength};
    let (status, error) = match &err {
        ContentType => (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "bad job: send it as JSON, with content-type: application/json".to_owned(),
        ),
        OverflowKnownLength { .. } | Overflow { .. } => (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("bad job: the body is larger than {JSON_LIMIT} bytes"),
        ),
        _ => (StatusCode::BAD_REQUEST, format!("bad job: {err}")),
    };
    let response = HttpResponse::build(status).json(json!({ "error": error }));
    error::InternalError::from_response(err, response).into()
}

fn path_error(err: error::PathError, _: &HttpRequest) -> actix_web::Error {
    let body = json!({"error": format!("bad job id: {err}")});
    error::InternalError::from_response(err, HttpResponse::BadRequest().json(body)).into()
}

/// The routes, with a JSON error for input that does not parse.
pub fn routes(cfg: &mut web::ServiceConfig) {
    let json = web::JsonConfig::default()
        .limit(JSON_LIMIT)
        .error_handler(json_error);
    cfg.app_data(json)
        .app_data(web::PathConfig::default().error_handler(path_error))
        .service(get("/", dashboard))
        .service(post("/jobs", post_job))
        .service(get("/jobs/{id}", get_job))
        .service(get("/stats", get_stats))
        .service(get("/stats/history", get_history))
        .service(get("/metrics", get_metrics))
        .default_service(web::to(no_route));
}

/// Samples the pool every [`SAMPLE_EVERY`] for the history, until the
/// server is gone (the routes hold the only strong references) or the pool.
async fn sample(shared: Weak<Shared>) {
    let mut every = actix_rt::time::interval(SAMPLE_EVERY);
    // After a stall, one sample, not a burst of them at the same moment.
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let Ok(stats) = shared.pool.stats().await else {
            return;
        };
        shared.history.push(Sample {
            at_ms: unix_millis(),
            queued: stats.queued,
            in_flight: stats.in_flight,
            waiting_retry: stats.waiting_retry,
        });
        // Histogram entries reach the exporter's buckets at upkeep; between
        // scrapes they would pile up.
        shared.metrics.run_upkeep();
    }
}

/// The HTTP server on `listener`, sharing `pool` (whose metrics `metrics`
/// renders). It subscribes to the pool's failures and samples its queue
/// from now on.
pub async fn server(
    listener: TcpListener,
    pool: Pool<Job>,
    metrics: PrometheusHandle,
) -> io::Result<Server> {
    let failures = Arc::new(Failures::default());
    let log = FailureLog(failures.clone()).start();
    pool.subscribe(log.recipient())
        .await
        .map_err(io::Error::other)?;
    let shared = Arc::new(Shared {
        pool,
        metrics,
        results: Results::default(),
        failures,
        history: History::default(),
    });
    actix_rt::spawn(sample(Arc::downgrade(&shared)));
    let shared = web::Data::from(shared);
    Ok(
        HttpServer::new(move || App::new().app_data(shared.clone()).configure(routes))
            .workers(2)
            .shutdown_timeout(SERVER_SHUTDOWN.as_secs())
            .listen(listener)?
            .run(),
    )
}

/// How long the server waits for open connections once it is told to stop.
pub const SERVER_SHUTDOWN: Duration = Duration::from_secs(10);

/// How long the pool may drain once the server has stopped: with
/// [`SERVER_SHUTDOWN`], the shutdown fits in 30 s with room to spare.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(15);

/// Serves until the server stops (Ctrl-C, or its handle), then drains the
/// pool for at most `deadline`: every accepted job finishes, or is cut off
/// and handed back once the deadline passes.
pub async fn serve_then_drain(
    server: Server,
    pool: Pool<Job>,
    deadline: Duration,
) -> io::Result<StopReport> {
    server.await?;
    info!("server stopped; draining the job pool for at most {deadline:?}");
    let report = pool
        .drain_within(deadline)
        .await
        .map_err(io::Error::other)?;
    info!(
        "job pool drained: {} finished, {} handed back, {} cut off",
        report.finished.len(),
        report.not_run.len(),
        report.aborted.len()
    );
    Ok(report)
}

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    /// Serve on this address.
    Serve(String),
    /// Print the usage.
    Help,
}

pub const USAGE: &str = "usage: web_jobs [--bind ADDR]

  --bind ADDR   the address to listen on (default: $WEB_JOBS_BIND, else 127.0.0.1:8080);
                port 0 takes any free port. The address is printed on stdout:
                listening on http://ADDR";

/// Reads the arguments (without the program's name) and the value of
/// [`BIND_ENV`]: `--bind` wins over the environment, which wins over
/// [`DEFAULT_BIND`].
pub fn parse_args(
    args: impl IntoIterator<Item = String>,
    env: Option<String>,
) -> Result<Command, String> {
    let mut bind = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--bind" => match args.next() {
                Some(addr) if !addr.is_empty() => bind = Some(addr),
                _ => return Err("--bind needs an address, such as 127.0.0.1:8080".to_owned()),
            },
            _ => match arg.strip_prefix("--bind=") {
                Some(addr) if !addr.is_empty() => bind = Some(addr.to_owned()),
                Some(_) => {
                    return Err("--bind needs an address, such as 127.0.0.1:8080".to_owned());
                }
                None => return Err(format!("unknown argument {arg:?}")),
            },
        }
    }
    let env = env.filter(|addr| !addr.is_empty());
    Ok(Command::Serve(
        bind.or(env).unwrap_or_else(|| DEFAULT_BIND.to_owned()),
    ))
}

#[actix_web::main]
async fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let addr = match parse_args(std::env::args().skip(1), std::env::var(BIND_ENV).ok()) {
        Ok(Command::Serve(addr)) => addr,
        Ok(Command::Help) => {
            println!("{USAGE}");
            return;
        }
        Err(error) => {
            eprintln!("web_jobs: {error}\n{USAGE}");
            std::process::exit(2);
        }
    };
    if let Err(error) = serve(&addr).await {
        eprintln!("web_jobs: {error}");
        std::process::exit(1);
    }
}

/// Listens on `addr`, says where, serves until Ctrl-C, then drains.
async fn serve(addr: &str) -> io::Result<()> {
    let listener = TcpListener::bind(addr)
        .map_err(|err| io::Error::new(err.kind(), format!("cannot listen on {addr}: {err}")))?;
    let bound = listener.local_addr()?;
    let (pool, metrics) = pool();
    let server = server(listener, pool.clone(), metrics).await?;
    // The one line that scripts wait for. Connections made from now on are
    // answered: the socket has listened since the bind, and the server takes
    // them as soon as it runs.
    println!("listening on http://{bound}");
    io::stdout().flush()?;
    serve_then_drain(server, pool, DRAIN_DEADLINE).await?;
    Ok(())
}
