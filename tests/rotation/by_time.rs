//! Time rotation (`rotate_every`), with real processes and the real clock.
//!
//! - Several processes logging through 1-second periods for over 11 seconds: every file
//!   holds the lines of one period only, no period has two files, timestamped archives
//!   are stamped with their period's start; alone and together with size rotation.
//! - A fixed UTC offset moves the boundaries, not the names.
//! - A file left by a process that is gone is rotated once by the first write after its
//!   period ended (and `period_record` shows what decides when its record is lost).
//!
//! Workers are this test binary run again: `worker_entry` becomes a writer when it finds
//! a `WriterSpec` in its environment, and is a no-op test otherwise.

use crate::common;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::verifier::{Expect, Report, Verifier};
use common::workload::{RotationPolicy, StampedName, Workers, WriterSpec, stamped_archives};
use tracing_shared_file::Period;

/// How long a line may wait between the fmt layer's timestamp and its write under the
/// lock, on a loaded machine.
pub(crate) const MAX_WRITE_DELAY: Duration = Duration::from_millis(500);
/// No worker may take longer than this to notice `stop` and exit.
pub(crate) const WORKER_DEADLINE: Duration = Duration::from_secs(60);
pub(crate) const ONE_SECOND: Duration = Duration::from_secs(1);
/// Enough to keep every archive, so that every line can be accounted for.
pub(crate) const KEEP_ALL: usize = 100_000;

#[test]
fn worker_entry() {
    common::workload::run_worker_saving_stats();
}

/// Writer processes sharing one log in a directory of their own.
pub(crate) struct Group {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) log: PathBuf,
    pub(crate) specs: Vec<WriterSpec>,
}

impl Group {
    /// `processes` workers of `threads` threads each, logging until stopped with `pause`
    /// after each line.
    pub(crate) fn until_stopped(
        processes: u32,
        threads: u32,
        max_bytes: u64,
        policy: RotationPolicy,
        pause: Duration,
    ) -> Self {
        let mut group = Group::new(0..processes, threads, u64::MAX, max_bytes, policy);
        for spec in &mut group.specs {
            spec.until_stopped = true;
            spec.pause = pause;
        }
        group
    }

    pub(crate) fn new(
        processes: std::ops::Range<u32>,
        threads: u32,
        lines_per_thread: u64,
        max_bytes: u64,
        policy: RotationPolicy,
    ) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("logs/app.log");
        let sync_dir = batch_sync_dir(dir.path(), &processes);
        let specs = processes
            .map(|process| WriterSpec {
                max_bytes,
                max_files: KEEP_ALL,
                process,
                threads,
                lines_per_thread,
                policy,
                ..WriterSpec::new(log.clone(), sync_dir.clone())
            })
            .collect();
        Group { dir, log, specs }
    }

    /// Another batch of workers on the same log, numbered on.
    pub(crate) fn more(
        &self,
        processes: std::ops::Range<u32>,
        lines_per_thread: u64,
    ) -> Vec<WriterSpec> {
        let template = &self.specs[0];
        let sync_dir = batch_sync_dir(self.dir.path(), &processes);
        processes
            .map(|process| WriterSpec {
                process,
                lines_per_thread,
                sync_dir: sync_dir.clone(),
                ..template.clone()
            })
            .collect()
    }

    pub(crate) fn start(&self) -> Workers {
        start(&self.specs)
    }

    pub(crate) fn stop(&self) {
        fs::write(self.specs[0].sync_dir.join("stop"), b"").expect("signal stop");
    }

    /// Every line each writer finished, exactly once.
    pub(crate) fn verifier(&self, max_bytes: u64) -> Verifier {
        expect_all(Verifier::new(&self.log, max_bytes, KEEP_ALL), &self.specs)
    }

    /// The rotations all workers performed, after checking that nothing failed.
    pub(crate) fn rotations(&self) -> u64 {
        rotations(&self.specs)
    }
}

/// A batch of workers waits for its own start signal: a sync directory of its own.
pub(crate) fn batch_sync_dir(dir: &Path, processes: &std::ops::Range<u32>) -> PathBuf {
    let sync_dir = dir.join(format!("sync{}", processes.start));
    fs::create_dir(&sync_dir).expect("sync dir");
    sync_dir
}

/// Starts a batch of workers together, once all are ready.
pub(crate) fn start(specs: &[WriterSpec]) -> Workers {
    Workers::start(
        || common::entry_command(&common::entry!(worker_entry)),
        specs,
    )
}

/// Expects of every writer of `specs` exactly the lines it finished.
pub(crate) fn expect_all(verifier: Verifier, specs: &[WriterSpec]) -> Verifier {
    specs.iter().fold(verifier, |verifier, spec| {
        spec.writers().fold(verifier, |verifier, writer| {
            let lines = match spec.until_stopped {
                true => spec.attempted(writer),
                false => spec.lines_per_thread,
            };
            verifier.expect(writer, Expect::Exactly(lines))
        })
    })
}

pub(crate) fn naming(timestamped: bool) -> &'static str {
    if timestamped {
        "timestamped"
    } else {
        "numbered"
    }
}

/// The rotations `specs`' workers performed, after checking that nothing failed and every
/// event they finished was written.
pub(crate) fn rotations(specs: &[WriterSpec]) -> u64 {
    let mut rotations = 0;
    for spec in specs {
        let stats = spec.saved_stats();
        let finished: u64 = match spec.until_stopped {
            true => spec.writers().map(|w| spec.attempted(w)).sum(),
            false => u64::from(spec.threads) * spec.lines_per_thread,
        };
        assert_eq!(
            (
                stats.events_written,
                stats.write_errors,
                stats.rotation_errors
            ),
            (finished, 0, 0),
            "worker {}: (events written, write errors, rotation errors)",
            spec.process
        );
        rotations += stats.rotations;
    }
    rotations
}

pub(crate) fn time_only(period: Period, timestamped: bool) -> RotationPolicy {
    RotationPolicy {
        rotate_every: Some(period),
        timestamped,
        ..RotationPolicy::default()
    }
}

pub(crate) fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[track_caller]
pub(crate) fn assert_verified(report: &Report, what: &str) {
    assert!(report.is_ok(), "{what}: verification failed:\n{report}");
}

/// The one long test: 1-second periods crossed more than ten times by several processes,
/// with time rotation alone, under both namings at once.
#[test]
fn one_rotation_per_boundary_across_eleven_seconds() {
    let pause = Duration::from_millis(4);
    let stamped = Group::until_stopped(
        3,
        2,
        u64::MAX,
        time_only(Period::Every(ONE_SECOND), true),
        pause,
    );
    let numbered = Group::until_stopped(
        3,
        1,
        u64::MAX,
        time_only(Period::Every(ONE_SECOND), false),
        pause,
    );
    let stamped_workers = stamped.start();
    let numbered_workers = numbered.start();
    std::thread::sleep(Duration::from_millis(11_500));
    stamped.stop();
    numbered.stop();
    stamped_workers.wait_within(WORKER_DEADLINE);
    numbered_workers.wait_within(WORKER_DEADLINE);

    for (group, timestamped) in [(&stamped, true), (&numbered, false)] {
        let what = naming(timestamped);
        let report = group
            .verifier(u64::MAX)
            .timestamped(timestamped)
            .period(ONE_SECOND, 0)
            .max_write_delay(MAX_WRITE_DELAY)
            .one_archive_per_period(true)
            .stamps_match_periods(timestamped)
            .verify();
        assert_verified(&report, what);
        // 11.5 s of logging crosses at least 11 boundaries, each one rotation (10 at
        // least, should a stalled machine leave a whole period without a line); every
        // file is a period of its own.
        assert!(
            report.archives >= 10,
            "{what}: only {} archives\n{report}",
            report.archives
        );
        assert_eq!(report.periods, report.files.len(), "{what}: {report}");
        assert_eq!(
            group.rotations(),
            report.archives as u64,
            "{what}: rotations performed vs archives found"
        );
    }
    // Exactly one rotation per boundary: never two archives stamped in one second.
    let archives = stamped_archives(&stamped.log);
    assert!(
        archives
            .iter()
            .all(|archive| archive.counter == 0 && !archive.gz),
        "{:?}",
        names(&archives)
    );
}

pub(crate) fn names(archives: &[StampedName]) -> Vec<&str> {
    archives
        .iter()
        .map(|archive| archive.name.as_str())
        .collect()
}

/// Time and size rotation together: whichever comes first. Every rotation is explained
/// by the size or by a boundary, and every line is where it belongs.
#[test]
fn time_and_size_rotation_whichever_comes_first() {
    const MAX_BYTES: u64 = 8 * 1024;
    let pause = Duration::from_millis(2);
    let policy = |timestamped| time_only(Period::Every(ONE_SECOND), timestamped);
    let stamped = Group::until_stopped(3, 2, MAX_BYTES, policy(true), pause);
    let numbered = Group::until_stopped(2, 2, MAX_BYTES, policy(false), pause);
    let stamped_workers = stamped.start();
    let numbered_workers = numbered.start();
    std::thread::sleep(Duration::from_millis(2_600));
    stamped.stop();
    numbered.stop();
    stamped_workers.wait_within(WORKER_DEADLINE);
    numbered_workers.wait_within(WORKER_DEADLINE);

    for (group, timestamped) in [(&stamped, true), (&numbered, false)] {
        let what = naming(timestamped);
        // Rotation points are checked: an archive either was full, or its period ended.
        let report = group
            .verifier(MAX_BYTES)
            .timestamped(timestamped)
            .period(ONE_SECOND, 0)
            .max_write_delay(MAX_WRITE_DELAY)
            .stamps_match_periods(timestamped)
            .check_record_order(true)
            .verify();
        assert_verified(&report, what);
        assert!(report.periods >= 3, "{what}: {report}");
        let at_boundaries = rotations_at_boundaries(&group.log, timestamped, MAX_BYTES);
        assert!(
            at_boundaries >= 1 && report.archives > at_boundaries + 1,
            "{what}: {at_boundaries} of {} rotations at a boundary: expected both kinds",
            report.archives
        );
        assert_eq!(
            group.rotations(),
            report.archives as u64,
            "{what}: rotations performed vs archives found"
        );
    }
}

/// How many archives were rotated although the next event (the next file's first line)
/// would have fitted: rotated because their period ended.
pub(crate) fn rotations_at_boundaries(log: &Path, timestamped: bool, max_bytes: u64) -> usize {
    let mut chain: Vec<PathBuf> = match timestamped {
        true => stamped_archives(log)
            .iter()
            .map(|archive| log.with_file_name(&archive.name))
            .collect(),
        false => {
            let mut numbered: Vec<PathBuf> = (1..)
                .map(|n| log.with_file_name(format!("app.log.{n}")))
                .take_while(|path| path.exists())
                .collect();
            // The highest number is the oldest.
            numbered.reverse();
            numbered
        }
    };
    chain.push(log.to_path_buf());
    chain
        .windows(2)
        .filter(|pair| {
            let size = fs::metadata(&pair[0]).unwrap().len();
            let next = fs::read_to_string(&pair[1]).unwrap();
            let first_line = next.find('\n').map_or(next.len(), |end| end + 1);
            size + first_line as u64 <= max_bytes
        })
        .count()
}

/// `utc_offset`: with 2-second periods at UTC+01:00:01, boundaries fall on odd UTC
/// seconds, and archive names still give the period's start in UTC.
#[test]
fn a_utc_offset_moves_the_boundaries_and_names_stay_utc() {
    const OFFSET: i32 = 3601;
    let policy = RotationPolicy {
        utc_offset_secs: OFFSET,
        ..time_only(Period::Every(Duration::from_secs(2)), true)
    };
    let group = Group::until_stopped(2, 2, u64::MAX, policy, Duration::from_millis(3));
    let workers = group.start();
    std::thread::sleep(Duration::from_millis(4_600));
    group.stop();
    workers.wait_within(WORKER_DEADLINE);

    let verifier = |offset| {
        group
            .verifier(u64::MAX)
            .timestamped(true)
            .period(Duration::from_secs(2), offset)
            .max_write_delay(MAX_WRITE_DELAY)
            .one_archive_per_period(true)
            .stamps_match_periods(true)
    };
    let report = verifier(OFFSET).verify();
    assert_verified(&report, "at the offset");
    assert!(report.archives >= 2, "{report}");
    assert_eq!(group.rotations(), report.archives as u64);
    let archives = stamped_archives(&group.log);
    assert!(
        archives.iter().all(|archive| archive.stamp % 2 == 1),
        "boundaries at UTC+01:00:01 are odd UTC seconds: {:?}",
        names(&archives)
    );
    // The same files cut at UTC boundaries straddle them: the offset made a difference.
    assert!(!verifier(0).verify().is_ok(), "the offset changed nothing");
}

/// A file whose period ended while nobody logged is rotated once, by the first write
/// after it, into an archive named after the old period; however many processes write.
#[test]
fn a_stale_file_rotates_once_at_the_first_write_after_its_period() {
    let policy = time_only(Period::Every(ONE_SECOND), true);
    let group = Group::new(0..1, 1, 20, u64::MAX, policy);
    group.start().wait_within(WORKER_DEADLINE);
    let first_rotations = group.rotations();
    let written_until = unix_now();
    let stale = fs::read(&group.log).expect("the first writer's file");

    // Two periods go by with nobody logging; then three new processes log at once.
    std::thread::sleep(Duration::from_millis(2_200));
    let late = group.more(1..4, 10);
    start(&late).wait_within(WORKER_DEADLINE);

    assert_eq!(rotations(&late), 1, "the late writers rotate exactly once");
    let archives = stamped_archives(&group.log);
    let newest = archives.last().expect("an archive");
    assert_eq!(
        fs::read(archive_path(&group.log, newest)).unwrap(),
        stale,
        "the archive is the stale file as it was"
    );
    // Stamped with the old period's start: not now, not the epoch.
    assert!(
        (written_until - 10.0..=written_until).contains(&(newest.stamp as f64)),
        "{} is not of the period written in, before {written_until}",
        newest.name
    );
    let mut specs = group.specs.clone();
    specs.extend(late);
    let report = expect_all(Verifier::new(&group.log, u64::MAX, KEEP_ALL), &specs)
        .timestamped(true)
        .period(ONE_SECOND, 0)
        .max_write_delay(MAX_WRITE_DELAY)
        .one_archive_per_period(true)
        .stamps_match_periods(true)
        .verify();
    assert_verified(&report, "stale");
    assert_eq!(report.archives as u64, first_rotations + 1, "{report}");
}

pub(crate) fn archive_path(log: &Path, archive: &StampedName) -> PathBuf {
    log.with_file_name(&archive.name)
}

/// The lock file's path beside `log`.
pub(crate) fn lock_path(log: &Path) -> PathBuf {
    let mut name = log.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}
