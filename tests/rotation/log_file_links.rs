//! A log file with a second hard link is also another file: appending to it would write
//! into that file too (a victim linked in at the log path of a group-writable directory).
//! It is refused at `build()`, and when it appears later, instead of written to.

use std::fs;
#[cfg(unix)]
use std::io::Write;
#[cfg(unix)]
use std::time::Duration;

use tracing_shared_file::{ErrorKind, SharedFile};

const VICTIM_TEXT: &str = "someone else's data, not ours to append to\n";

#[test]
fn a_log_file_with_a_second_hard_link_is_refused_at_build() {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim.txt");
    fs::write(&victim, VICTIM_TEXT).unwrap();
    fs::hard_link(&victim, dir.path().join("app.log")).unwrap();

    let err = SharedFile::builder(dir.path().join("app.log"))
        .build()
        .unwrap_err();

    assert_eq!(err.kind(), ErrorKind::OpenLogFile);
    let message = err.to_string();
    assert!(
        message.contains(&dir.path().join("app.log").display().to_string())
            && message.contains("2 hard links"),
        "{message}"
    );
    assert_eq!(fs::read_to_string(&victim).unwrap(), VICTIM_TEXT);
}

// Unix-only: Windows refuses to rename a file over one that is open (the live file).
#[cfg(unix)]
#[test]
fn a_hard_link_swapped_in_at_the_log_path_after_build_is_never_written_to() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let log = SharedFile::builder(&path)
        .path_check_interval(Duration::ZERO)
        .on_error(|_| {})
        .build()
        .unwrap();
    (&log).write_all(b"before\n").unwrap();

    let victim = dir.path().join("victim.txt");
    fs::write(&victim, VICTIM_TEXT).unwrap();
    let link = dir.path().join("link.tmp");
    fs::hard_link(&victim, &link).unwrap();
    fs::rename(&link, &path).unwrap();
    for _ in 0..5 {
        let err = (&log).write_all(b"after\n").unwrap_err();
        assert!(err.to_string().contains("hard links"), "{err}");
    }

    assert_eq!(fs::read_to_string(&victim).unwrap(), VICTIM_TEXT);
    let stats = log.stats();
    assert_eq!(
        (
            stats.events_written,
            stats.write_errors,
            stats.events_dropped
        ),
        (1, 5, 5)
    );
}
