//! An I/O error while logging goes back to the caller, is counted and reported on stderr
//! (rate-limited), and never stops the next write from trying again.
//!
//! A full disk is simulated by pointing the log path at `/dev/full`, which fails every
//! write with ENOSPC, then pointing it back at a real file.

use std::io::Write;
use std::path::Path;
use std::process::Command;

use tracing_shared_file::SharedFile;
use tracing_subscriber::prelude::*;

/// Points `link` at `target` atomically, as an operator swapping files would.
fn repoint(link: &Path, target: &Path) {
    let tmp = link.with_extension("tmp-link");
    std::os::unix::fs::symlink(target, &tmp).unwrap();
    std::fs::rename(&tmp, link).unwrap();
}

#[test]
fn a_failing_write_returns_the_error_and_the_next_write_retries() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    repoint(&path, Path::new("/dev/full"));
    let log = SharedFile::builder(&path).build().unwrap();

    for _ in 0..100 {
        let err = (&log).write_all(b"lost to a full disk\n").unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::StorageFull);
    }
    let stats = log.stats();
    assert_eq!(stats.write_errors, 100);
    assert_eq!(stats.events_dropped, 100);
    assert_eq!(stats.events_written, 0);

    // Space is back: the very next write succeeds, with no restart.
    repoint(&path, &dir.path().join("real.log"));
    (&log).write_all(b"written after recovery\n").unwrap();
    assert_eq!(log.stats().events_written, 1);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("real.log")).unwrap(),
        "written after recovery\n"
    );
}

const CHILD_ENV: &str = "TSF_WRITE_ERRORS_CHILD";

/// Child side: log through `tracing` into a full disk, then print the stats.
#[test]
fn full_disk_child_entry() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let path = Path::new(&dir).join("app.log");
    repoint(&path, Path::new("/dev/full"));
    let log = SharedFile::builder(&path).build().unwrap();
    tracing_subscriber::registry().with(log.layer()).init();
    for i in 0..1000 {
        tracing::info!(i, "the fmt layer drops the error; the application goes on");
    }
    let stats = log.stats();
    println!(
        "\nSTATS errors={} dropped={}",
        stats.write_errors, stats.events_dropped
    );
}

#[test]
fn errors_through_tracing_are_counted_and_reported_once() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "full_disk_child_entry",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir.path())
        .output()
        .unwrap();
    assert!(output.status.success(), "the application kept running");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("STATS errors=1000 dropped=1000"),
        "{stdout}"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    let reports: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("tracing-shared-file:"))
        .collect();
    assert_eq!(reports.len(), 1, "rate-limited to one report:\n{stderr}");
    assert!(reports[0].contains("cannot write to log file"), "{stderr}");
    assert!(reports[0].contains("app.log"), "{stderr}");
    assert!(reports[0].contains("No space left on device"), "{stderr}");
}
