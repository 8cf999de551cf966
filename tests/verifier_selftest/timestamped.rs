//! Timestamped names: a chain with counters and gzipped archives passes, one out of
//! order fails, look-alikes are ignored, and too many archives fail.

use super::*;

#[test]
fn a_timestamped_chain_with_counters_passes() {
    let contents = correct_chain(40);
    assert!(contents.len() > 16, "the fixture must rotate often");
    // One archive at 14:00:00, twelve in the next second (counters up to .11, which
    // sort after .2 by number, not by name), the rest one second later.
    let files: Vec<Crafted> = contents
        .into_iter()
        .enumerate()
        .map(|(i, content)| Crafted {
            stamp_ms: match i {
                0 => 0,
                1..=12 => 1000,
                _ => 2000,
            },
            ..Crafted::new(content)
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let names = write_stamped(dir.path(), &files);
    assert!(names.contains(&stamped_name(1, Some(11))));
    let report = verifier_for(dir.path(), MAX_BYTES, 40)
        .timestamped(true)
        .verify();
    report.assert_ok();
    assert_eq!(report.lines_verified, 80);
    assert_eq!(report.archives, files.len() - 1);
    assert_eq!(report.files.len(), files.len());

    // With the numbered naming the same directory holds no archives at all.
    let numbered = verifier_for(dir.path(), MAX_BYTES, 40).verify();
    assert_eq!(numbered.archives, 0, "{numbered}");
}

#[test]
fn timestamped_gzipped_archives_and_pairs_pass() {
    let files: Vec<Crafted> = correct_chain(40)
        .into_iter()
        .enumerate()
        .map(|(i, content)| Crafted {
            stamp_ms: i as u64 * 1000,
            ..Crafted::new(content)
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let names = write_stamped(dir.path(), &files);
    // All compressed but the newest; one left as a pair, one with a counter name.
    for (i, name) in names.iter().enumerate().rev().skip(1) {
        gzip_file(&dir.path().join(name), i == 3);
    }
    let report = verifier_for(dir.path(), MAX_BYTES, 40)
        .timestamped(true)
        .verify();
    report.assert_ok();
    assert_eq!(report.lines_verified, 80);
    assert_eq!(
        (report.archives, report.compressed),
        (names.len(), names.len() - 1)
    );
}

#[test]
fn a_timestamped_chain_out_of_order_fails() {
    let files: Vec<Crafted> = correct_chain(40)
        .into_iter()
        .enumerate()
        .map(|(i, content)| Crafted {
            stamp_ms: i as u64 * 1000,
            ..Crafted::new(content)
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let names = write_stamped(dir.path(), &files);
    let verifier = verifier_for(dir.path(), MAX_BYTES, 40).timestamped(true);
    verifier.verify().assert_ok();
    // Swap two neighbouring archives' names, as a stamp that sorts wrong would: each
    // writer's records then go back once.
    let (a, b) = (dir.path().join(&names[4]), dir.path().join(&names[5]));
    let swap = dir.path().join("swap");
    std::fs::rename(&a, &swap).unwrap();
    std::fs::rename(&b, &a).unwrap();
    std::fs::rename(&swap, &b).unwrap();
    let out_of_order = |report: &Report| -> Vec<String> {
        let marker = "the files are out of order";
        let found: Vec<String> = report
            .problems
            .iter()
            .filter(|p| p.ends_with(marker))
            .cloned()
            .collect();
        assert_eq!(report.out_of_order, found.len() as u64, "{report}");
        found
    };
    let expected_in = format!(
        " in {} comes after its seq ",
        dir.path().join(&names[5]).display()
    );
    let report = verifier.clone().verify();
    let found = out_of_order(&report);
    assert_eq!(found.len(), 2, "{report}");
    assert!(found.iter().all(|p| p.contains(&expected_in)), "{report}");

    // On its own, without the rotation points (which the swap upsets too).
    let only_order = verifier.clone().check_rotation_points(false);
    let report = only_order.check_record_order(true).verify();
    assert_eq!(out_of_order(&report), report.problems, "{report}");
    assert_eq!(report.problems.len(), 2, "{report}");

    // Off by default along with the rotation points (files moved by hand).
    verifier.check_rotation_points(false).verify().assert_ok();
}

#[test]
fn look_alikes_are_ignored() {
    // Each look-alike holds a copy of a real record and a garbled line: read, it would
    // show as a duplicate and a torn line.
    let decoy = format!("{}not a record\n", line(W0, 0));
    let look_alikes = [
        "app.log.bak",
        "app.log.2026-01-01.txt",
        "app.log.1x",
        "app.log.01",
        "app.log.0",
        "app.log.+1",
        "app.log.-1",
        "app.log.",
        "app.log.gz",
        "app.log.1.gz.gz",
        "app.log.1.tmp",
        "app.log.2026-11-27T14-00-00Z.0",
        "app.log.2026-11-27T14-00-00Z.01",
        "app.log.2026-11-27T14-00-00Z.1x",
        "app.log.2026-11-27T14-00-00Z.gz.1",
        "app.log.2026-11-27T14-00-00Z.gz.tmp",
        "app.log.2026-11-27T14:00:00Z",
        "app.log.2026-11-27T14-00-00",
        "app.log.2026-11-27T14-00-00.5Z",
        "app.log.2026-13-01T00-00-00Z",
        "app.log.2026-02-29T00-00-00Z",
        "app.log.2026-11-27T24-00-00Z",
        "app.log.20261127T140000Z",
        "other.log.1",
        "other.log.2026-11-27T14-00-00Z",
        ".app.log.2026-11-27T14-00-00Z.gz",
        ".app.log.1",
    ];
    let contents = correct_chain(40);
    let numbered = tempfile::tempdir().unwrap();
    write_chain(numbered.path(), &contents);
    let stamped_files: Vec<Crafted> = contents
        .iter()
        .enumerate()
        .map(|(i, content)| Crafted {
            stamp_ms: 3000 + i as u64 * 1000,
            ..Crafted::new(content.clone())
        })
        .collect();
    let stamped = tempfile::tempdir().unwrap();
    write_stamped(stamped.path(), &stamped_files);
    for dir in [numbered.path(), stamped.path()] {
        for name in look_alikes {
            std::fs::write(dir.join(name), &decoy).unwrap();
        }
    }
    // Each naming also ignores the other's archives.
    write_stamped(numbered.path(), &stamped_files[..3]);
    write_chain(stamped.path(), &contents[..2]);
    std::fs::write(
        stamped.path().join("app.log"),
        &contents[contents.len() - 1],
    )
    .unwrap();
    std::fs::write(
        numbered.path().join("app.log"),
        &contents[contents.len() - 1],
    )
    .unwrap();

    for (dir, timestamped) in [(numbered.path(), false), (stamped.path(), true)] {
        let report = verifier_for(dir, MAX_BYTES, 40)
            .timestamped(timestamped)
            .verify();
        report.assert_ok();
        assert_eq!(report.lines_verified, 80, "{report}");
        assert_eq!(report.archives, contents.len() - 1, "{report}");
    }
}

#[test]
fn too_many_timestamped_archives_fail() {
    let files: Vec<Crafted> = correct_chain(40)
        .into_iter()
        .enumerate()
        .map(|(i, content)| Crafted {
            stamp_ms: i as u64 * 1000,
            ..Crafted::new(content)
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let names = write_stamped(dir.path(), &files);
    let verifier = |max_files| {
        Verifier::new(dir.path().join("app.log"), MAX_BYTES, max_files)
            .expect(W0, Expect::Exactly(40))
            .expect(W1, Expect::Exactly(40))
            .timestamped(true)
            .verify()
    };
    verifier(names.len()).assert_ok();
    let report = verifier(names.len() - 1);
    assert_one_problem(
        &report,
        &format!(
            "{} archives exist, 1 beyond max_files = {}",
            names.len(),
            names.len() - 1
        ),
    );
}
