//! Other programs' moves of the log are noticed within `path_check_interval`:
//!
//! - with `Duration::ZERO`, before the very next write, every time;
//! - with a longer interval, not before the interval has passed since the last look
//!   (lines follow the open file until then, and stay in the moved file) and at the
//!   first write after it.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use tracing_shared_file::SharedFile;

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
