//! The non-blocking queue's size limit, at its edge: an event that fits the queue exactly
//! (`max_queued_bytes` less the queue's per-event bookkeeping) is queued, so the call
//! returns while another process holds the lock; an event one byte larger can never fit,
//! so it is written synchronously and whole, even by a lossy queue, which never drops it.
//!
//! The lock holder is a real process: this test binary re-run.

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use tracing_shared_file::{NonBlocking, SharedFile};

/// The queue's bookkeeping per event: one `usize` that marks the event's end.
const END_BYTES: usize = std::mem::size_of::<usize>();

/// The room of each of the queue's two buffers, as `max_queued_bytes`.
const QUEUE: usize = 4096;

const HOLDER_ENV: &str = "NON_BLOCKING_CAPACITY_HOLD_LOCK";

/// Run as a child: takes the flock on the lock file named in the environment, says so on
/// stdout, and holds it until its stdin closes.
#[test]
fn lock_holder_entry() {
    let Some(lock_path) = std::env::var_os(HOLDER_ENV) else {
        return;
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(lock_path)
        .expect("open the lock file");
    // SAFETY: a plain system call on a descriptor this function owns.
    let locked = unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&file), libc::LOCK_EX) };
    assert_eq!(locked, 0, "flock: {}", std::io::Error::last_os_error());
    println!("locked");
    std::io::stdout().flush().unwrap();
    let mut rest = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut rest);
}

/// A child process holding the log's lock until dropped.
struct Holder(Child);

impl Holder {
    fn lock(lock_path: &Path) -> Self {
        let mut child = common::entry_command("lock_holder_entry")
            .env(HOLDER_ENV, lock_path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn the lock holder");
        let mut said = Vec::new();
        let stdout = child.stdout.as_mut().expect("piped stdout");
        let mut byte = [0; 1];
        while !said.ends_with(b"locked\n") {
            assert_eq!(
                stdout.read(&mut byte).expect("read the holder"),
                1,
                "holder died"
            );
            said.push(byte[0]);
        }
        Holder(child)
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        let _ = self.0.wait();
    }
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
    let holder = Holder::lock(&dir.path().join("app.log.lock"));

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
    drop(holder);
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
