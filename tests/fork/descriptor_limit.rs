//! A child forked with no descriptor free gets no fresh lock description, and its
//! inherited lock number stays taken until it reopens the lock file, so that none of its
//! own files is closed or replaced behind its back: its grandchild logs and writes to the
//! child's own file, and a child that drops its log closes none of its own files.

use std::io::Write;
use std::path::PathBuf;

use tracing_shared_file::SharedFile;

use super::support::{
    MAX_FILES, NO_ROTATION, limit_descriptors_to_those_open, restore_descriptor_limit,
    run_scenario, write_records,
};
use crate::common;
use common::forked::{exited_ok, say, wait_forked};
use common::verifier::{Expect, Verifier};
use common::workload::WriterId;

const EMFILE_GRANDCHILD_ENV: &str = "TSF_FORK_LOCK_EMFILE_GRANDCHILD";
const EMFILE_DROP_ENV: &str = "TSF_FORK_LOCK_EMFILE_DROP";
/// The file a child forked at the descriptor limit opens for itself.
const CHILD_OWN_FILE: &str = "child-own.txt";
const OWN_BEFORE: &[u8] = b"the child's own line, before it forks\n";
const OWN_GRANDCHILD: &[u8] = b"the grandchild's line in the child's own file\n";
const OWN_AFTER: &[u8] = b"the child's own line, after its child exited\n";
/// Records each process of the scenario logs.
const EMFILE_LINES: u64 = 100;

/// Process P: logs, forks child C with no descriptor free (so C gets no fresh lock
/// description), and logs on. C opens a file of its own (the lowest free number), writes a
/// line to it, and forks grandchild G before it ever logs; G writes a line to C's file
/// through the descriptor it inherited, and logs; then C logs and writes to its file again.
/// Exit codes of C: bit 0 its own file, bit 1 its logging, bit 2 its grandchild failed.
#[test]
fn emfile_child_and_grandchild_entry() {
    let Some(dir) = std::env::var_os(EMFILE_GRANDCHILD_ENV) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let log = SharedFile::builder(dir.join("app.log"))
        .max_bytes(NO_ROTATION)
        .build()
        .unwrap();
    let [parent, child, grandchild] = [0, 1, 2].map(|process| WriterId { process, thread: 0 });
    assert!(write_records(&log, parent, 0..1));
    let old = limit_descriptors_to_those_open();
    // SAFETY: the child only writes, forks and `_exit`s.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        restore_descriptor_limit(&old);
        let Ok(mut own) = std::fs::File::create(dir.join(CHILD_OWN_FILE)) else {
            say("child: cannot create its own file\n");
            // SAFETY: ends the child without running the parent's destructors.
            unsafe { libc::_exit(1) };
        };
        let mut failed = 0;
        if own.write_all(OWN_BEFORE).is_err() {
            failed |= 1;
        }
        // SAFETY: the grandchild only writes and `_exit`s.
        let grandchild_pid = unsafe { libc::fork() };
        if grandchild_pid == 0 {
            let own_ok = match own.write_all(OWN_GRANDCHILD) {
                Ok(()) => true,
                Err(e) => {
                    say(&format!("grandchild: writing its parent's own file: {e}\n"));
                    false
                }
            };
            let logged = write_records(&log, grandchild, 0..EMFILE_LINES);
            let counted = log.stats().events_written == EMFILE_LINES;
            // SAFETY: ends the grandchild without running destructors.
            unsafe { libc::_exit(if own_ok && logged && counted { 0 } else { 1 }) };
        }
        if !wait_forked(grandchild_pid).is_some_and(exited_ok) {
            failed |= 4;
        }
        if !write_records(&log, child, 0..EMFILE_LINES) {
            failed |= 2;
        }
        if let Err(e) = own.write_all(OWN_AFTER) {
            say(&format!("child: writing its own file: {e}\n"));
            failed |= 1;
        }
        // SAFETY: ends the child without running the parent's destructors.
        unsafe { libc::_exit(failed) };
    }
    restore_descriptor_limit(&old);
    assert!(pid > 0, "fork failed");
    assert!(write_records(&log, parent, 1..EMFILE_LINES));
    let status = wait_forked(pid).expect("the child hung");
    assert!(
        exited_ok(status),
        "the child failed: status {status:#x} (exit bits: 1 its own file, 2 its logging, 4 \
         its grandchild)"
    );
}

/// Process P: logs, forks child C with no descriptor free. C opens a file of its own,
/// drops its `SharedFile` (as one that builds a new one would), writes to its own file,
/// then builds a new `SharedFile` and logs. P logs once C is done. Exit codes of C: 1 its
/// own file, 2 its logging.
#[test]
fn emfile_child_drops_its_log_entry() {
    let Some(dir) = std::env::var_os(EMFILE_DROP_ENV) else {
        return;
    };
    let path = PathBuf::from(dir).join("app.log");
    let log = SharedFile::builder(&path)
        .max_bytes(NO_ROTATION)
        .build()
        .unwrap();
    (&log).write_all(b"parent first\n").unwrap();
    let old = limit_descriptors_to_those_open();
    // SAFETY: the child only writes, builds and `_exit`s.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        restore_descriptor_limit(&old);
        let own = std::fs::File::create(path.with_file_name(CHILD_OWN_FILE));
        let Ok(mut own) = own else {
            say("child: cannot create its own file\n");
            // SAFETY: ends the child without running the parent's destructors.
            unsafe { libc::_exit(1) };
        };
        drop(log);
        let mut failed = 0;
        if let Err(e) = own.write_all(OWN_AFTER) {
            say(&format!(
                "child: writing its own file after dropping its log: {e}\n"
            ));
            failed |= 1;
        }
        let rebuilt = SharedFile::builder(&path).max_bytes(NO_ROTATION).build();
        if !rebuilt.is_ok_and(|log| (&log).write_all(b"child, after the rebuild\n").is_ok()) {
            failed |= 2;
        }
        // SAFETY: ends the child without running the parent's destructors.
        unsafe { libc::_exit(failed) };
    }
    restore_descriptor_limit(&old);
    assert!(pid > 0, "fork failed");
    let status = wait_forked(pid).expect("the child hung");
    (&log).write_all(b"parent last\n").unwrap();
    assert!(
        exited_ok(status),
        "the child failed: status {status:#x} (exit bits: 1 its own file, 2 its logging)"
    );
}

/// Before the fix, the child closed the inherited lock descriptor while its `LockFile`
/// still owned the number; the child's own file then got that number, and the fork of
/// the grandchild put a lock description in its place there: the grandchild's write to
/// the child's file failed (`EBADF`). Now the number stays taken (it points at the log
/// file's description) until the child reopens the lock file.
#[test]
fn a_child_forked_at_the_descriptor_limit_keeps_its_own_files_and_its_grandchild_logs() {
    let dir = tempfile::tempdir().unwrap();
    run_scenario(
        &common::entry!(emfile_child_and_grandchild_entry),
        EMFILE_GRANDCHILD_ENV,
        dir.path().to_str().unwrap(),
    );
    assert_eq!(
        std::fs::read(dir.path().join(CHILD_OWN_FILE))
            .unwrap()
            .escape_ascii()
            .to_string(),
        [OWN_BEFORE, OWN_GRANDCHILD, OWN_AFTER]
            .concat()
            .escape_ascii()
            .to_string(),
        "the child's own file holds its lines and its child's, and nothing else"
    );
    let report = Verifier::new(dir.path().join("app.log"), NO_ROTATION, MAX_FILES)
        .expect_threads(0, 1, Expect::Exactly(EMFILE_LINES))
        .expect_threads(1, 1, Expect::Exactly(EMFILE_LINES))
        .expect_threads(2, 1, Expect::Exactly(EMFILE_LINES))
        .verify();
    report.assert_ok();
    assert_eq!(report.archives, 0, "nothing rotated\n{report}");
}

/// Before the fix, a child forked at the limit that dropped its `SharedFile` before it
/// ever logged closed the inherited lock number a second time: by then its own file's.
#[test]
fn a_child_forked_at_the_descriptor_limit_that_drops_its_log_closes_none_of_its_own_files() {
    let dir = tempfile::tempdir().unwrap();
    run_scenario(
        &common::entry!(emfile_child_drops_its_log_entry),
        EMFILE_DROP_ENV,
        dir.path().to_str().unwrap(),
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join(CHILD_OWN_FILE)).unwrap(),
        String::from_utf8(OWN_AFTER.to_vec()).unwrap(),
        "the child's write to its own file went through"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("app.log")).unwrap(),
        "parent first\nchild, after the rebuild\nparent last\n"
    );
}
