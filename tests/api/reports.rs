//! Without a hook, failures are reported on stderr at most once every 10 seconds for
//! each kind of failure, the next report after that saying how many were suppressed in
//! between. A child process makes write failures (the lock wait times out) and rotation
//! failures (a directory at `app.log.1`) at 0 s, at 9 s and at 10.5 s, and the test
//! reads its stderr.

use std::fs;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::common;
use crate::common::backoff;
use crate::common::children::{REPORT_PREFIX, start_entry_env};
use crate::common::log_files::hold_lock;
use tracing_shared_file::SharedFile;

const REPORTER_ENV: &str = "TSF_REPORTS_DIR";

/// Child side: the failures, on a schedule.
#[test]
fn reporter_entry() {
    let Some(dir) = std::env::var_os(REPORTER_ENV) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let log = SharedFile::builder(dir.join("app.log"))
        .max_bytes(100)
        .lock_timeout(Duration::from_millis(20))
        .build()
        .unwrap();
    (&log).write_all(&[b'x'; 59]).unwrap();
    (&log).write_all(b"\n").unwrap();
    fs::create_dir(dir.join("app.log.1")).unwrap();
    let fail = |writes: usize, rotations: usize| {
        let holder = hold_lock(log.path());
        for _ in 0..writes {
            assert!((&log).write_all(b"times out\n").is_err());
        }
        drop(holder);
        // Each does not fit, so each tries to rotate (the second after the back-off of
        // the first failure), fails, and is appended anyway.
        for at in 0..rotations {
            if at > 0 {
                std::thread::sleep(backoff::wait_after(at as u64) + backoff::SLACK);
            }
            (&log).write_all(&[b'r'; 60]).unwrap();
        }
    };
    let start = Instant::now();
    fail(3, 2);
    std::thread::sleep(Duration::from_secs(9).saturating_sub(start.elapsed()));
    fail(1, 1);
    std::thread::sleep(Duration::from_millis(10_500).saturating_sub(start.elapsed()));
    fail(1, 1);
    let stats = log.stats();
    println!(
        "write_errors={} rotation_errors={}",
        stats.write_errors, stats.rotation_errors
    );
}

#[test]
fn each_kind_of_failure_is_reported_at_most_every_10_s_with_the_count_suppressed() {
    let dir = tempfile::tempdir().unwrap();
    let entry = common::entry!(reporter_entry);
    let finished =
        start_entry_env(&entry, dir.path(), "reporter", REPORTER_ENV, dir.path()).finish();
    finished.assert_success();
    assert!(
        finished.stdout.contains("write_errors=5 rotation_errors=4"),
        "{}",
        finished.stdout
    );
    let log = dir.path().join("app.log");
    let write_report = format!(
        "{REPORT_PREFIX} cannot write to log file `{}`: ",
        log.display()
    );
    let rotation_report = format!(
        "{REPORT_PREFIX} cannot rotate log file `{}`, so it grows past max_bytes until a \
         rotation succeeds: ",
        log.display()
    );
    let reports = finished.reports();
    let summary: Vec<(&str, Option<&str>)> = reports
        .iter()
        .map(|line| {
            let kind = if line.starts_with(&write_report) {
                "write"
            } else if line.starts_with(&rotation_report) {
                "rotation"
            } else {
                "other"
            };
            let suppressed = line
                .strip_suffix(" more suppressed)")
                .and_then(|rest| rest.rsplit_once(" ("))
                .map(|(_, count)| count);
            (kind, suppressed)
        })
        .collect();
    // The first of each kind at once; the ones at 0 s and 9 s after it suppressed
    // (3 of the writes, 2 of the rotations); the one at 10.5 s reported with that count.
    assert_eq!(
        summary,
        [
            ("write", None),
            ("rotation", None),
            ("write", Some("3")),
            ("rotation", Some("2")),
        ],
        "stderr:\n{}",
        finished.stderr
    );
}
