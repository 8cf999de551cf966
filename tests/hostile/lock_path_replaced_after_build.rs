//! Something that is not this crate's lock file put at `app.log.lock` after `build()` (a
//! FIFO, a directory, a file of someone else's data) makes writes fail promptly, dropped,
//! counted and reported, instead of writing into it, and is left as it was; once it is
//! gone, the next write makes a new lock file and logs again (a symbolic link and a hard
//! link there are `locking::foreign_lock_file`'s).

use std::fs;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use super::special_files_at_the_path::{
    Special, counting_dropped_events, make_special, write_promptly,
};
use tracing_shared_file::SharedFile;

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
