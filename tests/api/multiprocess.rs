//! Many real processes (and threads) writing one rotating file at once.
//!
//! Each test re-runs this test binary as its workers: `worker_entry` becomes a writer when
//! it finds a `WriterSpec` in its environment, and is a no-op test otherwise.

use crate::common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::verifier::{Report, Verifier};
use common::workload::{Workers, WriteMode, WriterSpec, run_writer};

#[test]
fn worker_entry() {
    if let Some(spec) = WriterSpec::from_env() {
        let stats = run_writer(&spec);
        assert_eq!(
            stats.write_errors, 0,
            "worker {} had write errors",
            spec.process
        );
        if spec.mode != WriteMode::Pieces {
            assert_eq!(
                stats.events_written,
                u64::from(spec.threads) * spec.lines_per_thread
            );
        }
    }
}

struct Run {
    _dir: tempfile::TempDir,
    log: PathBuf,
    specs: Vec<WriterSpec>,
}

impl Run {
    fn new(processes: u32, threads: u32, lines_per_thread: u64, max_bytes: u64) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let sync_dir = dir.path().join("sync");
        std::fs::create_dir(&sync_dir).expect("sync dir");
        let log = dir.path().join("logs").join("app.log");
        let specs = (0..processes)
            .map(|process| WriterSpec {
                max_bytes,
                process,
                threads,
                lines_per_thread,
                // The default max_files keeps every archive, so every line is checkable.
                ..WriterSpec::new(log.clone(), sync_dir.clone())
            })
            .collect();
        Run {
            _dir: dir,
            log,
            specs,
        }
    }

    fn mode(mut self, mode: WriteMode) -> Self {
        for spec in &mut self.specs {
            spec.mode = mode;
        }
        self
    }

    fn start(&self) -> Workers {
        Workers::start(
            || common::entry_command(&common::entry!(worker_entry)),
            &self.specs,
        )
    }

    fn verifier(&self) -> Verifier {
        let first = &self.specs[0];
        self.specs.iter().fold(
            Verifier::new(&self.log, first.max_bytes, first.max_files),
            |verifier, spec| {
                verifier.expect_process(spec.process, spec.threads, spec.lines_per_thread)
            },
        )
    }

    fn total_lines(&self) -> u64 {
        self.specs
            .iter()
            .map(|s| u64::from(s.threads) * s.lines_per_thread)
            .sum()
    }
}

/// The number of files must be what the bytes imply: every archive was filled to within
/// one event of `max_bytes`, so no rotation was skipped and none happened twice.
fn assert_file_count_matches_bytes(report: &Report, max_bytes: u64) {
    let files = report.files.len() as u64;
    let fewest = report.bytes_total.div_ceil(max_bytes);
    let most = report.bytes_total / (max_bytes - report.longest_line) + 1;
    assert!(
        (fewest..=most).contains(&files),
        "{files} files for {} bytes; expected {fewest}..={most}\n{report}",
        report.bytes_total
    );
}

/// Runs the writers to completion with rotation every `max_bytes`, and checks every line,
/// every file and every rotation point.
fn run_with_many_rotations(
    mode: WriteMode,
    processes: u32,
    threads: u32,
    lines: u64,
    max_bytes: u64,
) {
    // A tenth under Wine, where a contended lock is a server round trip
    // (docs/performance.md): as many rotations, in CI's time.
    let (lines, max_bytes) = if cfg!(windows) {
        (lines / 10, max_bytes / 10)
    } else {
        (lines, max_bytes)
    };
    let run = Run::new(processes, threads, lines, max_bytes).mode(mode);
    run.start().wait();

    let report = run.verifier().verify();
    report.assert_ok();
    assert_eq!(report.lines_verified, run.total_lines());
    assert!(
        report.archives >= 50,
        "only {} rotations\n{report}",
        report.archives
    );
    assert_file_count_matches_bytes(&report, max_bytes);
}

#[test]
fn many_processes_share_one_rotating_file() {
    run_with_many_rotations(WriteMode::Tracing, 4, 1, 20_000, 64 * 1024);
}

#[test]
fn many_processes_share_one_rotating_file_non_blocking() {
    run_with_many_rotations(WriteMode::NonBlocking, 4, 1, 20_000, 64 * 1024);
}

#[test]
fn processes_and_threads_together() {
    run_with_many_rotations(WriteMode::Tracing, 4, 4, 5_000, 32 * 1024);
}

#[test]
fn processes_and_threads_together_non_blocking() {
    run_with_many_rotations(WriteMode::NonBlocking, 4, 4, 5_000, 32 * 1024);
}

#[test]
fn an_event_written_in_pieces_lands_whole() {
    const MAX_BYTES: u64 = 64 * 1024;
    let mut run = Run::new(4, 2, 5_000, MAX_BYTES);
    for spec in &mut run.specs {
        spec.mode = WriteMode::Pieces;
    }
    run.start().wait();

    let report = run.verifier().verify();
    report.assert_ok();
    assert_eq!(report.lines_verified, run.total_lines());
}

/// Waits until the live file holds at least `bytes`, so an outside change lands mid-run.
fn wait_for_bytes(log: &Path, bytes: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::metadata(log).map_or(0, |m| m.len()) < bytes {
        assert!(
            Instant::now() < deadline,
            "writers never reached {bytes} bytes"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn writers_recover_when_the_file_is_renamed_away() {
    recover_when_renamed_away(WriteMode::Tracing);
}

#[test]
fn writers_recover_when_the_file_is_renamed_away_non_blocking() {
    recover_when_renamed_away(WriteMode::NonBlocking);
}

fn recover_when_renamed_away(mode: WriteMode) {
    const MAX_BYTES: u64 = 256 * 1024;
    let run = Run::new(4, 1, 20_000, MAX_BYTES).mode(mode);
    let workers = run.start();
    // As logrotate does, several times while the writers run and rotate.
    let moved: Vec<(PathBuf, u64)> = (0..3)
        .map(|i| {
            wait_for_bytes(&run.log, 64 * 1024);
            let to = run.log.with_file_name(format!("moved-{i}.log"));
            // A rotation between its two renames leaves the name empty for a moment
            // (long enough to be hit under Wine): try again then.
            let mut attempts = 0;
            while let Err(e) = std::fs::rename(&run.log, &to) {
                attempts += 1;
                assert!(
                    e.kind() == std::io::ErrorKind::NotFound && attempts < 1000,
                    "rename the live file away: {e}"
                );
                std::thread::sleep(Duration::from_millis(1));
            }
            // Once every writer has moved on, the renamed file must stop growing.
            wait_for_bytes(&run.log, 64 * 1024);
            let settled = std::fs::metadata(&to).unwrap().len();
            (to, settled)
        })
        .collect();
    workers.wait();
    for (path, settled) in &moved {
        let len = std::fs::metadata(path).unwrap().len();
        assert_eq!(
            len,
            *settled,
            "{} grew after the writers noticed the move",
            path.display()
        );
    }
    let moved: Vec<PathBuf> = moved.into_iter().map(|(path, _)| path).collect();

    let verifier = moved
        .iter()
        .fold(run.verifier(), |v, path| v.extra_file(path))
        .check_rotation_points(false);
    let report = verifier.verify();
    report.assert_ok();
    assert_eq!(report.lines_verified, run.total_lines());
    let live = std::fs::metadata(&run.log).expect("writers recreated the live file");
    assert!(live.len() > 0, "writers wrote to the recreated file");
}

// Unix-only: on Windows a file deleted while open keeps its name until its last handle
// closes, so the writers never see it go; they keep appending to it, and all of it goes
// when they close it (Wine 8 shows this: docs/platforms.md).
#[cfg(unix)]
#[test]
fn writers_recover_when_the_file_is_deleted() {
    recover_when_deleted(WriteMode::Tracing);
}

// Unix-only: on Windows a file deleted while open keeps its name until its last handle
// closes, so the writers never see it go; they keep appending to it, and all of it goes
// when they close it (Wine 8 shows this: docs/platforms.md).
#[cfg(unix)]
#[test]
fn writers_recover_when_the_file_is_deleted_non_blocking() {
    recover_when_deleted(WriteMode::NonBlocking);
}

#[cfg(unix)]
fn recover_when_deleted(mode: WriteMode) {
    // No rotation here, so the file deleted is the one opened just before.
    const MAX_BYTES: u64 = 1 << 40;
    let run = Run::new(4, 1, 20_000, MAX_BYTES).mode(mode);
    let workers = run.start();
    wait_for_bytes(&run.log, 256 * 1024);
    // Keep the deleted file open to read what reached it before the writers noticed.
    let deleted = std::fs::File::open(&run.log).expect("open the live file");
    std::fs::remove_file(&run.log).expect("delete the live file");
    workers.wait();

    let copy = run.log.with_file_name("deleted-copy.log");
    std::io::copy(
        &mut &deleted,
        &mut std::fs::File::create(&copy).expect("create copy"),
    )
    .expect("copy the deleted file's content");
    let report = run.verifier().extra_file(&copy).verify();
    report.assert_ok();
    assert_eq!(report.lines_verified, run.total_lines());
    let recreated = std::fs::metadata(&run.log).expect("writers recreated the live file");
    assert!(
        recreated.len() > 0,
        "every line after the delete went to the new file"
    );
    assert!(std::fs::metadata(&copy).unwrap().len() >= 256 * 1024);
}
