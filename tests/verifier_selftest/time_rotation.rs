//! Time rotation: each file holds the lines of one period only, one archive per period,
//! stamps at period starts; early rotations, periods going back and lines of a later
//! period fail; boundaries follow the UTC offset.

use super::*;

const PERIOD_MS: u64 = 10_000;
const PERIOD: Duration = Duration::from_millis(PERIOD_MS);
/// `max_bytes` for time rotation alone.
const NO_SIZE_LIMIT: u64 = u64::MAX;

/// Records `0..n` of W0 and W1, one every `step_ms` each (W1 half a step after W0) from
/// 14:00:00, rotated as the library does: at each `PERIOD_MS` boundary, stamped with the
/// start of the period the archive covers; and when the next line would not fit
/// `max_bytes`, stamped with the rotation time (the next line's). With both, an archive
/// rotated at a boundary after size rotations in its period is stamped with its rotation
/// time too, so that names keep sorting by time.
fn timed_chain(n: u64, step_ms: u64, max_bytes: u64) -> Vec<Crafted> {
    timed_chain_rotating_early(n, step_ms, max_bytes, None)
}

/// `timed_chain`, with one extra rotation before W0's record `early` (as a process that
/// rotated on a stale size would make), stamped with its rotation time.
fn timed_chain_rotating_early(
    n: u64,
    step_ms: u64,
    max_bytes: u64,
    early: Option<u64>,
) -> Vec<Crafted> {
    let mut files = vec![Crafted::new(String::new())];
    let mut period = 0;
    let mut size_rotated_in_period = false;
    for seq in 0..n {
        for (k, writer) in [W0, W1].into_iter().enumerate() {
            let ms = seq * step_ms + k as u64 * step_ms / 2;
            let l = line_stamped(writer, seq, &timestamp(ms));
            let current = files.last_mut().unwrap();
            if !current.content.is_empty() {
                if ms / PERIOD_MS > period {
                    current.stamp_ms = if size_rotated_in_period {
                        ms
                    } else {
                        period * PERIOD_MS
                    };
                    size_rotated_in_period = false;
                    files.push(Crafted::new(String::new()));
                } else if (current.content.len() + l.len()) as u64 > max_bytes
                    || (early == Some(seq) && writer == W0)
                {
                    current.stamp_ms = ms;
                    current.full = early != Some(seq) || writer != W0;
                    size_rotated_in_period = true;
                    files.push(Crafted::new(String::new()));
                }
            }
            period = ms / PERIOD_MS;
            files.last_mut().unwrap().content.push_str(&l);
        }
    }
    files
}

/// Time-only rotation: 120 records each, every 700 ms, up to 14:01:23.650: 9 periods.
fn time_rotated_chain() -> Vec<Crafted> {
    let files = timed_chain(120, 700, NO_SIZE_LIMIT);
    assert_eq!(files.len(), 9);
    files
}

/// A verifier of a timestamped chain rotated every `PERIOD`.
fn timed_verifier(dir: &Path, max_bytes: u64, n: u64) -> Verifier {
    verifier_for(dir, max_bytes, n)
        .timestamped(true)
        .period(PERIOD, 0)
}

#[test]
fn a_time_rotated_chain_passes() {
    let files = time_rotated_chain();
    let dir = tempfile::tempdir().unwrap();
    write_stamped(dir.path(), &files);
    let report = timed_verifier(dir.path(), NO_SIZE_LIMIT, 120)
        .one_archive_per_period(true)
        .stamps_match_periods(true)
        .verify();
    report.assert_ok();
    assert_eq!((report.lines_verified, report.archives), (240, 8));
    assert_eq!(report.periods, 9, "{report}");

    // The same files under numbered names, gzipped but for the newest archive.
    let contents: Vec<String> = files.into_iter().map(|f| f.content).collect();
    let dir = tempfile::tempdir().unwrap();
    write_chain(dir.path(), &contents);
    for index in 2..=8 {
        gzip_file(&dir.path().join(format!("app.log.{index}")), false);
    }
    let report = verifier_for(dir.path(), NO_SIZE_LIMIT, 120)
        .period(PERIOD, 0)
        .one_archive_per_period(true)
        .verify();
    report.assert_ok();
    assert_eq!((report.periods, report.compressed), (9, 7), "{report}");
}

#[test]
fn a_time_and_size_rotated_chain_passes() {
    let files = timed_chain(120, 300, MAX_BYTES);
    let archives = &files[..files.len() - 1];
    // Both kinds of rotation, and several archives in one second (counters).
    assert!(archives.iter().any(|f| f.full) && archives.iter().any(|f| !f.full));
    let dir = tempfile::tempdir().unwrap();
    let names = write_stamped(dir.path(), &files);
    assert!(names.iter().any(|name| name.ends_with(".1")));
    let report = timed_verifier(dir.path(), MAX_BYTES, 120).verify();
    report.assert_ok();
    assert_eq!(
        (report.archives, report.periods),
        (files.len() - 1, 4),
        "{report}"
    );
}

#[test]
fn a_line_of_a_later_period_in_an_archive_fails() {
    let mut files = time_rotated_chain();
    // The first line of the 14:00:30 period lands at the end of the 14:00:20 archive.
    let first = files[3]
        .content
        .split_inclusive('\n')
        .next()
        .unwrap()
        .to_string();
    files[3].content = files[3].content.replacen(&first, "", 1);
    files[2].content.push_str(&first);
    let dir = tempfile::tempdir().unwrap();
    let names = write_stamped(dir.path(), &files);
    let report = timed_verifier(dir.path(), NO_SIZE_LIMIT, 120)
        .one_archive_per_period(true)
        .verify();
    assert_one_problem(
        &report,
        &format!(
            "{} holds lines of more than one period",
            dir.path().join(&names[2]).display()
        ),
    );
}

#[test]
fn a_line_stamped_before_its_boundary_passes_within_the_write_delay() {
    let mut files = time_rotated_chain();
    // The last line of the 14:00:20 period (stamped 14:00:29.750) was written after
    // 14:00:30: it opens the next file. Its lock wait, or a queue, explains it.
    let last = files[2]
        .content
        .split_inclusive('\n')
        .next_back()
        .unwrap()
        .to_string();
    assert!(last.starts_with("2026-11-27T14:00:29.750000Z"), "{last}");
    let kept = files[2].content.len() - last.len();
    files[2].content.truncate(kept);
    files[3].content.insert_str(0, &last);
    let dir = tempfile::tempdir().unwrap();
    let names = write_stamped(dir.path(), &files);
    let verifier = |delay| {
        timed_verifier(dir.path(), NO_SIZE_LIMIT, 120)
            .one_archive_per_period(true)
            .stamps_match_periods(true)
            .max_write_delay(delay)
            .verify()
    };
    verifier(Duration::from_secs(1)).assert_ok();
    let too_short = verifier(Duration::from_millis(100));
    assert_one_problem(
        &too_short,
        &format!(
            "{} holds lines of more than one period",
            dir.path().join(&names[3]).display()
        ),
    );
}

#[test]
fn two_archives_for_one_period_fail() {
    let mut files = time_rotated_chain();
    // The 14:00:40 period split in two, both stamped with its start (the second with
    // a counter).
    let content = files[4].content.clone();
    let middle = content[..content.len() / 2].rfind('\n').unwrap() + 1;
    files[4].content = content[middle..].to_string();
    files.insert(4, Crafted::new(content[..middle].to_string()));
    files[4].stamp_ms = files[5].stamp_ms;
    let dir = tempfile::tempdir().unwrap();
    let names = write_stamped(dir.path(), &files);
    assert_eq!(names[5], stamped_name(40, Some(1)));
    let (first, second) = (dir.path().join(&names[4]), dir.path().join(&names[5]));

    let report = timed_verifier(dir.path(), NO_SIZE_LIMIT, 120)
        .one_archive_per_period(true)
        .check_rotation_points(false)
        .verify();
    assert_one_problem(
        &report,
        &format!(
            "two files hold lines of the period starting 2026-11-27T14:00:40.000000000Z: {} and {}",
            first.display(),
            second.display()
        ),
    );
    // Without a size limit, the split is also an early rotation.
    let report = timed_verifier(dir.path(), NO_SIZE_LIMIT, 120).verify();
    assert_one_problem(&report, &format!("{} was rotated at", first.display()));
}

#[test]
fn an_early_rotation_under_time_and_size_rotation_fails() {
    // A rotation before W0's record 5 (14:00:01.500), with room to spare and in the
    // same period as the next file.
    let files = timed_chain_rotating_early(120, 300, MAX_BYTES, Some(5));
    let early = files
        .iter()
        .position(|f| f.stamp_ms == 1500 && !f.full)
        .unwrap();
    let next_line = line_stamped(W0, 5, &timestamp(1500));
    assert!(files[early + 1].content.starts_with(&next_line));
    assert!(files[early].content.len() + next_line.len() <= MAX_BYTES as usize);
    let dir = tempfile::tempdir().unwrap();
    let names = write_stamped(dir.path(), &files);
    let report = timed_verifier(dir.path(), MAX_BYTES, 120).verify();
    assert_one_problem(
        &report,
        &format!(
            "{} was rotated at {} bytes although the next event ({} bytes) fitted under max_bytes = {MAX_BYTES} and the next file starts no later period",
            dir.path().join(&names[early]).display(),
            files[early].content.len(),
            next_line.len()
        ),
    );
}

#[test]
fn a_chain_whose_periods_go_back_fails() {
    let files = time_rotated_chain();
    let dir = tempfile::tempdir().unwrap();
    let names = write_stamped(dir.path(), &files);
    // The 14:00:30 and 14:00:50 archives swap names.
    let (a, b) = (dir.path().join(&names[3]), dir.path().join(&names[5]));
    let swap = dir.path().join("swap");
    std::fs::rename(&a, &swap).unwrap();
    std::fs::rename(&b, &a).unwrap();
    std::fs::rename(&swap, &b).unwrap();
    // Without the rotation points, which the swap upsets too (and record order with them).
    let report = timed_verifier(dir.path(), NO_SIZE_LIMIT, 120)
        .check_rotation_points(false)
        .verify();
    assert_eq!(report.problems.len(), 2, "{report}");
    for (file, older) in [(&names[4], &names[3]), (&names[5], &names[4])] {
        let expected = format!(
            "the chain is out of order: {} holds lines of the period starting",
            dir.path().join(file).display()
        );
        assert!(
            report.problems.iter().any(|p| p.starts_with(&expected)
                && p.contains(&format!(
                    "than those of {}",
                    dir.path().join(older).display()
                ))),
            "{expected}\n{report}"
        );
    }
}

#[test]
fn a_stamp_that_is_not_its_period_start_fails() {
    let mut files = time_rotated_chain();
    files[3].stamp_ms += 1000;
    let dir = tempfile::tempdir().unwrap();
    let names = write_stamped(dir.path(), &files);
    let verifier = timed_verifier(dir.path(), NO_SIZE_LIMIT, 120).one_archive_per_period(true);
    verifier.clone().verify().assert_ok();
    let report = verifier.stamps_match_periods(true).verify();
    assert_one_problem(
        &report,
        &format!(
            "{} was rotated at a boundary but its stamp 2026-11-27T14:00:31.000000000Z is not the start of its lines' period (2026-11-27T14:00:30.000000000Z)",
            dir.path().join(&names[3]).display()
        ),
    );
}

/// A live file alone holding W0's records stamped `timestamps`, checked with `period`.
fn verify_live_file(timestamps: &[&str], period: Duration, utc_offset: i32) -> Report {
    let dir = tempfile::tempdir().unwrap();
    let content: String = (0..)
        .zip(timestamps)
        .map(|(seq, timestamp)| line_stamped(W0, seq, timestamp))
        .collect();
    std::fs::write(dir.path().join("app.log"), content).unwrap();
    Verifier::new(dir.path().join("app.log"), NO_SIZE_LIMIT, 100)
        .expect(W0, Expect::Exactly(timestamps.len() as u64))
        .period(period, utc_offset)
        .verify()
}

#[test]
fn line_timestamps_may_have_any_number_of_fraction_digits() {
    let report = verify_live_file(
        &[
            "2026-11-27T14:00:00Z",
            "2026-11-27T14:00:05.5Z",
            "2026-11-27T14:00:09.999999999Z",
            "2026-11-27T14:00:09.9999999999Z",
        ],
        PERIOD,
        0,
    );
    report.assert_ok();
    assert_eq!(report.periods, 1);
    // The boundary itself opens the next period.
    let report = verify_live_file(
        &["2026-11-27T14:00:09.999Z", "2026-11-27T14:00:10Z"],
        PERIOD,
        0,
    );
    assert_one_problem(&report, "holds lines of more than one period");
}

#[test]
fn day_and_week_boundaries_follow_the_utc_offset() {
    const DAY: Duration = Duration::from_secs(86_400);
    const WEEK: Duration = Duration::from_secs(7 * 86_400);
    const PLUS_ONE_HOUR: i32 = 3600;
    const MINUS_FIVE_HOURS: i32 = -5 * 3600;
    let same_period = |timestamps: &[&str], period, offset| {
        let report = verify_live_file(timestamps, period, offset);
        match report.problems.as_slice() {
            [] => true,
            [one] if one.contains("holds lines of more than one period") => false,
            _ => panic!("{report}"),
        }
    };
    // Days: local midnight is 23:00 UTC at +01:00, 05:00 UTC at -05:00.
    assert!(same_period(
        &["2026-11-27T00:00:00Z", "2026-11-27T23:59:59Z"],
        DAY,
        0
    ));
    assert!(!same_period(
        &["2026-11-27T22:59:59Z", "2026-11-27T23:00:00Z"],
        DAY,
        PLUS_ONE_HOUR
    ));
    assert!(same_period(
        &["2026-11-27T23:00:00Z", "2026-11-28T22:59:59Z"],
        DAY,
        PLUS_ONE_HOUR
    ));
    assert!(!same_period(
        &["2026-11-27T04:59:59Z", "2026-11-27T05:00:00Z"],
        DAY,
        MINUS_FIVE_HOURS
    ));
    assert!(same_period(
        &["2026-11-27T05:00:00Z", "2026-11-28T04:59:59Z"],
        DAY,
        MINUS_FIVE_HOURS
    ));
    // Weeks start on Monday (2026-11-30) at 00:00 local time.
    assert!(same_period(
        &["2026-11-23T00:00:00Z", "2026-11-29T23:59:59Z"],
        WEEK,
        0
    ));
    assert!(!same_period(
        &["2026-11-29T23:59:59Z", "2026-11-30T00:00:00Z"],
        WEEK,
        0
    ));
    assert!(same_period(
        &["2026-11-29T23:00:00Z", "2026-12-06T22:59:59Z"],
        WEEK,
        PLUS_ONE_HOUR
    ));
    assert!(!same_period(
        &["2026-11-29T22:59:59Z", "2026-11-29T23:00:00Z"],
        WEEK,
        PLUS_ONE_HOUR
    ));
    // Across a year's end and a leap day.
    assert!(same_period(
        &["2026-12-31T23:59:59Z", "2027-01-01T00:00:00Z"],
        WEEK,
        0
    ));
    assert!(!same_period(
        &["2028-02-28T23:59:59Z", "2028-02-29T00:00:00Z"],
        DAY,
        0
    ));
    assert!(same_period(
        &["2028-02-29T00:00:00Z", "2028-02-29T23:59:59Z"],
        DAY,
        0
    ));
}

/// A size rotation 3 s into the 14:00:00 period (its archive full), then a boundary
/// rotation at 14:00:10 of the file that size rotation began: W0 and W1 one line each at
/// every `pairs` time (W1 250 ms after W0). The boundary archive is stamped
/// `boundary_stamp_ms`; `max_bytes` is what makes the first archive full and not the
/// second.
fn size_then_boundary_chain(boundary_stamp_ms: u64) -> (Vec<Crafted>, u64) {
    let pairs: [&[u64]; 3] = [&[0, 500, 1000, 1500, 2000, 2500], &[3000, 6000], &[10_000]];
    let mut seq = 0;
    let mut files: Vec<Crafted> = pairs
        .iter()
        .map(|times| {
            let mut content = String::new();
            for &ms in *times {
                content.push_str(&line_stamped(W0, seq, &timestamp(ms)));
                content.push_str(&line_stamped(W1, seq, &timestamp(ms + 250)));
                seq += 1;
            }
            Crafted::new(content)
        })
        .collect();
    files[0].stamp_ms = 3000;
    files[0].full = true;
    files[1].stamp_ms = boundary_stamp_ms;
    let first_line = |file: &Crafted| file.content.split_inclusive('\n').next().unwrap().len();
    let max_bytes = (files[0].content.len() + first_line(&files[1]) - 1) as u64;
    assert!(files[1].content.len() + first_line(&files[2]) <= max_bytes as usize);
    (files, max_bytes)
}

#[test]
fn a_boundary_archive_that_a_size_rotation_began_passes_with_that_rotations_stamp_and_a_counter() {
    let (files, max_bytes) = size_then_boundary_chain(3000);
    let dir = tempfile::tempdir().unwrap();
    let names = write_stamped(dir.path(), &files);
    assert_eq!(names, [stamped_name(3, None), stamped_name(3, Some(1))]);
    let report = timed_verifier(dir.path(), max_bytes, 9)
        .stamps_match_periods(true)
        .verify();
    report.assert_ok();
    assert_eq!((report.archives, report.periods), (2, 2), "{report}");
}

#[test]
fn a_boundary_archive_that_a_size_rotation_began_fails_with_a_later_stamp() {
    let (files, max_bytes) = size_then_boundary_chain(4000);
    let dir = tempfile::tempdir().unwrap();
    let names = write_stamped(dir.path(), &files);
    assert_eq!(names, [stamped_name(3, None), stamped_name(4, None)]);
    let verifier = timed_verifier(dir.path(), max_bytes, 9);
    verifier.clone().verify().assert_ok();
    let report = verifier.stamps_match_periods(true).verify();
    assert_one_problem(
        &report,
        &format!(
            "{} was rotated at a boundary but its stamp 2026-11-27T14:00:04.000000000Z is not the start of its lines' period (2026-11-27T14:00:00.000000000Z)",
            dir.path().join(&names[1]).display()
        ),
    );
}
