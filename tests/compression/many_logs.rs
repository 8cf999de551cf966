//! Many logs in one process, with compression, at the usual descriptor limit.
//!
//! 300 logs on different paths, each non-blocking, gzipped, timestamped, 4 KiB files, 200
//! lines each, in a process whose `RLIMIT_NOFILE` is 1024, three times over:
//! - no line is lost, no write fails;
//! - each `SharedFile` holds 3 descriptors (its directory, its lock file, its live file)
//!   and its non-blocking writer 1 thread; compression adds 1 thread for the whole process,
//!   never one per log, and once every guard is dropped the process holds exactly the
//!   descriptors of its 300 files again: compression leaves none open.

use crate::common;

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::children::spawn_entry;
use common::verifier::{Expect, Verifier};
use common::workload::{WriterId, fmt_line};
use tracing_shared_file::{Naming, SharedFile};

const LOGS: u32 = 300;
const LINES: u64 = 200;
const MAX_BYTES: u64 = 4096;
const NOFILE: u64 = 1024;
const ENV_DIR: &str = "TSF_MANY_LOGS_DIR";

fn log_path(dir: &Path, index: u32) -> PathBuf {
    dir.join(format!("logs{index}")).join("app.log")
}

/// Entries of `dir`; one listing at a time, so that each count holds the descriptor of
/// its own listing and no other.
fn count(dir: &str) -> usize {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap();
    fs::read_dir(dir).map_or(0, |entries| entries.count())
}

fn descriptors() -> usize {
    count("/proc/self/fd")
}

fn threads() -> usize {
    count("/proc/self/task")
}

/// Samples the process's descriptors and threads every 200 µs until stopped; returns
/// the most of each seen.
struct Monitor {
    stop: Arc<AtomicBool>,
    most: Arc<[AtomicUsize; 2]>,
    thread: std::thread::JoinHandle<()>,
}

impl Monitor {
    fn start() -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let most = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
        let thread = {
            let (stop, most) = (Arc::clone(&stop), Arc::clone(&most));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Acquire) {
                    most[0].fetch_max(descriptors(), Ordering::Relaxed);
                    most[1].fetch_max(threads(), Ordering::Relaxed);
                    std::thread::sleep(Duration::from_micros(200));
                }
            })
        };
        Monitor { stop, most, thread }
    }

    fn stop(self) -> (usize, usize) {
        self.stop.store(true, Ordering::Release);
        self.thread.join().unwrap();
        (
            self.most[0].load(Ordering::Relaxed),
            self.most[1].load(Ordering::Relaxed),
        )
    }
}

/// The process with 300 logs: saves what it counted to `<dir>/counts` as `key value`
/// lines.
#[test]
fn many_logs_entry() {
    let Some(dir) = std::env::var_os(ENV_DIR) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let limit = libc::rlimit {
        rlim_cur: NOFILE as libc::rlim_t,
        rlim_max: NOFILE as libc::rlim_t,
    };
    // SAFETY: setrlimit with a valid struct.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) }, 0);
    let monitor = Monitor::start();
    let mut counts = BTreeMap::new();
    counts.insert("base_fds", descriptors());
    counts.insert("base_threads", threads());
    let logs: Vec<SharedFile> = (0..LOGS)
        .map(|index| {
            SharedFile::builder(log_path(&dir, index))
                .max_bytes(MAX_BYTES)
                .naming(Naming::Timestamped)
                .compress(true)
                .build()
                .expect("build")
        })
        .collect();
    counts.insert("built_fds", descriptors());
    let (mut writers, guards): (Vec<_>, Vec<_>) = logs.iter().map(SharedFile::non_blocking).unzip();
    counts.insert("non_blocking_threads", threads());
    for seq in 0..LINES {
        for (index, writer) in (0..LOGS).zip(writers.iter_mut()) {
            let id = WriterId {
                process: index,
                thread: 0,
            };
            writer.write_all(fmt_line(id, seq).as_bytes()).unwrap();
        }
    }
    drop(guards);
    let (most_fds, most_threads) = monitor.stop();
    counts.insert("most_fds", most_fds);
    counts.insert("most_threads", most_threads);
    counts.insert("end_fds", descriptors());
    counts.insert("end_threads", threads());
    let sum = |field: fn(&tracing_shared_file::Stats) -> u64| -> usize {
        logs.iter().map(|log| field(&log.stats()) as usize).sum()
    };
    counts.insert("written", sum(|s| s.events_written));
    counts.insert("write_errors", sum(|s| s.write_errors));
    counts.insert("dropped", sum(|s| s.events_dropped));
    counts.insert("rotations", sum(|s| s.rotations));
    counts.insert("compressed", sum(|s| s.archives_compressed));
    let text: String = counts.iter().map(|(k, v)| format!("{k} {v}\n")).collect();
    fs::write(dir.join("counts"), text).unwrap();
}

fn run_once(run: u32) {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let child = spawn_entry(
        &exe,
        &common::entry!(many_logs_entry),
        dir.path(),
        "many",
        |command| {
            command.env(ENV_DIR, dir.path());
        },
    );
    let finished = child.wait(Instant::now() + Duration::from_secs(300));
    finished.assert_success();
    let counts: BTreeMap<String, usize> = fs::read_to_string(dir.path().join("counts"))
        .unwrap()
        .lines()
        .map(|line| {
            let (key, value) = line.split_once(' ').unwrap();
            (key.to_string(), value.parse().unwrap())
        })
        .collect();
    println!("run {run}: {counts:?}");
    let n = |key: &str| counts[key];
    let logs = LOGS as usize;
    assert_eq!(
        (n("written"), n("write_errors"), n("dropped")),
        (logs * LINES as usize, 0, 0),
        "run {run}: {counts:?}, the library's reports: {:#?}",
        finished.reports()
    );
    assert!(n("rotations") >= logs * 4, "run {run}: {counts:?}");
    assert!(n("compressed") > 0, "run {run}: {counts:?}");
    // The monitor's thread is in the base count.
    assert_eq!(n("built_fds"), n("base_fds") + 3 * logs, "{counts:?}");
    assert_eq!(
        n("non_blocking_threads"),
        n("base_threads") + logs,
        "{counts:?}"
    );
    assert_eq!(
        n("most_threads"),
        n("base_threads") + logs + 1,
        "{counts:?}"
    );
    // The monitor thread has ended; the compressor's thread stays, idle.
    assert_eq!(n("end_threads"), n("base_threads"), "{counts:?}");
    assert_eq!(n("end_fds"), n("built_fds"), "{counts:?}");
    assert!(n("most_fds") < NOFILE as usize, "{counts:?}");
    for index in 0..LOGS {
        let report = Verifier::new(log_path(dir.path(), index), MAX_BYTES, 5)
            .timestamped(true)
            .expect(
                WriterId {
                    process: index,
                    thread: 0,
                },
                Expect::Newest { total: LINES },
            )
            .verify();
        assert!(report.is_ok(), "run {run}, log {index}: {report}");
        assert_eq!(
            report.compressed,
            report.archives - 1,
            "log {index}: {report}"
        );
    }
}

#[test]
fn three_hundred_gzipped_logs_at_1024_descriptors_lose_nothing_and_add_one_thread() {
    for run in 0..3 {
        run_once(run);
    }
}
