//! The benchmark suite's shared pieces: percentiles, result files and PNG line charts.
//!
//! Each binary (`bench-latency`, `bench-cold-start`, `bench-day`) prints its figures and
//! writes `benchmarks/<name>.json` and PNG plots next to it, so `BENCHMARKS.md` can cite
//! numbers and embed plots that one command reproduces.

use std::path::PathBuf;
use std::sync::Once;
use std::time::Duration;

use plotters::prelude::*;

/// `benchmarks/` at the repository root.
/// `benchmarks/`, or `$BENCH_OUT_DIR` (a test's run that must not touch the published
/// figures).
pub fn out_dir() -> PathBuf {
    let dir = std::env::var_os("BENCH_OUT_DIR").map_or_else(
        || reco_tests::services::repo_root().join("benchmarks"),
        PathBuf::from,
    );
    std::fs::create_dir_all(&dir).expect("create benchmarks/");
    dir
}

/// Writes `benchmarks/<name>.json` (pretty) and says where.
pub fn write_json(name: &str, value: &serde_json::Value) {
    let path = out_dir().join(format!("{name}.json"));
    std::fs::write(
        &path,
        serde_json::to_string_pretty(value).expect("json") + "\n",
    )
    .expect("write results");
    println!("wrote {}", path.display());
}

/// Sorted latency samples.
#[derive(Debug, Clone)]
pub struct Samples(Vec<Duration>);

impl Samples {
    pub fn new(mut v: Vec<Duration>) -> Self {
        assert!(!v.is_empty(), "no samples");
        v.sort();
        Self(v)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Nearest-rank percentile, `p` in 0..=1.
    pub fn pct(&self, p: f64) -> Duration {
        let i = ((self.0.len() as f64 - 1.0) * p).round() as usize;
        self.0[i.min(self.0.len() - 1)]
    }

    pub fn p50_us(&self) -> f64 {
        us(self.pct(0.5))
    }

    pub fn p99_us(&self) -> f64 {
        us(self.pct(0.99))
    }

    pub fn mean_us(&self) -> f64 {
        self.0.iter().map(|d| us(*d)).sum::<f64>() / self.0.len() as f64
    }

    /// (latency µs, cumulative share %) points of the distribution, thinned to ~400.
    pub fn cdf_points(&self) -> Vec<(f64, f64)> {
        let n = self.0.len();
        let step = (n / 400).max(1);
        let mut pts: Vec<(f64, f64)> = (0..n)
            .step_by(step)
            .map(|i| (us(self.0[i]), (i + 1) as f64 * 100.0 / n as f64))
            .collect();
        pts.push((us(self.0[n - 1]), 100.0));
        pts
    }

    pub fn summary(&self) -> serde_json::Value {
        serde_json::json!({
            "n": self.len(),
            "p50_us": round1(self.p50_us()),
            "p90_us": round1(us(self.pct(0.90))),
            "p99_us": round1(self.p99_us()),
            "mean_us": round1(self.mean_us()),
            "max_us": round1(us(self.pct(1.0))),
        })
    }
}

pub fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

pub fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // DejaVu Sans (Bitstream Vera licence, see assets/), so no system font is needed.
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            include_bytes!("../assets/DejaVuSans.ttf"),
        );
    });
}

/// One line of a chart.
pub struct Series {
    pub name: String,
    pub color: RGBColor,
    pub points: Vec<(f64, f64)>,
}

pub const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

impl Series {
    pub fn new(name: impl Into<String>, index: usize, points: Vec<(f64, f64)>) -> Self {
        Self {
            name: name.into(),
            color: COLORS[index % COLORS.len()],
            points,
        }
    }
}

/// A PNG line chart (1000×600) with a legend, written to `benchmarks/<file>`.
pub fn line_chart(
    file: &str,
    title: &str,
    x_label: &str,
    y_label: &str,
    x_range: (f64, f64),
    y_range: (f64, f64),
    series: &[Series],
) {
    register_font();
    let path = out_dir().join(file);
    {
        let root = BitMapBackend::new(&path, (1000, 600)).into_drawing_area();
        root.fill(&WHITE).expect("fill");
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 24))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(72)
            .build_cartesian_2d(x_range.0..x_range.1, y_range.0..y_range.1)
            .expect("chart");
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .label_style(("sans-serif", 15))
            .axis_desc_style(("sans-serif", 17))
            .draw()
            .expect("mesh");
        for s in series {
            let color = s.color;
            chart
                .draw_series(LineSeries::new(
                    s.points.iter().copied(),
                    color.stroke_width(2),
                ))
                .expect("series")
                .label(s.name.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .label_font(("sans-serif", 16))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .expect("legend");
        root.present().expect("write png");
    }
    println!("wrote {}", path.display());
}

/// The current git commit (short) and whether the tree had local changes, for the record.
pub fn git_describe() -> String {
    let root = reco_tests::services::repo_root();
    let run = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(&root)
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    };
    let head = run(&["rev-parse", "--short", "HEAD"]);
    let dirty = !run(&["status", "--porcelain", "--untracked-files=no"]).is_empty();
    if dirty {
        format!("{head} (+ uncommitted changes)")
    } else {
        head
    }
}

/// A small deterministic PRNG (SplitMix64): the simulation's users and days are the same
/// on every run, with no dependency on a particular `rand` release.
#[derive(Debug, Clone)]
pub struct SplitMix(u64);

impl SplitMix {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [lo, hi] (inclusive).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }
}

/// Zipf over ranks 0..n (rank 0 the most likely): P(k) ∝ 1 / (k + 1)^s.
#[derive(Debug, Clone)]
pub struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    pub fn new(n: usize, s: f64) -> Self {
        assert!(n > 0);
        let mut cdf = Vec::with_capacity(n);
        let mut total = 0.0;
        for k in 0..n {
            total += 1.0 / ((k + 1) as f64).powf(s);
            cdf.push(total);
        }
        for c in &mut cdf {
            *c /= total;
        }
        Self { cdf }
    }

    pub fn sample(&self, rng: &mut SplitMix) -> usize {
        let u = rng.f64();
        self.cdf.partition_point(|&c| c < u).min(self.cdf.len() - 1)
    }
}

/// Redis memory by owner, from `MEMORY USAGE` of every key (`SCAN`): per user (keys
/// under a `{u:…}` hash tag) and per kind of user key, the shared catalog
/// (`reco:src:video:*`), and everything else. Works on either pool layout, so the same
/// census runs on both.
pub async fn memory_census<C: redis::aio::ConnectionLike + Clone>(conn: &C) -> serde_json::Value {
    use std::collections::{BTreeMap, HashMap};
    let mut conn = conn.clone();
    let mut cursor: u64 = 0;
    let mut keys: Vec<String> = Vec::new();
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await
            .expect("SCAN");
        keys.extend(batch);
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    let mut per_user: HashMap<String, u64> = HashMap::new();
    let mut per_kind: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let (mut catalog, mut catalog_keys, mut other) = (0u64, 0u64, 0u64);
    for chunk in keys.chunks(500) {
        let mut pipe = redis::pipe();
        for key in chunk {
            pipe.cmd("MEMORY")
                .arg("USAGE")
                .arg(key)
                .arg("SAMPLES")
                .arg(0);
        }
        let sizes: Vec<Option<u64>> = pipe.query_async(&mut conn).await.expect("MEMORY USAGE");
        for (key, size) in chunk.iter().zip(sizes) {
            let size = size.unwrap_or(0);
            if let Some(rest) = key.strip_prefix("reco:{u:") {
                let (user, kind) = rest.split_once("}:").unwrap_or((rest, "?"));
                *per_user.entry(user.to_owned()).or_default() += size;
                let k = per_kind.entry(kind.to_owned()).or_default();
                k.0 += size;
                k.1 += 1;
            } else if key.starts_with("reco:src:video:") {
                catalog += size;
                catalog_keys += 1;
            } else {
                other += size;
            }
        }
    }
    let users = per_user.len() as u64;
    let mut sizes: Vec<u64> = per_user.into_values().collect();
    sizes.sort_unstable();
    let total: u64 = sizes.iter().sum();
    let pct = |p: f64| {
        sizes
            .get(((sizes.len() as f64 - 1.0) * p) as usize)
            .copied()
            .unwrap_or(0)
    };
    serde_json::json!({
        "users_with_keys": users,
        "user_bytes_total": total,
        "bytes_per_user_mean": total.checked_div(users).unwrap_or(0),
        "bytes_per_user_p50": pct(0.5),
        "bytes_per_user_p90": pct(0.9),
        "bytes_per_user_max": sizes.last().copied().unwrap_or(0),
        "user_keys_by_kind": per_kind.iter().map(|(k, (b, n))| (k.clone(), serde_json::json!({"bytes": b, "keys": n}))).collect::<serde_json::Map<_, _>>(),
        "catalog_bytes": catalog,
        "catalog_items": catalog_keys,
        "other_bytes": other,
    })
}

/// One real warm of `user` through the engine and the fake YouTube, from a watch history in
/// the fake's topic of rank `topic_rank` (3 channels, 4 videos each); returns the ranked
/// pool it built, which the benchmarks copy to many users.
pub async fn warmed_pool(
    apps: &reco_tests::Apps,
    fake: &reco_tests::Fake,
    topic_rank: usize,
    user: &reco_core::UserId,
) -> Vec<reco_core::Video> {
    let history = reco_tests::scenario::history_in_topic(fake, topic_rank, 3, 4);
    let events: Vec<reco_core::WatchEvent> = history
        .video_ids
        .iter()
        .map(|id| reco_core::WatchEvent {
            video_id: id.clone(),
            watched_at: None,
            watch_seconds: Some(300),
        })
        .collect();
    let engine = &apps.services.engine;
    engine
        .history
        .record(user, &events, jiff::Timestamp::now().as_millisecond())
        .await
        .expect("history");
    engine
        .warm(user, reco_core::quota::Priority::Background)
        .await
        .expect("warm");
    engine
        .take_page(
            user,
            &reco_core::engine::PageRequest {
                max_results: reco_core::engine::POOL_TARGET,
                category_id: None,
                include_trending: true,
            },
        )
        .await
        .expect("template pool")
        .videos
}

/// The API Gateway HTTP API (payload 2.0) event of `GET .../recommendations/{user}` with
/// the JWT authorizer's claims, as API Gateway sends it.
pub fn feed_event(user: &str) -> String {
    let path = format!("/api/v1/video/recommendations/{user}");
    serde_json::json!({
        "version": "2.0",
        "routeKey": "GET /api/v1/video/recommendations/{user_id}",
        "rawPath": path,
        "rawQueryString": "max_results=20",
        "headers": {"accept": "application/json", "host": "api.example.com", "authorization": "Bearer x"},
        "queryStringParameters": {"max_results": "20"},
        "pathParameters": {"user_id": user},
        "requestContext": {
            "accountId": "123456789012", "apiId": "bench", "domainName": "api.example.com", "domainPrefix": "api",
            "http": {"method": "GET", "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.9", "userAgent": "bench"},
            "authorizer": {"jwt": {"claims": {"sub": user}, "scopes": null}},
            "requestId": "bench", "routeKey": "GET /api/v1/video/recommendations/{user_id}", "stage": "$default",
            "time": "26/Nov/2026:10:00:00 +0000", "timeEpoch": 1764151200000u64
        },
        "isBase64Encoded": false
    })
    .to_string()
}
