//! Windows: a live file deleted while a writer holds it keeps its name until the last
//! handle on it closes. The writer does not see it go and goes on appending to it, and
//! the file, with what was written to it, is gone once the writer drops it. (On Unix the
//! writers notice and start a new file: `multiprocess::writers_recover_when_the_file_is_deleted`.)

use std::fs;
use std::io::Write;
use std::time::Duration;

use tracing_shared_file::SharedFile;

#[test]
fn a_live_file_deleted_while_open_keeps_its_name_until_the_writer_lets_go() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let log = SharedFile::builder(&path)
        .path_check_interval(Duration::ZERO)
        .on_error(|_| {})
        .build()
        .unwrap();
    (&log).write_all(b"before\n").unwrap();
    fs::remove_file(&path).unwrap();
    assert!(
        path.exists(),
        "the name stays while the writer holds the file"
    );
    (&log).write_all(b"after\n").unwrap();
    assert_eq!(fs::read_to_string(&path).unwrap(), "before\nafter\n");
    assert_eq!(log.stats().write_errors, 0);
    drop(log);
    assert!(!path.exists(), "the file went with the writer's handle");
}
