//! Windows: another program that holds the live file open without sharing delete (an
//! indexer, an antivirus scanner, a follower opening it the default C way) makes the
//! rename of a rotation fail for as long as it holds the file. Each write that would
//! rotate counts a rotation error and goes to the live file: no line is lost. Once the
//! program lets go, the next write rotates. (Wine enforces share modes as Windows does.)

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::windows::fs::OpenOptionsExt;

use crate::common::workload::{WriterId, fmt_line};
use tracing_shared_file::SharedFile;

const W: WriterId = WriterId {
    process: 1,
    thread: 0,
};
/// Every line fills a file alone: each write after the first rotates.
const MAX_BYTES: u64 = 160;
/// FILE_SHARE_READ | FILE_SHARE_WRITE, without FILE_SHARE_DELETE.
const SHARE_READ_WRITE: u32 = 1 | 2;

#[test]
fn a_handle_without_shared_delete_delays_rotation_and_loses_no_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let log = SharedFile::builder(&path)
        .max_bytes(MAX_BYTES)
        .max_files(10)
        .on_error(|_| {})
        .build()
        .unwrap();
    let write = |seq| (&log).write_all(fmt_line(W, seq).as_bytes()).unwrap();
    write(0);
    let held = OpenOptions::new()
        .read(true)
        .share_mode(SHARE_READ_WRITE)
        .open(&path)
        .unwrap();
    for seq in 1..4 {
        write(seq);
    }
    let stats = log.stats();
    assert_eq!(
        (stats.rotations, stats.rotation_errors),
        (0, 3),
        "{stats:?}"
    );
    assert_eq!(
        (stats.events_written, stats.write_errors),
        (4, 0),
        "{stats:?}"
    );

    drop(held);
    write(4);
    let stats = log.stats();
    assert_eq!(
        (stats.rotations, stats.rotation_errors),
        (1, 3),
        "{stats:?}"
    );

    let mut lines: Vec<String> = Vec::new();
    for entry in fs::read_dir(dir.path()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.starts_with("app.log") && !name.ends_with(".lock") {
            let text = fs::read_to_string(dir.path().join(&name)).unwrap();
            lines.extend(text.lines().map(|line| format!("{line}\n")));
        }
    }
    lines.sort();
    let mut expected: Vec<String> = (0..5).map(|seq| fmt_line(W, seq)).collect();
    expected.sort();
    assert_eq!(lines, expected);
}
