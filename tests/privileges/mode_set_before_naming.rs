//! `file_mode`'s bits are set before a file gets its name: under a umask of `077`, the
//! log and the lock file only ever appear by a rename into place (inotify
//! `IN_MOVED_TO`), never by a creation under their names, through `build()` and four
//! rotations. The scenario runs in a child process, the umask being the whole
//! process's. None of this needs root.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use crate::common;
use crate::common::children::start_entry_env;
use crate::common::inotify::DirWatch;
use tracing_shared_file::SharedFile;

const FILE_MODE_ENV: &str = "TSF_MODE_BEFORE_NAMING_DIR";

/// Child side (the umask is the whole process's): umask 077, a watch on the directory,
/// `build()` with `file_mode(0o660)` and four rotations; prints what appeared, and how.
#[test]
fn file_mode_entry() {
    let Some(dir) = std::env::var_os(FILE_MODE_ENV) else {
        return;
    };
    let dir = PathBuf::from(dir);
    // SAFETY: umask has no preconditions.
    unsafe { libc::umask(0o077) };
    let watch = DirWatch::new(&dir, libc::IN_CREATE | libc::IN_MOVED_TO);
    let log = SharedFile::builder(dir.join("app.log"))
        .file_mode(0o660)
        .max_bytes(100)
        .build()
        .unwrap();
    for i in 0..5 {
        (&log).write_all(format!("{i:079}\n").as_bytes()).unwrap();
    }
    assert_eq!(log.stats().rotations, 4);
    for (mask, name) in watch.events() {
        let how = if mask & libc::IN_CREATE != 0 {
            "CREATE"
        } else {
            "MOVED_TO"
        };
        println!("event {how} {name}");
    }
}

/// Under a umask of 077, a file created under its name would show `0o600` until its
/// bits were set: the log and the lock file must only ever appear by a rename into place.
#[test]
fn the_log_and_lock_file_get_their_names_only_once_their_bits_are_set() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    fs::create_dir(&logs).unwrap();
    let entry = common::entry!(file_mode_entry);
    let finished = start_entry_env(&entry, dir.path(), "file-mode", FILE_MODE_ENV, &logs).finish();
    finished.assert_success();
    let named: Vec<&str> = finished
        .stdout
        .lines()
        .filter_map(|line| line.split_once("event ").map(|(_, event)| event))
        .filter(|event| event.ends_with(" app.log") || event.ends_with(" app.log.lock"))
        .collect();
    // The lock file and the log at build(), and a fresh log at each of four rotations.
    let expected: Vec<&str> = ["MOVED_TO app.log.lock", "MOVED_TO app.log"]
        .into_iter()
        .chain(std::iter::repeat_n("MOVED_TO app.log", 4))
        .collect();
    assert_eq!(named, expected, "{}", finished.stdout);
    for name in ["app.log", "app.log.lock", "app.log.1", "app.log.4"] {
        let mode = fs::metadata(logs.join(name)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o660, "{name}");
    }
}
