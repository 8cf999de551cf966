//! Fork without exec, as pre-fork servers do: the parent has used the appender, forks,
//! and parent and children go on logging to the same rotating file.
//!
//! Each scenario runs in a fresh child process of this test binary, so that the forks
//! happen in a process whose threads the scenario controls, and a hang is caught by a
//! deadline instead of hanging the test run.

use crate::common;

use std::path::Path;
use std::time::{Duration, Instant};

use super::support::{MAX_FILES, log_records, start_scenario};
use common::forked::{exited_ok, fork_child, wait_forked_until};
use common::verifier::{Expect, Verifier};
use common::workload::WriterId;
use tracing_shared_file::SharedFile;
use tracing_subscriber::prelude::*;

const SCENARIO_ENV: &str = "TSF_FORK_SCENARIO";
const MAX_BYTES: u64 = 32 * 1024;
/// A scenario forks many children: it may take this long before the test calls it hung.
const SCENARIO_DEADLINE: Duration = Duration::from_secs(180);

fn writer(process: u32, thread: u32) -> WriterId {
    WriterId { process, thread }
}

/// Waits for a forked child, failing if it does not exit cleanly within `deadline`.
fn wait_child(pid: libc::pid_t, deadline: Instant) {
    let status = wait_forked_until(pid, deadline).unwrap_or_else(|| {
        panic!("forked child {pid} hung: deadlocked on a lock inherited from the parent")
    });
    assert!(
        exited_ok(status),
        "forked child {pid} failed: status {status:#x}"
    );
}

fn install(dir: &Path) {
    let log = SharedFile::builder(dir.join("app.log"))
        .max_bytes(MAX_BYTES)
        .max_files(MAX_FILES)
        .build()
        .unwrap();
    tracing_subscriber::registry().with(log.layer()).init();
}

const CHILDREN: u32 = 4;
const LINES: u64 = 10_000;

/// The parent logs, starts a second logging thread, forks children that each log
/// `LINES`, and keeps logging itself.
fn parent_and_children(dir: &Path) {
    install(dir);
    log_records(writer(0, 0), 0..1_000);
    let background = std::thread::spawn(|| log_records(writer(0, 1), 0..LINES));
    let deadline = Instant::now() + Duration::from_secs(120);
    let pids: Vec<_> = (1..=CHILDREN)
        .map(|process| fork_child(move || log_records(writer(process, 0), 0..LINES)))
        .collect();
    log_records(writer(0, 0), 1_000..LINES);
    background.join().unwrap();
    for pid in pids {
        wait_child(pid, deadline);
    }
}

const BUSY_FORKS: u32 = 50;
const BUSY_LINES: u64 = 20_000;

/// Forks again and again while another thread is mid-write, holding the in-process mutex
/// and the flock much of the time. Each child writes one line.
fn fork_while_another_thread_writes(dir: &Path) {
    install(dir);
    let background = std::thread::spawn(|| log_records(writer(0, 0), 0..BUSY_LINES));
    let deadline = Instant::now() + Duration::from_secs(120);
    for i in 0..BUSY_FORKS {
        let pid = fork_child(move || log_records(writer(100 + i, 0), 0..1));
        wait_child(pid, deadline);
    }
    background.join().unwrap();
}

/// A parent logging through the non-blocking writer forks; the child has no background
/// thread, so its writer must write synchronously rather than queue forever.
fn non_blocking_parent_and_children(dir: &Path) {
    let log = SharedFile::builder(dir.join("app.log"))
        .max_bytes(MAX_BYTES)
        .max_files(MAX_FILES)
        .build()
        .unwrap();
    let (non_blocking, guard) = log.non_blocking_builder().max_queued_bytes(4096).finish();
    common::workload::init_fmt_with(non_blocking);
    log_records(writer(0, 0), 0..1_000);
    let deadline = Instant::now() + Duration::from_secs(120);
    let pids: Vec<_> = (1..=CHILDREN)
        .map(|process| fork_child(move || log_records(writer(process, 0), 0..LINES)))
        .collect();
    log_records(writer(0, 0), 1_000..LINES);
    for pid in pids {
        wait_child(pid, deadline);
    }
    drop(guard);
}

/// Two parent threads log through a non-blocking queue that holds about one event, so
/// that they are always pushing or waiting for room, while the main thread forks again
/// and again. Each child writes synchronously and its flush returns at once: it never
/// touches the queue, its room or its flushes, which a parent thread may have held.
fn fork_while_non_blocking_producers_wait_for_room(dir: &Path) {
    use std::io::Write;
    let log = SharedFile::builder(dir.join("app.log"))
        .max_bytes(MAX_BYTES)
        .max_files(MAX_FILES)
        .build()
        .unwrap();
    let (non_blocking, guard) = log.non_blocking_builder().max_queued_bytes(256).finish();
    common::workload::init_fmt_with(non_blocking.clone());
    let background: Vec<_> = (0..2)
        .map(|thread| std::thread::spawn(move || log_records(writer(0, thread), 0..BUSY_LINES)))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    for i in 0..BUSY_FORKS {
        let mut non_blocking = non_blocking.clone();
        let pid = fork_child(move || {
            log_records(writer(100 + i, 0), 0..1);
            non_blocking.flush().unwrap();
        });
        wait_child(pid, deadline);
    }
    for thread in background {
        thread.join().unwrap();
    }
    drop(guard);
}

/// A parent thread holds `std`'s stderr lock at the moment of the fork; the child's first
/// error report must not wait for a thread that does not exist in the child.
fn report_in_a_child_while_a_parent_thread_holds_stderr(dir: &Path) {
    use std::io::Write;
    let path = dir.join("app.log");
    let log = SharedFile::builder(&path)
        .path_check_interval(Duration::ZERO)
        .build()
        .unwrap();
    (&log).write_all(b"before\n").unwrap();
    // From now on every write fails (the path is a directory) and is reported.
    std::fs::remove_file(&path).unwrap();
    std::fs::create_dir(&path).unwrap();
    let (held_tx, held_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let _stderr = std::io::stderr().lock();
        held_tx.send(()).unwrap();
        let _ = release_rx.recv();
    });
    held_rx.recv().unwrap();
    let pid = fork_child(move || {
        assert!((&log).write_all(b"after\n").is_err());
    });
    wait_child(pid, Instant::now() + Duration::from_secs(30));
    release_tx.send(()).unwrap();
    holder.join().unwrap();
}

#[test]
fn fork_scenario_entry() {
    let Ok(spec) = std::env::var(SCENARIO_ENV) else {
        return;
    };
    let (scenario, dir) = spec.split_once(':').unwrap();
    match scenario {
        "children" => parent_and_children(Path::new(dir)),
        "busy" => fork_while_another_thread_writes(Path::new(dir)),
        "non-blocking" => non_blocking_parent_and_children(Path::new(dir)),
        "non-blocking-busy" => fork_while_non_blocking_producers_wait_for_room(Path::new(dir)),
        "stderr" => report_in_a_child_while_a_parent_thread_holds_stderr(Path::new(dir)),
        "descriptors" => forks_leave_no_descriptor_behind(Path::new(dir)),
        other => panic!("unknown scenario {other}"),
    }
}

fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// The fork handlers open a description for each child and close the parent's copy: a
/// parent that forks a thousand times holds as many descriptors as before.
fn forks_leave_no_descriptor_behind(dir: &Path) {
    install(dir);
    log_records(writer(0, 0), 0..1);
    let before = open_descriptors();
    for _ in 0..1000 {
        wait_child(fork_child(|| {}), Instant::now() + Duration::from_secs(30));
    }
    assert_eq!(open_descriptors(), before);
}

/// Runs a scenario in a fresh process and fails if it fails or hangs. The reports a
/// scenario provokes on purpose are shown only if it fails.
fn run_scenario(scenario: &str, dir: &Path) {
    let spec = format!("{scenario}:{}", dir.display());
    let entry = common::entry!(fork_scenario_entry);
    let out = tempfile::tempdir().unwrap();
    start_scenario(&entry, SCENARIO_ENV, &spec, out.path())
        .with_deadline(SCENARIO_DEADLINE)
        .finish()
        .assert_exited_ok();
}

#[test]
fn forked_children_and_their_parent_share_the_file_safely() {
    let dir = tempfile::tempdir().unwrap();
    run_scenario("children", dir.path());

    verify_parent_and_children(dir.path(), 2);
}

/// Checks `LINES` records from each of `parent_threads` parent threads and each child,
/// with rotation throughout.
fn verify_parent_and_children(dir: &Path, parent_threads: u32) {
    let mut verifier = Verifier::new(dir.join("app.log"), MAX_BYTES, MAX_FILES).expect_threads(
        0,
        parent_threads,
        Expect::Exactly(LINES),
    );
    for process in 1..=CHILDREN {
        verifier = verifier.expect(writer(process, 0), Expect::Exactly(LINES));
    }
    let report = verifier.verify();
    report.assert_ok();
    assert!(report.archives >= 50, "rotation ran throughout\n{report}");
}

#[test]
fn a_fork_while_another_thread_writes_never_deadlocks_the_child() {
    let dir = tempfile::tempdir().unwrap();
    run_scenario("busy", dir.path());

    let mut verifier = Verifier::new(dir.path().join("app.log"), MAX_BYTES, MAX_FILES)
        .expect(writer(0, 0), Expect::Exactly(BUSY_LINES));
    for i in 0..BUSY_FORKS {
        verifier = verifier.expect(writer(100 + i, 0), Expect::Exactly(1));
    }
    verifier.verify().assert_ok();
}

#[test]
fn forked_children_of_a_non_blocking_parent_write_synchronously() {
    let dir = tempfile::tempdir().unwrap();
    run_scenario("non-blocking", dir.path());
    verify_parent_and_children(dir.path(), 1);
}

#[test]
fn a_fork_while_non_blocking_producers_wait_for_room_never_blocks_the_child() {
    let dir = tempfile::tempdir().unwrap();
    run_scenario("non-blocking-busy", dir.path());

    let mut verifier = Verifier::new(dir.path().join("app.log"), MAX_BYTES, MAX_FILES)
        .expect_threads(0, 2, Expect::Exactly(BUSY_LINES));
    for i in 0..BUSY_FORKS {
        verifier = verifier.expect(writer(100 + i, 0), Expect::Exactly(1));
    }
    verifier.verify().assert_ok();
}

#[test]
fn an_error_report_in_a_child_never_waits_for_a_parent_thread() {
    let dir = tempfile::tempdir().unwrap();
    run_scenario("stderr", dir.path());
}

#[test]
fn forks_leave_no_descriptor_behind_in_the_parent() {
    if !Path::new("/proc/self/fd").is_dir() {
        println!("skipped: no /proc/self/fd to count descriptors");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    run_scenario("descriptors", dir.path());
}
