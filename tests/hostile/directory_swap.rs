//! The log's DIRECTORY swapped for a symlink to another directory while writers run (`mv
//! logs logs.old && ln -s victim logs`), then put back: the running writers touch nothing
//! in the victim directory and nothing in the original one, dropping, counting and
//! reporting their events, and keep the original lock file; once the directory is back
//! they resume there.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::symlink_workers::{AFTER_SWAP, Outcome, Worker, wait_until, writer_spec};
use crate::common;
use common::children::{REPORT_PREFIX, touch};
use common::log_files::archive;
use common::verifier::{Expect, Verifier};
use common::workload::{WriteMode, WriterId, WriterSpec};

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
fn dir_state(dir: &Path) -> BTreeMap<String, EntryState> {
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
    before: &BTreeMap<String, EntryState>,
    after: &BTreeMap<String, EntryState>,
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
fn assert_dir_unchanged(dir: &Path, before: &BTreeMap<String, EntryState>, what: &str) {
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
fn newest_records(log: &Path, max_files: usize) -> BTreeMap<u32, u64> {
    let mut newest = BTreeMap::new();
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
    let scene = Scene::new(root.path());
    let mut workers = scene.start_writers();
    let lock_ino = fs::metadata(scene.logs.join("app.log.lock")).unwrap().ino();
    scene.log_and_rotate_before_the_swap(&mut workers);
    let original_at_swap = scene.swap_in_the_symlink(&mut workers);
    let at_restore = scene.put_the_directory_back(&workers, &original_at_swap);
    scene.resume_in_the_directory_that_is_back(&mut workers, &at_restore);
    let finished = stop_one_at_a_time(workers);
    scene.assert_nothing_went_through_the_link(&finished, lock_ino);
}

/// The directories of the test: `logs` (the log's), `logs.old` (where it is moved), and
/// `victim` (where the swapped-in symlink points), with the victim's state at the start.
struct Scene {
    logs: PathBuf,
    logs_old: PathBuf,
    victim: PathBuf,
    log: PathBuf,
    victim_before: BTreeMap<String, EntryState>,
}

const VICTIM_TOUCHED: &str =
    "the writers wrote into the directory the swapped-in symlink points to";

impl Scene {
    fn new(root: &Path) -> Self {
        let logs = root.join("logs");
        let victim = root.join("victim");
        fs::create_dir(&logs).unwrap();
        fill_victim(&victim);
        Scene {
            log: logs.join("app.log"),
            logs_old: root.join("logs.old"),
            victim_before: dir_state(&victim),
            logs,
            victim,
        }
    }

    /// One writer of each kind: synchronous (tracing through the layer) and non-blocking.
    /// Each has its own sync directory, so that they can be stopped one at a time.
    fn start_writers(&self) -> Vec<Worker> {
        let root = self.logs.parent().unwrap();
        let workers: Vec<Worker> = [WriteMode::Tracing, WriteMode::NonBlocking]
            .into_iter()
            .enumerate()
            .map(|(process, mode)| {
                let sync_dir = root.join(format!("sync{process}"));
                fs::create_dir(&sync_dir).unwrap();
                Worker::start(WriterSpec {
                    max_bytes: DIR_SWAP_MAX_BYTES,
                    max_files: DIR_SWAP_MAX_FILES,
                    ..writer_spec(&self.log, &sync_dir, process as u32, mode)
                })
            })
            .collect();
        for worker in &workers {
            touch(&worker.spec.sync_dir.join("go"));
        }
        workers
    }

    /// Phase 1: the writers log, rotate and delete archives beyond max_files. Each one's
    /// records reach the files (for the non-blocking writer, handing them over is not
    /// enough: its background thread must be writing too).
    fn log_and_rotate_before_the_swap(&self, workers: &mut [Worker]) {
        let last_archive = archive(&self.log, DIR_SWAP_MAX_FILES);
        for worker in workers {
            let spec = worker.spec.clone();
            let writer = worker.writer();
            wait_until(
                &mut [worker],
                "records and rotations before the swap",
                || {
                    spec.acknowledged(writer) >= BEFORE_DIR_SWAP
                        && last_archive.exists()
                        && newest_records(&self.log, DIR_SWAP_MAX_FILES)
                            .contains_key(&writer.process)
                },
            );
        }
    }

    /// Phase 2: the swap, as an operator would type it, between two holds of the lock;
    /// then the writers log on through the swapped path, and meet it: a write fails, and
    /// they say so. Returns the original directory as it was at the swap.
    fn swap_in_the_symlink(&self, workers: &mut [Worker]) -> BTreeMap<String, EntryState> {
        let held = hold_writers_lock(&self.logs.join("app.log.lock"));
        fs::rename(&self.logs, &self.logs_old).unwrap();
        std::os::unix::fs::symlink(&self.victim, &self.logs).unwrap();
        let original_at_swap = dir_state(&self.logs_old);
        let acknowledged_at_swap: Vec<u64> = workers.iter().map(Worker::acknowledged).collect();
        std::thread::sleep(SWAP_HOLD);
        drop(held);

        for (worker, at_swap) in workers.iter_mut().zip(&acknowledged_at_swap) {
            let spec = worker.spec.clone();
            let writer = worker.writer();
            wait_until(&mut [worker], "records after the swap", || {
                spec.acknowledged(writer) >= at_swap + AFTER_SWAP
            });
        }
        assert_dir_unchanged(&self.victim, &self.victim_before, VICTIM_TOUCHED);
        for worker in workers {
            let stderr = worker.stderr_path();
            wait_until(&mut [worker], "a report of the refused directory", || {
                fs::read_to_string(&stderr)
                    .unwrap_or_default()
                    .lines()
                    .any(|line| line.starts_with(REPORT_PREFIX))
            });
        }
        original_at_swap
    }

    /// Phase 3: the directory put back (symlink removed, logs.old renamed to logs), again
    /// between two holds of the lock; the original directory was left as it was at the
    /// swap. Returns what each writer had handed over at the restore.
    fn put_the_directory_back(
        &self,
        workers: &[Worker],
        original_at_swap: &BTreeMap<String, EntryState>,
    ) -> Vec<u64> {
        let held = hold_writers_lock(&self.logs_old.join("app.log.lock"));
        assert_dir_unchanged(&self.victim, &self.victim_before, VICTIM_TOUCHED);
        assert_dir_unchanged(
            &self.logs_old,
            original_at_swap,
            "while the log path went through a symlink, the writers wrote, rotated or deleted \
             in the original directory: their events must be dropped until it is back",
        );
        fs::remove_file(&self.logs).unwrap();
        fs::rename(&self.logs_old, &self.logs).unwrap();
        let acknowledged_at_restore = workers.iter().map(Worker::acknowledged).collect();
        drop(held);
        acknowledged_at_restore
    }

    /// Phase 4: the writers resume in the directory that is back: records handed over
    /// since the restore reach it (looked for now, while both write: the oldest records
    /// soon go with the archives deleted beyond max_files).
    fn resume_in_the_directory_that_is_back(&self, workers: &mut [Worker], at_restore: &[u64]) {
        for (worker, at_restore) in workers.iter_mut().zip(at_restore) {
            let spec = worker.spec.clone();
            let writer = worker.writer();
            wait_until(&mut [worker], "records after the restore", || {
                spec.acknowledged(writer) >= at_restore + AFTER_RESTORE
            });
            wait_until(
                &mut [&mut *worker],
                "a record logged after the restore in the log directory",
                || {
                    newest_records(&self.log, DIR_SWAP_MAX_FILES)
                        .get(&writer.process)
                        .is_some_and(|&newest| newest >= *at_restore)
                },
            );
        }
    }

    /// The victim untouched, the original lock file kept, every writer's refusal counted
    /// and reported; what the directory holds now was all logged after the restore (far
    /// more than the files kept): each writer's newest records without a gap, whole,
    /// rotated exactly, and the last writer stopped ends with the last record it logged.
    fn assert_nothing_went_through_the_link(&self, finished: &[Outcome; 2], lock_ino: u64) {
        assert_dir_unchanged(&self.victim, &self.victim_before, VICTIM_TOUCHED);
        assert_eq!(
            fs::metadata(self.logs.join("app.log.lock")).unwrap().ino(),
            lock_ino,
            "the writers kept locking the original directory's lock file"
        );
        for worker in finished {
            worker.assert_refused_the_link();
        }
        let newest = newest_records(&self.log, DIR_SWAP_MAX_FILES);
        let [synchronous, _] = finished;
        assert_eq!(
            newest.get(&synchronous.spec.process).copied(),
            Some(synchronous.attempted() - 1),
            "the last record of the writer stopped last is in the log"
        );
        let report = finished
            .iter()
            .fold(
                Verifier::new(&self.log, DIR_SWAP_MAX_BYTES, DIR_SWAP_MAX_FILES),
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
}

/// Stops the writers one at a time, the non-blocking writer (whose queue may still be
/// long) first; the synchronous one then logs on a little, so that its last records are
/// the last written. Returns `[synchronous, non_blocking]`.
fn stop_one_at_a_time(workers: Vec<Worker>) -> [Outcome; 2] {
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
    [synchronous.finish(), non_blocking]
}
