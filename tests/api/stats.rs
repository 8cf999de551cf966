//! `SharedFile::stats()` counts what this process did.

use std::io::Write;
use std::time::Duration;

use crate::common::log_files::hold_lock;
use tracing_shared_file::SharedFile;

#[test]
fn counters_follow_writes_and_rotations() {
    let dir = tempfile::tempdir().unwrap();
    let log = SharedFile::builder(dir.path().join("app.log"))
        .max_bytes(1000)
        .max_files(100)
        .build()
        .unwrap();
    let line = [b'x'; 99].iter().chain(b"\n").copied().collect::<Vec<u8>>();
    for _ in 0..95 {
        (&log).write_all(&line).unwrap();
    }
    let stats = log.stats();
    assert_eq!(stats.events_written, 95);
    assert_eq!(stats.bytes_written, 9_500);
    // Ten 100-byte lines fill a 1000-byte file exactly; the 11th rotates.
    assert_eq!(stats.rotations, 9);
    assert!(dir.path().join("app.log.9").exists());
    assert!(!dir.path().join("app.log.10").exists());
    assert_eq!(stats.write_errors, 0);
    assert_eq!(stats.rotation_errors, 0);
    assert_eq!(stats.events_dropped, 0);
    assert!(stats.lock_wait_max <= stats.lock_wait_total);

    let clone = log.clone();
    (&clone).write_all(&line).unwrap();
    assert_eq!(
        log.stats().events_written,
        96,
        "clones share one set of counters"
    );
}

#[test]
fn lock_wait_counts_time_blocked_behind_another_holder() {
    let dir = tempfile::tempdir().unwrap();
    let log = SharedFile::builder(dir.path().join("app.log"))
        .build()
        .unwrap();
    // A second open file description conflicts with the library's own, exactly as
    // another process's would.
    let other = hold_lock(&dir.path().join("app.log"));
    let held_for = Duration::from_millis(100);
    let (about_to_write, started) = std::sync::mpsc::channel();
    let writer = {
        let log = log.clone();
        std::thread::spawn(move || {
            about_to_write.send(()).unwrap();
            (&log).write_all(b"waited for the lock\n").unwrap()
        })
    };
    // Measured from when the writer starts, not from when its thread was spawned.
    started.recv().unwrap();
    std::thread::sleep(held_for);
    assert_eq!(
        log.stats().events_written,
        0,
        "the write waits for the lock"
    );
    other.unlock().unwrap();
    writer.join().unwrap();

    let stats = log.stats();
    assert_eq!(stats.events_written, 1);
    // The wait begins a moment after the writer said it would write.
    assert!(stats.lock_wait_max >= held_for * 9 / 10, "{stats:?}");
    assert!(stats.lock_wait_total >= stats.lock_wait_max);
}
