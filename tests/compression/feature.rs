//! `compress` is discoverable without its cargo feature: a program that depends on the
//! crate without it still compiles `.compress(true)`, and `build()` refuses it with
//! `ErrorKind::CompressionNeedsFeature`, whose message says which feature to enable and
//! how, creating nothing; `compress(false)` builds as usual.
//!
//! The tests of this crate always have the feature (the dev-dependency turns it on), so
//! this builds a small program against the crate as a user would, without it.

use std::path::Path;
use std::process::Command;

const PROGRAM: &str = r#"
use tracing_shared_file::{ErrorKind, Naming, SharedFile};

fn main() {
    let dir = std::env::args().nth(1).expect("a directory");
    let log = std::path::Path::new(&dir).join("app.log");
    let error = SharedFile::builder(&log)
        .naming(Naming::Timestamped)
        .compress(true)
        .build()
        .expect_err("compress(true) without the feature");
    assert_eq!(error.kind(), ErrorKind::CompressionNeedsFeature);
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "a refused build creates nothing");
    println!("{error}");
    SharedFile::builder(&log)
        .naming(Naming::Timestamped)
        .compress(false)
        .build()
        .expect("compress(false) without the feature");
}
"#;

fn write_program(project: &Path) {
    let crate_dir = env!("CARGO_MANIFEST_DIR");
    std::fs::create_dir_all(project.join("src")).unwrap();
    std::fs::write(
        project.join("Cargo.toml"),
        format!(
            "[package]\nname = \"without-compress\"\nversion = \"0.0.0\"\nedition = \"2024\"\n\n\
             [dependencies]\ntracing-shared-file = {{ path = {crate_dir:?} }}\n\n[workspace]\n"
        ),
    )
    .unwrap();
    // The versions this crate is tested with, so that nothing needs the network.
    std::fs::copy(
        Path::new(crate_dir).join("Cargo.lock"),
        project.join("Cargo.lock"),
    )
    .unwrap();
    std::fs::write(project.join("src/main.rs"), PROGRAM).unwrap();
}

#[test]
fn compress_without_the_feature_compiles_and_build_names_the_feature() {
    // Kept between runs, so that only the first one builds the dependencies.
    let project = Path::new(env!("CARGO_TARGET_TMPDIR")).join("without-compress");
    write_program(&project);
    let logs = tempfile::tempdir().unwrap();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(&project)
        .args(["run", "--quiet", "--offline", "--"])
        .arg(logs.path())
        .env_remove("RUSTFLAGS")
        .output()
        .expect("run cargo");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the program failed: {}\n{stdout}\n{stderr}",
        output.status
    );
    let log = logs.path().join("app.log");
    assert_eq!(
        stdout.trim(),
        format!(
            "log file `{}`: compress(true) needs the `compress` cargo feature of \
             tracing-shared-file: add features = [\"compress\"] to its line in Cargo.toml, or \
             run `cargo add tracing-shared-file --features compress`",
            log.display()
        )
    );
}
