//! A process out of file descriptors when it rotates: the fresh live file is created
//! before the live file is renamed away, so a rotation that cannot create it has not
//! happened. The log always has a live file, the events go on to it (counted as failed
//! rotations, never as lost events), and rotation resumes once descriptors are free.
//! Also the report's case: one process with 300 compressed, timestamped, non-blocking
//! logs at `RLIMIT_NOFILE` 1024 loses no line, run after run.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::common::{self, entry};
use common::backoff;
use common::children::{CHILD_DEADLINE, Finished, spawn_entry};
use common::verifier::{Expect, Verifier};
use common::workload::{WriterId, fmt_line};
use tracing_shared_file::{Naming, SharedFile, Stats};

const EXHAUSTED_ENV: &str = "TSF_EXHAUSTED_WRITER";
const MANY_LOGS_ENV: &str = "TSF_MANY_LOGS_WRITER";
const MAX_BYTES: u64 = 1000;
const MAX_FILES: usize = 100;
const PER_PHASE: u64 = 30;

fn set_descriptor_limit(limit: u64) {
    let rlimit = libc::rlimit {
        rlim_cur: limit,
        rlim_max: limit,
    };
    // SAFETY: a valid struct; lowering a limit needs no privilege.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &rlimit) }, 0);
}

/// Takes every free descriptor; they are given back when the result is dropped.
fn take_every_descriptor() -> Vec<fs::File> {
    let mut taken = Vec::new();
    while let Ok(file) = fs::File::open("/dev/null") {
        taken.push(file);
    }
    assert!(!taken.is_empty());
    taken
}

fn print_stats(stats: &Stats) {
    println!(
        "\nSTATS rotations={} write_errors={} rotation_errors={} dropped={} written={}",
        stats.rotations,
        stats.write_errors,
        stats.rotation_errors,
        stats.events_dropped,
        stats.events_written
    );
}

/// Child side: `RLIMIT_NOFILE` 64; writes a phase of records, a phase with every
/// descriptor taken, and a phase with them given back, synchronously or through a
/// non-blocking queue.
#[test]
fn exhausted_writer_entry() {
    let Ok(spec) = std::env::var(EXHAUSTED_ENV) else {
        return;
    };
    let (mode, path) = spec.split_once(':').unwrap();
    set_descriptor_limit(64);
    let log = SharedFile::builder(path)
        .max_bytes(MAX_BYTES)
        .max_files(MAX_FILES)
        .build()
        .unwrap();
    let writer = WriterId {
        process: 0,
        thread: 0,
    };
    let (queue, guard) = match mode {
        "non_blocking" => {
            let (queue, guard) = log.non_blocking();
            (Some(queue), Some(guard))
        }
        _ => (None, None),
    };
    let mut queue = queue;
    let mut write_phase = |phase: u64| {
        for seq in phase * PER_PHASE..(phase + 1) * PER_PHASE {
            let line = fmt_line(writer, seq);
            match &mut queue {
                Some(queue) => queue.write_all(line.as_bytes()).unwrap(),
                None => (&log).write_all(line.as_bytes()).unwrap(),
            }
        }
        if let Some(guard) = &guard {
            guard.flush();
        }
    };
    write_phase(0);
    let rotations_before = log.stats().rotations;
    let taken = take_every_descriptor();
    write_phase(1);
    assert!(Path::new(path).exists(), "the log always has a live file");
    let exhausted = log.stats();
    drop(taken);
    assert_eq!(exhausted.rotations, rotations_before, "{exhausted:?}");
    assert!(exhausted.rotation_errors >= 1, "{exhausted:?}");
    // Rotation resumes once the back-off after the last failure is over.
    std::thread::sleep(backoff::wait_after(exhausted.rotation_errors) + backoff::SLACK);
    write_phase(2);
    drop(guard);
    let stats = log.stats();
    assert!(
        stats.rotations > rotations_before,
        "rotation resumed: {stats:?}"
    );
    print_stats(&stats);
}

fn run_child(scratch: &Path, entry: &str, env: &str, spec: String) -> Finished {
    let finished = spawn_entry(
        &std::env::current_exe().unwrap(),
        entry,
        scratch,
        entry,
        |command| {
            command.env(env, spec);
        },
    )
    .wait(Instant::now() + CHILD_DEADLINE);
    finished.assert_success();
    finished
}

#[test]
fn a_rotation_without_a_descriptor_for_the_fresh_file_does_not_happen_and_loses_nothing() {
    for mode in ["sync", "non_blocking"] {
        let scratch = tempfile::tempdir().unwrap();
        let path = scratch.path().join("app.log");
        let finished = run_child(
            scratch.path(),
            &entry!(exhausted_writer_entry),
            EXHAUSTED_ENV,
            format!("{mode}:{}", path.display()),
        );
        assert_eq!(
            (finished.stat("write_errors"), finished.stat("dropped")),
            (0, 0),
            "{mode}: {}",
            finished.stderr
        );
        assert!(
            finished.stderr.contains("the rotation did not happen")
                && finished.stderr.contains("Too many open files"),
            "{mode}: the failure is reported: {}",
            finished.stderr
        );
        let report = Verifier::new(&path, MAX_BYTES, MAX_FILES)
            .expect(
                WriterId {
                    process: 0,
                    thread: 0,
                },
                Expect::Exactly(3 * PER_PHASE),
            )
            .verify();
        // The one file past max_bytes took the events while rotation could not happen.
        assert_eq!(
            (
                report.lost,
                report.duplicated,
                report.torn,
                report.oversized
            ),
            (0, 0, 0, 1),
            "{mode}: {report}"
        );
    }
}

const LOGS: usize = 300;
const LINES_PER_LOG: u64 = 200;

fn many_log_path(dir: &Path, index: usize) -> PathBuf {
    dir.join(format!("log-{index:03}/app.log"))
}

/// Child side: the report's process, at `RLIMIT_NOFILE` 1024.
#[test]
fn many_logs_writer_entry() {
    let Ok(dir) = std::env::var(MANY_LOGS_ENV) else {
        return;
    };
    set_descriptor_limit(1024);
    let dir = PathBuf::from(dir);
    let logs: Vec<SharedFile> = (0..LOGS)
        .map(|index| {
            SharedFile::builder(many_log_path(&dir, index))
                .naming(Naming::Timestamped)
                .compress(true)
                .max_bytes(4096)
                .max_files(MAX_FILES)
                .build()
                .unwrap()
        })
        .collect();
    let mut queues: Vec<_> = logs.iter().map(SharedFile::non_blocking).collect();
    for seq in 0..LINES_PER_LOG {
        for (process, (queue, _)) in (0..).zip(&mut queues) {
            let line = fmt_line(WriterId { process, thread: 0 }, seq);
            queue.write_all(line.as_bytes()).unwrap();
        }
    }
    drop(queues);
    let mut total = Stats::default();
    for log in &logs {
        let stats = log.stats();
        total.rotations += stats.rotations;
        total.write_errors += stats.write_errors;
        total.rotation_errors += stats.rotation_errors;
        total.events_dropped += stats.events_dropped;
        total.events_written += stats.events_written;
    }
    print_stats(&total);
}

#[test]
fn three_hundred_compressed_logs_at_1024_descriptors_lose_no_line() {
    for run in 0..3 {
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path().join("logs");
        fs::create_dir(&dir).unwrap();
        let finished = run_child(
            scratch.path(),
            &entry!(many_logs_writer_entry),
            MANY_LOGS_ENV,
            dir.display().to_string(),
        );
        assert_eq!(
            (
                finished.stat("write_errors"),
                finished.stat("dropped"),
                finished.stat("written")
            ),
            (0, 0, LOGS as u64 * LINES_PER_LOG),
            "run {run}: {}",
            finished.stderr
        );
        for index in 0..LOGS {
            let report = Verifier::new(many_log_path(&dir, index), 4096, MAX_FILES)
                .timestamped(true)
                .expect(
                    WriterId {
                        process: index as u32,
                        thread: 0,
                    },
                    Expect::Exactly(LINES_PER_LOG),
                )
                .verify();
            assert_eq!(
                (report.lost, report.duplicated, report.torn),
                (0, 0, 0),
                "run {run}, log {index}: {report}"
            );
        }
    }
}
