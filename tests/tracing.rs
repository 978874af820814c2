//! Spans and events (feature `tracing`), read by a subscriber that keeps
//! what it is told: each attempt runs in a span that the task's own events
//! nest under, and failures, panics, timeouts and restarts are events with
//! the task, the worker and the pool's name.
//!
//! The subscriber is the test thread's default; the workers run on the
//! supervisor's arbiter, which is that thread.
#![cfg(feature = "tracing")]

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_workerpool::{FnTask, Outcome, Pool, Task, TaskContext};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

type Fields = BTreeMap<String, String>;

/// One event as the subscriber saw it.
#[derive(Debug, Clone)]
struct Seen {
    level: tracing::Level,
    fields: Fields,
    /// The name and fields of the span it happened in, if any.
    span: Option<(String, Fields)>,
}

impl Seen {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }

    fn message(&self) -> &str {
        self.field("message").unwrap_or("")
    }
}

#[derive(Default)]
struct FieldsOf(Fields);

impl Visit for FieldsOf {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

#[derive(Clone, Default)]
struct Keep(Arc<Mutex<Vec<Seen>>>);

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Keep {
    fn on_new_span(&self, attributes: &Attributes<'_>, id: &Id, cx: Context<'_, S>) {
        let mut fields = FieldsOf::default();
        attributes.record(&mut fields);
        if let Some(span) = cx.span(id) {
            span.extensions_mut().insert(fields.0);
        }
    }

    fn on_event(&self, event: &Event<'_>, cx: Context<'_, S>) {
        let mut fields = FieldsOf::default();
        event.record(&mut fields);
        let span = cx.event_span(event).map(|span| {
            let fields = span
                .extensions()
                .get::<Fields>()
                .cloned()
                .unwrap_or_default();
            (span.name().to_owned(), fields)
        });
        self.0.lock().unwrap().push(Seen {
            level: *event.metadata().level(),
            fields: fields.0,
            span,
        });
    }
}

impl Keep {
    fn seen(&self) -> Vec<Seen> {
        self.0.lock().unwrap().clone()
    }

    /// The events whose message contains `text`.
    fn saying(&self, text: &str) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|seen| seen.message().contains(text))
            .collect()
    }
}

/// Keeps every event of the current thread until the guard drops.
fn keep_events() -> (Keep, tracing::subscriber::DefaultGuard) {
    let keep = Keep::default();
    let subscriber = tracing_subscriber::registry().with(keep.clone());
    (keep, tracing::subscriber::set_default(subscriber))
}

/// A task that says something through `tracing` in `run`, then ends as told.
struct Talks(&'static str);

impl Task for Talks {
    type Output = ();
    type Error = String;
    type State = ();

    async fn run(&mut self, _: &mut TaskContext<()>) -> Result<(), String> {
        tracing::info!(said = self.0, "the task speaks");
        actix_rt::task::yield_now().await;
        tracing::info!(said = self.0, "the task speaks again");
        match self.0 {
            "fail" => Err("it failed".into()),
            "panic" => panic!("it panicked"),
            "hang" => {
                actix_rt::time::sleep(Duration::from_secs(60)).await;
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

fn pool(name: &str) -> Pool<Talks> {
    Pool::builder()
        .name(name)
        .workers(1)
        .task_timeout(Duration::from_secs(5))
        .restart_backoff(Duration::ZERO, Duration::ZERO)
        .build()
        .unwrap()
}

/// Both of the task's own events (in `run` before its first await, and
/// after it) were in the span of its first attempt, on worker 0.
fn spoke_in_its_attempts_span(keep: &Keep, pool: &str, id: actix_workerpool::TaskId) {
    let spoken = keep.saying("the task speaks");
    assert_eq!(spoken.len(), 2, "{spoken:#?}");
    for seen in spoken {
        let (name, fields) = seen.span.expect("the event is in a span");
        assert_eq!(name, "task");
        assert_eq!(fields["pool"], pool);
        assert_eq!(fields["task"], id.as_u64().to_string());
        assert_eq!(fields["attempt"], "1");
        assert_eq!(fields["worker"], "0");
    }
}

#[actix_rt::test]
async fn a_tasks_own_events_nest_under_its_attempts_span() {
    let (keep, _guard) = keep_events();
    let pool = pool("spans");
    let handle = pool.try_submit(Talks("complete")).unwrap();
    let id = handle.id();
    assert!(matches!(handle.await.unwrap(), Outcome::Completed { .. }));
    spoke_in_its_attempts_span(&keep, "spans", id);
}

#[actix_rt::test]
async fn a_failure_is_an_event_with_the_task_the_worker_and_the_pool() {
    let (keep, _guard) = keep_events();
    let pool = pool("failures");
    let handle = pool.try_submit(Talks("fail")).unwrap();
    let id = handle.id();
    assert!(matches!(handle.await.unwrap(), Outcome::Failed { .. }));
    spoke_in_its_attempts_span(&keep, "failures", id);
    let failed = keep.saying("failed on worker 0");
    assert_eq!(failed.len(), 1, "{:#?}", keep.seen());
    let failed = &failed[0];
    assert_eq!(failed.level, tracing::Level::WARN);
    assert_eq!(failed.field("pool"), Some("failures"));
    assert_eq!(failed.field("task"), Some(id.as_u64().to_string().as_str()));
    assert_eq!(failed.field("worker"), Some("0"));
    assert_eq!(failed.field("attempts"), Some("1"));
    assert!(failed.message().contains("it failed"));
}

#[actix_rt::test]
async fn a_panic_and_the_restart_it_causes_are_events() {
    let (keep, _guard) = keep_events();
    let pool = pool("panics");
    let handle = pool.try_submit(Talks("panic")).unwrap();
    let id = handle.id();
    assert!(matches!(handle.await.unwrap(), Outcome::Panicked { .. }));
    pool.stats().await.unwrap();
    spoke_in_its_attempts_span(&keep, "panics", id);
    let panicked = keep.saying("panicked on worker 0");
    assert_eq!(panicked.len(), 1, "{:#?}", keep.seen());
    assert_eq!(
        panicked[0].field("task"),
        Some(id.as_u64().to_string().as_str())
    );
    assert_eq!(panicked[0].field("pool"), Some("panics"));
    let restarts = keep.saying("restarts in");
    assert_eq!(restarts.len(), 1, "{:#?}", keep.seen());
    assert_eq!(restarts[0].level, tracing::Level::WARN);
    assert_eq!(restarts[0].field("worker"), Some("0"));
    assert_eq!(restarts[0].field("restarts"), Some("1"));
    assert_eq!(restarts[0].field("pool"), Some("panics"));
}

#[actix_rt::test]
async fn a_timeout_is_an_event() {
    tokio::time::pause();
    let (keep, _guard) = keep_events();
    let pool = pool("timeouts");
    let handle = pool.try_submit(Talks("hang")).unwrap();
    let id = handle.id();
    assert!(matches!(handle.await.unwrap(), Outcome::TimedOut { .. }));
    spoke_in_its_attempts_span(&keep, "timeouts", id);
    let timed_out = keep.saying("timed out on worker 0");
    assert_eq!(timed_out.len(), 1, "{:#?}", keep.seen());
    assert_eq!(timed_out[0].level, tracing::Level::WARN);
    assert_eq!(
        timed_out[0].field("task"),
        Some(id.as_u64().to_string().as_str())
    );
    assert_eq!(timed_out[0].field("pool"), Some("timeouts"));
}

#[actix_rt::test]
async fn a_pool_without_a_name_has_no_pool_field() {
    let (keep, _guard) = keep_events();
    let pool = Pool::builder().workers(1).build().unwrap();
    let task = FnTask::new((), |()| async {
        tracing::info!("inside");
        Ok::<(), ()>(())
    });
    pool.try_submit(task).unwrap().await.unwrap();
    let inside = keep.saying("inside");
    let (_, fields) = inside[0].span.clone().expect("in a span");
    assert!(!fields.contains_key("pool"), "{fields:?}");
    assert_eq!(fields["attempt"], "1");
}

/// Fails its first attempt; speaks in each.
struct FailsOnce;

impl Task for FailsOnce {
    type Output = ();
    type Error = ();
    type State = ();

    async fn run(&mut self, cx: &mut TaskContext<()>) -> Result<(), ()> {
        tracing::info!("attempt under way");
        if cx.attempt() == 1 { Err(()) } else { Ok(()) }
    }
}

#[actix_rt::test]
async fn a_retry_runs_in_a_span_of_its_own_attempt() {
    let (keep, _guard) = keep_events();
    let retry = actix_workerpool::RetryPolicy::builder()
        .max_attempts(2)
        .base_delay(Duration::from_millis(1))
        .jitter(actix_workerpool::Jitter::None)
        .build()
        .unwrap();
    let pool = Pool::builder()
        .name("retries")
        .workers(1)
        .retry(retry)
        .build()
        .unwrap();
    let outcome = pool.try_submit(FailsOnce).unwrap().await.unwrap();
    assert!(matches!(outcome, Outcome::Completed { attempts: 2, .. }));
    let attempts: Vec<String> = keep
        .saying("attempt under way")
        .into_iter()
        .map(|seen| seen.span.expect("in a span").1["attempt"].clone())
        .collect();
    assert_eq!(attempts, ["1", "2"]);
    let retrying = keep.saying("it will be retried");
    assert_eq!(retrying.len(), 1, "{:#?}", keep.seen());
    assert_eq!(retrying[0].field("attempt"), Some("1"));
}
