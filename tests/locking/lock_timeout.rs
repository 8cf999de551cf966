//! `Builder::lock_timeout` bounds the wait for a lock that its holder never lets go: past
//! it the event is dropped, counted, and reported with the holder's pid when the holder is
//! one of ours (never a dead writer's pid), and a write works again once the holder lets
//! go. Without a bound, or with `Duration::MAX` (too far off to add to the clock), a write
//! waits until the holder lets go; dropping a non-blocking `WorkerGuard` still returns.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use super::holders::{
    BIG_EVENT, DEADLINE, GENEROUS, LOCK_TIMEOUT, assert_still_waiting, assert_timed_out,
    build_recording, counts, foreign_holder, is_stopped, lock_is_held, looping_writer, names_pid,
    signal, write_in_background,
};

/// A `SharedFile` writer stopped inside its critical section holds the lock for good; a
/// bounded write gives up, and the report names the stopped process.
#[test]
fn a_write_times_out_on_a_stopped_writer_and_the_report_names_its_pid() {
    const LINE: &[u8] = b"dropped: the lock holder is stopped\n";
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let looper = looping_writer(dir);
    let pid = looper.pid();

    // Stop the writer in the middle of an append, until it is caught holding the lock.
    let probe = File::open(dir.join("app.log.lock")).unwrap();
    let log_len = || std::fs::metadata(dir.join("app.log")).map_or(0, |m| m.len());
    let mut caught = false;
    for _attempt in 0..20 {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !(1..BIG_EVENT as u64).contains(&log_len()) {
            assert!(Instant::now() < deadline, "the writer never appended");
            std::hint::spin_loop();
        }
        signal(pid, libc::SIGSTOP);
        while !is_stopped(pid) {
            assert!(Instant::now() < deadline, "the writer did not stop");
            std::thread::sleep(Duration::from_micros(100));
        }
        if lock_is_held(&probe) {
            caught = true;
            break;
        }
        signal(pid, libc::SIGCONT);
    }
    assert!(caught, "never caught the looping writer holding the lock");

    let (log, failures) = build_recording(dir, Some(LOCK_TIMEOUT));
    let outcome = write_in_background(&log, LINE).recv_timeout(GENEROUS);
    let failure = assert_timed_out(outcome, &log, &failures, 0);
    assert!(
        names_pid(&failure.message, pid),
        "the report must name the holder as `pid {pid}`: {:?}",
        failure.message
    );

    drop(looper);
}

/// A holder that is not one of ours records no pid; the bounded write still gives up,
/// and does not blame this process, whose pid the page held from its own earlier write.
/// Once the holder lets go, writing works again.
#[test]
fn a_write_times_out_on_a_foreign_holder_and_writes_again_once_it_lets_go() {
    const BEFORE: &[u8] = b"before the foreign holder\n";
    const DROPPED: &[u8] = b"dropped: a foreign process holds the lock\n";
    const AFTER: &[u8] = b"after the foreign holder let go\n";
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let (log, failures) = build_recording(dir, Some(LOCK_TIMEOUT));
    (&log).write_all(BEFORE).unwrap();
    let holder = foreign_holder(dir, DEADLINE);

    let outcome = write_in_background(&log, DROPPED).recv_timeout(GENEROUS);
    let failure = assert_timed_out(outcome, &log, &failures, 1);
    let own_pid = std::process::id() as libc::pid_t;
    assert!(
        !names_pid(&failure.message, own_pid),
        "the report blames this process (pid {own_pid}), which does not hold the lock: {:?}",
        failure.message
    );

    std::fs::write(dir.join("release"), b"").unwrap();
    holder.finish().assert_exited_ok();
    (&log).write_all(AFTER).unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.join("app.log")).unwrap(),
        String::from_utf8([BEFORE, AFTER].concat()).unwrap()
    );
    assert_eq!(counts(log.stats()), (2, 1, 1));
}

/// Without `lock_timeout` a write waits for as long as another process holds the lock,
/// and completes once it lets go.
#[test]
fn without_a_bound_a_write_waits_until_the_holder_lets_go() {
    const LINE: &[u8] = b"waited for the lock\n";
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let (log, failures) = build_recording(dir, None);
    let holder = foreign_holder(dir, DEADLINE);

    let write = write_in_background(&log, LINE);
    assert!(
        matches!(
            write.recv_timeout(Duration::from_millis(500)),
            Err(RecvTimeoutError::Timeout)
        ),
        "the write returned although another process held the lock"
    );
    std::fs::write(dir.join("release"), b"").unwrap();
    holder.finish().assert_exited_ok();
    let (result, _) = write
        .recv_timeout(GENEROUS)
        .expect("the write was still waiting after the holder let go");
    result.unwrap();
    assert_eq!(
        std::fs::read(dir.join("app.log")).unwrap(),
        LINE,
        "the file holds the one event"
    );
    assert_eq!(counts(log.stats()), (1, 0, 0));
    assert_eq!(*failures.lock().unwrap(), []);
}

/// Non-blocking with a bound: while a foreign process holds the lock for 30 s, dropping
/// the `WorkerGuard` returns after the bound instead of waiting in `join`; every queued
/// event is counted as dropped and none reached the file.
#[test]
fn dropping_the_guard_returns_while_the_lock_is_never_released() {
    const EVENTS: u64 = 50;
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let (log, failures) = build_recording(dir, Some(LOCK_TIMEOUT));
    let _holder = foreign_holder(dir, DEADLINE);

    let (mut writer, guard) = log.non_blocking();
    for seq in 0..EVENTS {
        writer
            .write_all(format!("queued event {seq}\n").as_bytes())
            .unwrap();
    }
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        drop(guard);
        let _ = tx.send(());
    });
    assert!(
        rx.recv_timeout(Duration::from_secs(3)).is_ok(),
        "dropping the WorkerGuard was still blocked after 3 s, with lock_timeout({LOCK_TIMEOUT:?})"
    );

    let stats = log.stats();
    assert_eq!(
        (stats.events_written, stats.events_dropped),
        (0, EVENTS),
        "(events_written, events_dropped): every queued event was dropped"
    );
    // How many writes the events went out in depends on how the worker batched them.
    assert!(
        (1..=EVENTS).contains(&stats.write_errors),
        "write_errors = {}",
        stats.write_errors
    );
    let failures = failures.lock().unwrap().clone();
    assert_eq!(failures.len() as u64, stats.write_errors, "{failures:?}");
    for failure in &failures {
        assert_eq!(
            (failure.kind, failure.event_dropped),
            (io::ErrorKind::TimedOut, true),
            "{failure:?}"
        );
    }
    assert_eq!(std::fs::read(dir.join("app.log")).unwrap(), b"");
}

/// `lock_timeout(Duration::MAX)` is a bound too far off to add to the clock: it means no
/// bound. A write waits while another process holds the lock, and completes once it lets
/// go, instead of panicking while it works out the deadline.
#[test]
fn with_lock_timeout_duration_max_a_write_waits_until_the_holder_lets_go() {
    const LINE: &[u8] = b"waited for the lock with lock_timeout(Duration::MAX)\n";
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let (log, failures) = build_recording(dir, Some(Duration::MAX));
    let holder = foreign_holder(dir, DEADLINE);

    let write = write_in_background(&log, LINE);
    assert_still_waiting(&write, Duration::from_millis(200));
    std::fs::write(dir.join("release"), b"").unwrap();
    holder.finish().assert_exited_ok();
    let (result, _) = write
        .recv_timeout(GENEROUS)
        .expect("the write was still waiting after the holder let go");
    result.unwrap();

    assert_eq!(std::fs::read(dir.join("app.log")).unwrap(), LINE);
    assert_eq!(counts(log.stats()), (1, 0, 0));
    assert_eq!(*failures.lock().unwrap(), []);
}

/// The same through a non-blocking writer: its background thread waits for the lock
/// (it used to panic there, losing every queued event), then writes every event.
#[test]
fn with_lock_timeout_duration_max_a_non_blocking_writer_waits_and_writes_everything() {
    const EVENTS: u64 = 20;
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let (log, failures) = build_recording(dir, Some(Duration::MAX));
    let holder = foreign_holder(dir, DEADLINE);

    let (mut writer, guard) = log.non_blocking();
    let events: Vec<String> = (0..EVENTS)
        .map(|seq| format!("queued event {seq}\n"))
        .collect();
    for event in &events {
        writer.write_all(event.as_bytes()).unwrap();
    }
    // The background thread is waiting for the lock: nothing written, nothing dropped.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(counts(log.stats()), (0, 0, 0));
    std::fs::write(dir.join("release"), b"").unwrap();
    holder.finish().assert_exited_ok();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        drop(guard);
        let _ = tx.send(());
    });
    rx.recv_timeout(GENEROUS)
        .expect("dropping the WorkerGuard was still blocked after the holder let go");

    assert_eq!(
        std::fs::read_to_string(dir.join("app.log")).unwrap(),
        events.concat(),
        "every queued event, once the holder let go (a background thread that panicked \
         loses them)"
    );
    assert_eq!(counts(log.stats()), (EVENTS, 0, 0));
    assert_eq!(*failures.lock().unwrap(), []);
}

/// Kills a looping writer with SIGKILL while its append is under way (the file is partly
/// written), so that it dies holding the lock with its pid recorded. A kill that lands
/// between two appends (the timing is the kernel's) is tried again with a new writer, in
/// a fresh directory under `root`. Returns that directory and the dead writer's pid,
/// reaped.
fn kill_a_writer_inside_an_append(root: &Path) -> (PathBuf, libc::pid_t) {
    for attempt in 0..20 {
        let dir = root.join(format!("attempt{attempt}"));
        std::fs::create_dir(&dir).unwrap();
        let log_len = || std::fs::metadata(dir.join("app.log")).map_or(0, |m| m.len());
        let inside_an_append = || (1..BIG_EVENT as u64).contains(&log_len());
        let looper = looping_writer(&dir);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !inside_an_append() {
            assert!(Instant::now() < deadline, "the writer never appended");
            std::hint::spin_loop();
        }
        let pid = looper.pid();
        signal(pid, libc::SIGKILL);
        let status = looper.finish().status;
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{status}");
        // Dead, its append stopped where it was: the file is still partly written.
        if inside_an_append() {
            return (dir, pid);
        }
    }
    panic!("never killed the looping writer inside an append");
}

/// A `SharedFile` writer killed mid-append leaves its pid recorded as the holder's; the
/// kernel frees its flock, and a plain `flock` holder (not one of ours, recording no pid)
/// takes the lock. The report of a bounded write that times out must say the holder did
/// not record its pid, and name the dead writer only as having exited, never as holding
/// the lock.
#[test]
fn a_timeout_after_a_writer_was_killed_mid_append_does_not_name_the_dead_pid_as_holder() {
    const LINE: &[u8] = b"dropped: a foreign process holds the lock\n";
    let root = tempfile::tempdir().unwrap();
    let (dir, dead) = kill_a_writer_inside_an_append(root.path());
    let dir = dir.as_path();
    let _holder = foreign_holder(dir, DEADLINE);

    let (log, failures) = build_recording(dir, Some(LOCK_TIMEOUT));
    let outcome = write_in_background(&log, LINE).recv_timeout(GENEROUS);
    let failure = assert_timed_out(outcome, &log, &failures, 0);
    let message = &failure.message;
    assert!(
        !message.contains(&format!("held by pid {dead}")),
        "the report names pid {dead}, which is dead, as the holder: {message:?}"
    );
    assert!(
        message.contains("did not record its pid"),
        "the report must say the holder did not record its pid: {message:?}"
    );
    assert!(
        message.contains("has exited"),
        "the report must say that pid {dead} has exited: {message:?}"
    );
}
