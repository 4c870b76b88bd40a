//! The end-to-end demo: real Redis, real SQS (moto), YouTube (the fake unless
//! YOUTUBE_API_KEY is set), and the three functions under `cargo lambda watch`.
//! A user's history is recorded, the user signs in, the warmer runs from the queue, and
//! three refreshes are printed: no video repeats. Then the quota spent, and the demo page
//! (`web/`) stays served for a browser until Ctrl-C.
//!
//! `reco-demo [--port N] [--once]`: the page's port (default 8080, or `RECO_DEMO_PORT`);
//! `--once` exits after the printed part instead of serving the page.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use reco_core::clock::SystemClock;
use reco_core::quota::QuotaGuard;
use reco_core::store::RedisConn;
use reco_tests::demo::{DEFAULT_PAGE_PORT, DEMO_USER, Demo, DemoOptions, PAGE_SIZE};
use reco_tests::services::repo_root;
use serde_json::Value;

fn step(text: &str) {
    println!("\n== {text}");
}

struct Args {
    port: u16,
    once: bool,
}

fn args() -> Result<Args, String> {
    let mut port = match std::env::var("RECO_DEMO_PORT") {
        Ok(raw) if !raw.trim().is_empty() => raw
            .trim()
            .parse()
            .map_err(|_| format!("RECO_DEMO_PORT: {raw:?} is not a port number"))?,
        _ => DEFAULT_PAGE_PORT,
    };
    let mut once = false;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--once" => once = true,
            "--port" => {
                let raw = it.next().ok_or("--port needs a number")?;
                port = raw
                    .parse()
                    .map_err(|_| format!("--port: {raw:?} is not a port number"))?;
            }
            other => {
                return Err(format!(
                    "unknown argument {other:?} (reco-demo [--port N] [--once])"
                ));
            }
        }
    }
    Ok(Args { port, once })
}

#[tokio::main]
async fn main() {
    // Ctrl-C at any point drops the demo, which stops what it started (watch runs in a
    // session of its own, so the terminal's signal would not reach it).
    let outcome = tokio::select! {
        outcome = run() => outcome,
        _ = tokio::signal::ctrl_c() => {
            println!("\nstopping");
            Ok(())
        }
    };
    if let Err(e) = outcome {
        eprintln!("demo failed: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), String> {
    let args = args()?;
    let real_key = std::env::var("YOUTUBE_API_KEY")
        .ok()
        .filter(|k| !k.is_empty());

    step(
        "starting local services: redis-server, moto_server (SQS), YouTube, and the three functions under `cargo lambda watch`",
    );
    let demo = Demo::start(DemoOptions {
        page_port: args.port,
        youtube_api_key: real_key,
        work_dir: repo_root().join(".local"),
        compile_limit: Duration::from_secs(900),
    })
    .await?;
    println!(
        "redis   {}\nsqs     {}\nyoutube {}\napi     {} (cargo lambda watch; log: .local/watch.log)\npage    {}",
        demo.redis.url(),
        demo.sqs.endpoint(),
        if demo.fake.is_some() {
            "fake (no YOUTUBE_API_KEY set)"
        } else {
            "the real YouTube Data API"
        },
        demo.api_base(),
        demo.page_url(),
    );

    step("recording the user's watch history (POST /api/v1/video/history)");
    let (_, about) = demo.record_history().await?;
    println!("HTTP 202: {about}");

    step("signing in (Cognito PostAuthentication → reco-login)");
    let took = demo.sign_in().await?;
    println!("login returned the event unchanged in {took:?}");

    step("waiting for the warmer (SQS → reco-warmer) to build the pool");
    let size = demo.wait_for_pool(Duration::from_secs(300)).await?;
    println!(
        "pool ready: {size} videos (messages delivered: {})",
        demo.delivered.load(Ordering::SeqCst)
    );

    let feed_url = format!(
        "{}/api/v1/video/recommendations/{DEMO_USER}?max_results={PAGE_SIZE}",
        demo.api_base()
    );
    let mut seen = HashSet::new();
    for refresh in 1..=3 {
        step(&format!(
            "refresh {refresh}: GET /api/v1/video/recommendations/{{user}}?max_results={PAGE_SIZE}"
        ));
        let body: Value = demo
            .http
            .get(&feed_url)
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        let videos = body["videos"].as_array().cloned().unwrap_or_default();
        for v in &videos {
            let id = v["video_id"].as_str().unwrap_or("");
            let new = seen.insert(id.to_owned());
            println!(
                "  {} {:<60.60} | {:<22.22} | {}",
                if new { "new " } else { "SEEN" },
                v["title"].as_str().unwrap_or(""),
                v["channel_title"].as_str().unwrap_or(""),
                v["reason"].as_str().unwrap_or("")
            );
        }
        println!("  meta: {}", body["meta"]);
        if videos.is_empty() {
            return Err(format!("refresh {refresh} returned no videos: {body}"));
        }
    }
    println!(
        "\n{} distinct videos over 3 refreshes ({} shown)",
        seen.len(),
        3 * PAGE_SIZE
    );

    step("quota spent");
    let guard = QuotaGuard::new(
        RedisConn::connect(&demo.redis.url())
            .await
            .map_err(|e| e.to_string())?,
        reco_core::quota::QuotaLimits::default(),
        Arc::new(SystemClock),
    );
    let state = guard.state().await.map_err(|e| e.to_string())?;
    for bucket in &state.buckets {
        println!(
            "guard: {:<8} {} used of {} today ({})",
            bucket.name, bucket.used, bucket.limit, state.day
        );
    }
    if let Some(f) = &demo.fake {
        let c = f.counters();
        println!(
            "fake YouTube metered: {} units, {} searches, {} quota refusals",
            c.units_used,
            c.searches_used,
            c.quota_violations + c.rate_violations
        );
    }
    if seen.len() != 3 * PAGE_SIZE {
        return Err(format!(
            "expected {} distinct videos, got {}",
            3 * PAGE_SIZE,
            seen.len()
        ));
    }

    if args.once {
        demo.stop().await;
        return Ok(());
    }
    step("the demo page");
    println!(
        "Open {} in a browser: the feed as the API function answers it, a quota meter, \
         refresh and \"watched\" buttons, and the API's document at {}api-docs.\n\
         Serving until Ctrl-C.",
        demo.page_url(),
        demo.page_url()
    );
    // Serves until Ctrl-C, handled in `main`: dropping this future drops the demo.
    let _demo = demo;
    std::future::pending().await
}
