//! The ready-made `fmt` layers that write to a [`SharedFile`] or a [`NonBlocking`] writer.

use time::format_description::well_known::Rfc3339;
use tracing::Subscriber;
use tracing_subscriber::fmt::{
    self, MakeWriter,
    format::{DefaultFields, Format, Full},
    time::UtcTime,
};
use tracing_subscriber::registry::LookupSpan;

use crate::{NonBlocking, PanicSafe, SharedFile};

/// The event format of the ready-made layers: the `fmt` default with RFC 3339 UTC
/// timestamps, made [`PanicSafe`].
pub type SharedFileFormat = PanicSafe<Format<Full, UtcTime<Rfc3339>>>;

/// The type of [`SharedFile::layer`]: a `fmt::Layer` writing to a [`SharedFile`].
pub type SharedFileLayer<S> = fmt::Layer<S, DefaultFields, SharedFileFormat, SharedFile>;

/// The type of [`NonBlocking::layer`]: a `fmt::Layer` writing to a [`NonBlocking`] writer.
pub type NonBlockingLayer<S> = fmt::Layer<S, DefaultFields, SharedFileFormat, NonBlocking>;

fn ready_made<S, W>(writer: W) -> fmt::Layer<S, DefaultFields, SharedFileFormat, W>
where
    S: Subscriber + for<'span> LookupSpan<'span>,
    W: for<'w> MakeWriter<'w> + 'static,
{
    fmt::layer()
        .with_ansi(false)
        .with_timer(UtcTime::rfc_3339())
        .with_writer(writer)
        .map_event_format(PanicSafe::new)
}

impl SharedFile {
    /// A `fmt` layer that writes to this file: no ANSI colours, RFC 3339 UTC timestamps,
    /// and an event whose formatting panics is dropped whole (see [`PanicSafe`]).
    ///
    /// To change the format, build the layer yourself and keep it panic-safe with
    /// `map_event_format(PanicSafe::new)`, as [`PanicSafe`] shows.
    ///
    /// # Examples
    ///
    /// ```
    /// use tracing_shared_file::SharedFile;
    /// use tracing_subscriber::prelude::*;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = SharedFile::builder(dir.path().join("app.log")).build()?;
    ///
    /// let subscriber = tracing_subscriber::registry().with(log.layer());
    /// tracing::subscriber::with_default(subscriber, || tracing::warn!(target: "app", "disk almost full"));
    ///
    /// let text = std::fs::read_to_string(log.path())?;
    /// assert!(text.contains(" WARN app: disk almost full"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn layer<S>(&self) -> SharedFileLayer<S>
    where
        S: Subscriber + for<'span> LookupSpan<'span>,
    {
        ready_made(self.clone())
    }
}

impl NonBlocking {
    /// The same layer as [`SharedFile::layer`], writing through this non-blocking writer,
    /// so the two modes write identical lines.
    ///
    /// # Examples
    ///
    /// ```
    /// use tracing_shared_file::SharedFile;
    /// use tracing_subscriber::prelude::*;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = SharedFile::builder(dir.path().join("app.log")).build()?;
    /// let (writer, guard) = log.non_blocking();
    ///
    /// let subscriber = tracing_subscriber::registry().with(writer.layer());
    /// tracing::subscriber::with_default(subscriber, || tracing::info!(target: "app", "queued"));
    /// drop(guard);
    /// assert!(std::fs::read_to_string(log.path())?.contains(" INFO app: queued"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn layer<S>(&self) -> NonBlockingLayer<S>
    where
        S: Subscriber + for<'span> LookupSpan<'span>,
    {
        ready_made(self.clone())
    }
}
