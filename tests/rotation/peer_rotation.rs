//! A rotation by another process is noticed before this process's next write, through
//! the live file recorded in the lock file's page, without looking the path up: with a
//! `path_check_interval` of an hour, the next line still goes into the new live file,
//! never into the archive, and the file is not rotated again.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common;
use crate::common::children::start_entry_env;
use crate::common::log_files::archive;
use tracing_shared_file::SharedFile;

const ROTATOR_ENV: &str = "TSF_PEER_ROTATION_DIR";
const MAX_BYTES: u64 = 100;

fn build(log: &Path) -> SharedFile {
    SharedFile::builder(log)
        .max_bytes(MAX_BYTES)
        .max_files(10)
        .path_check_interval(Duration::from_secs(3600))
        .build()
        .unwrap()
}

/// Child side: one line that does not fit, so it rotates.
#[test]
fn rotator_entry() {
    let Some(dir) = std::env::var_os(ROTATOR_ENV) else {
        return;
    };
    let log = build(&PathBuf::from(dir).join("app.log"));
    (&log).write_all(&line(b'c', 60)).unwrap();
    assert_eq!(log.stats().rotations, 1);
}

fn line(fill: u8, len: usize) -> Vec<u8> {
    let mut line = vec![fill; len - 1];
    line.push(b'\n');
    line
}

#[test]
fn a_rotation_by_another_process_is_noticed_before_the_next_write() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("app.log");
    let log = build(&log_path);
    (&log).write_all(&line(b'p', 60)).unwrap();
    start_entry_env(
        &common::entry!(rotator_entry),
        dir.path(),
        "rotator",
        ROTATOR_ENV,
        dir.path(),
    )
    .finish()
    .assert_success();
    // Fits beside the child's line in the new file; in the archive, it would not have.
    (&log).write_all(&line(b'q', 30)).unwrap();
    assert_eq!(log.stats().rotations, 0);
    assert_eq!(fs::read(archive(&log_path, 1)).unwrap(), line(b'p', 60));
    assert_eq!(
        fs::read(&log_path).unwrap(),
        [line(b'c', 60), line(b'q', 30)].concat()
    );
    assert!(!archive(&log_path, 2).exists());
}
