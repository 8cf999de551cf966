//! Something that is not this crate's lock file at `<log>.lock` is refused and left
//! untouched: the lock file's first page is mapped and written by every process, so
//! opening a symlink, a hard link or a stranger's file there would write binary words into
//! someone else's data.
//!
//! - At `build()`: a symlink (to a text file, or even to another log's valid lock file), a
//!   foreign text file, a FIFO, a directory and a file with a second hard link are each
//!   refused with `ErrorKind::ForeignLockFile` naming the lock path; the thing at the lock
//!   path and whatever it points to keep their bytes, length and mtime.
//! - Still accepted: an empty lock file, an all-zero one, and one left behind by a process
//!   that was killed (a real child process, SIGKILLed after logging).
//! - After `build()` (`replaced_lock_file`): a lock file swapped for a symlink or a hard
//!   link to a victim while a process logs.

use crate::common;

use common::children::start_entry_env;
use std::fmt;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tracing_shared_file::{Error, ErrorKind, SharedFile};

/// 80 bytes of someone else's text.
pub(crate) const VICTIM_TEXT: &[u8] =
    b"precious data that must survive: not a lock file, and not ours to write to.....\n";
/// The events the repro logs when `build()` wrongly succeeds.
const EVENTS: [&[u8]; 3] = [b"event one\n", b"event two\n", b"event three\n"];
/// How long `build()` may take before the test calls it hung (a FIFO that blocks `open`).
const BUILD_DEADLINE: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------------------
// Snapshots of the things that must stay untouched.

/// Everything about a path that a write through it would change: what it is, which inode,
/// its length, mtime and content (a symlink's target, a directory's entry names).
#[derive(PartialEq, Eq)]
pub(crate) struct Snapshot {
    path: PathBuf,
    kind: &'static str,
    ino: u64,
    links: u64,
    len: u64,
    mtime: (i64, i64),
    content: Vec<u8>,
}

impl Snapshot {
    /// Snapshots `path` itself, not following a symlink (use the target's own path for it).
    fn of(path: &Path) -> Self {
        let meta = fs::symlink_metadata(path)
            .unwrap_or_else(|e| panic!("{} is gone: {e}", path.display()));
        let file_type = meta.file_type();
        let (kind, content) = if file_type.is_symlink() {
            let target = fs::read_link(path).unwrap();
            ("symlink", target.into_os_string().into_encoded_bytes())
        } else if file_type.is_dir() {
            let mut names: Vec<String> = fs::read_dir(path)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            ("directory", names.join("\n").into_bytes())
        } else if file_type.is_fifo() {
            // Reading it could block or consume; its identity and times are enough.
            ("fifo", Vec::new())
        } else {
            ("file", fs::read(path).unwrap())
        };
        Snapshot {
            path: path.to_path_buf(),
            kind,
            ino: meta.ino(),
            links: meta.nlink(),
            len: meta.len(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            content,
        }
    }
}

impl fmt::Debug for Snapshot {
    /// Short: a victim overwritten with a page of binary words would print kilobytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 96;
        let shown = &self.content[..self.content.len().min(SHOWN)];
        write!(
            f,
            "{} {}: ino {} links {} len {} mtime {}.{:09} content \"{}\"{}",
            self.kind,
            self.path.display(),
            self.ino,
            self.links,
            self.len,
            self.mtime.0,
            self.mtime.1,
            shown.escape_ascii(),
            if self.content.len() > SHOWN {
                "..."
            } else {
                ""
            }
        )
    }
}

pub(crate) fn snapshots(paths: &[&Path]) -> Vec<Snapshot> {
    paths.iter().map(|path| Snapshot::of(path)).collect()
}

// ---------------------------------------------------------------------------------------
// Refused at build().

/// Builds `log` (which must be refused because of what sits at its lock path) and checks
/// that every path in `untouched` kept its snapshot, that the error is `ForeignLockFile`
/// naming the lock path, and that the log file got nothing.
///
/// If `build()` wrongly succeeds, the repro's three events are logged first, so that the
/// failure shows the damage done to the victim.
#[track_caller]
fn assert_refused(log: &Path, untouched: &[&Path]) {
    let lock = lock_path(log);
    let before = snapshots(untouched);
    let built = build_with_deadline(log, untouched);
    if let Ok(shared) = &built {
        for event in EVENTS {
            let _ = (&*shared).write_all(event);
        }
    }
    let after = snapshots(untouched);
    assert_eq!(
        after,
        before,
        "build() {} and logging changed what sits at (or behind) the lock path",
        if built.is_ok() { "succeeded" } else { "failed" }
    );

    let err = match built {
        Ok(shared) => panic!(
            "build() accepted the foreign lock file {}; it wrote {} events",
            lock.display(),
            shared.stats().events_written
        ),
        Err(err) => err,
    };
    assert_eq!(err.kind(), ErrorKind::ForeignLockFile, "{err}");
    let message = err.to_string();
    assert!(
        message.contains(&lock.display().to_string()),
        "the error {message:?} does not name the lock file {}",
        lock.display()
    );
    let logged = fs::read(log).unwrap_or_default();
    assert!(
        logged.is_empty(),
        "the log file got data: {:?}",
        logged.escape_ascii().to_string()
    );
}

/// `build()` on a thread, so that one blocked opening a FIFO fails the test instead of
/// hanging it. A FIFO among `fifos` is opened read-write to let a blocked `open` go on.
fn build_with_deadline(log: &Path, fifos: &[&Path]) -> Result<SharedFile, Error> {
    use std::os::unix::fs::OpenOptionsExt;
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn({
        let log = log.to_path_buf();
        move || {
            let built = SharedFile::builder(&log).build();
            let _ = done_tx.send(());
            built
        }
    });
    let hung = done_rx.recv_timeout(BUILD_DEADLINE).is_err();
    if hung {
        // Read-write never blocks on Linux, and unblocks an `open` for either direction.
        let _unblock: Vec<fs::File> = fifos
            .iter()
            .filter(|path| fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_fifo()))
            .filter_map(|path| {
                fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .custom_flags(libc::O_NONBLOCK)
                    .open(path)
                    .ok()
            })
            .collect();
        let built = thread.join().expect("build() panicked");
        panic!(
            "build() blocked for over {BUILD_DEADLINE:?} (it returned {:?} only once unblocked)",
            built.map(|_| ())
        );
    }
    thread.join().expect("build() panicked")
}

pub(crate) fn lock_path(log: &Path) -> PathBuf {
    let mut name = log.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// A temp dir with `victim.txt` (80 bytes of text) in it; returns the log path beside it.
fn dir_with_victim() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim.txt");
    fs::write(&victim, VICTIM_TEXT).unwrap();
    let log = dir.path().join("app.log");
    (dir, log, victim)
}

#[test]
fn a_symlink_to_a_text_file_at_the_lock_path_is_refused() {
    let (_dir, log, victim) = dir_with_victim();
    let lock = lock_path(&log);
    std::os::unix::fs::symlink("victim.txt", &lock).unwrap();
    assert_refused(&log, &[&victim, &lock]);
}

/// A perfectly good lock file, made and in use by another log's `SharedFile` (returned,
/// with the other log's path and its lock file's), at `<dir>/other/app.log.lock`.
fn another_logs_lock_file(dir: &Path) -> (SharedFile, PathBuf, PathBuf) {
    let other_log = dir.join("other/app.log");
    let other = SharedFile::builder(&other_log).build().unwrap();
    (&other).write_all(b"the other log's event\n").unwrap();
    let other_lock = lock_path(&other_log);
    (other, other_log, other_lock)
}

#[test]
fn a_symlink_to_another_logs_valid_lock_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (other, other_log, other_lock) = another_logs_lock_file(dir.path());
    let log = dir.path().join("app.log");
    let lock = lock_path(&log);
    std::os::unix::fs::symlink("other/app.log.lock", &lock).unwrap();

    assert_refused(&log, &[&other_lock, &other_log, &lock]);
    assert_eq!(
        fs::read(&other_log).unwrap(),
        b"the other log's event\n",
        "the other log is untouched"
    );
    drop(other);
}

#[test]
fn a_foreign_text_file_at_the_lock_path_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let lock = lock_path(&log);
    fs::write(&lock, VICTIM_TEXT).unwrap();
    assert_refused(&log, &[&lock]);
}

#[test]
fn a_fifo_at_the_lock_path_is_refused_without_hanging() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let lock = lock_path(&log);
    mkfifo(&lock);
    assert_refused(&log, &[&lock]);
}

fn mkfifo(path: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: plain syscall with a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o666) }, 0, "mkfifo");
}

#[test]
fn a_directory_at_the_lock_path_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let lock = lock_path(&log);
    fs::create_dir(&lock).unwrap();
    let inside = lock.join("keep.txt");
    fs::write(&inside, VICTIM_TEXT).unwrap();
    assert_refused(&log, &[&lock, &inside]);
}

#[test]
fn a_hard_link_to_a_text_file_at_the_lock_path_is_refused() {
    let (_dir, log, victim) = dir_with_victim();
    let lock = lock_path(&log);
    fs::hard_link(&victim, &lock).unwrap();
    assert_refused(&log, &[&victim, &lock]);
}

#[test]
fn a_hard_link_to_an_empty_file_at_the_lock_path_is_refused() {
    // Empty, the file would be accepted; its second name alone makes it not ours.
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("empty-victim");
    fs::write(&victim, b"").unwrap();
    let log = dir.path().join("app.log");
    let lock = lock_path(&log);
    fs::hard_link(&victim, &lock).unwrap();
    assert_refused(&log, &[&victim, &lock]);
}

#[test]
fn a_hard_link_to_another_logs_valid_lock_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (other, other_log, other_lock) = another_logs_lock_file(dir.path());
    let log = dir.path().join("app.log");
    let lock = lock_path(&log);
    fs::hard_link(&other_lock, &lock).unwrap();

    assert_refused(&log, &[&other_lock, &other_log]);
    drop(other);
}

// ---------------------------------------------------------------------------------------
// Accepted at build().

/// Builds `log`, logs the three events and checks they are all that the file holds
/// (after `already`, what an earlier process logged).
#[track_caller]
fn assert_accepted(log: &Path, already: &[u8]) {
    let shared = SharedFile::builder(log)
        .build()
        .unwrap_or_else(|e| panic!("build() refused a lock file of ours: {e}"));
    for event in EVENTS {
        (&shared).write_all(event).expect("write an event");
    }
    let stats = shared.stats();
    assert_eq!(
        (
            stats.events_written,
            stats.write_errors,
            stats.events_dropped
        ),
        (EVENTS.len() as u64, 0, 0),
        "{stats:?}"
    );
    let expected = [already, &EVENTS.concat()].concat();
    assert_eq!(
        fs::read(log).unwrap().escape_ascii().to_string(),
        expected.escape_ascii().to_string()
    );
    let lock = fs::symlink_metadata(lock_path(log)).unwrap();
    assert!(lock.is_file() && lock.nlink() == 1, "{lock:?}");
}

#[test]
fn an_empty_lock_file_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    fs::write(lock_path(&log), b"").unwrap();
    assert_accepted(&log, b"");
}

#[test]
fn an_all_zero_lock_file_is_accepted() {
    for len in [4096, 10] {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("app.log");
        fs::write(lock_path(&log), vec![0u8; len]).unwrap();
        assert_accepted(&log, b"");
    }
}

const KILLED_ENV: &str = "TSF_FOREIGN_LOCK_KILLED_DIR";
const KILLED_EVENTS: [&[u8]; 2] = [
    b"from the killed process 1\n",
    b"from the killed process 2\n",
];

/// Child side: logs, says so, and waits to be killed (exits by itself after a minute, so
/// that a test that died first leaves nothing behind).
#[test]
fn killed_writer_entry() {
    let Some(dir) = std::env::var_os(KILLED_ENV) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let shared = SharedFile::builder(dir.join("app.log")).build().unwrap();
    for event in KILLED_EVENTS {
        (&shared).write_all(event).unwrap();
    }
    fs::write(dir.join("logged"), b"").unwrap();
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn a_lock_file_left_by_a_killed_process_is_accepted() {
    use std::os::unix::process::ExitStatusExt;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let out = tempfile::tempdir().unwrap();
    let entry = common::entry!(killed_writer_entry);
    let mut child = start_entry_env(&entry, out.path(), "writer", KILLED_ENV, dir.path())
        .with_deadline(Duration::from_secs(30));
    child.wait_for_file(&dir.path().join("logged"));
    let status = child.kill().status;
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    // What the dead process left is a real, used lock file, not an empty one.
    let page = fs::read(lock_path(&log)).unwrap();
    assert!(
        page.iter().any(|&b| b != 0),
        "the killed process left an empty or all-zero lock file ({} bytes)",
        page.len()
    );

    assert_accepted(&log, &KILLED_EVENTS.concat());
}
