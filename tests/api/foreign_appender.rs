//! Another program appending under the lock, while library writers rotate the file.
//!
//! A program that is not this library may share the log the documented way: take the
//! flock on `app.log.lock`, append whole lines to `app.log`, let go (`flock app.log.lock
//! sh -c 'echo … >> app.log'`). Its bytes must count towards `max_bytes` at once: a
//! library writer that went by a length it remembered would append past the limit.
//!
//! Two writer processes (this test binary re-run as `worker_entry`, one logging through
//! the fmt layer, one writing each line in pieces) log records while this test appends
//! records of a third writer id under the lock, a few thousand times, each only when it
//! fits under `max_bytes` (as a careful program would). The shared verifier then checks
//! every record of all three writers, exactly once and whole, no file over `max_bytes`,
//! and every rotation exactly where the next event did not fit.

use crate::common;

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use common::verifier::{Expect, Verifier};
use common::workload::{Workers, WriteMode, WriterId, WriterSpec, fmt_line, run_writer};

/// Small files, so that there are many rotations.
const MAX_BYTES: u64 = 16 * 1024;
/// Enough that no archive is ever deleted, so every record can be checked.
const MAX_FILES: usize = 100_000;
/// The records the foreign program appends.
const FOREIGN: WriterId = WriterId {
    process: 99,
    thread: 0,
};
const FOREIGN_LINES: u64 = 3_000;
/// How many records the foreign program appends per hold of the lock, at most: flock
/// favours the processes that keep taking it, so one record per hold would take long.
const BURST: u64 = 8;
/// An upper bound on each library writer's records; they stop when the test says so,
/// normally long before, once the foreign program is done.
const MAX_LINES_PER_WRITER: u64 = 50_000;
/// The foreign appends must be done by then, or the test calls it a hang.
const DEADLINE: Duration = Duration::from_secs(60);

/// Child side: one library writer.
#[test]
fn worker_entry() {
    if let Some(spec) = WriterSpec::from_env() {
        let stats = run_writer(&spec);
        assert_eq!(
            (stats.write_errors, stats.events_dropped),
            (0, 0),
            "worker {} failed to write: {stats:?}",
            spec.process
        );
    }
}

/// Appends `lines` records of `FOREIGN` to `log` under the flock on its lock file, taken
/// through a description of its own as another program would, up to `BURST` records per
/// hold. Between two of its holds a library writer must have written (the live file's
/// inode or length changed), so that every burst is followed by a library write that must
/// count it. A record is appended only if it fits under `MAX_BYTES`; otherwise it waits
/// until a library writer has rotated the file. Stops early if `workers_done` says the
/// library writers reached their bound. Returns how many records it appended.
fn append_under_the_lock(log: &Path, lines: u64, workers_done: impl Fn() -> bool) -> u64 {
    let lock = File::open(format!("{}.lock", log.display())).expect("open the lock file");
    let deadline = Instant::now() + DEADLINE;
    let mut seq = 0;
    // The live file's (inode, length) as this program's last hold left it.
    let mut left_at = None;
    while seq < lines && !workers_done() {
        assert!(
            Instant::now() < deadline,
            "appended only {seq} of {lines} records within {DEADLINE:?}"
        );
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                std::thread::sleep(Duration::from_micros(20));
                continue;
            }
            Err(TryLockError::Error(e)) => panic!("cannot lock {}.lock: {e}", log.display()),
        }
        // Under the lock the path names the live file: library writers rotate under it.
        let mut file = OpenOptions::new().append(true).open(log).unwrap();
        let metadata = file.metadata().unwrap();
        let (ino, mut len) = (metadata.ino(), metadata.len());
        // Only once a library writer has written since this program's last hold.
        if left_at != Some((ino, len)) {
            for _ in 0..BURST.min(lines - seq) {
                let line = fmt_line(FOREIGN, seq);
                if len + line.len() as u64 > MAX_BYTES {
                    break;
                }
                file.write_all(line.as_bytes()).unwrap();
                len += line.len() as u64;
                seq += 1;
            }
            left_at = Some((ino, len));
        }
        drop(file);
        lock.unlock().unwrap();
        // Give the library writers their turn.
        std::thread::sleep(Duration::from_micros(20));
    }
    seq
}

#[test]
fn lines_appended_under_the_lock_by_another_program_count_towards_max_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let sync_dir = dir.path().join("sync");
    std::fs::create_dir(&sync_dir).unwrap();
    let log = dir.path().join("logs").join("app.log");
    let specs: Vec<WriterSpec> = [WriteMode::Tracing, WriteMode::Pieces]
        .into_iter()
        .enumerate()
        .map(|(process, mode)| WriterSpec {
            max_bytes: MAX_BYTES,
            max_files: MAX_FILES,
            process: process as u32,
            lines_per_thread: MAX_LINES_PER_WRITER,
            mode,
            until_stopped: true,
            ..WriterSpec::new(log.clone(), sync_dir.clone())
        })
        .collect();
    // Each worker writes `done.<process>.<thread>` once it has stopped.
    let workers_done = || {
        specs.iter().flat_map(WriterSpec::writers).all(|writer| {
            let done = format!("done.{}.{}", writer.process, writer.thread);
            sync_dir.join(done).exists()
        })
    };

    let workers = Workers::start(
        || common::entry_command(&common::entry!(worker_entry)),
        &specs,
    );
    let appended = append_under_the_lock(&log, FOREIGN_LINES, workers_done);
    std::fs::write(sync_dir.join("stop"), b"").unwrap();
    workers.wait();

    let mut verifier =
        Verifier::new(&log, MAX_BYTES, MAX_FILES).expect(FOREIGN, Expect::Exactly(appended));
    for spec in &specs {
        for writer in spec.writers() {
            verifier = verifier.expect(writer, Expect::Exactly(spec.attempted(writer)));
        }
    }
    verifier.verify().assert_ok();
}
