//! A panic inside the `on_error` hook takes nothing down with it, and the hook is called
//! with no lock held, in both modes:
//!
//! - a panic inside the hook is caught: the failing write returns its error, the
//!   non-blocking background thread lives on, and the next write goes into the file;
//! - the hook runs after the locks are released: from inside it another description of
//!   the lock file (what another process has) takes the lock at once, and a write
//!   through the same `SharedFile` goes through.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use super::quiet_panics::silence_panics;
use crate::common::log_files::{hold_lock, lock_is_free};
use tracing_shared_file::SharedFile;
use tracing_subscriber::prelude::*;

const PANIC_MESSAGE: &str = "an on_error hook that panics";

/// Runs `f` on a thread of its own, failing the test if it panics or has not finished
/// within 30 s (a background thread killed by the hook's panic would make a flush hang).
fn within_30_s(f: impl FnOnce() + Send + 'static) {
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        f();
        let _ = tx.send(());
    });
    if rx.recv_timeout(Duration::from_secs(30)).is_err() {
        assert!(thread.is_finished(), "the scenario hung");
        thread.join().unwrap();
    }
}

/// A log whose hook counts its calls and then panics.
fn log_with_panicking_hook(dir: &Path, lock_timeout: Duration) -> (SharedFile, Arc<AtomicU64>) {
    silence_panics(&[PANIC_MESSAGE]);
    let calls = Arc::new(AtomicU64::new(0));
    let log = SharedFile::builder(dir.join("app.log"))
        .lock_timeout(lock_timeout)
        .on_error({
            let calls = Arc::clone(&calls);
            move |_| {
                calls.fetch_add(1, Relaxed);
                panic!("{}", PANIC_MESSAGE);
            }
        })
        .build()
        .unwrap();
    (log, calls)
}

#[test]
fn a_panicking_hook_is_caught_and_the_write_goes_on_in_sync_mode() {
    within_30_s(|| {
        let dir = tempfile::tempdir().unwrap();
        let (log, calls) = log_with_panicking_hook(dir.path(), Duration::from_millis(50));
        (&log).write_all(b"before\n").unwrap();
        let holder = hold_lock(log.path());
        let error = (&log).write_all(b"timed out\n").unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::TimedOut);
        // Through a layer too: the event is dropped, the log call returns.
        tracing::subscriber::with_default(tracing_subscriber::registry().with(log.layer()), || {
            tracing::info!("timed out too");
        });
        drop(holder);
        (&log).write_all(b"after\n").unwrap();
        assert_eq!(calls.load(Relaxed), 2);
        let stats = log.stats();
        assert_eq!((stats.events_written, stats.events_dropped), (2, 2));
        assert_eq!(fs::read_to_string(log.path()).unwrap(), "before\nafter\n");
    });
}

#[test]
fn a_panicking_hook_is_caught_and_the_write_goes_on_in_non_blocking_mode() {
    within_30_s(|| {
        let dir = tempfile::tempdir().unwrap();
        let (log, calls) = log_with_panicking_hook(dir.path(), Duration::from_secs(1));
        let (mut writer, guard) = log.non_blocking();
        writer.write_all(b"before\n").unwrap();
        guard.flush();
        let holder = hold_lock(log.path());
        writer.write_all(b"timed out\n").unwrap();
        // Returns once the batch has waited its lock_timeout and was dropped, the hook
        // having panicked on the background thread.
        guard.flush();
        assert_eq!(calls.load(Relaxed), 1);
        // The background thread lives on: with the lock still held elsewhere, the next
        // event is queued (a writer without its thread would write it synchronously,
        // wait out lock_timeout and fail), and written once the lock is let go.
        writer.write_all(b"after\n").unwrap();
        drop(holder);
        guard.flush();
        assert_eq!(fs::read_to_string(log.path()).unwrap(), "before\nafter\n");
        drop(guard);
        let stats = log.stats();
        assert_eq!((stats.events_written, stats.events_dropped), (2, 1));
        assert_eq!(calls.load(Relaxed), 1);
    });
}

/// The hook runs after the locks are released: from inside it, another description
/// takes the lock at once (as another process would), and a write through the same
/// `SharedFile` neither deadlocks nor waits.
fn hook_runs_unlocked(non_blocking: bool) {
    within_30_s(move || {
        let dir = tempfile::tempdir().unwrap();
        let probes = Arc::new(std::sync::Mutex::new(Vec::new()));
        let this_log = Arc::new(std::sync::OnceLock::<SharedFile>::new());
        let log = SharedFile::builder(dir.path().join("app.log"))
            .max_bytes(100)
            .on_error({
                let (probes, this_log, dir) = (
                    Arc::clone(&probes),
                    Arc::clone(&this_log),
                    dir.path().to_path_buf(),
                );
                move |_| {
                    probes
                        .lock()
                        .unwrap()
                        .push(lock_is_free(&dir.join("app.log")));
                    let log = this_log.get().unwrap();
                    // Does not fit either: its own failed rotation is counted, not
                    // reported to the hook again.
                    (&*log).write_all(b"from the hook\n").unwrap();
                }
            })
            .build()
            .unwrap();
        this_log.set(log.clone()).unwrap();
        // A directory at the first archive name: every rotation fails, and is reported.
        fs::create_dir(dir.path().join("app.log.1")).unwrap();
        let big = [b'x'; 79];
        let event = [&big[..], b"\n"].concat();
        if non_blocking {
            let (mut writer, guard) = log.non_blocking();
            writer.write_all(&event).unwrap();
            guard.flush();
            writer.write_all(&event).unwrap();
            drop(guard);
        } else {
            (&log).write_all(&event).unwrap();
            (&log).write_all(&event).unwrap();
        }
        assert_eq!(
            *probes.lock().unwrap(),
            [true],
            "the lock was held around the hook"
        );
        let content = fs::read_to_string(log.path()).unwrap();
        assert_eq!(content.lines().count(), 3, "{content}");
        assert_eq!(content.lines().nth(2), Some("from the hook"), "{content}");
    });
}

#[test]
fn the_hook_runs_after_the_locks_are_released_in_sync_mode() {
    hook_runs_unlocked(false);
}

#[test]
fn the_hook_runs_after_the_locks_are_released_in_non_blocking_mode() {
    hook_runs_unlocked(true);
}
