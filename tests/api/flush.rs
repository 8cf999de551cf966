//! `WorkerGuard::flush` (and `io::Write::flush` on the non-blocking writer) returns once
//! everything queued before it is written: enough to call `std::process::exit` after it.

use crate::common;
use common::log_files::hold_lock;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use tracing_shared_file::SharedFile;

const CHILD_ENV: &str = "TSF_FLUSH_CHILD";
const EVENTS: usize = 1000;

fn line(i: usize) -> String {
    format!("event {i:04} queued before the exit\n")
}

/// Child side: queues events, flushes one way or the other, and exits at once.
#[test]
fn exiting_child_entry() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (how, dir) = spec.split_once(':').unwrap();
    let log = SharedFile::builder(Path::new(dir).join("app.log"))
        .build()
        .unwrap();
    let (mut writer, guard) = log.non_blocking();
    for i in 0..EVENTS {
        writer.write_all(line(i).as_bytes()).unwrap();
    }
    match how {
        "guard" => guard.flush(),
        "writer" => writer.flush().unwrap(),
        _ => {}
    }
    // Skips every destructor, the guard's included.
    std::process::exit(0);
}

fn run_child(how: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let status = common::entry_command(&common::entry!(exiting_child_entry))
        .env(CHILD_ENV, format!("{how}:{}", dir.path().display()))
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::read_to_string(dir.path().join("app.log")).unwrap()
}

#[test]
fn a_flush_before_exit_loses_nothing() {
    let expected: String = (0..EVENTS).map(line).collect();
    assert_eq!(run_child("guard"), expected, "WorkerGuard::flush");
    assert_eq!(run_child("writer"), expected, "io::Write::flush");
}

#[test]
fn a_flush_waits_for_a_foreign_holder_only_as_long_as_lock_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let log = SharedFile::builder(dir.path().join("app.log"))
        .lock_timeout(Duration::from_millis(200))
        .on_error(|_| {})
        .build()
        .unwrap();
    let (mut writer, guard) = log.non_blocking();
    // Another open file description holds the lock, as another process would.
    let holder = hold_lock(&dir.path().join("app.log"));
    for i in 0..10 {
        writer.write_all(line(i).as_bytes()).unwrap();
    }
    let started = Instant::now();
    guard.flush();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(log.stats().events_dropped, 10);
    // Once the lock is free, a flush writes what was queued since.
    holder.unlock().unwrap();
    writer.write_all(line(10).as_bytes()).unwrap();
    guard.flush();
    assert_eq!(std::fs::read_to_string(log.path()).unwrap(), line(10));
}

#[test]
fn a_flush_from_the_error_hook_does_not_wait_for_itself() {
    // A flush that waited for itself would hang: give up after a deadline instead.
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        flush_from_the_error_hook();
        done.send(()).unwrap();
    });
    finished
        .recv_timeout(Duration::from_secs(30))
        .expect("a flush from the error hook hung");
}

fn flush_from_the_error_hook() {
    use std::sync::{Arc, Mutex};
    let dir = tempfile::tempdir().unwrap();
    let slot: Arc<Mutex<Option<tracing_shared_file::NonBlocking>>> = Arc::default();
    let in_hook = Arc::clone(&slot);
    let log = SharedFile::builder(dir.path().join("app.log"))
        .lock_timeout(Duration::from_millis(50))
        .on_error(move |_| {
            if let Some(writer) = in_hook.lock().unwrap().as_mut() {
                // Runs on the background thread, which would wait for itself.
                writer.flush().unwrap();
            }
        })
        .build()
        .unwrap();
    let (mut writer, guard) = log.non_blocking();
    *slot.lock().unwrap() = Some(writer.clone());
    let holder = hold_lock(&dir.path().join("app.log"));
    writer.write_all(line(0).as_bytes()).unwrap();
    guard.flush();
    assert_eq!(log.stats().events_dropped, 1);
    drop(holder);
    drop(guard);
}
