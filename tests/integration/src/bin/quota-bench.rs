//! One quota-guard check against a plain Redis round trip on the same connection.
//!
//! `cargo run --release -p reco-tests --bin quota-bench [-- iterations]`
//!
//! Starts its own redis-server (the harness's), then interleaves PING and `admit` so both
//! see the same machine load, and prints p50/p99 of each and their ratio. Two guard series:
//! one whose every check is admitted (debits a daily counter and both window logs: the
//! write path) and one held at 10 calls/s, so nearly every check is a denial; and the bare
//! script (fixed arguments, short windows off) to separate Redis's cost from the client's.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reco_core::clock::SystemClock;
use reco_core::quota::{Cost, Priority, QuotaGuard, QuotaLimits};
use reco_core::store::RedisConn;
use reco_tests::RedisServer;

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("iterations"))
        .unwrap_or(20_000);
    let server = RedisServer::start();
    let conn = RedisConn::connect(&server.url()).await.expect("redis");
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
    let admitted =
        QuotaGuard::new(conn.clone(), open, clock.clone()).with_timeout(Duration::from_secs(5));
    let denied = QuotaGuard::new(conn.clone(), held, clock).with_timeout(Duration::from_secs(5));

    // Warm up: connection, script load (the first EVALSHA gets NOSCRIPT and loads it).
    for _ in 0..500 {
        conn.ping().await.expect("ping");
        admitted
            .admit(Cost::ONE_UNIT, Priority::Interactive)
            .await
            .expect("admit");
    }
    let mut flush = conn.clone();
    redis::cmd("FLUSHALL")
        .query_async::<()>(&mut flush)
        .await
        .expect("flushall");

    let (mut ping, mut allow, mut deny) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    // The same script with fixed arguments and no Rust-side preparation (clock, Pacific
    // date, key names): what the check costs Redis itself.
    let raw = redis::Script::new(reco_core::quota::GUARD_LUA);
    let day = reco_core::clock::pacific_date(jiff::Timestamp::now());
    let raw_keys = reco_core::quota::keys::all(&day);
    let mut raw_conn = conn.clone();
    let mut bare = Vec::with_capacity(n);
    let mut allowed_count = 0usize;
    let mut denied_count = 0usize;
    for _ in 0..n {
        let t = Instant::now();
        conn.ping().await.expect("ping");
        ping.push(t.elapsed());
        let t = Instant::now();
        let a = admitted
            .admit(Cost::ONE_UNIT, Priority::Interactive)
            .await
            .expect("admit");
        allow.push(t.elapsed());
        allowed_count += a.is_allowed() as usize;
        let t = Instant::now();
        let d = denied
            .admit(Cost::SEARCH, Priority::Background)
            .await
            .expect("admit");
        deny.push(t.elapsed());
        denied_count += (!d.is_allowed()) as usize;
        let now_ms = jiff::Timestamp::now().as_millisecond();
        let mut inv = raw.prepare_invoke();
        for k in &raw_keys {
            inv.key(k);
        }
        inv.arg("admit")
            .arg(now_ms)
            .arg(1)
            .arg(0)
            .arg(1_000_000_000u64)
            .arg(1_000_000_000u64);
        inv.arg(3_600_000)
            .arg(10_800_000)
            .arg(0)
            .arg(1_100)
            .arg(0)
            .arg(60_100);
        let t = Instant::now();
        let _: (i64, i64, i64) = inv.invoke_async(&mut raw_conn).await.expect("raw evalsha");
        bare.push(t.elapsed());
    }
    for v in [&mut ping, &mut allow, &mut deny, &mut bare] {
        v.sort();
    }
    let (p50, p99) = (pct(&ping, 0.5), pct(&ping, 0.99));
    println!(
        "quota-bench: {n} iterations each, interleaved, one connection, redis-server on loopback"
    );
    println!("{:<34} {:>9} {:>9}", "", "p50 µs", "p99 µs");
    println!(
        "{:<34} {:>9.1} {:>9.1}",
        "PING (plain round trip)",
        us(p50),
        us(p99)
    );
    for (name, v, count) in [
        ("admit, allowed (write path)", &allow, allowed_count),
        ("admit, denied at 10 calls/s", &deny, denied_count),
        ("bare EVALSHA, daily bucket only", &bare, n),
    ] {
        let (a50, a99) = (pct(v, 0.5), pct(v, 0.99));
        println!(
            "{:<34} {:>9.1} {:>9.1}   ratio to PING: p50 {:.2}x, p99 {:.2}x   ({count}/{n} {})",
            name,
            us(a50),
            us(a99),
            us(a50) / us(p50),
            us(a99) / us(p99),
            if !name.contains("denied") {
                "allowed"
            } else {
                "denied"
            },
        );
    }
}
