//! Reporting errors from the write path without flooding stderr.

use std::io::{self, Write};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// At most one report per this interval; the ones in between are counted and summarised.
const REPORT_INTERVAL: Duration = Duration::from_secs(10);

/// Prints write-path errors on stderr, the first at once and then at most one per
/// [`REPORT_INTERVAL`], saying how many were suppressed in between.
#[derive(Debug, Default)]
pub(crate) struct ErrorReporter {
    state: Mutex<ReportState>,
}

#[derive(Debug, Default)]
struct ReportState {
    last_report: Option<Instant>,
    suppressed: u64,
}

impl ErrorReporter {
    pub(crate) fn report(&self, what: &str, path: &Path, error: &io::Error) {
        // A poisoned or contended reporter must never block or fail the write path.
        let Ok(mut state) = self.state.try_lock() else {
            return;
        };
        let now = Instant::now();
        if let Some(last) = state.last_report
            && now.duration_since(last) < REPORT_INTERVAL
        {
            state.suppressed += 1;
            return;
        }
        let suppressed = std::mem::take(&mut state.suppressed);
        state.last_report = Some(now);
        drop(state);
        let mut stderr = io::stderr().lock();
        let _ = write!(
            stderr,
            "tracing-shared-file: {what} `{}`: {error}",
            path.display()
        );
        if suppressed > 0 {
            let _ = write!(stderr, " ({suppressed} similar errors suppressed)");
        }
        let _ = writeln!(stderr);
    }
}
