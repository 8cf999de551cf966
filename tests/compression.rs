//! Compression of timestamped archives (`compress(true)`), with real processes.
//!
//! - `build()` refuses compression with numbered names.
//! - Several processes rotating and compressing at once: every line lands exactly once,
//!   in a plain or a `.gz` archive; once the last process's compression is done, every
//!   archive but the newest is gzipped, the newest is plain, and no temporary file is
//!   left; files that only look like archives are never compressed.
//! - Compression with retention keeps the limits.
//! - The lock is not held while compressing: another process writes while the
//!   compressing one is stopped half-way.
//! - The compressing process killed at random moments, over and over: never a truncated
//!   `.gz` under its final name, never an archive lost, and the next process finishes
//!   what the dead ones left.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::verifier::{Expect, Report, Verifier};
use common::workload::{
    RotationPolicy, StampedName, Workers, WriterId, WriterSpec, archive_stamp, fmt_line,
    run_writer, stamped_archives,
};
use tracing_shared_file::{ErrorKind, Naming, SharedFile};

const WORKER_DEADLINE: Duration = Duration::from_secs(60);
/// How long the last process may take to compress what is left.
const SETTLE_DEADLINE: Duration = Duration::from_secs(30);
const KEEP_ALL: usize = 100_000;

const ENV_CHILD: &str = "TSF_COMPRESS_CHILD";
const ENV_LOG: &str = "TSF_COMPRESS_LOG";
const ENV_SYNC: &str = "TSF_COMPRESS_SYNC";
const ENV_MAX_BYTES: &str = "TSF_COMPRESS_MAX_BYTES";
const ENV_MAX_FILES: &str = "TSF_COMPRESS_MAX_FILES";
const ENV_MODE: &str = "TSF_COMPRESS_MODE";

#[test]
fn worker_entry() {
    if let Some(spec) = WriterSpec::from_env() {
        let stats = run_writer(&spec);
        spec.save_stats(&stats);
    }
}

/// What a rotating child does once it has rotated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Then {
    /// Exit at once (a normal exit, which waits for its compression).
    Exit,
    /// Wait until its compression has left the directory settled (see `settled`).
    Settle,
    /// Wait to be killed (or for `<sync>/quit`).
    Hold,
}

/// A child that writes records of writer `(process, 0)` until it has rotated once,
/// writes how many it wrote to `<sync>/wrote.<process>`, and the `.gz` files there were
/// as its last write returned to `<sync>/gz.<process>`, then does what `Then` says.
#[test]
fn rotating_child_entry() {
    let Some(process) = std::env::var_os(ENV_CHILD) else {
        return;
    };
    let process: u32 = process.to_str().unwrap().parse().unwrap();
    let var = |name| std::env::var(name).unwrap();
    let log = PathBuf::from(var(ENV_LOG));
    let sync = PathBuf::from(var(ENV_SYNC));
    let then = match var(ENV_MODE).as_str() {
        "exit" => Then::Exit,
        "settle" => Then::Settle,
        _ => Then::Hold,
    };
    let shared = SharedFile::builder(&log)
        .max_bytes(var(ENV_MAX_BYTES).parse().unwrap())
        .max_files(var(ENV_MAX_FILES).parse().unwrap())
        .naming(Naming::Timestamped)
        .compress(true)
        .build()
        .expect("build");
    let writer = WriterId { process, thread: 0 };
    let mut written = 0;
    while shared.stats().rotations == 0 {
        assert!(written < 100_000, "never rotated");
        (&shared)
            .write_all(fmt_line(writer, written).as_bytes())
            .expect("write");
        written += 1;
    }
    let compressed: Vec<String> = listing(log.parent().unwrap())
        .into_iter()
        .filter(|name| name.ends_with(".gz"))
        .collect();
    let stats = shared.stats();
    assert_eq!((stats.write_errors, stats.rotation_errors), (0, 0));
    fs::write(sync.join(format!("gz.{process}")), compressed.join("\n")).unwrap();
    fs::write(sync.join(format!("wrote.{process}")), written.to_string()).unwrap();
    match then {
        Then::Exit => {}
        Then::Settle => {
            let deadline = Instant::now() + SETTLE_DEADLINE;
            while let Err(why) = settled(&log) {
                assert!(Instant::now() < deadline, "never settled: {why}");
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        Then::Hold => {
            let deadline = Instant::now() + WORKER_DEADLINE;
            while !sync.join("quit").exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

/// A rotating child, killed if the test fails before it ends.
struct RotatingChild {
    process: u32,
    sync: PathBuf,
    child: Child,
}

impl RotatingChild {
    fn spawn(
        log: &Path,
        sync: &Path,
        process: u32,
        max_bytes: u64,
        max_files: usize,
        then: Then,
    ) -> Self {
        let mode = match then {
            Then::Exit => "exit",
            Then::Settle => "settle",
            Then::Hold => "hold",
        };
        let mut command = Command::new(std::env::current_exe().unwrap());
        command
            .args([
                "--exact",
                "rotating_child_entry",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(ENV_CHILD, process.to_string())
            .env(ENV_LOG, log)
            .env(ENV_SYNC, sync)
            .env(ENV_MAX_BYTES, max_bytes.to_string())
            .env(ENV_MAX_FILES, max_files.to_string())
            .env(ENV_MODE, mode)
            .stdout(Stdio::null());
        let child = common::spawn_retrying(&mut command).expect("spawn a rotating child");
        RotatingChild {
            process,
            sync: sync.to_path_buf(),
            child,
        }
    }

    /// Waits until the child has rotated; returns how many records it wrote.
    fn wait_until_rotated(&mut self) -> u64 {
        let path = self.sync.join(format!("wrote.{}", self.process));
        let deadline = Instant::now() + WORKER_DEADLINE;
        loop {
            if let Ok(text) = fs::read_to_string(&path)
                && let Ok(written) = text.parse()
            {
                return written;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("child {} exited ({status}) before it rotated", self.process);
            }
            assert!(
                Instant::now() < deadline,
                "child {} never rotated",
                self.process
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// The `.gz` files there were as the child's last write returned.
    fn compressed_when_written(&self) -> Vec<String> {
        let text = fs::read_to_string(self.sync.join(format!("gz.{}", self.process))).unwrap();
        text.lines().map(String::from).collect()
    }

    /// Waits for the child to end by itself, successfully, within `limit`.
    fn wait_within(mut self, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "child {} failed: {status}", self.process);
                return;
            }
            assert!(
                Instant::now() < deadline,
                "child {} was not done within {limit:?}",
                self.process
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RotatingChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether compression is done with `log`'s archives: every one but the newest only
/// gzipped, the newest only plain, and no temporary file left.
fn settled(log: &Path) -> Result<(), String> {
    let archives = stamped_archives(log);
    let mut forms: BTreeMap<(i64, u64), Vec<&StampedName>> = BTreeMap::new();
    for archive in &archives {
        forms
            .entry((archive.stamp, archive.counter))
            .or_default()
            .push(archive);
    }
    let count = forms.len();
    for (index, names) in forms.values().enumerate() {
        let gz: Vec<bool> = names.iter().map(|name| name.gz).collect();
        let expected = if index + 1 == count { [false] } else { [true] };
        if gz != expected {
            let names: Vec<&str> = names.iter().map(|name| name.name.as_str()).collect();
            return Err(format!("archive {index} of {count} is {names:?}"));
        }
    }
    let temporaries = temporaries(log);
    if !temporaries.is_empty() {
        return Err(format!("temporary files left: {temporaries:?}"));
    }
    Ok(())
}

/// The compressor's temporary files for `log`'s archives.
fn temporaries(log: &Path) -> Vec<String> {
    let prefix = format!(".{}.", log.file_name().unwrap().to_str().unwrap());
    fs::read_dir(log.parent().unwrap())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.starts_with(&prefix) && name.ends_with(".tmp"))
        .collect()
}

/// The whole content of a gzip file, or why it has none (a truncated one has none).
fn gunzip(path: &Path) -> Result<Vec<u8>, String> {
    let compressed = fs::read(path).map_err(|e| e.to_string())?;
    if !compressed.starts_with(&[0x1f, 0x8b]) {
        return Err(format!("{} has no gzip header", path.display()));
    }
    let mut content = Vec::new();
    flate2::read::MultiGzDecoder::new(compressed.as_slice())
        .read_to_end(&mut content)
        .map_err(|e| format!("{} is corrupt: {e}", path.display()))?;
    Ok(content)
}

fn listing(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect()
}

#[track_caller]
fn assert_verified(report: &Report, what: &str) {
    assert!(report.is_ok(), "{what}: verification failed:\n{report}");
}

fn compressed_policy() -> RotationPolicy {
    RotationPolicy {
        timestamped: true,
        compress: true,
        ..RotationPolicy::default()
    }
}

/// Compression would race with renumbering, so it needs timestamped names.
#[test]
fn compression_needs_timestamped_names() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    for builder in [
        SharedFile::builder(&log).compress(true),
        SharedFile::builder(&log)
            .naming(Naming::Numbered)
            .compress(true),
    ] {
        let error = builder
            .build()
            .expect_err("numbered names with compression");
        assert_eq!(error.kind(), ErrorKind::CompressionNeedsTimestamps);
    }
    assert_eq!(
        listing(dir.path()),
        BTreeSet::new(),
        "a refused build creates nothing"
    );
    SharedFile::builder(&log)
        .naming(Naming::Numbered)
        .compress(false)
        .build()
        .expect("numbered names without compression");
    SharedFile::builder(&log)
        .naming(Naming::Timestamped)
        .compress(true)
        .build()
        .expect("timestamped names with compression");
}

/// Writers in several processes, each compressing after its rotations, then one last
/// process that rotates and finishes: every line exactly once, every archive but the
/// newest gzipped, nothing else touched. With `max_files`, the limit holds too.
#[test]
fn every_line_lands_once_in_plain_or_gzipped_archives() {
    const MAX_BYTES: u64 = 8 * 1024;
    for max_files in [KEEP_ALL, 4, 40] {
        let what = format!("max_files {max_files}");
        let dir = tempfile::tempdir().unwrap();
        let sync = dir.path().join("sync");
        fs::create_dir_all(&sync).unwrap();
        fs::create_dir(dir.path().join("logs")).unwrap();
        let log = dir.path().join("logs/app.log");
        let look_alikes = [
            "app.log.bak",
            "app.log.1",
            "app.log.2026-11-27T14-00-00Z.txt",
            "other.log.2020-01-01T00-00-00Z",
        ];
        for name in look_alikes {
            fs::write(log.with_file_name(name), name).unwrap();
        }
        let specs: Vec<WriterSpec> = (0..4)
            .map(|process| WriterSpec {
                max_bytes: MAX_BYTES,
                max_files,
                process,
                threads: 2,
                lines_per_thread: 500,
                policy: compressed_policy(),
                ..WriterSpec::new(log.clone(), sync.clone())
            })
            .collect();
        Workers::start(|| common::entry_command("worker_entry"), &specs)
            .wait_within(WORKER_DEADLINE);
        let mut last = RotatingChild::spawn(&log, &sync, 9, MAX_BYTES, max_files, Then::Settle);
        let last_lines = last.wait_until_rotated();
        last.wait_within(SETTLE_DEADLINE);

        let rotations: u64 = specs.iter().map(|spec| spec.saved_stats().rotations).sum();
        let archives: Vec<StampedName> = stamped_archives(&log);
        if max_files == KEEP_ALL {
            assert_eq!(archives.len() as u64, rotations + 1, "{what}: {archives:?}");
        } else {
            let fewest = max_files - max_files / 16;
            assert!(
                (fewest..=max_files).contains(&archives.len()),
                "{what}: {} archives: {:?}",
                archives.len(),
                archives.iter().map(|a| &a.name).collect::<Vec<_>>()
            );
        }
        let mut expected: BTreeSet<String> = archives.iter().map(|a| a.name.clone()).collect();
        expected.extend(["app.log", "app.log.lock"].map(String::from));
        expected.extend(look_alikes.map(String::from));
        assert_eq!(listing(log.parent().unwrap()), expected, "{what}");
        for name in look_alikes {
            assert_eq!(fs::read_to_string(log.with_file_name(name)).unwrap(), name);
        }

        let expectation = |lines| match max_files {
            KEEP_ALL => Expect::Exactly(lines),
            _ => Expect::Newest { total: lines },
        };
        let verifier = specs.iter().fold(
            Verifier::new(&log, MAX_BYTES, max_files).timestamped(true),
            |verifier, spec| verifier.expect_threads(spec.process, 2, expectation(500)),
        );
        let report = verifier
            .expect(
                WriterId {
                    process: 9,
                    thread: 0,
                },
                Expect::Exactly(last_lines),
            )
            .verify();
        assert_verified(&report, &what);
        assert_eq!(report.compressed, report.archives - 1, "{what}: {report}");
    }
}

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
    let pid = compressing.child.id() as libc::pid_t;
    // SAFETY: kill(2) on our own child, which has not been waited for.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0);
    assert!(
        !temporaries(&log).is_empty(),
        "compression finished before the stop; make the archive bigger"
    );
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
    let pid = compressing.child.id() as libc::pid_t;
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
