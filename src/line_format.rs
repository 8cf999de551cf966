//! [`LineFormat`]: the lines of the ready-made layers.

use std::fmt;
use std::time::SystemTime;

use time::OffsetDateTime;
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{self, Format, Full, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The lines of [`SharedFile::layer`](crate::SharedFile::layer) and
/// [`NonBlocking::layer`](crate::NonBlocking::layer):
///
/// ```text
/// 2026-11-27T14:44:24.556514Z  INFO pid=4242 app::server: listening addr=0.0.0.0:8080
/// ```
///
/// The timestamp is RFC 3339 in UTC with exactly six fraction digits, so that timestamps
/// line up and sort as strings. The process id follows the level, since many processes
/// write one file; [`LineFormat::with_pid`] leaves it out. The rest is the `fmt` default:
/// spans, target, message and fields. No ANSI colours.
///
/// # Examples
///
/// ```
/// use tracing_shared_file::{LineFormat, SharedFile};
/// use tracing_subscriber::prelude::*;
///
/// let dir = tempfile::tempdir()?;
/// let log = SharedFile::builder(dir.path().join("app.log")).build()?;
/// let layer = log.layer_with(LineFormat::new().with_pid(false));
/// tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
///     tracing::info!(target: "app", "no pid");
/// });
/// let line = std::fs::read_to_string(log.path())?;
/// assert!(line.ends_with("Z  INFO app: no pid\n"), "{line}");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct LineFormat {
    pid: bool,
    rest: Format<Full, ()>,
}

impl Default for LineFormat {
    fn default() -> Self {
        LineFormat {
            pid: true,
            rest: format::format()
                .without_time()
                .with_level(false)
                .with_ansi(false),
        }
    }
}

impl LineFormat {
    /// The format of the ready-made layers, with the process id.
    ///
    /// # Examples
    ///
    /// ```
    /// let format = tracing_shared_file::LineFormat::new();
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether lines show the process id (`pid=4242` after the level). Default: `true`.
    ///
    /// # Examples
    ///
    /// ```
    /// let format = tracing_shared_file::LineFormat::new().with_pid(false);
    /// ```
    #[must_use]
    pub fn with_pid(mut self, pid: bool) -> Self {
        self.pid = pid;
        self
    }

    /// Whether lines show the event's target (`app::server:`). Default: `true`.
    ///
    /// # Examples
    ///
    /// ```
    /// let format = tracing_shared_file::LineFormat::new().with_target(false);
    /// ```
    #[must_use]
    pub fn with_target(mut self, target: bool) -> Self {
        self.rest = self.rest.with_target(target);
        self
    }
}

/// `2026-11-27T14:44:24.556514Z`: always 27 characters.
fn write_timestamp(writer: &mut Writer<'_>, at: SystemTime) -> fmt::Result {
    let at = OffsetDateTime::from(at);
    write!(
        writer,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.microsecond()
    )
}

impl<S, N> FormatEvent<S, N> for LineFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        write_timestamp(&mut writer, SystemTime::now())?;
        write!(writer, " {:>5} ", event.metadata().level().as_str())?;
        if self.pid {
            write!(writer, "pid={} ", crate::platform::pid())?;
        }
        self.rest.format_event(ctx, writer, event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_have_a_fixed_width() {
        let mut text = String::new();
        let at =
            SystemTime::UNIX_EPOCH + std::time::Duration::from_nanos(1_764_254_664_500_000_000);
        write_timestamp(&mut Writer::new(&mut text), at).unwrap();
        assert_eq!(text, "2025-11-27T14:44:24.500000Z");
        text.clear();
        write_timestamp(&mut Writer::new(&mut text), SystemTime::UNIX_EPOCH).unwrap();
        assert_eq!(text, "1970-01-01T00:00:00.000000Z");
    }
}
