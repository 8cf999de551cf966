//! Code that logs with the `log` crate's macros (`log::info!`), as many libraries do,
//! ending up in the shared file next to the `tracing` events, through `log.layer()`.
//!
//! ```text
//! cargo run --example log_crate
//! ```
//!
//! The bridge is tracing-subscriber's `tracing-log` feature: with it, `init()` also
//! installs `tracing_log::LogTracer` as the `log` crate's logger, which turns every `log`
//! record into a `tracing` event, and the `fmt` layers show a record's own target (its
//! module) rather than `log`. In `Cargo.toml`:
//!
//! ```toml
//! tracing-subscriber = { version = "0.3", features = ["fmt", "tracing-log"] }
//! ```
//!
//! Without the `init()` of tracing-subscriber, call `tracing_log::LogTracer::init()`
//! yourself. At the end the example reads the file back and checks every line.

use std::error::Error;
use std::process::ExitCode;

use tracing_shared_file::SharedFile;
use tracing_subscriber::prelude::*;

/// A library that knows only the `log` crate.
mod database {
    pub fn connect(address: &str) {
        log::info!("connected to {address}");
        log::warn!("pool size {} is below the recommended {}", 2, 8);
        // Below the level the subscriber enables: `log` itself filters it out.
        log::trace!("handshake bytes: 0x16 0x03 0x01");
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("log_crate: {error}");
            ExitCode::FAILURE
        }
    }
}

/// `Ok(false)` when the file does not hold exactly what was logged.
fn run() -> Result<bool, Box<dyn Error>> {
    // A fresh directory, kept afterwards so that you can look at the file.
    let dir = tempfile::Builder::new()
        .prefix("tracing-shared-file-log-crate-")
        .tempdir()?
        .keep();
    let shared_file = SharedFile::builder(dir.join("app.log")).build()?;
    println!("log_crate: logging to {}", shared_file.path().display());

    // `init()` installs the subscriber, and, with the `tracing-log` feature, the `log`
    // bridge, whose level is the most the subscriber enables: DEBUG here.
    tracing_subscriber::registry()
        .with(
            shared_file
                .layer()
                .with_filter(tracing_subscriber::filter::LevelFilter::DEBUG),
        )
        .init();

    tracing::info!("starting");
    database::connect("db.internal:5432");
    tracing::info!(workers = 4, "ready");

    // Every line is `<timestamp>  LEVEL pid=<pid> <target>: <message>`; the `log` records
    // carry their own module as the target.
    let pid = std::process::id();
    let expected = [
        format!(" INFO pid={pid} log_crate: starting"),
        format!(" INFO pid={pid} log_crate::database: connected to db.internal:5432"),
        format!(" WARN pid={pid} log_crate::database: pool size 2 is below the recommended 8"),
        format!(" INFO pid={pid} log_crate: ready workers=4"),
    ];
    let text = std::fs::read_to_string(shared_file.path())?;
    // The timestamp is always 27 characters: `2026-11-27T14:44:24.556514Z`.
    let found: Vec<&str> = text
        .lines()
        .map(|line| line.get(28..).unwrap_or(line))
        .collect();
    for line in text.lines() {
        println!("  {line}");
    }
    if found != expected {
        println!("FAILED: expected, after the timestamps:");
        for line in &expected {
            println!("  {line}");
        }
        return Ok(false);
    }
    println!("OK: the `log` records are in the shared file, each with its module as target.");
    Ok(true)
}
