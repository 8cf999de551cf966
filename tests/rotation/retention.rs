//! Retention with several real processes: `max_files` and `max_total_bytes`, alone and
//! together with `max_age`, for timestamped and numbered names (`max_age` alone is in
//! `retention_by_age`, which shares the helpers here).
//!
//! Every test checks that deletion goes oldest first (each writer keeps an unbroken run
//! of its newest records, in the verifier), that the limits hold exactly (for
//! timestamped names, a limit of n keeps between n - n/16 and n, exactly n below 16),
//! and that files which only look like archives survive untouched: other names, and
//! the names of the other naming.

use crate::common;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::verifier::{Expect, Report, Verifier};
use common::workload::{
    RotationPolicy, Workers, WriterId, WriterSpec, archive_stamp, fmt_line, stamped_archives,
};
use tracing_shared_file::Period;

pub(crate) const WORKER_DEADLINE: Duration = Duration::from_secs(60);
pub(crate) const DAY: u64 = 86_400;

#[test]
fn worker_entry() {
    common::workload::run_worker_saving_stats();
}

/// A log in a directory of its own, and the workers that write it, in batches.
pub(crate) struct Log {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) path: PathBuf,
    pub(crate) template: WriterSpec,
    pub(crate) specs: Vec<WriterSpec>,
}

impl Log {
    pub(crate) fn new(max_bytes: u64, max_files: usize, policy: RotationPolicy) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::create_dir(dir.path().join("logs")).expect("log dir");
        let path = dir.path().join("logs/app.log");
        let template = WriterSpec {
            max_bytes,
            max_files,
            policy,
            ..WriterSpec::new(path.clone(), PathBuf::new())
        };
        Log {
            dir,
            path,
            template,
            specs: Vec::new(),
        }
    }

    pub(crate) fn timestamped(&self) -> bool {
        self.template.policy.timestamped
    }

    /// Workers `processes`, of `threads` threads writing `lines` each, started together.
    pub(crate) fn start(
        &mut self,
        processes: std::ops::Range<u32>,
        threads: u32,
        lines: u64,
    ) -> Workers {
        let sync_dir = self.dir.path().join(format!("sync{}", processes.start));
        fs::create_dir(&sync_dir).expect("sync dir");
        let batch: Vec<WriterSpec> = processes
            .map(|process| WriterSpec {
                process,
                threads,
                lines_per_thread: lines,
                sync_dir: sync_dir.clone(),
                ..self.template.clone()
            })
            .collect();
        let workers = Workers::start(
            || common::entry_command(&common::entry!(worker_entry)),
            &batch,
        );
        self.specs.extend(batch);
        workers
    }

    pub(crate) fn run(&mut self, processes: std::ops::Range<u32>, threads: u32, lines: u64) {
        self.start(processes, threads, lines)
            .wait_within(WORKER_DEADLINE);
    }

    /// A verifier expecting of every writer so far an unbroken run of its newest records
    /// (older ones went with deleted archives).
    pub(crate) fn verifier(&self) -> Verifier {
        let verifier = Verifier::new(&self.path, self.template.max_bytes, self.template.max_files)
            .timestamped(self.timestamped());
        self.specs.iter().fold(verifier, |verifier, spec| {
            verifier.expect_threads(
                spec.process,
                spec.threads,
                Expect::Newest {
                    total: spec.lines_per_thread,
                },
            )
        })
    }

    /// The rotations all workers performed, after checking that none failed.
    pub(crate) fn rotations(&self) -> u64 {
        self.specs
            .iter()
            .map(|spec| {
                let stats = spec.saved_stats();
                assert_eq!(
                    (
                        stats.write_errors,
                        stats.rotation_errors,
                        stats.events_dropped
                    ),
                    (0, 0, 0),
                    "worker {}: write errors, rotation errors, dropped",
                    spec.process
                );
                stats.rotations
            })
            .sum()
    }

    /// The archives, oldest first, and their sizes.
    pub(crate) fn archives(&self) -> Vec<(String, u64)> {
        let names: Vec<String> = match self.timestamped() {
            true => stamped_archives(&self.path)
                .into_iter()
                .map(|archive| archive.name)
                .collect(),
            false => {
                // `N` without leading zeros: `app.log.01` only looks like one.
                let mut numbers: Vec<u64> = listing(&self.path)
                    .iter()
                    .filter_map(|name| name.strip_prefix("app.log."))
                    .filter(|n| !n.starts_with('0'))
                    .filter_map(|n| n.parse().ok())
                    .collect();
                numbers.sort_unstable_by(|a, b| b.cmp(a));
                numbers.iter().map(|n| format!("app.log.{n}")).collect()
            }
        };
        names
            .into_iter()
            .map(|name| {
                let len = fs::metadata(self.path.with_file_name(&name)).unwrap().len();
                (name, len)
            })
            .collect()
    }

    /// Creates an archive by hand (before any process runs, so that no record of the
    /// archives exists yet), holding `lines` records of `writer`, last modified at `mtime`.
    pub(crate) fn plant_archive(&self, name: &str, writer: WriterId, lines: u64, mtime: u64) {
        let path = self.path.with_file_name(name);
        let content: String = (0..lines).map(|seq| fmt_line(writer, seq)).collect();
        fs::write(&path, content).expect("plant an archive");
        set_mtime(&path, mtime);
    }
}

/// Every name in the log directory.
pub(crate) fn listing(log: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(log.parent().unwrap())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub(crate) fn set_mtime(path: &Path, secs: u64) {
    fs::File::options()
        .write(true)
        .open(path)
        .and_then(|file| file.set_modified(UNIX_EPOCH + Duration::from_secs(secs)))
        .unwrap_or_else(|e| panic!("cannot set the mtime of {}: {e}", path.display()));
}

/// Files beside the log that only look like its archives; each holds its own name and
/// was last modified a year ago, so that no age limit would spare a real archive.
pub(crate) struct LookAlikes {
    pub(crate) paths: Vec<PathBuf>,
}

impl LookAlikes {
    pub(crate) fn plant(log: &Path, timestamped: bool) -> Self {
        let names = vec![
            "app.log.bak",
            "app.log.2026-01-01.txt",
            "app.log.1x",
            "app.log.01",
            "other.log.1",
            "other.log.2020-01-01T00-00-00Z",
            "app.log.2026-11-27T14-00-00Z.txt",
            "app.log.2020-01-01T00-00-00Z.0",
            "app.log.2020-01-01T00-00-00Z.gz.1",
            "app.log.2020-13-01T00-00-00Z",
            "app.log.2020-01-01t00-00-00z",
            "app.log.2020-01-01T00:00:00Z",
        ];
        // The other naming's archives are archives of this log too, counted and deleted
        // oldest first by every limit (tests/fleets/disagreeing.rs): not look-alikes.
        let _ = timestamped;
        let a_year_ago = now() - 365 * DAY;
        let paths = names
            .into_iter()
            .map(|name| {
                let path = log.with_file_name(name);
                fs::write(&path, name).expect("plant a look-alike");
                set_mtime(&path, a_year_ago);
                path
            })
            .collect();
        LookAlikes { paths }
    }

    #[track_caller]
    pub(crate) fn assert_intact(&self) {
        for path in &self.paths {
            let name = path.file_name().unwrap().to_str().unwrap();
            assert_eq!(
                fs::read_to_string(path).ok().as_deref(),
                Some(name),
                "look-alike {name} was touched"
            );
        }
    }
}

#[track_caller]
pub(crate) fn assert_verified(report: &Report, what: &str) {
    assert!(report.is_ok(), "{what}: verification failed:\n{report}");
}

pub(crate) fn stamped(policy: RotationPolicy) -> RotationPolicy {
    RotationPolicy {
        timestamped: true,
        ..policy
    }
}

pub(crate) fn total_bytes(archives: &[(String, u64)]) -> u64 {
    archives.iter().map(|(_, len)| len).sum()
}

/// `max_files` with timestamped names: exactly n below 16, between n - n/16 and n above,
/// the newest ones, whatever several processes do at once.
#[test]
fn max_files_keeps_the_newest_timestamped_archives() {
    const MAX_BYTES: u64 = 2 * 1024;
    for max_files in [5, 40] {
        let what = format!("max_files {max_files}");
        let mut log = Log::new(MAX_BYTES, max_files, stamped(RotationPolicy::default()));
        let look_alikes = LookAlikes::plant(&log.path, true);
        log.run(0..3, 2, 600);

        let rotations = log.rotations();
        assert!(
            rotations > 2 * max_files as u64,
            "{what}: {rotations} rotations"
        );
        let kept = log.archives().len();
        let fewest = max_files - max_files / 16;
        assert!(
            (fewest..=max_files).contains(&kept),
            "{what}: {kept} archives kept, expected {fewest}..={max_files}"
        );
        let report = log.verifier().verify();
        assert_verified(&report, &what);
        look_alikes.assert_intact();
    }
}

/// `max_total_bytes` counts the archives only, and deletes the oldest: for numbered
/// names the archives never take more than the limit, and take more than the limit
/// less one file (or the next oldest would have been kept); timestamped names delete
/// down to 15/16 of the limit when it is exceeded.
#[test]
fn max_total_bytes_keeps_the_newest_archives_under_the_limit() {
    const MAX_BYTES: u64 = 4 * 1024;
    const LIMIT: u64 = 40 * 1024;
    for timestamped in [true, false] {
        let what = if timestamped {
            "timestamped"
        } else {
            "numbered"
        };
        let policy = RotationPolicy {
            timestamped,
            max_total_bytes: Some(LIMIT),
            ..RotationPolicy::default()
        };
        let mut log = Log::new(MAX_BYTES, 100_000, policy);
        let look_alikes = LookAlikes::plant(&log.path, timestamped);
        log.run(0..3, 2, 400);

        assert!(log.rotations() > 2 * LIMIT / MAX_BYTES, "{what}");
        let total = total_bytes(&log.archives());
        let floor = match timestamped {
            true => LIMIT - LIMIT / 16 - MAX_BYTES,
            false => LIMIT - MAX_BYTES,
        };
        assert!(
            total > floor && total <= LIMIT,
            "{what}: archives take {total} bytes, expected more than {floor} and at most {LIMIT}"
        );
        let report = log.verifier().verify();
        assert_verified(&report, what);
        look_alikes.assert_intact();
    }
}

/// The limits together: the strictest one decides, whichever it is.
#[test]
fn combined_limits_the_strictest_wins() {
    const MAX_BYTES: u64 = 4 * 1024;
    let a_year_ago = now() - 365 * DAY;
    // (max_files, max_total_bytes): first the bytes bind (about 4 archives), then the
    // count (3 archives).
    for (max_files, limit) in [(6, 16 * 1024), (3, 1 << 20)] {
        for timestamped in [true, false] {
            let what = format!("timestamped {timestamped}, max_files {max_files}, limit {limit}");
            let policy = RotationPolicy {
                timestamped,
                max_age: Some(Duration::from_secs(DAY)),
                max_total_bytes: Some(limit),
                ..RotationPolicy::default()
            };
            let mut log = Log::new(MAX_BYTES, max_files, policy);
            let look_alikes = LookAlikes::plant(&log.path, timestamped);
            // Old enough for max_age alone to delete it.
            let old = match timestamped {
                true => format!("app.log.{}", archive_stamp(a_year_ago as i64)),
                false => "app.log.1".to_string(),
            };
            let writer = WriterId {
                process: 100,
                thread: 0,
            };
            log.plant_archive(&old, writer, 10, a_year_ago);
            log.run(0..3, 1, 400);

            let archives = log.archives();
            let total = total_bytes(&archives);
            assert!(total <= limit, "{what}: {total} bytes");
            if limit < (max_files as u64) * MAX_BYTES {
                let floor = match timestamped {
                    true => limit - limit / 16 - MAX_BYTES,
                    false => limit - MAX_BYTES,
                };
                assert!(total > floor, "{what}: {total} bytes");
                assert!(archives.len() <= max_files, "{what}: {archives:?}");
            } else {
                assert_eq!(archives.len(), max_files, "{what}: {archives:?}");
            }
            // The old archive's records are not expected: the verifier fails if it is kept.
            let report = log.verifier().verify();
            assert_verified(&report, &what);
            look_alikes.assert_intact();
        }
    }
}

/// When time and size rotation both apply, every archive counts toward every limit,
/// whichever rotation made it: with 1-second periods and size rotations in between,
/// exactly `max_files` archives are left, and the archives kept by total size are the
/// newest, within the limit.
#[test]
fn archives_of_time_and_size_rotation_count_alike() {
    const MAX_BYTES: u64 = 16 * 1024;
    const MAX_FILES: usize = 4;
    const LIMIT: u64 = 48 * 1024;
    let every_second = RotationPolicy {
        rotate_every: Some(Period::Every(Duration::from_secs(1))),
        ..RotationPolicy::default()
    };
    let configs = [
        (stamped(every_second), MAX_FILES),
        (every_second, MAX_FILES),
        (
            stamped(RotationPolicy {
                max_total_bytes: Some(LIMIT),
                ..every_second
            }),
            100_000,
        ),
    ];
    let mut runs: Vec<(Log, LookAlikes, Workers)> = configs
        .into_iter()
        .map(|(policy, max_files)| {
            let mut log = Log::new(MAX_BYTES, max_files, policy);
            let look_alikes = LookAlikes::plant(&log.path, policy.timestamped);
            log.template.until_stopped = true;
            log.template.pause = Duration::from_millis(3);
            let workers = log.start(0..3, 1, u64::MAX);
            (log, look_alikes, workers)
        })
        .collect();
    std::thread::sleep(Duration::from_millis(2_600));
    for (log, _, _) in &runs {
        fs::write(log.specs[0].sync_dir.join("stop"), b"").unwrap();
    }
    for (log, look_alikes, workers) in runs.drain(..) {
        workers.wait_within(WORKER_DEADLINE);
        let policy = log.template.policy;
        let what = format!("{policy:?}");
        let rotations = log.rotations();
        assert!(
            rotations > MAX_FILES as u64 + 1,
            "{what}: too few rotations ({rotations}) to delete any"
        );
        let archives = log.archives();
        if policy.max_total_bytes.is_none() {
            assert_eq!(archives.len(), MAX_FILES, "{what}: {archives:?}");
        } else {
            let total = total_bytes(&archives);
            let floor = LIMIT - LIMIT / 16 - MAX_BYTES;
            assert!(total > floor && total <= LIMIT, "{what}: {total} bytes");
        }
        let verifier = log.specs.iter().fold(
            Verifier::new(&log.path, MAX_BYTES, log.template.max_files)
                .timestamped(policy.timestamped)
                .period(Duration::from_secs(1), 0)
                .max_write_delay(Duration::from_millis(500))
                .check_record_order(true),
            |verifier, spec| {
                spec.writers().fold(verifier, |verifier, writer| {
                    let total = spec.attempted(writer);
                    verifier.expect(writer, Expect::Newest { total })
                })
            },
        );
        let report = verifier.verify();
        assert_verified(&report, &what);
        look_alikes.assert_intact();
    }
}
