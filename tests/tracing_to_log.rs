//! With the `tracing` feature and no `tracing` subscriber, what the pool
//! tells still reaches `log`, and nothing more: no line per attempt for a
//! span nobody sees. A test binary of its own: once any test sets a
//! `tracing` subscriber, even for one thread, `tracing` stops handing
//! events to `log` for the whole process.
#![cfg(feature = "tracing")]

use std::sync::Mutex;

use actix_workerpool::{FnTask, Outcome, Pool};

/// Every record `log` was given: level, target and text.
static RECORDS: Mutex<Vec<(log::Level, String, String)>> = Mutex::new(Vec::new());

struct Keep;

impl log::Log for Keep {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let text = record.args().to_string();
        RECORDS
            .lock()
            .unwrap()
            .push((record.level(), record.target().to_owned(), text));
    }

    fn flush(&self) {}
}

#[actix_rt::test]
async fn failures_and_panics_reach_log_and_attempts_add_no_lines() {
    log::set_logger(&Keep).unwrap();
    log::set_max_level(log::LevelFilter::Trace);
    let pool = Pool::builder().name("logged").workers(1).build().unwrap();
    // 0 fails, 1 panics, 2 completes.
    let task = |n: u32| {
        FnTask::new(n, |n| async move {
            match n {
                0 => Err("it failed"),
                1 => panic!("it panicked"),
                _ => Ok(()),
            }
        })
    };
    let outcome = pool.try_submit(task(0)).unwrap().await.unwrap();
    assert!(matches!(outcome, Outcome::Failed { .. }));
    let outcome = pool.try_submit(task(1)).unwrap().await.unwrap();
    assert!(matches!(outcome, Outcome::Panicked { .. }));
    pool.try_submit(task(2)).unwrap().await.unwrap();
    pool.stop().await.unwrap();

    let records = RECORDS.lock().unwrap().clone();
    let warned = |text: &str| {
        records
            .iter()
            .any(|(level, _, line)| *level == log::Level::Warn && line.contains(text))
    };
    assert!(warned("failed on worker 0"), "{records:#?}");
    assert!(warned("panicked on worker 0"), "{records:#?}");
    assert!(warned("restarts in"), "{records:#?}");
    // At INFO and above, nothing but the pool's start and stop lines.
    let others: Vec<_> = records
        .iter()
        .filter(|(level, target, line)| {
            *level <= log::Level::Info
                && *level != log::Level::Warn
                && target.starts_with("actix_workerpool")
                && !line.contains("worker pool")
        })
        .collect();
    assert!(others.is_empty(), "{others:#?}");
}
