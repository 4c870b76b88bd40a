//! Eight defects a review found, each reproduced through the real services (redis-server,
//! moto_server, the fake YouTube over HTTP, and the real function binaries where the
//! defect is in how a function runs) before it was fixed. RELIABILITY.md lists them with
//! these tests' names.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use reco_core::UserId;
use reco_core::clock::{Clock, OffsetClock, SharedClock, next_pacific_midnight};
use reco_core::config::AuthMode;
use reco_core::messages::{WarmReason, WarmRequest};
use reco_core::quota::{Cost, Limit, Priority, QuotaGuard, QuotaLimits};
use reco_core::store::{RedisConn, keys};
use reco_core::youtube::{ApiKey, YoutubeClient, YoutubeError};
use reco_tests::apps::{config_with, deliver_once, queue_depth, sqs_event_from_messages};
use reco_tests::runtime_api::{Answer, RuntimeApi, workspace_binary};
use reco_tests::scenario::history_in_topic;
use reco_tests::services::{FakeConfig, TEST_API_KEY, start_fake};
use reco_tests::{Apps, RedisServer, TestEnv, api_request, response_json};
use reco_warmer::Warmer;
use serde_json::{Value, json};

fn conn(url: &str) -> RedisConn {
    RedisConn::connect_lazy(url, Duration::from_secs(2)).expect("redis url")
}

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

/// Spends the fake's whole day of `path` calls directly (not through our guard), as
/// someone else on the same Google project would.
async fn spend_the_fakes_day(fake: &reco_tests::Fake, path: &str, calls: usize) {
    let http = reqwest::Client::new();
    for _ in 0..calls {
        let status = http
            .get(format!("{}/{path}", fake.base_url()))
            .header("X-Goog-Api-Key", TEST_API_KEY)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200, "spending the fake's day on {path}");
    }
}

fn wide_open_limits() -> QuotaLimits {
    QuotaLimits {
        daily_units: 10_000,
        daily_searches: 100,
        margin: 0.0,
        background_share: 1.0,
        max_calls_per_second: 0,
        max_units_per_minute: 0,
        day_pacing: false,
    }
}

// -------------------------------------------------------------------------------- 1

/// Defect 1: a `quotaExceeded` must close the day the call was charged to, not the day
/// its answer arrives in (nor, when our clock runs a little ahead of Google's, the whole
/// new day).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quota_exceeded_answered_after_midnight_leaves_the_new_day_open() {
    // Pacific midnight of 2026-11-26 is 08:00 UTC.
    let midnight = ts("2026-11-26T08:00:00Z");
    let redis = RedisServer::start();
    let fake = start_fake(FakeConfig {
        daily_units: 2,
        start_clock: Some(midnight - SignedDuration::from_secs(60)),
        channels: 20,
        ..Default::default()
    });
    spend_the_fakes_day(&fake, "videos?part=id&id=abcdefghijk", 2).await;
    let clock = Arc::new(OffsetClock::new());
    let shared: SharedClock = clock.clone();
    let guard = QuotaGuard::new(conn(&redis.url()), wide_open_limits(), shared);
    let client =
        YoutubeClient::new(&fake.base_url(), ApiKey::new(TEST_API_KEY), guard.clone()).unwrap();
    let one = ["abcdefghijk".to_string()];

    // (a) Admitted 150 ms before our midnight, answered after it (the fake is slow).
    clock.set(midnight - SignedDuration::from_millis(150));
    fake.inject_faults(fake_youtube::Fault::Latency(Duration::from_millis(500)), 1);
    let err = client
        .videos(&one, Priority::Interactive)
        .await
        .unwrap_err();
    assert!(
        matches!(err, YoutubeError::QuotaExceeded { .. }),
        "the fake's day is spent: {err}"
    );
    assert!(clock.now() > midnight, "the answer came after our midnight");
    let state = guard.state().await.unwrap();
    assert_eq!(
        state.breaker_until_ms, None,
        "the exceeded day has ended; the new day must stay open"
    );
    assert!(
        guard
            .admit(Cost::ONE_UNIT, Priority::Interactive)
            .await
            .unwrap()
            .is_allowed()
    );

    // (b) Our clock 30 s into the new day, Google's still in the old one: the breaker
    // covers the skew allowance, not the day.
    clock.set(midnight + SignedDuration::from_secs(30));
    let err = client
        .videos(&one, Priority::Interactive)
        .await
        .unwrap_err();
    assert!(matches!(err, YoutubeError::QuotaExceeded { .. }), "{err}");
    let until = guard.state().await.unwrap().breaker_until_ms;
    let skew_end = midnight.as_millisecond() + reco_core::quota::MIDNIGHT_SKEW_MS;
    assert_eq!(until, Some(skew_end), "closed only for the midnight skew");
    assert!(until.unwrap() < next_pacific_midnight(clock.now()).as_millisecond());

    // Past the skew on our clock, and past midnight on Google's: calls pass again.
    clock.set(midnight + SignedDuration::from_secs(11 * 60));
    fake.set_clock(midnight + SignedDuration::from_secs(11 * 60));
    let videos = client.videos(&one, Priority::Interactive).await;
    assert!(videos.is_ok(), "{videos:?}");
    assert_eq!(fake.counters().quota_violations, 2);
}

// -------------------------------------------------------------------------------- 2

/// Defect 2: a refused search closes searches, not the units every other call needs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_out_of_searches_leaves_the_units_open() {
    let redis = RedisServer::start();
    let fake = start_fake(FakeConfig {
        daily_searches: 1,
        channels: 20,
        ..Default::default()
    });
    spend_the_fakes_day(&fake, "search?part=id&q=cats&type=video&maxResults=5", 1).await;
    let clock: SharedClock = Arc::new(OffsetClock::new());
    let guard = QuotaGuard::new(conn(&redis.url()), wide_open_limits(), clock);
    let client =
        YoutubeClient::new(&fake.base_url(), ApiKey::new(TEST_API_KEY), guard.clone()).unwrap();

    let err = client
        .search_video_ids("dogs", Priority::Background)
        .await
        .unwrap_err();
    assert!(matches!(err, YoutubeError::QuotaExceeded { .. }), "{err}");
    // A unit call still passes the guard and reaches YouTube.
    let id = fake.corpus().videos()[0].id.clone();
    let videos = client
        .videos(std::slice::from_ref(&id), Priority::Background)
        .await;
    assert!(
        videos.as_ref().is_ok_and(|v| v.len() == 1),
        "a unit call after the searches ran out: {videos:?}"
    );
    // Another search is refused by our guard, without a request to YouTube.
    let before = fake.counters().requests;
    match client.search_video_ids("birds", Priority::Background).await {
        Err(YoutubeError::Denied { limit, .. }) => {
            assert_eq!(limit, Limit::SearchBreaker);
            assert!(limit.is_daily());
        }
        other => panic!("expected the search breaker, got {other:?}"),
    }
    assert_eq!(fake.counters().requests, before);
    assert_eq!(fake.counters().quota_violations, 1);
    let state = guard.state().await.unwrap();
    assert!(state.search_breaker_until_ms.is_some() && state.breaker_until_ms.is_none());
}

// -------------------------------------------------------------------------------- 3

/// Defect 3: one account rewriting its topics and forcing refreshes cannot take more than
/// its daily budget of the day's searches; other users keep theirs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_user_cannot_take_more_than_their_share_of_the_days_searches() {
    let env = TestEnv::start().await;
    let config = config_with(
        &env,
        &[
            ("YOUTUBE_MAX_CALLS_PER_SECOND", "100"),
            ("YOUTUBE_MAX_UNITS_PER_MINUTE", "3000"),
        ],
    );
    let budget = reco_core::quota::UserBudget::default();
    let apps = Apps::build_with(&env, config, None, AuthMode::None).await;
    let topics: Vec<String> = {
        let corpus = env.fake.corpus();
        corpus.topics().iter().map(|t| t.name.clone()).collect()
    };
    assert!(topics.len() >= 12, "the fake has {} topics", topics.len());
    let mut redis = conn(&env.redis.url());
    let force = |user: &'static str, topic: String| {
        let api = &apps.api;
        async move {
            let body = json!({"interests": {"topics": [topic]}}).to_string();
            let response = api
                .handle(api_request(
                    "POST",
                    &format!("/api/v1/video/history/{user}"),
                    &[],
                    Some(&body),
                    None,
                ))
                .await;
            assert_eq!(response_json(&response).0, 202);
            api.handle(api_request(
                "GET",
                &format!("/api/v1/video/recommendations/{user}"),
                &[("force_refresh", "true")],
                None,
                None,
            ))
            .await
        }
    };
    let mut statuses = Vec::new();
    for topic in topics.iter().take(12) {
        let response = force("greedy", topic.clone()).await;
        let (status, body) = response_json(&response);
        assert!(status == 200 || status == 429, "{status} {body}");
        if status == 429 {
            assert!(response.headers().contains_key("retry-after"), "{body}");
        }
        statuses.push(status);
        // The 30-second cooldown is another defence; this test is about the budget.
        let _: () = redis::cmd("DEL")
            .arg("reco:{u:greedy}:refresh-cooldown")
            .query_async(&mut redis)
            .await
            .unwrap();
    }
    let greedy = env.fake.counters().searches_used;
    println!("greedy user: {greedy} searches over 12 forced refreshes, statuses {statuses:?}");
    assert!(
        greedy <= budget.searches,
        "one user spent {greedy} searches; their budget is {}",
        budget.searches
    );
    let (_, spent_searches) = apps
        .services
        .guard
        .user_spend(&UserId::parse("greedy").unwrap())
        .await
        .unwrap();
    assert_eq!(spent_searches, greedy, "the guard counted what YouTube saw");
    // Another user still gets their own searches.
    let response = force("modest", topics[12 % topics.len()].clone()).await;
    assert_eq!(response_json(&response).0, 200);
    assert!(
        env.fake.counters().searches_used > greedy,
        "the next user could not search"
    );
}

// -------------------------------------------------------------------------------- 4

fn sqs_record(id: &str, body: &str) -> Value {
    json!({
        "messageId": id,
        "receiptHandle": format!("handle-{id}"),
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1764064800000"},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:reco-warm",
        "awsRegion": "us-east-1"
    })
}

fn function_env(env: &TestEnv) -> Vec<(String, String)> {
    let mut vars = env.env();
    vars.push(("YOUTUBE_MAX_CALLS_PER_SECOND".into(), "100".into()));
    vars.push(("YOUTUBE_MAX_UNITS_PER_MINUTE".into(), "3000".into()));
    vars
}

/// Defect 4: against a slow YouTube, the real warmer binary answers its batch before the
/// invocation's deadline, reporting what it did not finish as failures for SQS to retry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_youtube_never_makes_a_warm_batch_outrun_its_deadline() {
    let env = TestEnv::start().await;
    let apps = Apps::build(&env, None, AuthMode::None).await;
    let users: Vec<String> = (0..8).map(|i| format!("slow-{i}")).collect();
    let mut records = Vec::new();
    for (i, user) in users.iter().enumerate() {
        apps.record_history(user, &history_in_topic(&env.fake, i, 3, 4).body())
            .await;
        let request = WarmRequest::new(
            UserId::parse(user).unwrap(),
            WarmReason::SignIn,
            apps.services.clock.now(),
        );
        records.push(sqs_record(&format!("m-{i}"), &request.to_json()));
    }
    let event = json!({ "Records": records }).to_string();
    // Every YouTube call takes 2 s: a cold warm makes a dozen of them.
    env.fake
        .inject_faults(fake_youtube::Fault::Latency(Duration::from_secs(2)), 500);
    let mut warmer = RuntimeApi::start(&workspace_binary("reco-warmer"), &function_env(&env)).await;
    let deadline = Duration::from_secs(16);
    let (answer, took) = warmer
        .invoke(&event, deadline, Duration::from_secs(90))
        .await
        .unwrap();
    println!("batch of 8 cold warms against a 2 s YouTube answered in {took:?}");
    let Answer::Response(body) = answer else {
        panic!("expected a batch response, got {answer:?}")
    };
    assert!(
        took < deadline,
        "the batch answered after its deadline ({took:?} > {deadline:?})"
    );
    let response: Value = serde_json::from_str(&body).unwrap();
    let failed: HashSet<String> = response["batchItemFailures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap().to_owned())
        .collect();
    let log = warmer.log();
    let not_started = log
        .matches("not started: the invocation's deadline is near")
        .count();
    let cut_short = log
        .matches("cut short: the invocation's deadline is near")
        .count();
    println!(
        "{} failures reported: {not_started} not started, {cut_short} cut short",
        failed.len()
    );
    assert!(
        not_started >= 1,
        "some messages must have waited past the margin"
    );
    let mut done = 0;
    for (i, user) in users.iter().enumerate() {
        let built = apps
            .services
            .engine
            .pool
            .built_from_ms(&UserId::parse(user).unwrap())
            .await
            .unwrap()
            .is_some();
        if built {
            done += 1;
        } else {
            assert!(
                failed.contains(&format!("m-{i}")),
                "{user} was not warmed and not reported as failed: it would be lost"
            );
        }
    }
    println!("{done} of 8 warmed within the deadline");
    // Every lock released: SQS's redelivery can build those pools at once.
    let mut c = conn(&env.redis.url());
    for user in &users {
        let locked: bool = redis::cmd("EXISTS")
            .arg(keys::build_lock(&UserId::parse(user).unwrap()))
            .query_async(&mut c)
            .await
            .unwrap();
        assert!(!locked, "{user}'s lock outlived the batch");
    }
}

/// The deadline check must not stop local development: `cargo lambda watch` sends a fixed
/// `Lambda-Runtime-Deadline-Ms` of 600000 (in 1970). A deadline already past when the
/// invocation starts is no deadline: the batch runs and builds the pool.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_in_the_past_as_cargo_lambda_watch_sends_is_no_deadline() {
    let env = TestEnv::start().await;
    let apps = Apps::build(&env, None, AuthMode::None).await;
    let user = UserId::parse("watched-locally").unwrap();
    apps.record_history(user.as_str(), &history_in_topic(&env.fake, 2, 3, 4).body())
        .await;
    let request = WarmRequest::new(user.clone(), WarmReason::SignIn, apps.services.clock.now());
    let event = json!({ "Records": [sqs_record("m-0", &request.to_json())] }).to_string();
    let mut warmer = RuntimeApi::start(&workspace_binary("reco-warmer"), &function_env(&env)).await;
    let (answer, took) = warmer
        .invoke_with_deadline_ms(&event, 600_000, Duration::from_secs(60))
        .await
        .unwrap();
    let Answer::Response(body) = answer else {
        panic!("expected a batch response, got {answer:?}")
    };
    let response: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        response["batchItemFailures"].as_array().map(Vec::len),
        Some(0),
        "{body}\n{}",
        warmer.log_tail()
    );
    assert!(
        apps.services
            .engine
            .pool
            .built_from_ms(&user)
            .await
            .unwrap()
            .is_some(),
        "the pool was built"
    );
    println!("a batch with a 1970 deadline warmed its user in {took:?}");
}

// -------------------------------------------------------------------------------- 5

fn feed_ids(body: &Value) -> Vec<String> {
    body["videos"]
        .as_array()
        .map(|v| {
            v.iter()
                .map(|v| v["video_id"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Defect 5: the page answered to a user with no pool yet is chosen and marked served
/// atomically, and honours `include_trending=false`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_requests_at_once_never_serve_the_same_video_and_honour_the_trending_filter() {
    let env = TestEnv::start().await;
    let apps = Arc::new(Apps::build(&env, None, AuthMode::None).await);
    // Someone fetched the region's chart already: every no-pool page comes from it.
    let warm_up = apps
        .api
        .handle(api_request(
            "GET",
            "/api/v1/video/recommendations/first",
            &[],
            None,
            None,
        ))
        .await;
    let (status, body) = response_json(&warm_up);
    assert_eq!(status, 200);
    assert_eq!(body["meta"]["cache_status"], "miss");
    assert!(!feed_ids(&body).is_empty(), "the chart is there: {body}");

    for round in 0..5 {
        let user = format!("twin-{round}");
        let mut tasks = Vec::new();
        for _ in 0..6 {
            let (apps, user) = (apps.clone(), user.clone());
            tasks.push(tokio::spawn(async move {
                let response = apps
                    .api
                    .handle(api_request(
                        "GET",
                        &format!("/api/v1/video/recommendations/{user}"),
                        &[("max_results", "5")],
                        None,
                        None,
                    ))
                    .await;
                response_json(&response)
            }));
        }
        let mut seen: HashMap<String, usize> = HashMap::new();
        for task in tasks {
            let (status, body) = task.await.unwrap();
            assert_eq!(status, 200, "{body}");
            for id in feed_ids(&body) {
                *seen.entry(id).or_default() += 1;
            }
        }
        let repeated: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
        assert!(
            repeated.is_empty(),
            "{user}: parallel first requests served {repeated:?} more than once"
        );
        assert!(!seen.is_empty());
    }

    let response = apps
        .api
        .handle(api_request(
            "GET",
            "/api/v1/video/recommendations/no-trending",
            &[("include_trending", "false")],
            None,
            None,
        ))
        .await;
    let (status, body) = response_json(&response);
    assert_eq!(status, 200);
    let trending: Vec<_> = body["videos"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["trending"] == true)
        .collect();
    assert!(
        trending.is_empty(),
        "include_trending=false served {} trending videos",
        trending.len()
    );
    assert_eq!(body["meta"]["cache_status"], "miss");
    // Nothing was marked served that was not shown.
    let served = apps
        .services
        .engine
        .pool
        .served_ids(&UserId::parse("no-trending").unwrap())
        .await
        .unwrap();
    assert_eq!(served.len(), feed_ids(&body).len());
}

// -------------------------------------------------------------------------------- 7

/// A function's environment variables.
type Env = Vec<(String, String)>;

fn sign_in_event() -> String {
    std::fs::read_to_string(
        reco_tests::services::repo_root().join("events/cognito-post-authentication.json"),
    )
    .unwrap()
}

/// Defect 7: the real login binary starts and completes every sign-in whatever the state
/// of settings it does not use, and a Redis or SQS it cannot use costs only the warm-up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_login_function_completes_sign_ins_whatever_its_settings() {
    let env = TestEnv::start().await;
    let sqs = env.sqs.client().await;
    let event = sign_in_event();
    let event_json: Value = serde_json::from_str(&event).unwrap();
    let base = function_env(&env);
    let with = |changes: &[(&str, Option<&str>)]| {
        let mut vars = base.clone();
        for (name, value) in changes {
            vars.retain(|(k, _)| k != name);
            if let Some(v) = value {
                vars.push((name.to_string(), v.to_string()));
            }
        }
        vars
    };
    // (what is wrong, the function's environment, whether a warm is enqueued)
    let cases: Vec<(&str, Env, bool)> = vec![
        (
            "a malformed YouTube setting the login function never uses",
            with(&[
                ("YOUTUBE_DAILY_UNITS", Some("lots")),
                ("YOUTUBE_API_KEY", None),
            ]),
            true,
        ),
        (
            "an unreadable Redis TLS CA file",
            with(&[
                ("REDIS_URL", Some("rediss://127.0.0.1:6390")),
                ("REDIS_TLS_CA_FILE", Some("/nonexistent/ca.pem")),
            ]),
            true,
        ),
        (
            "a malformed Redis URL",
            with(&[("REDIS_URL", Some("http://not-redis"))]),
            true,
        ),
        (
            "an unreachable Redis",
            with(&[("REDIS_URL", Some("redis://127.0.0.1:1"))]),
            true,
        ),
        ("no warm queue", with(&[("WARM_QUEUE_URL", None)]), false),
    ];
    for (case, vars, enqueues) in cases {
        let before = queue_depth(&sqs, &env.queue_url).await;
        let mut login = RuntimeApi::start(&workspace_binary("reco-login"), &vars).await;
        let (answer, took) = login
            .invoke(&event, Duration::from_secs(5), Duration::from_secs(20))
            .await
            .unwrap_or_else(|e| panic!("{case}: {e}"));
        let Answer::Response(body) = answer else {
            panic!(
                "{case}: the sign-in failed: {answer:?}\n{}",
                login.log_tail()
            )
        };
        let returned: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            returned, event_json,
            "{case}: the event must come back unchanged"
        );
        assert!(
            took < Duration::from_secs(2),
            "{case}: the sign-in took {took:?}"
        );
        let after = queue_depth(&sqs, &env.queue_url).await;
        assert_eq!(
            after - before,
            usize::from(enqueues),
            "{case}: warm requests enqueued\n{}",
            login.log_tail()
        );
        println!("{case}: sign-in answered in {took:?}, warm enqueued: {enqueues}");
        // The same user signing in again is deduplicated only where Redis works; reset.
        let mut c = conn(&env.redis.url());
        let _: () = redis::cmd("FLUSHALL").query_async(&mut c).await.unwrap();
    }
}

// -------------------------------------------------------------------------------- 8

/// The channels of the videos in a user's pool, read straight from the store: the pool's
/// ids, their videos from the shared catalog.
async fn pool_channels(env: &TestEnv, user: &UserId) -> Vec<String> {
    let mut c = conn(&env.redis.url());
    let pages: Vec<String> = redis::cmd("LRANGE")
        .arg(keys::feed(user))
        .arg(0)
        .arg(-1)
        .query_async(&mut c)
        .await
        .unwrap();
    // Each element is a page: a header line, then one entry per line.
    let video_keys: Vec<String> = pages
        .iter()
        .flat_map(|page| page.lines().skip(1))
        .map(|e| keys::video(e.split('|').next().unwrap()))
        .collect();
    let items: Vec<Option<String>> = redis::cmd("MGET")
        .arg(&video_keys)
        .query_async(&mut c)
        .await
        .unwrap();
    items
        .iter()
        .map(|raw| {
            serde_json::from_str::<Value>(raw.as_deref().expect("a pooled video is in the catalog"))
                .unwrap()["channel_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

/// Defect 8: a warm request made while another instance builds the user's pool from an
/// older history is not dropped: the pool is rebuilt from the newer history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_warm_request_is_not_dropped_while_an_older_build_holds_the_lock() {
    let env = TestEnv::start().await;
    let apps = Apps::build(&env, None, AuthMode::None).await;
    let user = UserId::parse("changing-mind").unwrap();
    let old = history_in_topic(&env.fake, 0, 3, 4);
    let new = history_in_topic(&env.fake, 5, 3, 4);
    assert!(old.channels.is_disjoint(&new.channels));
    apps.record_history(user.as_str(), &old.body()).await;

    // Instance A builds from the old history, slowly.
    env.fake
        .inject_faults(fake_youtube::Fault::Latency(Duration::from_millis(600)), 8);
    let first = WarmRequest::new(user.clone(), WarmReason::SignIn, apps.services.clock.now());
    let a = apps.warmer.clone();
    let first_event = sqs_event_from_messages(
        &[aws_sdk_sqs::types::Message::builder()
            .message_id("first")
            .body(first.to_json())
            .build()],
        "arn:aws:sqs:us-east-1:123456789012:reco-warm",
    );
    let requests_before = env.fake.counters().requests;
    let building = tokio::spawn(async move { a.run_batch(first_event).await });
    // A has read the history once it calls YouTube (for the watched videos' details).
    let started = Instant::now();
    while env.fake.counters().requests == requests_before {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "A never started building"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(apps.warmer.is_locked(&user).await.unwrap());

    // Meanwhile the user watches something else, and a newer warm request reaches B.
    apps.record_history(user.as_str(), &new.body()).await;
    let newer = WarmRequest::new(user.clone(), WarmReason::PoolLow, apps.services.clock.now());
    let sqs = env.sqs.client().await;
    sqs.send_message()
        .queue_url(&env.queue_url)
        .message_body(newer.to_json())
        .send()
        .await
        .unwrap();
    let mut b = Warmer::new(&apps.services, apps.warmer.queue.clone());
    b.max_defer = Duration::from_secs(1);
    let b = Arc::new(b);
    let outcomes = deliver_once(&sqs, &env.queue_url, &b, 10, 2).await;
    assert_eq!(outcomes.len(), 1);
    assert!(
        apps.warmer.is_locked(&user).await.unwrap(),
        "B ran while A still built"
    );
    println!("B while A builds: {:?}", outcomes[0].1);

    let a_outcome = building.await.unwrap();
    assert!(
        matches!(a_outcome[0].1, reco_warmer::ItemOutcome::Warmed(_)),
        "{a_outcome:?}"
    );
    let after_a = pool_channels(&env, &user).await;
    let from_new = |channels: &[String]| {
        channels
            .iter()
            .filter(|c| new.channels.contains(*c))
            .count()
    };
    println!(
        "after A: {} of {} pool videos from the new channels",
        from_new(&after_a),
        after_a.len()
    );

    // Whatever B did with the request must end in a pool built from the new history.
    let deadline = Instant::now() + Duration::from_secs(30);
    while queue_depth(&sqs, &env.queue_url).await > 0 {
        assert!(Instant::now() < deadline, "the queue did not drain");
        deliver_once(&sqs, &env.queue_url, &b, 10, 1).await;
    }
    let finally = pool_channels(&env, &user).await;
    println!(
        "finally: {} of {} pool videos from the new channels",
        from_new(&finally),
        finally.len()
    );
    assert!(
        from_new(&finally) > from_new(&after_a),
        "the newer request was dropped: the pool still reflects the old history"
    );
    let built_from = apps
        .services
        .engine
        .pool
        .built_from_ms(&user)
        .await
        .unwrap();
    assert!(built_from >= Some(newer.requested_at.as_millisecond()));
}
