//! The compressor thread: in a child forked without exec, where the parent's thread does
//! not exist, the child starts its own; and what its copies keep of the archives.

use crate::common;

use std::fs;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use common::verifier::{Expect, Verifier};
use common::workload::{WriterId, fmt_line, stamped_archives};
use tracing_shared_file::{Naming, SharedFile};

const PARENT: WriterId = WriterId {
    process: 1,
    thread: 0,
};
const CHILD: WriterId = WriterId {
    process: 2,
    thread: 0,
};
/// Two records per file.
const MAX_BYTES: u64 = 300;

fn write_until_rotated(log: &SharedFile, writer: WriterId, seq: &mut u64, rotations: u64) -> bool {
    while log.stats().rotations < rotations {
        if *seq >= 10_000
            || (&*log)
                .write_all(fmt_line(writer, *seq).as_bytes())
                .is_err()
        {
            return false;
        }
        *seq += 1;
    }
    true
}

/// Timestamped, compressed, every archive kept.
fn compressed_log(path: &Path) -> SharedFile {
    SharedFile::builder(path)
        .naming(Naming::Timestamped)
        .max_bytes(MAX_BYTES)
        .max_files(1000)
        .compress(true)
        .build()
        .unwrap()
}

/// Plain archives besides the newest, which waits for the next rotation.
fn plain_archives_but_the_newest(log: &Path) -> usize {
    let archives = stamped_archives(log);
    let newest = archives
        .last()
        .map(|archive| (archive.stamp, archive.counter));
    archives
        .iter()
        .filter(|archive| !archive.gz && Some((archive.stamp, archive.counter)) != newest)
        .count()
}

#[test]
fn a_forked_child_compresses_its_archives_with_a_thread_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let log = compressed_log(&path);
    let mut parent_seq = 0;
    // The parent's compressor thread is running before the fork.
    assert!(write_until_rotated(&log, PARENT, &mut parent_seq, 3));
    // And idle: what the child rotates can only be compressed by a thread of the child.
    let deadline = Instant::now() + Duration::from_secs(20);
    while plain_archives_but_the_newest(&path) > 0 {
        assert!(Instant::now() < deadline, "the parent never compressed");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(100));

    // SAFETY: the child only logs, waits and then `_exit`s, never returning into the
    // test harness.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        let mut seq = 0;
        // A forked child's stats count from the fork.
        let mut ok = write_until_rotated(&log, CHILD, &mut seq, 3);
        // The child's own records are checked by the parent: their count goes in the
        // exit status' stead, as a file.
        ok &= fs::write(dir.path().join("child-records"), seq.to_string()).is_ok();
        // Its own thread compresses every archive but the newest, within the deadline.
        let deadline = Instant::now() + Duration::from_secs(20);
        while ok && plain_archives_but_the_newest(&path) > 0 {
            ok = Instant::now() < deadline;
            std::thread::sleep(Duration::from_millis(20));
        }
        // SAFETY: ends the child without running the parent's destructors or harness.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    let mut status = 0;
    // SAFETY: waitpid on our own child.
    let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(rc, pid, "waitpid: {}", std::io::Error::last_os_error());
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "the child's archives were not all compressed: {:?}",
        fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect::<Vec<_>>()
    );
    drop(log);
    let child_records: u64 = fs::read_to_string(dir.path().join("child-records"))
        .unwrap()
        .parse()
        .unwrap();
    fs::remove_file(dir.path().join("child-records")).unwrap();
    Verifier::new(&path, MAX_BYTES, 1000)
        .timestamped(true)
        .expect(PARENT, Expect::Exactly(parent_seq))
        .expect(CHILD, Expect::Exactly(child_records))
        .verify()
        .assert_ok();
}

/// The `.gz` keeps the archive's modification time, as gzip does: numbered retention and
/// tools that judge age by it see the time of the archive's last line.
#[test]
fn a_compressed_copy_keeps_the_archives_modification_time() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let log = compressed_log(&path);
    let mut seq = 0;
    assert!(write_until_rotated(&log, PARENT, &mut seq, 1));
    // The first archive stays plain until the next rotation: date it back meanwhile.
    let first = stamped_archives(&path)[0].name.clone();
    let dated = std::time::SystemTime::now() - Duration::from_secs(10_000);
    fs::File::options()
        .append(true)
        .open(dir.path().join(&first))
        .unwrap()
        .set_modified(dated)
        .unwrap();
    assert!(write_until_rotated(&log, PARENT, &mut seq, 2));
    let gz = dir.path().join(format!("{first}.gz"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while dir.path().join(&first).exists() || !gz.exists() {
        assert!(Instant::now() < deadline, "{first} was never compressed");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(fs::metadata(&gz).unwrap().modified().unwrap(), dated);
}
