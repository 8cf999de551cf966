//! A correct numbered chain passes; each defect the verifier exists to catch fails it:
//! a dropped, duplicated, interleaved, unprefixed, partial or garbled line, an oversized
//! file, an early rotation, a file beyond `max_files`, a gap in the numbers; and the losses
//! a killed writer or retention may cause are told apart from real ones.

use super::*;

#[test]
fn a_correct_chain_passes() {
    let files = correct_chain(40);
    assert!(files.len() > 5, "the fixture must rotate");
    let report = verify(&files, 40);
    report.assert_ok();
    assert_eq!(report.lines_verified, 80);
    assert_eq!(report.archives, files.len() - 1);
}

#[test]
fn a_dropped_line_fails() {
    let mut files = correct_chain(40);
    remove_line(&mut files, &line(W1, 10));
    let report = verify(&files, 40);
    assert!(!report.is_ok());
    assert_eq!(report.lost, 1, "{report}");
}

#[test]
fn a_duplicated_line_fails() {
    let mut files = correct_chain(40);
    let last = files.len() - 1;
    files[last].push_str(&line(W0, 3));
    let report = verify(&files, 40);
    assert_eq!(report.duplicated, 1, "{report}");
}

#[test]
fn an_interleaved_line_fails() {
    let mut files = correct_chain(3);
    // Another writer's line lands in the middle of this one, as unlocked appends can do.
    let a = line(W0, 0);
    let b = line(W1, 0);
    let torn = format!("{}{}{}", &a[..60], b, &a[60..]);
    files[0] = files[0].replacen(&a, "", 1).replacen(&b, &torn, 1);
    let report = verify(&files, 3);
    assert!(report.torn >= 2, "{report}");
    assert!(!report.is_ok());
}

#[test]
fn a_line_without_the_fmt_prefix_fails() {
    let mut files = correct_chain(3);
    let good = line(W0, 1);
    files[0] = files[0].replacen(&good, &good[good.find("REC").unwrap()..], 1);
    let report = verify(&files, 3);
    assert_eq!(report.torn, 1, "{report}");
}

#[test]
fn a_partial_last_line_fails() {
    let mut files = correct_chain(3);
    let last = files.len() - 1;
    files[last].push_str("2026-11-26T15:00:00.000000Z  INFO workload: REC p=0 t=0 s=");
    let report = verify(&files, 3);
    assert_eq!(report.torn, 1, "{report}");
}

#[test]
fn a_garbled_payload_fails() {
    let mut files = correct_chain(3);
    let good = line(W0, 1);
    let bad = good.replacen(" END", "Z END", 1);
    files[0] = files[0].replacen(&good, &bad, 1);
    let report = verify(&files, 3);
    assert_eq!(report.torn, 1, "{report}");
    assert_eq!(report.lost, 1, "{report}");
}

#[test]
fn an_oversized_file_fails() {
    let mut files = correct_chain(40);
    let moved = files.remove(2);
    files[1].push_str(&moved);
    let report = verify(&files, 40);
    assert_eq!(report.oversized, 1, "{report}");
}

#[test]
fn a_lone_oversized_event_is_allowed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("app.log.1"), line(W0, 0)).unwrap();
    std::fs::write(dir.path().join("app.log"), line(W0, 1)).unwrap();
    let report = Verifier::new(dir.path().join("app.log"), 10, 5)
        .expect(W0, Expect::Exactly(2))
        .verify();
    report.assert_ok();
}

#[test]
fn an_early_rotation_fails() {
    // A process that rotated on a stale size leaves an archive with room to spare.
    let mut files = correct_chain(40);
    let first = files[3].split_inclusive('\n').next().unwrap().to_string();
    files[3] = files[3].replacen(&first, "", 1);
    files.insert(3, first);
    let report = verify(&files, 40);
    assert!(!report.is_ok());
    assert!(
        report.problems.iter().any(|p| p.contains("was rotated at")),
        "{report}"
    );
}

#[test]
fn a_file_beyond_max_files_fails() {
    let files = correct_chain(40);
    let dir = tempfile::tempdir().unwrap();
    write_chain(dir.path(), &files);
    let report = Verifier::new(dir.path().join("app.log"), MAX_BYTES, files.len() - 2)
        .expect(W0, Expect::Exactly(40))
        .expect(W1, Expect::Exactly(40))
        .verify();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains("beyond max_files")),
        "{report}"
    );
}

#[test]
fn a_gap_in_the_archive_numbers_fails() {
    let files = correct_chain(40);
    let dir = tempfile::tempdir().unwrap();
    write_chain(dir.path(), &files);
    std::fs::rename(dir.path().join("app.log.2"), dir.path().join("app.log.99")).unwrap();
    let report = Verifier::new(dir.path().join("app.log"), MAX_BYTES, 100)
        .expect(W0, Expect::Exactly(40))
        .expect(W1, Expect::Exactly(40))
        .verify();
    assert!(
        report.problems.iter().any(|p| p.contains("not numbered")),
        "{report}"
    );
}

#[test]
fn a_killed_writer_may_lose_only_its_unacknowledged_tail() {
    let files = correct_chain(40);
    let mut without_tail = files.clone();
    remove_line(&mut without_tail, &line(W1, 39));
    let dir = tempfile::tempdir().unwrap();
    write_chain(dir.path(), &without_tail);
    let verifier = |acknowledged| {
        Verifier::new(dir.path().join("app.log"), MAX_BYTES, 100)
            .expect(W0, Expect::Exactly(40))
            .expect(W1, Expect::Prefix { acknowledged })
            .verify()
    };
    verifier(39).assert_ok();
    assert_eq!(verifier(40).lost, 1, "an acknowledged record is missing");

    // A gap in the middle is a loss even for a killed writer.
    let mut with_gap = files;
    remove_line(&mut with_gap, &line(W1, 5));
    let dir = tempfile::tempdir().unwrap();
    write_chain(dir.path(), &with_gap);
    let report = Verifier::new(dir.path().join("app.log"), MAX_BYTES, 100)
        .expect(W0, Expect::Exactly(40))
        .expect(W1, Expect::Prefix { acknowledged: 0 })
        .check_rotation_points(false)
        .verify();
    assert_eq!(report.lost, 1, "{report}");
}

#[test]
fn deleted_oldest_archives_may_take_only_the_oldest_records() {
    let files = correct_chain(40);
    let dir = tempfile::tempdir().unwrap();
    // The two oldest archives are gone, as max_files would have it.
    write_chain(dir.path(), &files[2..]);
    let verifier = |expect| {
        Verifier::new(dir.path().join("app.log"), MAX_BYTES, 100)
            .expect(W0, expect)
            .expect(W1, expect)
            .verify()
    };
    verifier(Expect::Newest { total: 40 }).assert_ok();
    assert!(verifier(Expect::Exactly(40)).lost > 0);

    // A gap after the oldest record present is still a loss.
    let mut with_gap = files[2..].to_vec();
    remove_line(&mut with_gap, &line(W0, 30));
    let dir = tempfile::tempdir().unwrap();
    write_chain(dir.path(), &with_gap);
    let report = Verifier::new(dir.path().join("app.log"), MAX_BYTES, 100)
        .expect(W0, Expect::Newest { total: 40 })
        .expect(W1, Expect::Newest { total: 40 })
        .check_rotation_points(false)
        .verify();
    assert_eq!(report.lost, 1, "{report}");
}
