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
//! | `GET /jobs/{id}` | 200 `{"state": "queued" \| "running" \| "waiting_retry" \| "completed" \| "failed" \| "cancelled" \| ...}`; 404 for an unknown id |
//! | `DELETE /jobs/{id}` | 200 `{"cancelled": "queued" \| "waiting_retry" \| "running"}`: the job is cancelled (a running one cut off); 409 with its `state` if it had ended; 404 for an unknown id |
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
//!
//! The code, one idea to a file: this one wires the service together (the
//! command line to the socket, the pool, the routes, the shutdown);
//! `args.rs` reads the command line; `job.rs` holds what a job is, its
//! bounds, its task and its result, and the `/jobs` routes; `watch.rs` keeps
//! what the service learns of its pool (metrics, failures, the queue's
//! history); `dashboard.rs` shows it (`/`, `/stats`, `/stats/history`,
//! `/metrics`); and `errors.rs` turns every error into JSON.

mod args;
mod dashboard;
mod errors;
mod job;
mod watch;

use std::io::{self, Write as _};
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{
    App, FromRequest, Handler, HttpRequest, HttpServer, Resource, Responder, Route, web,
};
use actix_workerpool::{Jitter, Pool, RetryPolicy, StopReport};
use log::info;
use metrics_exporter_prometheus::PrometheusHandle;

pub use args::{BIND_ENV, Command, USAGE, parse_args};
pub use job::{JSON_LIMIT, Job, Results, TASK_TIMEOUT};
pub use watch::{Failures, History, build_pool};

// The rest of what the service makes public, for the links in the doc above
// and for the tests, which include this file by path and name it
// `web_jobs::X`: each test uses only some of it.
#[allow(unused_imports)]
pub use args::DEFAULT_BIND;
#[allow(unused_imports)]
pub use job::{JobRequest, MAX_MILLIS, MAX_NAME_CHARS};
#[allow(unused_imports)]
pub use watch::{FAILURES_KEPT, Failure, HISTORY_SAMPLES, POOL_NAME, SAMPLE_EVERY, Sample};

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

/// What every route shares.
pub struct Shared {
    pool: Pool<Job>,
    metrics: PrometheusHandle,
    results: Results,
    failures: Arc<Failures>,
    history: History,
}

/// The HTTP server on `listener`, sharing `pool` (whose metrics `metrics`
/// renders). It subscribes to the pool's failures and samples its queue
/// from now on.
pub async fn server(
    listener: TcpListener,
    pool: Pool<Job>,
    metrics: PrometheusHandle,
) -> io::Result<Server> {
    let failures = watch::log_failures(&pool).await?;
    let shared = Arc::new(Shared {
        pool,
        metrics,
        results: Results::default(),
        failures,
        history: History::default(),
    });
    // The first sample before the server answers: the history is never empty.
    watch::take_sample(&shared).await;
    actix_rt::spawn(watch::sample(Arc::downgrade(&shared)));
    let shared = web::Data::from(shared);
    Ok(
        HttpServer::new(move || App::new().app_data(shared.clone()).configure(routes))
            .workers(2)
            .shutdown_timeout(SERVER_SHUTDOWN.as_secs())
            .listen(listener)?
            .run(),
    )
}

/// The routes, with a JSON error for input that does not parse.
pub fn routes(cfg: &mut web::ServiceConfig) {
    let json = web::JsonConfig::default()
        .limit(JSON_LIMIT)
        .error_handler(errors::json_error);
    cfg.app_data(json)
        .app_data(web::PathConfig::default().error_handler(errors::path_error))
        .service(get("/", dashboard::page))
        .service(post("/jobs", job::post_job))
        .service(resource(
            "/jobs/{id}",
            "GET, HEAD, DELETE",
            vec![
                web::get().to(job::get_job),
                web::head().to(job::get_job),
                web::delete().to(job::delete_job),
            ],
        ))
        .service(get("/stats", dashboard::get_stats))
        .service(get("/stats/history", dashboard::get_history))
        .service(get("/metrics", dashboard::get_metrics))
        .default_service(web::to(errors::no_route));
}

/// A resource that takes the methods of `routes`, and answers any other with
/// a 405 that says which ones it takes (`allow`), as HTTP asks.
fn resource(path: &str, allow: &'static str, routes: Vec<Route>) -> Resource {
    let refuse = move |request: HttpRequest| errors::method_not_allowed(request, allow);
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
