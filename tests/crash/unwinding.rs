//! Events written while a thread unwinds from a panic.
//!
//! An event begun while the thread was already unwinding (from a `Drop` impl that logs a
//! rollback, say) is written normally, in both modes and through `log.layer()`. Only an
//! event whose own writing a panic cut short is dropped, and that loss is counted in
//! `stats().events_dropped` and reported (to the `on_error` hook, or once on stderr).

use super::quiet_panics::silence_panics;
use crate::common;

use std::fmt;
use std::io::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::children::start_entry;
use tracing_shared_file::SharedFile;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::prelude::*;

const CHILD_ENV: &str = "TSF_UNWINDING_CHILD";
/// The prefix of every line the library prints on stderr.
/// How many panics each test unwinds through.
const PANICS: usize = 10;

struct PanickingDebug;

impl fmt::Debug for PanickingDebug {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        panic!("a Debug impl that panics");
    }
}

/// The panics these tests cause on purpose.
const EXPECTED_PANICS: [&str; 2] = ["a Debug impl that panics", "the transaction failed"];

/// Logs a rollback when dropped, through whatever `log` does with the message; dropped
/// during unwinding in these tests.
struct RollbackOnDrop<F: FnMut(usize)> {
    attempt: usize,
    log: F,
}

impl<F: FnMut(usize)> Drop for RollbackOnDrop<F> {
    fn drop(&mut self) {
        assert!(std::thread::panicking(), "meant to run during unwinding");
        (self.log)(self.attempt);
    }
}

/// Panics `PANICS` times, each time unwinding through a `RollbackOnDrop` that calls
/// `log(attempt)`.
fn panic_through_rollbacks(mut log: impl FnMut(usize)) {
    for attempt in 0..PANICS {
        let unwound = catch_unwind(AssertUnwindSafe(|| {
            let _rollback = RollbackOnDrop {
                attempt,
                log: &mut log,
            };
            panic!("the transaction failed");
        }));
        assert!(unwound.is_err());
    }
}

fn rolled_back_lines() -> String {
    (0..PANICS).map(|i| format!("rolled back {i}\n")).collect()
}

fn read(log: &SharedFile) -> String {
    std::fs::read_to_string(log.path()).unwrap()
}

fn new_log(dir: &Path) -> SharedFile {
    SharedFile::builder(dir.join("app.log")).build().unwrap()
}

#[test]
fn events_written_from_drop_during_unwinding_are_written_in_sync_mode() {
    silence_panics(&EXPECTED_PANICS);
    let dir = tempfile::tempdir().unwrap();
    let log = new_log(dir.path());

    // `writeln!` with an argument writes in pieces, so the writer buffers the event and
    // sends it when dropped, which is during the unwinding.
    panic_through_rollbacks(|i| writeln!(log.make_writer(), "rolled back {i}").unwrap());

    assert_eq!(read(&log), rolled_back_lines());
    let stats = log.stats();
    assert_eq!(
        (
            stats.events_written,
            stats.events_dropped,
            stats.write_errors
        ),
        (PANICS as u64, 0, 0),
        "(events_written, events_dropped, write_errors)"
    );
}

#[test]
fn events_written_from_drop_during_unwinding_are_written_in_non_blocking_mode() {
    silence_panics(&EXPECTED_PANICS);
    let dir = tempfile::tempdir().unwrap();
    let log = new_log(dir.path());
    let (writer, guard) = log.non_blocking();

    panic_through_rollbacks(|i| writeln!(writer.make_writer(), "rolled back {i}").unwrap());
    drop(guard);

    assert_eq!(read(&log), rolled_back_lines());
    let stats = log.stats();
    assert_eq!(
        (
            stats.events_written,
            stats.events_dropped,
            stats.write_errors
        ),
        (PANICS as u64, 0, 0),
        "(events_written, events_dropped, write_errors)"
    );
}

/// Whether `line` is an RFC 3339 UTC timestamp (`2026-11-27T16:23:00.123456789Z`, the
/// fraction optional) followed by `rest`.
fn is_stamped(line: &str, rest: &str) -> bool {
    let Some(stamp) = line.strip_suffix(rest) else {
        return false;
    };
    let Some(stamp) = stamp.strip_suffix('Z') else {
        return false;
    };
    let (whole, fraction) = stamp.split_once('.').unwrap_or((stamp, "1"));
    let shape_ok = whole.len() == "2026-11-27T16:23:00".len()
        && whole.char_indices().all(|(i, c)| match i {
            4 | 7 => c == '-',
            10 => c == 'T',
            13 | 16 => c == ':',
            _ => c.is_ascii_digit(),
        });
    shape_ok && (1..=9).contains(&fraction.len()) && fraction.bytes().all(|b| b.is_ascii_digit())
}

#[test]
fn tracing_events_from_drop_during_unwinding_are_written_through_the_layer() {
    silence_panics(&EXPECTED_PANICS);
    let dir = tempfile::tempdir().unwrap();
    let log = new_log(dir.path());
    let subscriber = tracing_subscriber::registry().with(log.layer());

    tracing::subscriber::with_default(subscriber, || {
        panic_through_rollbacks(|i| tracing::info!(target: "app", "rolled back {i}"));
    });

    let text = read(&log);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), PANICS, "{text}");
    for (i, line) in lines.iter().enumerate() {
        assert!(
            is_stamped(
                line,
                &format!("  INFO pid={} app: rolled back {i}", std::process::id())
            ),
            "line {i}: {line:?}"
        );
    }
    assert_eq!(log.stats().events_written, PANICS as u64);
}

/// Writes half an event, then panics in the middle of it, through `make_writer`.
fn write_an_event_cut_short_by_its_own_panic<'a>(make_writer: &'a impl MakeWriter<'a>) {
    let panicked = catch_unwind(AssertUnwindSafe(|| {
        let mut writer = make_writer.make_writer();
        write!(writer, "half an event, then ").unwrap();
        write!(writer, "{:?}", PanickingDebug).unwrap();
        writeln!(writer, " and the end of the line").unwrap();
    }));
    assert!(panicked.is_err());
}

/// What the `on_error` hook was called with: `(event_dropped, error)` per call.
type HookCalls = Arc<Mutex<Vec<(bool, String)>>>;

fn log_with_hook(dir: &Path) -> (SharedFile, HookCalls) {
    let calls = HookCalls::default();
    let recorded = Arc::clone(&calls);
    let log = SharedFile::builder(dir.join("app.log"))
        .on_error(move |failure| {
            recorded
                .lock()
                .unwrap()
                .push((failure.event_dropped(), failure.error().to_string()));
        })
        .build()
        .unwrap();
    (log, calls)
}

#[test]
fn an_event_cut_short_by_its_own_panic_is_dropped_counted_and_reported_in_sync_mode() {
    silence_panics(&EXPECTED_PANICS);
    let dir = tempfile::tempdir().unwrap();
    let (log, hook_calls) = log_with_hook(dir.path());

    write_an_event_cut_short_by_its_own_panic(&log);
    (&log).write_all(b"the next event\n").unwrap();

    assert_only_the_cut_short_event_dropped(&log, &hook_calls);
}

#[test]
fn an_event_cut_short_by_its_own_panic_is_dropped_counted_and_reported_in_non_blocking_mode() {
    silence_panics(&EXPECTED_PANICS);
    let dir = tempfile::tempdir().unwrap();
    let (log, hook_calls) = log_with_hook(dir.path());
    let (writer, guard) = log.non_blocking();

    write_an_event_cut_short_by_its_own_panic(&writer);
    writeln!(writer.make_writer(), "the next event").unwrap();
    drop(guard);

    assert_only_the_cut_short_event_dropped(&log, &hook_calls);
}

/// The next event is all the file holds; the one cut short is counted as dropped and
/// reported once to the hook, as dropped.
#[track_caller]
fn assert_only_the_cut_short_event_dropped(log: &SharedFile, hook_calls: &HookCalls) {
    assert_eq!(read(log), "the next event\n");
    let stats = log.stats();
    assert_eq!(
        (
            stats.events_written,
            stats.events_dropped,
            stats.write_errors
        ),
        (1, 1, 0),
        "(events_written, events_dropped, write_errors)"
    );
    let calls = hook_calls.lock().unwrap();
    assert_eq!(calls.len(), 1, "one report of the dropped event: {calls:?}");
    assert!(calls[0].0, "the report says the event was dropped");
}

/// Child side: an event cut short by its own panic, without a hook, so that the report
/// goes to stderr; prints the stats on stdout.
#[test]
fn cut_short_entry() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    silence_panics(&EXPECTED_PANICS);
    let log = new_log(Path::new(&dir));
    write_an_event_cut_short_by_its_own_panic(&log);
    (&log).write_all(b"the next event\n").unwrap();
    let stats = log.stats();
    println!(
        "\nSTATS events_written={} events_dropped={} write_errors={}",
        stats.events_written, stats.events_dropped, stats.write_errors
    );
}

#[test]
fn an_event_cut_short_by_its_own_panic_is_reported_once_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let entry = common::entry!(cut_short_entry);
    let finished = start_entry(&entry, out.path(), "child", |command| {
        command.env(CHILD_ENV, dir.path());
    })
    .with_deadline(Duration::from_secs(30))
    .finish();
    finished.assert_exited_ok();

    assert_eq!(
        std::fs::read_to_string(dir.path().join("app.log")).unwrap(),
        "the next event\n"
    );
    assert_eq!(
        finished.line("STATS"),
        "events_written=1 events_dropped=1 write_errors=0"
    );
    assert_eq!(
        finished.reports().len(),
        1,
        "one report of the dropped event; stderr:\n{}",
        finished.stderr
    );
}
