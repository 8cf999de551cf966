//! A `Debug` impl that panics inside an event leaves no lock held, as seen from another
//! process: through `log.layer()`, `writer.layer()`, a plain `fmt` layer, `write!` on
//! `&SharedFile`, and a hand-written `EventWriter` cut short. While the panicking process
//! lives on, another process takes the lock at once, and the panicking process then
//! writes again from two threads. A control run, whose child keeps the lock on purpose,
//! shows that the probe sees a held lock.

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use super::quiet_panics::silence_panics;
use crate::common;
use crate::common::children::{start_entry, touch};
use crate::common::log_files::{hold_lock, lock_is_free};
use crate::common::workload::wait_for_file;
use tracing_shared_file::SharedFile;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::prelude::*;

const PANIC_MESSAGE: &str = "a Debug impl that panics, seen from another process";
const PANICKER_ENV: &str = "TSF_PANICS_LOCK_DIR";
const KEEP_LOCK_ENV: &str = "TSF_PANICS_KEEP_LOCK";

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
    silence_panics(&[PANIC_MESSAGE]);
    let dir = PathBuf::from(dir);
    let log = SharedFile::builder(dir.join("app.log"))
        .on_error(|_| {})
        .build()
        .unwrap();
    (&log).write_all(b"child before\n").unwrap();
    panic_in_every_way(&log);
    let kept = std::env::var_os(KEEP_LOCK_ENV).map(|_| hold_lock(log.path()));
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

/// Runs the panicking child; returns whether the lock was free once it had panicked,
/// and, when it was, checks what the file and the child's stats say afterwards.
fn run_panicker(keep_lock: bool) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let entry = common::entry!(panicker_entry);
    let mut child = start_entry(&entry, dir.path(), "panicker", |command| {
        command.env(PANICKER_ENV, dir.path());
        if keep_lock {
            command.env(KEEP_LOCK_ENV, "1");
        }
    });
    child.wait_for_file(&dir.path().join("panicked"));
    let free = lock_is_free(&dir.path().join("app.log"));
    if free {
        // A writer in this process, which would give up after a second.
        let log = SharedFile::builder(dir.path().join("app.log"))
            .lock_timeout(Duration::from_secs(1))
            .build()
            .unwrap();
        (&log).write_all(b"another process\n").unwrap();
    }
    touch(&dir.path().join("go on"));
    let finished = child.finish();
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
