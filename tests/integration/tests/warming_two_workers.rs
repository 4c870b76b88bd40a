//! Two warmer processes on the same queue (each its own Redis connections, guard and
//! SQS client, like two Lambda instances): every user's pool is built once for all the
//! warm requests made before it was built, however the duplicates are spread over the
//! two, and built again for a request made afterwards.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reco_core::UserId;
use reco_core::config::AuthMode;
use reco_core::messages::{WarmReason, WarmRequest};
use reco_tests::apps::queue_depth;
use reco_tests::scenario::history_in_topic;
use reco_tests::{Apps, TestEnv, api_request, response_json};
use serde_json::Value;

const USERS: usize = 6;
const COPIES: usize = 4;

fn spawn_worker(env: &TestEnv, name: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_warmer-worker"))
        .envs(env.env())
        .env("YOUTUBE_MAX_CALLS_PER_SECOND", "100")
        .env("YOUTUBE_MAX_UNITS_PER_MINUTE", "3000")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_LAMBDA_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .env("WORKER_NAME", name)
        .env("WORKER_MAX_BATCH", "2")
        .env("WORKER_IDLE_EXIT_SECS", "60")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn warmer-worker")
}

/// Stops a worker this test started and returns everything it printed.
fn stop(mut child: Child) -> String {
    let _ = child.kill();
    let _ = child.wait();
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    out
}

/// `pool built` log lines (JSON) per user.
fn builds(output: &str) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for line in output.lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if v["fields"]["message"] == "pool built" {
            let user = v["fields"]["user_id"].as_str().unwrap_or("?").to_owned();
            *counts.entry(user).or_default() += 1;
        }
    }
    counts
}

fn outcomes(output: &str) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for line in output.lines().filter(|l| l.starts_with("worker=")) {
        if let Some(kind) = line.split("outcome=").nth(1) {
            *counts.entry(kind.to_owned()).or_default() += 1;
        }
    }
    counts
}

async fn drain(sqs: &aws_sdk_sqs::Client, queue_url: &str, limit: Duration) {
    let started = Instant::now();
    // Settled = empty twice in a row (in flight counts too), so nothing is mid-batch.
    let mut empty = 0;
    while empty < 2 {
        assert!(
            started.elapsed() < limit,
            "the queue did not drain within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        if queue_depth(sqs, queue_url).await == 0 {
            empty += 1;
        } else {
            empty = 0;
        }
    }
}

async fn send_round(sqs: &aws_sdk_sqs::Client, queue_url: &str, users: &[String], apps: &Apps) {
    // COPIES requests per user, interleaved, all made before any is processed: two
    // sign-ins a moment apart and two identical copies of one (a double send).
    let mut bodies = Vec::new();
    for copy in 0..COPIES {
        for user in users {
            let at = apps.services.clock.now();
            let request = WarmRequest::new(UserId::parse(user).unwrap(), WarmReason::SignIn, at);
            bodies.push((copy, request.to_json()));
        }
    }
    for (_, body) in &bodies {
        sqs.send_message()
            .queue_url(queue_url)
            .message_body(body)
            .send()
            .await
            .expect("send");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_warmer_processes_build_each_pool_once() {
    let env = TestEnv::start().await;
    let apps = Apps::build(&env, None, AuthMode::None).await;
    let sqs = env.sqs.client().await;
    let users: Vec<String> = (0..USERS).map(|i| format!("two-workers-{i}")).collect();
    for (i, user) in users.iter().enumerate() {
        let history = history_in_topic(&env.fake, i, 3, 4);
        let response = apps
            .api
            .handle(api_request(
                "POST",
                &format!("/api/v1/video/history/{user}"),
                &[],
                Some(&history.body()),
                None,
            ))
            .await;
        assert_eq!(response_json(&response).0, 202);
    }

    // Round 1: the queue is full before the workers start, so both take from it at once.
    send_round(&sqs, &env.queue_url, &users, &apps).await;
    let started = Instant::now();
    let a = spawn_worker(&env, "a");
    let b = spawn_worker(&env, "b");
    drain(&sqs, &env.queue_url, Duration::from_secs(120)).await;
    let round1 = started.elapsed();

    // Round 2: one new request per user, made after the pools were built.
    for user in &users {
        let request = WarmRequest::new(
            UserId::parse(user).unwrap(),
            WarmReason::PoolLow,
            apps.services.clock.now(),
        );
        sqs.send_message()
            .queue_url(&env.queue_url)
            .message_body(request.to_json())
            .send()
            .await
            .unwrap();
    }
    drain(&sqs, &env.queue_url, Duration::from_secs(120)).await;

    let out_a = stop(a);
    let out_b = stop(b);
    let (builds_a, builds_b) = (builds(&out_a), builds(&out_b));
    let (outcomes_a, outcomes_b) = (outcomes(&out_a), outcomes(&out_b));
    println!("round 1 drained in {round1:?}");
    println!("worker a: outcomes {outcomes_a:?}, builds {builds_a:?}");
    println!("worker b: outcomes {outcomes_b:?}, builds {builds_b:?}");
    let handled = |o: &BTreeMap<String, usize>| o.values().sum::<usize>();
    assert!(
        handled(&outcomes_a) > 0 && handled(&outcomes_b) > 0,
        "both processes must have consumed messages"
    );
    assert_eq!(
        handled(&outcomes_a) + handled(&outcomes_b),
        USERS * (COPIES + 1),
        "every message handled exactly once (none failed, none redelivered)"
    );
    for user in &users {
        let total = builds_a.get(user).unwrap_or(&0) + builds_b.get(user).unwrap_or(&0);
        assert_eq!(
            total, 2,
            "{user}: one build for round 1's {COPIES} requests, one for round 2's"
        );
    }
    assert_eq!(queue_depth(&sqs, &env.dlq_url).await, 0);
    let counters = env.fake.counters();
    println!(
        "fake: {} units, {} searches, {} quota violations, {} rate violations",
        counters.units_used,
        counters.searches_used,
        counters.quota_violations,
        counters.rate_violations
    );
    assert_eq!(counters.quota_violations + counters.rate_violations, 0);
}
