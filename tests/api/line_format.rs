//! The lines of the ready-made layers: a fixed-width UTC timestamp, the level, the process
//! id, the target and the message, the same in synchronous and non-blocking mode.

use tracing_shared_file::{LineFormat, SharedFile};
use tracing_subscriber::prelude::*;

/// `2026-11-27T14:44:24.556514Z`: digits where digits go, always 27 characters.
fn is_fixed_width_timestamp(text: &str) -> bool {
    text.len() == 27
        && text.char_indices().all(|(i, c)| match i {
            4 | 7 => c == '-',
            10 => c == 'T',
            13 | 16 => c == ':',
            19 => c == '.',
            26 => c == 'Z',
            _ => c.is_ascii_digit(),
        })
}

fn log_two_events(subscriber: impl tracing::Subscriber + Send + Sync + 'static) {
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!(target: "app", "first");
        tracing::warn!(target: "app::db", retries = 3, "second");
    });
}

/// The file's lines, each split into its timestamp and the rest.
fn lines(log: &SharedFile) -> Vec<(String, String)> {
    std::fs::read_to_string(log.path())
        .unwrap()
        .lines()
        .map(|line| {
            let (timestamp, rest) = line.split_at(27);
            assert!(is_fixed_width_timestamp(timestamp), "{line}");
            (timestamp.to_string(), rest.to_string())
        })
        .collect()
}

#[test]
fn both_modes_write_identical_lines_with_the_pid() {
    let pid = std::process::id();
    let expected = [
        format!("  INFO pid={pid} app: first"),
        format!("  WARN pid={pid} app::db: second retries=3"),
    ];

    let dir = tempfile::tempdir().unwrap();
    let sync = SharedFile::builder(dir.path().join("sync.log"))
        .build()
        .unwrap();
    log_two_events(tracing_subscriber::registry().with(sync.layer()));
    let sync_rest: Vec<String> = lines(&sync).into_iter().map(|(_, rest)| rest).collect();
    assert_eq!(sync_rest, expected);

    let queued = SharedFile::builder(dir.path().join("queued.log"))
        .build()
        .unwrap();
    let (writer, guard) = queued.non_blocking();
    log_two_events(tracing_subscriber::registry().with(writer.layer()));
    drop(guard);
    let queued_rest: Vec<String> = lines(&queued).into_iter().map(|(_, rest)| rest).collect();
    assert_eq!(queued_rest, expected);
}

#[test]
fn the_pid_and_the_target_can_be_left_out() {
    let dir = tempfile::tempdir().unwrap();
    let log = SharedFile::builder(dir.path().join("app.log"))
        .build()
        .unwrap();
    let format = LineFormat::new().with_pid(false).with_target(false);
    log_two_events(tracing_subscriber::registry().with(log.layer_with(format)));
    let rest: Vec<String> = lines(&log).into_iter().map(|(_, rest)| rest).collect();
    assert_eq!(rest, ["  INFO first", "  WARN second retries=3"]);
}

#[test]
fn timestamps_sort_as_strings() {
    let dir = tempfile::tempdir().unwrap();
    let log = SharedFile::builder(dir.path().join("app.log"))
        .build()
        .unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(log.layer()), || {
        for i in 0..200 {
            tracing::info!(target: "app", "event {i}");
        }
    });
    let timestamps: Vec<String> = lines(&log).into_iter().map(|(ts, _)| ts).collect();
    let mut sorted = timestamps.clone();
    sorted.sort();
    assert_eq!(timestamps, sorted);
}
