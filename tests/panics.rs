//! A panic while an event is being formatted or written never leaves a lock held or a
//! partial line behind.

use std::fmt;
use std::io::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};

use tracing_shared_file::SharedFile;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::prelude::*;

struct PanickingDebug;

impl fmt::Debug for PanickingDebug {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        panic!("a Debug impl that panics");
    }
}

fn silence_panic_output() {
    std::panic::set_hook(Box::new(|_| {}));
}

#[test]
fn a_panicking_debug_impl_inside_an_event_leaves_the_file_usable() {
    silence_panic_output();
    let dir = tempfile::tempdir().unwrap();
    let log = SharedFile::builder(dir.path().join("app.log"))
        .build()
        .unwrap();
    let subscriber = tracing_subscriber::registry().with(log.layer());
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!("before");
        let panicked = catch_unwind(|| tracing::info!(field = ?PanickingDebug, "boom"));
        assert!(panicked.is_err());
        tracing::info!("after");
    });
    // Another handle on the file can still take the lock: the panic left it free.
    let other = SharedFile::builder(dir.path().join("app.log"))
        .build()
        .unwrap();
    (&other).write_all(b"from another handle\n").unwrap();

    let text = std::fs::read_to_string(dir.path().join("app.log")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].ends_with("before"));
    assert!(lines[1].ends_with("after"));
    assert_eq!(lines[2], "from another handle");
}

#[test]
fn an_event_cut_short_by_a_panic_is_not_written() {
    silence_panic_output();
    let dir = tempfile::tempdir().unwrap();
    let log = SharedFile::builder(dir.path().join("app.log"))
        .build()
        .unwrap();
    let panicked = catch_unwind(AssertUnwindSafe(|| {
        let mut writer = log.make_writer();
        write!(writer, "half an event, then ").unwrap();
        write!(writer, "{:?}", PanickingDebug).unwrap();
    }));
    assert!(panicked.is_err());
    (&log).write_all(b"the next event\n").unwrap();

    let text = std::fs::read_to_string(dir.path().join("app.log")).unwrap();
    assert_eq!(text, "the next event\n");
    assert_eq!(log.stats().events_written, 1);
}
