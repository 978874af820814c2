//! A throwaway PostgreSQL server for the tests: `initdb` and `pg_ctl` from the
//! installed PostgreSQL, into a temporary directory, listening on a unix
//! socket only, with trust authentication.
//!
//! The binaries are found in `WORKERPOOL_PG_BIN` if set, else in the newest
//! `/usr/lib/postgresql/<version>/bin` (Debian's layout), else on `PATH`.
//! PostgreSQL refuses to run as root, so under root the server runs as the
//! `postgres` user that Debian's package creates.
//!
//! A cluster stops, and its directory goes, when its [`Cluster`] is dropped;
//! a reaper process started with it also stops it once the test process is
//! gone, since a shared cluster in a `static` is never dropped.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// One server, its data directory and socket directory in `dir`.
pub struct Cluster {
    dir: PathBuf,
    bin: PathBuf,
    /// Commits survive a crash (`fsync`, synchronous commit): what a test
    /// that crashes the server needs. The shared cluster trades that for
    /// speed.
    durable: bool,
}

/// The socket's port number: with no TCP listener it only names the socket
/// file, in a directory of the cluster's own.
const PORT: u16 = 5432;

impl Cluster {
    /// The cluster the tests of this binary share; each test takes a fresh
    /// database in it ([`Cluster::database`]).
    pub fn shared() -> &'static Cluster {
        static SHARED: OnceLock<Cluster> = OnceLock::new();
        SHARED.get_or_init(|| Cluster::start_with(false))
    }

    /// A cluster of one's own, whose commits survive a crash, for a test
    /// that crashes or restarts it.
    pub fn start() -> Cluster {
        Cluster::start_with(true)
    }

    fn start_with(durable: bool) -> Cluster {
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        let bin = bin_dir();
        let dir = std::env::temp_dir().join(format!(
            "workerpool-pg-{}-{}",
            std::process::id(),
            STARTED.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("socket")).expect("make the cluster's directory");
        if is_root() {
            run(Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir));
        }
        let cluster = Cluster { dir, bin, durable };
        cluster.pg(
            &[
                "initdb",
                "--no-sync",
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
            ],
            &["-D"],
        );
        cluster.up();
        cluster.reap_when_tests_end();
        cluster
    }

    /// A new, empty database, and the connection string for it.
    pub fn database(&self) -> String {
        static MADE: AtomicUsize = AtomicUsize::new(0);
        let name = format!("test_{}", MADE.fetch_add(1, Ordering::Relaxed));
        self.psql(&format!("CREATE DATABASE {name}"));
        self.conninfo(&name)
    }

    /// The connection string for database `name`.
    pub fn conninfo(&self, name: &str) -> String {
        format!(
            "host={} port={PORT} user=postgres dbname={name}",
            self.dir.join("socket").display()
        )
    }

    /// Runs SQL as the superuser, in the `postgres` database.
    pub fn psql(&self, sql: &str) {
        let socket = self.dir.join("socket");
        let mut command = self.command("psql");
        command
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-U", "postgres", "-h"])
            .arg(&socket)
            .args(["-p", &PORT.to_string(), "-d", "postgres", "-c", sql]);
        run(&mut command);
    }

    /// Stops the server at once, as a crash would (`immediate`: no
    /// checkpoint, connections cut).
    pub fn crash(&self) {
        self.pg(&["pg_ctl", "stop", "-m", "immediate", "-w"], &["-D"]);
    }

    /// Starts the server (again, after [`crash`](Self::crash)).
    pub fn up(&self) {
        let speed = if self.durable {
            ""
        } else {
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        };
        let options = format!(
            "-k {} -p {PORT} -c listen_addresses='' -c max_connections=200 {speed}",
            self.dir.join("socket").display()
        );
        let log = self.dir.join("server.log");
        let mut command = self.command("pg_ctl");
        command
            .args(["start", "-w", "-t", "60", "-o", &options, "-l"])
            .arg(&log)
            .arg("-D")
            .arg(self.dir.join("data"));
        run(&mut command);
    }

    /// A command for the PostgreSQL binary `name`, as the user that runs the
    /// server.
    fn command(&self, name: &str) -> Command {
        let program = self.bin.join(name);
        if is_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        }
    }

    /// Runs a PostgreSQL binary (`args[0]`) on the data directory, which
    /// comes after `data_flag`.
    fn pg(&self, args: &[&str], data_flag: &[&str]) {
        let mut command = self.command(args[0]);
        command
            .args(&args[1..])
            .args(data_flag)
            .arg(self.dir.join("data"));
        run(&mut command);
    }

    /// Stops the server and removes the directory once this process is
    /// gone, however it ends.
    // The reaper is meant to outlive this process: nobody waits for it.
    #[allow(clippy::zombie_processes)]
    fn reap_when_tests_end(&self) {
        let script = format!(
            "while kill -0 {pid} 2>/dev/null || [ -d /proc/{pid} ]; do sleep 0.5; done; \
             {pg_ctl} stop -m immediate -D {data} >/dev/null 2>&1; rm -rf {dir}",
            pid = std::process::id(),
            pg_ctl = self.bin.join("pg_ctl").display(),
            data = self.dir.join("data").display(),
            dir = self.dir.display(),
        );
        let mut command = if is_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--", "sh", "-c", &script]);
            command
        } else {
            let mut command = Command::new("sh");
            command.args(["-c", &script]);
            command
        };
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the cluster's reaper");
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let mut command = self.command("pg_ctl");
        command
            .args(["stop", "-m", "immediate", "-D"])
            .arg(self.dir.join("data"))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let _ = command.status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether the tests run as root (asked of `id`, once).
fn is_root() -> bool {
    static ROOT: OnceLock<bool> = OnceLock::new();
    *ROOT.get_or_init(|| {
        Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|out| out.stdout.trim_ascii() == b"0")
    })
}

/// Where `initdb` and `pg_ctl` are.
fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("WORKERPOOL_PG_BIN") {
        return dir.into();
    }
    let newest = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path().join("bin"))
        .filter(|bin| bin.join("initdb").exists())
        .max_by_key(|bin| version_of(bin));
    newest.unwrap_or_else(|| {
        // On `PATH`: `Command` finds it when the program has no directory.
        PathBuf::new()
    })
}

fn version_of(bin: &Path) -> u32 {
    bin.parent()
        .and_then(Path::file_name)
        .and_then(|name| name.to_str())
        .and_then(|name| name.parse().ok())
        .unwrap_or(0)
}

fn run(command: &mut Command) {
    let output = command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|error| {
            panic!("could not run {command:?}: {error} (is PostgreSQL installed?)")
        });
    assert!(
        output.status.success(),
        "{command:?} failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
