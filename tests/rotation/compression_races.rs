//! Compression racing with everything else, with real processes:
//!
//! - The lock is not held while compressing: another process writes while the
//!   compressing one is stopped half-way.
//! - An archive deleted (by retention in another process) while being compressed stays
//!   deleted.
//! - The compressing process killed at random moments, over and over: never a truncated
//!   `.gz` under its final name, never an archive lost, and the next process finishes
//!   what the dead ones left.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::compression::{
    KEEP_ALL, RotatingChild, SETTLE_DEADLINE, Then, WORKER_DEADLINE, assert_verified, gunzip,
    listing, settled, temporaries,
};
use crate::common;
use common::verifier::{Expect, Verifier};
use common::workload::{WriterId, archive_stamp, fmt_line, stamped_archives};

/// Records of `writer`, enough to take a while to compress.
fn archive_content(writer: WriterId, lines: u64) -> Vec<u8> {
    (0..lines)
        .flat_map(|seq| fmt_line(writer, seq).into_bytes())
        .collect()
}

/// Plants a plain archive stamped `stamp`, as an earlier rotation would have left it.
fn plant(log: &Path, stamp: i64, content: &[u8]) -> String {
    let name = format!("app.log.{}", archive_stamp(stamp));
    fs::write(log.with_file_name(&name), content).unwrap();
    name
}

/// One line in the live file, so that the first child's first event rotates.
fn seed_live_file(log: &Path) -> WriterId {
    let writer = WriterId {
        process: 3000,
        thread: 0,
    };
    fs::write(log, fmt_line(writer, 0)).unwrap();
    writer
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Waits until a compression of `log`'s archives is under way (a temporary file exists).
fn wait_for_compression(log: &Path, archive: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while temporaries(log).is_empty() {
        let gz = log.with_file_name(format!("{archive}.gz"));
        assert!(
            !gz.exists(),
            "{archive} was compressed too fast to catch; make it bigger"
        );
        assert!(
            Instant::now() < deadline,
            "no compression started: {:?}",
            listing(log.parent().unwrap())
        );
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// Compression runs on a background thread, off the lock: the write that rotated
/// returns before the big archive is compressed, and while the compressing process is
/// stopped (SIGSTOP) with its temporary file half-written, another process logs and
/// rotates.
#[test]
fn another_process_logs_while_one_is_stopped_mid_compression() {
    // One record per file: every event after the first rotates.
    const MAX_BYTES: u64 = 160;
    let dir = tempfile::tempdir().unwrap();
    let sync = dir.path().join("sync");
    fs::create_dir(&sync).unwrap();
    let log = dir.path().join("app.log");
    let seeded = seed_live_file(&log);
    // Big enough that compressing it takes a while.
    let big_writer = WriterId {
        process: 1000,
        thread: 0,
    };
    let big = plant(
        &log,
        unix_now() - 3600,
        &archive_content(big_writer, 40_000),
    );

    let mut compressing = RotatingChild::spawn(&log, &sync, 1, MAX_BYTES, KEEP_ALL, Then::Hold);
    compressing.wait_until_rotated();
    assert_eq!(
        compressing.compressed_when_written(),
        [] as [String; 0],
        "compressed before the write returned: on the thread that logged"
    );
    wait_for_compression(&log, &big);
    let pid = compressing.pid();
    stop_mid_compression(pid, &log);
    let other = RotatingChild::spawn(&log, &sync, 2, MAX_BYTES, KEEP_ALL, Then::Exit);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        other.wait_within(Duration::from_secs(10));
    }));
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGCONT) }, 0);
    if result.is_err() {
        panic!("a process could not log while another was compressing: the lock is held");
    }
    fs::write(sync.join("quit"), b"").unwrap();
    compressing.wait_within(WORKER_DEADLINE);

    let mut last = RotatingChild::spawn(&log, &sync, 3, MAX_BYTES, KEEP_ALL, Then::Settle);
    last.wait_until_rotated();
    last.wait_within(SETTLE_DEADLINE);
    let report = Verifier::new(&log, u64::MAX, KEEP_ALL)
        .timestamped(true)
        .check_rotation_points(false)
        .check_record_order(true)
        .expect(seeded, Expect::Exactly(1))
        .expect(big_writer, Expect::Exactly(40_000))
        .expect_process(1, 1, 1)
        .expect_process(2, 1, 1)
        .expect_process(3, 1, 1)
        .verify();
    assert_verified(&report, "stopped compressor");
    assert_eq!(report.compressed, report.archives - 1, "{report}");
}

/// Retention may delete an archive while another process is compressing it: the
/// archive stays deleted, and no `.gz` of it appears once that compression ends.
#[test]
fn an_archive_deleted_while_being_compressed_stays_deleted() {
    const MAX_BYTES: u64 = 160;
    const MAX_FILES: usize = 2;
    let dir = tempfile::tempdir().unwrap();
    let sync = dir.path().join("sync");
    fs::create_dir(&sync).unwrap();
    let log = dir.path().join("app.log");
    seed_live_file(&log);
    let big_writer = WriterId {
        process: 1000,
        thread: 0,
    };
    let doomed = plant(
        &log,
        unix_now() - 3600,
        &archive_content(big_writer, 40_000),
    );

    // The first process rotates (2 archives: the big one and its own) and starts to
    // compress the big one; it is stopped half-way.
    let mut compressing = RotatingChild::spawn(&log, &sync, 1, MAX_BYTES, MAX_FILES, Then::Hold);
    compressing.wait_until_rotated();
    wait_for_compression(&log, &doomed);
    let pid = compressing.pid();
    // SAFETY: kill(2) on our own child, which has not been waited for.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0);
    // Another process rotates: 3 archives, one too many, so the big one goes.
    let mut other = RotatingChild::spawn(&log, &sync, 2, MAX_BYTES, MAX_FILES, Then::Exit);
    other.wait_until_rotated();
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGCONT) }, 0);
    other.wait_within(WORKER_DEADLINE);
    assert!(
        !log.with_file_name(&doomed).exists(),
        "retention kept the oldest archive"
    );
    // The stopped compression goes on to its end: its temporary file (the claim on the
    // archive) goes.
    let deadline = Instant::now() + SETTLE_DEADLINE;
    while temporaries(&log)
        .iter()
        .any(|name| name.starts_with(&format!(".{doomed}.gz")))
    {
        assert!(Instant::now() < deadline, "the compression never ended");
        std::thread::sleep(Duration::from_millis(2));
    }
    let names: Vec<String> = stamped_archives(&log)
        .into_iter()
        .map(|archive| archive.name)
        .collect();
    assert!(
        !names.contains(&format!("{doomed}.gz")),
        "{doomed} came back gzipped after retention deleted it: {names:?}"
    );
    fs::write(sync.join("quit"), b"").unwrap();
    compressing.wait_within(WORKER_DEADLINE);
}

/// splitmix64, so that a failing run can be replayed from its printed seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % bound.max(1)
    }
}

/// What each archive must hold, and which `.gz` files were already found complete.
struct Expected {
    log: PathBuf,
    /// Archive name (without `.gz`) → its content.
    contents: BTreeMap<String, Vec<u8>>,
    checked_gz: BTreeSet<String>,
}

impl Expected {
    /// Every archive is there, plain or gzipped (or both, for a moment), and every
    /// `.gz` under its final name is complete and holds exactly the archive's content.
    fn check(&mut self, when: &str) {
        let names = listing(self.log.parent().unwrap());
        for name in &names {
            if name.ends_with(".gz") && !self.checked_gz.contains(name) {
                let archive = name.strip_suffix(".gz").unwrap();
                let expected = self
                    .contents
                    .get(archive)
                    .unwrap_or_else(|| panic!("{when}: unexpected {name}"));
                let content = gunzip(&self.log.with_file_name(name))
                    .unwrap_or_else(|why| panic!("{when}: {why}"));
                assert!(content == *expected, "{when}: {name} holds other content");
                self.checked_gz.insert(name.clone());
            }
        }
        for archive in self.contents.keys() {
            assert!(
                names.contains(archive) || names.contains(&format!("{archive}.gz")),
                "{when}: {archive} is gone, plain and gzipped"
            );
        }
    }

    /// Records the archive the last rotation made: the one name not known yet.
    fn note_rotation(&mut self, content: Vec<u8>) {
        let new: Vec<String> = stamped_archives(&self.log)
            .into_iter()
            .map(|archive| {
                archive
                    .name
                    .strip_suffix(".gz")
                    .unwrap_or(&archive.name)
                    .to_string()
            })
            .filter(|name| !self.contents.contains_key(name))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        assert_eq!(new.len(), 1, "one new archive per rotation: {new:?}");
        self.contents.insert(new[0].clone(), content);
    }
}

/// The compressing process killed with SIGKILL at random moments, 24 times: each one
/// had just rotated, with fresh big archives to compress. After every kill, before
/// anything cleans up: each archive is there plain or gzipped, and every `.gz` is
/// complete. At the end, a last process finishes the job: every line exactly once, no
/// temporary file.
#[test]
fn compressors_killed_at_random_moments_lose_nothing() {
    const KILLS: u32 = 24;
    const MAX_BYTES: u64 = 160;
    const ARCHIVES_PER_ROUND: u32 = 3;
    const LINES_PER_ARCHIVE: u64 = 1_000;
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let sync = dir.path().join("sync");
    fs::create_dir(&sync).unwrap();
    let log = dir.path().join("app.log");
    let mut verifier = Verifier::new(&log, u64::MAX, KEEP_ALL)
        .timestamped(true)
        .check_rotation_points(false)
        .check_record_order(true)
        .expect(seed_live_file(&log), Expect::Exactly(1));
    let mut expected = Expected {
        log: log.clone(),
        contents: BTreeMap::new(),
        checked_gz: BTreeSet::new(),
    };
    // Old stamps, a minute apart per round, well before any real rotation.
    let first_stamp = unix_now() - 30 * 86_400;
    // Round 0 is not killed: it measures how long a whole compression pass takes.
    let mut pass = Duration::ZERO;
    for round in 0..=KILLS {
        let when = format!("seed {seed}, round {round}");
        for k in 0..ARCHIVES_PER_ROUND {
            let writer = WriterId {
                process: 1000 + round,
                thread: k,
            };
            let content = archive_content(writer, LINES_PER_ARCHIVE);
            let stamp = first_stamp + i64::from(round * 60 + k);
            expected
                .contents
                .insert(plant(&log, stamp, &content), content);
            verifier = verifier.expect(writer, Expect::Exactly(LINES_PER_ARCHIVE));
        }
        let live = fs::read(&log).unwrap();
        let process = 2000 + round;
        let mut child = RotatingChild::spawn(&log, &sync, process, MAX_BYTES, KEEP_ALL, Then::Hold);
        assert_eq!(child.wait_until_rotated(), 1, "{when}");
        let rotated_at = Instant::now();
        verifier = verifier.expect(WriterId { process, thread: 0 }, Expect::Exactly(1));
        expected.note_rotation(live);
        if round == 0 {
            let deadline = Instant::now() + SETTLE_DEADLINE;
            while let Err(why) = settled(&log) {
                assert!(Instant::now() < deadline, "{when}: never settled: {why}");
                std::thread::sleep(Duration::from_millis(1));
            }
            pass = rotated_at.elapsed();
        } else {
            // From at once to a little after a whole pass would be done.
            let delay = rng.below(pass.as_micros() as u64 * 5 / 4);
            std::thread::sleep(Duration::from_micros(delay).saturating_sub(rotated_at.elapsed()));
        }
        child.kill();
        expected.check(&when);
    }

    let mut last = RotatingChild::spawn(&log, &sync, 9999, MAX_BYTES, KEEP_ALL, Then::Settle);
    assert_eq!(last.wait_until_rotated(), 1);
    last.wait_within(SETTLE_DEADLINE);
    assert_eq!(temporaries(&log), [] as [String; 0]);
    let report = verifier
        .expect(
            WriterId {
                process: 9999,
                thread: 0,
            },
            Expect::Exactly(1),
        )
        .verify();
    assert_verified(&report, &format!("seed {seed}"));
    assert_eq!(report.compressed, report.archives - 1, "{report}");
}

/// Stops the child `pid` while it compresses off the lock. A stop that lands in one of
/// the compressor's short steps under the lock (a claim, or placing a finished copy) would
/// stop everyone, as any holder stopped under the lock does: that moment is not the one
/// under test, so the child goes on and is stopped again.
fn stop_mid_compression(pid: libc::pid_t, log: &Path) {
    for _ in 0..1000 {
        // SAFETY: kill(2) on our own child, which has not been waited for.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0);
        // Every thread stopped, not just signalled: until then it may still take the lock.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !common::children::is_stopped(pid) {
            assert!(Instant::now() < deadline, "the child did not stop");
            std::thread::sleep(Duration::from_micros(100));
        }
        assert!(
            !temporaries(log).is_empty(),
            "compression finished before the stop; make the archive bigger"
        );
        if common::log_files::lock_is_free(log) {
            return;
        }
        // SAFETY: as above.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGCONT) }, 0);
        std::thread::sleep(Duration::from_micros(200));
    }
    panic!("the compressing child held the lock at every stop");
}
