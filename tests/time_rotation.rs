//! Time rotation (`rotate_every`), with real processes and the real clock.
//!
//! - Several processes logging through 1-second periods for over 11 seconds: every file
//!   holds the lines of one period only, no period has two files, timestamped archives
//!   are stamped with their period's start; alone and together with size rotation.
//! - A fixed UTC offset moves the boundaries, not the names.
//! - A file left by a process that is gone is rotated once by the first write after its
//!   period ended; when the lock file (and its record of the period) is lost, the file's
//!   modification time decides, for every kind of period, never the epoch.
//!
//! Workers are this test binary run again: `worker_entry` becomes a writer when it finds
//! a `WriterSpec` in its environment, and is a no-op test otherwise.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::verifier::{Expect, Report, Verifier};
use common::workload::{
    RotationPolicy, StampedName, Workers, WriterSpec, archive_stamp, run_writer, stamped_archives,
};
use tracing_shared_file::{ErrorKind, Period, SharedFile};

/// How long a line may wait between the fmt layer's timestamp and its write under the
/// lock, on a loaded machine.
const MAX_WRITE_DELAY: Duration = Duration::from_millis(500);
/// No worker may take longer than this to notice `stop` and exit.
const WORKER_DEADLINE: Duration = Duration::from_secs(60);
const ONE_SECOND: Duration = Duration::from_secs(1);
/// Enough to keep every archive, so that every line can be accounted for.
const KEEP_ALL: usize = 100_000;

#[test]
fn worker_entry() {
    if let Some(spec) = WriterSpec::from_env() {
        let stats = run_writer(&spec);
        spec.save_stats(&stats);
    }
}

/// Writer processes sharing one log in a directory of their own.
struct Group {
    dir: tempfile::TempDir,
    log: PathBuf,
    specs: Vec<WriterSpec>,
}

impl Group {
    /// `processes` workers of `threads` threads each, logging until stopped with `pause`
    /// after each line.
    fn until_stopped(
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

    fn new(
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
    fn more(&self, processes: std::ops::Range<u32>, lines_per_thread: u64) -> Vec<WriterSpec> {
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

    fn start(&self) -> Workers {
        start(&self.specs)
    }

    fn stop(&self) {
        fs::write(self.specs[0].sync_dir.join("stop"), b"").expect("signal stop");
    }

    /// Every line each writer finished, exactly once.
    fn verifier(&self, max_bytes: u64) -> Verifier {
        expect_all(Verifier::new(&self.log, max_bytes, KEEP_ALL), &self.specs)
    }

    /// The rotations all workers performed, after checking that nothing failed.
    fn rotations(&self) -> u64 {
        rotations(&self.specs)
    }
}

/// A batch of workers waits for its own start signal: a sync directory of its own.
fn batch_sync_dir(dir: &Path, processes: &std::ops::Range<u32>) -> PathBuf {
    let sync_dir = dir.join(format!("sync{}", processes.start));
    fs::create_dir(&sync_dir).expect("sync dir");
    sync_dir
}

/// Starts a batch of workers together, once all are ready.
fn start(specs: &[WriterSpec]) -> Workers {
    Workers::start(|| common::entry_command("worker_entry"), specs)
}

/// Expects of every writer of `specs` exactly the lines it finished.
fn expect_all(verifier: Verifier, specs: &[WriterSpec]) -> Verifier {
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

fn naming(timestamped: bool) -> &'static str {
    if timestamped {
        "timestamped"
    } else {
        "numbered"
    }
}

/// The rotations `specs`' workers performed, after checking that nothing failed and every
/// event they finished was written.
fn rotations(specs: &[WriterSpec]) -> u64 {
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

fn time_only(period: Period, timestamped: bool) -> RotationPolicy {
    RotationPolicy {
        rotate_every: Some(period),
        timestamped,
        ..RotationPolicy::default()
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[track_caller]
fn assert_verified(report: &Report, what: &str) {
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

fn names(archives: &[StampedName]) -> Vec<&str> {
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
fn rotations_at_boundaries(log: &Path, timestamped: bool, max_bytes: u64) -> usize {
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

fn archive_path(log: &Path, archive: &StampedName) -> PathBuf {
    log.with_file_name(&archive.name)
}

/// The lock file's path beside `log`.
fn lock_path(log: &Path) -> PathBuf {
    let mut name = log.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// How the record of the live file's period is lost.
#[derive(Debug, Clone, Copy)]
enum RecordLoss {
    /// The lock file was deleted.
    Deleted,
    /// The lock file was replaced by a page of zeros, as if never set up.
    Blanked,
}

impl RecordLoss {
    fn apply(self, log: &Path) {
        let lock = lock_path(log);
        match self {
            RecordLoss::Deleted => fs::remove_file(&lock).expect("delete the lock file"),
            RecordLoss::Blanked => {
                fs::remove_file(&lock).expect("delete the lock file");
                fs::write(&lock, [0u8; 4096]).expect("write a blank lock file");
            }
        }
    }
}

/// Sets the modification time of `path` to `secs` since the epoch.
fn set_mtime(path: &Path, secs: i64) {
    let at = UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).expect("after the epoch"));
    fs::File::options()
        .write(true)
        .open(path)
        .and_then(|file| file.set_modified(at))
        .unwrap_or_else(|e| panic!("cannot set the mtime of {}: {e}", path.display()));
}

/// 2025-11-26T23:30:15Z, a Wednesday: long before the test runs.
const OLD_WRITE: i64 = 1_764_199_815;

/// With the lock file (and so its record of the period) lost, the live file's
/// modification time says which period its lines are of: new processes rotate it once,
/// into an archive named after that period's start, for every kind of period and offset.
#[test]
fn a_lost_record_leaves_the_period_to_the_files_mtime() {
    assert_eq!(archive_stamp(OLD_WRITE), "2025-11-26T23-30-15Z");
    let cases = [
        (Period::Minute, 0, "2025-11-26T23-30-00Z"),
        (Period::Hour, 0, "2025-11-26T23-00-00Z"),
        (Period::Day, 0, "2025-11-26T00-00-00Z"),
        // 01:30 on the 27th at +02:00: that day began at 22:00 UTC.
        (Period::Day, 7200, "2025-11-26T22-00-00Z"),
        (Period::Week, 0, "2025-11-24T00-00-00Z"),
        // 18:30 on Wednesday at -05:00: that week began on Monday 05:00 UTC.
        (Period::Week, -18_000, "2025-11-24T05-00-00Z"),
        // Multiples of 90 minutes since the epoch.
        (
            Period::Every(Duration::from_secs(5400)),
            0,
            "2025-11-26T22-30-00Z",
        ),
    ];
    for (case, (period, offset, expected)) in cases.into_iter().enumerate() {
        let what = format!("{period:?} at UTC{offset:+}s");
        let policy = RotationPolicy {
            utc_offset_secs: offset,
            ..time_only(period, true)
        };
        let group = Group::new(0..1, 1, 5, u64::MAX, policy);
        group.start().wait_within(WORKER_DEADLINE);
        let old = fs::read(&group.log).expect("the first writer's file");
        let loss = if case % 2 == 0 {
            RecordLoss::Deleted
        } else {
            RecordLoss::Blanked
        };
        loss.apply(&group.log);
        set_mtime(&group.log, OLD_WRITE);

        let late = group.more(1..3, 5);
        start(&late).wait_within(WORKER_DEADLINE);

        assert_eq!(rotations(&late), 1, "{what}, {loss:?}: one rotation");
        let archives = stamped_archives(&group.log);
        assert_eq!(
            names(&archives),
            [format!("app.log.{expected}")],
            "{what}, {loss:?}"
        );
        assert_eq!(
            fs::read(archive_path(&group.log, &archives[0])).unwrap(),
            old
        );
        let mut specs = group.specs.clone();
        specs.extend(late);
        let report = expect_all(Verifier::new(&group.log, u64::MAX, KEEP_ALL), &specs)
            .timestamped(true)
            // A rotation by the mtime's period, which the lines' own times do not show.
            .check_rotation_points(false)
            .check_record_order(true)
            .verify();
        assert_verified(&report, &what);
        assert_eq!(report.archives, 1);
    }
}

/// A file that holds no line of an earlier period is not rotated, whatever its
/// modification time says: an empty one (made long ago), or one modified in the future.
#[test]
fn a_file_without_lines_of_an_earlier_period_is_not_rotated() {
    // 2040-01-01T00:00:00Z.
    const FUTURE: i64 = 2_208_988_800;
    for (lines, mtime) in [(0, OLD_WRITE), (5, FUTURE)] {
        let what = format!("{lines} lines, mtime {}", archive_stamp(mtime));
        let policy = time_only(Period::Hour, true);
        let group = Group::new(0..1, 1, lines, u64::MAX, policy);
        group.start().wait_within(WORKER_DEADLINE);
        RecordLoss::Deleted.apply(&group.log);
        set_mtime(&group.log, mtime);

        let late = group.more(1..3, 5);
        start(&late).wait_within(WORKER_DEADLINE);

        assert_eq!(rotations(&late), 0, "{what}");
        assert_eq!(
            names(&stamped_archives(&group.log)),
            [] as [&str; 0],
            "{what}"
        );
        let mut specs = group.specs.clone();
        specs.extend(late);
        let report = expect_all(Verifier::new(&group.log, u64::MAX, KEEP_ALL), &specs)
            .timestamped(true)
            .verify();
        assert_verified(&report, &what);
    }
}

/// A period must be whole seconds, at least one.
#[test]
fn periods_that_are_not_whole_seconds_are_refused_at_build() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    for length in [
        Duration::ZERO,
        Duration::from_millis(999),
        Duration::from_millis(1500),
    ] {
        let error = SharedFile::builder(&log)
            .rotate_every(Period::Every(length))
            .build()
            .expect_err("an invalid period");
        assert_eq!(error.kind(), ErrorKind::InvalidPeriod, "{length:?}");
    }
    assert!(!log.exists(), "a refused build creates no file");
    for period in [
        Period::Every(ONE_SECOND),
        Period::Minute,
        Period::Hour,
        Period::Day,
        Period::Week,
    ] {
        SharedFile::builder(&log)
            .rotate_every(period)
            .build()
            .unwrap_or_else(|e| panic!("{period:?}: {e}"));
    }
}
