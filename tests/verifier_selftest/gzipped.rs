//! Gzipped archives are checked by their uncompressed content: oversized, corrupt, or a
//! plain and gzipped pair that differ fail; an identical pair is one archive.

use super::*;

#[test]
fn numbered_gzipped_archives_are_checked_by_their_uncompressed_content() {
    let files = correct_chain(40);
    let dir = tempfile::tempdir().unwrap();
    write_chain(dir.path(), &files);
    let archives = files.len() - 1;
    // Every archive but the newest compressed, as `delaycompress` would leave them.
    for index in 2..=archives {
        gzip_file(&dir.path().join(format!("app.log.{index}")), false);
    }
    let report = verifier_for(dir.path(), MAX_BYTES, 40).verify();
    // Compressed sizes would fail the rotation points: each archive had room to spare.
    report.assert_ok();
    assert_eq!(report.lines_verified, 80);
    assert_eq!(
        (report.archives, report.compressed),
        (archives, archives - 1)
    );
    let plain_bytes: usize = files.iter().map(String::len).sum();
    assert_eq!(report.bytes_total, plain_bytes as u64);
}

#[test]
fn an_oversized_gzipped_archive_fails() {
    let mut files = correct_chain(40);
    let moved = files.remove(2);
    files[1].push_str(&moved);
    let dir = tempfile::tempdir().unwrap();
    write_chain(dir.path(), &files);
    let oversized = files.len() - 2;
    let path = dir.path().join(format!("app.log.{oversized}"));
    gzip_file(&path, false);
    assert!(
        std::fs::metadata(format!("{}.gz", path.display()))
            .unwrap()
            .len()
            <= MAX_BYTES
    );
    let report = verifier_for(dir.path(), MAX_BYTES, 40).verify();
    assert_eq!(report.oversized, 1, "{report}");
    assert_one_problem(&report, "over max_bytes");
}

#[test]
fn an_identical_plain_and_gzipped_pair_is_one_archive() {
    let files = correct_chain(40);
    let dir = tempfile::tempdir().unwrap();
    write_chain(dir.path(), &files);
    gzip_file(&dir.path().join("app.log.3"), true);
    let report = verifier_for(dir.path(), MAX_BYTES, 40).verify();
    report.assert_ok();
    assert_eq!(report.lines_verified, 80, "the pair is read once");
    assert_eq!((report.archives, report.compressed), (files.len() - 1, 1));
}

#[test]
fn a_plain_and_gzipped_pair_that_differ_fails() {
    let files = correct_chain(40);
    let dir = tempfile::tempdir().unwrap();
    write_chain(dir.path(), &files);
    let plain = dir.path().join("app.log.3");
    let content = std::fs::read_to_string(&plain).unwrap();
    let without_last_line = content[..content.trim_end().rfind('\n').unwrap() + 1].to_string();
    let gz = dir.path().join("app.log.3.gz");
    std::fs::write(&gz, gzip(without_last_line.as_bytes())).unwrap();
    let report = verifier_for(dir.path(), MAX_BYTES, 40).verify();
    assert_one_problem(
        &report,
        &format!("{} and {} differ", plain.display(), gz.display()),
    );
}

#[test]
fn a_corrupt_gz_fails() {
    let files = correct_chain(40);
    let archive = files[files.len() - 4].as_bytes();
    let whole = gzip(archive);
    let corruptions: [(&str, Vec<u8>); 5] = [
        ("truncated in the middle", whole[..whole.len() / 2].to_vec()),
        ("without its trailer", whole[..whole.len() - 8].to_vec()),
        ("a wrong checksum", {
            let mut bad = whole.clone();
            let crc = bad.len() - 8;
            bad[crc] ^= 0xff;
            bad
        }),
        ("empty", Vec::new()),
        ("not gzip at all", archive.to_vec()),
    ];
    for (what, bytes) in corruptions {
        for keep_plain in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            write_chain(dir.path(), &files);
            let plain = dir.path().join("app.log.3");
            let gz = dir.path().join("app.log.3.gz");
            std::fs::write(&gz, &bytes).unwrap();
            if !keep_plain {
                std::fs::remove_file(&plain).unwrap();
            }
            let report = verifier_for(dir.path(), MAX_BYTES, 40).verify();
            let corrupt = format!("{} is corrupt", gz.display());
            assert!(
                report.problems.iter().any(|p| p.starts_with(&corrupt)),
                "a .gz {what} (plain kept: {keep_plain}) must be corrupt:\n{report}"
            );
            if keep_plain {
                // The plain twin still holds every line: the corruption is the one problem.
                assert_one_problem(&report, &corrupt);
            } else {
                let lines = files[files.len() - 4].lines().count() as u64;
                assert_eq!(report.lost, lines, "{what}: its records are lost\n{report}");
            }
        }
    }
}
