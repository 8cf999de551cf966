//! The non-blocking queue's size limit, at its edge: an event that fits the queue exactly
//! (`max_queued_bytes` less the queue's per-event bookkeeping) is queued, so the call
//! returns while another process holds the lock; an event one byte larger can never fit,
//! so it is written synchronously and whole, even by a lossy queue, which never drops it.
//!
//! The lock holder is a real process: this test binary re-run.

use std::io::Write;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::common;
use crate::common::children::{CHILD_DEADLINE, RunningChild, start_entry_env, touch};
use crate::common::log_files::hold_lock_until_released;
use tracing_shared_file::{NonBlocking, SharedFile};

/// The queue's bookkeeping per event: one `usize` that marks the event's end.
const END_BYTES: usize = std::mem::size_of::<usize>();

/// The room of each of the queue's two buffers, as `max_queued_bytes`.
const QUEUE: usize = 4096;

const HOLDER_ENV: &str = "TSF_NON_BLOCKING_CAPACITY_HOLDER";

/// Child side: holds the lock of `<dir>/app.log` from another process, creates
/// `<dir>/held` once it has it, and lets go when `<dir>/release` appears.
#[test]
fn lock_holder_entry() {
    let Some(dir) = std::env::var_os(HOLDER_ENV) else {
        return;
    };
    hold_lock_until_released(Path::new(&dir), Instant::now() + CHILD_DEADLINE);
}

/// A child process holding the lock of `<dir>/app.log` until [`release`].
fn hold_lock_in_a_child(dir: &Path) -> RunningChild {
    let entry = common::entry!(lock_holder_entry);
    let mut holder = start_entry_env(&entry, dir, "holder", HOLDER_ENV, dir);
    holder.wait_for_file(&dir.join("held"));
    holder
}

/// Lets the holder go, and waits until it has exited, its lock with it.
fn release(holder: RunningChild, dir: &Path) {
    touch(&dir.join("release"));
    holder.finish().assert_success();
}

/// Writes `line` through `writer` on another thread: whether the call returned (and
/// succeeded) within 20 s.
fn write_within_20_s(writer: NonBlocking, line: &[u8]) -> Result<bool, mpsc::RecvTimeoutError> {
    let (sent, returned) = mpsc::channel();
    let line = line.to_vec();
    std::thread::spawn(move || {
        let mut writer = writer;
        let result = writer.write_all(&line);
        let _ = sent.send(result.is_ok());
    });
    returned.recv_timeout(Duration::from_secs(20))
}

/// A line of exactly `len` bytes, newline included.
fn line_of(len: usize, fill: u8) -> Vec<u8> {
    let mut line = vec![fill; len - 1];
    line.push(b'\n');
    line
}

#[test]
fn an_event_that_fills_the_queue_exactly_is_queued_without_waiting_for_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let log = SharedFile::builder(&path).build().unwrap();
    let (writer, guard) = log.non_blocking_builder().max_queued_bytes(QUEUE).finish();
    let holder = hold_lock_in_a_child(dir.path());

    let line = line_of(QUEUE - END_BYTES, b'q');
    // A synchronous write would wait for the holder, which never lets go before this.
    let queued = write_within_20_s(writer, &line);
    assert_eq!(
        queued,
        Ok(true),
        "an event of max_queued_bytes less {END_BYTES} bytes was not queued: the call waited for the lock"
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        b"",
        "written while the lock was held"
    );
    release(holder, dir.path());
    guard.flush();
    assert_eq!(std::fs::read(&path).unwrap(), line);
    let stats = log.stats();
    assert_eq!((stats.events_written, stats.events_dropped), (1, 0));
}

#[test]
fn an_event_one_byte_too_large_for_the_queue_is_written_whole_and_never_dropped() {
    for lossy in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        let log = SharedFile::builder(&path).build().unwrap();
        let (writer, guard) = log
            .non_blocking_builder()
            .max_queued_bytes(QUEUE)
            .lossy(lossy)
            .finish();
        let line = line_of(QUEUE - END_BYTES + 1, b'w');
        // A queue that took it could never hand it on: the call would wait for room, or
        // drop it.
        assert_eq!(write_within_20_s(writer, &line), Ok(true), "lossy: {lossy}");
        // Synchronous: in the file when the call returns, before any flush.
        assert_eq!(std::fs::read(&path).unwrap(), line, "lossy: {lossy}");
        drop(guard);
        let stats = log.stats();
        assert_eq!(
            (stats.events_written, stats.events_dropped),
            (1, 0),
            "lossy: {lossy}"
        );
    }
}
