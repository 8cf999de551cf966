//! The lock holders of the lock-wait tests, and what a bounded write's hook saw.
//!
//! Holders are real processes (this test binary re-run): a plain `flock` holder that is
//! not one of ours, or a `SharedFile` writer appending in a loop, which a test stops with
//! `SIGSTOP` or kills inside its critical section. Every child is killed when dropped,
//! which also frees any write still waiting when a test fails.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracing_shared_file::{SharedFile, Stats};

use crate::common;
pub(crate) use common::children::is_stopped;
use common::children::{RunningChild, start_entry_env};
use common::log_files::hold_lock_until_released;

const HOLDER_ENV: &str = "TSF_LOCK_WAIT_HOLDER";
const LOOPER_ENV: &str = "TSF_LOCK_WAIT_LOOPER";
/// The bound under test.
pub(crate) const LOCK_TIMEOUT: Duration = Duration::from_millis(300);
/// How long a write bounded by `LOCK_TIMEOUT` may take before the test calls it unbounded.
pub(crate) const GENEROUS: Duration = Duration::from_secs(5);
/// Any wait for a child longer than this is a hang.
pub(crate) const DEADLINE: Duration = Duration::from_secs(30);

/// A holder that is not one of ours: a plain `flock` on `<dir>/app.log.lock`. Creates
/// `<dir>/held` once it has the lock, and lets go when `<dir>/release` appears or after
/// the number of milliseconds given after the colon.
#[test]
fn lock_holder_entry() {
    let Ok(spec) = std::env::var(HOLDER_ENV) else {
        return;
    };
    let (dir, hold_ms) = spec.rsplit_once(':').unwrap();
    let until = Instant::now() + Duration::from_millis(hold_ms.parse().unwrap());
    hold_lock_until_released(Path::new(dir), until);
}

/// The looping writer's event: large enough that its append takes a while, so that a
/// `SIGSTOP` sent while the file grows stops the writer as its `write(2)` returns, inside
/// its critical section. (A stop sent at a random moment can land just after the flock
/// was taken, before the holder could record its pid.)
pub(crate) const BIG_EVENT: usize = 64 << 20;

/// A `SharedFile` writer that appends `BIG_EVENT`s in a loop, each in a fresh file
/// (`max_bytes(1)`, one archive kept). Creates `<dir>/looping` before it starts.
#[test]
fn looping_writer_entry() {
    let Some(dir) = std::env::var_os(LOOPER_ENV) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let log = SharedFile::builder(dir.join("app.log"))
        .max_bytes(1)
        .max_files(1)
        .build()
        .unwrap();
    let mut event = vec![b'x'; BIG_EVENT];
    *event.last_mut().unwrap() = b'\n';
    std::fs::write(dir.join("looping"), b"").unwrap();
    // Ends by itself, in case the test could not kill it.
    let until = Instant::now() + DEADLINE;
    while Instant::now() < until {
        (&log).write_all(&event).unwrap();
    }
}

/// A holder that is not one of ours, holding the lock of `<dir>/app.log` until
/// `<dir>/release` appears or `hold` has passed; returns once it holds the lock.
pub(crate) fn foreign_holder(dir: &Path, hold: Duration) -> RunningChild {
    let spec = format!("{}:{}", dir.display(), hold.as_millis());
    let entry = common::entry!(lock_holder_entry);
    let mut holder =
        start_entry_env(&entry, dir, "holder", HOLDER_ENV, spec).with_deadline(DEADLINE);
    holder.wait_for_file(&dir.join("held"));
    holder
}

/// A `SharedFile` writer appending `BIG_EVENT`s in `dir`, in a loop; returns once it
/// loops.
pub(crate) fn looping_writer(dir: &Path) -> RunningChild {
    let entry = common::entry!(looping_writer_entry);
    let mut looper =
        start_entry_env(&entry, dir, "looper", LOOPER_ENV, dir).with_deadline(DEADLINE);
    looper.wait_for_file(&dir.join("looping"));
    looper
}

pub(crate) fn signal(pid: libc::pid_t, signal: libc::c_int) {
    // SAFETY: a plain kill of a child of this test.
    assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
}

/// Whether some process holds the flock that `probe` (our own open of the lock file)
/// would take; a free lock is released again at once.
pub(crate) fn lock_is_held(probe: &File) -> bool {
    match probe.try_lock() {
        Ok(()) => {
            probe.unlock().unwrap();
            false
        }
        Err(std::fs::TryLockError::WouldBlock) => true,
        Err(std::fs::TryLockError::Error(e)) => panic!("probing the lock: {e}"),
    }
}

/// One failure as the `on_error` hook saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    pub(crate) kind: io::ErrorKind,
    pub(crate) event_dropped: bool,
    pub(crate) message: String,
}

pub(crate) type Failures = Arc<Mutex<Vec<Failure>>>;

/// A `SharedFile` on `<dir>/app.log` whose hook records every failure (which also keeps
/// the reports off the test's stderr).
pub(crate) fn build_recording(
    dir: &Path,
    lock_timeout: Option<Duration>,
) -> (SharedFile, Failures) {
    let failures = Failures::default();
    let mut builder = SharedFile::builder(dir.join("app.log")).on_error({
        let failures = Arc::clone(&failures);
        move |failure| {
            failures.lock().unwrap().push(Failure {
                kind: failure.error().kind(),
                event_dropped: failure.event_dropped(),
                message: failure.error().to_string(),
            });
        }
    });
    if let Some(timeout) = lock_timeout {
        builder = builder.lock_timeout(timeout);
    }
    (builder.build().unwrap(), failures)
}

/// Writes `line` as one event on a helper thread, so that the test can tell a write
/// that waits from one that returns; the receiver gets the result and the time it took.
pub(crate) fn write_in_background(
    log: &SharedFile,
    line: &'static [u8],
) -> mpsc::Receiver<(io::Result<()>, Duration)> {
    let (tx, rx) = mpsc::channel();
    let log = log.clone();
    std::thread::spawn(move || {
        let started = Instant::now();
        let result = (&log).write_all(line);
        let _ = tx.send((result, started.elapsed()));
    });
    rx
}

/// `(events_written, events_dropped, write_errors)`, the counters these tests pin down.
pub(crate) fn counts(stats: Stats) -> (u64, u64, u64) {
    (
        stats.events_written,
        stats.events_dropped,
        stats.write_errors,
    )
}

/// Whether `message` names `pid` as `pid <N>` (and not a longer number starting alike).
pub(crate) fn names_pid(message: &str, pid: libc::pid_t) -> bool {
    let needle = format!("pid {pid}");
    message.match_indices(&needle).any(|(at, _)| {
        !message[at + needle.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit())
    })
}

/// Checks that a bounded write failed as a timeout, and what was counted and reported.
#[track_caller]
pub(crate) fn assert_timed_out(
    outcome: Result<(io::Result<()>, Duration), RecvTimeoutError>,
    log: &SharedFile,
    failures: &Failures,
    events_written_before: u64,
) -> Failure {
    let (result, took) = outcome.unwrap_or_else(|_| {
        panic!(
            "with lock_timeout({LOCK_TIMEOUT:?}) the write was still waiting after {GENEROUS:?}: \
             the bound is not enforced"
        )
    });
    let error = result.expect_err("the write succeeded although another process held the lock");
    assert_eq!(error.kind(), io::ErrorKind::TimedOut, "{error}");
    // A little less than the bound, for the coarse clock.
    assert!(
        took >= LOCK_TIMEOUT - Duration::from_millis(50),
        "gave up after {took:?}, before the bound of {LOCK_TIMEOUT:?}"
    );
    assert_eq!(
        counts(log.stats()),
        (events_written_before, 1, 1),
        "(events_written, events_dropped, write_errors)"
    );
    let failures = failures.lock().unwrap().clone();
    assert_eq!(
        failures.len(),
        1,
        "one report per failed write: {failures:?}"
    );
    let failure = failures.into_iter().next().unwrap();
    assert_eq!(
        (failure.kind, failure.event_dropped),
        (io::ErrorKind::TimedOut, true),
        "{failure:?}"
    );
    failure
}

/// Waits for a write started by `write_in_background` to be still waiting after `wait`;
/// fails if it returned, or if its thread panicked.
#[track_caller]
pub(crate) fn assert_still_waiting(
    write: &mpsc::Receiver<(io::Result<()>, Duration)>,
    wait: Duration,
) {
    match write.recv_timeout(wait) {
        Err(RecvTimeoutError::Timeout) => {}
        Err(RecvTimeoutError::Disconnected) => panic!("the writing thread panicked"),
        Ok((result, took)) => panic!(
            "the write returned {result:?} after {took:?} although another process held the lock"
        ),
    }
}
