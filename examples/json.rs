//! JSON lines in the shared file, with filtering: an `EnvFilter` (from `RUST_LOG`, `info`
//! when unset) decides what is logged at all; then a per-layer filter sends INFO and above
//! to the shared file, as JSON, and WARN and above to stderr, as plain text.
//!
//! ```text
//! cargo run --example json
//! RUST_LOG=warn cargo run --example json
//! ```
//!
//! At the end it reads the file back and checks that it holds one JSON object per line,
//! exactly the events that the filters let through.

use std::error::Error;
use std::process::ExitCode;

use tracing::Level;
use tracing_shared_file::{PanicSafe, SharedFile};
use tracing_subscriber::filter::{EnvFilter, LevelFilter};
use tracing_subscriber::fmt;
use tracing_subscriber::prelude::*;

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("json: {error}");
            ExitCode::FAILURE
        }
    }
}

/// `Ok(false)` when the file does not hold what was logged.
fn run() -> Result<bool, Box<dyn Error>> {
    // A fresh directory, kept afterwards so that you can look at the file.
    let dir = tempfile::Builder::new()
        .prefix("tracing-shared-file-json-")
        .tempdir()?
        .keep();
    let log = SharedFile::builder(dir.join("app.log")).build()?;
    println!("json: logging to {}", log.path().display());

    // What is logged at all: RUST_LOG, or INFO and above when it is unset.
    let env_filter = EnvFilter::builder()
        .with_default_directive(LevelFilter::INFO.into())
        .from_env_lossy();
    // The file gets JSON. A hand-built layer is not panic-safe by itself: wrapped in
    // `PanicSafe`, an event whose `Debug` impl panics is dropped whole instead of being
    // glued to the front of the next line.
    let file_layer = fmt::layer()
        .json()
        .with_writer(log.clone())
        .map_event_format(PanicSafe::new)
        .with_filter(LevelFilter::INFO);
    // The terminal gets only what needs attention.
    let stderr_layer = fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(LevelFilter::WARN);
    tracing_subscriber::registry()
        .with(env_filter)
        .with(file_layer)
        .with(stderr_layer)
        .init();

    // RUST_LOG may turn some of these off; the check below expects only what is on. No
    // level below INFO ever reaches the file, whatever RUST_LOG says.
    let mut expected = Vec::new();
    tracing::debug!(entries = 1024, "cache warmed");
    if tracing::enabled!(Level::INFO) {
        expected.push(("INFO", "user logged in"));
    }
    tracing::info!(user = "ada", "user logged in");
    if tracing::enabled!(Level::WARN) {
        expected.push(("WARN", "disk almost full"));
    }
    tracing::warn!(free_mib = 512, "disk almost full");
    if tracing::enabled!(Level::ERROR) {
        expected.push(("ERROR", "cannot reach the database"));
    }
    tracing::error!(attempts = 3, "cannot reach the database");

    // Read the file back: every line must be a JSON object, and the events must be the
    // expected ones, in order. No JSON library needed for three string fields.
    let text = std::fs::read_to_string(log.path())?;
    let mut found = Vec::new();
    for line in text.lines() {
        let is_object = line.starts_with('{') && line.ends_with('}');
        match (
            is_object,
            string_field(line, "timestamp"),
            string_field(line, "level"),
            string_field(line, "message"),
        ) {
            (true, Some(_), Some(level), Some(message)) => found.push((level, message)),
            _ => {
                println!("FAILED: not a JSON event line: {line:?}");
                return Ok(false);
            }
        }
    }
    if let Some(first) = text.lines().next() {
        println!("  first line  {first}");
    }
    let events: Vec<String> = found
        .iter()
        .map(|(level, message)| format!("{level} {message:?}"))
        .collect();
    println!(
        "  file        {} JSON lines [{}]",
        found.len(),
        events.join(", ")
    );
    if found != expected {
        println!("FAILED: expected {expected:?}");
        return Ok(false);
    }
    println!(
        "OK: the file holds INFO and above as JSON lines; WARN and above also went to stderr."
    );
    Ok(true)
}

/// The value of `"key":"value"` in a JSON line, for values without escapes.
fn string_field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let start = line.find(&format!("\"{key}\":\""))? + key.len() + 4;
    let value = &line[start..];
    let value = &value[..value.find('"')?];
    (!value.contains('\\')).then_some(value)
}
