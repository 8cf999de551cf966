//! [`PanicSafe`]: an event formatter that never leaves half an event behind when a
//! `Debug` or `Display` impl panics.
//!
//! `tracing_subscriber::fmt::Layer` formats each event into a per-thread buffer and does
//! not clear that buffer when formatting unwinds, so the half-formatted event is glued to
//! the front of the thread's next event and reaches the file as one torn line. Formatting
//! into a buffer of our own, and handing it over only once it is complete, keeps the
//! layer's buffer clean.

use std::cell::RefCell;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Wraps an event formatter so that an event whose formatting panics is not written at
/// all, instead of being glued to the front of the thread's next event.
///
/// [`SharedFile::layer`](crate::SharedFile::layer) and
/// [`NonBlocking::layer`](crate::NonBlocking::layer) use it already. Wrap your own
/// formatter in it when you build a layer by hand, with `map_event_format`:
///
/// ```
/// use tracing_shared_file::{PanicSafe, SharedFile};
/// use tracing_subscriber::prelude::*;
///
/// let dir = tempfile::tempdir()?;
/// let log = SharedFile::builder(dir.path().join("app.log")).build()?;
/// let layer = tracing_subscriber::fmt::layer()
///     .json()
///     .with_writer(log.clone())
///     .map_event_format(PanicSafe::new);
/// tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
///     tracing::info!(user = "ada", "logged in");
/// });
/// assert!(std::fs::read_to_string(log.path())?.contains(r#""user":"ada""#));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// The panic itself still propagates to the code that logged. The event is formatted
/// without ANSI colours, which a file never wants.
#[derive(Debug, Clone, Copy, Default)]
pub struct PanicSafe<E> {
    inner: E,
}

impl<E> PanicSafe<E> {
    /// Wraps `inner`.
    ///
    /// # Examples
    ///
    /// ```
    /// use tracing_shared_file::PanicSafe;
    ///
    /// let format = PanicSafe::new(tracing_subscriber::fmt::format().compact());
    /// ```
    pub fn new(inner: E) -> Self {
        PanicSafe { inner }
    }

    /// The wrapped formatter.
    ///
    /// # Examples
    ///
    /// ```
    /// use tracing_shared_file::PanicSafe;
    ///
    /// let format = PanicSafe::new(tracing_subscriber::fmt::format());
    /// let _inner = format.into_inner();
    /// ```
    pub fn into_inner(self) -> E {
        self.inner
    }
}

thread_local! {
    static BUFFER: RefCell<String> = const { RefCell::new(String::new()) };
}

impl<S, N, E> FormatEvent<S, N> for PanicSafe<E>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    E: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut format = |buffer: &mut String| {
            buffer.clear();
            let formatted = catch_unwind(AssertUnwindSafe(|| {
                self.inner.format_event(ctx, Writer::new(buffer), event)
            }));
            match formatted {
                Ok(result) => result.and_then(|()| writer.write_str(buffer)),
                // Nothing reached the layer's buffer: let the panic go on.
                Err(panic) => resume_unwind(panic),
            }
        };
        // A `Debug` impl that logs re-enters here while the buffer is borrowed.
        BUFFER.with(|cell| match cell.try_borrow_mut() {
            Ok(mut buffer) => format(&mut buffer),
            Err(_) => format(&mut String::new()),
        })
    }
}
