//! The non-blocking writer's queue stays within a fixed multiple of `max_queued_bytes`,
//! counting everything it holds: the events' bytes and the bookkeeping of each event.
//!
//! Tiny events are the hard case: 1-byte events cost more in bookkeeping than in bytes.
//! Each measurement runs in a fresh child process (this test binary, re-run with
//! `TSF_QUEUE_MEMORY_CHILD` set), whose peak resident memory (`VmHWM`) is read before and
//! after filling the queue. The test holds the log's lock meanwhile, from its own process,
//! so the background thread cannot write anything and the queue stays full; the producer
//! pushes far more than fits, with `lossy(true)`, so the surplus is dropped and counted.

use crate::common;

use common::children::{start_entry_env, touch};
use std::fs;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use tracing_shared_file::SharedFile;

/// The most the queue may add to the process's peak memory, in multiples of
/// `max_queued_bytes`.
const ALLOWED_MULTIPLE: f64 = 4.0;
const MAX_QUEUED_BYTES: usize = 1024 * 1024;
const CHILD_ENV: &str = "TSF_QUEUE_MEMORY_CHILD";
/// How long a step may take before the test calls it hung.
const DEADLINE: Duration = Duration::from_secs(30);

/// The process's peak resident memory so far, in bytes.
fn peak_rss() -> u64 {
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().strip_suffix("kB"))
        .and_then(|kib| kib.trim().parse().ok())
        .expect("no VmHWM in /proc/self/status");
    kib * 1024
}

/// Child side: builds the writer, waits until the test holds the lock, fills the queue
/// and measures, then lets the queue drain once the test lets go of the lock.
#[test]
fn producer_entry() {
    let Some(config) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let (dir, sizes) = config.to_str().unwrap().split_once(';').unwrap();
    let dir = PathBuf::from(dir);
    let (event_len, events) = sizes.split_once(',').unwrap();
    let (event_len, events): (usize, u64) = (event_len.parse().unwrap(), events.parse().unwrap());

    let log = SharedFile::builder(dir.join("app.log"))
        .max_bytes(1 << 40)
        .build()
        .unwrap();
    let (mut writer, guard) = log
        .non_blocking_builder()
        .max_queued_bytes(MAX_QUEUED_BYTES)
        .lossy(true)
        .finish();
    let mut event = vec![b'x'; event_len];
    *event.last_mut().unwrap() = b'\n';
    touch(&dir.join("built"));
    common::workload::wait_for_file(&dir.join("locked"));

    let before = peak_rss();
    for _ in 0..events {
        // One `write` is one event.
        assert_eq!(writer.write(&event).unwrap(), event_len);
    }
    let after = peak_rss();
    fs::write(
        dir.join("measured"),
        format!("{}", after.saturating_sub(before)),
    )
    .unwrap();

    common::workload::wait_for_file(&dir.join("released"));
    drop(guard);
    let stats = log.stats();
    fs::write(
        dir.join("stats"),
        format!(
            "events_written={} bytes_written={} events_dropped={} write_errors={}",
            stats.events_written, stats.bytes_written, stats.events_dropped, stats.write_errors
        ),
    )
    .unwrap();
}

/// Fills a queue of `MAX_QUEUED_BYTES` with `events` events of `event_len` bytes while the
/// lock is held elsewhere; checks the memory bound, then that every event was written or
/// counted as dropped.
fn queue_memory_stays_bounded(event_len: usize, events: u64) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let spec = format!("{};{event_len},{events}", dir.path().display());
    let entry = common::entry!(producer_entry);
    let mut producer =
        start_entry_env(&entry, dir.path(), "producer", CHILD_ENV, spec).with_deadline(DEADLINE);

    // Another process holds the lock, so the background thread cannot write.
    producer.wait_for_file(&dir.path().join("built"));
    let lock = common::log_files::try_hold_lock(&log)
        .expect("nothing else should hold the lock before the producer logs");
    touch(&dir.path().join("locked"));
    producer.wait_for_file(&dir.path().join("measured"));
    lock.unlock().unwrap();
    touch(&dir.path().join("released"));
    producer.finish().assert_exited_ok();

    let growth: u64 = fs::read_to_string(dir.path().join("measured"))
        .unwrap()
        .parse()
        .unwrap();
    let multiple = growth as f64 / MAX_QUEUED_BYTES as f64;
    // Shown with `--nocapture`: the figure the README gives.
    println!("{event_len}-byte events: peak memory grew by {multiple:.2} times max_queued_bytes");
    assert!(
        multiple <= ALLOWED_MULTIPLE,
        "{events} events of {event_len} bytes, max_queued_bytes {MAX_QUEUED_BYTES}: peak memory \
         grew by {growth} bytes, {multiple:.2} times max_queued_bytes (allowed: {ALLOWED_MULTIPLE})"
    );

    // Every event pushed was written or counted as dropped, and the file holds exactly the
    // ones written.
    let stats = fs::read_to_string(dir.path().join("stats")).unwrap();
    let stat = |name: &str| -> u64 {
        stats
            .split(' ')
            .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
            .and_then(|value| value.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {stats}"))
    };
    let (written, dropped) = (stat("events_written"), stat("events_dropped"));
    assert_eq!(written + dropped, events, "{stats}");
    assert!(written > 0, "{stats}");
    assert_eq!(stat("write_errors"), 0, "{stats}");
    assert_eq!(stat("bytes_written"), written * event_len as u64, "{stats}");
    assert_eq!(
        fs::metadata(&log).unwrap().len(),
        written * event_len as u64,
        "the file holds exactly the events written"
    );
}

#[test]
fn a_full_queue_of_one_byte_events_stays_within_the_memory_bound() {
    queue_memory_stays_bounded(1, 4_000_000);
}

#[test]
fn a_full_queue_of_120_byte_events_stays_within_the_memory_bound() {
    queue_memory_stays_bounded(120, 100_000);
}
