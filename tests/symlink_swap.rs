//! A symlink put at the log path after `build()` is never followed, and never rotated.
//!
//! `build()` resolves a symlink at the log path once (and locks beside the real file).
//! After that, a symlink swapped in at the path (`ln -s` to a temp name, then `rename(2)`
//! over the log, as `mv -T` does) must be refused by the processes already running: their
//! events are dropped, counted and reported. Following it would either write into
//! whatever the link points to, or write to another directory's log under this
//! directory's lock, while the processes started since lock the other directory's lock
//! file: two locks for one file, so files overflow `max_bytes`.
//!
//! Writers are real child processes (this test binary re-run as `worker_entry`), writing
//! continuously while the test swaps the link in. A symlink at an archive name is also
//! covered: rotation and retention move or delete the link, never its target.
//!
//! So is the log's DIRECTORY swapped for a symlink to another directory (`mv logs
//! logs.old && ln -s victim logs`): the running writers touch nothing in the victim
//! directory and nothing in the original one, dropping, counting and reporting their
//! events, and keep the original lock file; once the directory is put back they resume
//! there.

mod common;

use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::verifier::{Expect, Verifier};
use common::workload::{WriteMode, WriterId, WriterSpec, fmt_line, run_writer};
use tracing_shared_file::SharedFile;

const MAX_BYTES: u64 = 64 * 1024;
/// Large enough that no archive is deleted, so every line can be accounted for.
const KEEP_ALL: usize = 100_000;
/// Enough that a worker told to write until stopped never runs out first.
const UNTIL_STOPPED: u64 = 100_000_000;
/// Records each running writer must attempt after the swap before it is stopped.
const AFTER_SWAP: u64 = 500;
/// How long any wait on a child may last before the test calls it hung.
const CHILD_DEADLINE: Duration = Duration::from_secs(60);
/// The prefix of every line the library prints on stderr.
const REPORT_PREFIX: &str = "tracing-shared-file:";
/// 80 bytes of someone else's text.
const VICTIM_TEXT: &[u8] =
    b"precious data that must survive: not a log file, and not ours to write to......\n";

// ---------------------------------------------------------------------------------------
// Child processes.

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
struct Worker {
    spec: WriterSpec,
    child: Option<Child>,
    stderr: PathBuf,
}

/// What a worker left behind.
struct Finished {
    spec: WriterSpec,
    status: ExitStatus,
    stderr: String,
    /// `(events_written, write_errors, events_dropped)`.
    stats: (u64, u64, u64),
}

impl Worker {
    /// Spawns the worker and waits until it has built its `SharedFile` (it then starts as
    /// soon as `<sync_dir>/go` exists).
    fn start(spec: WriterSpec) -> Self {
        let name = format!("worker{}", spec.process);
        let stderr = spec.sync_dir.join(format!("stderr.{name}"));
        let mut command = Command::new(std::env::current_exe().expect("current_exe"));
        command
            .args(["--exact", "worker_entry", "--nocapture", "--test-threads=1"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&stderr).expect("create the stderr file"));
        spec.apply(&mut command);
        let child = common::spawn_retrying(&mut command).expect("spawn a worker");
        let mut worker = Worker {
            spec,
            child: Some(child),
            stderr,
        };
        let ready = worker
            .spec
            .sync_dir
            .join(format!("ready.{}", worker.spec.process));
        wait_until(&mut [&mut worker], "a worker to get ready", || {
            ready.exists()
        });
        worker
    }

    /// Fails at once, with the worker's stderr, if it exited before it was meant to.
    fn check_alive(&mut self, waiting_for: &str) {
        if let Some(child) = &mut self.child
            && let Ok(Some(status)) = child.try_wait()
        {
            panic!(
                "worker {} exited ({status}) while the test waited for {waiting_for}:\n{}",
                self.spec.process,
                fs::read_to_string(&self.stderr).unwrap_or_default()
            );
        }
    }

    /// How many records the worker has handed to the library so far.
    fn acknowledged(&self) -> u64 {
        self.spec.acknowledged(self.writer())
    }

    fn writer(&self) -> WriterId {
        WriterId {
            process: self.spec.process,
            thread: 0,
        }
    }

    /// Waits for the worker to exit (killing it at the deadline) and reads its stats.
    fn finish(mut self) -> Finished {
        let mut child = self.child.take().expect("finished twice");
        let deadline = Instant::now() + CHILD_DEADLINE;
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for a worker") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("worker {} hung", self.spec.process);
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        let stderr = fs::read_to_string(&self.stderr).unwrap_or_default();
        assert!(
            status.success() && !stderr.contains("panicked"),
            "worker {} failed ({status}):\n{stderr}",
            self.spec.process
        );
        let stats_path = self
            .spec
            .sync_dir
            .join(format!("stats.{}", self.spec.process));
        let numbers: Vec<u64> = fs::read_to_string(&stats_path)
            .expect("the worker wrote its stats")
            .split(' ')
            .map(|n| n.parse().unwrap())
            .collect();
        Finished {
            spec: self.spec.clone(),
            status,
            stderr,
            stats: (numbers[0], numbers[1], numbers[2]),
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Finished {
    /// The lines the library printed on stderr.
    fn reports(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|line| line.starts_with(REPORT_PREFIX))
            .collect()
    }

    /// How many records the worker attempted before it was stopped.
    fn attempted(&self) -> u64 {
        self.spec.attempted(WriterId {
            process: self.spec.process,
            thread: 0,
        })
    }

    /// The worker followed the swapped-in link nowhere: what it logged after the swap was
    /// dropped, counted and reported, and nothing went missing from the count.
    #[track_caller]
    fn assert_refused_the_link(&self) {
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
fn wait_until(workers: &mut [&mut Worker], what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + CHILD_DEADLINE;
    while !done() {
        for worker in workers.iter_mut() {
            worker.check_alive(what);
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn touch(path: &Path) {
    fs::write(path, b"").unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
}

// ---------------------------------------------------------------------------------------
// Paths.

fn archive(log: &Path, index: usize) -> PathBuf {
    let mut name = log.as_os_str().to_owned();
    name.push(format!(".{index}"));
    PathBuf::from(name)
}

/// Every `<log>.N` that is a symlink.
fn symlinked_archives(log: &Path) -> Vec<PathBuf> {
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
fn swap_in_symlink(target: &str, path: &Path) {
    let temp = path.with_file_name("swap-link.tmp");
    std::os::unix::fs::symlink(target, &temp).unwrap();
    fs::rename(&temp, path).unwrap();
}

#[track_caller]
fn assert_is_link_to(path: &Path, target: &str) {
    let meta = fs::symlink_metadata(path).unwrap();
    assert!(
        meta.file_type().is_symlink(),
        "{} is no longer the symlink swapped in: it was rotated away",
        path.display()
    );
    assert_eq!(fs::read_link(path).unwrap(), Path::new(target));
}

/// What a victim file is: bytes, inode, length and mtime.
fn victim_state(path: &Path) -> (String, u64, u64, (i64, i64)) {
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

fn writer_spec(log: &Path, sync_dir: &Path, process: u32, mode: WriteMode) -> WriterSpec {
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

// ---------------------------------------------------------------------------------------
// The log path swapped for a symlink to a victim file while writers run.

fn run_victim_swap(mode: WriteMode) {
    const WRITERS: u32 = 2;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let victim = dir.path().join("victim.txt");
    fs::write(&victim, VICTIM_TEXT).unwrap();
    let sync_dir = dir.path().join("sync");
    fs::create_dir(&sync_dir).unwrap();

    let mut workers: Vec<Worker> = (0..WRITERS)
        .map(|process| Worker::start(writer_spec(&log, &sync_dir, process, mode)))
        .collect();
    touch(&sync_dir.join("go"));
    // Swap once the writers have rotated a couple of times: they are in full flow.
    let second_archive = archive(&log, 2);
    wait_until(
        &mut workers.iter_mut().collect::<Vec<_>>(),
        "two rotations",
        || second_archive.exists(),
    );
    let victim_before = victim_state(&victim);
    let acknowledged_at_swap: Vec<u64> = workers.iter().map(Worker::acknowledged).collect();
    swap_in_symlink("victim.txt", &log);

    // Every writer logs on after the swap.
    for (worker, at_swap) in workers.iter_mut().zip(acknowledged_at_swap) {
        let writer = worker.writer();
        let spec = worker.spec.clone();
        wait_until(&mut [worker], "records after the swap", || {
            spec.acknowledged(writer) >= at_swap + AFTER_SWAP
        });
    }
    // The swap is noticed within `path_check_interval` (10 ms): a fast writer may have
    // sent all of those records to the replaced file by then, so let them log on past it.
    std::thread::sleep(3 * tracing_shared_file::DEFAULT_PATH_CHECK_INTERVAL);
    touch(&sync_dir.join("stop"));
    let finished: Vec<Finished> = workers.into_iter().map(Worker::finish).collect();

    assert_eq!(
        victim_state(&victim),
        victim_before,
        "the writers wrote into the symlink's target"
    );
    assert_is_link_to(&log, "victim.txt");
    assert_eq!(symlinked_archives(&log), Vec::<PathBuf>::new());
    for worker in &finished {
        worker.assert_refused_the_link();
    }

    // What was written before the swap is intact in the archives: each writer's records
    // from its first on, without a gap (the live file at the swap went with its name).
    // A rotation that the swap caught half-way put the link back after the archives had
    // moved up, which leaves a gap at `.1` until the next rotation: allowed.
    fs::remove_file(&log).unwrap();
    let report = (0..WRITERS)
        .fold(
            Verifier::new(&log, MAX_BYTES, KEEP_ALL).allow_gaps(true),
            |verifier, p| {
                verifier.expect(
                    WriterId {
                        process: p,
                        thread: 0,
                    },
                    Expect::Prefix { acknowledged: 0 },
                )
            },
        )
        .verify();
    report.assert_ok();
    assert!(
        report.archives >= 2,
        "{report}\n{:?}",
        fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect::<Vec<_>>()
    );
}

#[test]
fn a_symlink_swapped_in_at_the_log_path_is_never_written_through() {
    run_victim_swap(WriteMode::Tracing);
}

#[test]
fn a_symlink_swapped_in_at_the_log_path_is_never_written_through_by_non_blocking() {
    run_victim_swap(WriteMode::NonBlocking);
}

// ---------------------------------------------------------------------------------------
// The review's repro: `logs/app.log` swapped for a symlink to `../big/app.log`, and a
// writer started after the swap.

#[test]
fn a_log_path_swapped_for_a_link_to_another_log_never_splits_the_lock() {
    const LATE_LINES: u64 = 3_000;
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    let big = dir.path().join("big");
    fs::create_dir(&logs).unwrap();
    fs::create_dir(&big).unwrap();
    let log = logs.join("app.log");
    let big_log = big.join("app.log");
    let sync_dir = dir.path().join("sync");
    fs::create_dir(&sync_dir).unwrap();

    // Writer A runs from before the swap to after writer B is done.
    let mut early = Worker::start(writer_spec(&log, &sync_dir, 0, WriteMode::Tracing));
    touch(&sync_dir.join("go"));
    let second_archive = archive(&log, 2);
    wait_until(&mut [&mut early], "two rotations", || {
        second_archive.exists()
    });
    let early_at_swap = early.acknowledged();
    swap_in_symlink("../big/app.log", &log);

    // Writer B is given the same path, now a link: build() resolves it to big/app.log.
    let late_spec = WriterSpec {
        lines_per_thread: LATE_LINES,
        acknowledge: false,
        until_stopped: false,
        ..writer_spec(&log, &sync_dir, 1, WriteMode::Tracing)
    };
    let late_writer = WriterId {
        process: 1,
        thread: 0,
    };
    let late = Worker::start(late_spec);
    let late = late.finish();
    let early_spec = early.spec.clone();
    let early_writer = early.writer();
    wait_until(&mut [&mut early], "writer A to log after the swap", || {
        early_spec.acknowledged(early_writer) >= early_at_swap + AFTER_SWAP
    });
    touch(&sync_dir.join("stop"));
    let early = early.finish();

    assert_eq!(late.stats, (LATE_LINES, 0, 0), "writer B lost nothing");
    assert!(late.reports().is_empty(), "{}", late.stderr);
    // big/ holds B's records only, and no file there went past max_bytes.
    let report = Verifier::new(&big_log, MAX_BYTES, KEEP_ALL)
        .expect(late_writer, Expect::Exactly(LATE_LINES))
        .verify();
    report.assert_ok();
    assert!(report.archives >= 3, "{report}");
    assert!(big.join("app.log.lock").is_file());

    assert_is_link_to(&log, "../big/app.log");
    assert_eq!(symlinked_archives(&log), Vec::<PathBuf>::new());
    early.assert_refused_the_link();
    fs::remove_file(&log).unwrap();
    let report = Verifier::new(&log, MAX_BYTES, KEEP_ALL)
        .expect(early_writer, Expect::Prefix { acknowledged: 0 })
        .verify();
    report.assert_ok();
}

// ---------------------------------------------------------------------------------------
// Symlinks at archive names: rotation renames them and retention deletes them, never
// touching their targets. (Holds already; kept so it stays that way.)

#[test]
fn symlinks_at_archive_names_are_moved_and_deleted_never_followed() {
    const LINES: u64 = 300;
    const SMALL_MAX_BYTES: u64 = 1024;
    const MAX_FILES: usize = 3;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let victims: Vec<PathBuf> = [1, 3]
        .iter()
        .map(|i| dir.path().join(format!("victim{i}.txt")))
        .collect();
    for victim in &victims {
        fs::write(victim, VICTIM_TEXT).unwrap();
    }
    // app.log.1 and app.log.3 are links, with a gap at .2: the first rotation moves the
    // link at .1 into the gap, later ones move both up and delete them past max_files.
    std::os::unix::fs::symlink("victim1.txt", archive(&log, 1)).unwrap();
    std::os::unix::fs::symlink("victim3.txt", archive(&log, 3)).unwrap();
    let before: Vec<_> = victims.iter().map(|v| victim_state(v)).collect();

    let shared = SharedFile::builder(&log)
        .max_bytes(SMALL_MAX_BYTES)
        .max_files(MAX_FILES)
        .build()
        .unwrap();
    let writer = WriterId {
        process: 0,
        thread: 0,
    };
    for seq in 0..LINES {
        (&shared)
            .write_all(fmt_line(writer, seq).as_bytes())
            .expect("write");
    }
    let stats = shared.stats();
    assert_eq!(
        (
            stats.events_written,
            stats.write_errors,
            stats.rotation_errors
        ),
        (LINES, 0, 0),
        "{stats:?}"
    );
    assert!(stats.rotations >= 20, "{stats:?}");

    let after: Vec<_> = victims.iter().map(|v| victim_state(v)).collect();
    assert_eq!(after, before, "a symlink's target was written or replaced");
    assert_eq!(symlinked_archives(&log), Vec::<PathBuf>::new());
    let report = Verifier::new(&log, SMALL_MAX_BYTES, MAX_FILES)
        .expect(writer, Expect::Newest { total: LINES })
        .verify();
    report.assert_ok();
    assert_eq!(report.archives, MAX_FILES, "{report}");
}

// ---------------------------------------------------------------------------------------
// The log DIRECTORY swapped for a symlink to a victim directory while writers run
// (`mv logs logs.old && ln -s victim logs`), then put back.

/// Small, so that the writers rotate and delete archives often.
const DIR_SWAP_MAX_BYTES: u64 = 4096;
const DIR_SWAP_MAX_FILES: usize = 3;
/// Records each writer hands over before the swap, and after the restore (many more than
/// the files kept hold).
const BEFORE_DIR_SWAP: u64 = 500;
const AFTER_RESTORE: u64 = 500;
/// How long the test holds the lock around the swap: longer than the path check interval
/// (10 ms by default), so every writer looks at the paths on its next hold.
const SWAP_HOLD: Duration = Duration::from_millis(100);

/// One directory entry as the test sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum EntryState {
    /// Inode, length, mtime and content (escaped, so a diff is readable).
    File(u64, u64, (i64, i64), String),
    /// Only the inode: the lock file, whose shared page the writers update all the time.
    LockFile(u64),
    Symlink(PathBuf),
    Other(String),
}

/// Every entry of `dir` (not following a symlink at `dir` itself: `dir` must be a real
/// directory), by name.
fn dir_state(dir: &Path) -> std::collections::BTreeMap<String, EntryState> {
    let meta = fs::symlink_metadata(dir).unwrap();
    assert!(meta.is_dir(), "{} is not a directory", dir.display());
    fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            let meta = fs::symlink_metadata(entry.path()).unwrap();
            let state = if meta.file_type().is_symlink() {
                EntryState::Symlink(fs::read_link(entry.path()).unwrap())
            } else if name.ends_with(".lock") && meta.is_file() {
                EntryState::LockFile(meta.ino())
            } else if meta.is_file() {
                let bytes = fs::read(entry.path()).unwrap();
                EntryState::File(
                    meta.ino(),
                    meta.len(),
                    (meta.mtime(), meta.mtime_nsec()),
                    bytes.escape_ascii().to_string(),
                )
            } else {
                EntryState::Other(format!("{:?}", meta.file_type()))
            };
            (name, state)
        })
        .collect()
}

/// What changed between two [`dir_state`]s, one line per entry, content cut short.
fn dir_changes(
    before: &std::collections::BTreeMap<String, EntryState>,
    after: &std::collections::BTreeMap<String, EntryState>,
) -> String {
    let short = |state: &EntryState| {
        let text = format!("{state:?}");
        if text.len() > 200 {
            format!("{}...", text.chars().take(200).collect::<String>())
        } else {
            text
        }
    };
    let mut names: Vec<&String> = before.keys().chain(after.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter_map(|name| match (before.get(name), after.get(name)) {
            (Some(b), Some(a)) if a == b => None,
            (Some(b), Some(a)) => Some(format!(
                "  {name}: changed\n    was {}\n    now {}",
                short(b),
                short(a)
            )),
            (Some(_), None) => Some(format!("  {name}: removed (renamed or deleted)")),
            (None, Some(a)) => Some(format!("  {name}: created: {}", short(a))),
            (None, None) => None,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[track_caller]
fn assert_dir_unchanged(
    dir: &Path,
    before: &std::collections::BTreeMap<String, EntryState>,
    what: &str,
) {
    let after = dir_state(dir);
    assert!(
        &after == before,
        "{what}; in {}:\n{}",
        dir.display(),
        dir_changes(before, &after)
    );
}

/// The newest sequence number of each process's records now in the log and its archives
/// (read while writers run: a file rotated away meanwhile, or a line still being
/// appended, is skipped).
fn newest_records(log: &Path, max_files: usize) -> std::collections::BTreeMap<u32, u64> {
    let mut newest = std::collections::BTreeMap::new();
    let files = std::iter::once(log.to_path_buf()).chain((1..=max_files).map(|i| archive(log, i)));
    for file in files {
        let Ok(text) = fs::read_to_string(&file) else {
            continue;
        };
        for line in text
            .split_inclusive('\n')
            .filter(|line| line.ends_with(" END\n"))
        {
            let Some((_, record)) = line.split_once("REC p=") else {
                continue;
            };
            let mut fields = record.split(' ');
            let process = fields.next().and_then(|p| p.parse::<u32>().ok());
            let seq = fields
                .nth(1)
                .and_then(|s| s.strip_prefix("s="))
                .and_then(|s| s.parse::<u64>().ok());
            if let (Some(process), Some(seq)) = (process, seq) {
                let entry = newest.entry(process).or_insert(seq);
                *entry = (*entry).max(seq);
            }
        }
    }
    newest
}

/// Holds the writers' lock (an exclusive flock on the lock file, as they take it), so
/// that no writer is inside its critical section while the test moves directories.
fn hold_writers_lock(lock_file: &Path) -> fs::File {
    let file = fs::File::open(lock_file).unwrap();
    file.lock().unwrap();
    file
}

/// Fills the victim directory: `app.log` and `app.log.1` to `.5`, each with its own text.
/// `app.log` is nearly full, so a writer that followed the link would soon rotate it.
fn fill_victim(victim: &Path) {
    fs::create_dir(victim).unwrap();
    for name in [
        "app.log",
        "app.log.1",
        "app.log.2",
        "app.log.3",
        "app.log.4",
        "app.log.5",
    ] {
        let lines = if name == "app.log" { 40 } else { 3 };
        let text: String = (0..lines)
            .map(|i| format!("{name} line {i}: someone else's data, not ours to touch\n"))
            .collect();
        fs::write(victim.join(name), text).unwrap();
    }
}

#[test]
fn a_log_directory_swapped_for_a_symlink_is_never_written_through() {
    let root = tempfile::tempdir().unwrap();
    let logs = root.path().join("logs");
    let logs_old = root.path().join("logs.old");
    let victim = root.path().join("victim");
    fs::create_dir(&logs).unwrap();
    fill_victim(&victim);
    let victim_before = dir_state(&victim);
    let log = logs.join("app.log");

    // One writer of each kind: synchronous (tracing through the layer) and non-blocking.
    // Each has its own sync directory, so that they can be stopped one at a time.
    let mut workers: Vec<Worker> = [WriteMode::Tracing, WriteMode::NonBlocking]
        .into_iter()
        .enumerate()
        .map(|(process, mode)| {
            let sync_dir = root.path().join(format!("sync{process}"));
            fs::create_dir(&sync_dir).unwrap();
            Worker::start(WriterSpec {
                max_bytes: DIR_SWAP_MAX_BYTES,
                max_files: DIR_SWAP_MAX_FILES,
                ..writer_spec(&log, &sync_dir, process as u32, mode)
            })
        })
        .collect();
    let lock_ino = fs::metadata(logs.join("app.log.lock")).unwrap().ino();
    for worker in &workers {
        touch(&worker.spec.sync_dir.join("go"));
    }

    // Phase 1: the writers log, rotate and delete archives beyond max_files. Each one's
    // records reach the files (for the non-blocking writer, handing them over is not
    // enough: its background thread must be writing too).
    let last_archive = archive(&log, DIR_SWAP_MAX_FILES);
    for worker in &mut workers {
        let spec = worker.spec.clone();
        let writer = worker.writer();
        wait_until(
            &mut [worker],
            "records and rotations before the swap",
            || {
                spec.acknowledged(writer) >= BEFORE_DIR_SWAP
                    && last_archive.exists()
                    && newest_records(&log, DIR_SWAP_MAX_FILES).contains_key(&writer.process)
            },
        );
    }

    // Phase 2: the swap, as an operator would type it, between two holds of the lock.
    let held = hold_writers_lock(&logs.join("app.log.lock"));
    fs::rename(&logs, &logs_old).unwrap();
    std::os::unix::fs::symlink(&victim, &logs).unwrap();
    let original_at_swap = dir_state(&logs_old);
    let acknowledged_at_swap: Vec<u64> = workers.iter().map(Worker::acknowledged).collect();
    std::thread::sleep(SWAP_HOLD);
    drop(held);

    // Phase 3: the writers log on through the swapped path.
    for (worker, at_swap) in workers.iter_mut().zip(&acknowledged_at_swap) {
        let spec = worker.spec.clone();
        let writer = worker.writer();
        wait_until(&mut [worker], "records after the swap", || {
            spec.acknowledged(writer) >= at_swap + AFTER_SWAP
        });
    }
    assert_dir_unchanged(
        &victim,
        &victim_before,
        "the writers wrote into the directory the swapped-in symlink points to",
    );
    // Both writers have met the swapped path: a write failed, and they said so.
    for worker in &mut workers {
        let stderr = worker.stderr.clone();
        wait_until(&mut [worker], "a report of the refused directory", || {
            fs::read_to_string(&stderr)
                .unwrap_or_default()
                .lines()
                .any(|line| line.starts_with(REPORT_PREFIX))
        });
    }

    // Phase 4: the directory put back (symlink removed, logs.old renamed to logs), again
    // between two holds of the lock; the original directory was left as it was at the swap.
    let held = hold_writers_lock(&logs_old.join("app.log.lock"));
    assert_dir_unchanged(
        &victim,
        &victim_before,
        "the writers wrote into the directory the swapped-in symlink points to",
    );
    assert_dir_unchanged(
        &logs_old,
        &original_at_swap,
        "while the log path went through a symlink, the writers wrote, rotated or deleted in \
         the original directory: their events must be dropped until it is back",
    );
    fs::remove_file(&logs).unwrap();
    fs::rename(&logs_old, &logs).unwrap();
    let acknowledged_at_restore: Vec<u64> = workers.iter().map(Worker::acknowledged).collect();
    drop(held);

    // Phase 5: the writers resume in the directory that is back: records handed over
    // since the restore reach it (looked for now, while both write: the oldest records
    // soon go with the archives deleted beyond max_files).
    for (worker, at_restore) in workers.iter_mut().zip(&acknowledged_at_restore) {
        let spec = worker.spec.clone();
        let writer = worker.writer();
        wait_until(&mut [worker], "records after the restore", || {
            spec.acknowledged(writer) >= at_restore + AFTER_RESTORE
        });
        wait_until(
            &mut [&mut *worker],
            "a record logged after the restore in the log directory",
            || {
                newest_records(&log, DIR_SWAP_MAX_FILES)
                    .get(&writer.process)
                    .is_some_and(|&newest| newest >= *at_restore)
            },
        );
    }
    // Stopped one at a time, the non-blocking writer (whose queue may still be long)
    // first; the synchronous one then logs on a little, so that its last records are the
    // last written.
    let (mut synchronous, non_blocking) = {
        let mut workers = workers.into_iter();
        (workers.next().unwrap(), workers.next().unwrap())
    };
    touch(&non_blocking.spec.sync_dir.join("stop"));
    let non_blocking = non_blocking.finish();
    let spec = synchronous.spec.clone();
    let writer = synchronous.writer();
    let at_other_stopped = spec.acknowledged(writer);
    wait_until(
        &mut [&mut synchronous],
        "a record after the other writer stopped",
        || spec.acknowledged(writer) > at_other_stopped,
    );
    touch(&spec.sync_dir.join("stop"));
    let synchronous = synchronous.finish();
    let finished = [synchronous, non_blocking];

    assert_dir_unchanged(
        &victim,
        &victim_before,
        "the writers wrote into the directory the swapped-in symlink points to",
    );
    assert_eq!(
        fs::metadata(logs.join("app.log.lock")).unwrap().ino(),
        lock_ino,
        "the writers kept locking the original directory's lock file"
    );
    for worker in &finished {
        worker.assert_refused_the_link();
    }
    // What the directory holds now was all logged after the restore (far more than the
    // files kept): each writer's newest records without a gap, whole, rotated exactly,
    // and the last writer stopped ends with the last record it logged.
    let newest = newest_records(&log, DIR_SWAP_MAX_FILES);
    let [synchronous, _] = &finished;
    assert_eq!(
        newest.get(&synchronous.spec.process).copied(),
        Some(synchronous.attempted() - 1),
        "the last record of the writer stopped last is in the log"
    );
    let report = finished
        .iter()
        .fold(
            Verifier::new(&log, DIR_SWAP_MAX_BYTES, DIR_SWAP_MAX_FILES),
            |verifier, worker| {
                let process = worker.spec.process;
                verifier.expect(
                    WriterId { process, thread: 0 },
                    Expect::Newest {
                        total: newest.get(&process).map_or(0, |&seq| seq + 1),
                    },
                )
            },
        )
        .verify();
    report.assert_ok();
    assert_eq!(report.archives, DIR_SWAP_MAX_FILES, "{report}");
}
