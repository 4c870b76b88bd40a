//! One process of the quota storm (tests/integration/tests/quota_guard.rs).
//!
//! Runs `tasks` concurrent tokio tasks on its own Redis connection; each asks the guard and,
//! only when allowed, makes the matching real HTTP call to the fake YouTube. Prints one
//! JSON line with what it admitted, was denied and got back, so the test can add up the
//! processes. Settings come as `name=value` arguments (see `Settings`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reco_core::clock::{OffsetClock, SharedClock};
use reco_core::quota::{Admission, Cost, Limit, Priority, QuotaGuard, QuotaLimits};
use reco_core::store::RedisConn;
use reco_tests::services::TEST_API_KEY;

#[derive(Debug, Clone)]
struct Settings {
    redis_url: String,
    base_url: String,
    /// The guard's clock = real time + this (the fake's clock has the same offset).
    offset_ms: i64,
    tasks: usize,
    limits: QuotaLimits,
    /// A daily denial whose retry_after is at most this is waited out (crossing midnight);
    /// a longer one ends that kind of call for the task.
    max_daily_wait_ms: u64,
    /// Calls each task makes before it stops; 0 = until the day is spent.
    calls_per_task: u64,
    deadline: Duration,
    seed: u64,
    /// One call in `search_every` is a search.
    search_every: u64,
    /// The guard's short-window allowance; `None` = its default.
    allowance_ms: Option<u64>,
}

fn parse() -> Settings {
    let mut s = Settings {
        redis_url: String::new(),
        base_url: String::new(),
        offset_ms: 0,
        tasks: 8,
        limits: QuotaLimits {
            margin: 0.0,
            background_share: 1.0,
            // The storm spends the whole day in minutes: the limits, not the day's pace.
            day_pacing: false,
            ..QuotaLimits::default()
        },
        max_daily_wait_ms: 0,
        calls_per_task: 0,
        deadline: Duration::from_secs(90),
        seed: 1,
        search_every: 16,
        allowance_ms: None,
    };
    for arg in std::env::args().skip(1) {
        let (k, v) = arg
            .split_once('=')
            .unwrap_or_else(|| panic!("argument {arg:?} is not name=value"));
        let n = || {
            v.parse::<u64>()
                .unwrap_or_else(|_| panic!("{k}={v}: not a number"))
        };
        match k {
            "redis" => s.redis_url = v.to_owned(),
            "base" => s.base_url = v.to_owned(),
            "offset_ms" => s.offset_ms = v.parse().expect("offset_ms"),
            "tasks" => s.tasks = n() as usize,
            "daily_units" => s.limits.daily_units = n(),
            "daily_searches" => s.limits.daily_searches = n(),
            "per_second" => s.limits.max_calls_per_second = n(),
            "per_minute" => s.limits.max_units_per_minute = n(),
            "max_daily_wait_ms" => s.max_daily_wait_ms = n(),
            "calls_per_task" => s.calls_per_task = n(),
            "deadline_ms" => s.deadline = Duration::from_millis(n()),
            "seed" => s.seed = n(),
            "search_every" => s.search_every = n().max(1),
            "allowance_ms" => s.allowance_ms = Some(n()),
            _ => panic!("unknown argument {k}"),
        }
    }
    assert!(
        !s.redis_url.is_empty() && !s.base_url.is_empty(),
        "redis= and base= are required"
    );
    s
}

#[derive(Debug, Default, serde::Serialize)]
struct Report {
    admitted_units: u64,
    admitted_searches: u64,
    denied: BTreeMap<String, u64>,
    /// HTTP status (or "transport") → count, for calls made.
    http: BTreeMap<String, u64>,
    /// Google error reasons seen on non-2xx answers.
    reasons: BTreeMap<String, u64>,
    guard_errors: u64,
    first_admit_ms: Option<u64>,
    last_admit_ms: Option<u64>,
    elapsed_ms: u64,
}

fn bump(map: &mut BTreeMap<String, u64>, key: impl Into<String>) {
    *map.entry(key.into()).or_default() += 1;
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let s = parse();
    let clock = Arc::new(OffsetClock::new());
    clock.advance_ms(s.offset_ms);
    let clock: SharedClock = clock;
    // One connection per process, shared by its tasks (a multiplexed ConnectionManager),
    // as in a Lambda instance.
    let redis = RedisConn::connect_lazy(&s.redis_url, Duration::from_secs(2)).expect("redis url");
    redis.ping().await.expect("redis answers");
    let mut guard =
        QuotaGuard::new(redis, s.limits.clone(), clock).with_timeout(Duration::from_secs(2));
    if let Some(ms) = s.allowance_ms {
        guard = guard.with_window_allowance(Duration::from_millis(ms));
    }
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .expect("http client");
    let report = Arc::new(Mutex::new(Report::default()));
    let start = Instant::now();
    let mut handles = Vec::new();
    for task in 0..s.tasks {
        let (guard, http, report, s) = (guard.clone(), http.clone(), report.clone(), s.clone());
        handles.push(tokio::spawn(async move {
            run_task(task as u64, &s, &guard, &http, &report, start).await;
        }));
    }
    for h in handles {
        h.await.expect("task panicked");
    }
    let mut report = Arc::try_unwrap(report)
        .expect("tasks done")
        .into_inner()
        .expect("report lock");
    report.elapsed_ms = start.elapsed().as_millis() as u64;
    println!("{}", serde_json::to_string(&report).expect("report json"));
}

async fn run_task(
    task: u64,
    s: &Settings,
    guard: &QuotaGuard,
    http: &reqwest::Client,
    report: &Mutex<Report>,
    start: Instant,
) {
    // xorshift: a fixed mix of costs per (seed, task), no rand dependency needed.
    let mut rng = (s.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (task + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9))
        | 1;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut units_closed = false;
    let mut searches_closed = false;
    let mut calls = 0u64;
    while start.elapsed() < s.deadline {
        if s.calls_per_task > 0 && calls >= s.calls_per_task {
            break;
        }
        let want_search = next() % s.search_every == 0;
        let search = match (want_search, units_closed, searches_closed) {
            (_, true, true) => break,
            (true, _, false) | (_, true, false) => true,
            _ => false,
        };
        let cost = if search { Cost::SEARCH } else { Cost::ONE_UNIT };
        let admission = match guard.admit(cost, Priority::Interactive).await {
            Ok(a) => a,
            Err(e) => {
                eprintln!("guard error: {e}");
                report.lock().unwrap().guard_errors += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        match admission {
            Admission::Allowed => {}
            Admission::Denied {
                retry_after_ms,
                limit,
            } => {
                bump(&mut report.lock().unwrap().denied, format!("{limit:?}"));
                if limit.is_daily() && retry_after_ms > s.max_daily_wait_ms {
                    match limit {
                        Limit::DailyUnits => units_closed = true,
                        Limit::DailySearches => searches_closed = true,
                        _ => {
                            units_closed = true;
                            searches_closed = true;
                        }
                    }
                    continue;
                }
                tokio::time::sleep(Duration::from_millis(retry_after_ms.min(10_000))).await;
                continue;
            }
        }
        calls += 1;
        {
            let mut r = report.lock().unwrap();
            if search {
                r.admitted_searches += 1;
            } else {
                r.admitted_units += 1;
            }
            let at = start.elapsed().as_millis() as u64;
            r.first_admit_ms.get_or_insert(at);
            r.last_admit_ms = Some(at);
        }
        let request = if search {
            http.get(format!(
                "{}/search?part=snippet&q=cooking&type=video&maxResults=5",
                s.base_url
            ))
        } else {
            http.get(format!("{}/videos?part=snippet&id=abcdefghijk", s.base_url))
        };
        match request.header("X-Goog-Api-Key", TEST_API_KEY).send().await {
            Ok(resp) => {
                let status = resp.status();
                let body = resp.text().await.unwrap_or_default();
                let mut r = report.lock().unwrap();
                bump(&mut r.http, status.as_u16().to_string());
                if !status.is_success() {
                    let reason = serde_json::from_str::<serde_json::Value>(&body)
                        .ok()
                        .and_then(|v| {
                            v["error"]["errors"][0]["reason"]
                                .as_str()
                                .map(str::to_owned)
                        })
                        .unwrap_or_else(|| "unparsed".into());
                    bump(&mut r.reasons, reason);
                }
            }
            Err(_) => bump(&mut report.lock().unwrap().http, "transport"),
        }
    }
}
