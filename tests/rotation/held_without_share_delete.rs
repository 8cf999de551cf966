//! Windows: another program that holds the live file open without sharing delete (an
//! indexer, an antivirus scanner, a follower opening it the default C way) makes the
//! rename of a rotation fail for as long as it holds the file. The writes go to the live
//! file, no line is lost, and the rotation is tried again after the back-off (100 ms,
//! doubling, at most 5 s), each failed try counted. Once the program lets go, the first
//! write after the back-off rotates. (Wine enforces share modes as Windows does.)

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::windows::fs::OpenOptionsExt;
use std::time::Instant;

use crate::common::backoff;
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
    let started = Instant::now();
    for seq in 1..4 {
        write(seq);
    }
    let elapsed = started.elapsed();
    let stats = log.stats();
    assert_eq!(stats.rotations, 0, "{stats:?}");
    let failures = stats.rotation_errors;
    assert!(
        (1..=backoff::most_tries_within(elapsed).min(3)).contains(&failures),
        "{stats:?} in {elapsed:?}"
    );
    assert_eq!(
        (stats.events_written, stats.write_errors),
        (4, 0),
        "{stats:?}"
    );

    drop(held);
    std::thread::sleep(backoff::wait_after(failures) + backoff::SLACK);
    write(4);
    let stats = log.stats();
    assert_eq!(
        (stats.rotations, stats.rotation_errors),
        (1, failures),
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
