//! How long rotation holds the lock, seen from another process: retention in a directory
//! with thousands of unrelated files keeps exactly the newest `max_files` archives while
//! several processes rotate (it lists the directory only with the lock let go), and a
//! rotation that keeps failing (a directory at an archive name) is tried once per write,
//! the rest of a non-blocking batch appended, every line kept.
//!
//! Two measurements, ignored in CI since their numbers depend on the machine, print
//! another process's longest wait for the lock (`Stats::lock_wait_max`):
//!
//! ```text
//! cargo test --release --test rotation lock_holds -- --ignored --nocapture --test-threads=1
//! ```

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common::{self, entry};
use common::children::{CHILD_DEADLINE, Finished, spawn_entry};
use common::log_files::archive;
use common::verifier::{Expect, Verifier};
use common::workload::{WriterId, fmt_line};
use tracing_shared_file::{Naming, SharedFile};

const WRITER_ENV: &str = "TSF_LOCK_HOLDS_WRITER";
/// About 85 lines of `fmt_line` per file, as in the report this reproduces.
const MAX_BYTES: u64 = 85 * 110;
const MAX_FILES: usize = 5;

/// What a child writer does, passed as `naming:process:lines_or_ms:non_blocking:path`.
struct Spec {
    timestamped: bool,
    process: u32,
    /// A count of lines, or with `for_ms`, how long to write.
    amount: u64,
    for_ms: bool,
    non_blocking: bool,
    path: PathBuf,
    max_files: usize,
}

impl Spec {
    fn encode(&self) -> String {
        format!(
            "{}:{}:{}:{}:{}:{}:{}",
            self.timestamped,
            self.process,
            self.amount,
            self.for_ms,
            self.non_blocking,
            self.max_files,
            self.path.display()
        )
    }

    fn decode(text: &str) -> Spec {
        let parts: Vec<&str> = text.splitn(7, ':').collect();
        Spec {
            timestamped: parts[0].parse().unwrap(),
            process: parts[1].parse().unwrap(),
            amount: parts[2].parse().unwrap(),
            for_ms: parts[3].parse().unwrap(),
            non_blocking: parts[4].parse().unwrap(),
            max_files: parts[5].parse().unwrap(),
            path: PathBuf::from(parts[6]),
        }
    }
}

/// Child side: writes records as writer `process`, then prints how many and its stats.
#[test]
fn lock_holds_writer_entry() {
    let Ok(spec) = std::env::var(WRITER_ENV) else {
        return;
    };
    let spec = Spec::decode(&spec);
    let naming = if spec.timestamped {
        Naming::Timestamped
    } else {
        Naming::Numbered
    };
    let log = SharedFile::builder(&spec.path)
        .naming(naming)
        .max_bytes(MAX_BYTES)
        .max_files(spec.max_files)
        .build()
        .unwrap();
    let writer = WriterId {
        process: spec.process,
        thread: 0,
    };
    let until = Instant::now() + Duration::from_millis(spec.amount);
    let more = |seq: u64| match spec.for_ms {
        true => Instant::now() < until,
        false => seq < spec.amount,
    };
    let mut seq = 0;
    // Each synchronous write's wait for the lock, in microseconds.
    let mut waits = Vec::new();
    if spec.non_blocking {
        let (mut queue, guard) = log.non_blocking();
        while more(seq) {
            queue.write_all(fmt_line(writer, seq).as_bytes()).unwrap();
            seq += 1;
        }
        guard.flush();
        drop(guard);
    } else {
        while more(seq) {
            let waited = log.stats().lock_wait_total;
            (&log).write_all(fmt_line(writer, seq).as_bytes()).unwrap();
            waits.push((log.stats().lock_wait_total - waited).as_micros() as u64);
            seq += 1;
        }
    }
    waits.sort_unstable();
    let quantile = |q: f64| {
        let index = ((waits.len() as f64 * q) as usize).min(waits.len().saturating_sub(1));
        waits.get(index).copied().unwrap_or(0)
    };
    let stats = log.stats();
    println!(
        "\nSTATS lines={seq} rotations={} write_errors={} rotation_errors={} dropped={} \
         lock_wait_max_us={} wait_p99_us={} wait_p999_us={}",
        stats.rotations,
        stats.write_errors,
        stats.rotation_errors,
        stats.events_dropped,
        stats.lock_wait_max.as_micros(),
        quantile(0.99),
        quantile(0.999),
    );
}

/// Runs `specs` as child processes at once; their outputs.
fn run(scratch: &Path, specs: &[Spec]) -> Vec<Finished> {
    let children: Vec<_> = specs
        .iter()
        .map(|spec| {
            spawn_entry(
                &std::env::current_exe().unwrap(),
                &entry!(lock_holds_writer_entry),
                scratch,
                &format!("writer-{}", spec.process),
                |command| {
                    command.env(WRITER_ENV, spec.encode());
                },
            )
        })
        .collect();
    children
        .into_iter()
        .map(|child| {
            let finished = child.wait(Instant::now() + CHILD_DEADLINE);
            finished.assert_success();
            finished
        })
        .collect()
}

fn unrelated_files(dir: &Path, count: usize) {
    for i in 0..count {
        fs::write(dir.join(format!("unrelated-{i:06}.log")), b"").unwrap();
    }
}

/// Two processes rotate a log at once in a directory of `unrelated` other files, for
/// `ms` each; returns their outputs and the log's path.
fn two_rotating(
    scratch: &Path,
    logs: &Path,
    timestamped: bool,
    ms: u64,
) -> (Vec<Finished>, PathBuf) {
    let path = logs.join(if timestamped {
        "app-t.log"
    } else {
        "app-n.log"
    });
    let specs: Vec<Spec> = (0..2)
        .map(|process| Spec {
            timestamped,
            process,
            amount: ms,
            for_ms: true,
            non_blocking: false,
            path: path.clone(),
            max_files: MAX_FILES,
        })
        .collect();
    (run(scratch, &specs), path)
}

#[test]
fn retention_among_thousands_of_unrelated_files_keeps_exactly_the_newest_archives() {
    let scratch = tempfile::tempdir().unwrap();
    let logs = scratch.path().join("logs");
    fs::create_dir(&logs).unwrap();
    unrelated_files(&logs, 5_000);
    for timestamped in [false, true] {
        let (finished, path) = two_rotating(scratch.path(), &logs, timestamped, 1_500);
        let mut verifier = Verifier::new(&path, MAX_BYTES, MAX_FILES).timestamped(timestamped);
        let mut rotations = 0;
        for (process, child) in (0..).zip(&finished) {
            assert_eq!(
                (
                    child.stat("write_errors"),
                    child.stat("rotation_errors"),
                    child.stat("dropped")
                ),
                (0, 0, 0),
                "{}",
                child.stderr
            );
            rotations += child.stat("rotations");
            let total = child.stat("lines");
            verifier = verifier.expect(WriterId { process, thread: 0 }, Expect::Newest { total });
        }
        assert!(rotations > MAX_FILES as u64 * 2, "{rotations} rotations");
        let report = verifier.verify();
        report.assert_ok();
        assert_eq!(report.archives, MAX_FILES, "{report}");
    }
    assert_eq!(
        fs::read_dir(&logs)
            .unwrap()
            .filter(|entry| {
                let name = entry.as_ref().unwrap().file_name();
                name.to_str().unwrap().starts_with("unrelated-")
            })
            .count(),
        5_000,
        "no unrelated file was touched"
    );
}

/// `app.log.<archives + 1>` is a directory, with `archives` numbered archives below it:
/// every rotation fails.
fn blocked_rotation(logs: &Path, archives: usize) -> PathBuf {
    let path = logs.join("app.log");
    for index in 1..=archives {
        fs::write(archive(&path, index), format!("archive {index}\n")).unwrap();
    }
    fs::create_dir(archive(&path, archives + 1)).unwrap();
    path
}

const BATCH: u64 = 3_000;

#[test]
fn a_failing_rotation_is_tried_once_per_write_and_the_rest_of_the_batch_appended() {
    let scratch = tempfile::tempdir().unwrap();
    let logs = scratch.path().join("logs");
    fs::create_dir(&logs).unwrap();
    let archives = 300;
    let path = blocked_rotation(&logs, archives);
    let spec = Spec {
        timestamped: false,
        process: 0,
        amount: BATCH,
        for_ms: false,
        non_blocking: true,
        path: path.clone(),
        max_files: 2_000,
    };
    let finished = run(scratch.path(), &[spec]);
    let child = &finished[0];
    assert_eq!(child.stat("lines"), BATCH);
    assert_eq!((child.stat("write_errors"), child.stat("dropped")), (0, 0));
    // Once per write of the background thread, which takes the queue in a few batches:
    // not once per event.
    let failures = child.stat("rotation_errors");
    assert!(
        (1..=BATCH / 20).contains(&failures),
        "{failures} failed rotations for {BATCH} events"
    );
    assert_eq!(child.stat("rotations"), 0);
    // Every event went to the live file, whole and in order; the archives are untouched.
    let expected: String = (0..BATCH)
        .map(|seq| {
            fmt_line(
                WriterId {
                    process: 0,
                    thread: 0,
                },
                seq,
            )
        })
        .collect();
    assert_eq!(fs::read_to_string(&path).unwrap(), expected);
    for index in 1..=archives {
        assert_eq!(
            fs::read_to_string(archive(&path, index)).unwrap(),
            format!("archive {index}\n")
        );
    }
}

/// The report's setup: 100,000 unrelated files, `max_files(5)`, a rotation about every
/// 85 lines, two processes writing flat out; and the same in an empty directory, the
/// baseline of the same run. Prints each process's longest wait.
#[test]
#[ignore = "a measurement: run with --ignored --nocapture"]
fn measure_longest_wait_among_100k_unrelated_files() {
    for unrelated in [0, 100_000] {
        let scratch = tempfile::tempdir().unwrap();
        let logs = scratch.path().join("logs");
        fs::create_dir(&logs).unwrap();
        unrelated_files(&logs, unrelated);
        for timestamped in [false, true] {
            let (finished, _) = two_rotating(scratch.path(), &logs, timestamped, 5_000);
            for child in &finished {
                println!(
                    "{unrelated} unrelated files, {}: lines {} rotations {} \
                     wait p99 {} us, p99.9 {} us, longest {} us",
                    if timestamped {
                        "timestamped"
                    } else {
                        "numbered"
                    },
                    child.stat("lines"),
                    child.stat("rotations"),
                    child.stat("wait_p99_us"),
                    child.stat("wait_p999_us"),
                    child.stat("lock_wait_max_us"),
                );
            }
        }
    }
}

/// The report's setup: `app.log.1001` a directory with 1,000 numbered archives below it,
/// a non-blocking writer with a batch of 3,000 events, and another process writing
/// meanwhile. Prints the other process's longest wait.
#[test]
#[ignore = "a measurement: run with --ignored --nocapture"]
fn measure_longest_wait_behind_a_failing_rotation() {
    let scratch = tempfile::tempdir().unwrap();
    let logs = scratch.path().join("logs");
    fs::create_dir(&logs).unwrap();
    let path = blocked_rotation(&logs, 1_000);
    let spec = |process, amount, for_ms, non_blocking| Spec {
        timestamped: false,
        process,
        amount,
        for_ms,
        non_blocking,
        path: path.clone(),
        max_files: 2_000,
    };
    let finished = run(
        scratch.path(),
        &[spec(0, BATCH, false, true), spec(1, 2_000, true, false)],
    );
    println!(
        "failing rotation: batch writer {} failed rotations, longest wait {} us; \
         other process {} lines, wait p99 {} us, p99.9 {} us, longest {} us",
        finished[0].stat("rotation_errors"),
        finished[0].stat("lock_wait_max_us"),
        finished[1].stat("lines"),
        finished[1].stat("wait_p99_us"),
        finished[1].stat("wait_p999_us"),
        finished[1].stat("lock_wait_max_us"),
    );
}

#[test]
#[ignore = "a measurement: run with --ignored --nocapture"]
fn measure_sync_writes_behind_a_failing_rotation() {
    let scratch = tempfile::tempdir().unwrap();
    let logs = scratch.path().join("logs");
    fs::create_dir(&logs).unwrap();
    let path = blocked_rotation(&logs, 1_000);
    let spec = |process| Spec {
        timestamped: false,
        process,
        amount: 2_000,
        for_ms: true,
        non_blocking: false,
        path: path.clone(),
        max_files: 2_000,
    };
    let finished = run(scratch.path(), &[spec(0), spec(1)]);
    for (process, child) in finished.iter().enumerate() {
        println!(
            "failing rotation, sync, 2 s: process {process} wrote {} lines, {} failed \
             rotations, longest wait {} us",
            child.stat("lines"),
            child.stat("rotation_errors"),
            child.stat("lock_wait_max_us"),
        );
    }
}
