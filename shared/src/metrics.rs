//! CloudWatch metrics as Embedded Metric Format (EMF) lines: one JSON object per line on
//! stdout, which Lambda ships to CloudWatch Logs and CloudWatch turns into metrics, with
//! no API call and no agent. The template's alarms and dashboard read these names.
//!
//! Lines are written directly, not through `tracing`, because EMF needs `_aws` at the top
//! level of the object. Namespace `reco`, no dimensions (one series per metric).

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::Value;
#[cfg(test)]
use serde_json::json;

pub const NAMESPACE: &str = "reco";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Units the guard admitted for one YouTube call (`Sum` = units spent).
    QuotaUnitsUsed,
    /// `search.list` calls the guard admitted.
    QuotaSearchesUsed,
    /// YouTube answered quotaExceeded or a rate limit and the shared breaker or backoff
    /// tripped.
    BreakerTrips,
    /// A feed request served from the user's pool.
    CacheHit,
    /// A feed request with no pool (served from the region's chart).
    CacheMiss,
    /// Handler time of one API request.
    ApiLatencyMs,
    /// A warm request that could not be sent to SQS.
    WarmEnqueueFailed,
    /// The hub's verification of a subscription we asked for, confirmed.
    PushVerificationsConfirmed,
    /// A verification request we did not ask for (or no longer want), refused.
    PushVerificationsRefused,
    /// A signed notification applied.
    PushNotificationsAccepted,
    /// Pushed videos queued for hydration (`Sum` = new uploads).
    PushVideosQueued,
    /// A notification whose signature did not match, or that had none: ignored.
    PushNotificationsRejected,
    /// A signed notification not acted on: a channel we no longer want, or a body that is not a notification.
    PushNotificationsIgnored,
    /// Handler time of one push callback request.
    PushCallbackLatencyMs,
    /// Live push subscriptions after a manager run.
    PushLiveSubscriptions,
    /// Live leases that end within a day, after a manager run (renewals falling behind).
    PushLeasesExpiringSoon,
    /// Pushed ids still waiting for `videos.list` after a manager run.
    PushHydrationBacklog,
    /// Pushed uploads read into the catalog.
    PushVideosHydrated,
    /// Warms sent to the watchers of channels with new uploads.
    PushWarmsSent,
    /// Requests to the hub that failed (retried by a later run).
    PushHubFailures,
}

impl Metric {
    pub fn name(self) -> &'static str {
        match self {
            Metric::QuotaUnitsUsed => "QuotaUnitsUsed",
            Metric::QuotaSearchesUsed => "QuotaSearchesUsed",
            Metric::BreakerTrips => "BreakerTrips",
            Metric::CacheHit => "CacheHit",
            Metric::CacheMiss => "CacheMiss",
            Metric::ApiLatencyMs => "ApiLatencyMs",
            Metric::WarmEnqueueFailed => "WarmEnqueueFailed",
            Metric::PushVerificationsConfirmed => "PushVerificationsConfirmed",
            Metric::PushVerificationsRefused => "PushVerificationsRefused",
            Metric::PushNotificationsAccepted => "PushNotificationsAccepted",
            Metric::PushVideosQueued => "PushVideosQueued",
            Metric::PushNotificationsRejected => "PushNotificationsRejected",
            Metric::PushNotificationsIgnored => "PushNotificationsIgnored",
            Metric::PushCallbackLatencyMs => "PushCallbackLatencyMs",
            Metric::PushLiveSubscriptions => "PushLiveSubscriptions",
            Metric::PushLeasesExpiringSoon => "PushLeasesExpiringSoon",
            Metric::PushHydrationBacklog => "PushHydrationBacklog",
            Metric::PushVideosHydrated => "PushVideosHydrated",
            Metric::PushWarmsSent => "PushWarmsSent",
            Metric::PushHubFailures => "PushHubFailures",
        }
    }

    pub fn unit(self) -> &'static str {
        match self {
            Metric::ApiLatencyMs | Metric::PushCallbackLatencyMs => "Milliseconds",
            _ => "Count",
        }
    }
}

/// Where EMF lines go: stdout in Lambda (and locally), a buffer in tests, or nowhere.
#[derive(Clone, Debug)]
pub enum Sink {
    Stdout,
    Capture(Arc<Mutex<Vec<String>>>),
    Off,
}

static SINK: OnceLock<Sink> = OnceLock::new();

/// Chooses the process's sink once, at start-up (`EMF_METRICS=off` turns metrics off).
/// Later calls are ignored; without a call, lines go to stdout.
pub fn install(sink: Sink) {
    let _ = SINK.set(sink);
}

/// Captures this process's EMF lines (tests): returns the buffer they are appended to, or
/// `None` when another sink was installed first.
pub fn capture() -> Option<Arc<Mutex<Vec<String>>>> {
    let buffer = Arc::new(Mutex::new(Vec::new()));
    install(Sink::Capture(buffer.clone()));
    match SINK.get() {
        Some(Sink::Capture(b)) => Some(b.clone()),
        _ => None,
    }
}

/// A field of a line beyond its metrics: what lets one line per API request be both the
/// request's log and its metrics (one stdout write per invocation, not two).
#[derive(Debug, Clone, Copy)]
pub enum Field<'a> {
    Str(&'a str),
    U64(u64),
}

/// One EMF line with these values and `fields` as further top-level members, stamped
/// `timestamp_ms`. Written straight to text: it is on every request's path, and building
/// it as a `serde_json::Value` (maps, a copy of every key) cost about a third of a cache
/// hit's own CPU.
pub fn line_with(values: &[(Metric, f64)], fields: &[(&str, Field)], timestamp_ms: i64) -> String {
    use std::io::Write as _;
    let mut out: Vec<u8> = Vec::with_capacity(160 + 48 * values.len() + 40 * fields.len());
    let _ = write!(
        out,
        "{{\"_aws\":{{\"Timestamp\":{timestamp_ms},\"CloudWatchMetrics\":[{{\"Namespace\":\"{NAMESPACE}\",\"Dimensions\":[[]],\"Metrics\":["
    );
    for (i, (metric, _)) in values.iter().enumerate() {
        let comma = if i > 0 { "," } else { "" };
        let _ = write!(
            out,
            "{comma}{{\"Name\":\"{}\",\"Unit\":\"{}\"}}",
            metric.name(),
            metric.unit()
        );
    }
    out.extend_from_slice(b"]}]}");
    for (metric, value) in values {
        let _ = write!(out, ",\"{}\":", metric.name());
        if value.is_finite() {
            let _ = write!(out, "{value}");
        } else {
            out.extend_from_slice(b"null");
        }
    }
    for (name, value) in fields {
        out.push(b',');
        let _ = serde_json::to_writer(&mut out, name);
        out.push(b':');
        match value {
            Field::Str(s) => {
                let _ = serde_json::to_writer(&mut out, s);
            }
            Field::U64(n) => {
                let _ = write!(out, "{n}");
            }
        }
    }
    out.push(b'}');
    String::from_utf8(out).expect("the line is written from UTF-8 parts")
}

/// Emits `values` as one EMF line. Never fails the caller: a metric is not worth an error.
pub fn emit(values: &[(Metric, f64)]) {
    if values.is_empty() {
        return;
    }
    emit_with(values, &[]);
}

/// Emits `values` and `fields` as one EMF line; returns false when metrics are off (the
/// caller then logs its fields another way).
pub fn emit_with(values: &[(Metric, f64)], fields: &[(&str, Field)]) -> bool {
    let sink = SINK.get_or_init(|| Sink::Stdout);
    if matches!(sink, Sink::Off) {
        return false;
    }
    let mut line = line_with(values, fields, jiff::Timestamp::now().as_millisecond());
    match sink {
        Sink::Stdout => {
            // One write of the whole line, so concurrent lines never interleave.
            line.push('\n');
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(line.as_bytes());
            let _ = out.flush();
        }
        Sink::Capture(buffer) => buffer.lock().expect("metrics buffer").push(line),
        Sink::Off => {}
    }
    true
}

/// The sum of `metric` over captured lines.
pub fn sum(lines: &[String], metric: Metric) -> f64 {
    lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v.get(metric.name()).and_then(Value::as_f64))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_valid_emf() {
        let line = line_with(
            &[(Metric::ApiLatencyMs, 12.5), (Metric::CacheHit, 1.0)],
            &[],
            1_764_100_000_000,
        );
        let v: Value = serde_json::from_str(&line).unwrap();
        let directive = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(v["_aws"]["Timestamp"], 1_764_100_000_000i64);
        assert_eq!(directive["Namespace"], "reco");
        assert_eq!(directive["Dimensions"], json!([[]]));
        assert_eq!(
            directive["Metrics"],
            json!([{"Name": "ApiLatencyMs", "Unit": "Milliseconds"}, {"Name": "CacheHit", "Unit": "Count"}])
        );
        // Every metric named in the directive is a top-level member.
        assert_eq!(v["ApiLatencyMs"], 12.5);
        assert_eq!(v["CacheHit"], 1.0);
        assert!(!line.contains('\n'));
    }

    #[test]
    fn a_line_carries_its_fields_escaped_and_stays_valid_json() {
        let line = line_with(
            &[(Metric::CacheHit, 1.0), (Metric::ApiLatencyMs, f64::NAN)],
            &[
                ("request_id", Field::Str("a\"b\\c\n")),
                ("status", Field::U64(200)),
            ],
            7,
        );
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["request_id"], "a\"b\\c\n");
        assert_eq!(v["status"], 200);
        assert_eq!(v["CacheHit"], 1.0);
        // A value JSON cannot hold is written as null, never as an invalid line.
        assert_eq!(v["ApiLatencyMs"], Value::Null);
        assert_eq!(v["_aws"]["Timestamp"], 7);
        assert!(!line.contains('\n'));
    }
}
