//! The ready-made `fmt` layers that write to a [`SharedFile`] or a [`NonBlocking`] writer.

use tracing::Subscriber;
use tracing_subscriber::fmt::{self, MakeWriter, format::DefaultFields};
use tracing_subscriber::registry::LookupSpan;

use crate::{LineFormat, NonBlocking, PanicSafe, SharedFile};

/// The event format of the ready-made layers: [`LineFormat`], made [`PanicSafe`].
pub type SharedFileFormat = PanicSafe<LineFormat>;

/// The type of [`SharedFile::layer`]: a `fmt::Layer` writing to a [`SharedFile`].
pub type SharedFileLayer<S> = fmt::Layer<S, DefaultFields, SharedFileFormat, SharedFile>;

/// The type of [`NonBlocking::layer`]: a `fmt::Layer` writing to a [`NonBlocking`] writer.
pub type NonBlockingLayer<S> = fmt::Layer<S, DefaultFields, SharedFileFormat, NonBlocking>;

fn ready_made<S, W>(
    writer: W,
    format: LineFormat,
) -> fmt::Layer<S, DefaultFields, SharedFileFormat, W>
where
    S: Subscriber + for<'span> LookupSpan<'span>,
    W: for<'w> MakeWriter<'w> + 'static,
{
    fmt::layer()
        .with_ansi(false)
        .event_format(PanicSafe::new(format))
        .with_writer(writer)
}

impl SharedFile {
    /// A `fmt` layer that writes to this file, in [`LineFormat`]: RFC 3339 UTC timestamps
    /// with six fraction digits, the level, the process id, then the `fmt` default; no
    /// ANSI colours. An event whose formatting panics is dropped whole (see [`PanicSafe`]).
    ///
    /// [`SharedFile::layer_with`] takes another [`LineFormat`]. For another format
    /// altogether (JSON, say), build the layer yourself and keep it panic-safe with
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
    /// let pid = std::process::id();
    /// assert!(text.ends_with(&format!("Z  WARN pid={pid} app: disk almost full\n")));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn layer<S>(&self) -> SharedFileLayer<S>
    where
        S: Subscriber + for<'span> LookupSpan<'span>,
    {
        ready_made(self.clone(), LineFormat::new())
    }

    /// [`SharedFile::layer`] with another [`LineFormat`], without the process id, say.
    ///
    /// # Examples
    ///
    /// ```
    /// use tracing_shared_file::{LineFormat, SharedFile};
    /// use tracing_subscriber::prelude::*;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = SharedFile::builder(dir.path().join("app.log")).build()?;
    /// let subscriber =
    ///     tracing_subscriber::registry().with(log.layer_with(LineFormat::new().with_pid(false)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn layer_with<S>(&self, format: LineFormat) -> SharedFileLayer<S>
    where
        S: Subscriber + for<'span> LookupSpan<'span>,
    {
        ready_made(self.clone(), format)
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
    /// assert!(std::fs::read_to_string(log.path())?.contains(" INFO pid="));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn layer<S>(&self) -> NonBlockingLayer<S>
    where
        S: Subscriber + for<'span> LookupSpan<'span>,
    {
        ready_made(self.clone(), LineFormat::new())
    }

    /// [`NonBlocking::layer`] with another [`LineFormat`].
    ///
    /// # Examples
    ///
    /// ```
    /// use tracing_shared_file::{LineFormat, SharedFile};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = SharedFile::builder(dir.path().join("app.log")).build()?;
    /// let (writer, guard) = log.non_blocking();
    /// let layer = writer.layer_with::<tracing_subscriber::Registry>(LineFormat::new().with_pid(false));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn layer_with<S>(&self, format: LineFormat) -> NonBlockingLayer<S>
    where
        S: Subscriber + for<'span> LookupSpan<'span>,
    {
        ready_made(self.clone(), format)
    }
}
