//! After a fork, the child logs too: parent and child both log every record to the
//! same rotating file, also when the child drops privileges (it keeps the lock
//! description, the mapped page and the log handle it inherited, and needs no permission
//! on the files), and when a worker that dropped privileges forks a grandchild.

use std::path::Path;

use tracing_shared_file::SharedFile;
use tracing_subscriber::prelude::*;

use super::support::{
    MAX_FILES, NO_ROTATION, NOBODY, log_records, run_scenario, run_scenario_to_end,
};
use crate::common;
use common::forked::{exited_ok, wait_forked};
use common::verifier::{Expect, Verifier};
use common::workload::WriterId;

const LOGGING_ENV: &str = "TSF_FORK_LOCK_LOGGING";
const GRANDCHILD_ENV: &str = "TSF_FORK_LOCK_GRANDCHILD";
const MAX_BYTES: u64 = 32 * 1024;
const LINES: u64 = 1_000;

/// Process side: logs, forks a child, and both log `LINES` records at once. The variable
/// is `<keep|drop>:<dir>`: with `drop`, the child drops to nobody before it logs.
#[test]
fn parent_and_child_logging_entry() {
    let Ok(spec) = std::env::var(LOGGING_ENV) else {
        return;
    };
    let (privileges, dir) = spec.split_once(':').unwrap();
    let drop_privileges = privileges == "drop";
    let log = SharedFile::builder(Path::new(dir).join("app.log"))
        // Without privileges the child could not rename in the directory: no rotation.
        .max_bytes(if drop_privileges {
            NO_ROTATION
        } else {
            MAX_BYTES
        })
        .max_files(MAX_FILES)
        .build()
        .unwrap();
    tracing_subscriber::registry().with(log.layer()).init();
    let [parent, child] = [0, 1].map(|process| WriterId { process, thread: 0 });
    // The parent has used the lock before the fork.
    log_records(parent, 0..1);
    // SAFETY: the child only logs and `_exit`s.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        if drop_privileges {
            // SAFETY: plain syscalls changing this process's own credentials.
            let dropped = unsafe { libc::setgid(NOBODY) == 0 && libc::setuid(NOBODY) == 0 };
            if !dropped {
                // SAFETY: ends the child without running the parent's destructors.
                unsafe { libc::_exit(2) };
            }
        }
        let ok = std::panic::catch_unwind(|| log_records(child, 0..LINES)).is_ok()
            && log.stats().events_dropped == 0;
        // SAFETY: ends the child without running the parent's destructors.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    log_records(parent, 1..LINES);
    let status = wait_forked(pid).expect("the forked child hung");
    assert!(
        exited_ok(status),
        "the forked child failed: status {status:#x}"
    );
}

#[test]
fn a_forked_child_and_its_parent_both_log_every_record() {
    parent_and_child_log_every_record(false);
}

/// A worker that drops privileges after the fork keeps the lock description, the mapped
/// page and the log handle it inherited: it needs no permission on the files (here
/// `0644 root`) to go on logging.
#[test]
fn a_forked_child_that_drops_privileges_still_logs_every_record() {
    if !is_root() {
        println!("skipped: dropping privileges needs root");
        return;
    }
    parent_and_child_log_every_record(true);
}

fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// A directory the unprivileged processes can search, as any worker in /var/log/app
/// would look the paths up (lstat), but not write: they cannot create or rename there.
fn searchable_dir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

fn parent_and_child_log_every_record(drop_privileges: bool) {
    let dir = searchable_dir();
    let privileges = if drop_privileges { "drop" } else { "keep" };
    let spec = format!("{privileges}:{}", dir.path().display());
    run_scenario(
        &common::entry!(parent_and_child_logging_entry),
        LOGGING_ENV,
        &spec,
    );

    let max_bytes = if drop_privileges {
        NO_ROTATION
    } else {
        MAX_BYTES
    };
    let report = Verifier::new(dir.path().join("app.log"), max_bytes, MAX_FILES)
        .expect_process(0, 1, LINES)
        .expect(
            WriterId {
                process: 1,
                thread: 0,
            },
            Expect::Exactly(LINES),
        )
        .verify();
    report.assert_ok();
    if !drop_privileges {
        assert!(report.archives >= 2, "rotation ran\n{report}");
    }
}

// ---------------------------------------------------------------------------------------
// A worker that drops privileges, then forks: the grandchild logs too.

/// Logs `seqs` and checks this process's stats: exactly `written` events, none dropped.
/// Says on stderr what went wrong (only ever seen when the test fails).
fn log_and_check(
    log: &SharedFile,
    who: &str,
    writer: WriterId,
    seqs: std::ops::Range<u64>,
    written: u64,
) -> bool {
    if std::panic::catch_unwind(|| log_records(writer, seqs)).is_err() {
        return false;
    }
    let stats = log.stats();
    let ok = stats.events_written == written && stats.events_dropped == 0;
    if !ok {
        eprintln!("{who}: expected {written} events written and none dropped: {stats:?}");
    }
    ok
}

/// Process P (root): builds the log (files `0644 root`), forks worker C, which drops to
/// nobody and logs, then forks grandchild G, which logs while C goes on logging. P logs
/// meanwhile. Every process logs `LINES` records.
#[test]
fn dropped_worker_and_grandchild_entry() {
    let Some(dir) = std::env::var_os(GRANDCHILD_ENV) else {
        return;
    };
    let path = Path::new(&dir).join("app.log");
    let log = SharedFile::builder(&path)
        .max_bytes(NO_ROTATION)
        .max_files(MAX_FILES)
        .build()
        .unwrap();
    // Whatever the umask: the unprivileged processes may read the files, never write them.
    use std::os::unix::fs::PermissionsExt;
    for file in [path.clone(), Path::new(&dir).join("app.log.lock")] {
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    tracing_subscriber::registry().with(log.layer()).init();
    let [parent, worker, grandchild] = [0, 1, 2].map(|process| WriterId { process, thread: 0 });
    log_records(parent, 0..1);
    // SAFETY: the child logs, forks and `_exit`s.
    let worker_pid = unsafe { libc::fork() };
    assert!(worker_pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if worker_pid == 0 {
        // SAFETY: plain syscalls changing this process's own credentials.
        if unsafe { libc::setgid(NOBODY) != 0 || libc::setuid(NOBODY) != 0 } {
            eprintln!(
                "worker: cannot drop privileges: {}",
                std::io::Error::last_os_error()
            );
            // SAFETY: ends the child without running the parent's destructors.
            unsafe { libc::_exit(2) };
        }
        // The worker uses the lock unprivileged before it forks.
        log_records(worker, 0..1);
        // SAFETY: the grandchild only logs and `_exit`s.
        let grandchild_pid = unsafe { libc::fork() };
        if grandchild_pid == 0 {
            let ok = log_and_check(&log, "grandchild", grandchild, 0..LINES, LINES);
            // SAFETY: ends the grandchild without running destructors.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        let worker_ok =
            grandchild_pid > 0 && log_and_check(&log, "worker", worker, 1..LINES, LINES);
        let grandchild_ok = match wait_forked(grandchild_pid) {
            Some(status) => exited_ok(status),
            None => {
                eprintln!("worker: the grandchild hung");
                false
            }
        };
        let code = match (worker_ok, grandchild_ok) {
            (true, true) => 0,
            (false, true) => 3,
            (true, false) => 4,
            (false, false) => 5,
        };
        // SAFETY: ends the child without running the parent's destructors.
        unsafe { libc::_exit(code) };
    }
    log_records(parent, 1..LINES);
    let status = wait_forked(worker_pid).expect("the worker hung");
    assert!(
        exited_ok(status),
        "the worker failed: status {status:#x} (exit 2: cannot drop privileges, 3: the \
         worker, 4: the grandchild, 5: both lost records)"
    );
}

/// A worker that drops privileges and then forks: the grandchild's lock description is
/// opened in the worker's fork handler, by an unprivileged process that may only read the
/// lock file. Before the fix it was opened read-write, failed, and the grandchild lost
/// every line ("Permission denied").
#[test]
fn a_grandchild_of_a_worker_that_dropped_privileges_logs_every_record() {
    if !is_root() {
        println!("skipped: dropping privileges needs root");
        return;
    }
    let dir = searchable_dir();
    let finished = run_scenario_to_end(
        &common::entry!(dropped_worker_and_grandchild_entry),
        GRANDCHILD_ENV,
        dir.path().to_str().unwrap(),
    );
    let report = Verifier::new(dir.path().join("app.log"), NO_ROTATION, MAX_FILES)
        .expect_threads(0, 1, Expect::Exactly(LINES))
        .expect_threads(1, 1, Expect::Exactly(LINES))
        .expect_threads(2, 1, Expect::Exactly(LINES))
        .verify();
    assert!(
        finished.status.success(),
        "the logging process failed ({}); the file holds:\n{report}\n--- stderr\n{}",
        finished.status,
        finished.stderr
    );
    report.assert_ok();
    assert_eq!(report.archives, 0, "nothing rotated\n{report}");
}
