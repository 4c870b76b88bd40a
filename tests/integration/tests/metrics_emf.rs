//! The CloudWatch metrics the template's alarms and dashboard read, as the functions write
//! them (EMF lines), checked against what really happened: the fake YouTube's own meter,
//! the API's cache statuses, a failed enqueue.

use std::time::Duration;

use reco_core::UserId;
use reco_core::config::AuthMode;
use reco_core::metrics::{self, Metric};
use reco_core::quota::Priority;
use reco_login::Login;
use reco_tests::scenario::history_in_topic;
use reco_tests::{Apps, TestEnv, api_request, response_json};
use serde_json::{Value, json};

fn lines_since(buffer: &std::sync::Mutex<Vec<String>>, from: usize) -> Vec<String> {
    buffer.lock().unwrap()[from..].to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emitted_metrics_match_what_happened() {
    // Installed before the services, which would otherwise choose stdout.
    let buffer = metrics::capture().expect("the first sink of this process");
    let env = TestEnv::start().await;
    let apps = Apps::build(&env, None, AuthMode::None).await;

    // Every line is an EMF object: `_aws` at the top, namespace reco, each metric a member.
    // Quota: the units and searches the metrics report are the fake's own meter.
    let history = history_in_topic(&env.fake, 3, 3, 4);
    apps.record_history("metered", &history.body()).await;
    let before = env.fake.counters();
    let mark = buffer.lock().unwrap().len();
    apps.services
        .engine
        .warm(&UserId::parse("metered").unwrap(), Priority::Background)
        .await
        .expect("warm");
    let after = env.fake.counters();
    let lines = lines_since(&buffer, mark);
    for line in &lines {
        let v: Value = serde_json::from_str(line).expect("an EMF line is JSON");
        let directive = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "reco", "{line}");
        for m in directive["Metrics"].as_array().unwrap() {
            let name = m["Name"].as_str().unwrap();
            assert!(v.get(name).is_some_and(Value::is_number), "{line}");
        }
    }
    let units = metrics::sum(&lines, Metric::QuotaUnitsUsed);
    let searches = metrics::sum(&lines, Metric::QuotaSearchesUsed);
    println!(
        "warm: metrics say {units} units, {searches} searches; the fake metered {} units, {} searches",
        after.units_used - before.units_used,
        after.searches_used - before.searches_used
    );
    assert!(units > 0.0);
    assert_eq!(units as u64, after.units_used - before.units_used);
    assert_eq!(searches as u64, after.searches_used - before.searches_used);

    // API: one line per request with its latency, and a hit or a miss for feeds.
    let mark = buffer.lock().unwrap().len();
    for user in ["metered", "metered", "never-warmed"] {
        let (status, _) = response_json(
            &apps
                .api
                .handle(api_request(
                    "GET",
                    &format!("/api/v1/video/recommendations/{user}"),
                    &[("max_results", "5")],
                    None,
                    None,
                ))
                .await,
        );
        assert_eq!(status, 200);
    }
    let (status, _) = response_json(
        &apps
            .api
            .handle(api_request("GET", "/api/v1/health", &[], None, None))
            .await,
    );
    assert_eq!(status, 200);
    let lines: Vec<String> = lines_since(&buffer, mark)
        .into_iter()
        .filter(|l| l.contains("ApiLatencyMs"))
        .collect();
    assert_eq!(lines.len(), 4, "{lines:#?}");
    assert_eq!(metrics::sum(&lines, Metric::CacheHit), 2.0);
    assert_eq!(metrics::sum(&lines, Metric::CacheMiss), 1.0);
    assert!(metrics::sum(&lines, Metric::ApiLatencyMs) > 0.0);

    // Login: a warm request SQS refuses is counted, and the sign-in still completes.
    let mark = buffer.lock().unwrap().len();
    let client =
        reco_core::queue::sqs_client_with(Some(&env.sqs.endpoint()), Some(Duration::from_secs(1)))
            .await;
    let missing_queue = format!("{}/123456789012/no-such-queue", env.sqs.endpoint());
    let login = Login {
        pool: Some(apps.services.engine.pool.clone()),
        queue: Some(reco_core::queue::WarmQueue::new(
            client,
            missing_queue,
            Duration::from_secs(1),
        )),
        clock: apps.services.clock.clone(),
    };
    let event = json!({
        "version": "1", "triggerSource": "PostAuthentication_Authentication",
        "region": "us-east-1", "userPoolId": "us-east-1_test", "userName": "u",
        "callerContext": {"awsSdkVersion": "x", "clientId": "c"},
        "request": {"userAttributes": {"sub": "refused-user"}}, "response": {}
    });
    assert_eq!(login.handle(event.clone()).await, event);
    let lines = lines_since(&buffer, mark);
    assert_eq!(
        metrics::sum(&lines, Metric::WarmEnqueueFailed),
        1.0,
        "{lines:#?}"
    );
}
