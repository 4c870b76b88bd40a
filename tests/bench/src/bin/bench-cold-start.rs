//! Figure 3 of `BENCHMARKS.md`: cold start of each function binary, and binary sizes.
//!
//! `cargo build --release -p reco-api`, `-p reco-warmer`, `-p reco-login` (one package at
//! a time, as each is deployed), then
//! `cargo run --release -p reco-bench --bin bench-cold-start [-- --runs 20] [--load 500]`.
//! `--only FUNCTION` runs one function. `--bins NAME=DIR,NAME=DIR` compares builds (release profiles, say) in one run: the
//! variants take turns exec by exec, so the machine's noise falls on all of them alike.
//!
//! After the cold starts, one process of each function serves `--load` invocations in a
//! row (the feed for 100 users with pools, warms of 100 users, sign-ins of 100 users) and
//! its peak RSS (`VmHWM`) is read: what the function's memory size must hold. Each of
//! those invocations is timed from being handed out to its answer (for the API: a cache
//! hit through the Runtime API, the deployed binary's own hit latency).
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
use reco_core::messages::{WarmReason, WarmRequest};
use reco_tests::services::{TEST_API_KEY, repo_root};
use reco_tests::{Apps, TestEnv};
use serde_json::{Value, json};

#[derive(Default)]
struct Run {
    /// The invocations still to hand out, in order.
    events: std::collections::VecDeque<String>,
    first_next: Option<Instant>,
    /// The latest answer: (when, body, was an error report).
    response: Option<(Instant, String, bool)>,
    answers: usize,
    errors: usize,
    /// When the invocation being served was handed out, and each invocation's time from
    /// being handed out to its answer.
    handed: Option<Instant>,
    latencies: Vec<Duration>,
    /// The API's answers by `meta.cache_status` (what the load actually exercised).
    cache_statuses: std::collections::BTreeMap<String, usize>,
}

#[derive(Clone, Default)]
struct Emulator(Arc<Mutex<Run>>);

async fn next(State(emu): State<Emulator>) -> Result<(HeaderMap, String), StatusCode> {
    let event = {
        let mut run = emu.0.lock().unwrap();
        run.first_next.get_or_insert_with(Instant::now);
        let event = run.events.pop_front();
        if event.is_some() {
            run.handed = Some(Instant::now());
        }
        event
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
    let mut run = emu.0.lock().unwrap();
    let now = Instant::now();
    if let Some(handed) = run.handed.take() {
        run.latencies.push(now - handed);
    }
    let status = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|r| serde_json::from_str::<Value>(r["body"].as_str()?).ok())
        .and_then(|b| Some(b["meta"]["cache_status"].as_str()?.to_owned()));
    if let Some(status) = status {
        *run.cache_statuses.entry(status).or_default() += 1;
    }
    run.response = Some((now, body, false));
    run.answers += 1;
    StatusCode::ACCEPTED
}

async fn error(State(emu): State<Emulator>, body: String) -> StatusCode {
    let mut run = emu.0.lock().unwrap();
    run.response = Some((Instant::now(), body, true));
    run.answers += 1;
    run.errors += 1;
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

/// The builds compared: `--bins NAME=DIR,...`, else `target/release`.
fn variants(root: &std::path::Path) -> Vec<(String, PathBuf)> {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == "--bins") {
        Some(i) => args
            .get(i + 1)
            .expect("--bins NAME=DIR,NAME=DIR")
            .split(',')
            .map(|kv| {
                let (name, dir) = kv.split_once('=').expect("--bins NAME=DIR,NAME=DIR");
                (name.to_owned(), root.join(dir))
            })
            .collect(),
        None => vec![("release".to_owned(), root.join("target/release"))],
    }
}

/// The users of one build's load.
const LOAD_USERS: usize = 100;

/// The sample events' user.
const SAMPLE_USER: &str = "8f1e2d3c-0000-4000-8000-123456789abc";

/// The sample user's id with its last group replaced by `k`: one of the load's users.
fn load_user(k: usize) -> String {
    format!("8f1e2d3c-0000-4000-8000-{k:012}")
}

/// Peak resident set of `pid` (`VmHWM`), in MB.
fn peak_rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some((kb / 1024.0 * 10.0).round() / 10.0)
}

/// The sample SQS batch with one sign-in warm request for `user`, requested now (an older
/// request would be skipped as already served).
fn warm_event(user: &UserId) -> String {
    let mut e = read_event("sqs-warm-batch.json");
    e["Records"][0]["body"] =
        json!(WarmRequest::new(user.clone(), WarmReason::SignIn, jiff::Timestamp::now()).to_json());
    e.to_string()
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
    let template = reco_bench::warmed_pool(&apps, &env.fake, 2, &user).await;

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

    let variants = variants(&root);
    let load = arg("--load", 500);
    let exec = |bin: &PathBuf, function: &str, log_path: &PathBuf| {
        let log = std::fs::File::create(log_path).unwrap();
        Command::new(bin)
            .env_clear()
            .envs(base_env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("AWS_LAMBDA_FUNCTION_NAME", function)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("exec the function")
    };

    let mut results = Vec::new();
    println!(
        "Figure 3: cold start, {runs} runs per function and build (exec → first next, exec → first response); builds: {}",
        variants
            .iter()
            .map(|(n, d)| format!("{n} = {}", d.display()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let only = std::env::args().skip_while(|a| a != "--only").nth(1);
    for function in ["reco-api", "reco-warmer", "reco-login"] {
        if only.as_deref().is_some_and(|o| o != function) {
            continue;
        }
        // With --bins, a build may hold only some functions (the profile comparison of
        // the API alone); the default build must hold all three.
        let variants: Vec<(String, PathBuf)> = variants
            .iter()
            .filter(|(_, dir)| dir.join(function).is_file())
            .cloned()
            .collect();
        if variants.is_empty() {
            assert!(
                std::env::args().any(|a| a == "--bins"),
                "no build of {function}: cargo build --release -p {function}"
            );
            println!("{function:<12} not in any of the builds compared: skipped");
            continue;
        }
        let log_path = std::env::temp_dir().join(format!("reco-bench-{function}.log"));
        // Per build: exec→next, exec→response, error reports.
        let mut samples: Vec<(Vec<Duration>, Vec<Duration>, Vec<String>)> =
            vec![Default::default(); variants.len()];
        for i in 0..=runs {
            // The builds take turns, starting from a different one each round.
            for turn in 0..variants.len() {
                let v = (i + turn) % variants.len();
                let bin = variants[v].1.join(function);
                // Untimed per-run preparation: a fresh pool for the feed, a fresh request
                // time for the warm (an older request is skipped as already served).
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
                    "reco-warmer" => warm_event(&user),
                    _ => read_event("cognito-post-authentication.json").to_string(),
                };
                *emu.0.lock().unwrap() = Run {
                    events: [event].into(),
                    ..Run::default()
                };
                let t0 = Instant::now();
                let mut child = exec(&bin, function, &log_path);
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
                    samples[v].2.push(body.clone());
                }
                if i == 0 {
                    // The first exec pays for the page cache loading the binary: not counted.
                    println!(
                        "  {function} ({}): first response body: {}",
                        variants[v].0,
                        &body[..body.len().min(160)]
                    );
                    continue;
                }
                samples[v]
                    .0
                    .push(run.first_next.expect("next was called") - t0);
                samples[v].1.push(at - t0);
            }
        }
        for (v, (name, dir)) in variants.iter().enumerate() {
            let bin = dir.join(function);
            let (to_next, to_response, errors) = std::mem::take(&mut samples[v]);
            let (n, r) = (Samples::new(to_next), Samples::new(to_response));
            let (rss, served, each, statuses) = load_peak_rss(
                function,
                &bin,
                load,
                &exec,
                &emu,
                &apps,
                &template,
                &api_event,
                &log_path,
                // Each build's load has users of its own: a user's served marks from one
                // build's load would otherwise empty the next one's pages.
                v * LOAD_USERS,
            )
            .await;
            println!(
                "{function:<12} {name:<10} exec→first next: median {:.1} ms, p90 {:.1} ms | exec→first response: median {:.1} ms, p90 {:.1} ms | {served} warm invocations: p50 {:.2} ms, p99 {:.2} ms, peak RSS {rss:.1} MB{}",
                ms(n.pct(0.5)),
                ms(n.pct(0.9)),
                ms(r.pct(0.5)),
                ms(r.pct(0.9)),
                ms(each.pct(0.5)),
                ms(each.pct(0.99)),
                if errors.is_empty() {
                    String::new()
                } else {
                    format!(" ({} error reports!)", errors.len())
                }
            );
            let arm64 = if variants.len() == 1 {
                size_mb(&root.join("target/lambda").join(function).join("bootstrap"))
            } else {
                None
            };
            results.push(json!({
                "function": function,
                "build": name,
                "bin_dir": dir.strip_prefix(&root).unwrap_or(dir).display().to_string(),
                "runs": runs,
                "exec_to_first_next_ms": {"median": round1(ms(n.pct(0.5))), "p90": round1(ms(n.pct(0.9))), "min": round1(ms(n.pct(0.0))), "max": round1(ms(n.pct(1.0)))},
                "exec_to_first_response_ms": {"median": round1(ms(r.pct(0.5))), "p90": round1(ms(r.pct(0.9))), "min": round1(ms(r.pct(0.0))), "max": round1(ms(r.pct(1.0)))},
                "error_reports": errors.len(),
                "load_invocations": served,
                "load_cache_statuses": statuses,
                "load_invocation_ms": {"p50": (ms(each.pct(0.5)) * 100.0).round() / 100.0, "p99": (ms(each.pct(0.99)) * 100.0).round() / 100.0},
                "peak_rss_mb": rss,
                "size_x86_64_mb": size_mb(&bin),
                "size_arm64_mb": arm64,
            }));
        }
    }
    println!(
        "\nRelease binary sizes (MB): function, build, x86-64, arm64 (cargo lambda build --release --arm64, target/lambda/*/bootstrap)"
    );
    for r in &results {
        println!(
            "  {:<12} {:<10} x86-64 {:>5}  arm64 {:>5}",
            r["function"].as_str().unwrap(),
            r["build"].as_str().unwrap(),
            r["size_x86_64_mb"],
            r["size_arm64_mb"]
        );
    }
    let out = std::env::args()
        .skip_while(|a| a != "--out")
        .nth(1)
        .unwrap_or_else(|| "cold-start".to_owned());
    write_json(
        &out,
        &json!({"commit": reco_bench::git_describe(), "functions": results}),
    );
}

/// One process of `function` serves `load` invocations in a row, for 100 users (their
/// feeds from pools, their warms, their sign-ins); its peak RSS is read before it is
/// killed. Any error report fails the benchmark: a figure from failing calls is no figure.
#[allow(clippy::too_many_arguments)]
async fn load_peak_rss(
    function: &str,
    bin: &PathBuf,
    load: usize,
    exec: &impl Fn(&PathBuf, &str, &PathBuf) -> std::process::Child,
    emu: &Emulator,
    apps: &Apps,
    template: &[reco_core::Video],
    api_event: &Value,
    log_path: &PathBuf,
    first_user: usize,
) -> (
    f64,
    usize,
    Samples,
    std::collections::BTreeMap<String, usize>,
) {
    const USERS: usize = LOAD_USERS;
    // A warm costs YouTube calls: one per user is the warmer's load.
    let load = if function == "reco-warmer" {
        load.min(USERS)
    } else {
        load
    };
    let mut events = std::collections::VecDeque::new();
    for k in 0..load {
        let id = load_user(first_user + k % USERS);
        let event = match function {
            "reco-api" => api_event.to_string().replace(SAMPLE_USER, &id),
            "reco-warmer" => warm_event(&UserId::parse(&id).unwrap()),
            _ => read_event("cognito-post-authentication.json")
                .to_string()
                .replace(SAMPLE_USER, &id),
        };
        events.push_back(event);
    }
    if function == "reco-api" {
        // Every user's pool holds 240 videos: 12 pages of 20, more than 5 requests take.
        for k in 0..USERS {
            let user = UserId::parse(&load_user(first_user + k)).unwrap();
            apps.services
                .engine
                .pool
                .replace(&user, template)
                .await
                .unwrap();
        }
    }
    *emu.0.lock().unwrap() = Run {
        events,
        ..Run::default()
    };
    let mut child = exec(bin, function, log_path);
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let (answers, errors) = {
            let run = emu.0.lock().unwrap();
            (run.answers, run.errors)
        };
        assert_eq!(
            errors,
            0,
            "{function} reported an error under load; see {}",
            log_path.display()
        );
        if answers == load {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{function} answered {answers} of {load} invocations in 300 s; see {}",
            log_path.display()
        );
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "{function} exited ({status}) under load; see {}",
                log_path.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let rss = peak_rss_mb(child.id()).expect("VmHWM of a live process");
    let _ = child.kill();
    let _ = child.wait();
    let run = std::mem::take(&mut *emu.0.lock().unwrap());
    if function == "reco-api" {
        println!(
            "  {function}: the load's answers by cache status: {:?}",
            run.cache_statuses
        );
    }
    (rss, load, Samples::new(run.latencies), run.cache_statuses)
}
