//! Log shippers following the live file through rotations, as docs/shipping.md recommends:
//! rsyslog's `imfile` (forwarding through `omfile` to a flat file) and GNU `tail -F`. Each
//! follows the live path only, while 4 writer processes log through `log.layer()` through
//! at least 20 rotations; what the shipper delivered must hold every record exactly once,
//! none torn, checked by the shared verifier.
//!
//! rsyslog comes from `.ci/install-shippers`. Without it, or when it cannot start, the
//! test prints `skipped: ...` and returns. `measure_smallest_max_bytes` (ignored; run it
//! with `cargo test --test api shippers::measure_smallest_max_bytes -- --ignored
//! --nocapture`) gives the figures quoted in docs/shipping.md. The shippers themselves are
//! started and followed by `shipper_processes`.

use crate::common;

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::shipper_processes::{Follower, Shipper};
use common::verifier::{Report, Verifier};
use common::workload::{Workers, WriterSpec, run_writer};

/// Writer processes, one thread each, as in the recipe.
const PROCESSES: u32 = 4;
/// How long a shipper may take to start following before the test gives up on it.
pub(crate) const START_DEADLINE: Duration = Duration::from_secs(10);
/// How long the writers may take, all together.
const WRITE_DEADLINE: Duration = Duration::from_secs(30);
/// How long a shipper may take, after the writers are done, to deliver everything.
pub(crate) const DELIVERY_DEADLINE: Duration = Duration::from_secs(10);
/// A shipper whose output has not grown for this long has delivered all it will.
pub(crate) const STALL: Duration = Duration::from_secs(2);

#[test]
fn worker_entry() {
    if let Some(spec) = WriterSpec::from_env() {
        let stats = run_writer(&spec);
        assert_eq!(
            stats.write_errors, 0,
            "worker {} had write errors",
            spec.process
        );
        assert_eq!(
            stats.events_written,
            u64::from(spec.threads) * spec.lines_per_thread
        );
    }
}

/// The tests' pace: each writer pauses this long after each event, so the 4 of them write
/// about 60 kB/s and a 16 KiB live file lives about 260 ms before it is renamed away. A
/// follower of the name never sees a file that is gone before it reacts; this leaves a
/// wide margin over the shortest lifetime at which the measurements (docs/shipping.md)
/// saw every line arrive, on a loaded machine.
const TEST_PAUSE: Duration = Duration::from_micros(7_500);
/// 4 × 950 lines of about 117 bytes: some 27 rotations of 16 KiB.
const TEST_LINES: u64 = 950;
const TEST_MAX_BYTES: u64 = 16 * 1024;

/// Ships a run of the tests' size through `shipper`, or says why it is skipped.
fn ship_through_20_rotations(shipper: Shipper) {
    let run = Run::new(TEST_MAX_BYTES, TEST_LINES, TEST_PAUSE);
    let follower = match shipper.start(&run) {
        Ok(follower) => follower,
        Err(why) => {
            println!("skipped: {why}");
            return;
        }
    };
    let outcome = run.ship(follower);
    assert!(
        outcome.written.archives >= 20,
        "only {} rotations\n{}",
        outcome.written.archives,
        outcome.written
    );
    outcome.delivered.assert_ok();
    assert_eq!(outcome.delivered.lines_verified, run.expected_lines());
    // More than the records: every byte of every line, in the order of the files (oldest
    // archive first, the live file last) and of the lines in them.
    let written: Vec<u8> = outcome
        .written
        .files
        .iter()
        .flat_map(|file| fs::read(&file.path).expect("read a written file"))
        .collect();
    let delivered = fs::read(&outcome.delivered.files[0].path).expect("read the delivered file");
    assert_same_lines(&written, &delivered);
}

/// Asserts `actual == expected`, showing the first line that differs rather than both.
#[track_caller]
fn assert_same_lines(expected: &[u8], actual: &[u8]) {
    if expected == actual {
        return;
    }
    let expected_lines: Vec<&[u8]> = expected.split(|&b| b == b'\n').collect();
    let actual_lines: Vec<&[u8]> = actual.split(|&b| b == b'\n').collect();
    let at = (0..)
        .find(|&i| expected_lines.get(i) != actual_lines.get(i))
        .expect("different bytes differ in some line");
    let show = |line: Option<&&[u8]>| line.map(|line| String::from_utf8_lossy(line).into_owned());
    panic!(
        "the shipper delivered {} bytes, not the {} written; first difference at line {}:\n  written:   {:?}\n  delivered: {:?}",
        actual.len(),
        expected.len(),
        at + 1,
        show(expected_lines.get(at)),
        show(actual_lines.get(at))
    );
}

#[test]
fn rsyslog_imfile_delivers_every_line_through_20_rotations() {
    ship_through_20_rotations(Shipper::Rsyslog);
}

#[test]
fn tail_follow_name_prints_every_line_through_20_rotations() {
    ship_through_20_rotations(Shipper::Tail);
}

/// The figures of docs/shipping.md: for each shipper, pace and `max_bytes`, how many of
/// `RUNS` runs of at least 20 rotations delivered every line, how fast the writers wrote,
/// and how long a live file lived on average.
#[test]
#[ignore = "a measurement, not a test: run with --ignored --nocapture"]
fn measure_smallest_max_bytes() {
    const RUNS: usize = 5;
    let plans: [(Duration, &[u64]); 2] = [
        (Duration::ZERO, &[64 << 10, 128 << 10, 256 << 10, 1 << 20]),
        (
            Duration::from_millis(1),
            &[2 << 10, 4 << 10, 8 << 10, 16 << 10],
        ),
    ];
    for shipper in [Shipper::Rsyslog, Shipper::Tail] {
        for (pause, sizes) in plans {
            for &max_bytes in sizes {
                // At least 25 files of about 120-byte lines, and never under 1,000 a writer.
                let lines = (25 * max_bytes / (120 * u64::from(PROCESSES))).max(1_000);
                let mut complete = 0;
                let mut worst = (0, String::new());
                let mut rates = Range::default();
                let mut lifetimes = Range::default();
                let mut rotations = Range::default();
                for _ in 0..RUNS {
                    let run = Run::new(max_bytes, lines, pause);
                    let follower = match shipper.start(&run) {
                        Ok(follower) => follower,
                        Err(why) => {
                            println!("{shipper:?}: skipped: {why}");
                            return;
                        }
                    };
                    let outcome = run.ship(follower);
                    let seconds = outcome.writing.as_secs_f64();
                    let files = outcome.written.archives + 1;
                    rates.add(outcome.written.bytes_total as f64 / seconds / 1000.0);
                    lifetimes.add(seconds * 1000.0 / files as f64);
                    rotations.add(outcome.written.archives as f64);
                    let delivered = &outcome.delivered;
                    let failed = delivered.lost + delivered.torn + delivered.duplicated;
                    if delivered.is_ok() {
                        complete += 1;
                    } else if failed >= worst.0 {
                        worst = (
                            failed,
                            format!(
                                "; worst run: lost {} torn {} duplicated {}",
                                delivered.lost, delivered.torn, delivered.duplicated
                            ),
                        );
                    }
                }
                let load = fs::read_to_string("/proc/loadavg").unwrap_or_default();
                let load = load.split(' ').next().unwrap_or("?");
                println!(
                    "{shipper:?}, pause {pause:?}, max_bytes {max_bytes}: {complete}/{RUNS} runs delivered every line; \
                     {} lines, {rotations} rotations, {rates} kB/s, live file lived {lifetimes} ms on average; load {load}{}",
                    u64::from(PROCESSES) * lines,
                    worst.1
                );
            }
        }
    }
}

/// The smallest and largest of some measurements.
#[derive(Default)]
struct Range(Option<(f64, f64)>);

impl Range {
    fn add(&mut self, value: f64) {
        let (low, high) = self.0.unwrap_or((value, value));
        self.0 = Some((low.min(value), high.max(value)));
    }
}

impl std::fmt::Display for Range {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (low, high) = self.0.unwrap_or_default();
        let digits = if high < 20.0 { 1 } else { 0 };
        write!(f, "{low:.digits$}-{high:.digits$}")
    }
}

/// What a run left: the writers' files, what the shipper delivered, how long the
/// writers took.
struct Outcome {
    written: Report,
    delivered: Report,
    writing: Duration,
}

/// One run's files: the log, the writers' sync directory, and the shipper's directory.
pub(crate) struct Run {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) log: PathBuf,
    pub(crate) specs: Vec<WriterSpec>,
}

impl Run {
    /// `PROCESSES` writers of `lines` records each, a `pause` after each, rotating at
    /// `max_bytes` and keeping every archive. The live file exists from the start: tail's
    /// inotify mode loses a path that is missing when it starts.
    fn new(max_bytes: u64, lines: u64, pause: Duration) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let sync_dir = dir.path().join("sync");
        let logs = dir.path().join("logs");
        for sub in [&sync_dir, &logs, &dir.path().join("shipper")] {
            fs::create_dir(sub).expect("create a directory of the run");
        }
        let log = logs.join("app.log");
        File::create(&log).expect("create the live file");
        let specs = (0..PROCESSES)
            .map(|process| WriterSpec {
                max_bytes,
                process,
                lines_per_thread: lines,
                pause,
                ..WriterSpec::new(log.clone(), sync_dir.clone())
            })
            .collect();
        Run { dir, log, specs }
    }

    /// The shipper's own files: config, work directory, output, stderr.
    pub(crate) fn shipper_dir(&self) -> PathBuf {
        self.dir.path().join("shipper")
    }

    fn expected_lines(&self) -> u64 {
        self.specs
            .iter()
            .map(|spec| u64::from(spec.threads) * spec.lines_per_thread)
            .sum()
    }

    fn verifier(&self, log: &Path, max_bytes: u64, max_files: usize) -> Verifier {
        self.specs.iter().fold(
            Verifier::new(log, max_bytes, max_files),
            |verifier, spec| {
                verifier.expect_process(spec.process, spec.threads, spec.lines_per_thread)
            },
        )
    }

    /// Runs the writers while `follower` ships the live file, waits until it delivered
    /// everything (or stops delivering), stops it, and verifies both what the writers
    /// left on disk (which must be perfect: the shipper is under test, not the library)
    /// and what the shipper delivered.
    fn ship(&self, mut follower: Follower) -> Outcome {
        let workers = Workers::start(
            || common::entry_command(&common::entry!(worker_entry)),
            &self.specs,
        );
        let started = Instant::now();
        workers.wait_within(WRITE_DEADLINE);
        let writing = started.elapsed();
        let first = &self.specs[0];
        let written = self
            .verifier(&self.log, first.max_bytes, first.max_files)
            .verify();
        written.assert_ok();
        assert_eq!(written.lines_verified, self.expected_lines());

        follower.wait_for_delivery(self.expected_lines());
        let output = follower.stop();
        // Alone in its directory, the output is a "log" with no archives and no size limit.
        let delivered = self
            .verifier(&output, u64::MAX, 0)
            .check_rotation_points(false)
            .verify();
        Outcome {
            written,
            delivered,
            writing,
        }
    }
}
