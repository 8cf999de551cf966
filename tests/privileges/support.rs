//! What the scenarios share: the users and the group, the scratch directory, child
//! processes run with a deadline, and the counters they print.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::common::children::{Finished, RunningChild, spawn_entry};
use crate::common::workload::{WriterId, record};
use tracing_shared_file::Stats;

/// The group that the processes sharing the log have in common.
pub(crate) const GROUP: u32 = 4242;
/// The unprivileged users: worker or process `p` runs as `BASE_UID + p`.
pub(crate) const BASE_UID: u32 = 5000;
pub(crate) const MAX_BYTES: u64 = 8 * 1024;
/// Every archive is kept, so that the verifier sees every line.
pub(crate) const MAX_FILES: usize = 100_000;
/// Any wait for a child longer than this is a hang.
pub(crate) const DEADLINE: Duration = Duration::from_secs(60);
/// The prefix of every line the library prints on stderr.
pub(crate) use crate::common::children::{REPORT_PREFIX, touch};

/// Switching to other users needs root: without it, says so, and the test returns.
pub(crate) fn skipped_without_root() -> bool {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return false;
    }
    println!("skipped: switching to other users needs root");
    true
}

pub(crate) fn log_records(writer: WriterId, seqs: std::ops::Range<u64>) {
    for seq in seqs {
        tracing::info!(target: "workload", "{}", record(writer, seq));
    }
}

/// This process's user, group, and number of supplementary groups, as `key=value` fields.
pub(crate) fn credentials() -> String {
    // SAFETY: plain queries of this process's credentials; a count of 0 asks for no list.
    let (uid, gid, groups) = unsafe {
        (
            libc::getuid(),
            libc::getgid(),
            libc::getgroups(0, std::ptr::null_mut()),
        )
    };
    format!("uid={uid} gid={gid} groups={groups}")
}

/// What a `SharedFile` counted, as a child prints it and the test reads it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) written: u64,
    pub(crate) dropped: u64,
    pub(crate) write_errors: u64,
    pub(crate) rotations: u64,
    pub(crate) rotation_errors: u64,
}

impl Counts {
    pub(crate) fn of(stats: &Stats) -> Self {
        Counts {
            written: stats.events_written,
            dropped: stats.events_dropped,
            write_errors: stats.write_errors,
            rotations: stats.rotations,
            rotation_errors: stats.rotation_errors,
        }
    }

    pub(crate) fn to_fields(self) -> String {
        format!(
            "written={} dropped={} write_errors={} rotations={} rotation_errors={}",
            self.written, self.dropped, self.write_errors, self.rotations, self.rotation_errors
        )
    }

    pub(crate) fn from_fields(fields: &BTreeMap<String, String>) -> Self {
        let number = |key: &str| -> u64 {
            fields
                .get(key)
                .and_then(|value| value.parse().ok())
                .unwrap_or_else(|| panic!("no number {key} in {fields:?}"))
        };
        Counts {
            written: number("written"),
            dropped: number("dropped"),
            write_errors: number("write_errors"),
            rotations: number("rotations"),
            rotation_errors: number("rotation_errors"),
        }
    }

    /// Every event written, nothing dropped, nothing failed; rotations are left out.
    #[track_caller]
    pub(crate) fn assert_clean(self, who: &str, events: u64) {
        assert_eq!(
            Counts {
                rotations: 0,
                ..self
            },
            Counts {
                written: events,
                dropped: 0,
                write_errors: 0,
                rotations: 0,
                rotation_errors: 0,
            },
            "{who} wrote every event, and nothing failed"
        );
    }
}

/// A scratch directory that the unprivileged users can search (a temporary directory is
/// 0700), holding `logs` (the log directory, nothing else in it), `sync` (files the test
/// and its children signal with, writable by all) and `out` (the children's output).
pub(crate) struct Scratch {
    _dir: tempfile::TempDir,
    root: PathBuf,
    pub(crate) logs: PathBuf,
    pub(crate) sync: PathBuf,
    out: PathBuf,
}

impl Scratch {
    /// `logs` gets mode `logs_mode`, and group `logs_group` if given (which needs root).
    pub(crate) fn new(logs_group: Option<u32>, logs_mode: u32) -> Self {
        let dir = tempfile::tempdir().unwrap();
        // Real paths, as the library names them in its messages.
        let root = fs::canonicalize(dir.path()).unwrap();
        let set_mode = |path: &Path, mode| {
            fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
        };
        set_mode(&root, 0o755);
        let (logs, sync, out) = (root.join("logs"), root.join("sync"), root.join("out"));
        for dir in [&logs, &sync, &out] {
            fs::create_dir(dir).unwrap();
        }
        if let Some(group) = logs_group {
            std::os::unix::fs::chown(&logs, Some(0), Some(group)).unwrap();
        }
        set_mode(&logs, logs_mode);
        set_mode(&sync, 0o777);
        Scratch {
            _dir: dir,
            root,
            logs,
            sync,
            out,
        }
    }

    pub(crate) fn log(&self) -> PathBuf {
        self.logs.join("app.log")
    }

    pub(crate) fn lock(&self) -> PathBuf {
        self.logs.join("app.log.lock")
    }

    /// A copy of this test binary that the unprivileged users can run: they may not be
    /// able to reach the one the build left.
    pub(crate) fn test_binary(&self) -> PathBuf {
        let exe = self.root.join("test-binary");
        if !exe.exists() {
            fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
            fs::set_permissions(&exe, fs::Permissions::from_mode(0o755)).unwrap();
        }
        exe
    }

    /// Starts `entry` of `exe` as `name`, in the scratch directory, with its output in
    /// files under `out`.
    pub(crate) fn spawn(
        &self,
        exe: &Path,
        entry: &str,
        name: &str,
        configure: impl FnOnce(&mut Command),
    ) -> RunningChild {
        spawn_entry(exe, entry, &self.out, name, |command| {
            command.current_dir(&self.root);
            configure(command);
        })
        .with_deadline(DEADLINE)
    }

    /// The names in `logs`, which must be exactly the live file, the lock file and
    /// `archives` archives (no temporary file left behind), with their metadata.
    pub(crate) fn log_files(&self, archives: usize) -> BTreeMap<String, fs::Metadata> {
        let files: BTreeMap<String, fs::Metadata> = fs::read_dir(&self.logs)
            .unwrap()
            .map(|entry| {
                let entry = entry.unwrap();
                let name = entry.file_name().into_string().unwrap();
                (name, fs::symlink_metadata(entry.path()).unwrap())
            })
            .collect();
        let expected: BTreeSet<String> = ["app.log".to_string(), "app.log.lock".to_string()]
            .into_iter()
            .chain((1..=archives).map(|i| format!("app.log.{i}")))
            .collect();
        assert_eq!(
            files.keys().cloned().collect::<BTreeSet<_>>(),
            expected,
            "the log directory holds the live file, the lock file and the archives, and \
             nothing else"
        );
        files
    }
}

/// The counters a child printed on its `STATS` line.
pub(crate) trait CountsOf {
    fn counts(&self) -> Counts;
}

impl CountsOf for Finished {
    #[track_caller]
    fn counts(&self) -> Counts {
        Counts::from_fields(&self.fields("STATS"))
    }
}

/// Permission bits, shown in octal.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mode(pub(crate) u32);

impl Mode {
    /// The permission bits of `metadata`, with the set-id and sticky bits.
    pub(crate) fn of(metadata: &fs::Metadata) -> Self {
        Mode(metadata.mode() & 0o7777)
    }
}

impl std::fmt::Debug for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#o}", self.0)
    }
}

/// How many of `files` (archives and the live file, not the lock file) each user owns.
pub(crate) fn log_files_by_owner(files: &BTreeMap<String, fs::Metadata>) -> BTreeMap<u32, u64> {
    let mut owners = BTreeMap::new();
    for (name, metadata) in files {
        if name != "app.log.lock" {
            *owners.entry(metadata.uid()).or_default() += 1;
        }
    }
    owners
}

/// The mode and group of each file.
pub(crate) fn modes_and_groups(
    files: &BTreeMap<String, fs::Metadata>,
) -> BTreeMap<String, (Mode, u32)> {
    files
        .iter()
        .map(|(name, m)| (name.clone(), (Mode::of(m), m.gid())))
        .collect()
}

/// Mode 0660 and group `GROUP` for each of `files`: shared with the group.
pub(crate) fn all_group_shared(
    files: &BTreeMap<String, fs::Metadata>,
) -> BTreeMap<String, (Mode, u32)> {
    files
        .keys()
        .map(|name| (name.clone(), (Mode(0o660), GROUP)))
        .collect()
}
