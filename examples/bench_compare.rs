//! Compares the per-task dispatch cost of this pool with two hand-rolled
//! alternatives, all on one actix `System` (a current-thread runtime) in the
//! same process:
//!
//! * (a) `actix-workerpool` with 4 workers;
//! * (b) a plain tokio worker pool: one bounded `mpsc` channel of jobs, read by
//!   4 spawned tasks, each job answered through its own oneshot channel;
//! * (c) 4 plain actix actors, fed round-robin with `Addr::send`.
//!
//! Every task is a no-op, so what is measured is the machinery around it. One
//! submitter keeps at most [`WINDOW`] tasks in flight and awaits the oldest
//! before submitting more. After one untimed warm-up round, the three run
//! interleaved (rep 1: a, b, c; rep 2: a, b, c; ...), so that drift in the
//! machine's speed hits all of them alike; the median ns/task of each is
//! printed with its ratio to (b).
//!
//! ```sh
//! cargo run --release --example bench_compare               # 200,000 tasks, 5 reps
//! cargo run --release --example bench_compare -- --quick    # 20,000 tasks, 3 reps
//! cargo run --release --example bench_compare -- --tasks 1000000 --reps 7
//! ```
//!
//! Only release figures mean anything: a debug build mostly measures how much
//! unoptimised code each design runs.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::process;
use std::rc::Rc;
use std::time::{Duration, Instant};

use actix::{Actor, Addr, Context, Handler, Message};
use actix_workerpool::{Outcome, Pool, Task, TaskContext};
use futures::channel::oneshot;
use tokio::sync::{Mutex, mpsc};

/// Workers in each of the three pools.
const WORKERS: usize = 4;
/// Most tasks the submitter leaves outstanding at once.
const WINDOW: usize = 1024;

/// What every task returns, whichever pool runs it.
type TaskResult = Result<(), Infallible>;

/// The work of one task: nothing, so that only dispatch is measured.
fn noop_work() -> TaskResult {
    Ok(())
}

// ---------------------------------------------------------------------------
// Command line

/// How much work one run does.
#[derive(Debug, Clone, Copy)]
struct Settings {
    tasks: usize,
    reps: usize,
}

const USAGE: &str = "usage: bench_compare [--quick] [--tasks N] [--reps N]";

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Settings, String> {
    let mut quick = false;
    let mut tasks = None;
    let mut reps = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => quick = true,
            "--tasks" => tasks = Some(positive(args.next(), "--tasks")?),
            "--reps" => reps = Some(positive(args.next(), "--reps")?),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    // `--quick` only changes the defaults, so `--quick --reps 9` means what it says.
    let (default_tasks, default_reps) = if quick { (20_000, 3) } else { (200_000, 5) };
    Ok(Settings {
        tasks: tasks.unwrap_or(default_tasks),
        reps: reps.unwrap_or(default_reps),
    })
}

fn positive(value: Option<String>, flag: &str) -> Result<usize, String> {
    match value.as_deref().map(str::parse::<usize>) {
        Some(Ok(n)) if n > 0 => Ok(n),
        _ => Err(format!("{flag} needs a positive whole number")),
    }
}

// ---------------------------------------------------------------------------
// The submitter, shared by all three pools

/// Submits `tasks` tasks with at most [`WINDOW`] outstanding, waiting for the
/// oldest when the window is full, and returns the time taken.
///
/// `submit` starts task `i` and returns a future of its result; `completed`
/// says whether that result is a successful run. Panics unless every task
/// completed, so that a broken pool cannot report a fast time.
async fn drive<H: Future>(
    tasks: usize,
    mut submit: impl FnMut(usize) -> H,
    completed: impl Fn(H::Output) -> bool,
) -> Duration {
    let mut window = VecDeque::with_capacity(WINDOW);
    let mut done = 0usize;
    let start = Instant::now();
    for i in 0..tasks {
        if window.len() == WINDOW {
            let oldest = window.pop_front().expect("the window is full");
            done += usize::from(completed(oldest.await));
        }
        window.push_back(submit(i));
    }
    for handle in window {
        done += usize::from(completed(handle.await));
    }
    let elapsed = start.elapsed();
    assert_eq!(done, tasks, "some tasks did not complete");
    elapsed
}

// ---------------------------------------------------------------------------
// (a) actix-workerpool

/// A task that does nothing; a unit struct, so no closure or data is involved.
struct Noop;

impl Task for Noop {
    type Output = ();
    type Error = Infallible;
    type State = ();

    async fn run(&mut self, _cx: &mut TaskContext<()>) -> TaskResult {
        noop_work()
    }
}

fn start_workerpool() -> Pool<Noop> {
    Pool::builder()
        .workers(WORKERS)
        // A queue as long as the window: `try_submit` then never finds it full.
        .queue_capacity(WINDOW)
        .build()
        .expect("inside a running System, with valid settings")
}

async fn run_workerpool(pool: &Pool<Noop>, tasks: usize) -> Duration {
    drive(
        tasks,
        |_| {
            // A task holds a queue slot only until a worker takes it, and at
            // most WINDOW tasks are outstanding, so there is always room.
            pool.try_submit(Noop)
                .unwrap_or_else(|e| panic!("try_submit refused a task: {e}"))
        },
        |outcome| matches!(outcome, Ok(Outcome::Completed { .. })),
    )
    .await
}

// ---------------------------------------------------------------------------
// (b) a plain tokio channel pool

/// A job on the channel: the task is a no-op, so all it carries is where its
/// result goes.
type ChannelJob = oneshot::Sender<TaskResult>;

/// The submitting end of a pool of tasks reading one shared channel, like a
/// Go worker pool. Dropping it closes the channel, which ends the workers.
struct ChannelPool {
    jobs: mpsc::Sender<ChannelJob>,
}

fn start_channel_pool() -> ChannelPool {
    // As long as the window, so that `try_send` never finds it full.
    let (jobs, rx) = mpsc::channel(WINDOW);
    // A tokio `Mutex`, not a `RefCell`: the borrow is held across `recv().await`.
    let rx = Rc::new(Mutex::new(rx));
    for _ in 0..WORKERS {
        actix_rt::spawn(channel_worker(rx.clone()));
    }
    ChannelPool { jobs }
}

async fn channel_worker(jobs: Rc<Mutex<mpsc::Receiver<ChannelJob>>>) {
    // The lock is held while waiting on the channel: one worker waits for the
    // next job while the others wait for the lock, and it is let go before
    // the job runs, so the others can take jobs meanwhile.
    while let Some(reply) = jobs.lock().await.recv().await {
        // Nobody waiting for the result is not the worker's problem.
        let _ = reply.send(noop_work());
    }
}

async fn run_channel_pool(pool: &ChannelPool, tasks: usize) -> Duration {
    drive(
        tasks,
        |_| {
            let (reply, result) = oneshot::channel();
            pool.jobs
                .try_send(reply)
                .unwrap_or_else(|e| panic!("the job channel refused a job: {e}"));
            result
        },
        |result| matches!(result, Ok(Ok(()))),
    )
    .await
}

// ---------------------------------------------------------------------------
// (c) hand-rolled actix round-robin

struct NoopActor;

impl Actor for NoopActor {
    type Context = Context<Self>;
}

struct NoopMsg;

impl Message for NoopMsg {
    type Result = TaskResult;
}

impl Handler<NoopMsg> for NoopActor {
    type Result = TaskResult;

    fn handle(&mut self, _msg: NoopMsg, _ctx: &mut Self::Context) -> TaskResult {
        noop_work()
    }
}

fn start_actors() -> Vec<Addr<NoopActor>> {
    (0..WORKERS)
        .map(|_| {
            NoopActor::create(|ctx| {
                // The default mailbox holds 16 messages; past that, `send`
                // parks the message inside the request future, and it is only
                // delivered once the submitter awaits that request, which
                // would throttle this design to far less than the window.
                ctx.set_mailbox_capacity(WINDOW);
                NoopActor
            })
        })
        .collect()
}

async fn run_actors(addrs: &[Addr<NoopActor>], tasks: usize) -> Duration {
    drive(
        tasks,
        |i| addrs[i % addrs.len()].send(NoopMsg),
        |result| matches!(result, Ok(Ok(()))),
    )
    .await
}

// ---------------------------------------------------------------------------
// Running and reporting

const NAMES: [&str; 3] = [
    "(a) actix-workerpool",
    "(b) tokio channel pool",
    "(c) actix round-robin send",
];

/// Runs the three pools interleaved, `reps` times each, and returns the
/// ns/task of every repetition, one vector per pool in [`NAMES`] order.
async fn measure(settings: Settings) -> [Vec<f64>; 3] {
    let workerpool = start_workerpool();
    let channel_pool = start_channel_pool();
    let actors = start_actors();

    let per_task = |elapsed: Duration| elapsed.as_nanos() as f64 / settings.tasks as f64;
    // One untimed round first, so that one-off costs (the allocator growing,
    // queues and mailboxes reaching their working size) land in no sample.
    run_workerpool(&workerpool, settings.tasks).await;
    run_channel_pool(&channel_pool, settings.tasks).await;
    run_actors(&actors, settings.tasks).await;

    let mut samples: [Vec<f64>; 3] = Default::default();
    for _ in 0..settings.reps {
        let a = run_workerpool(&workerpool, settings.tasks).await;
        samples[0].push(per_task(a));
        let b = run_channel_pool(&channel_pool, settings.tasks).await;
        samples[1].push(per_task(b));
        let c = run_actors(&actors, settings.tasks).await;
        samples[2].push(per_task(c));
    }

    workerpool
        .drain()
        .await
        .expect("the pool's System is still running");
    samples
}

/// The median of `values`, which must not be empty.
fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    }
}

fn report(settings: Settings, samples: &[Vec<f64>; 3]) {
    let build = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    println!(
        "workers: {WORKERS}   tasks per run: {}   repetitions: {}   in flight: <= {WINDOW}   build: {build}",
        settings.tasks, settings.reps
    );
    if cfg!(debug_assertions) {
        println!(
            "warning: ratios from a debug build are not meaningful; run `cargo run --release --example bench_compare`"
        );
    }
    println!();

    let medians = samples.each_ref().map(|s| median(s));
    let baseline = medians[1];
    let median_heading = format!("ns/task (median of {})", settings.reps);
    println!(
        "{:<28}  {median_heading:>22}  {:>12}  {:>18}",
        "pool", "ratio to (b)", "min..max ns/task"
    );
    for ((name, runs), median) in NAMES.iter().zip(samples).zip(medians) {
        let min = runs.iter().copied().fold(f64::INFINITY, f64::min);
        let max = runs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        println!(
            "{name:<28}  {median:>22.1}  {:>12.2}  {:>18}",
            median / baseline,
            format!("{min:.1}..{max:.1}")
        );
    }
}

fn main() {
    let settings = parse_args(std::env::args().skip(1)).unwrap_or_else(|error| {
        eprintln!("{error}\n{USAGE}");
        process::exit(2);
    });
    let samples = actix_rt::System::new().block_on(measure(settings));
    report(settings, &samples);
}
