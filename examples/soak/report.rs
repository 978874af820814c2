//! Resident memory, and the table printed at the end of each phase.

use std::time::Duration;

use crate::plan::KINDS;

/// The process's resident set size, from `/proc/self/status` (Linux).
pub fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    let kib: u64 = line.trim().strip_suffix("kB")?.trim().parse().ok()?;
    Some(kib * 1024)
}

/// Bytes in MiB, to one decimal.
pub fn mib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / (1024.0 * 1024.0))
}

/// One RSS reading, taken with a snapshot.
#[derive(Debug, Clone, Copy)]
pub struct RssSample {
    /// Since the phase started.
    pub at: Duration,
    /// Outcomes received by then.
    pub done: u64,
    pub rss: u64,
}

/// What a phase did and found.
pub struct PhaseReport {
    pub name: &'static str,
    pub tasks: u64,
    pub workers: usize,
    pub expected: [u64; KINDS.len()],
    pub got: [u64; KINDS.len()],
    pub retries: u64,
    pub own_policy: u64,
    pub snapshots: u64,
    pub rss_start: u64,
    /// When the first 10% of the tasks had their outcome.
    pub rss_tenth: u64,
    pub rss_peak: u64,
    pub rss_end: u64,
    pub samples: Vec<RssSample>,
    pub wall: Duration,
    /// Empty when every check held.
    pub failures: Vec<String>,
}

/// Thousands separated by commas.
fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// At most about ten samples, evenly spread, the last one included.
fn some_samples(samples: &[RssSample], tasks: u64) -> String {
    let step = samples.len().div_ceil(10).max(1);
    let mut picked: Vec<&RssSample> = samples.iter().step_by(step).collect();
    if let Some(last) = samples.last()
        && picked.last().is_none_or(|p| p.at != last.at)
    {
        picked.push(last);
    }
    picked
        .iter()
        .map(|s| {
            let done = 100 * s.done / tasks.max(1);
            format!("{}@{:.1}s/{done}%", mib(s.rss), s.at.as_secs_f64())
        })
        .collect::<Vec<_>>()
        .join(" ")
}

impl PhaseReport {
    pub fn print(&self) {
        println!(
            "\n== {}: {} tasks, {} workers, {:.2} s ({} with their own retry policy, {} retries planned)",
            self.name,
            count(self.tasks),
            self.workers,
            self.wall.as_secs_f64(),
            count(self.own_policy),
            count(self.retries),
        );
        println!("   {:<10} {:>10} {:>10}", "outcome", "expected", "got");
        for (i, kind) in KINDS.iter().enumerate() {
            let (want, got) = (self.expected[i], self.got[i]);
            if want == 0 && got == 0 && i == KINDS.len() - 1 {
                continue;
            }
            let mark = if want == got { "" } else { "  <-- differs" };
            println!("   {kind:<10} {:>10} {:>10}{mark}", count(want), count(got));
        }
        println!("   snapshots checked: {}", self.snapshots);
        println!(
            "   RSS MiB: start {}, at 10% {}, peak {}, end {}",
            mib(self.rss_start),
            mib(self.rss_tenth),
            mib(self.rss_peak),
            mib(self.rss_end)
        );
        println!(
            "   RSS samples (MiB@time/done): {}",
            some_samples(&self.samples, self.tasks)
        );
        if self.failures.is_empty() {
            println!("   every check held");
        } else {
            for failure in &self.failures {
                println!("   FAILED: {failure}");
            }
        }
    }
}
