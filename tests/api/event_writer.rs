//! How a hand-written writer's `write` calls become events (`EventWriter`, from
//! `make_writer`): a `write` that ends a line while nothing is buffered goes out at once,
//! as one event, so an event written line by line becomes one event per line; pieces that
//! do not end a line are buffered, with everything written after them, until the writer
//! is flushed or dropped, and then go out as one event.

use std::fs;
use std::io::Write;

use tracing_shared_file::SharedFile;
use tracing_subscriber::fmt::MakeWriter;

fn content(log: &SharedFile) -> String {
    fs::read_to_string(log.path()).unwrap_or_default()
}

#[test]
fn a_write_that_ends_a_line_with_nothing_buffered_is_one_event_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let log = SharedFile::builder(dir.path().join("app.log"))
        .build()
        .unwrap();
    let mut writer = log.make_writer();
    writer.write_all(b"first line\n").unwrap();
    assert_eq!(log.stats().events_written, 1);
    assert_eq!(content(&log), "first line\n");
    writer.write_all(b"second line\n").unwrap();
    assert_eq!(log.stats().events_written, 2);
    assert_eq!(content(&log), "first line\nsecond line\n");
    drop(writer);
    assert_eq!(log.stats().events_written, 2);
}

#[test]
fn pieces_that_do_not_end_a_line_wait_with_what_follows_until_flush_or_drop() {
    let dir = tempfile::tempdir().unwrap();
    let log = SharedFile::builder(dir.path().join("app.log"))
        .build()
        .unwrap();
    let mut writer = log.make_writer();
    writer.write_all(b"one event, ").unwrap();
    writer.write_all(b"in pieces\n").unwrap();
    writer.write_all(b"and a second line\n").unwrap();
    assert_eq!(
        (log.stats().events_written, content(&log)),
        (0, String::new())
    );
    writer.flush().unwrap();
    assert_eq!(log.stats().events_written, 1);
    assert_eq!(content(&log), "one event, in pieces\nand a second line\n");

    writer.write_all(b"then ").unwrap();
    writer.write_all(b"another\n").unwrap();
    assert_eq!(log.stats().events_written, 1);
    drop(writer);
    assert_eq!(log.stats().events_written, 2);
    assert_eq!(
        content(&log),
        "one event, in pieces\nand a second line\nthen another\n"
    );
}
