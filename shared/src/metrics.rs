//! CloudWatch metrics as Embedded Metric Format (EMF) lines: one JSON object per line on
//! stdout, which Lambda ships to CloudWatch Logs and CloudWatch turns into metrics, with
//! no API call and no agent. The template's alarms and dashboard read these names.
//!
//! Lines are written directly, not through `tracing`, because EMF needs `_aws` at the top
//! level of the object. Namespace `reco`, no dimensions (one series per metric).

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{Map, Value, json};

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
        }
    }

    pub fn unit(self) -> &'static str {
        match self {
            Metric::ApiLatencyMs => "Milliseconds",
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

/// One EMF line with these values, stamped `timestamp_ms`.
pub fn line(values: &[(Metric, f64)], timestamp_ms: i64) -> String {
    let metrics: Vec<Value> = values
        .iter()
        .map(|(m, _)| json!({"Name": m.name(), "Unit": m.unit()}))
        .collect();
    let mut object = Map::new();
    object.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [[]],
                "Metrics": metrics,
            }],
        }),
    );
    for (metric, value) in values {
        object.insert(metric.name().into(), json!(value));
    }
    Value::Object(object).to_string()
}

/// Emits `values` as one EMF line. Never fails the caller: a metric is not worth an error.
pub fn emit(values: &[(Metric, f64)]) {
    if values.is_empty() {
        return;
    }
    let sink = SINK.get_or_init(|| Sink::Stdout);
    if matches!(sink, Sink::Off) {
        return;
    }
    let line = line(values, jiff::Timestamp::now().as_millisecond());
    match sink {
        Sink::Stdout => {
            // One write of the whole line, so concurrent lines never interleave.
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(format!("{line}\n").as_bytes());
            let _ = out.flush();
        }
        Sink::Capture(buffer) => buffer.lock().expect("metrics buffer").push(line),
        Sink::Off => {}
    }
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
        let line = line(
            &[(Metric::ApiLatencyMs, 12.5), (Metric::CacheHit, 1.0)],
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
}
