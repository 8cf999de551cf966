//! The rotation policy of a worker's `SharedFile`, and its form in the worker's
//! environment.

use std::time::Duration;

/// The rotation policy options of a worker's `SharedFile`, beyond `max_bytes` and
/// `max_files`. The default is the library's default: none of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RotationPolicy {
    pub rotate_every: Option<tracing_shared_file::Period>,
    /// `utc_offset`, in seconds east of UTC.
    pub utc_offset_secs: i32,
    /// `naming(Naming::Timestamped)` rather than the default numbered names.
    pub timestamped: bool,
    pub max_age: Option<Duration>,
    pub max_total_bytes: Option<u64>,
    pub compress: bool,
}

impl RotationPolicy {
    /// Sets these options on `builder`.
    pub fn apply(&self, mut builder: tracing_shared_file::Builder) -> tracing_shared_file::Builder {
        use tracing_shared_file::{Naming, UtcOffset};
        if let Some(period) = self.rotate_every {
            builder = builder.rotate_every(period);
        }
        if self.utc_offset_secs != 0 {
            let offset =
                UtcOffset::from_whole_seconds(self.utc_offset_secs).expect("a valid UTC offset");
            builder = builder.utc_offset(offset);
        }
        if self.timestamped {
            builder = builder.naming(Naming::Timestamped);
        }
        if let Some(age) = self.max_age {
            builder = builder.max_age(age);
        }
        if let Some(bytes) = self.max_total_bytes {
            builder = builder.max_total_bytes(bytes);
        }
        if self.compress {
            builder = builder.compress(true);
        }
        builder
    }

    /// `key=value` pairs separated by commas, for an environment variable.
    pub(super) fn encode(&self) -> String {
        use tracing_shared_file::Period;
        let mut pairs = Vec::new();
        if let Some(period) = self.rotate_every {
            pairs.push(match period {
                Period::Minute => "every=minute".to_string(),
                Period::Hour => "every=hour".to_string(),
                Period::Day => "every=day".to_string(),
                Period::Week => "every=week".to_string(),
                // Milliseconds, so that an invalid period reaches the builder as it is.
                Period::Every(length) => format!("every_ms={}", length.as_millis()),
                other => panic!("no encoding for {other:?}"),
            });
        }
        pairs.push(format!("offset={}", self.utc_offset_secs));
        if self.timestamped {
            pairs.push("timestamped=1".to_string());
        }
        if let Some(age) = self.max_age {
            pairs.push(format!("max_age_ms={}", age.as_millis()));
        }
        if let Some(bytes) = self.max_total_bytes {
            pairs.push(format!("max_total_bytes={bytes}"));
        }
        if self.compress {
            pairs.push("compress=1".to_string());
        }
        pairs.join(",")
    }

    pub(super) fn decode(text: &str) -> Self {
        use tracing_shared_file::Period;
        let mut policy = RotationPolicy::default();
        for pair in text.split(',').filter(|pair| !pair.is_empty()) {
            let (key, value) = pair
                .split_once('=')
                .unwrap_or_else(|| panic!("bad policy pair {pair:?}"));
            let number = || -> u64 {
                value
                    .parse()
                    .unwrap_or_else(|_| panic!("policy {key} not a number"))
            };
            match key {
                "every" => {
                    policy.rotate_every = Some(match value {
                        "minute" => Period::Minute,
                        "hour" => Period::Hour,
                        "day" => Period::Day,
                        "week" => Period::Week,
                        _ => panic!("unknown period {value:?}"),
                    });
                }
                "every_ms" => {
                    policy.rotate_every = Some(Period::Every(Duration::from_millis(number())));
                }
                "offset" => policy.utc_offset_secs = value.parse().expect("offset not a number"),
                "timestamped" => policy.timestamped = true,
                "max_age_ms" => policy.max_age = Some(Duration::from_millis(number())),
                "max_total_bytes" => policy.max_total_bytes = Some(number()),
                "compress" => policy.compress = true,
                _ => panic!("unknown policy key {key:?}"),
            }
        }
        policy
    }
}
