//! What the fork scenarios share: running a scenario entry in a fresh process, logging
//! records, and a descriptor limit that leaves no descriptor free for the fork handlers.

use std::io::Write;
use std::path::Path;

use tracing_shared_file::SharedFile;

use crate::common;
use common::children::{Finished, RunningChild, start_entry};
use common::workload::{WriterId, fmt_line, record};

/// Keeps every archive, so every record can be accounted for.
pub(crate) const MAX_FILES: usize = 100_000;
/// Large enough that nothing rotates: unprivileged processes cannot rename in the
/// directory, and some scenarios must see every line in one file.
pub(crate) const NO_ROTATION: u64 = 1 << 30;
/// The uid and gid of `nobody`, to which a worker drops.
pub(crate) const NOBODY: u32 = 65534;

/// Logs `seqs` of `writer` through the process's subscriber.
pub(crate) fn log_records(writer: WriterId, seqs: std::ops::Range<u64>) {
    for seq in seqs {
        tracing::info!(target: "workload", "{}", record(writer, seq));
    }
}

/// Writes `seqs` of `writer` straight to `log`, one event each; false at the first error.
pub(crate) fn write_records(
    log: &SharedFile,
    writer: WriterId,
    seqs: std::ops::Range<u64>,
) -> bool {
    seqs.into_iter()
        .all(|seq| (&*log).write_all(fmt_line(writer, seq).as_bytes()).is_ok())
}

/// Starts the scenario `entry` (a full test name) with `env` set to `value`; its output
/// goes to files in `out`.
pub(crate) fn start_scenario(entry: &str, env: &str, value: &str, out: &Path) -> RunningChild {
    start_entry(entry, out, "scenario", |command| {
        command.env(env, value);
    })
}

/// Runs the scenario `entry` with `env` set to `value` to its end; returns what it
/// printed. Its output files go to a directory of their own, not among the log's.
pub(crate) fn run_scenario_to_end(entry: &str, env: &str, value: &str) -> Finished {
    let out = tempfile::tempdir().unwrap();
    start_scenario(entry, env, value, out.path()).finish()
}

/// [`run_scenario_to_end`], failing unless the scenario succeeded.
#[track_caller]
pub(crate) fn run_scenario(entry: &str, env: &str, value: &str) -> Finished {
    let finished = run_scenario_to_end(entry, env, value);
    finished.assert_exited_ok();
    finished
}

/// Lowers this process's descriptor limit to its lowest free descriptor number, so that
/// not one more can be opened (checked: even `/dev/null` fails with EMFILE); returns the
/// limit to restore.
pub(crate) fn limit_descriptors_to_those_open() -> libc::rlimit {
    // SAFETY: plain descriptor and rlimit syscalls on this process.
    unsafe {
        // Every number below the lowest free one is taken: a limit at that number leaves
        // no descriptor to open.
        let lowest = libc::dup(0);
        assert!(lowest >= 0, "dup: {}", std::io::Error::last_os_error());
        libc::close(lowest);
        let mut old: libc::rlimit = std::mem::zeroed();
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut old), 0);
        let tight = libc::rlimit {
            rlim_cur: lowest as libc::rlim_t,
            rlim_max: old.rlim_max,
        };
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &tight), 0);
        let probe = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        let probe_error = std::io::Error::last_os_error();
        if probe >= 0 {
            libc::close(probe);
            libc::setrlimit(libc::RLIMIT_NOFILE, &old);
            panic!("a descriptor was still free under the limit");
        }
        assert_eq!(
            probe_error.raw_os_error(),
            Some(libc::EMFILE),
            "{probe_error}"
        );
        old
    }
}

pub(crate) fn restore_descriptor_limit(old: &libc::rlimit) {
    // SAFETY: restores this process's own limit.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, old) };
}
