//! The writers of the symlink-swap tests: real child processes (this test binary re-run
//! as `worker_entry`), writing continuously until stopped while a test swaps a symlink
//! in; and the paths and victims the tests look at. Every wait has a deadline and fails
//! at once, with the worker's stderr, if a worker died.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common;
use common::children::{CHILD_DEADLINE, REPORT_PREFIX, RunningChild, start_entry};
use common::workload::{WriteMode, WriterId, WriterSpec, run_writer};

pub(crate) const MAX_BYTES: u64 = 64 * 1024;
/// Large enough that no archive is deleted, so every line can be accounted for.
pub(crate) const KEEP_ALL: usize = 100_000;
/// Enough that a worker told to write until stopped never runs out first.
const UNTIL_STOPPED: u64 = 100_000_000;
/// Records each running writer must attempt after the swap before it is stopped.
pub(crate) const AFTER_SWAP: u64 = 500;
/// 80 bytes of someone else's text.
pub(crate) const VICTIM_TEXT: &[u8] =
    b"precious data that must survive: not a log file, and not ours to write to......\n";

/// Child side: a `workload` writer, which also records its stats for the test.
#[test]
fn worker_entry() {
    let Some(spec) = WriterSpec::from_env() else {
        return;
    };
    let stats = run_writer(&spec);
    let text = format!(
        "{} {} {}",
        stats.events_written, stats.write_errors, stats.events_dropped
    );
    fs::write(spec.sync_dir.join(format!("stats.{}", spec.process)), text).expect("write stats");
}

/// A writer process, killed if the test fails before waiting for it. Its output goes to
/// files: the reports it is expected to print must not reach the terminal.
pub(crate) struct Worker {
    pub(crate) spec: WriterSpec,
    child: RunningChild,
}

/// How a worker ended.
pub(crate) struct Outcome {
    pub(crate) spec: WriterSpec,
    pub(crate) status: std::process::ExitStatus,
    pub(crate) stderr: String,
    /// `(events_written, write_errors, events_dropped)`.
    pub(crate) stats: (u64, u64, u64),
}

impl Worker {
    /// Spawns the worker and waits until it has built its `SharedFile` (it then starts as
    /// soon as `<sync_dir>/go` exists).
    pub(crate) fn start(spec: WriterSpec) -> Self {
        let name = format!("worker{}", spec.process);
        let entry = common::entry!(worker_entry);
        let child = start_entry(&entry, &spec.sync_dir, &name, |command| spec.apply(command));
        let ready = spec.sync_dir.join(format!("ready.{}", spec.process));
        let mut worker = Worker { spec, child };
        wait_until(&mut [&mut worker], "a worker to get ready", || {
            ready.exists()
        });
        worker
    }

    /// Fails at once, with the worker's stderr, if it exited before it was meant to.
    fn check_alive(&mut self, waiting_for: &str) {
        if let Some(status) = self.child.exited() {
            panic!(
                "worker {} exited ({status}) while the test waited for {waiting_for}:\n{}",
                self.spec.process,
                self.child.stderr()
            );
        }
    }

    /// How many records the worker has handed to the library so far.
    pub(crate) fn acknowledged(&self) -> u64 {
        self.spec.acknowledged(self.writer())
    }

    pub(crate) fn writer(&self) -> WriterId {
        WriterId {
            process: self.spec.process,
            thread: 0,
        }
    }

    /// The file the worker's stderr goes to.
    pub(crate) fn stderr_path(&self) -> PathBuf {
        self.child.stderr_path().to_path_buf()
    }

    /// Waits for the worker to exit (killing it at the deadline) and reads its stats.
    pub(crate) fn finish(self) -> Outcome {
        let finished = self.child.finish();
        finished.assert_success();
        let stats_path = self
            .spec
            .sync_dir
            .join(format!("stats.{}", self.spec.process));
        let numbers: Vec<u64> = fs::read_to_string(&stats_path)
            .expect("the worker wrote its stats")
            .split(' ')
            .map(|n| n.parse().unwrap())
            .collect();
        Outcome {
            spec: self.spec,
            status: finished.status,
            stderr: finished.stderr,
            stats: (numbers[0], numbers[1], numbers[2]),
        }
    }
}

impl Outcome {
    /// The lines the library printed on stderr.
    pub(crate) fn reports(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|line| line.starts_with(REPORT_PREFIX))
            .collect()
    }

    /// How many records the worker attempted before it was stopped.
    pub(crate) fn attempted(&self) -> u64 {
        self.spec.attempted(WriterId {
            process: self.spec.process,
            thread: 0,
        })
    }

    /// The worker followed the swapped-in link nowhere: what it logged after the swap was
    /// dropped, counted and reported, and nothing went missing from the count.
    #[track_caller]
    pub(crate) fn assert_refused_the_link(&self) {
        let (written, errors, dropped) = self.stats;
        let process = self.spec.process;
        assert_eq!(
            written + dropped,
            self.attempted(),
            "worker {process}: every record attempted is written or counted as dropped \
             (written {written}, dropped {dropped})"
        );
        assert!(
            dropped > 0 && errors > 0,
            "worker {process} dropped nothing after the swap: written {written}, \
             write_errors {errors}, dropped {dropped} of {}",
            self.attempted()
        );
        assert!(
            !self.reports().is_empty(),
            "worker {process} never reported the refusal ({}):\n{}",
            self.status,
            self.stderr
        );
    }
}

/// Waits until `done()`, failing early if a worker died and at the deadline.
pub(crate) fn wait_until(workers: &mut [&mut Worker], what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + CHILD_DEADLINE;
    while !done() {
        for worker in workers.iter_mut() {
            worker.check_alive(what);
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Every `<log>.N` that is a symlink.
pub(crate) fn symlinked_archives(log: &Path) -> Vec<PathBuf> {
    let prefix = format!("{}.", log.file_name().unwrap().to_str().unwrap());
    let mut links: Vec<PathBuf> = fs::read_dir(log.parent().unwrap())
        .unwrap()
        .map(|entry| entry.unwrap())
        .filter(|entry| {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            name.strip_prefix(&prefix)
                .is_some_and(|n| n.parse::<usize>().is_ok())
                && entry.file_type().unwrap().is_symlink()
        })
        .map(|entry| entry.path())
        .collect();
    links.sort();
    links
}

/// Puts a symlink to `target` at `path` in one step, replacing what was there: a link at
/// a temp name, renamed over `path`, as `mv -T` does.
pub(crate) fn swap_in_symlink(target: &str, path: &Path) {
    let temp = path.with_file_name("swap-link.tmp");
    std::os::unix::fs::symlink(target, &temp).unwrap();
    fs::rename(&temp, path).unwrap();
}

#[track_caller]
pub(crate) fn assert_is_link_to(path: &Path, target: &str) {
    let meta = fs::symlink_metadata(path).unwrap();
    assert!(
        meta.file_type().is_symlink(),
        "{} is no longer the symlink swapped in: it was rotated away",
        path.display()
    );
    assert_eq!(fs::read_link(path).unwrap(), Path::new(target));
}

/// What a victim file is: bytes, inode, length and mtime.
pub(crate) fn victim_state(path: &Path) -> (String, u64, u64, (i64, i64)) {
    let meta = fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let bytes = fs::read(path).unwrap();
    // Escaped and cut short: a victim filled with log lines would print pages.
    let shown: String = bytes.escape_ascii().to_string().chars().take(300).collect();
    (
        shown,
        meta.ino(),
        meta.len(),
        (meta.mtime(), meta.mtime_nsec()),
    )
}

pub(crate) fn writer_spec(
    log: &Path,
    sync_dir: &Path,
    process: u32,
    mode: WriteMode,
) -> WriterSpec {
    WriterSpec {
        max_bytes: MAX_BYTES,
        max_files: KEEP_ALL,
        process,
        lines_per_thread: UNTIL_STOPPED,
        mode,
        acknowledge: true,
        until_stopped: true,
        ..WriterSpec::new(log.to_path_buf(), sync_dir.to_path_buf())
    }
}
