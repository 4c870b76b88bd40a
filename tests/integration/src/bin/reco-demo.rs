//! The end-to-end demo: real Redis, real SQS (moto), YouTube (the fake unless
//! YOUTUBE_API_KEY is set), and the three functions under `cargo lambda watch`.
//! A user's history is recorded, the user signs in, the warmer runs from the queue, and
//! three refreshes are printed: no video repeats. Then the quota spent.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reco_core::clock::SystemClock;
use reco_core::quota::QuotaGuard;
use reco_core::store::RedisConn;
use reco_tests::local::{LambdaWatch, local_env_text, poll_and_invoke};
use reco_tests::scenario::history_in_topic;
use reco_tests::services::{FakeConfig, repo_root};
use reco_tests::{MotoSqs, RedisServer, start_fake};
use serde_json::Value;

const USER: &str = "8f1e2d3c-0000-4000-8000-123456789abc";

/// Well-known public videos used as the history when talking to the real API.
const REAL_HISTORY: &[&str] = &["dQw4w9WgXcQ", "9bZkp7q19f0", "kJQP7kiw5Fk", "JGwWNGJdvx8"];

fn step(text: &str) {
    println!("\n== {text}");
}

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("demo failed: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), String> {
    let root = repo_root();
    let real_key = std::env::var("YOUTUBE_API_KEY")
        .ok()
        .filter(|k| !k.is_empty());

    step("starting local services: redis-server, moto_server (SQS), YouTube");
    let redis = RedisServer::start();
    let sqs = MotoSqs::start();
    let (queue_url, _dlq) = sqs.create_queue_with_dlq("reco-warm", 3, 60).await;
    let fake = if real_key.is_none() {
        Some(start_fake(FakeConfig::default()))
    } else {
        None
    };
    let (base_url, key) = match (&fake, &real_key) {
        (Some(f), _) => (f.base_url(), reco_tests::TEST_API_KEY.to_owned()),
        (None, Some(k)) => (
            reco_core::config::DEFAULT_YOUTUBE_API_BASE_URL.to_owned(),
            k.clone(),
        ),
        (None, None) => unreachable!(),
    };
    println!(
        "redis   {}\nsqs     {}\nyoutube {}",
        redis.url(),
        sqs.endpoint(),
        if fake.is_some() {
            "fake (no YOUTUBE_API_KEY set)"
        } else {
            "the real YouTube Data API"
        }
    );

    let env_dir = root.join(".local");
    std::fs::create_dir_all(&env_dir).map_err(|e| e.to_string())?;
    let env_file = env_dir.join("demo.env");
    let env_text = local_env_text(&redis.url(), &queue_url, &sqs.endpoint(), &base_url, &key);
    std::fs::write(&env_file, env_text).map_err(|e| e.to_string())?;

    step("starting the three functions under `cargo lambda watch`");
    let mut watch = LambdaWatch::start(&env_file, &env_dir.join("watch.log"))?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(300))
        .build()
        .map_err(|e| e.to_string())?;
    let base = watch.base_url();
    let invoke = watch.invoke_base();
    let feed_url = format!("{base}/lambda-url/reco-api/api/v1/video/recommendations/{USER}");
    watch
        .wait_ready(
            &http,
            &watch.function_url("reco-api", "/api/v1/health"),
            Duration::from_secs(900),
        )
        .await
        .map_err(|e| format!("{e}; see .local/watch.log"))?;
    println!("cargo lambda watch on {base} (log: .local/watch.log)");

    // The local SQS event source mapping: long-polls the queue, invokes the warmer.
    let stop = Arc::new(AtomicBool::new(false));
    let delivered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let poller = {
        let (sqs_client, http, queue_url, invoke, stop, delivered) = (
            sqs.client().await,
            http.clone(),
            queue_url.clone(),
            invoke.clone(),
            stop.clone(),
            delivered.clone(),
        );
        tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                match poll_and_invoke(&sqs_client, &http, &queue_url, &invoke, "reco-warmer", 1)
                    .await
                {
                    Ok((n, _)) => {
                        delivered.fetch_add(n, Ordering::SeqCst);
                    }
                    Err(e) => eprintln!("event source: {e}"),
                }
            }
        })
    };

    step("recording the user's watch history (POST /api/v1/video/history)");
    let history: Vec<String> = match &fake {
        Some(f) => {
            let h = history_in_topic(f, 0, 3, 3);
            println!(
                "{} videos from {} channels about {:?}",
                h.video_ids.len(),
                h.channels.len(),
                h.topics
            );
            h.video_ids
        }
        None => REAL_HISTORY.iter().map(|s| s.to_string()).collect(),
    };
    let events: Vec<Value> = history
        .iter()
        .map(|id| serde_json::json!({"video_id": id, "watch_seconds": 240}))
        .collect();
    let response = http
        .post(format!(
            "{base}/lambda-url/reco-api/api/v1/video/history/{USER}"
        ))
        .json(&serde_json::json!({ "events": events }))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "HTTP {} {}",
        response.status().as_u16(),
        response.text().await.unwrap_or_default()
    );

    step("signing in (Cognito PostAuthentication → reco-login)");
    let event = std::fs::read_to_string(root.join("events/cognito-post-authentication.json"))
        .map_err(|e| e.to_string())?;
    let started = Instant::now();
    let returned: Value = http
        .post(format!("{invoke}/reco-login/invocations"))
        .body(event.clone())
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let unchanged = returned == serde_json::from_str::<Value>(&event).unwrap();
    println!(
        "login returned the event {} in {:?}",
        if unchanged { "unchanged" } else { "CHANGED" },
        started.elapsed()
    );

    step("waiting for the warmer (SQS → reco-warmer) to build the pool");
    let redis_client = redis.client();
    let mut conn = redis_client
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let size: usize = redis::cmd("ZCARD")
            .arg(format!("reco:{{u:{USER}}}:pool"))
            .query_async(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        if size > 0 {
            println!(
                "pool ready: {size} videos (messages delivered: {})",
                delivered.load(Ordering::SeqCst)
            );
            break;
        }
        if Instant::now() > deadline {
            return Err("the pool was not built within 300 s; see .local/watch.log".into());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    let mut seen = HashSet::new();
    for refresh in 1..=3 {
        step(&format!(
            "refresh {refresh}: GET /api/v1/video/recommendations/{{user}}?max_results=10"
        ));
        let body: Value = http
            .get(format!("{feed_url}?max_results=10"))
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
    let total: usize = 30;
    println!(
        "\n{} distinct videos over 3 refreshes ({} shown)",
        seen.len(),
        total
    );

    stop.store(true, Ordering::SeqCst);
    let _ = tokio::time::timeout(Duration::from_secs(3), poller).await;

    step("quota spent");
    let guard = QuotaGuard::new(
        RedisConn::connect(&redis.url())
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
    if let Some(f) = &fake {
        let c = f.counters();
        println!(
            "fake YouTube metered: {} units, {} searches, {} quota refusals",
            c.units_used,
            c.searches_used,
            c.quota_violations + c.rate_violations
        );
    }
    if seen.len() != 30 {
        return Err(format!("expected 30 distinct videos, got {}", seen.len()));
    }
    Ok(())
}
