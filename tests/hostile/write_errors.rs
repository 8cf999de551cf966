//! An I/O error while logging goes back to the caller, is counted and reported (rate-
//! limited on stderr, or to the user's hook), and never stops the next write from trying.
//!
//! A full disk is simulated in a child process with RLIMIT_FSIZE: a write past the limit
//! stops short at the limit and then fails with EFBIG, exactly like a disk that fills up
//! part-way through an event.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::common;
use tracing_shared_file::SharedFile;
use tracing_subscriber::prelude::*;

const CHILD_ENV: &str = "TSF_WRITE_ERRORS_CHILD";
const LINE: &[u8] = b"one whole line, written as one event\n";

fn set_file_size_limit(bytes: u64) {
    let limit = libc::rlimit {
        rlim_cur: bytes as libc::rlim_t,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: plain syscalls on this process's own limits and signal disposition.
    unsafe {
        // Past the limit the kernel sends SIGXFSZ, which would kill the process.
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &limit), 0);
    }
}

/// Child side: fill the "disk", fail, free it, recover. `mode` picks the reporting.
fn run_child(dir: &Path, mode: &str) {
    let hook_calls = Arc::new(AtomicU64::new(0));
    let mut builder = SharedFile::builder(dir.join("app.log"));
    if mode == "hook" {
        let calls = Arc::clone(&hook_calls);
        builder = builder.on_error(move |failure| {
            assert!(failure.event_dropped());
            assert_eq!(failure.error().kind(), std::io::ErrorKind::FileTooLarge);
            calls.fetch_add(1, Ordering::Relaxed);
        });
    }
    let log = builder.build().unwrap();
    for _ in 0..10 {
        (&log).write_all(LINE).unwrap();
    }
    // Room for half a line more: the next write is short, then fails.
    set_file_size_limit(10 * LINE.len() as u64 + LINE.len() as u64 / 2);
    let err = (&log).write_all(LINE).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::FileTooLarge);

    // Through tracing: the fmt layer drops the error and the application goes on.
    tracing_subscriber::registry().with(log.layer()).init();
    for i in 0..999 {
        tracing::info!(i, "lost to a full disk");
    }
    set_file_size_limit(libc::RLIM_INFINITY);
    (&log).write_all(LINE).unwrap();
    let stats = log.stats();
    println!(
        "\nSTATS written={} errors={} dropped={} hook={}",
        stats.events_written,
        stats.write_errors,
        stats.events_dropped,
        hook_calls.load(Ordering::Relaxed)
    );
}

/// Child side: a rotation blocked by a directory, then an append that fails too.
fn run_rotation_child(dir: &Path) {
    let log = SharedFile::builder(dir.join("app.log"))
        .max_bytes(LINE.len() as u64 + 1)
        .build()
        .unwrap();
    std::fs::create_dir(dir.join("app.log.1")).unwrap();
    (&log).write_all(LINE).unwrap();
    set_file_size_limit(LINE.len() as u64 + LINE.len() as u64 / 2);
    let err = (&log).write_all(LINE).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::FileTooLarge);
    set_file_size_limit(libc::RLIM_INFINITY);
    (&log).write_all(LINE).unwrap();
    let stats = log.stats();
    println!(
        "\nSTATS written={} errors={} rotation_errors={}",
        stats.events_written, stats.write_errors, stats.rotation_errors
    );
}

/// Child side: a rotation whose reopen fails (no inode left), then a peer writes.
fn run_rotation_reopen_fails_child(dir: &Path) {
    let path = dir.join("app.log");
    let rotating = SharedFile::builder(&path)
        .max_bytes(2 * LINE.len() as u64)
        .build()
        .unwrap();
    // A peer that trusts the shared record for an hour: only the record can tell it.
    let peer = SharedFile::builder(&path)
        .max_bytes(2 * LINE.len() as u64)
        .path_check_interval(std::time::Duration::from_secs(3600))
        .build()
        .unwrap();
    (&peer).write_all(LINE).unwrap();
    (&rotating).write_all(LINE).unwrap();

    // Use up every inode of the file system (a tmpfs mounted with few), so the rotation
    // cannot create a fresh file: it does not happen, and the event goes to the live file.
    let mut fillers = Vec::new();
    while std::fs::write(dir.join(format!("filler.{}", fillers.len())), b"").is_ok() {
        fillers.push(dir.join(format!("filler.{}", fillers.len())));
    }
    (&rotating).write_all(LINE).unwrap();
    for filler in fillers {
        std::fs::remove_file(filler).unwrap();
    }
    let stats = rotating.stats();
    assert_eq!(
        (stats.rotation_errors, stats.rotations),
        (1, 0),
        "{stats:?}"
    );
    println!("\nROTATION FAILED {stats:?}");

    // The peer rotates now: the archive is the file that took the event, and the peer
    // appends to the fresh file, not to it.
    (&peer).write_all(b"peer line\n").unwrap();
    println!(
        "LIVE {:?} ARCHIVE {:?}",
        std::fs::read_to_string(&path).unwrap(),
        std::fs::read_to_string(dir.join("app.log.1")).unwrap()
    );
}

#[test]
fn full_disk_child_entry() {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        let (mode, dir) = spec.split_once(':').unwrap();
        match mode {
            "rotation" => run_rotation_child(Path::new(dir)),
            "reopen" => run_rotation_reopen_fails_child(Path::new(dir)),
            _ => run_child(Path::new(dir), mode),
        }
    }
}

struct ChildRun {
    dir: tempfile::TempDir,
    stdout: String,
    stderr: String,
}

fn run(mode: &str) -> ChildRun {
    run_in(mode, tempfile::tempdir().unwrap())
}

fn run_in(mode: &str, dir: tempfile::TempDir) -> ChildRun {
    // Through pipes, not files: the child's RLIMIT_FSIZE would cut a file short.
    let output = common::entry_command(&common::entry!(full_disk_child_entry))
        .env(CHILD_ENV, format!("{mode}:{}", dir.path().display()))
        .output()
        .unwrap();
    let run = ChildRun {
        dir,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    assert!(output.status.success(), "the child failed:\n{}", run.stderr);
    run
}

fn assert_no_partial_line_and_recovered(run: &ChildRun) {
    let content = std::fs::read(run.dir.path().join("app.log")).unwrap();
    assert_eq!(
        content,
        LINE.repeat(11),
        "the short write was cut back, and the write after recovery landed"
    );
}

#[test]
fn a_full_disk_drops_events_whole_and_reports_once() {
    let run = run("stderr");
    assert!(
        run.stdout
            .contains("STATS written=11 errors=1000 dropped=1000 hook=0"),
        "{}",
        run.stdout
    );
    assert_no_partial_line_and_recovered(&run);
    let reports: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("tracing-shared-file:"))
        .collect();
    assert_eq!(
        reports.len(),
        1,
        "rate-limited to one report:\n{}",
        run.stderr
    );
    assert!(
        reports[0].contains("cannot write to log file"),
        "{}",
        run.stderr
    );
    assert!(reports[0].contains("app.log"), "{}", run.stderr);
    assert!(reports[0].contains("File too large"), "{}", run.stderr);
}

#[test]
fn the_error_hook_sees_every_failure_instead_of_stderr() {
    let run = run("hook");
    assert!(
        run.stdout
            .contains("STATS written=11 errors=1000 dropped=1000 hook=1000"),
        "{}",
        run.stdout
    );
    assert_no_partial_line_and_recovered(&run);
    assert!(
        !run.stderr.contains("tracing-shared-file:"),
        "the hook replaces the stderr report:\n{}",
        run.stderr
    );
}

#[test]
fn a_failed_rotation_then_a_failed_append_keeps_what_was_written() {
    let run = run("rotation");
    // One failed rotation: the third write, at once, is within the back-off.
    assert!(
        run.stdout
            .contains("STATS written=2 errors=1 rotation_errors=1"),
        "{}",
        run.stdout
    );
    // The failed append is cut back to where it started, not to an empty file.
    assert_eq!(
        std::fs::read(run.dir.path().join("app.log")).unwrap(),
        LINE.repeat(2)
    );
    assert!(
        run.dir.path().join("app.log.1").is_dir(),
        "the directory was left alone"
    );
    // Each kind of failure has its own report, and neither hides the other.
    let reports: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("tracing-shared-file:"))
        .collect();
    assert_eq!(reports.len(), 2, "{}", run.stderr);
    assert!(
        reports.iter().any(|r| r.contains("cannot rotate log file")),
        "{}",
        run.stderr
    );
    assert!(
        reports
            .iter()
            .any(|r| r.contains("cannot write to log file")),
        "{}",
        run.stderr
    );
}

#[test]
fn a_rotation_that_cannot_reopen_does_not_send_peers_into_the_archive() {
    // A tmpfs with few inodes, so that creating the fresh log file fails; that needs root.
    let dir = tempfile::tempdir().unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m,nr_inodes=32", "tmpfs"])
        .arg(dir.path())
        .output();
    if !mounted.as_ref().is_ok_and(|output| output.status.success()) {
        println!("skipped: cannot mount a tmpfs (needs root): {mounted:?}");
        return;
    }
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(self.0).status();
        }
    }
    let path = dir.path().to_path_buf();
    let _unmount = Unmount(&path);
    let run = run_in("reopen", dir);
    assert!(run.stdout.contains("ROTATION FAILED"), "{}", run.stdout);
    let line = String::from_utf8_lossy(LINE);
    let expected = format!(
        "LIVE \"peer line\\n\" ARCHIVE {:?}",
        format!("{line}{line}{line}")
    );
    assert!(
        run.stdout.contains(&expected),
        "expected {expected}\n{}",
        run.stdout
    );
}
