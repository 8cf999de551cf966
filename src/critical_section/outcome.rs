//! What happened under the lock that must be reported after it is released, so that a
//! slow or panicking hook never runs inside the critical section.

use std::io;

use super::Inner;
use crate::report::{Difference, IfFailed, IoFailure};

/// Collected during one write, under the locks; reported by [`Inner::report`] once both
/// are released.
#[derive(Default)]
pub(super) struct Outcome {
    pub(super) events_written: u64,
    pub(super) bytes_written: u64,
    pub(super) rotation_errors: u64,
    pub(super) last_rotation_error: Option<io::Error>,
    /// The rotation was done, but old archives could not be deleted.
    pub(super) archives_error: Option<io::Error>,
    pub(super) lock_file_replaced: bool,
    pub(super) repaired_partial_write: bool,
    /// The pid in the options record, and how this process's options differ from it.
    pub(super) options_disagree: Option<(u64, Vec<Difference>)>,
}

impl Inner {
    /// Counts and reports what `outcome` collected. Never called under the locks.
    pub(super) fn report(&self, outcome: &Outcome) {
        if outcome.rotation_errors > 0 {
            self.counters.rotation_failed(outcome.rotation_errors);
        }
        if let Some(error) = &outcome.last_rotation_error {
            self.report_failure(&IoFailure::rotation(&self.path, error));
        }
        if let Some(error) = &outcome.archives_error {
            self.report_failure(&IoFailure::archives(&self.path, error));
        }
        if outcome.lock_file_replaced {
            self.reporter.notice(
                &self.path,
                format_args!(
                    "lock file `{}` was deleted or replaced; now locking the new one",
                    self.lock_path.display()
                ),
            );
        }
        if outcome.repaired_partial_write {
            self.reporter.notice(
                &self.path,
                format_args!(
                    "cut off a partial line that a killed process left in `{}`",
                    self.path.display()
                ),
            );
        }
        if let Some((pid, differences)) = &outcome.options_disagree {
            let message = crate::report::options_disagree(&self.path, *pid, differences);
            self.reporter.options_disagree(&self.path, &message);
        }
    }

    pub(crate) fn failed(&self, error: &io::Error, if_failed: IfFailed) {
        self.report_failure(&IoFailure::write(&self.path, error, if_failed));
    }

    pub(crate) fn report_failure(&self, failure: &IoFailure<'_>) {
        self.reporter.failure(failure);
    }
}
