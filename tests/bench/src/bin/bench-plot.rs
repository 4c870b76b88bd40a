//! Per-hour plots of a `bench-day` JSON, whole or partial: a run cut short (a week stopped
//! at the session's end, a resumed day) has its figures in `-partial.json` but no plots,
//! which `bench-day` draws only at a run's end.
//!
//! `bench-plot FILE.json [NAME]` writes `NAME-hourly-all-new.png` (full pages of
//! never-served videos) and `NAME-hourly-related.png` (served videos related to the
//! history), one line per simulated day, into `benchmarks/` (or `BENCH_OUT_DIR`).

use reco_bench::{Series, line_chart};
use serde_json::Value;

/// The days a file holds, each with its `hourly` list: a partial file's `days_done` and
/// the day under way, or a whole file's `ours` (one day) or `ours.days`.
fn days(results: &Value) -> Vec<&Value> {
    if let Some(done) = results["days_done"].as_array() {
        let mut days: Vec<&Value> = done.iter().collect();
        if results["day"]["hourly"].is_array() {
            days.push(&results["day"]);
        }
        return days;
    }
    match results["ours"]["days"].as_array() {
        Some(days) => days.iter().collect(),
        None => vec![&results["ours"]],
    }
}

/// (hour of the day + 0.5, percent) for each simulated hour that had refreshes.
fn per_hour(day: &Value, field: &str) -> Vec<(f64, f64)> {
    day["hourly"]
        .as_array()
        .map(|hours| {
            hours
                .iter()
                .enumerate()
                .filter(|(_, h)| h["hour_refreshes"].as_u64().is_none_or(|r| r > 0))
                .filter_map(|(i, h)| Some((i as f64 + 0.5, h[field].as_f64()? * 100.0)))
                .collect()
        })
        .unwrap_or_default()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(file) = args.next() else {
        eprintln!("usage: bench-plot FILE.json [NAME]");
        std::process::exit(2);
    };
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| {
        eprintln!("cannot read {file}: {e}");
        std::process::exit(1)
    });
    let results: Value = serde_json::from_str(&text).unwrap_or_else(|e| {
        eprintln!("{file} is not JSON: {e}");
        std::process::exit(1)
    });
    let name = args.next().unwrap_or_else(|| {
        let stem = std::path::Path::new(&file)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("run");
        stem.to_owned()
    });
    let days = days(&results);
    if days
        .iter()
        .all(|d| per_hour(d, "hour_share_full_new").is_empty())
    {
        eprintln!("{file} holds no hourly figures");
        std::process::exit(1);
    }
    for (field, suffix, what, target, floor) in [
        (
            "hour_share_full_new",
            "all-new",
            "Refreshes with a full page of never-served videos",
            97.0,
            90.0,
        ),
        (
            "hour_share_related",
            "related",
            "Served videos related to the history",
            85.0,
            60.0,
        ),
    ] {
        let mut series: Vec<Series> = days
            .iter()
            .enumerate()
            .map(|(d, day)| {
                let date = day["date"].as_str().unwrap_or("");
                Series::new(format!("day {} {date}", d + 1), d, per_hour(day, field))
            })
            .collect();
        let low = series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .fold(floor, f64::min);
        series.push(Series::new(
            format!("target ({target}%)"),
            7,
            vec![(0.0, target), (24.0, target)],
        ));
        line_chart(
            &format!("{name}-hourly-{suffix}.png"),
            &format!("{what}, per hour"),
            "hour of the Pacific day",
            "share (%)",
            (0.0, 24.0),
            ((low - 5.0).max(0.0), 101.0),
            &series,
        );
    }
}
