//! The non-blocking writer's batches:
//!
//! - `max_batch_bytes` bounds what one hold of the lock writes: a backlog of 64 KiB with
//!   a bound of 4 KiB goes out in at least 16 `write(2)` calls of the background thread
//!   (counted in `/proc/self/task/<tid>/io`), not in one;
//! - queueing never waits for a write in progress: while the background thread waits in
//!   `flock(2)` with its batch, a producer queues a thousand more events and goes on.
//!
//! The writer runs in a child process, so that its only thread of that name is the
//! background thread.

use std::fs;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::common;
use crate::common::children::start_entry_env;
use crate::common::log_files::hold_lock;
use tracing_shared_file::SharedFile;

const BATCH_ENV: &str = "TSF_BATCH_BOUNDS_DIR";

/// The tid of this process's thread named `name` (`comm`, at most 15 bytes).
fn thread_named(name: &str) -> Option<String> {
    fs::read_dir("/proc/self/task").unwrap().find_map(|entry| {
        let tid = entry.unwrap().file_name().into_string().unwrap();
        let comm = fs::read_to_string(format!("/proc/self/task/{tid}/comm")).ok()?;
        (comm.trim_end() == name).then_some(tid)
    })
}

/// Waits until a thread named `name` exists; returns its tid.
fn wait_for_thread_named(name: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(tid) = thread_named(name) {
            return tid;
        }
        assert!(Instant::now() < deadline, "no thread named {name}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// `(wchar, syscw)` of thread `tid`: bytes written and `write` calls made.
fn write_counters(tid: &str) -> (u64, u64) {
    let io = fs::read_to_string(format!("/proc/self/task/{tid}/io")).unwrap();
    let field = |name: &str| -> u64 {
        io.lines()
            .find_map(|line| line.strip_prefix(name))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    (field("wchar:"), field("syscw:"))
}

/// Waits until thread `tid` is blocked in `flock(2)`.
fn wait_until_in_flock(tid: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let syscall = fs::read_to_string(format!("/proc/self/task/{tid}/syscall")).unwrap();
        if syscall.split(' ').next() == Some(&libc::SYS_flock.to_string()) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "never waited in flock: {syscall}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

const EVENT: usize = 64;
const EVENTS: usize = 1024;
const MAX_BATCH: usize = 4096;

/// An event of exactly `EVENT` bytes.
fn event(seq: usize) -> Vec<u8> {
    let mut line = format!("event {seq:5} ").into_bytes();
    line.resize(EVENT - 1, b'.');
    line.push(b'\n');
    line
}

/// Child side (its own process, so that its only thread of that name is the writer's):
/// queues `EVENTS` events while the background thread waits in `flock(2)`, then lets the
/// lock go and prints the thread's write counters.
#[test]
fn batch_entry() {
    let Some(dir) = std::env::var_os(BATCH_ENV) else {
        return;
    };
    let log = SharedFile::builder(PathBuf::from(dir).join("app.log"))
        .build()
        .unwrap();
    let (mut writer, guard) = log
        .non_blocking_builder()
        .max_batch_bytes(MAX_BATCH)
        .finish();
    let holder = hold_lock(log.path());
    writer.write_all(&event(0)).unwrap();
    let tid = wait_for_thread_named("tracing-shared-");
    wait_until_in_flock(&tid);
    let before = write_counters(&tid);
    // With the background thread in the middle of its write, every event is queued.
    for seq in 1..EVENTS {
        writer.write_all(&event(seq)).unwrap();
    }
    wait_until_in_flock(&tid);
    drop(holder);
    guard.flush();
    let after = write_counters(&tid);
    println!("wchar={} syscw={}", after.0 - before.0, after.1 - before.1);
    drop(guard);
}

#[test]
fn max_batch_bytes_bounds_each_hold_and_queueing_never_waits_for_the_write() {
    let dir = tempfile::tempdir().unwrap();
    let entry = common::entry!(batch_entry);
    let finished = start_entry_env(&entry, dir.path(), "batcher", BATCH_ENV, dir.path()).finish();
    finished.assert_success();
    let counters = parse_counters(&finished.stdout);
    let (bytes, writes) = counters.expect(&finished.stdout);
    assert_eq!(bytes, (EVENT * EVENTS) as u64);
    // The first event went alone, the rest in one batch of runs of at most 64 events.
    let at_least = (EVENTS - 1).div_ceil(MAX_BATCH / EVENT) as u64 + 1;
    assert!(
        (at_least..=at_least + 1).contains(&writes),
        "{writes} writes for {bytes} bytes with max_batch_bytes {MAX_BATCH}: expected {at_least}"
    );
    let expected: Vec<u8> = (0..EVENTS).flat_map(event).collect();
    assert!(fs::read(dir.path().join("app.log")).unwrap() == expected);
}

fn parse_counters(stdout: &str) -> Option<(u64, u64)> {
    // The harness may have printed the test's name on the same line.
    let line = &stdout[stdout.find("wchar=")?..];
    let line = line.lines().next()?;
    let (bytes, writes) = line.split_once(' ')?;
    Some((
        bytes.strip_prefix("wchar=")?.parse().ok()?,
        writes.strip_prefix("syscw=")?.parse().ok()?,
    ))
}
