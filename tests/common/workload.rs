//! The records that test writers log, and the child-process writer that logs them.
//!
//! A record names its writer (process, thread) and sequence number, and carries a payload
//! derived from those three, so the verifier can tell an intact line from a torn one
//! without any other state. Shared by the tests and the examples (through `#[path]`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

// Submodules by `#[path]`, so that the examples, which include this file by path, find
// them too.
#[path = "workload/policy.rs"]
mod policy;
#[path = "workload/workers.rs"]
mod workers;

// Not every includer uses both (an example may use neither).
#[allow(unused_imports)]
pub use policy::RotationPolicy;
#[allow(unused_imports)]
pub use workers::Workers;

/// Identifies one writer: a thread in a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WriterId {
    pub process: u32,
    pub thread: u32,
}

/// The message logged for `seq` by `writer`: `REC p=.. t=.. s=.. x=<payload> END`.
pub fn record(writer: WriterId, seq: u64) -> String {
    format!(
        "REC p={} t={} s={} x={} END",
        writer.process,
        writer.thread,
        seq,
        payload(writer, seq)
    )
}

/// A whole line as the fmt layer would write it, for tests that write without `tracing`.
pub fn fmt_line(writer: WriterId, seq: u64) -> String {
    format!(
        "2026-11-26T15:00:00.000000Z  INFO workload: {}\n",
        record(writer, seq)
    )
}

/// Deterministic filler of 8 to 71 characters, different for every record.
pub fn payload(writer: WriterId, seq: u64) -> String {
    let mut state = (u64::from(writer.process) << 48) ^ (u64::from(writer.thread) << 32) ^ seq;
    let mut next = || {
        // splitmix64: cheap and well mixed, enough to make neighbouring records differ.
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let len = 8 + (next() % 64) as usize;
    (0..len)
        .map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize] as char)
        .collect()
}

/// What one child writer process does, passed through environment variables so that the
/// tests and the demo can spawn the same worker.
#[derive(Debug, Clone)]
pub struct WriterSpec {
    pub log: PathBuf,
    pub max_bytes: u64,
    pub max_files: usize,
    pub process: u32,
    pub threads: u32,
    pub lines_per_thread: u64,
    /// The child creates `<sync_dir>/ready.<process>` once built, then waits for
    /// `<sync_dir>/go` before logging, so that all children really overlap.
    pub sync_dir: PathBuf,
    pub mode: WriteMode,
    /// After each event, record in `<sync_dir>/ack.<process>.<thread>` how many events
    /// have returned, so a test that kills the worker knows what it had finished.
    pub acknowledge: bool,
    /// Stop early, once `<sync_dir>/stop` exists; then write the number of events
    /// attempted to `<sync_dir>/done.<process>.<thread>`.
    pub until_stopped: bool,
    /// Rotation options beyond size: time rotation, naming, retention, compression.
    /// All off by default.
    pub policy: RotationPolicy,
    /// A pause after each event, so that a run spreads over time (time rotation).
    pub pause: Duration,
    /// In `NonBlocking` mode, the queue's `max_queued_bytes` and `max_batch_bytes`, if not
    /// the defaults: a tiny queue keeps producers waiting for room and the background
    /// thread waking up.
    pub queue_bytes: Option<usize>,
}

/// How a worker hands its records to the library.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// `tracing::info!` through `SharedFile::layer()`, as applications do.
    Tracing,
    /// Straight to the `MakeWriter` writer in three `write` calls per line, as a
    /// hand-written writer might: the event must still land whole.
    Pieces,
    /// `tracing::info!` through a fmt layer writing to `SharedFile::non_blocking()`.
    NonBlocking,
}

const ENV_LOG: &str = "TSF_WORKER_LOG";
const ENV_MAX_BYTES: &str = "TSF_WORKER_MAX_BYTES";
const ENV_MAX_FILES: &str = "TSF_WORKER_MAX_FILES";
const ENV_PROCESS: &str = "TSF_WORKER_PROCESS";
const ENV_THREADS: &str = "TSF_WORKER_THREADS";
const ENV_LINES: &str = "TSF_WORKER_LINES";
const ENV_SYNC_DIR: &str = "TSF_WORKER_SYNC_DIR";
const ENV_MODE: &str = "TSF_WORKER_MODE";
const ENV_ACKNOWLEDGE: &str = "TSF_WORKER_ACKNOWLEDGE";
const ENV_UNTIL_STOPPED: &str = "TSF_WORKER_UNTIL_STOPPED";
const ENV_POLICY: &str = "TSF_WORKER_POLICY";
const ENV_PAUSE_MICROS: &str = "TSF_WORKER_PAUSE_MICROS";
const ENV_QUEUE_BYTES: &str = "TSF_WORKER_QUEUE_BYTES";

impl WriterSpec {
    /// One thread writing 1,000 records to `log`, rotating every 64 KiB and keeping every
    /// archive; set the other fields with struct update syntax.
    pub fn new(log: PathBuf, sync_dir: PathBuf) -> Self {
        WriterSpec {
            log,
            max_bytes: 64 * 1024,
            max_files: 100_000,
            process: 0,
            threads: 1,
            lines_per_thread: 1_000,
            sync_dir,
            mode: WriteMode::Tracing,
            acknowledge: false,
            until_stopped: false,
            policy: RotationPolicy::default(),
            pause: Duration::ZERO,
            queue_bytes: None,
        }
    }

    /// The spec handed to this process by its parent, if it is a worker.
    pub fn from_env() -> Option<Self> {
        let var = |name: &str| std::env::var_os(name);
        let num = |name: &str| -> u64 {
            std::env::var(name)
                .unwrap_or_else(|_| panic!("{name} missing"))
                .parse()
                .unwrap_or_else(|_| panic!("{name} not a number"))
        };
        Some(WriterSpec {
            log: PathBuf::from(var(ENV_LOG)?),
            max_bytes: num(ENV_MAX_BYTES),
            max_files: num(ENV_MAX_FILES) as usize,
            process: num(ENV_PROCESS) as u32,
            threads: num(ENV_THREADS) as u32,
            lines_per_thread: num(ENV_LINES),
            sync_dir: PathBuf::from(var(ENV_SYNC_DIR).expect("sync dir missing")),
            mode: match std::env::var(ENV_MODE).as_deref() {
                Ok("pieces") => WriteMode::Pieces,
                Ok("non-blocking") => WriteMode::NonBlocking,
                _ => WriteMode::Tracing,
            },
            acknowledge: std::env::var_os(ENV_ACKNOWLEDGE).is_some(),
            until_stopped: std::env::var_os(ENV_UNTIL_STOPPED).is_some(),
            policy: std::env::var(ENV_POLICY)
                .map(|text| RotationPolicy::decode(&text))
                .unwrap_or_default(),
            pause: std::env::var(ENV_PAUSE_MICROS).map_or(Duration::ZERO, |micros| {
                Duration::from_micros(micros.parse().expect("pause not a number"))
            }),
            queue_bytes: std::env::var(ENV_QUEUE_BYTES)
                .ok()
                .map(|bytes| bytes.parse().expect("queue bytes not a number")),
        })
    }

    /// Sets this spec on a command that starts a worker.
    pub fn apply(&self, command: &mut std::process::Command) {
        command
            .env(ENV_LOG, &self.log)
            .env(ENV_MAX_BYTES, self.max_bytes.to_string())
            .env(ENV_MAX_FILES, self.max_files.to_string())
            .env(ENV_PROCESS, self.process.to_string())
            .env(ENV_THREADS, self.threads.to_string())
            .env(ENV_LINES, self.lines_per_thread.to_string())
            .env(ENV_SYNC_DIR, &self.sync_dir)
            .env(
                ENV_MODE,
                match self.mode {
                    WriteMode::Tracing => "tracing",
                    WriteMode::Pieces => "pieces",
                    WriteMode::NonBlocking => "non-blocking",
                },
            );
        if self.acknowledge {
            command.env(ENV_ACKNOWLEDGE, "1");
        }
        if self.until_stopped {
            command.env(ENV_UNTIL_STOPPED, "1");
        }
        if self.policy != RotationPolicy::default() {
            command.env(ENV_POLICY, self.policy.encode());
        }
        if !self.pause.is_zero() {
            command.env(ENV_PAUSE_MICROS, self.pause.as_micros().to_string());
        }
        if let Some(bytes) = self.queue_bytes {
            command.env(ENV_QUEUE_BYTES, bytes.to_string());
        }
    }

    /// How many events `writer` had finished when it was last heard of (see
    /// [`WriterSpec::acknowledge`]).
    pub fn acknowledged(&self, writer: WriterId) -> u64 {
        read_count(
            &self
                .sync_dir
                .join(format!("ack.{}.{}", writer.process, writer.thread)),
        )
    }

    /// How many events `writer` attempted before it was stopped (see
    /// [`WriterSpec::until_stopped`]).
    pub fn attempted(&self, writer: WriterId) -> u64 {
        read_count(
            &self
                .sync_dir
                .join(format!("done.{}.{}", writer.process, writer.thread)),
        )
    }

    pub fn writers(&self) -> impl Iterator<Item = WriterId> + '_ {
        (0..self.threads).map(|thread| WriterId {
            process: self.process,
            thread,
        })
    }
}

/// The counters of a worker's `Stats` at its end, as [`WriterSpec::save_stats`] saved them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SavedStats {
    pub events_written: u64,
    pub rotations: u64,
    pub write_errors: u64,
    pub rotation_errors: u64,
    pub events_dropped: u64,
}

impl WriterSpec {
    /// Saves `stats` to `<sync_dir>/stats.<process>`, for the test to read back.
    pub fn save_stats(&self, stats: &tracing_shared_file::Stats) {
        let numbers = [
            stats.events_written,
            stats.rotations,
            stats.write_errors,
            stats.rotation_errors,
            stats.events_dropped,
        ]
        .map(|n| n.to_string())
        .join(" ");
        std::fs::write(self.stats_path(), numbers).expect("cannot save stats");
    }

    /// What the worker saved with [`WriterSpec::save_stats`].
    pub fn saved_stats(&self) -> SavedStats {
        let text = std::fs::read_to_string(self.stats_path())
            .unwrap_or_else(|e| panic!("worker {} saved no stats: {e}", self.process));
        let numbers: Vec<u64> = text
            .split(' ')
            .map(|n| n.parse().expect("saved stats are numbers"))
            .collect();
        let [
            events_written,
            rotations,
            write_errors,
            rotation_errors,
            events_dropped,
        ] = numbers[..]
        else {
            panic!("worker {} saved bad stats: {text:?}", self.process);
        };
        SavedStats {
            events_written,
            rotations,
            write_errors,
            rotation_errors,
            events_dropped,
        }
    }

    fn stats_path(&self) -> PathBuf {
        self.sync_dir.join(format!("stats.{}", self.process))
    }
}

fn read_count(path: &Path) -> u64 {
    std::fs::read(path)
        .ok()
        .and_then(|bytes| Some(u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?)))
        .unwrap_or(0)
}

/// Waits (polling) until `path` exists; panics after a minute so a broken test cannot hang.
pub fn wait_for_file(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Installs, process-wide, a plain fmt layer (no colours) writing to `writer`.
pub fn init_fmt_with<W>(writer: W)
where
    W: for<'a> tracing_subscriber::fmt::MakeWriter<'a> + Send + Sync + 'static,
{
    use tracing_subscriber::prelude::*;
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(writer),
        )
        .init();
}

/// Runs one worker process: build the shared file, signal ready, wait for the start
/// signal, log every record from `threads` threads as `spec.mode` says.
pub fn run_writer(spec: &WriterSpec) -> tracing_shared_file::Stats {
    use std::io::Write;
    use tracing_subscriber::fmt::MakeWriter;
    use tracing_subscriber::prelude::*;

    let builder = tracing_shared_file::SharedFile::builder(&spec.log)
        .max_bytes(spec.max_bytes)
        .max_files(spec.max_files);
    let log = spec
        .policy
        .apply(builder)
        .build()
        .expect("worker cannot build its SharedFile");
    let guard = match spec.mode {
        WriteMode::NonBlocking => {
            let mut builder = log.non_blocking_builder();
            if let Some(bytes) = spec.queue_bytes {
                builder = builder.max_queued_bytes(bytes).max_batch_bytes(bytes);
            }
            let (writer, guard) = builder.finish();
            init_fmt_with(writer);
            Some(guard)
        }
        WriteMode::Tracing | WriteMode::Pieces => {
            tracing_subscriber::registry().with(log.layer()).init();
            None
        }
    };

    std::fs::write(spec.sync_dir.join(format!("ready.{}", spec.process)), b"")
        .expect("cannot signal ready");
    wait_for_file(&spec.sync_dir.join("go"));

    let log = &log;
    std::thread::scope(|scope| {
        for writer in spec.writers() {
            scope.spawn(move || {
                let ack = spec.acknowledge.then(|| {
                    let path = spec
                        .sync_dir
                        .join(format!("ack.{}.{}", writer.process, writer.thread));
                    std::fs::File::create(path).expect("create the ack file")
                });
                let stop = spec.sync_dir.join("stop");
                let mut attempted = 0;
                for seq in 0..spec.lines_per_thread {
                    if spec.until_stopped && seq % 16 == 0 && stop.exists() {
                        break;
                    }
                    match spec.mode {
                        WriteMode::Tracing | WriteMode::NonBlocking => {
                            tracing::info!(target: "workload", "{}", record(writer, seq));
                        }
                        WriteMode::Pieces => {
                            let line = fmt_line(writer, seq);
                            let (head, tail) = line.split_at(line.len() / 2);
                            let mut event = log.make_writer();
                            for piece in [head, tail, ""] {
                                event.write_all(piece.as_bytes()).expect("write a piece");
                            }
                        }
                    }
                    attempted = seq + 1;
                    if let Some(ack) = &ack {
                        #[cfg(unix)]
                        use std::os::unix::fs::FileExt;
                        #[cfg(windows)]
                        use std::os::windows::fs::FileExt;
                        #[cfg(unix)]
                        let written = ack.write_at(&attempted.to_le_bytes(), 0);
                        #[cfg(windows)]
                        let written = ack.seek_write(&attempted.to_le_bytes(), 0);
                        written.expect("write the ack file");
                    }
                    if !spec.pause.is_zero() {
                        std::thread::sleep(spec.pause);
                    }
                }
                if spec.until_stopped {
                    let done = spec
                        .sync_dir
                        .join(format!("done.{}.{}", writer.process, writer.thread));
                    std::fs::write(done, attempted.to_le_bytes()).expect("write the done file");
                }
            });
        }
    });
    // Everything queued is written before the stats are read.
    drop(guard);
    log.stats()
}

/// The child side of most `Workers` tests: does nothing unless this process was started
/// with a [`WriterSpec`] in its environment; then runs [`run_writer`] and saves the stats
/// for the test to read ([`WriterSpec::saved_stats`]).
pub fn run_worker_saving_stats() {
    if let Some(spec) = WriterSpec::from_env() {
        let stats = run_writer(&spec);
        spec.save_stats(&stats);
    }
}

// The verifier owns the stamp format; tests name it from here too.
#[allow(unused_imports)]
pub use super::verifier::archive_stamp;

/// One timestamped archive, as its name says: `<log name>.<stamp>[.<counter>][.gz]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StampedName {
    pub name: String,
    /// Seconds since the epoch.
    pub stamp: i64,
    /// 0 when the name has none.
    pub counter: u64,
    pub gz: bool,
}

/// Parses `name` as a timestamped archive of the log named `log_name`; `None` for any
/// other name, including a stamp that is no real time.
pub fn parse_stamped_name(log_name: &str, name: &str) -> Option<StampedName> {
    let rest = name.strip_prefix(log_name)?.strip_prefix('.')?;
    let (rest, gz) = match rest.strip_suffix(".gz") {
        Some(rest) => (rest, true),
        None => (rest, false),
    };
    let text = rest.get(..20)?;
    let counter = match &rest[20..] {
        "" => 0,
        suffix => {
            let digits = suffix.strip_prefix('.')?;
            if digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            digits.parse().ok()?
        }
    };
    let stamp = super::verifier::parse_archive_stamp(text)?;
    Some(StampedName {
        name: name.to_string(),
        stamp,
        counter,
        gz,
    })
}

/// The timestamped archives beside `log`, oldest first (by stamp, then counter; a
/// plain file before its `.gz`).
pub fn stamped_archives(log: &Path) -> Vec<StampedName> {
    let dir = log.parent().expect("log path has a parent");
    let log_name = log.file_name().expect("log path has a file name");
    let log_name = log_name.to_str().expect("UTF-8 log name");
    let mut archives: Vec<StampedName> = std::fs::read_dir(dir)
        .expect("cannot list the log directory")
        .filter_map(|entry| {
            let name = entry.expect("cannot list the log directory").file_name();
            parse_stamped_name(log_name, name.to_str()?)
        })
        .collect();
    archives.sort_by_key(|archive| (archive.stamp, archive.counter, archive.gz));
    archives
}
