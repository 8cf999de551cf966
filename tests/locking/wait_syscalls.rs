//! How a write waits for a lock that another holder keeps: without `lock_timeout` it
//! sleeps in `flock(2)` (the kernel wakes it when the lock is let go); with one, it polls
//! the lock instead of sleeping in `flock(2)`, so that it can give up at the bound. The
//! waiting thread's system call is read from `/proc/self/task/<tid>/syscall`.

use std::fs;
use std::io::Write;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::common::log_files::hold_lock;
use tracing_shared_file::SharedFile;

/// The system call numbers thread `tid` is in, sampled every millisecond for `during`.
fn syscalls_of(tid: libc::pid_t, during: Duration) -> Vec<i64> {
    let end = Instant::now() + during;
    let mut seen = Vec::new();
    while Instant::now() < end {
        let text = fs::read_to_string(format!("/proc/self/task/{tid}/syscall")).unwrap();
        if let Some(Ok(number)) = text.split(' ').next().map(str::parse::<i64>) {
            seen.push(number);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    seen
}

/// Holds the lock while a thread writes through a log with `lock_timeout`; returns the
/// system calls that thread was seen in while it waited.
fn waiting_syscalls(lock_timeout: Option<Duration>) -> Vec<i64> {
    let dir = tempfile::tempdir().unwrap();
    let mut builder = SharedFile::builder(dir.path().join("app.log"));
    if let Some(timeout) = lock_timeout {
        builder = builder.lock_timeout(timeout);
    }
    let log = builder.build().unwrap();
    let holder = hold_lock(log.path());
    let (tid_tx, tid_rx) = mpsc::channel();
    let writer = std::thread::spawn({
        let log = log.clone();
        move || {
            // SAFETY: gettid has no preconditions.
            tid_tx.send(unsafe { libc::gettid() }).unwrap();
            (&log).write_all(b"waited\n")
        }
    });
    let tid = tid_rx.recv().unwrap();
    // Let the wait begin (the thread sleeps: in flock, or between polls), then watch it.
    let waiting = [
        libc::SYS_flock,
        libc::SYS_nanosleep,
        libc::SYS_clock_nanosleep,
    ];
    let deadline = Instant::now() + Duration::from_secs(20);
    while !syscalls_of(tid, Duration::from_millis(1))
        .first()
        .is_some_and(|s| waiting.contains(s))
    {
        assert!(Instant::now() < deadline, "the writer never began to wait");
    }
    let seen = syscalls_of(tid, Duration::from_millis(300));
    drop(holder);
    writer.join().unwrap().unwrap();
    assert_eq!(fs::read_to_string(log.path()).unwrap(), "waited\n");
    seen
}

/// How many samples found the thread in each system call.
fn summary(seen: &[i64]) -> String {
    let mut counts = std::collections::BTreeMap::new();
    for &s in seen {
        *counts.entry(s).or_insert(0) += 1;
    }
    format!(
        "samples by system call number while waiting: {counts:?} (flock is {})",
        libc::SYS_flock
    )
}

#[test]
fn without_a_bound_a_write_sleeps_in_flock_while_another_holds_the_lock() {
    let seen = waiting_syscalls(None);
    let in_flock = seen.iter().filter(|&&s| s == libc::SYS_flock).count();
    assert!(
        !seen.is_empty() && in_flock == seen.len(),
        "{}",
        summary(&seen)
    );
}

#[test]
fn with_lock_timeout_a_write_polls_instead_of_sleeping_in_flock() {
    let seen = waiting_syscalls(Some(Duration::from_secs(30)));
    // Each poll is a non-blocking flock, which a sample may just catch: mostly, the
    // thread sleeps between polls.
    let in_flock = seen.iter().filter(|&&s| s == libc::SYS_flock).count();
    assert!(
        !seen.is_empty() && in_flock * 10 < seen.len(),
        "{}",
        summary(&seen)
    );
}
