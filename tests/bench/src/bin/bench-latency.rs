//! Figures 1, 2 and 4 of `BENCHMARKS.md`: a cache hit through the API handler against the
//! Redis floor, N concurrent handlers, and a quota-guard check against a plain round trip.
//!
//! `cargo run --release -p reco-bench --bin bench-latency [-- --hits 8000]`
//!
//! Starts its own redis-server, moto_server and fake YouTube (the integration harness),
//! builds the real API handler exactly as the function's `main` does (`reco_tests::Apps`),
//! warms one user through the real engine and copies that ranked pool to many users, so
//! every timed request is a steady-state hit (a full page of 20 never-served videos, pool
//! well above the low watermark). The floor runs on the same multiplexed connection in the
//! same loop: one `GET` of a value as large as the hit's response body, and one `PING`.
//! Every user has the same pool, so after the warm-up the instance's item cache holds
//! every video (the steady state of a warm instance); a second loop empties it before each
//! hit (the cold case: the page's videos read from the catalog). Redis's own time per hit
//! comes from `INFO commandstats` over passes that send nothing else.
//!
//! `--profile-hits N` runs the warm-up and then only N steady-state hits, and exits: the
//! run to put under a profiler (`valgrind --tool=callgrind --toggle-collect='*Api*handle*'`)
//! to see where a hit's own CPU goes.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use lambda_http::{Body, RequestExt};
use reco_bench::{Samples, Series, feed_event, line_chart, round1, round3, us, write_json};
use reco_core::UserId;
use reco_core::config::AuthMode;
use reco_core::quota::{Cost, Priority, QuotaGuard, QuotaLimits};
use reco_core::store::RedisConn;
use reco_core::{Video, clock::SystemClock};
use reco_tests::services::RedisMonitor;
use reco_tests::{Apps, TestEnv};
use serde_json::json;

const PAGE: usize = 20;
/// Hits per user before the next user: 8 pages of 20 leave 80 of 240, above the low
/// watermark (60), so no timed request enqueues a refill.
const HITS_PER_USER: usize = 8;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().expect("a number"))
        .unwrap_or(default)
}

fn parse_event(event: &str) -> lambda_http::Request {
    let mut ctx = lambda_http::Context::default();
    ctx.request_id = "bench-request".into();
    // As the function's `main` does: the event checked, then converted by lambda_http.
    reco_api::event::request_from_str(event)
        .expect("valid event")
        .with_lambda_context(ctx)
}

fn body_text(response: &lambda_http::Response<Body>) -> &str {
    match response.body() {
        Body::Text(t) => t,
        _ => "",
    }
}

/// Gives `users` the template pool and an empty served set (untimed set-up).
async fn fill_pools(apps: &Apps, users: &[UserId], template: &[Video]) {
    let mut conn = apps.services.redis.clone();
    for user in users {
        apps.services
            .engine
            .pool
            .replace(user, template)
            .await
            .expect("pool replace");
        let _: () = redis::cmd("DEL")
            .arg(reco_core::store::keys::served(user))
            .query_async(&mut conn)
            .await
            .expect("del served");
    }
}

fn users(prefix: &str, n: usize) -> Vec<UserId> {
    (0..n)
        .map(|i| UserId::parse(&format!("{prefix}-{i}")).expect("user id"))
        .collect()
}

async fn hit(apps: &Apps, event: &str) -> (Duration, usize, &'static str) {
    let req = parse_event(event);
    let t = Instant::now();
    let response = apps.api.handle(req).await;
    let elapsed = t.elapsed();
    let text = body_text(&response);
    let status = if response.status() == 200 && text.contains("\"cache_status\":\"hit\"") {
        "hit"
    } else {
        "other"
    };
    (elapsed, text.len(), status)
}

#[tokio::main]
async fn main() {
    let hits = arg("--hits", 8000);
    let per_n = arg("--per-n", 8000);
    let env = TestEnv::start().await;
    let apps = Apps::build(&env, None, AuthMode::Jwt).await;

    // One real warm through the engine and the fake YouTube, then its ranked pool.
    let seed = UserId::parse("seed-user").unwrap();
    let template = reco_bench::warmed_pool(&apps, &env.fake, 1, &seed).await;
    assert!(
        template.len() >= PAGE * (HITS_PER_USER + 3),
        "the warm built only {} videos",
        template.len()
    );
    println!(
        "template pool: {} videos from one real warm ({} YouTube units)",
        template.len(),
        env.fake.counters().units_used
    );

    // The floor returns as many bytes as a hit's response body (one hit on a user of its
    // own measures it).
    let probe = users("probe", 1);
    fill_pools(&apps, &probe, &template).await;
    let (_, reply_bytes, probe_status) = hit(&apps, &feed_event(probe[0].as_str())).await;
    assert_eq!(probe_status, "hit");
    let redis: RedisConn = apps.services.redis.clone();
    let mut floor_conn = redis.clone();
    let _: () = redis::cmd("SET")
        .arg("bench:floor-payload")
        .arg(vec![b'x'; reply_bytes])
        .query_async(&mut floor_conn)
        .await
        .unwrap();

    // ---- Figure 1: hit vs floor, interleaved on the same connection ----
    let fig1_users = users("hit", hits.div_ceil(HITS_PER_USER) + 1);
    fill_pools(&apps, &fig1_users, &template).await;
    let events: Vec<String> = fig1_users.iter().map(|u| feed_event(u.as_str())).collect();
    // Warm-up: scripts loaded, connection up, allocator warm (its own users).
    let warm_users = users("warmup", 40);
    fill_pools(&apps, &warm_users, &template).await;
    for u in &warm_users {
        for _ in 0..HITS_PER_USER {
            let _ = hit(&apps, &feed_event(u.as_str())).await;
            let _: Vec<u8> = redis::cmd("GET")
                .arg("bench:floor-payload")
                .query_async(&mut floor_conn)
                .await
                .unwrap();
            redis.ping().await.unwrap();
        }
    }
    let profile_hits = arg("--profile-hits", 0);
    if profile_hits > 0 {
        for i in 0..profile_hits {
            let (_, _, status) = hit(&apps, &events[i / HITS_PER_USER % events.len()]).await;
            assert_eq!(status, "hit");
        }
        println!("{profile_hits} steady-state hits, nothing else");
        return;
    }
    let (mut handler, mut handler_event, mut floor, mut ping) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut non_hits = 0usize;
    let mut body_bytes = 0usize;
    for i in 0..hits {
        let event = &events[i / HITS_PER_USER];
        // Handler only (the request already parsed), and event JSON → response.
        let t0 = Instant::now();
        let req = parse_event(event);
        let t1 = Instant::now();
        let response = apps.api.handle(req).await;
        let t2 = Instant::now();
        let text = body_text(&response);
        body_bytes = text.len();
        if response.status() != 200 || !text.contains("\"cache_status\":\"hit\"") {
            non_hits += 1;
        }
        handler.push(t2 - t1);
        handler_event.push(t2 - t0);
        let t = Instant::now();
        let payload: Vec<u8> = redis::cmd("GET")
            .arg("bench:floor-payload")
            .query_async(&mut floor_conn)
            .await
            .unwrap();
        floor.push(t.elapsed());
        assert_eq!(payload.len(), reply_bytes);
        let t = Instant::now();
        redis.ping().await.unwrap();
        ping.push(t.elapsed());
    }
    assert_eq!(non_hits, 0, "{non_hits} timed requests were not cache hits");

    // The cold item cache: the same loop with the cache emptied before each hit, so each
    // reads its page's videos from the catalog (a second round trip).
    let cold_hits = hits / 4;
    let cold_users = users("cold", cold_hits.div_ceil(HITS_PER_USER) + 1);
    fill_pools(&apps, &cold_users, &template).await;
    let (mut handler_cold, mut floor_cold) = (Vec::new(), Vec::new());
    for i in 0..cold_hits {
        let req = parse_event(&feed_event(cold_users[i / HITS_PER_USER].as_str()));
        apps.api.engine.catalog.forget_cached_items();
        let t = Instant::now();
        let response = apps.api.handle(req).await;
        handler_cold.push(t.elapsed());
        assert_eq!(response.status(), 200);
        let t = Instant::now();
        let _: Vec<u8> = redis::cmd("GET")
            .arg("bench:floor-payload")
            .query_async(&mut floor_conn)
            .await
            .unwrap();
        floor_cold.push(t.elapsed());
    }
    let (handler_cold, floor_cold) = (Samples::new(handler_cold), Samples::new(floor_cold));

    // Redis's own time per hit (INFO commandstats), warm and cold item cache, over passes
    // that send nothing but hits.
    let mut redis_us_per_hit = Vec::new();
    for cold in [false, true] {
        let pass = users(if cold { "rtime-cold" } else { "rtime-warm" }, 50);
        fill_pools(&apps, &pass, &template).await;
        for u in &pass {
            let _ = hit(&apps, &feed_event(u.as_str())).await; // scripts and cache warm
        }
        fill_pools(&apps, &pass, &template).await;
        let mut stats_conn = redis.clone();
        let _: () = redis::cmd("CONFIG")
            .arg("RESETSTAT")
            .query_async(&mut stats_conn)
            .await
            .unwrap();
        let mut n = 0usize;
        for u in &pass {
            for _ in 0..HITS_PER_USER {
                if cold {
                    apps.api.engine.catalog.forget_cached_items();
                }
                let (_, _, status) = hit(&apps, &feed_event(u.as_str())).await;
                assert_eq!(status, "hit");
                n += 1;
            }
        }
        let stats: String = redis::cmd("INFO")
            .arg("commandstats")
            .query_async(&mut stats_conn)
            .await
            .unwrap();
        let usec: f64 = stats
            .lines()
            .filter(|l| l.starts_with("cmdstat_") && !l.starts_with("cmdstat_config"))
            .filter_map(|l| {
                l.split("usec=")
                    .nth(1)?
                    .split(',')
                    .next()?
                    .parse::<f64>()
                    .ok()
            })
            .sum();
        redis_us_per_hit.push(usec / n as f64);
    }
    println!(
        "Redis's own time per hit (INFO commandstats): {:.1} µs with the item cache warm, {:.1} µs cold",
        redis_us_per_hit[0], redis_us_per_hit[1]
    );
    let (handler, handler_event, floor, ping) = (
        Samples::new(handler),
        Samples::new(handler_event),
        Samples::new(floor),
        Samples::new(ping),
    );

    // Redis commands per hit: MONITOR (client commands only) over a separate pass.
    let monitor_users = users("monitor", 25);
    fill_pools(&apps, &monitor_users, &template).await;
    let monitor = RedisMonitor::start(&env.redis);
    let mut monitored = 0usize;
    for u in &monitor_users {
        for _ in 0..HITS_PER_USER {
            let (_, _, status) = hit(&apps, &feed_event(u.as_str())).await;
            assert_eq!(status, "hit");
            monitored += 1;
        }
    }
    let commands = monitor.stop();
    let per_hit = commands.len() as f64 / monitored as f64;
    let kinds: std::collections::BTreeSet<String> = commands
        .iter()
        .filter_map(|l| l.split('"').nth(1).map(|s| s.to_ascii_uppercase()))
        .collect();

    println!(
        "\nFigure 1: cache hit vs the Redis floor ({hits} interleaved samples each, one connection)"
    );
    println!("{:<44} {:>9} {:>9} {:>9}", "", "p50 µs", "p90 µs", "p99 µs");
    for (name, s) in [
        ("handler, request parsed (Api::handle)", &handler),
        ("handler incl. API GW v2 event JSON parse", &handler_event),
        ("floor: GET of the same reply size", &floor),
        ("PING", &ping),
    ] {
        println!(
            "{:<44} {:>9.1} {:>9.1} {:>9.1}",
            name,
            s.p50_us(),
            us(s.pct(0.9)),
            s.p99_us()
        );
    }
    let ratio50 = handler.p50_us() / floor.p50_us();
    let ratio99 = handler.p99_us() / floor.p99_us();
    println!(
        "ratio handler/floor: p50 {ratio50:.2}x, p99 {ratio99:.2}x (target p50 ≤ 1.3x); floor value and response body {reply_bytes} B ({body_bytes} B in the loop)"
    );
    let cold_ratio50 = handler_cold.p50_us() / floor_cold.p50_us();
    println!(
        "item cache cold ({cold_hits} samples): handler p50 {:.1} µs, p99 {:.1} µs; floor p50 {:.1} µs; ratio p50 {cold_ratio50:.2}x",
        handler_cold.p50_us(),
        handler_cold.p99_us(),
        floor_cold.p50_us()
    );
    println!(
        "Redis commands per hit: {per_hit:.2} ({} commands over {monitored} hits: {kinds:?})",
        commands.len()
    );

    // ---- Figure 4: quota guard check vs PING on one connection ----
    let guard_conn = RedisConn::connect(&env.redis.url()).await.expect("redis");
    let open = QuotaLimits {
        daily_units: 1_000_000_000,
        daily_searches: 1_000_000_000,
        max_calls_per_second: 1_000_000_000,
        max_units_per_minute: 1_000_000_000,
        ..QuotaLimits::default()
    };
    let held = QuotaLimits {
        daily_units: 1_000_000_000,
        ..QuotaLimits::default()
    };
    let clock = Arc::new(SystemClock);
    let admitted = QuotaGuard::new(guard_conn.clone(), open, clock.clone())
        .with_timeout(Duration::from_secs(5));
    let denied =
        QuotaGuard::new(guard_conn.clone(), held, clock).with_timeout(Duration::from_secs(5));
    for _ in 0..500 {
        guard_conn.ping().await.unwrap();
        admitted
            .admit(Cost::ONE_UNIT, Priority::Interactive)
            .await
            .unwrap();
        denied
            .admit(Cost::SEARCH, Priority::Background)
            .await
            .unwrap();
    }
    let (mut gping, mut gallow, mut gdeny) = (Vec::new(), Vec::new(), Vec::new());
    let (mut allowed_n, mut denied_n) = (0usize, 0usize);
    for _ in 0..hits {
        let t = Instant::now();
        guard_conn.ping().await.unwrap();
        gping.push(t.elapsed());
        let t = Instant::now();
        let a = admitted
            .admit(Cost::ONE_UNIT, Priority::Interactive)
            .await
            .unwrap();
        gallow.push(t.elapsed());
        allowed_n += usize::from(a.is_allowed());
        let t = Instant::now();
        let d = denied
            .admit(Cost::SEARCH, Priority::Background)
            .await
            .unwrap();
        gdeny.push(t.elapsed());
        denied_n += usize::from(!d.is_allowed());
    }
    let (gping, gallow, gdeny) = (
        Samples::new(gping),
        Samples::new(gallow),
        Samples::new(gdeny),
    );
    println!("\nFigure 4: quota guard check vs PING ({hits} interleaved samples each)");
    for (name, s) in [
        ("PING", &gping),
        ("admit, allowed (debits 1 unit)", &gallow),
        ("admit, denied (search at 10 calls/s)", &gdeny),
    ] {
        println!(
            "{:<44} p50 {:>7.1} µs  p99 {:>7.1} µs  ratio to PING p50 {:.2}x p99 {:.2}x",
            name,
            s.p50_us(),
            s.p99_us(),
            s.p50_us() / gping.p50_us(),
            s.p99_us() / gping.p99_us()
        );
    }
    println!("({allowed_n}/{hits} allowed, {denied_n}/{hits} denied)");

    // ---- Figure 2: N concurrent handlers (N Lambda instances, one connection each) ----
    let mut fig2 = Vec::new();
    for n in [1usize, 8, 64] {
        let mut instances = Vec::with_capacity(n);
        for _ in 0..n {
            instances.push(Arc::new(Apps::build(&env, None, AuthMode::Jwt).await));
        }
        let run_users = users(&format!("conc{n}"), per_n.div_ceil(HITS_PER_USER));
        fill_pools(&apps, &run_users, &template).await;
        let events: Arc<Vec<String>> =
            Arc::new(run_users.iter().map(|u| feed_event(u.as_str())).collect());
        // Each instance's first request loads the script and connects: not timed.
        let warm = users(&format!("conc{n}-warm"), n);
        fill_pools(&apps, &warm, &template).await;
        for (inst, u) in instances.iter().zip(&warm) {
            let _ = hit(inst, &feed_event(u.as_str())).await;
        }
        let next = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for inst in &instances {
            let (inst, next, events) = (inst.clone(), next.clone(), events.clone());
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut bad = 0usize;
                loop {
                    let u = next.fetch_add(1, Ordering::Relaxed);
                    if u >= events.len() {
                        break;
                    }
                    for _ in 0..HITS_PER_USER {
                        let (d, _, status) = hit(&inst, &events[u]).await;
                        bad += usize::from(status != "hit");
                        lat.push(d);
                    }
                }
                (lat, bad)
            }));
        }
        let mut all = Vec::new();
        let mut bad = 0;
        for t in tasks {
            let (lat, b) = t.await.unwrap();
            all.extend(lat);
            bad += b;
        }
        let wall = started.elapsed();
        assert_eq!(bad, 0, "N={n}: {bad} requests were not hits");
        let count = all.len();
        let s = Samples::new(all);
        let rps = count as f64 / wall.as_secs_f64();
        println!(
            "N={n:>2}: {count} requests in {:.2} s = {rps:>7.0} req/s, p50 {:.1} µs, p99 {:.1} µs",
            wall.as_secs_f64(),
            s.p50_us(),
            s.p99_us()
        );
        fig2.push(
            json!({"n": n, "requests": count, "wall_s": round3(wall.as_secs_f64()),
            "throughput_rps": round1(rps), "latency": s.summary()}),
        );
    }

    // ---- Plot: latency distributions against the floor ----
    let x_max = [&handler, &handler_event, &floor, &ping]
        .iter()
        .map(|s| us(s.pct(0.995)))
        .fold(0.0, f64::max)
        * 1.05;
    line_chart(
        "latency-vs-floor.png",
        "Cache hit through the API handler vs the Redis floor (CDF)",
        "latency (µs)",
        "share of requests (%)",
        (0.0, x_max),
        (0.0, 100.0),
        &[
            Series::new("handler (Api::handle), hit", 0, handler.cdf_points()),
            Series::new("handler + event JSON parse", 4, handler_event.cdf_points()),
            Series::new(
                format!("floor: GET {reply_bytes} B, same connection"),
                1,
                floor.cdf_points(),
            ),
            Series::new("PING, same connection", 2, ping.cdf_points()),
        ],
    );

    write_json(
        "latency",
        &json!({
            "commit": reco_bench::git_describe(),
            "figure1": {
                "samples": hits,
                "floor_value_bytes": reply_bytes,
                "response_body_bytes": body_bytes,
                "handler": handler.summary(),
                "handler_with_event_parse": handler_event.summary(),
                "floor_get_same_size": floor.summary(),
                "ping": ping.summary(),
                "ratio_p50": round3(ratio50),
                "ratio_p99": round3(ratio99),
                "redis_commands_per_hit": round3(per_hit),
                "redis_command_kinds": kinds,
                "redis_us_per_hit_item_cache_warm": round3(redis_us_per_hit[0]),
                "redis_us_per_hit_item_cache_cold": round3(redis_us_per_hit[1]),
                "item_cache_cold": {
                    "samples": cold_hits,
                    "handler": handler_cold.summary(),
                    "floor_get_same_size": floor_cold.summary(),
                    "ratio_p50": round3(cold_ratio50),
                },
            },
            "figure2": fig2,
            "figure4": {
                "samples": hits,
                "ping": gping.summary(),
                "admit_allowed": gallow.summary(),
                "admit_denied": gdeny.summary(),
                "ratio_allowed_p50": round3(gallow.p50_us() / gping.p50_us()),
                "ratio_allowed_p99": round3(gallow.p99_us() / gping.p99_us()),
                "ratio_denied_p50": round3(gdeny.p50_us() / gping.p50_us()),
            },
        }),
    );
}
