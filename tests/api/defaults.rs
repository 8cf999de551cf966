//! The documented defaults, as constants and as behaviour: a `SharedFile` built with no
//! options rotates before a write would take the file past 10 MiB, keeps 5 numbered
//! archives, and looks the path up again once 10 ms have passed since the last look.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::log_files::archive;
use tracing_shared_file::{
    DEFAULT_MAX_BATCH_BYTES, DEFAULT_MAX_BYTES, DEFAULT_MAX_FILES, DEFAULT_MAX_QUEUED_BYTES,
    DEFAULT_PATH_CHECK_INTERVAL, SharedFile,
};

const MIB: usize = 1024 * 1024;

#[test]
fn the_default_constants_are_the_documented_values() {
    assert_eq!(DEFAULT_MAX_BYTES, 10 * 1024 * 1024);
    assert_eq!(DEFAULT_MAX_FILES, 5);
    assert_eq!(DEFAULT_PATH_CHECK_INTERVAL, Duration::from_millis(10));
    assert_eq!(DEFAULT_MAX_QUEUED_BYTES, 8 * MIB);
    assert_eq!(DEFAULT_MAX_BATCH_BYTES, 256 * 1024);
}

/// A line of exactly 1 MiB, newline included, made of `fill`.
fn mib_line(fill: u8) -> Vec<u8> {
    let mut line = vec![fill; MIB - 1];
    line.push(b'\n');
    line
}

#[test]
fn with_no_options_files_rotate_at_10_mib_and_5_archives_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("app.log");
    let log = SharedFile::builder(&log_path).build().unwrap();
    // Ten 1 MiB lines fill a file exactly; the eleventh starts the next. Seven files'
    // worth plus one line: seven rotations.
    let files = 8;
    for file in 0..files {
        let lines = if file + 1 == files { 1 } else { 10 };
        for _ in 0..lines {
            (&log).write_all(&mib_line(b'a' + file)).unwrap();
        }
    }
    let stats = log.stats();
    assert_eq!(
        (stats.rotations, stats.rotation_errors),
        (7, 0),
        "{stats:?}"
    );
    assert_eq!(fs::read(&log_path).unwrap(), mib_line(b'a' + 7));
    // app.log.1 (newest) to app.log.5; the two oldest files were deleted.
    for index in 1..=5 {
        let content = fs::read(archive(&log_path, index)).unwrap();
        let fill = b'a' + 7 - index as u8;
        assert_eq!(content.len(), 10 * MIB, "app.log.{index}");
        assert!(
            content.chunks(MIB).all(|line| line == mib_line(fill)),
            "app.log.{index} does not hold the ten lines of file {}",
            fill as char
        );
    }
    assert!(!archive(&log_path, 6).exists());
    assert_eq!(
        fs::read_dir(dir.path()).unwrap().count(),
        7,
        "the live file, five archives and the lock file"
    );
}

/// Appends `line` and returns when the write began and ended.
fn timed_write(log: &SharedFile, line: &str) -> (Instant, Instant) {
    let began = Instant::now();
    (&*log).write_all(line.as_bytes()).unwrap();
    (began, Instant::now())
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn with_no_options_a_moved_file_is_noticed_once_10_ms_have_passed() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("app.log");
    let log = SharedFile::builder(&log_path).build().unwrap();
    // The path is looked up at most every 10 ms (by a clock of a few ms' resolution):
    // a write a millisecond after one that looked does not look, so its line follows the
    // open file; one 30 ms later does. A stalled machine may spread the first two writes
    // apart: then try again, a bounded number of times.
    for attempt in 0..50 {
        // A name of its own per attempt (an attempt given up leaves its file).
        let moved = dir.path().join(format!("moved-{attempt}.log"));
        // More than the interval since the last look: this write looks.
        std::thread::sleep(Duration::from_millis(30));
        let (looked, _) = timed_write(&log, "looked\n");
        fs::rename(&log_path, &moved).unwrap();
        let (_, followed) = timed_write(&log, "followed the open file\n");
        if followed.duration_since(looked) > Duration::from_millis(3) {
            // A file at the path now (a late second write looked) is moved aside, not
            // removed: on Windows a removed file keeps its name while the writer holds it.
            fs::rename(&log_path, dir.path().join(format!("aside-{attempt}.log"))).ok();
            continue;
        }
        std::thread::sleep(Duration::from_millis(30));
        timed_write(&log, "at the path again\n");
        assert_eq!(
            read(&moved),
            "looked\nfollowed the open file\n",
            "attempt {attempt}"
        );
        assert_eq!(read(&log_path), "at the path again\n", "attempt {attempt}");
        return;
    }
    panic!("two writes were never within 3 ms of each other");
}
