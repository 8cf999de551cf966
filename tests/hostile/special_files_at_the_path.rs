//! Special files at the log path:
//!
//! - a FIFO, a character device or a Unix socket that appears at the path after
//!   `build()` is never opened, written or renamed: the write fails promptly, is counted
//!   in `write_errors` and `events_dropped` and reported, whether the path check or a
//!   rotation meets it (an inotify watch shows no rename or deletion); once it is gone,
//!   the next write recreates the file;
//! - a device or socket at the path at `build()` is refused there with an error naming
//!   the path (a FIFO there is `hostile::paths`'s).

use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use crate::common::inotify::DirWatch;
use tracing_shared_file::{Builder, SharedFile};

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_default()
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Special {
    Fifo,
    CharDevice,
    Socket,
}

/// Makes `kind` at `path`: a FIFO, a character device like `/dev/null` (needs root;
/// `None` elsewhere), or a Unix socket (its listener is returned, to keep it alive).
pub(crate) fn make_special(
    kind: Special,
    path: &Path,
) -> Option<Option<std::os::unix::net::UnixListener>> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    match kind {
        Special::Fifo => {
            // SAFETY: plain syscall with a valid NUL-terminated path.
            assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o666) }, 0, "mkfifo");
            Some(None)
        }
        Special::CharDevice => {
            // SAFETY: as above; 1:3 is /dev/null, which takes and discards any write.
            let rc =
                unsafe { libc::mknod(c_path.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 3)) };
            if rc != 0 {
                println!("skipped: mknod: {}", std::io::Error::last_os_error());
                return None;
            }
            Some(None)
        }
        Special::Socket => Some(Some(std::os::unix::net::UnixListener::bind(path).unwrap())),
    }
}

fn is_kind(kind: Special, meta: &fs::Metadata) -> bool {
    let t = meta.file_type();
    match kind {
        Special::Fifo => t.is_fifo(),
        Special::CharDevice => t.is_char_device(),
        Special::Socket => t.is_socket(),
    }
}

/// Writes `line` on another thread; fails the test if it has not returned within 10 s
/// (a FIFO's `open` would block until the other end is opened).
pub(crate) fn write_promptly(log: &SharedFile, line: &'static str) -> std::io::Result<()> {
    let (tx, rx) = mpsc::channel();
    let log = log.clone();
    std::thread::spawn(move || {
        let _ = tx.send((&log).write_all(line.as_bytes()));
    });
    rx.recv_timeout(Duration::from_secs(10))
        .expect("a write hung on a special file")
}

/// `builder` with a hook that counts the reports of dropped events.
pub(crate) fn counting_dropped_events(builder: Builder) -> (Builder, Arc<AtomicU64>) {
    let dropped = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&dropped);
    let builder = builder.on_error(move |failure| {
        if failure.event_dropped() {
            counter.fetch_add(1, Relaxed);
        }
    });
    (builder, dropped)
}

fn special_at_the_path_scenario(kind: Special, path_check_interval: Duration) {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("app.log");
    let (builder, failures) = counting_dropped_events(
        SharedFile::builder(&log_path)
            // The second line does not fit: the write that meets the special file would
            // rotate, if the path check has not met it first.
            .max_bytes(16)
            .path_check_interval(path_check_interval),
    );
    let log = builder.build().unwrap();
    (&log).write_all(b"before\n").unwrap();
    let moved = dir.path().join("moved.log");
    fs::rename(&log_path, &moved).unwrap();
    let Some(_listener) = make_special(kind, &log_path) else {
        return;
    };
    let ino = fs::symlink_metadata(&log_path).unwrap().ino();
    let watch = DirWatch::new(
        dir.path(),
        libc::IN_MOVED_FROM | libc::IN_MOVED_TO | libc::IN_DELETE,
    );

    let what = format!("{kind:?} with path_check_interval {path_check_interval:?}");
    for _ in 0..3 {
        let result = write_promptly(&log, "meets the special file\n");
        assert!(result.is_err(), "{what}: the write succeeded");
    }
    let stats = log.stats();
    assert_eq!(
        (
            stats.write_errors,
            stats.events_dropped,
            stats.events_written
        ),
        (3, 3, 1),
        "{what}: {stats:?}"
    );
    assert_eq!(
        failures.load(Relaxed),
        3,
        "{what}: reports of dropped events"
    );
    let meta = fs::symlink_metadata(&log_path).unwrap();
    assert!(
        is_kind(kind, &meta) && meta.ino() == ino,
        "{what}: moved or replaced"
    );
    let names: Vec<PathBuf> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(names.len(), 3, "{what}: renamed into an archive? {names:?}");
    assert_eq!(watch.events(), [], "{what}: renamed or deleted");
    assert_eq!(read(&moved), "before\n", "{what}");

    // Gone: with every write looking, the next one recreates the log at the path.
    fs::remove_file(&log_path).unwrap();
    if path_check_interval.is_zero() {
        write_promptly(&log, "after\n").unwrap();
        assert_eq!(read(&log_path), "after\n", "{what}");
    }
}

const SPECIALS: [Special; 3] = [Special::Fifo, Special::CharDevice, Special::Socket];

#[test]
fn a_special_file_appearing_at_the_path_fails_the_write_when_the_path_check_meets_it() {
    for kind in SPECIALS {
        special_at_the_path_scenario(kind, Duration::ZERO);
    }
}

#[test]
fn a_special_file_appearing_at_the_path_is_never_renamed_by_a_rotation() {
    // The path is not looked up again for an hour: the rotation meets the special file.
    for kind in SPECIALS {
        special_at_the_path_scenario(kind, Duration::from_secs(3600));
    }
}

#[test]
fn a_device_or_socket_at_the_path_is_refused_at_build() {
    for kind in [Special::CharDevice, Special::Socket] {
        let dir = tempfile::tempdir().unwrap();
        let log_path = dir.path().join("app.log");
        let Some(_listener) = make_special(kind, &log_path) else {
            continue;
        };
        let ino = fs::symlink_metadata(&log_path).unwrap().ino();
        let (tx, rx) = mpsc::channel();
        let path = log_path.clone();
        std::thread::spawn(move || {
            let _ = tx.send(SharedFile::builder(&path).build().map(|_| ()));
        });
        let built = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("build() hung on the special file");
        let error = built.expect_err("build() accepted a special file at the path");
        assert!(
            error.to_string().contains(&log_path.display().to_string()),
            "{kind:?}: the error does not name the path: {error}"
        );
        let meta = fs::symlink_metadata(&log_path).unwrap();
        assert!(is_kind(kind, &meta) && meta.ino() == ino, "{kind:?}: moved");
    }
}
