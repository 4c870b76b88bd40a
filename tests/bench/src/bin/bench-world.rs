//! The procedural world's users (issue #15): how many distinct channels their histories
//! cover at 10,000, 100,000 and 1,000,000 users, against the materialised corpus the
//! simulated day has used so far (~1,900 whatever the number of users).
//!
//! `cargo run --release -p reco-bench --bin bench-world [-- --channels 300000]`
//! → `benchmarks/world-users.json` (`world-users-<channels>.json` for another size).
//! Pure computation: no servers.

use std::collections::HashSet;
use std::time::Instant;

use fake_youtube::world::{REALISTIC_CHANNELS, World};
use reco_bench::write_json;
use serde_json::json;

/// The fake corpus's epoch (2026-11-01T00:00:00Z), where channel ages count back from.
const EPOCH_SECS: i64 = 1_793_491_200;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let channels: u32 = args
        .iter()
        .position(|a| a == "--channels")
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().expect("a number of channels"))
        .unwrap_or(REALISTIC_CHANNELS);
    let world = World::new(7, channels, EPOCH_SECS);
    let started = Instant::now();
    let mut distinct: HashSet<u32> = HashSet::new();
    let mut sizes: Vec<usize> = Vec::new();
    let mut rows = Vec::new();
    let mut next_report = 10_000u64;
    for user in 0..1_000_000u64 {
        let spec = world.user(user);
        sizes.push(spec.channels.len());
        distinct.extend(spec.channels);
        if user + 1 == next_report {
            let mut sorted = sizes.clone();
            sorted.sort_unstable();
            let pct = |p: f64| sorted[((sorted.len() - 1) as f64 * p) as usize];
            let row = json!({
                "users": user + 1,
                "distinct_history_channels": distinct.len(),
                "history_channels_per_user": {
                    "mean": sorted.iter().sum::<usize>() as f64 / sorted.len() as f64,
                    "p50": pct(0.5), "p90": pct(0.9), "p99": pct(0.99), "max": pct(1.0),
                },
                "wall_s": started.elapsed().as_secs_f64(),
            });
            println!("{row}");
            rows.push(row);
            next_report *= 10;
        }
    }
    let name = if channels == REALISTIC_CHANNELS {
        "world-users".to_owned()
    } else {
        format!("world-users-{channels}")
    };
    write_json(
        &name,
        &json!({
            "commit": reco_bench::git_describe(),
            "world": {"seed": 7, "channels": channels, "popularity": "Zipf, exponent 1",
                      "topic_sizes": "Zipf, exponent 0.9"},
            "rows": rows,
        }),
    );
}
