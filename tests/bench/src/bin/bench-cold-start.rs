//! Figure 3 of `BENCHMARKS.md`: cold start of each function binary, and binary sizes.
//!
//! `cargo build --release -p reco-api -p reco-warmer -p reco-login`, then
//! `cargo run --release -p reco-bench --bin bench-cold-start [-- --runs 20]`
//!
//! A minimal Lambda Runtime API (the 2018-06-01 interface: `GET .../invocation/next`,
//! `POST .../invocation/{id}/response` and `/error`, `POST .../init/error`) runs in this
//! process on a loopback port. Each run execs a fresh `target/release/<function>` with
//! `AWS_LAMBDA_RUNTIME_API` pointing at it and the environment the function needs (its own
//! redis-server, moto_server and fake YouTube), and times exec → the first `next` (the
//! init phase: config, clients, runtime) and exec → the first response (a real invocation:
//! a cache-hit feed, a warm of one user, a sign-in that enqueues a warm). Killed after.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::routing::{get, post};
use reco_bench::{Samples, ms, round1, write_json};
use reco_core::UserId;
use reco_core::config::AuthMode;
use reco_core::engine::{POOL_TARGET, PageRequest};
use reco_core::messages::{WarmReason, WarmRequest};
use reco_core::quota::Priority;
use reco_tests::scenario::history_in_topic;
use reco_tests::services::{TEST_API_KEY, repo_root};
use reco_tests::{Apps, TestEnv};
use serde_json::{Value, json};

#[derive(Default)]
struct Run {
    event: Option<String>,
    first_next: Option<Instant>,
    /// (when, body, was an error report)
    response: Option<(Instant, String, bool)>,
}

#[derive(Clone, Default)]
struct Emulator(Arc<Mutex<Run>>);

async fn next(State(emu): State<Emulator>) -> Result<(HeaderMap, String), StatusCode> {
    let event = {
        let mut run = emu.0.lock().unwrap();
        run.first_next.get_or_insert_with(Instant::now);
        run.event.take()
    };
    let Some(event) = event else {
        // No more work for this instance: hold the long poll, as Lambda does between
        // invocations (the process is killed meanwhile).
        std::future::pending::<()>().await;
        unreachable!()
    };
    let mut headers = HeaderMap::new();
    let deadline = jiff::Timestamp::now().as_millisecond() + 30_000;
    headers.insert(
        "lambda-runtime-aws-request-id",
        HeaderValue::from_static("bench-request-1"),
    );
    headers.insert(
        "lambda-runtime-deadline-ms",
        HeaderValue::from_str(&deadline.to_string()).unwrap(),
    );
    headers.insert(
        "lambda-runtime-invoked-function-arn",
        HeaderValue::from_static("arn:aws:lambda:us-east-1:123456789012:function:bench"),
    );
    headers.insert(
        "lambda-runtime-trace-id",
        HeaderValue::from_static("Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=0"),
    );
    Ok((headers, event))
}

async fn respond(State(emu): State<Emulator>, Path(_id): Path<String>, body: String) -> StatusCode {
    emu.0.lock().unwrap().response = Some((Instant::now(), body, false));
    StatusCode::ACCEPTED
}

async fn error(State(emu): State<Emulator>, body: String) -> StatusCode {
    emu.0.lock().unwrap().response = Some((Instant::now(), body, true));
    StatusCode::ACCEPTED
}

async fn invocation_error(
    State(emu): State<Emulator>,
    Path(_id): Path<String>,
    body: String,
) -> StatusCode {
    error(State(emu), body).await
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().expect("a number"))
        .unwrap_or(default)
}

fn read_event(name: &str) -> Value {
    let path = repo_root().join("events").join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).expect("sample event")).expect("json")
}

fn size_mb(path: &PathBuf) -> Option<f64> {
    std::fs::metadata(path)
        .ok()
        .map(|m| (m.len() as f64 / 1e6 * 10.0).round() / 10.0)
}

#[tokio::main]
async fn main() {
    let runs = arg("--runs", 20);
    let root = repo_root();
    let env = TestEnv::start().await;
    let apps = Apps::build(&env, None, AuthMode::Jwt).await;

    // The sample events' user, with a watch history and a pool.
    let api_event = read_event("apigw-get-recommendations.json");
    let user_id = api_event["requestContext"]["authorizer"]["jwt"]["claims"]["sub"]
        .as_str()
        .unwrap()
        .to_owned();
    let user = UserId::parse(&user_id).unwrap();
    let history = history_in_topic(&env.fake, 2, 3, 4);
    let events: Vec<reco_core::WatchEvent> = history
        .video_ids
        .iter()
        .map(|id| reco_core::WatchEvent {
            video_id: id.clone(),
            watched_at: None,
            watch_seconds: Some(300),
        })
        .collect();
    apps.services
        .engine
        .history
        .record(&user, &events, jiff::Timestamp::now().as_millisecond())
        .await
        .unwrap();
    apps.services
        .engine
        .warm(&user, Priority::Background)
        .await
        .expect("warm");
    let template = apps
        .services
        .engine
        .pool
        .take_page(
            &user,
            &PageRequest {
                max_results: POOL_TARGET,
                category_id: None,
                include_trending: true,
            },
        )
        .await
        .unwrap()
        .videos;

    // The emulator.
    let emu = Emulator::default();
    let app = axum::Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            post(respond),
        )
        .route(
            "/2018-06-01/runtime/invocation/{id}/error",
            post(invocation_error),
        )
        .route("/2018-06-01/runtime/init/error", post(error))
        .with_state(emu.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let runtime_api = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let base_env: Vec<(String, String)> = vec![
        ("REDIS_URL".into(), env.redis.url()),
        ("WARM_QUEUE_URL".into(), env.queue_url.clone()),
        ("AWS_ENDPOINT_URL_SQS".into(), env.sqs.endpoint()),
        ("AWS_REGION".into(), "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID".into(), "local".into()),
        ("AWS_SECRET_ACCESS_KEY".into(), "local".into()),
        ("YOUTUBE_API_KEY".into(), TEST_API_KEY.into()),
        ("YOUTUBE_API_BASE_URL".into(), env.fake.base_url()),
        ("AUTH_MODE".into(), "jwt".into()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE".into(), "1024".into()),
        ("AWS_LAMBDA_FUNCTION_VERSION".into(), "$LATEST".into()),
        ("AWS_LAMBDA_LOG_FORMAT".into(), "json".into()),
        ("RUST_LOG".into(), "info".into()),
        ("AWS_LAMBDA_RUNTIME_API".into(), runtime_api.clone()),
    ];

    let mut results = Vec::new();
    println!(
        "Figure 3: cold start, {runs} runs per function (exec → first next, exec → first response)"
    );
    for function in ["reco-api", "reco-warmer", "reco-login"] {
        let bin = root.join("target/release").join(function);
        assert!(
            bin.is_file(),
            "{} is missing: cargo build --release -p {function}",
            bin.display()
        );
        let log_path = std::env::temp_dir().join(format!("reco-bench-{function}.log"));
        let (mut to_next, mut to_response) = (Vec::new(), Vec::new());
        let mut errors = Vec::new();
        for i in 0..=runs {
            // Untimed per-run preparation: a fresh pool for the feed, a fresh request time
            // for the warm (an older request is skipped as already served).
            let event = match function {
                "reco-api" => {
                    apps.services
                        .engine
                        .pool
                        .replace(&user, &template)
                        .await
                        .unwrap();
                    api_event.to_string()
                }
                "reco-warmer" => {
                    let mut e = read_event("sqs-warm-batch.json");
                    e["Records"][0]["body"] = json!(
                        WarmRequest::new(user.clone(), WarmReason::SignIn, jiff::Timestamp::now())
                            .to_json()
                    );
                    e.to_string()
                }
                _ => read_event("cognito-post-authentication.json").to_string(),
            };
            *emu.0.lock().unwrap() = Run {
                event: Some(event),
                ..Run::default()
            };
            let log = std::fs::File::create(&log_path).unwrap();
            let t0 = Instant::now();
            let mut child = Command::new(&bin)
                .env_clear()
                .envs(base_env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .env("AWS_LAMBDA_FUNCTION_NAME", function)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("exec the function");
            let deadline = Instant::now() + Duration::from_secs(20);
            let outcome = loop {
                if let Some(r) = emu.0.lock().unwrap().response.clone() {
                    break Some(r);
                }
                if Instant::now() > deadline {
                    break None;
                }
                if let Ok(Some(status)) = child.try_wait() {
                    panic!(
                        "{function} exited ({status}) before answering; see {}",
                        log_path.display()
                    );
                }
                tokio::time::sleep(Duration::from_micros(200)).await;
            };
            let _ = child.kill();
            let _ = child.wait();
            let run = std::mem::take(&mut *emu.0.lock().unwrap());
            let Some((at, body, was_error)) = outcome else {
                panic!(
                    "{function} did not answer within 20 s; see {}",
                    log_path.display()
                );
            };
            if was_error {
                errors.push(body.clone());
            }
            if i == 0 {
                // The first exec pays for the page cache loading the binary: not counted.
                println!(
                    "  {function}: first response body: {}",
                    &body[..body.len().min(160)]
                );
                continue;
            }
            to_next.push(run.first_next.expect("next was called") - t0);
            to_response.push(at - t0);
        }
        let (n, r) = (Samples::new(to_next), Samples::new(to_response));
        println!(
            "{function:<12} exec→first next: median {:.1} ms, p90 {:.1} ms | exec→first response: median {:.1} ms, p90 {:.1} ms{}",
            ms(n.pct(0.5)),
            ms(n.pct(0.9)),
            ms(r.pct(0.5)),
            ms(r.pct(0.9)),
            if errors.is_empty() {
                String::new()
            } else {
                format!(" ({} error reports!)", errors.len())
            }
        );
        results.push(json!({
            "function": function,
            "runs": runs,
            "exec_to_first_next_ms": {"median": round1(ms(n.pct(0.5))), "p90": round1(ms(n.pct(0.9))), "min": round1(ms(n.pct(0.0))), "max": round1(ms(n.pct(1.0)))},
            "exec_to_first_response_ms": {"median": round1(ms(r.pct(0.5))), "p90": round1(ms(r.pct(0.9))), "min": round1(ms(r.pct(0.0))), "max": round1(ms(r.pct(1.0)))},
            "error_reports": errors.len(),
            "size_x86_64_mb": size_mb(&bin),
            "size_arm64_mb": size_mb(&root.join("target/lambda").join(function).join("bootstrap")),
        }));
    }
    println!(
        "\nRelease binary sizes (MB): function, x86-64 (target/release), arm64 (cargo lambda build --release --arm64, target/lambda/*/bootstrap)"
    );
    for r in &results {
        println!(
            "  {:<12} x86-64 {:>5}  arm64 {:>5}",
            r["function"].as_str().unwrap(),
            r["size_x86_64_mb"],
            r["size_arm64_mb"]
        );
    }
    write_json(
        "cold-start",
        &json!({"commit": reco_bench::git_describe(), "functions": results}),
    );
}
