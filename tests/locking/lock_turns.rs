//! A long write lets the others take their turn: a non-blocking batch that crosses many
//! rotation points rotates once per hold of the lock, and stands back between holds when
//! another process waits, so a synchronous writer in another process gets its line in
//! early in the batch (in its first quarter here), instead of waiting for all of it.
//!
//! The count of waiters that makes a batch stand back lives in the lock file's shared
//! page; a waiter killed with `SIGKILL` never takes itself off it. A turn that nobody
//! took forgets the count, so that long writes do not stand back for nobody for ever.

use crate::common;

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::children::{RunningChild, start_entry_env, touch};
use common::log_files::hold_lock;
use common::workload::wait_for_file;
use tracing_shared_file::SharedFile;

const ROLE_ENV: &str = "TSF_LOCK_TURNS_ROLE";
const MAX_BYTES: u64 = 4096;
/// 1 MiB of queued lines: about 250 rotations in one batch.
const BATCH_BYTES: usize = 1 << 20;
const SINGLE_LINE: &[u8] = b"the single line\n";
const LINE: &[u8] =
    b"2026-11-27T12:00:00.000000Z  INFO turns: a line that fills one of the many small files\n";
const DEADLINE: Duration = Duration::from_secs(60);
const WAITER_ENV: &str = "TSF_LOCK_TURNS_WAITER";

fn build(dir: &Path) -> SharedFile {
    SharedFile::builder(dir.join("app.log"))
        .max_bytes(MAX_BYTES)
        // Every archive is kept, to find the single line in afterwards.
        .max_files(100_000)
        .build()
        .unwrap()
}

/// Child side: `batcher` queues the whole batch while the test holds the lock, then
/// writes it; `single` writes one line.
#[test]
fn role_entry() {
    let Ok(role) = std::env::var(ROLE_ENV) else {
        return;
    };
    let (role, dir) = role.split_once(':').unwrap();
    let dir = PathBuf::from(dir);
    let log = build(&dir);
    if role == "batcher" {
        let (mut writer, guard) = log
            .non_blocking_builder()
            .max_queued_bytes(2 * BATCH_BYTES)
            .max_batch_bytes(2 * BATCH_BYTES)
            .finish();
        // The background thread takes this first line alone and waits for the lock with
        // it; everything queued after it then goes out as one batch.
        writer.write_all(LINE).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        for _ in 1..BATCH_BYTES / LINE.len() {
            writer.write_all(LINE).unwrap();
        }
        touch(&dir.join("batcher-queued"));
        drop(guard);
        assert_eq!(log.stats().events_dropped, 0);
    } else {
        touch(&dir.join("single-ready"));
        wait_for_file(&dir.join("single-go"));
        (&log).write_all(SINGLE_LINE).unwrap();
    }
}

/// Child side: writes one line, which waits for the lock the test holds until the test
/// kills this process.
#[test]
fn killed_waiter_entry() {
    let Some(dir) = std::env::var_os(WAITER_ENV) else {
        return;
    };
    let log = build(Path::new(&dir));
    let _ = (&log).write_all(SINGLE_LINE);
}

fn spawn(role: &str, dir: &Path) -> RunningChild {
    let spec = format!("{role}:{}", dir.display());
    start_entry_env(&common::entry!(role_entry), dir, role, ROLE_ENV, spec).with_deadline(DEADLINE)
}

#[test]
fn a_long_batch_lets_a_waiting_writer_in_between_its_rotations() {
    let dir = tempfile::tempdir().unwrap();
    // Held while the batcher queues, so that its background thread takes the whole batch
    // at once.
    let lock = {
        drop(build(dir.path()));
        hold_lock(&dir.path().join("app.log"))
    };
    let batcher = spawn("batcher", dir.path());
    let single = spawn("single", dir.path());
    wait_for_file(&dir.path().join("batcher-queued"));
    wait_for_file(&dir.path().join("single-ready"));
    lock.unlock().unwrap();
    // The batch is under way once the first of its rotations is done.
    wait_for_file(&dir.path().join("app.log.1"));
    touch(&dir.path().join("single-go"));
    for child in [batcher, single] {
        child.finish().assert_exited_ok();
    }

    // Archives are numbered newest first: a line that got its turn early in the batch is
    // in one of the oldest, one that waited for the whole batch in the newest or the live
    // file.
    let archives = (1..)
        .take_while(|index| dir.path().join(format!("app.log.{index}")).exists())
        .count();
    let holder = (1..=archives)
        .find(|index| {
            let archive = std::fs::read(dir.path().join(format!("app.log.{index}"))).unwrap();
            archive.windows(SINGLE_LINE.len()).any(|w| w == SINGLE_LINE)
        })
        .unwrap_or(0);
    assert!(
        holder > archives * 3 / 4,
        "the single line is in app.log.{holder} of {archives} archives (0: the live file): \
         it waited for much of the batch instead of getting a turn"
    );
}

// ---------------------------------------------------------------------------------------
// Waiters killed while they waited.

/// The count of threads waiting for the lock: word 14 of the lock file's shared page (a
/// native-endian `u64` at byte 112). An internal layout detail (`src/lock/page.rs`,
/// `WAITERS`), read here because nothing else shows the count without timing writes.
fn waiters_in_page(lock: &Path) -> u64 {
    const WAITERS_WORD: u64 = 14;
    let mut word = [0; 8];
    let file = File::open(lock).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::FileExt::read_exact_at(&file, &mut word, WAITERS_WORD * 8).unwrap();
    #[cfg(windows)]
    {
        let read = std::os::windows::fs::FileExt::seek_read(&file, &mut word, WAITERS_WORD * 8);
        assert_eq!(read.unwrap(), word.len());
    }
    u64::from_ne_bytes(word)
}

/// `fmt_line`-style lines of one writer, numbered from 0, for the batch.
fn batch_line(seq: u64) -> String {
    let writer = common::workload::WriterId {
        process: 0,
        thread: 0,
    };
    common::workload::fmt_line(writer, seq)
}

/// Three writers are killed (`SIGKILL`) while they wait for the lock, which leaves the
/// page counting three waiters that will never come. A non-blocking batch that crosses
/// many rotation points (about 175) then stands back for them, finds that nobody took 50
/// turns in a row, and forgets the count: it is 0 afterwards. Before the fix it stayed at 3 for the life
/// of the lock file, and every long write stood back 200 µs per rotation for nobody.
#[test]
fn a_turn_nobody_takes_forgets_the_waiters_that_killed_processes_left() {
    const KILLED_WAITERS: u64 = 3;
    const BATCH_LINES: u64 = 6_000;
    let dir = tempfile::tempdir().unwrap();
    let lock_path = dir.path().join("app.log.lock");
    // Held by the test, so that each writer process waits for it.
    let lock = {
        drop(build(dir.path()));
        hold_lock(&dir.path().join("app.log"))
    };
    assert_eq!(waiters_in_page(&lock_path), 0, "a fresh lock file");
    leave_killed_waiters(dir.path(), KILLED_WAITERS);
    // The batch: queued while the lock is still held, so that it goes out in one or two
    // big batches once it is let go.
    let log = build(dir.path());
    let (mut writer, guard) = log
        .non_blocking_builder()
        .max_queued_bytes(2 * BATCH_BYTES)
        .max_batch_bytes(2 * BATCH_BYTES)
        .finish();
    let expected: String = (0..BATCH_LINES).map(batch_line).collect();
    assert!(expected.len() < BATCH_BYTES);
    for seq in 0..BATCH_LINES {
        writer.write_all(batch_line(seq).as_bytes()).unwrap();
    }
    lock.unlock().unwrap();
    drop(guard);

    let stats = log.stats();
    assert_eq!(
        (
            stats.events_written,
            stats.events_dropped,
            stats.write_errors
        ),
        (BATCH_LINES, 0, 0)
    );
    assert_eq!(
        waiters_in_page(&lock_path),
        0,
        "the count the killed waiters left is forgotten once turns go untaken"
    );
    // Every line arrived, in order, across the archives (oldest first).
    let archives = stats.rotations as usize;
    assert!(archives > 10, "the batch crossed many rotation points");
    assert_holds_exactly_in_order(dir.path(), archives, &expected);
}

/// Starts `killed` writer processes one after the other; each waits for the lock the
/// test holds, is counted in the page, and is killed (`SIGKILL`) while it waits.
fn leave_killed_waiters(dir: &Path, killed: u64) {
    let lock_path = dir.join("app.log.lock");
    for killed in 1..=killed {
        let entry = common::entry!(killed_waiter_entry);
        let mut waiter = start_entry_env(&entry, dir, "waiter", WAITER_ENV, dir);
        let deadline = Instant::now() + DEADLINE;
        while waiters_in_page(&lock_path) < killed {
            if let Some(status) = waiter.exited() {
                panic!("the waiter exited ({status}) instead of waiting for the lock");
            }
            assert!(Instant::now() < deadline, "the waiter never waited");
            std::thread::sleep(Duration::from_micros(200));
        }
        waiter.kill();
    }
    assert_eq!(
        waiters_in_page(&lock_path),
        killed,
        "each killed waiter left itself counted"
    );
}

/// The archives `app.log.<archives>` (oldest) to `app.log.1`, then the live file, hold
/// exactly `expected`, in order; there is no older archive.
fn assert_holds_exactly_in_order(dir: &Path, archives: usize, expected: &str) {
    let mut all = String::new();
    for index in (1..=archives).rev() {
        all.push_str(&std::fs::read_to_string(dir.join(format!("app.log.{index}"))).unwrap());
    }
    all.push_str(&std::fs::read_to_string(dir.join("app.log")).unwrap());
    assert!(
        all == expected,
        "the archives and the live file hold exactly the batch, in order"
    );
    assert!(!dir.join(format!("app.log.{}", archives + 1)).exists());
}
