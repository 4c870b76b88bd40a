//! The quota guard against a real redis-server and the fake YouTube (no mocks).
//!
//! * `storm_*`: 4 OS processes × 8 tasks spend a small day through the guard against the
//!   fake: no violation, ≥ 98% of the day spent, and the next Pacific day reopens.
//! * `admissions_match_a_model_*` (proptest): the script agrees with an exact model, no
//!   window or bucket is ever exceeded, and a refused call debits nothing.
//! * `redis_*`: dead port, killed server and a server that never answers all fail closed
//!   within the bound, and no YouTube request is made.
//! * `lost_counters_*`: FLUSHALL mid-day; one quotaExceeded trips the breaker for everyone
//!   until Pacific midnight.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use proptest::prelude::*;
use proptest::test_runner::{Config as PropConfig, TestCaseError, TestRunner};
use reco_core::clock::{
    Clock, ManualClock, OffsetClock, SharedClock, next_pacific_midnight, pacific_date,
};
use reco_core::quota::{
    Admission, Charge, Cost, Limit, Priority, QuotaError, QuotaGuard, QuotaLevel, QuotaLimits, keys,
};
use reco_core::store::RedisConn;
use reco_tests::RedisServer;
use reco_tests::services::{FakeConfig, TEST_API_KEY, free_port, start_fake};

fn conn(url: &str) -> RedisConn {
    RedisConn::connect_lazy(url, Duration::from_millis(500)).expect("redis url")
}

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The offset (ms) that makes a real-time clock show the fake's time, rounded down so the
/// guard is never ahead of the fake (a call admitted in a new day must land in it).
fn offset_to(fake: &reco_tests::Fake) -> i64 {
    fake.now().as_millisecond() - Timestamp::now().as_millisecond() - 1
}

// ------------------------------------------------------------------------------ storm

#[derive(Debug, Default, serde::Deserialize)]
struct WorkerReport {
    admitted_units: u64,
    admitted_searches: u64,
    denied: BTreeMap<String, u64>,
    http: BTreeMap<String, u64>,
    reasons: BTreeMap<String, u64>,
    guard_errors: u64,
    first_admit_ms: Option<u64>,
    elapsed_ms: u64,
}

/// Runs `processes` storm workers in parallel and returns their reports.
fn run_workers(processes: usize, args: &[String]) -> Vec<WorkerReport> {
    let children: Vec<_> = (0..processes)
        .map(|i| {
            Command::new(env!("CARGO_BIN_EXE_quota-storm-worker"))
                .args(args)
                .arg(format!("seed={}", i + 1))
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn quota-storm-worker")
        })
        .collect();
    children
        .into_iter()
        .map(|child| {
            let out = child.wait_with_output().expect("worker output");
            let stdout = String::from_utf8_lossy(&out.stdout);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.success(),
                "worker failed: {}\n{stderr}",
                out.status
            );
            assert!(
                !stdout.contains(TEST_API_KEY) && !stderr.contains(TEST_API_KEY),
                "the API key leaked"
            );
            serde_json::from_str(stdout.trim())
                .unwrap_or_else(|e| panic!("worker report {stdout:?}: {e}\n{stderr}"))
        })
        .collect()
}

#[test]
fn storm_of_processes_spends_the_day_without_a_violation_then_reopens_after_midnight() {
    const UNITS: u64 = 400;
    const SEARCHES: u64 = 20;
    const PER_SECOND: u64 = 20;
    const PER_MINUTE: u64 = 1_200;
    const PROCESSES: usize = 4;
    const TASKS: usize = 8;
    let redis = RedisServer::start();
    // Noon Pacific: the run stays inside one day.
    let fake = start_fake(FakeConfig {
        daily_units: UNITS,
        daily_searches: SEARCHES,
        max_calls_per_second: Some(PER_SECOND),
        max_units_per_minute: Some(PER_MINUTE),
        start_clock: Some(ts("2026-11-25T20:00:00Z")),
        channels: 50,
        ..Default::default()
    });
    let common = |offset: i64| {
        vec![
            format!("redis={}", redis.url()),
            format!("base={}", fake.base_url()),
            format!("offset_ms={offset}"),
            format!("tasks={TASKS}"),
            format!("daily_units={UNITS}"),
            format!("daily_searches={SEARCHES}"),
            format!("per_second={PER_SECOND}"),
            format!("per_minute={PER_MINUTE}"),
        ]
    };

    // Day 1: spend it all.
    let day1 = fake.counters().day;
    let mut args = common(offset_to(&fake));
    args.extend(["max_daily_wait_ms=0".into(), "deadline_ms=90000".into()]);
    let started = Instant::now();
    let reports = run_workers(PROCESSES, &args);
    let took = started.elapsed();
    let c = fake.counters();
    let admitted_units: u64 = reports.iter().map(|r| r.admitted_units).sum();
    let admitted_searches: u64 = reports.iter().map(|r| r.admitted_searches).sum();
    let mut http: BTreeMap<String, u64> = BTreeMap::new();
    let mut denied: BTreeMap<String, u64> = BTreeMap::new();
    for r in &reports {
        for (k, v) in &r.http {
            *http.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &r.denied {
            *denied.entry(k.clone()).or_default() += v;
        }
    }
    let pct = 100.0 * (c.units_used + c.searches_used) as f64 / (UNITS + SEARCHES) as f64;
    eprintln!(
        "storm day 1: {took:?}; fake charged {}/{UNITS} units, {}/{SEARCHES} searches ({pct:.1}% of the day); \
         violations quota {} rate {}; guard admitted {admitted_units} units + {admitted_searches} searches; \
         http {http:?}; denials {denied:?}",
        c.units_used, c.searches_used, c.quota_violations, c.rate_violations
    );
    assert_eq!(c.day, day1, "the run left the day");
    assert_eq!(c.quota_violations, 0, "the fake refused calls for quota");
    assert_eq!(c.rate_violations, 0, "the fake refused calls for rate");
    assert_eq!(reports.iter().map(|r| r.guard_errors).sum::<u64>(), 0);
    assert!(
        reports.iter().all(|r| r.reasons.is_empty()),
        "error answers: {reports:?}"
    );
    // Every admitted call reached the fake and was charged: the guard and the fake agree.
    assert_eq!(
        (c.units_used, c.searches_used),
        (admitted_units, admitted_searches)
    );
    assert!(
        c.units_used as f64 >= 0.98 * UNITS as f64,
        "only {} of {UNITS} units spent",
        c.units_used
    );
    assert!(
        c.searches_used as f64 >= 0.98 * SEARCHES as f64,
        "only {} of {SEARCHES} searches",
        c.searches_used
    );
    assert!(
        reports
            .iter()
            .all(|r| r.admitted_units + r.admitted_searches > 0),
        "a process starved: {reports:?}"
    );
    assert!(
        denied.contains_key("PerSecond"),
        "the per-second window never held anyone back: {denied:?}"
    );
    assert!(denied.contains_key("DailyUnits") && denied.contains_key("DailySearches"));

    // Day 2: both clocks 3 s before Pacific midnight. Workers are held by the daily limit,
    // wait out the retry_after it gives, and are admitted in the new day.
    let midnight = next_pacific_midnight(fake.now());
    fake.set_clock(midnight - jiff::SignedDuration::from_secs(3));
    let mut args = common(offset_to(&fake));
    args.extend([
        "max_daily_wait_ms=10000".into(),
        "calls_per_task=3".into(),
        "deadline_ms=30000".into(),
    ]);
    let reports = run_workers(PROCESSES, &args);
    let c = fake.counters();
    let day2 = pacific_date(midnight);
    assert_eq!(c.day, day2);
    let admitted: u64 = reports
        .iter()
        .map(|r| r.admitted_units + r.admitted_searches)
        .sum();
    eprintln!(
        "storm day 2: admitted {admitted}; fake day usage {:?}; reports {reports:?}",
        c.days
    );
    assert_eq!(
        admitted,
        (PROCESSES * TASKS * 3) as u64,
        "the new day did not open for everyone"
    );
    assert_eq!(
        c.units_used + c.searches_used,
        admitted,
        "calls landed outside the new day"
    );
    let d1 = &c.days[&day1];
    assert_eq!(
        (d1.units, d1.searches),
        (admitted_units, admitted_searches),
        "day 1 was charged after its end"
    );
    assert_eq!((c.quota_violations, c.rate_violations), (0, 0));
    assert!(
        reports
            .iter()
            .all(|r| r.denied.contains_key("DailyUnits") || r.denied.contains_key("DailySearches")),
        "workers were not held until midnight: {reports:?}"
    );
    // The first admission came after midnight (3 s after the clocks were set, less start-up).
    assert!(
        reports
            .iter()
            .all(|r| r.first_admit_ms.unwrap_or(0) >= 1_000 && r.elapsed_ms < 30_000)
    );
}

// ------------------------------------------------------------------------- properties

const PROP_LIMITS: QuotaLimits = QuotaLimits {
    daily_units: 30,
    daily_searches: 6,
    margin: 0.1,
    max_calls_per_second: 3,
    max_units_per_minute: 12,
    background_share: 0.5,
    // The model's caps are flat over the day; the pace has its own test below.
    day_pacing: false,
};
const SEC_WINDOW: i64 = 1_100; // 1 s + the default allowance
const MIN_WINDOW: i64 = 60_100;

/// An exact model of the guard: what it must answer, computed without Redis.
#[derive(Default)]
struct Model {
    days: BTreeMap<String, (u64, u64)>,
    sec: Vec<i64>,
    min: Vec<i64>,
}

fn window_wait(log: &[i64], now: i64, window: i64, limit: u64, weight: u64) -> i64 {
    if limit == 0 || weight == 0 {
        return 0;
    }
    if weight > limit {
        return window;
    }
    let live: Vec<i64> = log.iter().copied().filter(|t| t + window > now).collect();
    let n = live.len() as u64;
    if n + weight <= limit {
        return 0;
    }
    (live[(n + weight - limit - 1) as usize] + window - now).max(1)
}

impl Model {
    fn admit(&mut self, l: &QuotaLimits, now: Timestamp, cost: Cost, p: Priority) -> Admission {
        let t = now.as_millisecond();
        let day = pacific_date(now);
        let to_midnight = (next_pacific_midnight(now).as_millisecond() - t) as u64;
        let (u, s) = self.days.get(&day).copied().unwrap_or_default();
        if cost.units > 0 && u + cost.units > l.units_cap(p) {
            return Admission::Denied {
                retry_after_ms: to_midnight,
                limit: Limit::DailyUnits,
            };
        }
        if cost.searches > 0 && s + cost.searches > l.searches_cap(p) {
            return Admission::Denied {
                retry_after_ms: to_midnight,
                limit: Limit::DailySearches,
            };
        }
        let ws = window_wait(&self.sec, t, SEC_WINDOW, l.max_calls_per_second, 1);
        let wm = window_wait(
            &self.min,
            t,
            MIN_WINDOW,
            l.max_units_per_minute,
            cost.minute_weight(),
        );
        if ws > 0 || wm > 0 {
            return if wm >= ws {
                Admission::Denied {
                    retry_after_ms: wm as u64,
                    limit: Limit::PerMinute,
                }
            } else {
                Admission::Denied {
                    retry_after_ms: ws as u64,
                    limit: Limit::PerSecond,
                }
            };
        }
        let e = self.days.entry(day).or_default();
        e.0 += cost.units;
        e.1 += cost.searches;
        self.sec.push(t);
        self.min
            .extend(std::iter::repeat_n(t, cost.minute_weight() as usize));
        Admission::Allowed
    }

    fn live(log: &[i64], now: i64, window: i64) -> u64 {
        log.iter().filter(|t| *t + window > now).count() as u64
    }
}

fn cost_of(kind: u8) -> Cost {
    match kind {
        0..=2 => Cost::ONE_UNIT,
        3 => Cost::SEARCH,
        4 => Cost {
            units: 1,
            searches: 1,
        },
        5 => Cost {
            units: 3,
            searches: 0,
        },
        _ => Cost {
            units: 0,
            searches: 2,
        },
    }
}

fn step() -> impl Strategy<Value = (u8, bool, i64)> {
    let dt = prop_oneof![6 => 0i64..150, 3 => 0i64..1_500, 1 => 0i64..70_000];
    (0u8..7, any::<bool>(), dt)
}

#[test]
fn admissions_match_a_model_and_never_exceed_a_window_or_bucket() {
    let redis = RedisServer::start();
    let rt = rt();
    let mut runner = TestRunner::new(PropConfig {
        cases: 64,
        failure_persistence: None,
        ..PropConfig::default()
    });
    let strategy = (0i64..180_000, proptest::collection::vec(step(), 1..90));
    let midnight = ts("2026-11-26T08:00:00Z");
    runner
        .run(&strategy, |(before_midnight, steps)| {
            rt.block_on(async {
                let redis_conn = conn(&redis.url());
                redis::cmd("FLUSHALL")
                    .query_async::<()>(&mut redis_conn.clone())
                    .await
                    .unwrap();
                let clock = Arc::new(ManualClock::new(
                    midnight - jiff::SignedDuration::from_millis(before_midnight),
                ));
                let shared: SharedClock = clock.clone();
                let guard = QuotaGuard::new(redis_conn, PROP_LIMITS, shared)
                    .with_timeout(Duration::from_secs(5));
                let mut model = Model::default();
                let mut admitted: Vec<(i64, String, Cost, Priority)> = Vec::new();
                for (kind, background, dt) in steps {
                    clock.advance_ms(dt);
                    let now = clock.now();
                    let t = now.as_millisecond();
                    let cost = cost_of(kind);
                    let p = if background {
                        Priority::Background
                    } else {
                        Priority::Interactive
                    };
                    let before = guard.state().await.unwrap();
                    let got = guard.admit(cost, p).await.unwrap();
                    let want = model.admit(&PROP_LIMITS, now, cost, p);
                    prop_assert_eq!(got, want, "at {} cost {:?} {:?}", now, cost, p);
                    let after = guard.state().await.unwrap();
                    if got.is_allowed() {
                        admitted.push((t, pacific_date(now), cost, p));
                        // Background may bring the day's total only to its share.
                        let units = after.bucket(reco_core::quota::Bucket::Units).unwrap();
                        let search = after.bucket(reco_core::quota::Bucket::Search).unwrap();
                        if p == Priority::Background {
                            prop_assert!(cost.units == 0 || units.used <= units.background_limit);
                            prop_assert!(
                                cost.searches == 0 || search.used <= search.background_limit
                            );
                        }
                    } else {
                        // A refused call debits no bucket and no window.
                        prop_assert_eq!(&before, &after, "a refusal changed the state");
                    }
                    // The state the API reports is the model's.
                    let (u, s) = model
                        .days
                        .get(&pacific_date(now))
                        .copied()
                        .unwrap_or_default();
                    prop_assert_eq!(
                        after.bucket(reco_core::quota::Bucket::Units).unwrap().used,
                        u
                    );
                    prop_assert_eq!(
                        after.bucket(reco_core::quota::Bucket::Search).unwrap().used,
                        s
                    );
                    prop_assert_eq!(
                        after
                            .bucket(reco_core::quota::Bucket::PerSecond)
                            .unwrap()
                            .used,
                        Model::live(&model.sec, t, SEC_WINDOW)
                    );
                    prop_assert_eq!(
                        after
                            .bucket(reco_core::quota::Bucket::PerMinute)
                            .unwrap()
                            .used,
                        Model::live(&model.min, t, MIN_WINDOW)
                    );
                }
                // Independently of the model: no window or bucket was ever exceeded.
                let l = &PROP_LIMITS;
                let mut per_day: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
                for (_, day, cost, _) in &admitted {
                    let e = per_day.entry(day).or_default();
                    e.0 += cost.units;
                    e.1 += cost.searches;
                }
                for (day, (u, s)) in &per_day {
                    prop_assert!(
                        *u <= l.units_cap(Priority::Interactive),
                        "{} units on {}",
                        u,
                        day
                    );
                    prop_assert!(
                        *s <= l.searches_cap(Priority::Interactive),
                        "{} searches on {}",
                        s,
                        day
                    );
                }
                for (i, (t0, ..)) in admitted.iter().enumerate() {
                    let in_window =
                        |w: i64| admitted[i..].iter().filter(move |(t, ..)| *t < t0 + w);
                    // Nominal windows, and the guard's own (allowance included).
                    for w in [1_000, SEC_WINDOW] {
                        prop_assert!(in_window(w).count() as u64 <= l.max_calls_per_second);
                    }
                    for w in [60_000, MIN_WINDOW] {
                        let units: u64 = in_window(w).map(|(_, _, c, _)| c.minute_weight()).sum();
                        prop_assert!(units <= l.max_units_per_minute);
                    }
                }
                Ok::<(), TestCaseError>(())
            })
        })
        .unwrap();
}

// ---------------------------------------------------------- breaker, backoff, keys

/// The day's pace, through the script: at 00:30 Pacific background calls may have spent
/// only the head start and the half hour's share of the day's 7,600 background units;
/// the refusal is `DayPace` with the wait for the next unit, not the day; interactive
/// calls still pass; and the evening release lets background spend past 7,600 by 23:00,
/// while a floor stays for interactive calls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_spend_keeps_to_the_days_pace_and_gets_the_evening_release() {
    let redis = RedisServer::start();
    // 00:30 PST.
    let clock = Arc::new(ManualClock::new(ts("2026-11-25T08:30:00Z")));
    let limits = QuotaLimits {
        max_calls_per_second: 0,
        max_units_per_minute: 0,
        ..QuotaLimits::default()
    };
    let guard = QuotaGuard::new(conn(&redis.url()), limits, clock.clone());
    let ten = Cost {
        units: 10,
        searches: 0,
    };
    let mut spent = 0;
    let refusal = loop {
        match guard.admit(ten, Priority::Background).await.unwrap() {
            Admission::Allowed => spent += 10,
            denied => break denied,
        }
    };
    // 7,600 × (0.25 + 0.75 × 0.5 / 24) = 2,018.75.
    assert_eq!(spent, 2_010, "background spent {spent} by 00:30");
    match refusal {
        Admission::Denied {
            limit: Limit::DayPace,
            retry_after_ms,
        } => assert!(
            (100_000..200_000).contains(&retry_after_ms),
            "ten units wait {retry_after_ms} ms"
        ),
        other => panic!("expected the day's pace, got {other:?}"),
    }
    assert!(
        guard
            .admit(ten, Priority::Interactive)
            .await
            .unwrap()
            .is_allowed(),
        "an interactive call was held to the background pace"
    );
    // Five minutes on, the pace has room for more.
    clock.set(ts("2026-11-25T08:35:00Z"));
    assert!(
        guard
            .admit(ten, Priority::Background)
            .await
            .unwrap()
            .is_allowed()
    );
    let state = guard.state().await.unwrap();
    let units = state.bucket(reco_core::quota::Bucket::Units).unwrap();
    // 7,600 × (0.25 + 0.75 × 35 / 1,440) at 00:35.
    assert_eq!(
        (units.background_limit, units.background_now),
        (9_025, 2_038)
    );
    assert!(!state.background_closed_for_the_day());
    // 23:00 PST: the released reserve lets background pass 7,600, and stops at the floor.
    clock.set(ts("2026-11-26T07:00:00Z"));
    while guard
        .admit(ten, Priority::Background)
        .await
        .unwrap()
        .is_allowed()
    {}
    let state = guard.state().await.unwrap();
    let used = state.bucket(reco_core::quota::Bucket::Units).unwrap().used;
    // 9,025 × (0.25 + 0.75 × 23/24) = 8,743.
    assert!(
        (8_730..=8_743).contains(&used),
        "background brought the day to {used}"
    );
    assert!(
        guard
            .admit(ten, Priority::Interactive)
            .await
            .unwrap()
            .is_allowed(),
        "the floor for interactive calls is gone"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backoff_is_shared_jittered_and_ends() {
    let redis = RedisServer::start();
    let clock = Arc::new(ManualClock::new(ts("2026-11-25T20:00:00Z")));
    let a = QuotaGuard::new(conn(&redis.url()), QuotaLimits::default(), clock.clone());
    let b = QuotaGuard::new(conn(&redis.url()), QuotaLimits::default(), clock.clone());
    assert!(
        a.admit(Cost::ONE_UNIT, Priority::Interactive)
            .await
            .unwrap()
            .is_allowed()
    );
    a.trip_backoff(Duration::from_millis(400)).await.unwrap();
    let state = b.state().await.unwrap();
    let until = state.backoff_until_ms.expect("backoff stored");
    let now = clock.now_ms();
    assert!(
        (now + 400..=now + 600).contains(&until),
        "backoff until {until} (now {now})"
    );
    assert_eq!(state.level(), QuotaLevel::Limited);
    match b
        .admit(Cost::ONE_UNIT, Priority::Interactive)
        .await
        .unwrap()
    {
        Admission::Denied {
            limit: Limit::Backoff,
            retry_after_ms,
        } => {
            let left = (until - now) as u64;
            assert!(
                (left..=left + left / 10).contains(&retry_after_ms),
                "{retry_after_ms} vs {left}"
            );
        }
        other => panic!("expected a backoff, got {other:?}"),
    }
    // A shorter trip does not shorten it.
    b.trip_backoff(Duration::from_millis(1)).await.unwrap();
    assert_eq!(b.state().await.unwrap().backoff_until_ms, Some(until));
    clock.set(Timestamp::from_millisecond(until).unwrap());
    assert!(
        b.admit(Cost::ONE_UNIT, Priority::Interactive)
            .await
            .unwrap()
            .is_allowed()
    );
    assert_eq!(b.state().await.unwrap().level(), QuotaLevel::Ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_share_one_hash_tag_carry_ttls_and_survive_a_script_flush() {
    // A one-node *cluster*: it refuses (CROSSSLOT) any script whose keys span slots, as
    // Redis Cluster and ElastiCache Serverless do.
    let redis = RedisServer::start_with(&["--cluster-enabled", "yes"]);
    let mut c = redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    redis::cmd("CLUSTER")
        .arg("ADDSLOTSRANGE")
        .arg(0)
        .arg(16383)
        .query_async::<()>(&mut c)
        .await
        .unwrap();
    let start = Instant::now();
    loop {
        let info: String = redis::cmd("CLUSTER")
            .arg("INFO")
            .query_async(&mut c)
            .await
            .unwrap();
        if info.contains("cluster_state:ok") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "cluster did not come up: {info}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Control: the node does refuse a script across slots.
    let cross = redis::cmd("EVAL")
        .arg("return 1")
        .arg(2)
        .arg("a")
        .arg("b")
        .query_async::<i64>(&mut c)
        .await;
    assert!(
        cross.is_err(),
        "the node accepted a cross-slot script: {cross:?}"
    );

    let now = ts("2026-11-25T20:00:00Z");
    let clock = Arc::new(ManualClock::new(now));
    let guard = QuotaGuard::new(conn(&redis.url()), QuotaLimits::default(), clock.clone());
    let both = Cost {
        units: 1,
        searches: 1,
    };
    // On a user's behalf, so the per-user spend key is written too.
    assert!(
        reco_core::quota::on_behalf_of(
            reco_core::UserId::parse("u1").unwrap(),
            guard.admit(both, Priority::Interactive)
        )
        .await
        .unwrap()
        .is_allowed()
    );
    guard.trip_backoff(Duration::from_millis(10)).await.unwrap();
    guard
        .trip_daily_breaker(Charge {
            at: now,
            cost: both,
        })
        .await
        .unwrap();
    guard.state().await.unwrap();
    let mut all: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut c)
        .await
        .unwrap();
    all.sort();
    let mut expected: Vec<String> = keys::all(&pacific_date(now)).to_vec();
    expected.sort();
    assert_eq!(
        all, expected,
        "every quota key is written, and nothing else"
    );
    let mut slots = std::collections::BTreeSet::new();
    for key in &all {
        slots.insert(
            redis::cmd("CLUSTER")
                .arg("KEYSLOT")
                .arg(key)
                .query_async::<i64>(&mut c)
                .await
                .unwrap(),
        );
        let ttl: i64 = redis::cmd("PTTL")
            .arg(key)
            .query_async(&mut c)
            .await
            .unwrap();
        assert!(ttl > 0, "{key} has no TTL");
    }
    assert_eq!(slots.len(), 1, "quota keys span slots {slots:?}");
    // The day's counter lives until a while after Pacific midnight.
    let to_midnight = next_pacific_midnight(now).as_millisecond() - now.as_millisecond();
    let ttl: i64 = redis::cmd("PTTL")
        .arg(keys::units(&pacific_date(now)))
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(
        ttl > to_midnight && ttl <= to_midnight + 3 * 3_600_000,
        "day key ttl {ttl}"
    );
    // NOSCRIPT after a flush (failover, new node): the guard reloads the script.
    redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async::<()>(&mut c)
        .await
        .unwrap();
    clock.set(next_pacific_midnight(now));
    assert!(
        guard
            .admit(Cost::ONE_UNIT, Priority::Interactive)
            .await
            .unwrap()
            .is_allowed()
    );
}

// ------------------------------------------------------------------ redis down

/// Callers only call YouTube on `Allowed`; count what would have been sent.
async fn caller_attempts(
    guard: &QuotaGuard,
    http: &reqwest::Client,
    base: &str,
    n: usize,
) -> Vec<(QuotaError, Duration)> {
    let mut errors = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        match guard.admit(Cost::ONE_UNIT, Priority::Interactive).await {
            Ok(Admission::Allowed) => {
                http.get(format!("{base}/videos?part=id&id=abcdefghijk"))
                    .header("X-Goog-Api-Key", TEST_API_KEY)
                    .send()
                    .await
                    .unwrap();
            }
            Ok(denied) => panic!("unexpected {denied:?}"),
            Err(e) => errors.push((e, t.elapsed())),
        }
    }
    errors
}

const BOUND: Duration = Duration::from_millis(200);
const SLACK: Duration = Duration::from_millis(100);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_dead_port_fails_closed_within_the_bound_and_calls_nothing() {
    let fake = start_fake(FakeConfig {
        channels: 20,
        ..Default::default()
    });
    let http = reqwest::Client::new();
    let port = free_port(); // nobody listens here
    let clock: SharedClock = Arc::new(OffsetClock::new());
    let guard = QuotaGuard::new(
        conn(&format!("redis://127.0.0.1:{port}")),
        QuotaLimits::default(),
        clock,
    );
    assert_eq!(guard.timeout(), BOUND, "the default bound is 200 ms");
    let errors = caller_attempts(&guard, &http, &fake.base_url(), 10).await;
    assert_eq!(errors.len(), 10);
    for (e, took) in &errors {
        eprintln!("dead port: {e} after {took:?}");
        assert!(matches!(
            e,
            QuotaError::Unavailable(_) | QuotaError::Timeout(_)
        ));
        assert!(*took < BOUND + SLACK, "took {took:?}");
    }
    assert!(guard.state().await.is_err());
    let tripped = Instant::now();
    assert!(
        guard
            .trip_daily_breaker(Charge {
                at: Timestamp::now(),
                cost: Cost::ONE_UNIT
            })
            .await
            .is_err()
    );
    let took = tripped.elapsed();
    assert!(
        took < BOUND * 3 + SLACK,
        "a trip tries its write three times, each within the bound: took {took:?}"
    );
    // YouTube's refusal is remembered in the process though the shared write failed: this
    // instance (any clone of its guard) makes no more unit calls today, without asking
    // Redis. Another instance knows nothing of it and still fails closed on Redis.
    for g in [&guard, &guard.clone()] {
        match g.admit(Cost::ONE_UNIT, Priority::Background).await {
            Ok(Admission::Denied {
                limit: Limit::DailyBreaker,
                retry_after_ms,
            }) => assert!(retry_after_ms > 0 && retry_after_ms <= 25 * 3_600_000),
            other => panic!("a unit call after a failed trip: {other:?}"),
        }
    }
    let other_instance = QuotaGuard::new(
        conn(&format!("redis://127.0.0.1:{port}")),
        QuotaLimits::default(),
        Arc::new(OffsetClock::new()),
    );
    assert!(matches!(
        other_instance
            .admit(Cost::ONE_UNIT, Priority::Background)
            .await,
        Err(QuotaError::Unavailable(_) | QuotaError::Timeout(_))
    ));
    assert_eq!(
        fake.counters().requests,
        0,
        "a YouTube request was made without the guard's yes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_mid_run_fails_closed_within_the_bound() {
    let fake = start_fake(FakeConfig {
        channels: 20,
        ..Default::default()
    });
    let http = reqwest::Client::new();
    let mut redis = RedisServer::start();
    let clock: SharedClock = Arc::new(OffsetClock::new());
    let guard = QuotaGuard::new(conn(&redis.url()), QuotaLimits::default(), clock);
    assert!(
        caller_attempts(&guard, &http, &fake.base_url(), 3)
            .await
            .is_empty()
    );
    assert_eq!(fake.counters().requests, 3);
    redis.kill();
    let errors = caller_attempts(&guard, &http, &fake.base_url(), 10).await;
    assert_eq!(errors.len(), 10, "the guard admitted with Redis dead");
    for (e, took) in &errors {
        eprintln!("killed: {e} after {took:?}");
        assert!(*took < BOUND + SLACK, "took {took:?}");
    }
    assert_eq!(
        fake.counters().requests,
        3,
        "a YouTube request was made without the guard's yes"
    );
    // Back (empty) on the same port: the guard recovers by itself.
    redis.restart();
    let start = Instant::now();
    loop {
        if guard
            .admit(Cost::ONE_UNIT, Priority::Interactive)
            .await
            .is_ok()
        {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the guard did not reconnect"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_that_never_answers_times_out_at_the_bound() {
    // Accepts connections and reads nothing back: a hung node or a black-holed route.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().flatten() {
            held.push(s);
        }
    });
    let clock: SharedClock = Arc::new(OffsetClock::new());
    let guard = QuotaGuard::new(
        conn(&format!("redis://127.0.0.1:{port}")),
        QuotaLimits::default(),
        clock,
    );
    for _ in 0..3 {
        let t = Instant::now();
        let got = guard.admit(Cost::SEARCH, Priority::Background).await;
        let took = t.elapsed();
        eprintln!("hung redis: {got:?} after {took:?}");
        assert!(
            matches!(got, Err(QuotaError::Timeout(d)) if d == BOUND),
            "{got:?}"
        );
        assert!(took >= BOUND && took < BOUND + SLACK, "took {took:?}");
    }
    let short = guard.clone().with_timeout(Duration::from_millis(50));
    let t = Instant::now();
    assert!(matches!(
        short.admit(Cost::ONE_UNIT, Priority::Interactive).await,
        Err(QuotaError::Timeout(_))
    ));
    assert!(t.elapsed() < Duration::from_millis(50) + SLACK);
}

// ---------------------------------------------------------------- counters lost

#[test]
fn lost_counters_let_one_quota_exceeded_through_then_the_breaker_holds_everyone_until_midnight() {
    const UNITS: u64 = 12;
    let redis = RedisServer::start();
    let fake = start_fake(FakeConfig {
        daily_units: UNITS,
        daily_searches: 5,
        start_clock: Some(ts("2026-11-25T20:00:00Z")),
        channels: 20,
        ..Default::default()
    });
    let base = fake.base_url();
    let rt = rt();
    let clock = Arc::new(OffsetClock::new());
    clock.advance_ms(offset_to(&fake));
    let shared: SharedClock = clock.clone();
    let limits = QuotaLimits {
        daily_units: UNITS,
        daily_searches: 5,
        margin: 0.0,
        background_share: 1.0,
        max_calls_per_second: 1,
        max_units_per_minute: 0,
        day_pacing: false,
    };
    let http = reqwest::Client::new();
    let call = |http: reqwest::Client, base: String| async move {
        let resp = http
            .get(format!("{base}/videos?part=id&id=abcdefghijk"))
            .header("X-Goog-Api-Key", TEST_API_KEY)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap();
        (status, body.contains("\"quotaExceeded\""))
    };
    rt.block_on(async {
        // Mid-day: 10 units spent through the guard (short windows off for speed).
        let spender = QuotaGuard::new(
            conn(&redis.url()),
            QuotaLimits {
                max_calls_per_second: 0,
                ..limits.clone()
            },
            shared.clone(),
        );
        for _ in 0..10 {
            assert!(
                spender
                    .admit(Cost::ONE_UNIT, Priority::Interactive)
                    .await
                    .unwrap()
                    .is_allowed()
            );
            assert_eq!(call(http.clone(), base.clone()).await.0, 200);
        }
        assert_eq!(
            spender
                .state()
                .await
                .unwrap()
                .bucket(reco_core::quota::Bucket::Units)
                .unwrap()
                .used,
            10
        );
        // The counters are lost; the fake still remembers the 10.
        redis::cmd("FLUSHALL")
            .query_async::<()>(&mut conn(&redis.url()))
            .await
            .unwrap();
        assert_eq!(
            spender
                .state()
                .await
                .unwrap()
                .bucket(reco_core::quota::Bucket::Units)
                .unwrap()
                .used,
            0
        );

        // Two "instances" × 4 tasks each keep calling: the guard believes 12 are left, the
        // fake has 2. At 1 call/s the breaker is tripped long before the next admission.
        let guards: Vec<QuotaGuard> = (0..2)
            .map(|_| QuotaGuard::new(conn(&redis.url()), limits.clone(), shared.clone()))
            .collect();
        let mut tasks = Vec::new();
        for i in 0..8 {
            let (guard, http, base) = (guards[i % 2].clone(), http.clone(), base.clone());
            tasks.push(tokio::spawn(async move {
                let mut seen = Vec::new();
                let deadline = Instant::now() + Duration::from_secs(20);
                while Instant::now() < deadline {
                    let at = guard.clock().now();
                    match guard
                        .admit_at(at, Cost::ONE_UNIT, Priority::Interactive)
                        .await
                        .unwrap()
                    {
                        Admission::Allowed => {
                            let (status, quota_exceeded) = call(http.clone(), base.clone()).await;
                            seen.push(status);
                            if quota_exceeded {
                                guard
                                    .trip_daily_breaker(Charge {
                                        at,
                                        cost: Cost::ONE_UNIT,
                                    })
                                    .await
                                    .unwrap();
                            }
                        }
                        Admission::Denied {
                            limit: Limit::DailyBreaker,
                            retry_after_ms,
                        } => return (seen, retry_after_ms),
                        Admission::Denied { retry_after_ms, .. } => {
                            tokio::time::sleep(Duration::from_millis(retry_after_ms)).await
                        }
                    }
                }
                panic!("never held by the breaker");
            }));
        }
        let mut statuses = Vec::new();
        for t in tasks {
            let (seen, retry_after_ms) = t.await.unwrap();
            statuses.extend(seen);
            let to_midnight = next_pacific_midnight(clock.now()).as_millisecond() - clock.now_ms();
            assert!(
                (retry_after_ms as i64 - to_midnight).abs() < 2_000,
                "retry {retry_after_ms} vs {to_midnight}"
            );
        }
        statuses.sort();
        let c = fake.counters();
        eprintln!(
            "lost counters: statuses {statuses:?}; fake {} units, {} quota violations",
            c.units_used, c.quota_violations
        );
        assert_eq!(statuses, vec![200, 200, 403]);
        assert_eq!(
            c.quota_violations, 1,
            "more than one quotaExceeded reached YouTube"
        );
        let state = guards[0].state().await.unwrap();
        assert_eq!(
            state.breaker_until_ms,
            Some(next_pacific_midnight(clock.now()).as_millisecond())
        );
        assert_eq!(state.level(), QuotaLevel::Exhausted);
    });

    // Other processes are held too, with the breaker as the reason.
    let args = vec![
        format!("redis={}", redis.url()),
        format!("base={base}"),
        format!("offset_ms={}", offset_to(&fake)),
        "tasks=8".into(),
        format!("daily_units={UNITS}"),
        "daily_searches=5".into(),
        "max_daily_wait_ms=0".into(),
        "deadline_ms=10000".into(),
    ];
    for r in run_workers(2, &args) {
        assert_eq!(r.admitted_units + r.admitted_searches, 0);
        assert!(
            r.denied.keys().all(|k| k == "DailyBreaker") && r.denied["DailyBreaker"] >= 8,
            "{r:?}"
        );
    }
    assert_eq!(fake.counters().requests, 13);

    // Past Pacific midnight on both clocks: open again.
    let after = next_pacific_midnight(fake.now()) + jiff::SignedDuration::from_secs(1);
    fake.set_clock(after);
    clock.set(after);
    rt.block_on(async {
        let guard = QuotaGuard::new(conn(&redis.url()), limits.clone(), shared.clone());
        assert!(
            guard
                .admit(Cost::ONE_UNIT, Priority::Interactive)
                .await
                .unwrap()
                .is_allowed()
        );
        assert_eq!(call(http.clone(), base.clone()).await.0, 200);
        assert_eq!(guard.state().await.unwrap().level(), QuotaLevel::Ok);
    });
    assert_eq!(fake.counters().quota_violations, 1);
}
