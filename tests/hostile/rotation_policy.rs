//! Hostile inputs to the rotation policy: foreign archive names at the edges (a counter of
//! u32::MAX, a stamp in 2099), damaged words of the lock page's ledger, and `max_age`
//! equal to the rotation period (more in `retention_edges`). Each test asserts what the
//! library must do: no panic, no archive named before 2000, retention oldest first, every
//! line whole and present.

use crate::common;

use std::fs;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::verifier::{Expect, Verifier};
use common::workload::{WriterId, archive_stamp, fmt_line, stamped_archives};
use tracing_shared_file::{Naming, Period, SharedFile};

/// 2000-01-01T00:00:00Z: no archive made by this test may be stamped earlier.
pub(crate) const YEAR_2000: i64 = 946_684_800;
pub(crate) const WRITER: WriterId = WriterId {
    process: 1,
    thread: 0,
};
/// Two records per file.
pub(crate) const MAX_BYTES: u64 = 300;

// Words of the lock page (src/lock/page.rs).
const LEDGER_COUNT: u64 = 20;
const NEWEST_STAMP: u64 = 24;
const NEWEST_COUNTER: u64 = 25;

#[test]
fn worker_entry() {
    common::workload::run_worker_saving_stats();
}

pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

pub(crate) fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

pub(crate) fn timestamped(log: &Path) -> tracing_shared_file::Builder {
    SharedFile::builder(log).naming(Naming::Timestamped)
}

/// Writes records `seqs` of `writer`, each in one call, every call returning Ok.
#[track_caller]
pub(crate) fn write(log: &SharedFile, writer: WriterId, seqs: std::ops::Range<u64>) {
    for seq in seqs {
        (&*log)
            .write_all(fmt_line(writer, seq).as_bytes())
            .unwrap_or_else(|e| panic!("write of record {seq} failed: {e}"));
    }
}

/// Writes `value` into word `index` of the lock page, as a damaged or foreign process
/// would; the page is mapped shared, so the library sees it at once.
pub(crate) fn poke(log: &Path, index: u64, value: u64) {
    let lock = fs::OpenOptions::new()
        .write(true)
        .open(log.with_file_name("app.log.lock"))
        .unwrap();
    lock.write_all_at(&value.to_ne_bytes(), index * 8).unwrap();
}

/// The names of the timestamped archives, oldest first.
pub(crate) fn archive_names(log: &Path) -> Vec<String> {
    stamped_archives(log).into_iter().map(|a| a.name).collect()
}

#[track_caller]
pub(crate) fn assert_no_stamp_before_2000(log: &Path) {
    let early: Vec<String> = stamped_archives(log)
        .into_iter()
        .filter(|a| a.stamp < YEAR_2000)
        .map(|a| a.name)
        .collect();
    assert!(early.is_empty(), "archives stamped before 2000: {early:?}");
}

pub(crate) fn verifier(log: &Path, max_bytes: u64, max_files: usize) -> Verifier {
    Verifier::new(log, max_bytes, max_files).timestamped(true)
}

/// A foreign file whose counter is u32::MAX, stamped at the current second, within the
/// hour (still an archive) and in the far future: no write panics or fails, every line is
/// there, and the foreign file is untouched.
#[test]
fn a_foreign_archive_with_the_largest_counter_stamped_now_never_makes_a_write_panic() {
    largest_counter("stamped now", now());
}

#[test]
fn a_foreign_archive_with_the_largest_counter_stamped_within_the_hour_never_makes_a_write_panic() {
    largest_counter("stamped in half an hour", now() + 1800);
}

#[test]
fn a_foreign_archive_with_the_largest_counter_stamped_in_2099_never_makes_a_write_panic() {
    largest_counter("stamped in 2099", 4_070_908_800);
}

fn largest_counter(what: &str, stamp: i64) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let foreign = log.with_file_name(format!("app.log.{}.4294967295", archive_stamp(stamp)));
    fs::write(&foreign, "foreign\n").unwrap();
    let shared = timestamped(&log)
        .max_bytes(MAX_BYTES)
        .max_files(1000)
        .build()
        .unwrap();
    write(&shared, WRITER, 0..12);
    let stats = shared.stats();
    assert_eq!(stats.write_errors, 0, "{what}: {stats:?}");
    assert!(stats.rotations >= 3, "{what}: {stats:?}");
    drop(shared);
    assert_eq!(
        fs::read_to_string(&foreign).ok().as_deref(),
        Some("foreign\n"),
        "{what}: the foreign file was touched"
    );
    assert_no_stamp_before_2000(&log);
    fs::remove_file(&foreign).unwrap();
    let report = verifier(&log, MAX_BYTES, 1000)
        .expect(WRITER, Expect::Exactly(12))
        .verify();
    assert!(report.is_ok(), "{what}: {report}");
}

/// A damaged word of the ledger while a process logs with timestamped names and
/// `max_files(4)`: no panic, no archive named 1970, and the records kept are exactly the
/// newest ones.
#[test]
fn a_newest_counter_word_of_u32_max_neither_panics_nor_misnames_nor_deletes_the_newest() {
    damaged_ledger("newest counter u32::MAX", |log| {
        // A minute ahead, so that the next rotation wants the counter after it.
        poke(log, NEWEST_STAMP, (now() + 60) as u64);
        poke(log, NEWEST_COUNTER, u64::from(u32::MAX));
    });
}

#[test]
fn a_ledger_count_word_of_u64_max_neither_panics_nor_misnames_nor_deletes_the_newest() {
    damaged_ledger("ledger count u64::MAX", |log| {
        poke(log, LEDGER_COUNT, u64::MAX)
    });
}

#[test]
fn a_newest_stamp_word_of_i64_max_neither_panics_nor_misnames_nor_deletes_the_newest() {
    damaged_ledger("newest stamp i64::MAX", |log| {
        poke(log, NEWEST_STAMP, i64::MAX as u64)
    });
}

fn damaged_ledger(what: &str, damage: fn(&Path)) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let shared = timestamped(&log)
        .max_bytes(MAX_BYTES)
        .max_files(4)
        .build()
        .unwrap();
    write(&shared, WRITER, 0..8);
    assert!(
        shared.stats().rotations >= 3,
        "{what}: {:?}",
        shared.stats()
    );
    damage(&log);
    let written = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        write(&shared, WRITER, 8..24);
    }));
    assert!(written.is_ok(), "{what}: a write panicked");
    let expected = verifier(&log, MAX_BYTES, 4).expect(WRITER, Expect::Newest { total: 24 });
    assert_written_whole(shared, &log, what, expected);
}

/// Nothing failed, no archive is named before 2000, and `expected` passes.
#[track_caller]
pub(crate) fn assert_written_whole(shared: SharedFile, log: &Path, what: &str, expected: Verifier) {
    assert_eq!(shared.stats().write_errors, 0, "{what}");
    drop(shared);
    assert_no_stamp_before_2000(log);
    let report = expected.verify();
    assert!(report.is_ok(), "{what}: {:?}\n{report}", archive_names(log));
}

/// A foreign file stamped in 2099 is no archive: it is never deleted or renamed, it
/// never decides the next name (new archives are named by the clock), and `max_age`
/// deletes the new archives once they are old enough.
#[test]
fn a_name_stamped_far_in_the_future_is_no_archive() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let foreign = log.with_file_name("app.log.2099-01-01T00-00-00Z");
    fs::write(&foreign, "restored from another machine\n").unwrap();
    let shared = timestamped(&log)
        .max_bytes(MAX_BYTES)
        .max_files(1000)
        .max_age(Duration::from_secs(2))
        .build()
        .unwrap();
    let foreign_name = "app.log.2099-01-01T00-00-00Z".to_string();
    let ours = |log: &Path| -> Vec<(String, i64)> {
        stamped_archives(log)
            .into_iter()
            .filter(|a| a.name != foreign_name)
            .map(|a| (a.name, a.stamp))
            .collect()
    };
    let check = |log: &Path, when: &str| {
        let now = now();
        for (name, stamp) in ours(log) {
            assert!(
                (stamp - now).abs() <= 60,
                "{when}: {name} is not named by the clock ({})",
                archive_stamp(now)
            );
        }
        assert_eq!(
            fs::read_to_string(&foreign).ok().as_deref(),
            Some("restored from another machine\n"),
            "{when}: the 2099 file was touched: {:?}",
            archive_names(log)
        );
    };
    write(&shared, WRITER, 0..10);
    assert!(shared.stats().rotations >= 4, "{:?}", shared.stats());
    check(&log, "first rotations");
    let first: Vec<String> = ours(&log).into_iter().map(|(name, _)| name).collect();
    assert!(!first.is_empty());
    // Past max_age for every archive made so far.
    std::thread::sleep(Duration::from_secs(3));
    write(&shared, WRITER, 10..20);
    check(&log, "after max_age");
    let survivors: Vec<&String> = first
        .iter()
        .filter(|name| {
            log.with_file_name(name).exists() || log.with_file_name(format!("{name}.gz")).exists()
        })
        .collect();
    assert!(
        survivors.is_empty(),
        "archives older than max_age survived: {survivors:?}"
    );
    assert_eq!(shared.stats().write_errors, 0);
    drop(shared);
    fs::remove_file(&foreign).unwrap();
    let report = verifier(&log, MAX_BYTES, 1000)
        .expect(WRITER, Expect::Newest { total: 20 })
        .verify();
    assert!(report.is_ok(), "{report}");
}

/// Waits until the current `period_ms` period is at least `from_ms` in.
pub(crate) fn wait_until_into_period(period_ms: u128, from_ms: u128) -> u128 {
    let start = now_ms() / period_ms;
    loop {
        let ms = now_ms();
        if ms / period_ms > start && ms % period_ms >= from_ms {
            return ms / period_ms;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `rotate_every(Every(2 s))` with `max_age(2 s)`: the archive a time rotation just made
/// holds the period that just ended, younger than max_age by its last line; it is kept,
/// whether the first write after the boundary comes at once or a second late.
#[test]
fn max_age_equal_to_the_period_keeps_the_archive_just_made() {
    max_age_equal_to_the_period(0);
}

#[test]
fn max_age_equal_to_the_period_keeps_the_archive_just_made_when_the_first_write_is_late() {
    max_age_equal_to_the_period(1000);
}

fn max_age_equal_to_the_period(late_ms: u128) {
    const PERIOD_MS: u128 = 2000;
    {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("app.log");
        let shared = timestamped(&log)
            .max_bytes(u64::MAX)
            .max_files(1000)
            .rotate_every(Period::Every(Duration::from_secs(2)))
            .max_age(Duration::from_secs(2))
            .build()
            .unwrap();
        // Lines through one period, the last one late in it.
        let period = wait_until_into_period(PERIOD_MS, 50);
        let mut seq = 0;
        loop {
            write(&shared, WRITER, seq..seq + 1);
            seq += 1;
            let ms = now_ms();
            assert_eq!(ms / PERIOD_MS, period, "the test fell behind the clock");
            if ms % PERIOD_MS >= 1600 {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        assert_eq!(shared.stats().rotations, 0);
        wait_until_into_period(PERIOD_MS, 50 + late_ms);
        write(&shared, WRITER, seq..seq + 1);
        let what = format!("first write {late_ms} ms after the boundary");
        assert_eq!(shared.stats().rotations, 1, "{what}");
        assert_eq!(
            archive_names(&log).len(),
            1,
            "{what}: the archive just made is gone"
        );
        let report = verifier(&log, u64::MAX, 1000)
            .check_rotation_points(false)
            .check_record_order(true)
            .expect(WRITER, Expect::Exactly(seq + 1))
            .verify();
        assert!(report.is_ok(), "{what}: {report}");
    }
}
