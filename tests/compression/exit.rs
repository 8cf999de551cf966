//! Compression finishes in processes that exit right after rotating, with real processes.
//!
//! - Cron-like programs that log 400 lines through `log.layer()` installed with `.init()`
//!   and return from `main`, run one after another: when each exits, every archive but
//!   the newest is gzipped and no temporary file is left; at the end every line is there
//!   once, in a plain or gzipped archive.
//! - The same, 48 jobs run 16 at a time (as `xargs -P 16` would): once they are all done,
//!   every archive but the newest is gzipped, no temporary file is left, and every line is
//!   there once.
//! - An exit waits at most `compress_exit_timeout`: with a zero limit, a process whose
//!   compression is under way exits leaving the archive plain and no temporary file; with
//!   the default, the same archive is gzipped when the process has exited.
//! - The `WorkerGuard`'s drop, and `SharedFile::wait_for_compression`, return once every
//!   archive but the newest is gzipped.

use crate::common;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::verifier::{Expect, Report, Verifier};
use common::workload::{
    RotationPolicy, WriterId, WriterSpec, archive_stamp, fmt_line, run_writer, stamped_archives,
};
use tracing_shared_file::{Naming, SharedFile};

/// The setting: 400 lines of about 120 bytes rotate a 16 KiB file 2 or 3 times.
const MAX_BYTES: u64 = 16 * 1024;
const LINES: u64 = 400;
const KEEP_ALL: usize = 100_000;
const JOB_DEADLINE: Duration = Duration::from_secs(120);

#[test]
fn worker_entry() {
    if let Some(spec) = WriterSpec::from_env() {
        let stats = run_writer(&spec);
        spec.save_stats(&stats);
        // Returns: the harness exits the process, with the layer still installed.
    }
}

fn cron_job(log: &Path, sync: &Path, process: u32) -> WriterSpec {
    WriterSpec {
        max_bytes: MAX_BYTES,
        max_files: KEEP_ALL,
        process,
        threads: 1,
        lines_per_thread: LINES,
        policy: RotationPolicy {
            timestamped: true,
            compress: true,
            ..RotationPolicy::default()
        },
        ..WriterSpec::new(log.to_path_buf(), sync.to_path_buf())
    }
}

/// Starts a cron job at once: `<sync>/go` is already there.
fn spawn_job(spec: &WriterSpec) -> Child {
    let mut command = common::entry_command(&common::entry!(worker_entry));
    spec.apply(&mut command);
    command.stdout(Stdio::null());
    common::spawn_retrying(&mut command).expect("spawn a cron job")
}

fn wait_ok(process: u32, child: &mut Child, deadline: Instant) {
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "job {process} failed: {status}");
            return;
        }
        assert!(Instant::now() < deadline, "job {process} never ended");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// What compression left undone beside `log`: plain archives other than the newest, a
/// newest archive that is not plain only, and hidden temporary files. Empty when done.
fn undone(log: &Path) -> Vec<String> {
    let archives = stamped_archives(log);
    let newest = archives.last().map(|a| (a.stamp, a.counter));
    let mut undone = Vec::new();
    for archive in &archives {
        let is_newest = Some((archive.stamp, archive.counter)) == newest;
        if archive.gz == is_newest {
            undone.push(archive.name.clone());
        }
    }
    let prefix = format!(".{}.", log.file_name().unwrap().to_str().unwrap());
    for entry in fs::read_dir(log.parent().unwrap()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.starts_with(&prefix) && name.ends_with(".tmp") {
            undone.push(name);
        }
    }
    undone
}

fn verify_jobs(log: &Path, specs: &[WriterSpec]) -> Report {
    let verifier = specs.iter().fold(
        Verifier::new(log, MAX_BYTES, KEEP_ALL).timestamped(true),
        |verifier, spec| verifier.expect_threads(spec.process, 1, Expect::Exactly(LINES)),
    );
    let report = verifier.verify();
    assert!(report.is_ok(), "verification failed:\n{report}");
    for spec in specs {
        let stats = spec.saved_stats();
        assert_eq!(
            (
                stats.events_written,
                stats.write_errors,
                stats.events_dropped
            ),
            (LINES, 0, 0),
            "job {}",
            spec.process
        );
    }
    report
}

/// 40 runs in a row (the repro gzipped 11 archives and left 112 plain).
#[test]
fn cron_runs_in_a_row_each_exit_with_every_archive_but_the_newest_gzipped() {
    const RUNS: u32 = 40;
    let dir = tempfile::tempdir().unwrap();
    let sync = dir.path().join("sync");
    fs::create_dir(&sync).unwrap();
    fs::write(sync.join("go"), b"").unwrap();
    let log = dir.path().join("app.log");
    let specs: Vec<WriterSpec> = (0..RUNS).map(|run| cron_job(&log, &sync, run)).collect();
    for spec in &specs {
        let mut child = spawn_job(spec);
        wait_ok(spec.process, &mut child, Instant::now() + JOB_DEADLINE);
        assert_eq!(
            undone(&log),
            [] as [String; 0],
            "run {} exited with its compression unfinished",
            spec.process
        );
    }
    let report = verify_jobs(&log, &specs);
    assert!(
        report.archives > 80,
        "too few rotations to mean much: {report}"
    );
    assert_eq!(report.compressed, report.archives - 1, "{report}");
}

/// 48 jobs, 16 running at a time, each started as soon as another ends (the issue's
/// repro left 82 archives plain and 12 temporary files).
#[test]
fn cron_jobs_sixteen_at_a_time_leave_every_archive_but_the_newest_gzipped() {
    const JOBS: u32 = 48;
    const AT_A_TIME: usize = 16;
    let dir = tempfile::tempdir().unwrap();
    let sync = dir.path().join("sync");
    fs::create_dir(&sync).unwrap();
    fs::write(sync.join("go"), b"").unwrap();
    let log = dir.path().join("app.log");
    let specs: Vec<WriterSpec> = (0..JOBS).map(|job| cron_job(&log, &sync, job)).collect();
    let deadline = Instant::now() + JOB_DEADLINE * 2;
    let mut running: Vec<(u32, Child)> = Vec::new();
    let mut next = specs.iter();
    loop {
        while running.len() < AT_A_TIME
            && let Some(spec) = next.next()
        {
            running.push((spec.process, spawn_job(spec)));
        }
        if running.is_empty() {
            break;
        }
        let mut index = 0;
        while index < running.len() {
            if let Some(status) = running[index].1.try_wait().unwrap() {
                let (process, _) = running.swap_remove(index);
                assert!(status.success(), "job {process} failed: {status}");
            } else {
                index += 1;
            }
        }
        assert!(Instant::now() < deadline, "the jobs never ended");
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(undone(&log), [] as [String; 0], "compression left undone");
    let report = verify_jobs(&log, &specs);
    assert!(
        report.archives > 100,
        "too few rotations to mean much: {report}"
    );
    assert_eq!(report.compressed, report.archives - 1, "{report}");
}

const ENV_LOG: &str = "TSF_EXIT_LOG";
const ENV_TIMEOUT_MS: &str = "TSF_EXIT_TIMEOUT_MS";
/// One record per file: every event after the first rotates.
const TINY: u64 = 160;
/// Lines of the big archive: about 5.5 MB, which takes a while to gzip.
const BIG_LINES: u64 = 50_000;
const ROTATOR: WriterId = WriterId {
    process: 2,
    thread: 0,
};

/// Rotates once, then returns (so that the harness exits the process) with the
/// compression of the archives it found just started.
#[test]
fn rotate_once_entry() {
    let Some(log) = std::env::var_os(ENV_LOG) else {
        return;
    };
    let mut builder = SharedFile::builder(PathBuf::from(log))
        .max_bytes(TINY)
        .max_files(KEEP_ALL)
        .naming(Naming::Timestamped)
        .compress(true);
    if let Ok(millis) = std::env::var(ENV_TIMEOUT_MS) {
        let timeout = match millis.as_str() {
            "max" => Duration::MAX,
            millis => Duration::from_millis(millis.parse().unwrap()),
        };
        builder = builder.compress_exit_timeout(timeout);
    }
    let shared = builder.build().expect("build");
    (&shared)
        .write_all(fmt_line(ROTATOR, 0).as_bytes())
        .unwrap();
    assert_eq!(shared.stats().rotations, 1);
}

/// A log whose live file holds one record, beside a plain archive big enough to take a
/// while to compress; returns the log and the archive's name.
fn big_archive_beside(dir: &Path) -> (PathBuf, String) {
    let log = dir.join("app.log");
    let seed = WriterId {
        process: 1,
        thread: 0,
    };
    fs::write(&log, fmt_line(seed, 0)).unwrap();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let name = format!("app.log.{}", archive_stamp(now.as_secs() as i64 - 3600));
    let big = WriterId {
        process: 3,
        thread: 0,
    };
    let mut file = std::io::BufWriter::new(fs::File::create(log.with_file_name(&name)).unwrap());
    for seq in 0..BIG_LINES {
        file.write_all(fmt_line(big, seq).as_bytes()).unwrap();
    }
    file.flush().unwrap();
    (log, name)
}

fn run_rotate_once(log: &Path, timeout: Option<Duration>) {
    let mut command = common::entry_command(&common::entry!(rotate_once_entry));
    command.env(ENV_LOG, log).stdout(Stdio::null());
    match timeout {
        Some(Duration::MAX) => command.env(ENV_TIMEOUT_MS, "max"),
        Some(timeout) => command.env(ENV_TIMEOUT_MS, timeout.as_millis().to_string()),
        None => &mut command,
    };
    let mut child = common::spawn_retrying(&mut command).unwrap();
    wait_ok(2, &mut child, Instant::now() + JOB_DEADLINE);
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// With `compress_exit_timeout(ZERO)` the exit stops the compression under way: the big
/// archive stays plain, and its temporary file is removed, not left behind.
#[test]
fn an_exit_past_its_timeout_stops_the_compression_and_leaves_no_temporary() {
    let dir = tempfile::tempdir().unwrap();
    let (log, big) = big_archive_beside(dir.path());
    run_rotate_once(&log, Some(Duration::ZERO));
    let names = names(dir.path());
    assert!(names.contains(&big), "{names:?}");
    assert!(!names.contains(&format!("{big}.gz")), "{names:?}");
    assert!(
        !names.iter().any(|name| name.ends_with(".tmp")),
        "a temporary file left behind: {names:?}"
    );
}

/// With the default limit the same exit waits until the big archive is gzipped, and so
/// it does with no limit (`Duration::MAX`).
#[test]
fn an_exit_within_its_timeout_leaves_the_archive_gzipped() {
    exit_leaves_the_archive_gzipped(None);
    exit_leaves_the_archive_gzipped(Some(Duration::MAX));
}

fn exit_leaves_the_archive_gzipped(timeout: Option<Duration>) {
    let dir = tempfile::tempdir().unwrap();
    let (log, big) = big_archive_beside(dir.path());
    run_rotate_once(&log, timeout);
    let names = names(dir.path());
    assert!(names.contains(&format!("{big}.gz")), "{names:?}");
    assert_eq!(undone(&log), [] as [String; 0]);
    let report = Verifier::new(&log, u64::MAX, KEEP_ALL)
        .timestamped(true)
        .check_rotation_points(false)
        .expect(
            WriterId {
                process: 1,
                thread: 0,
            },
            Expect::Exactly(1),
        )
        .expect(
            WriterId {
                process: 3,
                thread: 0,
            },
            Expect::Exactly(BIG_LINES),
        )
        .expect(ROTATOR, Expect::Exactly(1))
        .verify();
    assert!(report.is_ok(), "{report}");
}

/// Timestamped, gzipped, every archive kept, rotating every 16 KiB.
fn compressed_log(log: &Path) -> SharedFile {
    SharedFile::builder(log)
        .max_bytes(MAX_BYTES)
        .max_files(KEEP_ALL)
        .naming(Naming::Timestamped)
        .compress(true)
        .build()
        .unwrap()
}

/// Sync writes that rotate often, then an explicit wait: when it returns `true`, every
/// archive but the newest is gzipped.
#[test]
fn wait_for_compression_returns_once_every_archive_but_the_newest_is_gzipped() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let shared = compressed_log(&log);
    let writer = WriterId {
        process: 1,
        thread: 0,
    };
    for seq in 0..2_000 {
        (&shared)
            .write_all(fmt_line(writer, seq).as_bytes())
            .unwrap();
    }
    assert!(shared.stats().rotations >= 10);
    assert!(shared.wait_for_compression(JOB_DEADLINE));
    assert_eq!(undone(&log), [] as [String; 0]);
    assert_eq!(
        shared.stats().archives_compressed,
        stamped_archives(&log).len() as u64 - 1
    );
}

/// A non-blocking writer's guard, dropped: when the drop returns, every event is written
/// and every archive but the newest is gzipped.
#[test]
fn a_worker_guards_drop_returns_once_every_archive_but_the_newest_is_gzipped() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let shared = compressed_log(&log);
    let (mut writer, guard) = shared.non_blocking();
    let id = WriterId {
        process: 1,
        thread: 0,
    };
    for seq in 0..2_000 {
        writer.write_all(fmt_line(id, seq).as_bytes()).unwrap();
    }
    drop(guard);
    assert!(shared.stats().rotations >= 10);
    assert_eq!(undone(&log), [] as [String; 0]);
    let report = Verifier::new(&log, MAX_BYTES, KEEP_ALL)
        .timestamped(true)
        .expect(id, Expect::Exactly(2_000))
        .verify();
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.compressed, report.archives - 1, "{report}");
}
