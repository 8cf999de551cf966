//! The files of a rotated log: archive names, waiting for a rotation, and record lines
//! read back from them.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::children::CHILD_DEADLINE;
use super::workload::{WriterId, record};

/// Small enough that the writers rotate often.
pub const ROTATING_MAX_BYTES: u64 = 16 * 1024;
/// Large enough that no archive is deleted, so every line can be accounted for.
pub const KEEP_ALL: usize = 100_000;

/// Waits until `path` exists (a rotation happened), so that damage lands mid-run.
pub fn wait_for_path(path: &Path) {
    let deadline = Instant::now() + CHILD_DEADLINE;
    while fs::symlink_metadata(path).is_err() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

pub fn archive(log: &Path, index: usize) -> PathBuf {
    let mut name = log.as_os_str().to_owned();
    name.push(format!(".{index}"));
    PathBuf::from(name)
}

/// The writer and sequence of an intact record line (the fmt layer's prefix, then exactly
/// the record `workload::record` makes for them), or `None` for anything else.
pub fn parse_record(line: &str) -> Option<(WriterId, u64)> {
    let start = line.find("REC ")?;
    let (prefix, rest) = line.split_at(start);
    // The ready-made layers add `pid=N ` after the level.
    let level = match prefix.find(" pid=") {
        Some(at) => &prefix[..at],
        None => prefix.strip_suffix(" workload: ")?,
    };
    if !(level.ends_with("  INFO") && prefix.ends_with(" workload: ") && prefix.contains('T')) {
        return None;
    }
    let mut fields = rest.split(' ').skip(1);
    let mut field = |name: &str| fields.next()?.strip_prefix(name);
    let process = field("p=")?.parse().ok()?;
    let thread = field("t=")?.parse().ok()?;
    let seq = field("s=")?.parse().ok()?;
    let writer = WriterId { process, thread };
    (rest == record(writer, seq)).then_some((writer, seq))
}

/// Takes the flock of `log`'s lock file (`<log>.lock`, created if missing) through an
/// open file description of the test's own, as another process would: a writer waits for
/// it until the returned file is dropped or unlocked.
pub fn hold_lock(log: &Path) -> fs::File {
    let lock_path = lock_file_of(log);
    let lock = fs::File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", lock_path.display()));
    lock.lock().unwrap();
    lock
}

/// Whether another process could take `log`'s lock right now: a description of the
/// test's own tries the flock without waiting, and closing it lets go at once.
pub fn lock_is_free(log: &Path) -> bool {
    let lock_path = lock_file_of(log);
    let lock = fs::File::options()
        .read(true)
        .write(true)
        .open(&lock_path)
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", lock_path.display()));
    lock.try_lock().is_ok()
}

fn lock_file_of(log: &Path) -> PathBuf {
    let mut lock_path = log.as_os_str().to_owned();
    lock_path.push(".lock");
    PathBuf::from(lock_path)
}

/// What a lock-holder child does: holds the lock of `<dir>/app.log`, creates
/// `<dir>/held` once it has it, and lets go when `<dir>/release` appears or at `until`
/// (so that it never outlives its test).
pub fn hold_lock_until_released(dir: &Path, until: Instant) {
    let _lock = hold_lock(&dir.join("app.log"));
    fs::write(dir.join("held"), b"").unwrap();
    while !dir.join("release").exists() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(5));
    }
}
