//! Other programs' changes at the log path are noticed within `path_check_interval`:
//!
//! - with `Duration::ZERO`, before the very next write, every time;
//! - with a longer interval, not before the interval has passed since the last look
//!   (lines follow the open file until then) and at the first write after it;
//! - a FIFO, a character device or a Unix socket that appears at the path after
//!   `build()` is never opened, written or renamed: the write fails promptly, is counted
//!   in `write_errors` and `events_dropped` and reported, whether the path check or a
//!   rotation meets it; once it is gone, the next write recreates the file;
//! - a device or socket at the path at `build()` is refused there with an error naming
//!   the path (a FIFO there is tests/hostile_paths.rs's);
//! - something that is not this crate's lock file put at `app.log.lock` after `build()`
//!   (a FIFO, a directory, a file of someone else's data) makes writes fail promptly,
//!   dropped, counted and reported, instead of writing into it, and is left as it was;
//!   once it is gone, the next write makes a new lock file and logs again (a symbolic
//!   link and a hard link there are tests/foreign_lock_file.rs's);
//! - `file_mode`'s bits are set before a file gets its name: under a umask of `077`, the
//!   log and the lock file only ever appear by a rename into place (inotify
//!   `IN_MOVED_TO`), never by a creation under their names, through `build()` and
//!   rotations (in a child process, the umask being the whole process's).

mod common;

use std::fs;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use common::children::{CHILD_DEADLINE, spawn_entry};
use tracing_shared_file::{Builder, SharedFile};

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn with_a_zero_interval_a_move_is_noticed_by_the_very_next_write() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("app.log");
    let log = SharedFile::builder(&log_path)
        .path_check_interval(Duration::ZERO)
        .build()
        .unwrap();
    for i in 0..50 {
        (&log).write_all(format!("line {i}\n").as_bytes()).unwrap();
        let moved = dir.path().join(format!("moved.{i}"));
        fs::rename(&log_path, &moved).unwrap();
        assert_eq!(read(&moved), format!("line {i}\n"));
    }
    (&log).write_all(b"last\n").unwrap();
    assert_eq!(read(&log_path), "last\n");
}

#[test]
fn with_a_300_ms_interval_a_move_is_noticed_at_the_first_write_after_it() {
    const INTERVAL: Duration = Duration::from_millis(300);
    // The library's clock is a coarse one (a few ms): allow for it on both sides.
    const SLACK: Duration = Duration::from_millis(20);
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("app.log");
    let moved = dir.path().join("moved.log");
    let log = SharedFile::builder(&log_path)
        .path_check_interval(INTERVAL)
        .build()
        .unwrap();
    // The first write looks (nothing was looked at since build()).
    let began = Instant::now();
    (&log).write_all(b"first\n").unwrap();
    let looked = Instant::now();
    fs::rename(&log_path, &moved).unwrap();
    // Writes every 10 ms for twice the interval, each line saying when it was written.
    let mut written = Vec::new();
    while began.elapsed() < 2 * INTERVAL {
        std::thread::sleep(Duration::from_millis(10));
        let start = Instant::now();
        let line = format!("written {}\n", written.len());
        (&log).write_all(line.as_bytes()).unwrap();
        written.push((line, start.duration_since(looked), began.elapsed()));
    }
    let (old, new) = (read(&moved), read(&log_path));
    let mut switched = false;
    for (line, started_after_look, ended_after_begin) in &written {
        let in_old = old.contains(line.as_str());
        let in_new = new.contains(line.as_str());
        assert!(in_old != in_new, "{line:?} must be in exactly one file");
        // Once a write has looked, every later one writes at the path.
        assert!(
            !(switched && in_old),
            "{line:?} went back to the moved file"
        );
        switched |= in_new;
        if *ended_after_begin + SLACK < INTERVAL {
            assert!(in_old, "{line:?} looked before the interval was over");
        }
        if *started_after_look > INTERVAL + SLACK {
            assert!(
                in_new,
                "{line:?} did not look although the interval was over"
            );
        }
    }
    assert!(old.starts_with("first\n"));
}

// ---------------------------------------------------------------------------------------
// Special files at the path after build().

#[derive(Debug, Clone, Copy)]
enum Special {
    Fifo,
    CharDevice,
    Socket,
}

/// Makes `kind` at `path`: a FIFO, a character device like `/dev/null` (needs root;
/// `None` elsewhere), or a Unix socket (its listener is returned, to keep it alive).
fn make_special(kind: Special, path: &Path) -> Option<Option<std::os::unix::net::UnixListener>> {
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
fn write_promptly(log: &SharedFile, line: &'static str) -> std::io::Result<()> {
    let (tx, rx) = mpsc::channel();
    let log = log.clone();
    std::thread::spawn(move || {
        let _ = tx.send((&log).write_all(line.as_bytes()));
    });
    rx.recv_timeout(Duration::from_secs(10))
        .expect("a write hung on a special file")
}

/// `builder` with a hook that counts the reports of dropped events.
fn counting_dropped_events(builder: Builder) -> (Builder, Arc<AtomicU64>) {
    let dropped = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&dropped);
    let builder = builder.on_error(move |failure| {
        if failure.event_dropped() {
            counter.fetch_add(1, Relaxed);
        }
    });
    (builder, dropped)
}

/// An inotify watch on a directory, so that even a rename that was undone at once, or
/// a name that existed for a moment, shows.
struct DirWatch(OwnedFd);

impl DirWatch {
    fn new(dir: &Path, mask: u32) -> Self {
        use std::os::unix::ffi::OsStrExt;
        // SAFETY: plain syscalls; the descriptor is owned from here on.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        assert!(
            fd >= 0,
            "inotify_init1: {}",
            std::io::Error::last_os_error()
        );
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let c_dir = std::ffi::CString::new(dir.as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid descriptor and NUL-terminated path.
        let wd = unsafe { libc::inotify_add_watch(fd.as_raw_fd(), c_dir.as_ptr(), mask) };
        assert!(
            wd >= 0,
            "inotify_add_watch: {}",
            std::io::Error::last_os_error()
        );
        DirWatch(fd)
    }

    /// The events since the watch began (or the last call): their mask and name.
    fn events(&self) -> Vec<(u32, String)> {
        let mut buf = vec![0u8; 256 * 1024];
        // SAFETY: reads into a buffer we own, of its length.
        let n = unsafe { libc::read(self.0.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        let header = std::mem::size_of::<libc::inotify_event>();
        let (mut at, mut events) = (0, Vec::new());
        while n > 0 && at + header <= n as usize {
            // SAFETY: the kernel wrote whole events; read_unaligned copes with alignment.
            let event: libc::inotify_event =
                unsafe { std::ptr::read_unaligned(buf[at..].as_ptr().cast()) };
            let name = &buf[at + header..at + header + event.len as usize];
            let name = String::from_utf8_lossy(name)
                .trim_end_matches('\0')
                .to_string();
            events.push((event.mask, name));
            at += header + event.len as usize;
        }
        events
    }
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

// ---------------------------------------------------------------------------------------
// Something that is not our lock file at the lock path after build().

fn replaced_lock_file_scenario(what: &str, replace: impl FnOnce(&Path)) {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("app.log");
    let lock = dir.path().join("app.log.lock");
    let (builder, dropped) =
        counting_dropped_events(SharedFile::builder(&log_path).path_check_interval(Duration::ZERO));
    let log = builder.build().unwrap();
    (&log).write_all(b"before\n").unwrap();
    fs::remove_file(&lock).unwrap();
    replace(&lock);
    let before = fs::symlink_metadata(&lock).unwrap();
    // Read only a regular file: opening a FIFO to read it would wait for a writer.
    let read = |lock: &Path| {
        fs::symlink_metadata(lock)
            .unwrap()
            .is_file()
            .then(|| fs::read(lock).unwrap())
    };
    let content_before = read(&lock);
    for _ in 0..3 {
        assert!(
            write_promptly(&log, "refused\n").is_err(),
            "{what}: a write went through"
        );
    }
    let stats = log.stats();
    assert_eq!(
        (
            stats.events_written,
            stats.events_dropped,
            stats.write_errors
        ),
        (1, 3, 3),
        "{what}: {stats:?}"
    );
    assert_eq!(dropped.load(Relaxed), 3, "{what}: reports");
    let after = fs::symlink_metadata(&lock).unwrap();
    assert_eq!(
        (after.file_type(), after.len(), after.modified().unwrap()),
        (before.file_type(), before.len(), before.modified().unwrap()),
        "{what}: touched"
    );
    assert_eq!(read(&lock), content_before, "{what}: written into");
    assert_eq!(fs::read_to_string(&log_path).unwrap(), "before\n", "{what}");

    if after.is_dir() {
        fs::remove_dir(&lock).unwrap();
    } else {
        fs::remove_file(&lock).unwrap();
    }
    write_promptly(&log, "after\n").unwrap();
    assert_eq!(
        fs::read_to_string(&log_path).unwrap(),
        "before\nafter\n",
        "{what}"
    );
}

#[test]
fn a_fifo_put_at_the_lock_path_after_build_fails_writes_and_is_left_alone() {
    replaced_lock_file_scenario("a FIFO", |lock| {
        make_special(Special::Fifo, lock).unwrap();
    });
}

#[test]
fn a_directory_put_at_the_lock_path_after_build_fails_writes_and_is_left_alone() {
    replaced_lock_file_scenario("a directory", |lock| fs::create_dir(lock).unwrap());
}

#[test]
fn a_foreign_file_put_at_the_lock_path_after_build_fails_writes_and_is_left_alone() {
    // Longer than the lock file's page, with no magic number: someone else's data.
    let data: Vec<u8> = (0..8192u32).map(|i| (i % 251) as u8).collect();
    replaced_lock_file_scenario("a foreign file", |lock| fs::write(lock, &data).unwrap());
}

// ---------------------------------------------------------------------------------------
// file_mode's bits are set before a file gets its name.

const FILE_MODE_ENV: &str = "TSF_CLAIM_PATH_CHECK_FILE_MODE_DIR";

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
    let child = spawn_entry(
        &std::env::current_exe().unwrap(),
        "file_mode_entry",
        dir.path(),
        "file-mode",
        |command| {
            command.env(FILE_MODE_ENV, &logs);
        },
    );
    let finished = child.wait(Instant::now() + CHILD_DEADLINE);
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
