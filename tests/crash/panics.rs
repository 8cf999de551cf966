//! A panic while an event is being formatted or written never leaves a lock held or a
//! torn line behind.
//!
//! `tracing_subscriber::fmt::Layer` formats into a per-thread buffer that it does not
//! clear when formatting unwinds, so without help the half-formatted event is glued to
//! the front of the thread's next event. `log.layer()`, `writer.layer()` and a hand-built
//! layer wrapped in `PanicSafe` must write every other line exactly; a plain
//! `fmt::layer()` is shown to tear, which is the documented limit.
//!
//! Each layer scenario runs on a thread of its own: the torn buffer is per thread, and
//! must not leak from one scenario into another.

use super::quiet_panics::silence_panics;
use std::fmt;
use std::io::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};

use tracing_shared_file::{PanicSafe, SharedFile};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::prelude::*;

const PANIC_MESSAGE: &str = "a Debug impl that panics";

struct PanickingDebug;

impl fmt::Debug for PanickingDebug {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        panic!("{}", PANIC_MESSAGE);
    }
}

/// Runs `body` on a fresh thread (so with a fresh `fmt` buffer), passing on its panic.
fn on_a_fresh_thread(body: impl FnOnce() + Send) {
    std::thread::scope(|scope| {
        if let Err(panic) = scope.spawn(body).join() {
            std::panic::resume_unwind(panic);
        }
    });
}

/// Logs "before", an event whose formatting panics, and "after", through `subscriber`.
fn before_boom_after(subscriber: impl tracing::Subscriber + Send + Sync + 'static) {
    on_a_fresh_thread(|| {
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(target: "app", "before");
            let panicked =
                catch_unwind(|| tracing::info!(target: "app", field = ?PanickingDebug, "boom"));
            assert!(panicked.is_err());
            tracing::info!(target: "app", "after");
        });
    });
}

/// The length of the RFC 3339 UTC timestamp that starts `line`
/// (`2026-11-27T16:23:00.123456789Z`, the fraction optional), if it starts with one.
fn timestamp_len(line: &str) -> Option<usize> {
    const WHOLE: usize = "2026-11-27T16:23:00".len();
    let whole = line.get(..WHOLE)?;
    let shape_ok = whole.char_indices().all(|(i, c)| match i {
        4 | 7 => c == '-',
        10 => c == 'T',
        13 | 16 => c == ':',
        _ => c.is_ascii_digit(),
    });
    if !shape_ok {
        return None;
    }
    let rest = &line[WHOLE..];
    let fraction = match rest.strip_prefix('.') {
        Some(fraction) => {
            let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
            if !(1..=9).contains(&digits) {
                return None;
            }
            1 + digits
        }
        None => 0,
    };
    (rest[fraction..].starts_with('Z')).then_some(WHOLE + fraction + 1)
}

/// `line` with every timestamp in it replaced by `<TS>`.
fn blank_timestamps(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while !rest.is_empty() {
        match timestamp_len(rest) {
            Some(len) => {
                out.push_str("<TS>");
                rest = &rest[len..];
            }
            None => {
                let next = rest.chars().next().unwrap();
                out.push(next);
                rest = &rest[next.len_utf8()..];
            }
        }
    }
    out
}

/// The file's lines, each with its timestamps blanked.
fn blanked_lines(log: &SharedFile) -> Vec<String> {
    std::fs::read_to_string(log.path())
        .unwrap()
        .lines()
        .map(blank_timestamps)
        .collect()
}

fn new_log() -> (tempfile::TempDir, SharedFile) {
    let dir = tempfile::tempdir().unwrap();
    let log = SharedFile::builder(dir.path().join("app.log"))
        .build()
        .unwrap();
    (dir, log)
}

#[test]
fn the_ready_made_layer_writes_every_other_line_exactly() {
    silence_panics(&[PANIC_MESSAGE]);
    let (dir, log) = new_log();

    before_boom_after(tracing_subscriber::registry().with(log.layer()));
    // Another handle on the file can still take the lock: the panic left it free.
    let other = SharedFile::builder(dir.path().join("app.log"))
        .build()
        .unwrap();
    (&other).write_all(b"from another handle\n").unwrap();

    let pid = std::process::id();
    assert_eq!(
        blanked_lines(&log),
        [
            format!("<TS>  INFO pid={pid} app: before"),
            format!("<TS>  INFO pid={pid} app: after"),
            "from another handle".to_string()
        ]
    );
    assert_eq!(log.stats().events_written, 2);
}

#[test]
fn the_non_blocking_layer_writes_every_other_line_exactly() {
    silence_panics(&[PANIC_MESSAGE]);
    let (_dir, log) = new_log();
    let (writer, guard) = log.non_blocking();

    before_boom_after(tracing_subscriber::registry().with(writer.layer()));
    drop(guard);

    let pid = std::process::id();
    assert_eq!(
        blanked_lines(&log),
        [
            format!("<TS>  INFO pid={pid} app: before"),
            format!("<TS>  INFO pid={pid} app: after")
        ]
    );
    assert_eq!(log.stats().events_written, 2);
}

#[test]
fn a_hand_built_json_layer_made_panic_safe_writes_every_other_line_exactly() {
    silence_panics(&[PANIC_MESSAGE]);
    let (_dir, log) = new_log();
    let layer = tracing_subscriber::fmt::layer()
        .json()
        .with_writer(log.clone())
        .map_event_format(PanicSafe::new);

    before_boom_after(tracing_subscriber::registry().with(layer));

    assert_eq!(
        blanked_lines(&log),
        [
            r#"{"timestamp":"<TS>","level":"INFO","fields":{"message":"before"},"target":"app"}"#,
            r#"{"timestamp":"<TS>","level":"INFO","fields":{"message":"after"},"target":"app"}"#,
        ]
    );
    assert_eq!(log.stats().events_written, 2);
}

/// Documents the limit: without `PanicSafe`, `fmt::Layer` keeps the half-formatted event
/// in its buffer and writes it in front of the thread's next event.
#[test]
fn a_plain_fmt_layer_without_panic_safe_glues_the_half_event_to_the_next() {
    silence_panics(&[PANIC_MESSAGE]);
    let (_dir, log) = new_log();
    let layer = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_writer(log.clone());

    before_boom_after(tracing_subscriber::registry().with(layer));

    assert_eq!(
        blanked_lines(&log),
        [
            "<TS>  INFO app: before",
            "<TS>  INFO app: boom field=<TS>  INFO app: after"
        ]
    );
}

#[test]
fn an_event_cut_short_by_a_panic_is_not_written() {
    silence_panics(&[PANIC_MESSAGE]);
    let dir = tempfile::tempdir().unwrap();
    // The dropped event is reported; that report is expected here.
    let log = SharedFile::builder(dir.path().join("app.log"))
        .on_error(|_| {})
        .build()
        .unwrap();
    let panicked = catch_unwind(AssertUnwindSafe(|| {
        let mut writer = log.make_writer();
        write!(writer, "half an event, then ").unwrap();
        write!(writer, "{:?}", PanickingDebug).unwrap();
    }));
    assert!(panicked.is_err());
    (&log).write_all(b"the next event\n").unwrap();

    assert_eq!(
        std::fs::read_to_string(log.path()).unwrap(),
        "the next event\n"
    );
    let stats = log.stats();
    assert_eq!(
        (stats.events_written, stats.events_dropped),
        (1, 1),
        "(events_written, events_dropped)"
    );
}
