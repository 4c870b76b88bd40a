//! End to end through `cargo lambda watch`: the three real function binaries, the real
//! `sqs-event-source` stand-in for the SQS event source mapping, a private `redis-server`,
//! `moto_server` and the fake YouTube.
//!
//! Sign-in (the Cognito PostAuthentication event, invoked on the login function through
//! watch's Lambda invoke API) enqueues a warm; the stand-in delivers it to the warmer; the
//! feed is then read through the API function's URL three times, and every refresh shows
//! videos never shown before.
//!
//! `cargo lambda watch` compiles each function on its first invocation. The workspace
//! build that precedes the tests has built the same binaries, so this is incremental, but
//! the limits below are generous: a slow machine is not a reason to skip.

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reco_tests::local::{LambdaWatch, local_env_text};
use reco_tests::scenario::history_in_topic;
use reco_tests::services::{FakeConfig, repo_root};
use reco_tests::{MotoSqs, RedisServer, TEST_API_KEY, start_fake};
use serde_json::Value;

/// The `sub` of events/cognito-post-authentication.json.
const USER: &str = "8f1e2d3c-0000-4000-8000-123456789abc";
const COMPILE_LIMIT: Duration = Duration::from_secs(1200);

/// The stand-in process, killed on drop.
struct EventSource(Child);

impl Drop for EventSource {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_warms_and_three_refreshes_show_new_videos_through_cargo_lambda_watch() {
    let started = Instant::now();
    let root = repo_root();
    let redis = RedisServer::start();
    let sqs = MotoSqs::start();
    let (queue_url, dlq_url) = sqs.create_queue_with_dlq("reco-warm", 3, 60).await;
    let fake = start_fake(FakeConfig::default());

    let dir = std::env::temp_dir().join(format!("reco-watch-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let env_file = dir.join("watch.env");
    std::fs::write(
        &env_file,
        local_env_text(
            &redis.url(),
            &queue_url,
            &sqs.endpoint(),
            &fake.base_url(),
            TEST_API_KEY,
        ),
    )
    .expect("write the env file");
    let mut watch =
        LambdaWatch::start(&env_file, &dir.join("watch.log")).unwrap_or_else(|e| panic!("{e}"));

    let http = reqwest::Client::builder()
        .timeout(COMPILE_LIMIT)
        .build()
        .unwrap();
    let health = watch.function_url("reco-api", "/api/v1/health");
    if let Err(e) = watch.wait_ready(&http, &health, COMPILE_LIMIT).await {
        panic!(
            "{e}\n--- cargo lambda watch log ---\n{}",
            watch.log_tail(40)
        );
    }
    eprintln!("[watch_e2e] api ready after {:?}", started.elapsed());

    // The watch history the warmer will recommend from.
    let history = history_in_topic(&fake, 0, 3, 3);
    let events: Vec<Value> = history
        .video_ids
        .iter()
        .map(|id| serde_json::json!({"video_id": id, "watch_seconds": 240}))
        .collect();
    let response = http
        .post(watch.function_url("reco-api", &format!("/api/v1/video/history/{USER}")))
        .json(&serde_json::json!({ "events": events }))
        .send()
        .await
        .expect("POST history");
    assert_eq!(
        response.status().as_u16(),
        202,
        "{}",
        response.text().await.unwrap_or_default()
    );

    // The stand-in for the event source mapping: the real binary, as a developer runs it.
    let _source = EventSource(
        Command::new(env!("CARGO_BIN_EXE_sqs-event-source"))
            .args(["--queue-url", &queue_url, "--sqs-endpoint", &sqs.endpoint()])
            .args(["--invoke", &watch.base_url(), "--wait-secs", "1"])
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(dir.join("event-source.log")).expect("log file"),
            ))
            .spawn()
            .expect("start sqs-event-source"),
    );

    // Sign-in: the Cognito trigger through watch's Lambda invoke API.
    let event_text = std::fs::read_to_string(root.join("events/cognito-post-authentication.json"))
        .expect("the sample Cognito event");
    let event: Value = serde_json::from_str(&event_text).unwrap();
    let response = http
        .post(format!("{}/reco-login/invocations", watch.invoke_base()))
        .json(&event)
        .send()
        .await
        .expect("invoke reco-login");
    let status = response.status().as_u16();
    let returned: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(
        (status, &returned),
        (200, &event),
        "a Cognito trigger must return its event unchanged\n--- watch log ---\n{}",
        watch.log_tail(40)
    );
    eprintln!("[watch_e2e] login invoked after {:?}", started.elapsed());

    // The stand-in delivers the warm request to the warmer, which builds the pool.
    let mut conn = redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let deadline = Instant::now() + COMPILE_LIMIT;
    loop {
        watch
            .check_compile_errors()
            .unwrap_or_else(|e| panic!("{e}"));
        let size: usize = redis::cmd("LLEN")
            .arg(format!("reco:{{u:{USER}}}:feed"))
            .query_async(&mut conn)
            .await
            .expect("LLEN");
        if size > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the warmer did not build the pool within {COMPILE_LIMIT:?}\n--- event source log ---\n{}\n--- watch log ---\n{}",
            std::fs::read_to_string(dir.join("event-source.log")).unwrap_or_default(),
            watch.log_tail(40)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    eprintln!("[watch_e2e] pool built after {:?}", started.elapsed());

    // Three refreshes through the API function's URL: non-empty, never a repeat.
    let feed = watch.function_url(
        "reco-api",
        &format!("/api/v1/video/recommendations/{USER}?max_results=10"),
    );
    let watched: HashSet<&str> = history.video_ids.iter().map(String::as_str).collect();
    let mut seen = HashSet::new();
    for refresh in 1..=3 {
        let response = http.get(&feed).send().await.expect("GET feed");
        let status = response.status().as_u16();
        let body: Value = response.json().await.expect("a JSON body");
        assert_eq!(status, 200, "refresh {refresh}: {body}");
        assert_eq!(body["success"], true, "refresh {refresh}: {body}");
        let videos = body["videos"].as_array().cloned().unwrap_or_default();
        assert!(
            !videos.is_empty(),
            "refresh {refresh} returned no videos: {body}"
        );
        for v in &videos {
            let id = v["video_id"].as_str().expect("video_id").to_owned();
            assert!(
                !watched.contains(id.as_str()),
                "refresh {refresh} recommended watched {id}"
            );
            assert!(
                seen.insert(id.clone()),
                "refresh {refresh} repeated {id}: {body}"
            );
        }
    }
    assert!(
        seen.len() >= 3,
        "three refreshes, {} distinct videos",
        seen.len()
    );

    // Nothing dead-lettered on the way.
    let dead = reco_tests::apps::queue_depth(&sqs.client().await, &dlq_url).await;
    assert_eq!(dead, 0, "messages in the DLQ");
    eprintln!(
        "[watch_e2e] {} distinct videos over 3 refreshes; total {:?}",
        seen.len(),
        started.elapsed()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
