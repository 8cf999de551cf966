//! What follows a hold that rotated, off the lock: retention's listing of the archives,
//! then a short hold that deletes the oldest (each name checked again), and compression.
//!
//! Invariant: the log directory is never listed while the lock is held. A listing takes
//! as long as the directory is large, and the directory may hold anybody's files.

use std::sync::{Arc, PoisonError};

use super::hold::After;
use super::{Inner, Outcome};
use crate::lock::LockGuard;
use crate::platform::Dir;
use crate::rotation::{self, Listing, LogName, Sweep};

impl Inner {
    /// What follows a hold, off the lock: the listing a rotation asked for (returned,
    /// for the next hold), retention, then compression. A listing that fails counts as
    /// a failed rotation: the rest of the write is appended without rotating.
    pub(super) fn after_hold(
        self: &Arc<Self>,
        after: After,
        rotation_failed: &mut bool,
        outcome: &mut Outcome,
    ) -> Option<Listing> {
        let log = LogName {
            dir: &after.dir,
            name: &self.name,
            path: &self.path,
        };
        let listed = if after.list_first {
            match Listing::of(log, &self.policy().limits, rotation::unix_now()) {
                Ok(listing) => Some(listing),
                Err(error) => {
                    outcome.rotation_errors += 1;
                    outcome.last_rotation_error = Some(rotation::explain(log, error));
                    *rotation_failed = true;
                    // The back-off lives under this process's mutex, which the fork
                    // handlers take: never a lock of its own a fork could copy held.
                    let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
                    state.backoff.failed(after.attempt);
                    None
                }
            }
        } else {
            None
        };
        if let Some(sweep) = after.sweep {
            self.sweep(&after.dir, sweep, outcome);
        }
        if after.rotated {
            self.after_rotation(after.dir);
        }
        listed
    }

    /// Retention over both namings: lists the archives with no lock held, then deletes
    /// the oldest ones the limits do not keep under the lock, checking each name again
    /// (see [`rotation::sweep`]), and records what is left in the page. A sweep with
    /// nothing to delete and no ledger to correct does not take the lock.
    fn sweep(&self, dir: &Dir, sweep: Sweep, outcome: &mut Outcome) {
        let log = LogName {
            dir,
            name: &self.name,
            path: &self.path,
        };
        let limits = self.policy().limits;
        let now = rotation::unix_now();
        let listing = match Listing::of(log, &limits, now) {
            Ok(listing) => listing,
            Err(error) => {
                outcome.rotation_errors += 1;
                outcome.archives_error = Some(rotation::explain(log, error));
                return;
            }
        };
        let doomed = rotation::doomed(&listing, &limits, sweep.exact, now);
        if sweep.recorded.is_none() && !doomed.contains(&true) {
            return;
        }
        let entered = match self.enter(outcome) {
            Ok(entered) => entered,
            Err(error) => {
                outcome.rotation_errors += 1;
                outcome.archives_error = Some(error);
                return;
            }
        };
        // A directory replaced since the rotation holds other archives: the next
        // rotation there sees to them.
        if entered.state.dir.dir().id() != dir.id() {
            return;
        }
        let guard = LockGuard::held(&entered.state.lock);
        let page = guard.lock_file().page();
        let swept = rotation::sweep(log, &listing, &doomed, sweep.recorded, page.ledger());
        if let Some(ledger) = swept.ledger {
            page.set_ledger(ledger);
        }
        drop(guard);
        if let Some(error) = swept.error {
            outcome.rotation_errors += 1;
            outcome.archives_error = Some(rotation::explain(log, error));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::path::{Path, PathBuf};

    #[cfg(unix)]
    use crate::platform::interruptions;
    use crate::platform::listings;
    use crate::{Naming, SharedFile, Stats};

    const LINES: usize = 300;
    const MAX_FILES: usize = 3;

    fn line(i: usize) -> String {
        format!("line {i:05} of the retention test\n")
    }

    /// Writes `LINES` lines, a rotation every two, through `log`; returns its stats.
    fn write_lines(log: &SharedFile) -> Stats {
        for i in 0..LINES {
            (&*log).write_all(line(i).as_bytes()).unwrap();
        }
        log.stats()
    }

    /// The archives, oldest first, then the live file: exactly the last lines written,
    /// in order, so retention deleted oldest first and nothing else.
    fn assert_kept_the_newest(dir: &Path, naming: Naming) {
        let mut archives: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| {
                let name = path.file_name().unwrap().to_str().unwrap();
                name.starts_with("app.log.") && !["app.log.lock", "app.log.bak"].contains(&name)
            })
            .collect();
        assert_eq!(archives.len(), MAX_FILES, "{archives:?}");
        match naming {
            // app.log.3 is the oldest.
            Naming::Numbered => archives.sort_by(|a, b| b.cmp(a)),
            _ => archives.sort_by_key(|path| {
                let name = path.file_name().unwrap().to_str().unwrap().to_string();
                let rest = &name["app.log.".len()..];
                let (stamp, counter) = rest.split_at(20);
                let counter: u32 = counter.strip_prefix('.').map_or(0, |c| c.parse().unwrap());
                (stamp.to_string(), counter)
            }),
        }
        archives.push(dir.join("app.log"));
        let content: String = archives
            .iter()
            .map(|path| std::fs::read_to_string(path).unwrap())
            .collect();
        let lines: Vec<&str> = content.lines().collect();
        let first = LINES - lines.len();
        for (offset, got) in lines.iter().enumerate() {
            assert_eq!(format!("{got}\n"), line(first + offset), "{archives:?}");
        }
    }

    fn scratch() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        // Unrelated files, and look-alikes that are not archives.
        for i in 0..200 {
            std::fs::write(dir.path().join(format!("other-{i}.log")), "x").unwrap();
        }
        std::fs::write(dir.path().join("app.log.bak"), "x").unwrap();
        dir
    }

    #[test]
    fn retention_never_lists_the_directory_while_holding_the_lock() {
        for naming in [Naming::Numbered, Naming::Timestamped] {
            let dir = scratch();
            let log = SharedFile::builder(dir.path().join("app.log"))
                .naming(naming)
                .max_bytes(2 * line(0).len() as u64)
                .max_files(MAX_FILES)
                .build()
                .unwrap();
            let (made_before, holding_before) = listings::made();
            let stats = write_lines(&log);
            let (made, holding) = listings::made();
            assert_eq!(
                holding, holding_before,
                "{naming:?}: a listing under the lock"
            );
            if naming == Naming::Timestamped {
                assert!(made > made_before, "retention did list, off the lock");
            }
            assert_eq!(stats.rotations, (LINES / 2 - 1) as u64, "{stats:?}");
            assert_eq!((stats.write_errors, stats.rotation_errors), (0, 0));
            assert_kept_the_newest(dir.path(), naming);
        }
    }

    /// Every other system call on this thread fails with EINTR (see [`interruptions`]):
    /// a call that is not retried fails a rotation, an append or the retention. Unix-only:
    /// Windows has no EINTR (and no `file_mode`).
    #[cfg(unix)]
    #[test]
    fn every_call_interrupted_by_a_signal_is_retried() {
        for (naming, mode) in [
            (Naming::Numbered, None),
            (Naming::Numbered, Some(0o640)),
            (Naming::Timestamped, None),
            (Naming::Timestamped, Some(0o600)),
        ] {
            let dir = scratch();
            let injected_before = interruptions::arm(true);
            let mut builder = SharedFile::builder(dir.path().join("app.log"))
                .naming(naming)
                .max_bytes(2 * line(0).len() as u64)
                .max_files(MAX_FILES);
            if let Some(mode) = mode {
                builder = builder.file_mode(mode);
            }
            let log = builder.build().unwrap();
            let stats = write_lines(&log);
            let injected = interruptions::arm(false) - injected_before;
            assert!(injected > 2 * LINES as u64, "{injected} interruptions");
            assert_eq!(
                stats.rotations,
                (LINES / 2 - 1) as u64,
                "{naming:?} {stats:?}"
            );
            assert_eq!((stats.write_errors, stats.rotation_errors), (0, 0));
            assert_eq!(stats.events_written, LINES as u64);
            assert_kept_the_newest(dir.path(), naming);
        }
    }

    /// Numbered and timestamped archives count together: a numbered rotation, which
    /// looks only numbered archives up under the lock, has the oldest of both namings
    /// deleted by the listing after the hold, and lists nothing while holding the lock.
    #[test]
    fn a_numbered_rotation_deletes_the_oldest_of_both_namings_off_the_lock() {
        let dir = scratch();
        let at = |name: &str, modified: u64| {
            let file = std::fs::File::create(dir.path().join(name)).unwrap();
            let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(modified);
            file.set_modified(time).unwrap();
        };
        at("app.log.2020-01-01T00-00-00Z", 1_577_836_800);
        at("app.log.2020-01-01T00-00-01Z", 1_577_836_801);
        at("app.log.1", 1_577_836_802);
        let log = SharedFile::builder(dir.path().join("app.log"))
            .max_bytes(2 * line(0).len() as u64)
            .max_files(MAX_FILES)
            .build()
            .unwrap();
        let (_, holding_before) = listings::made();
        for i in 0..3 {
            (&log).write_all(line(i).as_bytes()).unwrap();
        }
        let stats = log.stats();
        assert_eq!(
            listings::made().1,
            holding_before,
            "a listing under the lock"
        );
        assert_eq!(
            (stats.rotations, stats.rotation_errors),
            (1, 0),
            "{stats:?}"
        );
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .filter(|name| name.starts_with("app.log") && !name.starts_with("app.log.lock"))
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "app.log",
                "app.log.1",
                "app.log.2",
                "app.log.2020-01-01T00-00-01Z",
                "app.log.bak"
            ]
        );
        let newest = std::fs::read_to_string(dir.path().join("app.log.1")).unwrap();
        assert_eq!(newest, format!("{}{}", line(0), line(1)));
    }
}
