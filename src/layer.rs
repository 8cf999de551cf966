//! The ready-made `fmt` layer that writes to a [`SharedFile`].

use time::format_description::well_known::Rfc3339;
use tracing::Subscriber;
use tracing_subscriber::fmt::{
    self,
    format::{DefaultFields, Format, Full},
    time::UtcTime,
};
use tracing_subscriber::registry::LookupSpan;

use crate::SharedFile;

/// The type of [`SharedFile::layer`]: a plain `fmt::Layer` writing to a [`SharedFile`],
/// with RFC 3339 UTC timestamps and no ANSI colours.
pub type SharedFileLayer<S> =
    fmt::Layer<S, DefaultFields, Format<Full, UtcTime<Rfc3339>>, SharedFile>;

impl SharedFile {
    /// A `fmt` layer that writes to this file: no ANSI colours, RFC 3339 UTC timestamps.
    ///
    /// It is an ordinary [`fmt::Layer`], so `.json()`, `.with_target(false)` and the rest
    /// can be chained on it.
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
    /// let subscriber = tracing_subscriber::registry().with(log.layer().with_target(false));
    /// tracing::subscriber::with_default(subscriber, || tracing::warn!("disk almost full"));
    ///
    /// let text = std::fs::read_to_string(log.path())?;
    /// assert!(text.contains(" WARN disk almost full"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn layer<S>(&self) -> SharedFileLayer<S>
    where
        S: Subscriber + for<'span> LookupSpan<'span>,
    {
        fmt::layer()
            .with_ansi(false)
            .with_timer(UtcTime::rfc_3339())
            .with_writer(self.clone())
    }
}
