//! A rotated name (`<log>.N`) occupied by a directory, from the start or made mid-run:
//! rotation fails without moving or deleting anything, every failure is counted and one is
//! reported on stderr (a line starting with `tracing-shared-file:`), the events go on to
//! the live file, a failed rotation is tried again only after the back-off (100 ms,
//! doubling, at most 5 s), and rotation resumes once the directory is removed.
//!
//! Each scenario runs in a child process of this test binary, only so that its stderr can
//! be read: `rotation_blocked_entry` becomes the child when it finds its environment
//! variable, and is a no-op test otherwise. Every wait has a deadline.

use crate::common;

use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use common::backoff;
use common::children::{CHILD_DEADLINE, start_entry};
use common::log_files::archive;
use common::verifier::{Expect, Verifier};
use common::workload::{WriterId, fmt_line};
use tracing_shared_file::SharedFile;

const BLOCKED_ENV: &str = "TSF_HOSTILE_BLOCKED";
const BLOCKED_MAX_BYTES: u64 = 1024;

/// Child side (a process of its own only so that its stderr can be read): logs with a
/// directory in the way of rotation, then after it is removed. Asserts as it goes.
#[test]
fn rotation_blocked_entry() {
    let Some(spec) = std::env::var_os(BLOCKED_ENV) else {
        return;
    };
    let spec = spec.into_string().unwrap();
    let (when, dir) = spec.split_once(':').unwrap();
    let dir = Path::new(dir);
    let path = dir.join("app.log");
    let blocked_index = if when == "before" { 1 } else { 3 };
    let blocker = archive(&path, blocked_index);
    let make_blocker = || {
        fs::create_dir(&blocker).unwrap();
        fs::write(blocker.join("keep"), "an operator's data").unwrap();
    };
    if when == "before" {
        make_blocker();
    }
    let log = SharedFile::builder(&path)
        .max_bytes(BLOCKED_MAX_BYTES)
        .max_files(100)
        .build()
        .unwrap();
    let writer = WriterId {
        process: 0,
        thread: 0,
    };
    let next_seq = std::cell::Cell::new(0);
    // Writes the next record; returns whether it had to rotate first (an empty file never
    // rotates; any other file does when the event would take it past max_bytes).
    let write = || {
        let line = fmt_line(writer, next_seq.get());
        let len = fs::metadata(&path).map_or(0, |m| m.len());
        (&log)
            .write_all(line.as_bytes())
            .expect("the event is written");
        next_seq.set(next_seq.get() + 1);
        len > 0 && len + line.len() as u64 > BLOCKED_MAX_BYTES
    };
    if when == "while" {
        while log.stats().rotations < 2 {
            write();
        }
        make_blocker();
    }
    let blocker_ino = fs::metadata(&blocker).unwrap().ino();
    let archives_before: Vec<Vec<u8>> = (1..blocked_index)
        .map(|i| fs::read(archive(&path, i)).unwrap())
        .collect();
    let rotations_before = log.stats().rotations;

    // Events that do not fit, written at once: the first tries to rotate and fails;
    // the rest go to the live file, with a try again only as the back-off allows.
    let started = Instant::now();
    let needing_rotation = (0..40).filter(|_| write()).count() as u64;
    let elapsed = started.elapsed();
    let stats = log.stats();
    assert!(needing_rotation >= 30, "{needing_rotation}");
    assert!(
        (1..=backoff::most_tries_within(elapsed)).contains(&stats.rotation_errors),
        "{} tries in {elapsed:?}",
        stats.rotation_errors
    );
    assert_eq!(stats.rotations, rotations_before, "{stats:?}");
    assert_eq!(stats.write_errors, 0, "{stats:?}");
    assert_eq!(stats.events_written, next_seq.get(), "{stats:?}");
    let live_len = fs::metadata(&path).unwrap().len();
    assert!(
        live_len > 30 * BLOCKED_MAX_BYTES / 10,
        "the events went to the live file: {live_len} bytes"
    );
    let failures = tries_are_spaced_by_the_backoff(&log, &write);
    assert_nothing_moved_or_deleted(&path, blocked_index, blocker_ino, &archives_before);

    // The operator removes the directory: rotation resumes once the back-off is over.
    fs::remove_dir_all(&blocker).unwrap();
    let deadline = Instant::now() + backoff::LONGEST + CHILD_DEADLINE / 4;
    while log.stats().rotations == rotations_before {
        assert!(Instant::now() < deadline, "rotation did not resume");
        write();
        std::thread::sleep(Duration::from_millis(20));
    }
    for _ in 0..60 {
        write();
    }
    let stats = log.stats();
    assert_eq!(stats.rotation_errors, failures, "{stats:?}");
    assert!(stats.rotations >= rotations_before + 5, "{stats:?}");
    assert_eq!(stats.write_errors, 0, "{stats:?}");

    verify_every_line(&path, writer, next_seq.get(), blocked_index);
    println!("\nBLOCKED OK failed_rotations={failures}");
}

/// Writes an event every 10 ms while rotation stays blocked until two more tries have
/// failed: the second comes no sooner than the back-off after the first allows.
/// Returns the failures counted.
fn tries_are_spaced_by_the_backoff(log: &SharedFile, write: &dyn Fn() -> bool) -> u64 {
    let first = log.stats().rotation_errors;
    // For each write during which a try failed: when it began and ended, and the count.
    let mut tries: Vec<(Instant, Instant, u64)> = Vec::new();
    let deadline = Instant::now() + 2 * backoff::LONGEST + CHILD_DEADLINE / 4;
    while tries.len() < 2 {
        assert!(Instant::now() < deadline, "no try again: {tries:?}");
        let began = Instant::now();
        write();
        let errors = log.stats().rotation_errors;
        if errors > first + tries.len() as u64 {
            assert_eq!(errors, first + tries.len() as u64 + 1, "one try per write");
            tries.push((began, Instant::now(), errors));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    // The two tries were at most this far apart; the back-off says at least `wait`.
    let (earlier, later) = (tries[0], tries[1]);
    let at_most = later.1.duration_since(earlier.0);
    let wait = backoff::wait_after(earlier.2);
    assert!(at_most + backoff::SLACK >= wait, "{at_most:?} < {wait:?}");
    later.2
}

/// The directory in the way keeps its inode and content, the archives below it keep
/// theirs, and nothing was rotated past it.
#[track_caller]
fn assert_nothing_moved_or_deleted(
    path: &Path,
    blocked_index: usize,
    blocker_ino: u64,
    archives_before: &[Vec<u8>],
) {
    let blocker = archive(path, blocked_index);
    let meta = fs::symlink_metadata(&blocker).unwrap();
    assert!(meta.is_dir() && meta.ino() == blocker_ino);
    assert_eq!(
        fs::read_to_string(blocker.join("keep")).unwrap(),
        "an operator's data"
    );
    for (i, content) in (1..blocked_index).zip(archives_before) {
        assert_eq!(&fs::read(archive(path, i)).unwrap(), content, "archive {i}");
    }
    assert!(!archive(path, blocked_index + 1).exists());
}

/// Every line is there once and intact; the one file past max_bytes is the one that
/// took the events while rotation was blocked, and it rotated first when it could.
#[track_caller]
fn verify_every_line(path: &Path, writer: WriterId, seq: u64, blocked_index: usize) {
    let report = Verifier::new(path, BLOCKED_MAX_BYTES, 100)
        .expect(writer, Expect::Exactly(seq))
        .verify();
    assert_eq!(report.lines_verified, seq, "{report}");
    assert_eq!(
        (
            report.lost,
            report.duplicated,
            report.torn,
            report.unexpected
        ),
        (0, 0, 0, 0),
        "{report}"
    );
    assert_eq!(report.oversized, 1, "{report}");
    assert_eq!(
        report.problems.len(),
        1,
        "only the oversized file: {report}"
    );
    let oversized: Vec<&Path> = report
        .files
        .iter()
        .filter(|f| f.bytes > BLOCKED_MAX_BYTES)
        .map(|f| f.path.as_path())
        .collect();
    let expected_oversized = report.archives - blocked_index + 1;
    assert_eq!(
        oversized,
        vec![archive(path, expected_oversized)],
        "{report}"
    );
}

fn run_rotation_blocked(when: &str) {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    fs::create_dir(&logs).unwrap();
    let finished = start_entry(
        &common::entry!(rotation_blocked_entry),
        dir.path(),
        when,
        |command| {
            command.env(BLOCKED_ENV, format!("{when}:{}", logs.display()));
        },
    )
    .wait(Instant::now() + CHILD_DEADLINE);
    finished.assert_success();
    assert!(
        finished.stdout.contains("BLOCKED OK"),
        "{}",
        finished.stdout
    );
    let reports = finished.reports();
    assert_eq!(
        reports.len(),
        1,
        "every failed rotation is counted, one is reported:\n{}",
        finished.stderr
    );
    let index = if when == "before" { 1 } else { 3 };
    for needle in [
        "cannot rotate log file".to_string(),
        logs.join(format!("app.log.{index}")).display().to_string(),
    ] {
        assert!(reports[0].contains(&needle), "{needle:?} in {}", reports[0]);
    }
}

#[test]
fn a_directory_at_the_first_rotated_name_blocks_rotation_until_removed() {
    run_rotation_blocked("before");
}

#[test]
fn a_directory_made_mid_run_in_the_rotation_chain_is_left_alone() {
    run_rotation_blocked("while");
}
