//! Panics on the logging path take nothing down with them:
//!
//! - a panic inside the `on_error` hook is caught, in both modes: the failing write
//!   returns its error, the non-blocking background thread lives on, and the next write
//!   goes into the file;
//! - the hook runs after the locks are released, in both modes: from inside it another
//!   description of the lock file (what another process has) takes the lock at once, and
//!   a write through the same `SharedFile` goes through;
//! - a `Debug` impl that panics inside an event leaves no lock held, as seen from another
//!   process: through `log.layer()`, `writer.layer()`, a plain `fmt` layer, `write!` on
//!   `&SharedFile`, and a hand-written `EventWriter` cut short. While the panicking
//!   process lives on, another process takes the lock at once, and the panicking process
//!   then writes again. A control run, whose child keeps the lock on purpose, shows that
//!   the probe sees a held lock.

mod common;

use std::fmt;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use common::children::{CHILD_DEADLINE, spawn_entry, touch};
use common::workload::wait_for_file;
use tracing_shared_file::SharedFile;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::prelude::*;

const PANIC_MESSAGE: &str = "a panic the test causes on purpose";
const PANICKER_ENV: &str = "TSF_CLAIM_PANICS_DIR";
const KEEP_LOCK_ENV: &str = "TSF_CLAIM_PANICS_KEEP_LOCK";

/// Keeps the panics the tests cause on purpose off stderr; any other panic (a failed
/// assertion) is still printed by the default hook.
fn silence_panic_output() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let text = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str));
            if text != Some(PANIC_MESSAGE) {
                default_hook(info);
            }
        }));
    });
}

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

/// The lock file of `log`, locked by a description of its own: the library's own
/// description then waits for it, even in this process.
fn hold_lock(log: &SharedFile) -> File {
    let mut path = log.path().as_os_str().to_owned();
    path.push(".lock");
    let file = File::options().read(true).write(true).open(path).unwrap();
    file.lock().unwrap();
    file
}

/// A log whose hook counts its calls and then panics.
fn log_with_panicking_hook(dir: &Path, lock_timeout: Duration) -> (SharedFile, Arc<AtomicU64>) {
    silence_panic_output();
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
        let holder = hold_lock(&log);
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
        let holder = hold_lock(&log);
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
                    probes.lock().unwrap().push(lock_is_free(&dir));
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

// ---------------------------------------------------------------------------------------
// A panicking Debug impl, seen from another process.

struct PanickingDebug;

impl fmt::Debug for PanickingDebug {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        panic!("{}", PANIC_MESSAGE);
    }
}

/// Runs `f` on a fresh thread (a fresh `fmt` buffer), asserting that it panicked.
fn panics_on_a_fresh_thread(what: &str, f: impl FnOnce() + Send) {
    let outcome = std::thread::scope(|scope| scope.spawn(f).join());
    assert!(outcome.is_err(), "{what} did not panic");
}

/// Every way of writing an event whose `Debug` impl panics.
fn panic_in_every_way(log: &SharedFile) {
    panics_on_a_fresh_thread("log.layer()", || {
        let subscriber = tracing_subscriber::registry().with(log.layer());
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(field = ?PanickingDebug, "boom");
        });
    });
    let (writer, guard) = log.non_blocking();
    panics_on_a_fresh_thread("writer.layer()", || {
        let subscriber = tracing_subscriber::registry().with(writer.layer());
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(field = ?PanickingDebug, "boom");
        });
    });
    drop(guard);
    panics_on_a_fresh_thread("a plain fmt layer", || {
        let layer = tracing_subscriber::fmt::layer().with_writer(log.clone());
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(field = ?PanickingDebug, "boom");
        });
    });
    panics_on_a_fresh_thread("write! on &SharedFile", || {
        let _ = writeln!(&*log, "boom {:?}", PanickingDebug);
    });
    panics_on_a_fresh_thread("an EventWriter cut short", || {
        let mut event = log.make_writer();
        let _ = write!(event, "begun, ");
        let _ = writeln!(event, "boom {:?}", PanickingDebug);
    });
}

/// Child side: logs a line, panics in every way, says so, waits for the word, and logs
/// again from this thread and another. With `KEEP_LOCK_ENV` it also keeps the lock, on
/// purpose, so that the test can see its probe fail.
#[test]
fn panicker_entry() {
    let Some(dir) = std::env::var_os(PANICKER_ENV) else {
        return;
    };
    silence_panic_output();
    let dir = PathBuf::from(dir);
    let log = SharedFile::builder(dir.join("app.log"))
        .on_error(|_| {})
        .build()
        .unwrap();
    (&log).write_all(b"child before\n").unwrap();
    panic_in_every_way(&log);
    let kept = std::env::var_os(KEEP_LOCK_ENV).map(|_| hold_lock(&log));
    touch(&dir.join("panicked"));
    wait_for_file(&dir.join("go on"));
    drop(kept);
    (&log).write_all(b"child after, same thread\n").unwrap();
    std::thread::scope(|scope| {
        scope.spawn(|| (&log).write_all(b"child after, other thread\n").unwrap());
    });
    let stats = log.stats();
    println!(
        "events_written={} events_dropped={}",
        stats.events_written, stats.events_dropped
    );
}

/// Whether another process could take the lock right now (`LOCK_NB`: no waiting).
fn lock_is_free(dir: &Path) -> bool {
    use std::os::fd::AsRawFd;
    let file = File::options()
        .read(true)
        .write(true)
        .open(dir.join("app.log.lock"))
        .unwrap();
    // SAFETY: flock on a descriptor we own; closing it releases the lock.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

/// Runs the panicking child; returns whether the lock was free once it had panicked,
/// and, when it was, checks what the file and the child's stats say afterwards.
fn run_panicker(keep_lock: bool) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let mut child = spawn_entry(
        &std::env::current_exe().unwrap(),
        "panicker_entry",
        dir.path(),
        "panicker",
        |command| {
            command.env(PANICKER_ENV, dir.path());
            if keep_lock {
                command.env(KEEP_LOCK_ENV, "1");
            }
        },
    );
    child.wait_for_file(&dir.path().join("panicked"));
    let free = lock_is_free(dir.path());
    if free {
        // A writer in this process, which would give up after a second.
        let log = SharedFile::builder(dir.path().join("app.log"))
            .lock_timeout(Duration::from_secs(1))
            .build()
            .unwrap();
        (&log).write_all(b"another process\n").unwrap();
    }
    touch(&dir.path().join("go on"));
    let finished = child.wait(Instant::now() + CHILD_DEADLINE);
    if !free {
        return false;
    }
    assert!(finished.status.success(), "{}", finished.stderr);
    assert_eq!(
        fs::read_to_string(dir.path().join("app.log")).unwrap(),
        "child before\nanother process\nchild after, same thread\nchild after, other thread\n"
    );
    // Only the hand-written writer's event had reached the writer: it is dropped.
    assert!(
        finished
            .stdout
            .contains("events_written=3 events_dropped=1"),
        "{}",
        finished.stdout
    );
    true
}

#[test]
fn a_panicking_debug_leaves_no_lock_held_as_another_process_sees() {
    assert!(run_panicker(false), "the lock was held after the panics");
}

#[test]
fn the_lock_probe_sees_a_lock_that_a_process_keeps() {
    assert!(!run_panicker(true), "the probe missed a held lock");
}
