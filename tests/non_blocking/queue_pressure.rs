//! The non-blocking writer's lock-free queue under pressure: many producers, a queue so
//! small that they keep waiting for room and keep waking the background thread, lossy
//! counting, flushes racing with producers, and the background thread going to sleep and
//! being woken again.
//!
//! Nothing here is timed: a hang (a lost wake-up, a producer never given room, a flush
//! that never returns) shows as a step that does not finish within a generous deadline.

use crate::common;
use common::log_files::hold_lock;

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use common::verifier::Verifier;
use common::workload::{Workers, WriteMode, WriterSpec, run_writer};
use tracing_shared_file::SharedFile;

/// How long a step may take before the test calls it hung.
const DEADLINE: Duration = Duration::from_secs(60);

/// A log in `dir` that never rotates, so that every event stays in one file.
fn unrotated_log(dir: &Path) -> SharedFile {
    SharedFile::builder(dir.join("app.log"))
        .max_bytes(1 << 40)
        .build()
        .unwrap()
}

#[test]
fn worker_entry() {
    if let Some(spec) = WriterSpec::from_env() {
        let stats = run_writer(&spec);
        assert_eq!(stats.write_errors, 0, "worker {}", spec.process);
        assert_eq!(stats.events_dropped, 0, "worker {}", spec.process);
        assert_eq!(
            stats.events_written,
            u64::from(spec.threads) * spec.lines_per_thread
        );
    }
}

/// Four processes of four threads each, through queues that hold about two events: the
/// producers wait for room all the time, and the background threads run dry and are
/// woken again and again. Every line arrives, whole, in order, with rotation exact.
#[test]
fn many_threads_in_many_processes_through_a_tiny_queue_lose_nothing() {
    const PROCESSES: u32 = 4;
    const THREADS: u32 = 4;
    const LINES: u64 = 3_000;
    const MAX_BYTES: u64 = 32 * 1024;
    let dir = tempfile::tempdir().unwrap();
    let sync_dir = dir.path().join("sync");
    std::fs::create_dir(&sync_dir).unwrap();
    let log = dir.path().join("logs").join("app.log");
    let specs: Vec<WriterSpec> = (0..PROCESSES)
        .map(|process| WriterSpec {
            max_bytes: MAX_BYTES,
            process,
            threads: THREADS,
            lines_per_thread: LINES,
            mode: WriteMode::NonBlocking,
            queue_bytes: Some(512),
            ..WriterSpec::new(log.clone(), sync_dir.clone())
        })
        .collect();
    Workers::start(
        || common::entry_command(&common::entry!(worker_entry)),
        &specs,
    )
    .wait();

    let verifier = specs.iter().fold(
        Verifier::new(&log, MAX_BYTES, specs[0].max_files),
        |verifier, spec| verifier.expect_process(spec.process, THREADS, LINES),
    );
    let report = verifier.verify();
    report.assert_ok();
    assert_eq!(
        report.lines_verified,
        u64::from(PROCESSES * THREADS) * LINES
    );
}

fn event(thread: usize, seq: usize) -> String {
    format!("thread {thread:02} event {seq:06} ........................................\n")
}

/// Parses a line written by `event`.
fn parse(line: &str) -> Option<(usize, usize)> {
    let rest = line.strip_prefix("thread ")?;
    let (thread, rest) = rest.split_once(" event ")?;
    let (seq, dots) = rest.split_once(' ')?;
    (dots.len() == 40 && dots.bytes().all(|b| b == b'.'))
        .then(|| Some((thread.parse().ok()?, seq.parse().ok()?)))
        .flatten()
}

/// The events in the log, each checked whole, with no event twice.
fn events_in(log: &SharedFile) -> HashSet<(usize, usize)> {
    let text = std::fs::read_to_string(log.path()).unwrap();
    let mut seen = HashSet::new();
    for line in text.lines() {
        let event = parse(line).unwrap_or_else(|| panic!("a torn or foreign line: {line:?}"));
        assert!(seen.insert(event), "{event:?} written twice");
    }
    seen
}

/// Eight threads push through a lossy queue of about sixteen events, first while the
/// lock is held elsewhere (so most events must be dropped), then freely. Every event is
/// either in the file, whole and once, or counted as dropped: exactly.
#[test]
fn a_lossy_tiny_queue_accounts_for_every_event_exactly() {
    const THREADS: usize = 8;
    const PER_THREAD: usize = 4_000;
    let dir = tempfile::tempdir().unwrap();
    let log = unrotated_log(dir.path());
    let (writer, guard) = log
        .non_blocking_builder()
        .max_queued_bytes(2048)
        .max_batch_bytes(512)
        .lossy(true)
        .finish();
    let lock = hold_lock(log.path());
    let run = |range: std::ops::Range<usize>| {
        std::thread::scope(|scope| {
            for thread in 0..THREADS {
                let mut writer = writer.clone();
                let range = range.clone();
                scope.spawn(move || {
                    for seq in range {
                        writer.write_all(event(thread, seq).as_bytes()).unwrap();
                    }
                });
            }
        });
    };
    run(0..PER_THREAD / 2);
    let dropped_while_held = log.stats().events_dropped;
    assert!(
        dropped_while_held > 0,
        "a full lossy queue drops: {:?}",
        log.stats()
    );
    lock.unlock().unwrap();
    run(PER_THREAD / 2..PER_THREAD);
    drop(guard);

    let stats = log.stats();
    let written = events_in(&log);
    assert_eq!(written.len() as u64, stats.events_written, "{stats:?}");
    assert_eq!(
        stats.events_written + stats.events_dropped,
        (THREADS * PER_THREAD) as u64,
        "{stats:?}"
    );
    assert_eq!(stats.write_errors, 0, "{stats:?}");
}

/// Threads write bursts through a tiny lossless queue and each flushes after its burst,
/// while the others keep writing: when its flush returns, every event it wrote before is
/// in the file.
#[test]
fn a_flush_returns_only_once_every_earlier_event_is_in_the_file() {
    const THREADS: usize = 6;
    const BURSTS: usize = 20;
    const BURST: usize = 100;
    let dir = tempfile::tempdir().unwrap();
    let log = unrotated_log(dir.path());
    let (writer, guard) = log
        .non_blocking_builder()
        .max_queued_bytes(1024)
        .max_batch_bytes(256)
        .finish();
    std::thread::scope(|scope| {
        for thread in 0..THREADS {
            let mut writer = writer.clone();
            let log = &log;
            scope.spawn(move || {
                for burst in 0..BURSTS {
                    let seqs = burst * BURST..(burst + 1) * BURST;
                    for seq in seqs.clone() {
                        writer.write_all(event(thread, seq).as_bytes()).unwrap();
                    }
                    writer.flush().unwrap();
                    // Other threads' lines may be mid-write here; this thread's must all
                    // be complete.
                    let text = std::fs::read_to_string(log.path()).unwrap();
                    let mine: HashSet<usize> = text
                        .lines()
                        .filter_map(parse)
                        .filter(|&(t, _)| t == thread)
                        .map(|(_, seq)| seq)
                        .collect();
                    let missing: Vec<usize> =
                        (0..seqs.end).filter(|seq| !mine.contains(seq)).collect();
                    assert!(
                        missing.is_empty(),
                        "thread {thread}: after its flush, {} of its events are not in the \
                         file (first {:?})",
                        missing.len(),
                        &missing[..missing.len().min(5)]
                    );
                }
            });
        }
    });
    // And the guard's flush after the burst, from another thread than the producers'.
    guard.flush();
    assert_eq!(events_in(&log).len(), THREADS * BURSTS * BURST);
    drop(guard);
    assert_eq!(
        log.stats().events_written,
        (THREADS * BURSTS * BURST) as u64
    );
}

/// Waits until `log` holds `events` events; a lost wake-up leaves an event in the queue
/// with the background thread asleep, and this fails after the deadline.
fn wait_until_written(log: &SharedFile, events: u64) {
    let deadline = Instant::now() + DEADLINE;
    while log.stats().events_written < events {
        assert!(
            Instant::now() < deadline,
            "an event stayed queued: {} of {events} written (a lost wake-up?)",
            log.stats().events_written
        );
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// Single events with pauses between them, so that the background thread keeps running
/// dry, lingering and going to sleep, from several threads at once: each event must be
/// written without any flush or further event to push it out.
#[test]
fn an_event_after_the_background_thread_fell_asleep_wakes_it() {
    const THREADS: usize = 4;
    const ROUNDS: usize = 150;
    let dir = tempfile::tempdir().unwrap();
    let log = unrotated_log(dir.path());
    let (writer, guard) = log.non_blocking();
    for round in 0..ROUNDS {
        std::thread::scope(|scope| {
            for thread in 0..THREADS {
                let mut writer = writer.clone();
                scope.spawn(move || {
                    writer.write_all(event(thread, round).as_bytes()).unwrap();
                });
            }
        });
        wait_until_written(&log, ((round + 1) * THREADS) as u64);
        // Long enough, often enough, for the thread to stop lingering and sleep.
        if round % 3 == 0 {
            std::thread::sleep(Duration::from_millis(3));
        }
    }
    drop(guard);
    assert_eq!(events_in(&log).len(), THREADS * ROUNDS);
}

/// An event too large for the queue on its own is written synchronously, in its turn:
/// after the events queued before it, before those queued after it.
#[test]
fn an_event_too_large_for_the_queue_keeps_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let log = unrotated_log(dir.path());
    let (mut writer, guard) = log.non_blocking_builder().max_queued_bytes(256).finish();
    let big = format!("{}\n", "x".repeat(1000));
    let mut expected = String::new();
    for seq in 0..3 {
        expected.push_str(&event(0, seq));
    }
    expected.push_str(&big);
    for seq in 3..6 {
        expected.push_str(&event(0, seq));
    }
    for line in expected.split_inclusive('\n') {
        writer.write_all(line.as_bytes()).unwrap();
    }
    drop(guard);
    assert_eq!(std::fs::read_to_string(log.path()).unwrap(), expected);
    assert_eq!(log.stats().events_written, 7);
}

/// A bound larger than the queue can address is taken as its largest, not refused.
#[test]
fn a_huge_bound_still_queues() {
    let dir = tempfile::tempdir().unwrap();
    let log = unrotated_log(dir.path());
    let (mut writer, guard) = log
        .non_blocking_builder()
        .max_queued_bytes(usize::MAX)
        .finish();
    for seq in 0..100 {
        writer.write_all(event(0, seq).as_bytes()).unwrap();
    }
    guard.flush();
    assert_eq!(events_in(&log).len(), 100);
}

/// An `on_error` hook that logs through the same writer runs on the background thread;
/// when the queue is full it cannot wait for itself to make room, and writes directly.
#[test]
fn an_error_hook_that_logs_into_a_full_queue_does_not_wait_for_itself() {
    use std::sync::{Arc, Mutex, mpsc};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        let slot: Arc<Mutex<Option<tracing_shared_file::NonBlocking>>> = Arc::default();
        let in_hook = Arc::clone(&slot);
        let log = SharedFile::builder(&path)
            .max_bytes(1 << 40)
            .lock_timeout(Duration::from_millis(20))
            .on_error(move |_| {
                // Once: a write that fails in turn calls the hook again.
                let writer = in_hook.lock().unwrap().take();
                if let Some(mut writer) = writer {
                    writer.write_all(event(99, 0).as_bytes()).unwrap();
                }
            })
            .build()
            .unwrap();
        let (mut writer, guard) = log.non_blocking_builder().max_queued_bytes(256).finish();
        *slot.lock().unwrap() = Some(writer.clone());
        let holder = hold_lock(log.path());
        // Keeps the queue full while the background thread's batches time out.
        for seq in 0..40 {
            writer.write_all(event(0, seq).as_bytes()).unwrap();
        }
        drop(holder);
        drop(guard);
        let stats = log.stats();
        done.send(stats).unwrap();
    });
    let stats = finished
        .recv_timeout(DEADLINE)
        .expect("the background thread waited for itself");
    assert!(stats.events_dropped > 0, "{stats:?}");
}
