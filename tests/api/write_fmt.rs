//! `write!` and `writeln!` straight to the file: `io::Write::write_fmt` calls `write` once
//! per piece of the format string, and each `write` on `&SharedFile` is one event, so
//! unless `write_fmt` formats first and writes once, every line is torn into pieces that
//! other processes' pieces (and rotations) land between.
//!
//! Covers `&SharedFile`, `SharedFile` and `NonBlocking`. The multi-process tests re-run
//! this test binary as writer processes (`worker_entry`), which each write whole records
//! with several format arguments; the shared verifier then checks every line of every
//! file.

use crate::common;

use std::io::Write;
use std::path::Path;

use common::verifier::Verifier;
use common::workload::{Workers, WriteMode, WriterId, WriterSpec, payload, wait_for_file};
use tracing_shared_file::{SharedFile, Stats};

const PROCESSES: u32 = 4;
/// A tenth under Wine, where a contended lock is a server round trip (docs/performance.md):
/// the same number of rotations, in CI's time.
const LINES: u64 = if cfg!(windows) { 2_000 } else { 20_000 };
const MAX_BYTES: u64 = if cfg!(windows) { 6_400 } else { 64 * 1024 };
/// Large enough that no archive is deleted, so every line can be accounted for.
const KEEP_ALL: usize = 100_000;

/// Writes record `seq` of `writer` with `writeln!` and several arguments: the same line
/// as `workload::fmt_line`, which the verifier parses, but formatted by `write_fmt`.
fn write_record(out: &mut impl Write, writer: WriterId, seq: u64) -> std::io::Result<()> {
    writeln!(
        out,
        "2026-11-26T15:00:00.000000Z  INFO workload: REC p={} t={} s={} x={} END",
        writer.process,
        writer.thread,
        seq,
        payload(writer, seq)
    )
}

/// Child side: one writer process. `WriteMode::NonBlocking` writes to the `NonBlocking`
/// writer; any other mode writes to `&SharedFile`.
#[test]
fn worker_entry() {
    let Some(spec) = WriterSpec::from_env() else {
        return;
    };
    let log = SharedFile::builder(&spec.log)
        .max_bytes(spec.max_bytes)
        .max_files(spec.max_files)
        .build()
        .expect("worker cannot build its SharedFile");
    let writer = WriterId {
        process: spec.process,
        thread: 0,
    };
    std::fs::write(spec.sync_dir.join(format!("ready.{}", spec.process)), b"")
        .expect("cannot signal ready");
    wait_for_file(&spec.sync_dir.join("go"));
    if spec.mode == WriteMode::NonBlocking {
        let (mut queue, guard) = log.non_blocking();
        for seq in 0..spec.lines_per_thread {
            write_record(&mut queue, writer, seq).expect("queue a record");
        }
        // Everything queued is written before the stats are read.
        drop(guard);
    } else {
        let mut file = &log;
        for seq in 0..spec.lines_per_thread {
            write_record(&mut file, writer, seq).expect("write a record");
        }
    }
    write_stats(&spec.sync_dir, spec.process, &log.stats());
}

fn write_stats(sync_dir: &Path, process: u32, stats: &Stats) {
    let text = format!(
        "{} {} {}",
        stats.events_written, stats.write_errors, stats.events_dropped
    );
    std::fs::write(sync_dir.join(format!("stats.{process}")), text).expect("write stats");
}

/// `(events_written, write_errors, events_dropped)` as a worker recorded them.
fn read_stats(sync_dir: &Path, process: u32) -> (u64, u64, u64) {
    let text = std::fs::read_to_string(sync_dir.join(format!("stats.{process}")))
        .unwrap_or_else(|e| panic!("worker {process} wrote no stats: {e}"));
    let numbers: Vec<u64> = text.split(' ').map(|n| n.parse().unwrap()).collect();
    (numbers[0], numbers[1], numbers[2])
}

/// Runs `PROCESSES` writers at once in `mode` and checks every line of every file.
fn run_processes(mode: WriteMode) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("logs/app.log");
    let sync_dir = dir.path().join("sync");
    std::fs::create_dir(&sync_dir).unwrap();
    let specs: Vec<WriterSpec> = (0..PROCESSES)
        .map(|process| WriterSpec {
            max_bytes: MAX_BYTES,
            max_files: KEEP_ALL,
            process,
            lines_per_thread: LINES,
            mode,
            ..WriterSpec::new(log.clone(), sync_dir.clone())
        })
        .collect();
    Workers::start(
        || common::entry_command(&common::entry!(worker_entry)),
        &specs,
    )
    .wait();

    let report = (0..PROCESSES)
        .fold(Verifier::new(&log, MAX_BYTES, KEEP_ALL), |verifier, p| {
            verifier.expect_process(p, 1, LINES)
        })
        .verify();
    report.assert_ok();
    assert_eq!(
        report.lines_verified,
        u64::from(PROCESSES) * LINES,
        "{report}"
    );
    assert!(report.archives >= 10, "rotation ran throughout\n{report}");
    for process in 0..PROCESSES {
        // One event per `writeln!`, none lost.
        assert_eq!(
            read_stats(&sync_dir, process),
            (LINES, 0, 0),
            "worker {process}: (events_written, write_errors, events_dropped)"
        );
    }
}

#[test]
fn writeln_to_a_shared_file_from_many_processes_keeps_every_line_whole() {
    run_processes(WriteMode::Tracing);
}

#[test]
fn writeln_to_non_blocking_from_many_processes_keeps_every_line_whole() {
    run_processes(WriteMode::NonBlocking);
}

#[test]
fn one_write_macro_call_is_one_event() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let log = SharedFile::builder(&path).build().unwrap();
    // Values the compiler cannot see: literal arguments are folded into the format string,
    // which then reaches `write_fmt` as one piece and would hide the defect.
    let [one, two, three, four, seven] = std::hint::black_box([1, 2, 3, 4, 7]);
    let (a, b) = std::hint::black_box(("a", 'b'));

    write!(&log, "{}-{}", one, two).unwrap();
    assert_eq!(log.stats().events_written, 1, "write! on &SharedFile");

    // The owned `SharedFile` (a clone, sharing the stats) formats once too.
    let mut owned = log.clone();
    writeln!(owned, " {} {}", a, b).unwrap();
    assert_eq!(log.stats().events_written, 2, "writeln! on SharedFile");

    let (mut queue, guard) = log.non_blocking();
    writeln!(queue, "{}+{}={}", three, four, seven).unwrap();
    drop(guard);
    let stats = log.stats();
    assert_eq!(stats.events_written, 3, "writeln! on NonBlocking");
    assert_eq!(stats.bytes_written, "1-2 a b\n3+4=7\n".len() as u64);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "1-2 a b\n3+4=7\n");
}
