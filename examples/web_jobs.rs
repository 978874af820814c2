//! A job service on actix-web, with the pool shared as `web::Data`.
//!
//! ```sh
//! cargo run --example web_jobs                      # listens on 127.0.0.1:8080
//! curl -s -XPOST localhost:8080/jobs -H 'content-type: application/json' \
//!      -d '{"name": "report.pdf", "millis": 500}'    # 202 {"id":0}
//! curl -s localhost:8080/jobs/0                     # queued / running / completed / failed
//! curl -s localhost:8080/stats                      # the pool's counters
//! ```
//!
//! | route | answers |
//! |---|---|
//! | `POST /jobs` `{"name", "millis", "fail"}` | 202 `{"id"}`; 503 `{"error", "job"}` when the queue is full or the pool is stopping (the job comes back) |
//! | `GET /jobs/{id}` | 200 `{"state": "queued" \| "running" \| "waiting_retry" \| "completed" \| "failed" \| ...}`; 404 for an unknown id |
//! | `GET /stats` | 200, the pool's counters |
//!
//! Malformed input gets a 400 with a JSON error. Ctrl-C stops the server, and
//! the pool drains before the process exits: every accepted job finishes, or,
//! should some run longer than [`DRAIN_DEADLINE`], is cut off and handed back
//! (`"aborted"`), so that the whole shutdown fits a service manager's stop
//! timeout of 30 s (systemd's `TimeoutStopSec`, Kubernetes'
//! `terminationGracePeriodSeconds`): at most [`SERVER_SHUTDOWN`] for open
//! connections, then at most [`DRAIN_DEADLINE`] for the jobs.
//!
//! What the crate keeps (where a job is: [`Pool::status`]) and what the app
//! keeps (the result of a finished job, in [`Results`]) are split on purpose:
//! the pool holds no history, so an app decides how long results live.

use std::collections::HashMap;
use std::io;
use std::net::TcpListener;
use std::sync::Mutex;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{App, HttpResponse, HttpServer, error, web};
use actix_workerpool::{
    Jitter, Outcome, Pool, RetryPolicy, StopReport, Task, TaskContext, TaskId, TaskStatus,
    TrySubmitError,
};
use log::info;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// A job as a client posts it.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct JobRequest {
    pub name: String,
    /// How long the work takes.
    #[serde(default)]
    pub millis: u64,
    /// Whether the work fails (every attempt).
    #[serde(default)]
    pub fail: bool,
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
    jobs: Mutex<HashMap<u64, Option<serde_json::Value>>>,
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
    fn get(&self, id: u64) -> Option<Option<serde_json::Value>> {
        self.jobs.lock().unwrap().get(&id).cloned()
    }
}

async fn post_job(
    pool: web::Data<Pool<Job>>,
    results: web::Data<Results>,
    job: web::Json<JobRequest>,
) -> HttpResponse {
    match pool.try_submit(Job(job.into_inner())) {
        Ok(handle) => {
            let id = handle.id();
            results.accepted(id);
            let results = results.into_inner();
            // The outcome is recorded whoever asks, and whenever.
            actix_rt::spawn(async move {
                if let Ok(outcome) = handle.await {
                    results.finished(id, outcome);
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

async fn get_job(
    pool: web::Data<Pool<Job>>,
    results: web::Data<Results>,
    id: web::Path<u64>,
) -> HttpResponse {
    let id = id.into_inner();
    let accepted = match results.get(id) {
        Some(Some(finished)) => return HttpResponse::Ok().json(finished),
        Some(None) => true,
        None => false,
    };
    let state = match pool.status(TaskId::from(id)).await {
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

async fn get_stats(pool: web::Data<Pool<Job>>) -> HttpResponse {
    match pool.stats().await {
        Ok(s) => HttpResponse::Ok().json(json!({
            "submitted": s.submitted, "completed": s.completed, "failed": s.failed,
            "panicked": s.panicked, "timed_out": s.timed_out, "not_run": s.not_run,
            "queued": s.queued, "in_flight": s.in_flight, "waiting_retry": s.waiting_retry,
            "retries": s.retries, "restarts": s.restarts,
        })),
        Err(gone) => HttpResponse::ServiceUnavailable().json(json!({"error": gone.to_string()})),
    }
}

/// The routes, with JSON errors for input that does not parse.
pub fn routes(cfg: &mut web::ServiceConfig) {
    let json_error = |err: error::JsonPayloadError, _: &_| {
        let body = json!({"error": format!("bad job: {err}")});
        error::InternalError::from_response(err, HttpResponse::BadRequest().json(body)).into()
    };
    let path_error = |err: error::PathError, _: &_| {
        let body = json!({"error": format!("bad job id: {err}")});
        error::InternalError::from_response(err, HttpResponse::BadRequest().json(body)).into()
    };
    cfg.app_data(web::JsonConfig::default().error_handler(json_error))
        .app_data(web::PathConfig::default().error_handler(path_error))
        .route("/jobs", web::post().to(post_job))
        .route("/jobs/{id}", web::get().to(get_job))
        .route("/stats", web::get().to(get_stats));
}

/// The HTTP server on `listener`, sharing `pool`.
pub fn server(listener: TcpListener, pool: Pool<Job>) -> io::Result<Server> {
    let pool = web::Data::new(pool);
    let results = web::Data::new(Results::default());
    Ok(HttpServer::new(move || {
        App::new()
            .app_data(pool.clone())
            .app_data(results.clone())
            .configure(routes)
    })
    .workers(2)
    .shutdown_timeout(SERVER_SHUTDOWN.as_secs())
    .listen(listener)?
    .run())
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

/// The pool the service runs on.
pub fn pool() -> Pool<Job> {
    let retry = RetryPolicy::builder()
        .max_attempts(2)
        .base_delay(Duration::from_millis(100))
        .jitter(Jitter::Full)
        .build()
        .expect("a valid retry policy");
    Pool::builder()
        .workers(4)
        .queue_capacity(100)
        .task_timeout(Duration::from_secs(60))
        .retry(retry)
        .build()
        .expect("valid settings, inside the actix System")
}

#[actix_web::main]
async fn main() -> io::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let listener = TcpListener::bind("127.0.0.1:8080")?;
    info!("listening on http://{}", listener.local_addr()?);
    let pool = pool();
    serve_then_drain(server(listener, pool.clone())?, pool, DRAIN_DEADLINE).await?;
    Ok(())
}
