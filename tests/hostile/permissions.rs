//! Permission on the log file revoked, then restored, while an unprivileged process logs:
//! the events in between are dropped and counted, the caller of a direct write gets the
//! error, it is reported once on stderr (a line starting with `tracing-shared-file:`),
//! and logging resumes in the restored file.
//!
//! The writer is this test binary run again as a child process (as `nobody` when the
//! tests run as root): `unprivileged_writer_entry` becomes the child when it finds its
//! environment variables, and is a no-op test otherwise. Every wait has a deadline.

use crate::common;

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::children::{CHILD_DEADLINE, Finished, RunningChild, spawn_entry, touch};
use common::verifier::{Expect, Verifier};
use common::workload::{WriterId, fmt_line, record, wait_for_file};
use tracing_shared_file::SharedFile;
use tracing_subscriber::prelude::*;

const PERM_LOGS_ENV: &str = "TSF_HOSTILE_PERM_LOGS";
const PERM_SYNC_ENV: &str = "TSF_HOSTILE_PERM_SYNC";
const NOBODY: u32 = 65534;
/// Records logged before the revocation, while it lasts (all dropped), and after.
const BEFORE: u64 = 50;
const DURING: u64 = 500;
const AFTER: u64 = 50;

/// Longer than the default path check interval, with a margin.
const PAST_PATH_CHECK_INTERVAL: Duration = Duration::from_millis(50);

fn perm_writer(thread: u32) -> WriterId {
    WriterId { process: 0, thread }
}

/// Child side: runs unprivileged, logs before, during and after the revocation.
#[test]
fn unprivileged_writer_entry() {
    let (Some(logs), Some(sync)) = (
        std::env::var_os(PERM_LOGS_ENV),
        std::env::var_os(PERM_SYNC_ENV),
    ) else {
        return;
    };
    let (logs, sync) = (PathBuf::from(logs), PathBuf::from(sync));
    let log = SharedFile::builder(logs.join("app.log"))
        .build()
        .expect("build as the unprivileged user");
    tracing_subscriber::registry().with(log.layer()).init();
    let emit = |thread: u32, seqs: std::ops::Range<u64>| {
        for seq in seqs {
            tracing::info!(target: "workload", "{}", record(perm_writer(thread), seq));
        }
    };
    let print_stats = |when: &str| {
        let stats = log.stats();
        println!(
            "\nSTATS {when} written={} write_errors={} dropped={}",
            stats.events_written, stats.write_errors, stats.events_dropped
        );
    };

    emit(0, 0..BEFORE);
    touch(&sync.join("phase1"));
    wait_for_file(&sync.join("revoked"));
    // Let the path check interval (`Builder::path_check_interval`, default 10 ms) run out,
    // so that the first write after the revocation asks the kernel about the path: until
    // then, appending to the file already open is documented behaviour.
    std::thread::sleep(PAST_PATH_CHECK_INTERVAL);
    emit(1, 0..DURING);
    // Without tracing, the caller gets the error itself.
    match (&log).write_all(fmt_line(perm_writer(1), DURING).as_bytes()) {
        Ok(()) => println!("\nDIRECT ok"),
        Err(err) => println!("\nDIRECT kind={:?}", err.kind()),
    }
    print_stats("revoked");
    touch(&sync.join("phase2"));
    wait_for_file(&sync.join("restored"));
    emit(2, 0..AFTER);
    print_stats("restored");
}

fn running_as_root() -> bool {
    tempfile::tempfile().unwrap().metadata().unwrap().uid() == 0
}

/// Starts the writer in `scratch`. Root bypasses permissions: then it runs as `nobody`,
/// from a copy of this binary that `nobody` can reach. Unprivileged, the writer is simply
/// another process.
fn start_unprivileged_writer(scratch: &Path, logs: &Path, sync: &Path) -> RunningChild {
    let as_root = running_as_root();
    let exe = if as_root {
        let exe = scratch.join("test-binary");
        fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
        fs::set_permissions(&exe, fs::Permissions::from_mode(0o755)).unwrap();
        exe
    } else {
        std::env::current_exe().unwrap()
    };
    spawn_entry(
        &exe,
        &common::entry!(unprivileged_writer_entry),
        scratch,
        "writer",
        |command| {
            command.env(PERM_LOGS_ENV, logs).env(PERM_SYNC_ENV, sync);
            if as_root {
                use std::os::unix::process::CommandExt;
                command.uid(NOBODY).gid(NOBODY);
            }
        },
    )
}

/// The events written while the permission was revoked were dropped and counted, the
/// direct write got the error, and it was reported once, naming the file and the cause.
fn assert_counted_and_reported_once(finished: &Finished, log: &Path) {
    let dropped = DURING + 1;
    assert!(
        finished.stdout.contains(&format!(
            "STATS revoked written={BEFORE} write_errors={dropped} dropped={dropped}"
        )),
        "{}",
        finished.stdout
    );
    assert!(
        finished.stdout.contains(&format!(
            "STATS restored written={} write_errors={dropped} dropped={dropped}",
            BEFORE + AFTER
        )),
        "{}",
        finished.stdout
    );
    assert!(
        finished.stdout.contains("DIRECT kind=PermissionDenied"),
        "{}",
        finished.stdout
    );
    let reports = finished.reports();
    assert_eq!(reports.len(), 1, "reported once:\n{}", finished.stderr);
    assert!(
        reports[0].contains("cannot write to log file")
            && reports[0].contains(&log.display().to_string())
            && reports[0].contains("Permission denied"),
        "{}",
        reports[0]
    );
}

#[test]
fn revoked_permission_drops_events_until_it_is_restored() {
    let scratch = tempfile::tempdir().unwrap();
    let set_mode = |path: &Path, mode| {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    };
    set_mode(scratch.path(), 0o755);
    let logs = scratch.path().join("logs");
    let sync = scratch.path().join("sync");
    let log = logs.join("app.log");
    for dir in [&logs, &sync] {
        fs::create_dir(dir).unwrap();
        set_mode(dir, 0o777);
    }
    let mut child = start_unprivileged_writer(scratch.path(), &logs, &sync);
    child.wait_for_file(&sync.join("phase1"));
    // Keep the writer's file open to read what reached it, then put a file it cannot open
    // in its place: its handle is now stale and reopening fails with EACCES.
    let before = File::open(&log).expect("the writer created the log file");
    let revoked = logs.join("app.log.revoked");
    File::create(&revoked).unwrap();
    set_mode(&revoked, 0o000);
    let revoked_ino = fs::metadata(&revoked).unwrap().ino();
    fs::rename(&revoked, &log).unwrap();
    touch(&sync.join("revoked"));
    child.wait_for_file(&sync.join("phase2"));
    set_mode(&log, 0o666);
    touch(&sync.join("restored"));
    let finished = child.wait(Instant::now() + CHILD_DEADLINE);
    finished.assert_success();

    assert_counted_and_reported_once(&finished, &log);

    // The lines before went to the original file, the lines after to the restored one,
    // and none of the dropped ones anywhere.
    let copy = scratch.path().join("before-copy.log");
    std::io::copy(&mut &before, &mut File::create(&copy).unwrap()).unwrap();
    let report = Verifier::new(
        &log,
        tracing_shared_file::DEFAULT_MAX_BYTES,
        tracing_shared_file::DEFAULT_MAX_FILES,
    )
    .expect(perm_writer(0), Expect::Exactly(BEFORE))
    .expect(perm_writer(2), Expect::Exactly(AFTER))
    .extra_file(&copy)
    .verify();
    report.assert_ok();
    let lines: Vec<(PathBuf, u64)> = report
        .files
        .iter()
        .map(|f| (f.path.clone(), f.lines))
        .collect();
    assert_eq!(lines, vec![(log.clone(), AFTER), (copy, BEFORE)]);
    let live = fs::metadata(&log).unwrap();
    assert_eq!(
        live.ino(),
        revoked_ino,
        "the writer reopened the restored file rather than replacing it"
    );
}
