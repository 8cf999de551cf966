//! The non-blocking writer: bounded queue, blocking or lossy when full, flush on drop.
//!
//! The background thread is held up by taking the log's flock through another open file
//! description, exactly as another process holding the lock would.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::common::log_files::hold_lock;
use tracing_shared_file::SharedFile;

const EVENT: &[u8] = b"an event of about sixty bytes, to fill the queue quickly\n";

fn build(dir: &tempfile::TempDir) -> SharedFile {
    SharedFile::builder(dir.path().join("app.log"))
        .build()
        .unwrap()
}

fn lines(log: &SharedFile) -> usize {
    std::fs::read_to_string(log.path()).unwrap().lines().count()
}

#[test]
fn dropping_the_guard_writes_everything_queued() {
    let dir = tempfile::tempdir().unwrap();
    let log = build(&dir);
    let (mut writer, guard) = log.non_blocking();
    let lock = hold_lock(log.path());
    for _ in 0..1_000 {
        writer.write_all(EVENT).unwrap();
    }
    assert_eq!(
        lines(&log),
        0,
        "nothing can be written while another holds the lock"
    );
    lock.unlock().unwrap();
    drop(guard);
    assert_eq!(lines(&log), 1_000);
    assert_eq!(log.stats().events_written, 1_000);
}

#[test]
fn a_full_queue_makes_the_caller_wait_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let log = build(&dir);
    let (writer, guard) = log
        .non_blocking_builder()
        .max_queued_bytes(10 * EVENT.len())
        .finish();
    let lock = hold_lock(log.path());
    let finished = AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut writer = writer.clone();
            for _ in 0..100 {
                writer.write_all(EVENT).unwrap();
            }
            finished.store(true, Ordering::SeqCst);
        });
        // The producer fills the queue (and the batch in the thread's hands), then waits.
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            !finished.load(Ordering::SeqCst),
            "the producer waits for room"
        );
        lock.unlock().unwrap();
    });
    drop(guard);
    assert_eq!(lines(&log), 100, "nothing was lost");
    assert_eq!(log.stats().events_dropped, 0);
}

#[test]
fn a_lossy_writer_drops_and_counts_instead_of_waiting() {
    let dir = tempfile::tempdir().unwrap();
    let log = build(&dir);
    let (mut writer, guard) = log
        .non_blocking_builder()
        .max_queued_bytes(10 * EVENT.len())
        .lossy(true)
        .finish();
    let lock = hold_lock(log.path());
    let started = Instant::now();
    for _ in 0..1_000 {
        writer.write_all(EVENT).unwrap();
    }
    // No wait for room: the loop finished with the lock still held elsewhere.
    let stats = log.stats();
    assert!(stats.events_dropped >= 1_000 - 21, "{stats:?}");
    lock.unlock().unwrap();
    drop(guard);
    let stats = log.stats();
    assert_eq!(
        stats.events_written + stats.events_dropped,
        1_000,
        "{stats:?}"
    );
    assert_eq!(lines(&log) as u64, stats.events_written);
    assert!(started.elapsed() < Duration::from_secs(60));
}

#[test]
fn events_after_the_guard_is_dropped_are_written_synchronously() {
    let dir = tempfile::tempdir().unwrap();
    let log = build(&dir);
    let (mut writer, guard) = log.non_blocking();
    drop(guard);
    writer.write_all(EVENT).unwrap();
    assert_eq!(
        lines(&log),
        1,
        "written at once, not lost in a queue nobody drains"
    );
}

#[test]
fn an_event_larger_than_the_queue_is_still_taken() {
    let dir = tempfile::tempdir().unwrap();
    let log = build(&dir);
    let (mut writer, guard) = log.non_blocking_builder().max_queued_bytes(16).finish();
    writer.write_all(EVENT).unwrap();
    drop(guard);
    assert_eq!(lines(&log), 1);
}
