//! The length that decides rotation is confirmed with the kernel before a file is rotated:
//! the length recorded in the lock file's page can be stale when another program changed
//! the file behind the library's back.

use std::fs;
use std::io::Write;
use std::time::Duration;

use tracing_shared_file::SharedFile;

const LINE: &[u8] = b"a line of exactly thirty bytes\n";

/// logrotate's copytruncate empties the file in place: a writer that trusted the length
/// it recorded would rotate an almost empty file.
#[test]
fn a_file_emptied_by_another_program_is_not_rotated_early() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let log = SharedFile::builder(&path)
        .max_bytes(4 * LINE.len() as u64)
        // Only the first write asks the kernel; later ones go by the recorded length.
        .path_check_interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    for _ in 0..4 {
        (&log).write_all(LINE).unwrap();
    }

    // What copytruncate does after copying: the same file, cut to nothing.
    fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();
    (&log).write_all(LINE).unwrap();

    assert_eq!(fs::read(&path).unwrap(), LINE);
    assert!(
        !dir.path().join("app.log.1").exists(),
        "rotated an empty file"
    );
    assert_eq!(log.stats().rotations, 0);
}

/// Another program that appends under the lock makes the recorded length short; the
/// rotation that then comes is still decided by the real length.
#[test]
fn a_file_grown_by_another_program_under_the_lock_rotates_on_its_real_length() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let log = SharedFile::builder(&path)
        .max_bytes(4 * LINE.len() as u64)
        .path_check_interval(Duration::ZERO)
        .build()
        .unwrap();
    (&log).write_all(LINE).unwrap();
    {
        let lock = fs::File::open(dir.path().join("app.log.lock")).unwrap();
        lock.lock().unwrap();
        let mut file = fs::OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(&LINE.repeat(3)).unwrap();
    }
    (&log).write_all(LINE).unwrap();

    assert_eq!(
        fs::read(dir.path().join("app.log.1")).unwrap(),
        LINE.repeat(4)
    );
    assert_eq!(fs::read(&path).unwrap(), LINE);
}

/// A peer's rotation is noticed through the lock file's page, not the hourly path check:
/// a short line that would still fit in the archive goes to the new live file.
#[test]
fn a_line_after_a_peers_rotation_never_goes_into_the_archive() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let build = || {
        SharedFile::builder(&path)
            .max_bytes(4 * LINE.len() as u64)
            .path_check_interval(Duration::from_secs(3600))
            .build()
            .unwrap()
    };
    let (rotator, peer) = (build(), build());
    for _ in 0..3 {
        (&peer).write_all(LINE).unwrap();
    }
    // Does not fit next to the three lines: the rotator rotates.
    (&rotator).write_all(&LINE.repeat(2)).unwrap();
    // Would fit in the archive (3 lines + 4 bytes), so only the page can tell the peer.
    (&peer).write_all(b"new\n").unwrap();

    assert_eq!(
        fs::read(dir.path().join("app.log.1")).unwrap(),
        LINE.repeat(3)
    );
    let mut live = LINE.repeat(2);
    live.extend_from_slice(b"new\n");
    assert_eq!(fs::read(&path).unwrap(), live);
}
