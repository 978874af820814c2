//! ARCHITECTURE.md, The promise, rule 7: a pool whose dedicated arbiters'
//! threads the system refuses still runs every task, on the supervisor's
//! arbiter, and says so in an error log line; nothing panics.
//!
//! Its own process, without the test harness: every thread spawned here
//! without an explicit stack size asks for one far larger than any address
//! space (`RUST_MIN_STACK`, which std reads once, at the first spawn), so
//! the system refuses each arbiter's thread, as it would once out of threads
//! or memory.

use std::convert::Infallible;
use std::sync::Mutex;
use std::thread::ThreadId;

use actix_workerpool::{Outcome, Pool, Task, TaskContext};

/// Says which thread it ran on.
struct WhereAmI;

impl Task for WhereAmI {
    type Output = ThreadId;
    type Error = Infallible;
    type State = ();

    async fn run(&mut self, _cx: &mut TaskContext<()>) -> Result<ThreadId, Infallible> {
        Ok(std::thread::current().id())
    }
}

/// Keeps the error lines logged.
struct Errors(Mutex<Vec<String>>);

impl log::Log for Errors {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::Level::Error
    }

    fn log(&self, record: &log::Record) {
        if self.enabled(record.metadata()) {
            let mut lines = self.0.lock().unwrap_or_else(|e| e.into_inner());
            lines.push(record.args().to_string());
        }
    }

    fn flush(&self) {}
}

static ERRORS: Errors = Errors(Mutex::new(Vec::new()));

fn main() {
    // SAFETY: no other thread exists yet to read the environment.
    unsafe { std::env::set_var("RUST_MIN_STACK", (1u64 << 46).to_string()) };
    assert!(
        std::thread::Builder::new().spawn(|| {}).is_err(),
        "the system was expected to refuse a thread with such a stack"
    );
    log::set_logger(&ERRORS).expect("the only logger");
    log::set_max_level(log::LevelFilter::Error);

    actix_rt::System::new().block_on(async {
        let pool = Pool::<WhereAmI>::builder()
            .workers(4)
            .arbiters(2)
            .build()
            .expect("a refused thread is no reason to refuse the pool");
        let here = std::thread::current().id();
        let handles: Vec<_> = (0..8)
            .map(|_| pool.try_submit(WhereAmI).expect("room for 8 tasks"))
            .collect();
        for handle in handles {
            match handle.await {
                Ok(Outcome::Completed { output, .. }) => assert_eq!(output, here),
                other => panic!("every task completes, on this thread: {other:?}"),
            }
        }
        let stats = pool.stats().await.expect("the pool is still there");
        assert_eq!(stats.completed, 8, "{stats:?}");
        let report = pool.drain().await.expect("the pool is still there");
        assert!(
            report.not_run.is_empty() && report.aborted.is_empty(),
            "{report:?}"
        );
    });

    let errors = ERRORS.0.lock().unwrap_or_else(|e| e.into_inner());
    assert!(
        errors
            .iter()
            .any(|line| line.contains("arbiter") && line.contains("thread")),
        "an error line says the arbiters' threads were refused: {errors:?}"
    );
    println!("refused_threads: ok");
}
