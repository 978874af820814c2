//! A job: what a client posts and its bounds, the task that runs it, where
//! its result is kept, and the `/jobs` routes that submit it and say where it
//! is.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use actix_web::{HttpResponse, web};
use actix_workerpool::{
    Cancellation, Outcome, Task, TaskContext, TaskId, TaskStatus, TrySubmitError,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::Shared;

/// The longest job a client may ask for: one minute.
pub const MAX_MILLIS: u64 = 60_000;

/// The longest job name, in characters.
pub const MAX_NAME_CHARS: usize = 200;

/// The largest `POST /jobs` body, in bytes: a job is a few dozen.
pub const JSON_LIMIT: usize = 16 * 1024;

/// How long one attempt may run: longer than any job a client may ask for,
/// so that only an attempt that hangs times out.
pub const TASK_TIMEOUT: Duration = Duration::from_secs(90);

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
            Outcome::Cancelled { attempts, .. } => {
                json!({"state": "cancelled", "attempts": attempts})
            }
            // This service's pool waits for room (it never evicts).
            Outcome::Evicted => json!({"state": "evicted", "attempts": 0}),
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

pub(super) async fn post_job(
    shared: web::Data<Shared>,
    job: web::Json<JobRequest>,
) -> HttpResponse {
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

/// Cancels a job: taken out of the queue, or cut off if it runs.
pub(super) async fn delete_job(shared: web::Data<Shared>, id: web::Path<u64>) -> HttpResponse {
    let id = id.into_inner();
    let ended = |state: Value| {
        let error = format!("job {id} has ended");
        HttpResponse::Conflict().json(json!({"error": error, "state": state}))
    };
    match shared.results.get(id) {
        None => return HttpResponse::NotFound().json(json!({"error": format!("no job {id}")})),
        // Ended: no need to ask the pool.
        Some(Some(result)) => return ended(result),
        Some(None) => {}
    }
    let was = match shared.pool.cancel(TaskId::from(id)).await {
        Ok(Cancellation::Queued) => "queued",
        Ok(Cancellation::WaitingRetry { .. }) => "waiting_retry",
        Ok(Cancellation::Running { .. }) => "running",
        // Ended as the cancel came: its result is on its way to `Results`.
        Ok(_) => return ended(shared.results.get(id).flatten().unwrap_or(json!(null))),
        Err(_) => {
            let error = "the service is shutting down";
            return HttpResponse::ServiceUnavailable().json(json!({"error": error}));
        }
    };
    HttpResponse::Ok().json(json!({"cancelled": was}))
}

pub(super) async fn get_job(shared: web::Data<Shared>, id: web::Path<u64>) -> HttpResponse {
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
