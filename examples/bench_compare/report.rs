//! From samples to figures, and from figures to the printed table.

use std::fmt;
use std::time::Duration;

use crate::args::Settings;
use crate::drive::WINDOW;

// ---------------------------------------------------------------------------
// Figures

/// One figure over several repetitions: the median, and the spread around it.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Summary {
    /// Sums up `samples`, one per repetition.
    ///
    /// # Panics
    ///
    /// If there are no samples.
    pub fn of(samples: &[f64]) -> Self {
        assert!(!samples.is_empty(), "a figure needs at least one sample");
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        Summary {
            median: median_of_sorted(&sorted),
            min: sorted[0],
            max: sorted[sorted.len() - 1],
        }
    }

    /// A figure known without measuring, such as an ideal time.
    pub fn exact(value: f64) -> Self {
        Summary {
            median: value,
            min: value,
            max: value,
        }
    }
}

fn median_of_sorted(sorted: &[f64]) -> f64 {
    let mid = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    }
}

/// The `pct`th percentile of `sorted` by nearest rank: the smallest sample
/// that at least `pct` percent of the samples do not exceed. Nearest rank
/// rather than interpolation, so that every percentile is a time some round
/// trip really took.
///
/// # Panics
///
/// If `sorted` is empty.
pub fn percentile(sorted: &[u64], pct: f64) -> u64 {
    assert!(!sorted.is_empty(), "a percentile needs at least one sample");
    let rank = (pct / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// What a figure counts.
#[derive(Debug, Clone, Copy)]
pub enum Unit {
    NsPerTask,
    Ns,
    BytesPerTask,
    Seconds,
    TasksPerSecond,
}

impl Unit {
    fn label(self) -> &'static str {
        match self {
            Unit::NsPerTask => "ns/task",
            Unit::Ns => "ns",
            Unit::BytesPerTask => "B/task",
            Unit::Seconds => "s",
            Unit::TasksPerSecond => "tasks/s",
        }
    }

    fn format(self, value: f64) -> String {
        match self {
            Unit::NsPerTask | Unit::BytesPerTask => format!("{value:.1}"),
            Unit::Ns | Unit::TasksPerSecond => format!("{value:.0}"),
            Unit::Seconds => format!("{value:.3}"),
        }
    }
}

// ---------------------------------------------------------------------------
// Rows

/// Who a row is about: a short tag used in targets ("b1") and a name.
#[derive(Debug, Clone, Copy)]
pub struct Label {
    pub tag: &'static str,
    pub name: &'static str,
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({}) {}", self.tag, self.name)
    }
}

/// What the pool under test should reach, as a ratio of its median to the
/// baseline's.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    /// Lower is better (a cost): the ratio must not exceed this.
    AtMost(f64),
    /// Higher is better (a speed-up): the ratio must reach this.
    AtLeast(f64),
}

impl Target {
    fn is_met(self, ratio: f64) -> bool {
        match self {
            Target::AtMost(bound) => ratio <= bound,
            Target::AtLeast(bound) => ratio >= bound,
        }
    }

    fn describe(self, baseline: Label) -> String {
        match self {
            Target::AtMost(bound) => format!("<= {bound}x {}", baseline.tag),
            Target::AtLeast(bound) => {
                format!(">= {bound}x {} (higher is better)", baseline.tag)
            }
        }
    }
}

/// A row's part in its comparison.
#[derive(Debug, Clone)]
enum Role {
    /// The figure the others are divided by.
    Baseline,
    /// The pool under test, with what it should reach.
    UnderTest { target: String, met: bool },
    /// Another pool, shown for reference only.
    Reference,
}

/// One printed line: one pool's figure in one scenario.
#[derive(Debug, Clone)]
pub struct Row {
    scenario: String,
    pool: Label,
    figure: Summary,
    unit: Unit,
    ratio: f64,
    role: Role,
}

/// The rows of one comparison. `figures[0]` is the pool under test, which
/// should reach `target` against `figures[baseline]`; any others are shown
/// for reference. Every ratio is a median divided by the baseline's median.
///
/// # Panics
///
/// If `baseline` is 0 or out of range: the pool under test is no baseline.
pub fn compare(
    scenario: &str,
    unit: Unit,
    figures: &[(Label, Summary)],
    baseline: usize,
    target: Target,
) -> Vec<Row> {
    assert!(
        (1..figures.len()).contains(&baseline),
        "the baseline is one of the other figures"
    );
    let (baseline_label, baseline_figure) = figures[baseline];
    figures
        .iter()
        .enumerate()
        .map(|(i, &(pool, figure))| {
            let ratio = figure.median / baseline_figure.median;
            let role = match i {
                0 => Role::UnderTest {
                    target: target.describe(baseline_label),
                    met: target.is_met(ratio),
                },
                _ if i == baseline => Role::Baseline,
                _ => Role::Reference,
            };
            Row {
                scenario: scenario.to_owned(),
                pool,
                figure,
                unit,
                ratio,
                role,
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Printing

/// Prints what the figures depend on: the machine, the build, the settings.
pub fn print_preamble(settings: &Settings, spin_iterations: u64) {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("machine:  {cores} cores, {}", cpu_model());
    let build = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    println!("build:    {build}");
    if cfg!(debug_assertions) {
        println!(
            "warning:  debug figures mean nothing; run `cargo run --release --example bench_compare`"
        );
    }
    let mode = if settings.quick { "quick" } else { "full" };
    let tasks = settings
        .tasks
        .map_or("scenario defaults".to_owned(), |n| n.to_string());
    println!(
        "settings: {mode} run, {} reps ({} for sleep-100ms), no-op tasks per run: {tasks}, in flight <= {WINDOW}, cpu task = {spin_iterations} spin iterations (~1 ms)",
        settings.reps(),
        settings.slow_reps(),
    );
    println!();
}

/// The CPU's name as `/proc/cpuinfo` gives it, or a shrug elsewhere.
fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|line| line.strip_prefix("model name"))
                .and_then(|rest| rest.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned())
}

/// The table, printed a row at a time as scenarios finish, and a tally of
/// the targets at the end.
#[derive(Debug, Default)]
pub struct Table {
    targets: usize,
    met: usize,
}

impl Table {
    /// Prints the column headings.
    pub fn start() -> Self {
        println!(
            "{:<18} {:<40} {:>20} {:>24} {:>9}  {:<32} met",
            "scenario", "pool", "median", "min..max", "ratio", "target"
        );
        Table::default()
    }

    /// Prints one row.
    pub fn print(&mut self, row: &Row) {
        let (target, met) = match &row.role {
            Role::Baseline => ("baseline".to_owned(), ""),
            Role::Reference => (String::new(), ""),
            Role::UnderTest { target, met } => {
                self.targets += 1;
                self.met += usize::from(*met);
                (target.clone(), if *met { "yes" } else { "no" })
            }
        };
        let figure = format!(
            "{} {}",
            row.unit.format(row.figure.median),
            row.unit.label()
        );
        let spread = format!(
            "{}..{}",
            row.unit.format(row.figure.min),
            row.unit.format(row.figure.max)
        );
        let line = format!(
            "{:<18} {:<40} {figure:>20} {spread:>24} {:>8.3}x  {target:<32} {met}",
            row.scenario,
            row.pool.to_string(),
            row.ratio,
        );
        println!("{}", line.trim_end());
    }

    /// Prints how to read the table and how many targets were met.
    pub fn finish(self, elapsed: Duration) {
        println!();
        println!(
            "median and min..max are over the timed repetitions; ratio = median / the baseline's median."
        );
        println!(
            "For costs (ns, bytes, seconds) lower is better; for tasks/s the ratio is a speed-up."
        );
        println!(
            "targets met: {} of {}; whole run: {:.1} s",
            self.met,
            self.targets,
            elapsed.as_secs_f64()
        );
    }
}
