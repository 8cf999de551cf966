//! [`EventWriter`]: the per-event writer handed to `fmt` layers, which makes sure an event
//! reaches its destination as one unit however it is written.

use std::fmt;
use std::io;
use std::path::Path;

use crate::report::IfFailed;

/// Where an [`EventWriter`] delivers whole events: the file itself, or the queue of the
/// non-blocking writer.
pub(crate) trait EventSink {
    fn write_event(&self, event: &[u8], if_failed: IfFailed) -> io::Result<()>;
    /// Counts and reports an event dropped because a panic cut it short.
    fn cut_short_by_panic(&self);
    fn path(&self) -> &Path;
}

/// The writer that [`SharedFile`](crate::SharedFile) and
/// [`NonBlocking`](crate::NonBlocking) hand to a `fmt` layer for one event.
///
/// A `fmt` layer writes each event with a single `write_all` ending in a newline, which goes
/// straight through as one event, without a copy. More precisely, the unit is the line:
///
/// - a `write` that ends with a newline while nothing is buffered is sent at once, as one
///   event;
/// - pieces that do not end a line are buffered, together with everything written after
///   them, until the writer is flushed or dropped, and then sent as one event.
///
/// So an event written piece by piece stays whole, but one written line by line, each
/// `write` ending in a newline, becomes one event per line: those lines may have other
/// processes' lines, or a rotation, between them.
///
/// An event cut short by a panic (the writer is dropped while its thread unwinds from a
/// panic that began after the writer was made) is dropped, not written as a partial line,
/// and counted in [`Stats::events_dropped`](crate::Stats). A writer made while the thread
/// is already unwinding, in a `Drop` impl say, writes normally. If an explicit `flush`
/// fails, the event stays buffered: a later `flush`, or the drop, tries again.
///
/// # Examples
///
/// ```
/// use std::io::Write;
/// use tracing_shared_file::SharedFile;
/// use tracing_subscriber::fmt::MakeWriter;
///
/// let dir = tempfile::tempdir()?;
/// let log = SharedFile::builder(dir.path().join("app.log")).build()?;
/// {
///     let mut writer = log.make_writer();
///     write!(writer, "one event, ")?;
///     writeln!(writer, "written in pieces")?;
/// } // written here, as one unit
/// assert_eq!(log.stats().events_written, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct EventWriter<'a> {
    sink: &'a dyn EventSink,
    pending: Vec<u8>,
    /// Whether the thread was already unwinding when this writer was made: then a panic
    /// seen at the drop is not one that cut this event short.
    made_while_panicking: bool,
}

impl<'a> EventWriter<'a> {
    pub(crate) fn new(sink: &'a dyn EventSink) -> Self {
        EventWriter {
            sink,
            pending: Vec::new(),
            made_while_panicking: std::thread::panicking(),
        }
    }

    fn send_pending(&mut self, if_failed: IfFailed) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.sink.write_event(&self.pending, if_failed)?;
        self.pending.clear();
        Ok(())
    }
}

impl io::Write for EventWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.pending.is_empty() && buf.ends_with(b"\n") {
            self.sink.write_event(buf, IfFailed::Drop)?;
        } else {
            self.pending.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send_pending(IfFailed::Keep)
    }
}

impl Drop for EventWriter<'_> {
    fn drop(&mut self) {
        // An event cut short by a panic is incomplete: writing it would leave a partial
        // line for the next event to glue onto.
        if std::thread::panicking() && !self.made_while_panicking {
            if !self.pending.is_empty() {
                self.sink.cut_short_by_panic();
            }
            return;
        }
        // Errors were already counted and reported where they happened.
        let _ = self.send_pending(IfFailed::Drop);
    }
}

impl fmt::Debug for EventWriter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventWriter")
            .field("path", &self.sink.path())
            .field("pending_bytes", &self.pending.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::{Cell, RefCell};
    use std::io::Write;

    /// A sink whose next `failures` writes fail.
    #[derive(Default)]
    struct FlakySink {
        failures: Cell<u32>,
        written: RefCell<Vec<Vec<u8>>>,
        modes: RefCell<Vec<IfFailed>>,
    }

    impl EventSink for FlakySink {
        fn write_event(&self, event: &[u8], if_failed: IfFailed) -> io::Result<()> {
            self.modes.borrow_mut().push(if_failed);
            if self.failures.get() > 0 {
                self.failures.set(self.failures.get() - 1);
                return Err(io::Error::other("disk full"));
            }
            self.written.borrow_mut().push(event.to_vec());
            Ok(())
        }

        fn cut_short_by_panic(&self) {}

        fn path(&self) -> &Path {
            Path::new("app.log")
        }
    }

    #[test]
    fn a_failed_flush_keeps_the_event_for_the_next_one() {
        let sink = FlakySink {
            failures: Cell::new(1),
            ..FlakySink::default()
        };
        let mut writer = EventWriter::new(&sink);
        write!(writer, "one event, ").unwrap();
        writeln!(writer, "in pieces").unwrap();
        assert_eq!(
            format!("{writer:?}"),
            r#"EventWriter { path: "app.log", pending_bytes: 21 }"#
        );
        assert!(writer.flush().is_err());
        writer.flush().unwrap();
        drop(writer);
        assert_eq!(*sink.written.borrow(), [b"one event, in pieces\n".to_vec()]);
        // The explicit flush keeps the event; only a drop would lose it.
        assert_eq!(*sink.modes.borrow(), [IfFailed::Keep, IfFailed::Keep]);
    }

    #[test]
    fn a_drop_whose_write_fails_drops_the_event_once() {
        let sink = FlakySink {
            failures: Cell::new(1),
            ..FlakySink::default()
        };
        let mut writer = EventWriter::new(&sink);
        write!(writer, "never flushed").unwrap();
        drop(writer);
        assert!(sink.written.borrow().is_empty());
        assert_eq!(*sink.modes.borrow(), [IfFailed::Drop]);
    }
}
