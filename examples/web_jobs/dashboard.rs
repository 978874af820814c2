//! The routes that show the pool: the dashboard page at `/`, the JSON it
//! reads (`/stats`, `/stats/history`), and `/metrics` for Prometheus.

use std::time::Duration;

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use actix_workerpool::{Latency, Stats, TaskId, WorkerState, WorkerStats};
use serde_json::{Value, json};

use super::Shared;
use super::watch::{Failure, POOL_NAME, SAMPLE_EVERY};

/// The dashboard, in the binary: the service is one file to deploy.
const DASHBOARD: &str = include_str!("dashboard.html");

/// The dashboard may run its own inline script and style and talk to this
/// service, and nothing else: it works offline, and even a bug that put a
/// job's name into the page as markup (the page sets text, never markup)
/// could not make it load anything from elsewhere.
const DASHBOARD_CSP: &str = "default-src 'none'; script-src 'unsafe-inline'; \
    style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'";

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
        WorkerState::Retired => ("retired", None),
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
        "cancelled": stats.cancelled, "evicted": stats.evicted, "not_run": stats.not_run,
        "queued": stats.queued, "in_flight": stats.in_flight,
        "waiting_retry": stats.waiting_retry, "retries": stats.retries,
        "dead_letters": stats.dead_letters, "quarantined": stats.quarantined,
        "restarts": stats.restarts, "stuck": stats.stuck, "size": stats.size,
        "latency": {"waited": latency_json(&stats.waited), "ran": latency_json(&stats.ran)},
        "workers": workers,
        "failures": failures,
    })
}

pub(super) async fn get_stats(shared: web::Data<Shared>) -> HttpResponse {
    match shared.pool.stats().await {
        Ok(stats) => HttpResponse::Ok().json(stats_json(&stats, shared.failures.latest())),
        Err(gone) => HttpResponse::ServiceUnavailable().json(json!({"error": gone.to_string()})),
    }
}

pub(super) async fn get_history(shared: web::Data<Shared>) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "every_ms": SAMPLE_EVERY.as_millis() as u64,
        "samples": shared.history.samples(),
    }))
}

pub(super) async fn get_metrics(shared: web::Data<Shared>) -> HttpResponse {
    // Histogram entries reach what `render` reads at upkeep.
    shared.metrics.run_upkeep();
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(shared.metrics.render())
}

pub(super) async fn page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CONTENT_SECURITY_POLICY, DASHBOARD_CSP))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(DASHBOARD)
}
