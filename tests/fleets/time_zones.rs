//! `Period::Day` in `Europe/Berlin` (named, or as the system's zone through `TZ`) rotates
//! once per local midnight across both changes of daylight saving time, the 23-hour day in March and the 25-hour day in October:
//! none missed, none doubled, archive names in UTC, and every line in the file of its
//! local day.
//!
//! The writer is a real process (this test binary, re-run for `dst_writer_entry` with
//! `TSF_DST_CHILD` set) under libfaketime with a clock running 40 000 times faster than
//! real time from a Saturday evening, so that two days pass in four seconds. Without `faketime` (see
//! `.ci/install-test-tools`) the tests print "skipped" and pass.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jiff::Timestamp;
use jiff::tz::TimeZone;
use tracing_shared_file::{Naming, Period, SharedFile};

use crate::common;

const CHILD_ENV: &str = "TSF_DST_CHILD";
const ZONE: &str = "Europe/Berlin";
/// Fake seconds per real second.
const SPEED: u64 = 40_000;
/// How long the writer runs, in real time: 44 fake hours.
const RUN: Duration = Duration::from_secs(4);
/// A line's time is read just before its write takes the lock: at this speed the clock
/// may move on by this much (fake seconds) in between.
const SLACK: i64 = 120;

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Child side: writes `t=<clock> s=<seq>` once per real millisecond for [`RUN`]. It
/// spins rather than sleeps: libfaketime's speed-up makes `nanosleep` fail.
#[test]
fn dst_writer_entry() {
    let Some(path) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let builder = SharedFile::builder(path)
        .max_bytes(u64::MAX)
        .max_files(1000)
        .naming(Naming::Timestamped)
        .rotate_every(Period::Day);
    // The system's zone is the one `TZ` names.
    let builder = match std::env::var("TZ").as_deref() {
        Ok(ZONE) => builder.system_time_zone(),
        _ => builder.time_zone(ZONE),
    };
    let log = builder.build().unwrap();
    let end = Instant::now() + RUN;
    let mut seq = 0u64;
    while Instant::now() < end {
        let line = format!("t={} s={seq}\n", unix_now());
        (&log).write_all(line.as_bytes()).unwrap();
        seq += 1;
        let next = Instant::now() + Duration::from_millis(1);
        while Instant::now() < next {}
    }
    let stats = log.stats();
    println!(
        "\nSTATS lines={seq} rotations={} rotation_errors={}",
        stats.rotations, stats.rotation_errors
    );
}

/// The local midnights in `ZONE` after `from` and not after `to`.
fn midnights(from: i64, to: i64) -> Vec<i64> {
    let tz = TimeZone::get(ZONE).unwrap();
    let mut date = Timestamp::from_second(from)
        .unwrap()
        .to_zoned_datetime(tz.clone())
        .date();
    let mut found = Vec::new();
    loop {
        date = date.tomorrow().unwrap();
        let midnight = date.to_zoned_datetime(tz.clone()).unwrap();
        let at = midnight.timestamp().as_second();
        if at > to {
            return found;
        }
        found.push(at);
    }
}

/// One file of the log: the stamp in its name (`None` for the live file), and its lines'
/// times and sequences.
type LogFile = (Option<String>, Vec<(i64, u64)>);

/// The log's files oldest first (archives by name, then the live file).
fn files(log: &Path) -> Vec<LogFile> {
    let mut names: Vec<String> = fs::read_dir(log.parent().unwrap())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.starts_with("app.log.") && name != "app.log.lock")
        .collect();
    names.sort();
    let mut paths: Vec<(Option<String>, PathBuf)> = names
        .into_iter()
        .map(|name| {
            (
                Some(name["app.log.".len()..].to_owned()),
                log.with_file_name(name),
            )
        })
        .collect();
    paths.push((None, log.to_path_buf()));
    paths
        .into_iter()
        .map(|(stamp, path)| {
            let text = fs::read_to_string(path).unwrap();
            let lines = text
                .lines()
                .map(|line| {
                    let (t, s) = line
                        .strip_prefix("t=")
                        .and_then(|rest| rest.split_once(" s="))
                        .unwrap_or_else(|| panic!("not a whole line: {line:?}"));
                    (t.parse().unwrap(), s.parse().unwrap())
                })
                .collect();
            (stamp, lines)
        })
        .collect()
}

/// Runs the writer from `start` (a local time in `tz`, the writer's `TZ`: with
/// [`ZONE`], the writer counts in the system's zone).
fn run_across(start: &str, tz: &str) {
    let works = Command::new("faketime")
        .args(["-f", "+0", "true"])
        .status()
        .is_ok_and(|status| status.success());
    if !works {
        eprintln!("skipped: faketime is not installed (run .ci/install-test-tools)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let output = Command::new("faketime")
        .args(["-f", &format!("@{start} x{SPEED}")])
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            &common::entry!(dst_writer_entry),
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &log)
        .env("TZ", tz)
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stats = stdout
        .lines()
        .find_map(|l| l.strip_prefix("STATS "))
        .unwrap();
    let files = files(&log);
    let all: Vec<(i64, u64)> = files.iter().flat_map(|(_, lines)| lines.clone()).collect();
    // Every line once, in order along the files.
    let seqs: Vec<u64> = all.iter().map(|&(_, s)| s).collect();
    assert_eq!(seqs, (0..seqs.len() as u64).collect::<Vec<_>>(), "{stats}");
    let (first, last) = (all[0].0, all[all.len() - 1].0);
    let crossed = midnights(first, last);
    assert_eq!(crossed.len(), 2, "the run should cross two local midnights");
    // One rotation per local midnight: the first archive began with the run, each later
    // file at a midnight, named in UTC.
    assert_eq!(
        files.len(),
        crossed.len() + 1,
        "{stats}: {:?}",
        names(&files)
    );
    assert!(stats.ends_with(&format!("rotations={} rotation_errors=0", crossed.len())));
    for (file, &midnight) in files[1..files.len() - 1].iter().zip(&crossed) {
        let expected = Timestamp::from_second(midnight)
            .unwrap()
            .strftime("%Y-%m-%dT%H-%M-%SZ")
            .to_string();
        assert_eq!(file.0.as_deref(), Some(&expected[..]));
    }
    // Every line in the file of its local day.
    let bounds: Vec<i64> = crossed.clone();
    for (index, (_, lines)) in files.iter().enumerate() {
        let lower = index.checked_sub(1).map_or(i64::MIN, |i| bounds[i]);
        let upper = bounds.get(index).copied().unwrap_or(i64::MAX);
        for &(t, s) in lines {
            assert!(
                t >= lower.saturating_sub(SLACK) && t < upper.saturating_add(SLACK),
                "line {s} at {t} in file {index} [{lower}, {upper})"
            );
        }
    }
    assert_eq!(crossed[1] - crossed[0], day_length(start));
}

/// The length of the second local day of the run: 23 hours in March, 25 in October.
fn day_length(start: &str) -> i64 {
    if start.contains("-03-") {
        23 * 3600
    } else {
        25 * 3600
    }
}

fn names(files: &[LogFile]) -> Vec<Option<String>> {
    files.iter().map(|(name, _)| name.clone()).collect()
}

#[test]
fn one_rotation_per_local_midnight_across_the_23_hour_day() {
    run_across("2026-03-28 20:00:00", "UTC");
}

#[test]
fn one_rotation_per_local_midnight_across_the_25_hour_day_in_the_systems_zone() {
    run_across("2026-10-24 20:00:00", ZONE);
}
