//! The warmer's SQS semantics against moto with a real redrive policy: a batch with a
//! poison message and a duplicate, partial batch failures, the DLQ, and transient
//! failures retried by SQS.

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lambda_events::sqs::SqsBatchResponse;
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use fake_youtube::Fault;
use reco_core::UserId;
use reco_core::config::AuthMode;
use reco_core::messages::{WarmReason, WarmRequest};
use reco_core::store::keys;
use reco_tests::apps::{config_with, queue_depth, sqs_event_from_messages};
use reco_tests::scenario::history_in_topic;
use reco_tests::{Apps, TestEnv};
use reco_warmer::{ItemOutcome, Warmer};
use support::{log_lines, logs};

const ARN: &str = "arn:aws:sqs:us-east-1:123456789012:reco-warm-fast";

fn count_lines(needles: &[&str]) -> usize {
    log_lines()
        .iter()
        .filter(|l| needles.iter().all(|n| l.contains(n)))
        .count()
}

async fn send_body(sqs: &aws_sdk_sqs::Client, queue_url: &str, body: &str) -> String {
    sqs.send_message()
        .queue_url(queue_url)
        .message_body(body)
        .send()
        .await
        .expect("send")
        .message_id
        .expect("message id")
}

async fn receive(sqs: &aws_sdk_sqs::Client, queue_url: &str, max: i32) -> Vec<Message> {
    sqs.receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(max)
        .wait_time_seconds(1)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .send()
        .await
        .expect("receive")
        .messages
        .unwrap_or_default()
}

/// Receives until `want` messages are back (a redelivery after the visibility timeout),
/// or fails the test after `limit`: no fixed sleep that a loaded machine can outrun.
async fn receive_until(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    want: usize,
    limit: Duration,
) -> Vec<Message> {
    let started = Instant::now();
    let mut got = Vec::new();
    while got.len() < want {
        assert!(
            started.elapsed() < limit,
            "{} of {want} messages came back within {limit:?}",
            got.len()
        );
        got.extend(receive(sqs, queue_url, (want - got.len()) as i32).await);
    }
    got
}

/// One invocation the way the event source mapping makes it: the handler's batch
/// response decides which messages are deleted; failed ones stay for redelivery.
async fn invoke_and_settle(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    warmer: &Arc<Warmer>,
    messages: &[Message],
) -> SqsBatchResponse {
    let response = warmer.handle(sqs_event_from_messages(messages, ARN)).await;
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    for m in messages {
        if !failed.contains(&m.message_id().unwrap()) {
            sqs.delete_message()
                .queue_url(queue_url)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .expect("delete");
        }
    }
    response
}

fn failed_ids(response: &SqsBatchResponse) -> Vec<String> {
    let mut ids: Vec<String> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    ids.sort();
    ids
}

fn receive_count(m: &Message) -> u32 {
    m.attributes()
        .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_duplicate_and_eight_good_messages_in_one_batch() {
    logs();
    let env = TestEnv::start().await;
    // Smoothing wide enough that eight warms do not queue for 30 s behind 10 calls/s.
    let config = config_with(&env, &[("YOUTUBE_MAX_CALLS_PER_SECOND", "100")]);
    let apps = Apps::build_with(&env, config, None, AuthMode::None).await;
    let sqs = env.sqs.client().await;
    let (queue, dlq) = env.sqs.create_queue_with_dlq("reco-warm-fast", 3, 1).await;

    let users: Vec<String> = (0..8).map(|i| format!("batch-user-{i}")).collect();
    for (i, user) in users.iter().enumerate() {
        let history = history_in_topic(&env.fake, i, 3, 4);
        apps.record_history(user, &history.body()).await;
    }
    let now = apps.services.clock.now();
    let bodies: Vec<String> = users
        .iter()
        .map(|u| WarmRequest::new(UserId::parse(u).unwrap(), WarmReason::SignIn, now).to_json())
        .collect();
    // Eight good messages, a duplicate of the fourth (the same body, as SQS's
    // at-least-once delivery or a double send produces), and a poison message whose
    // user id would break out of its Redis hash tag.
    let poison_body =
        r#"{"v":1,"user_id":"evil}:x","reason":"sign_in","requested_at":"2026-11-25T10:00:00Z"}"#;
    let mut by_id: HashMap<String, String> = HashMap::new();
    for body in &bodies[..4] {
        by_id.insert(send_body(&sqs, &queue, body).await, body.clone());
    }
    let poison_id = send_body(&sqs, &queue, poison_body).await;
    by_id.insert(poison_id.clone(), poison_body.to_owned());
    let duplicate_id = send_body(&sqs, &queue, &bodies[3]).await;
    by_id.insert(duplicate_id.clone(), bodies[3].clone());
    for body in &bodies[4..] {
        by_id.insert(send_body(&sqs, &queue, body).await, body.clone());
    }

    let mut batch = Vec::new();
    for _ in 0..5 {
        batch.extend(receive(&sqs, &queue, 10 - batch.len() as i32).await);
        if batch.len() == 10 {
            break;
        }
    }
    assert_eq!(batch.len(), 10, "one batch of ten");

    let before = env.fake.counters();
    let started = Instant::now();
    let response = invoke_and_settle(&sqs, &queue, &apps.warmer, &batch).await;
    let took = started.elapsed();
    let after = env.fake.counters();
    println!(
        "batch of 10 in {took:?}: {} units, {} searches, {} requests to the fake; failures {:?}",
        after.units_used - before.units_used,
        after.searches_used - before.searches_used,
        after.requests - before.requests,
        failed_ids(&response)
    );
    // The batch response names exactly the failed items: the poison message, plus any
    // item that failed transiently (on a loaded machine the quota guard's Redis bound can
    // trip; it fails closed), each of which logged "warm failed; SQS will retry".
    let transient: Vec<String> = by_id
        .keys()
        .filter(|id| count_lines(&[id.as_str(), "warm failed; SQS will retry"]) == 1)
        .cloned()
        .collect();
    let mut expected = transient.clone();
    expected.push(poison_id.clone());
    expected.sort();
    assert_eq!(failed_ids(&response), expected);
    println!(
        "transient failures in the batch (retried by SQS): {}",
        transient.len()
    );
    // The poison message: exactly one log line, saying why.
    let poison_lines: Vec<String> = log_lines()
        .into_iter()
        .filter(|l| l.contains(&poison_id))
        .collect();
    println!("poison log line: {poison_lines:?}");
    assert_eq!(poison_lines.len(), 1, "{poison_lines:?}");
    assert!(
        poison_lines[0].contains("poison") && poison_lines[0].contains("user_id may contain only"),
        "{poison_lines:?}"
    );

    // The poison message: received, reported failed, back after the visibility timeout,
    // until the redrive policy (maxReceiveCount 3) moves it to the DLQ.
    let started = Instant::now();
    let mut deliveries = 1; // the batch above
    let mut last_count = 1;
    while queue_depth(&sqs, &dlq).await == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "the poison message never reached the DLQ"
        );
        // `receive` long-polls for a second: no fixed sleep before it.
        let messages = receive(&sqs, &queue, 10).await;
        if messages.is_empty() {
            continue;
        }
        for m in &messages {
            let id = m.message_id().unwrap();
            assert!(id == poison_id || transient.iter().any(|t| t == id), "{id}");
            if id == poison_id {
                last_count = receive_count(m);
                deliveries += 1;
            }
        }
        let failures_before: Vec<usize> = messages
            .iter()
            .map(|m| count_lines(&[m.message_id().unwrap(), "warm failed; SQS will retry"]))
            .collect();
        let response = invoke_and_settle(&sqs, &queue, &apps.warmer, &messages).await;
        // Expected failures: the poison message, and a retried item only if it failed
        // transiently again (and said so).
        let mut expected: Vec<String> = messages
            .iter()
            .zip(&failures_before)
            .filter(|(m, before)| {
                let id = m.message_id().unwrap();
                id == poison_id || count_lines(&[id, "warm failed; SQS will retry"]) > **before
            })
            .map(|(m, _)| m.message_id().unwrap().to_owned())
            .collect();
        expected.sort();
        assert_eq!(failed_ids(&response), expected, "redelivery round");
    }
    // Eight pools built, each once: one "pool built" line per user, a pool in Redis each.
    let mut redis = env.redis.client().get_connection().unwrap();
    for user in &users {
        let builds = count_lines(&["pool built", &format!("user_id={user} ")]);
        assert_eq!(builds, 1, "{user}: built {builds} times");
        // The pool's pages: a header line each, then one entry per line.
        let pages: Vec<String> = redis::cmd("LRANGE")
            .arg(keys::feed(&UserId::parse(user).unwrap()))
            .arg(0)
            .arg(-1)
            .query(&mut redis)
            .unwrap();
        let size: usize = pages.iter().map(|p| p.lines().count() - 1).sum();
        assert!(size >= 100, "{user}: pool of {size}");
    }
    assert_eq!(count_lines(&["pool built"]), 8);
    assert_eq!(
        count_lines(&[&duplicate_id, "Duplicate"]),
        1,
        "the duplicate was recognised as such"
    );
    let dead = receive(&sqs, &dlq, 10).await;
    println!(
        "poison moved to the DLQ after {deliveries} deliveries (last receive count {last_count}) in {:?}",
        started.elapsed()
    );
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body().unwrap(), poison_body);
    assert_eq!(deliveries, 3, "maxReceiveCount is 3");
    assert_eq!(queue_depth(&sqs, &queue).await, 0);
    // One line per delivery, each saying why.
    assert_eq!(count_lines(&[&poison_id, "poison"]), deliveries);
    // The duplicate arriving again later (another batch) costs nothing at all: the pool
    // was generated after it was requested.
    let before = env.fake.counters();
    send_body(&sqs, &queue, &bodies[3]).await;
    let again = receive(&sqs, &queue, 10).await;
    assert_eq!(again.len(), 1);
    let outcomes = apps
        .warmer
        .run_batch(sqs_event_from_messages(&again, ARN))
        .await;
    assert_eq!(outcomes[0].1, ItemOutcome::AlreadyFresh);
    sqs.delete_message()
        .queue_url(&queue)
        .receipt_handle(again[0].receipt_handle().unwrap())
        .send()
        .await
        .unwrap();
    let after = env.fake.counters();
    assert_eq!(after.units_used, before.units_used);
    assert_eq!(after.requests, before.requests);

    assert_eq!(by_id.len(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_are_reported_and_retried_by_sqs() {
    logs();
    let mut env = TestEnv::start().await;
    let apps = Apps::build(&env, None, AuthMode::None).await;
    let sqs = env.sqs.client().await;
    let (queue, dlq) = env.sqs.create_queue_with_dlq("reco-warm-fast", 3, 1).await;
    let user = "transient-user";
    let history = history_in_topic(&env.fake, 1, 3, 4);
    apps.record_history(user, &history.body()).await;
    let body = WarmRequest::new(
        UserId::parse(user).unwrap(),
        WarmReason::SignIn,
        apps.services.clock.now(),
    )
    .to_json();
    let id = send_body(&sqs, &queue, &body).await;

    // 1. YouTube answers 500 to every attempt the client makes for one call.
    env.fake.inject_faults(Fault::ServerError, 3);
    let messages = receive(&sqs, &queue, 10).await;
    let response = invoke_and_settle(&sqs, &queue, &apps.warmer, &messages).await;
    assert_eq!(failed_ids(&response), vec![id.clone()]);
    assert!(
        count_lines(&[&id, "warm failed; SQS will retry"]) == 1,
        "{:?}",
        log_lines()
    );
    assert!(
        !apps
            .warmer
            .is_locked(&UserId::parse(user).unwrap())
            .await
            .unwrap()
    );

    // 2. Redis is gone when SQS redelivers: still that item's failure, not a crash.
    env.redis.kill();
    let messages = receive_until(&sqs, &queue, 1, Duration::from_secs(20)).await;
    assert_eq!(
        messages.len(),
        1,
        "SQS redelivers after the visibility timeout"
    );
    assert_eq!(receive_count(&messages[0]), 2);
    let response = invoke_and_settle(&sqs, &queue, &apps.warmer, &messages).await;
    assert_eq!(failed_ids(&response), vec![id.clone()]);
    assert_eq!(
        count_lines(&[&id, "warm failed; SQS will retry"]),
        2,
        "one transient failure logged per failed delivery: {:?}",
        log_lines()
    );

    // 3. Redis is back (empty: the history is sent again); the third delivery warms.
    env.redis.restart();
    apps.record_history(user, &history.body()).await;
    let messages = receive_until(&sqs, &queue, 1, Duration::from_secs(20)).await;
    assert_eq!(messages.len(), 1);
    assert_eq!(receive_count(&messages[0]), 3);
    let outcomes = apps
        .warmer
        .run_batch(sqs_event_from_messages(&messages, ARN))
        .await;
    match &outcomes[0].1 {
        ItemOutcome::Warmed(w) => {
            println!("third delivery warmed: pool of {}", w.pool_size);
            assert!(w.pool_size >= 100);
        }
        other => panic!("third delivery: {other:?}"),
    }
    sqs.delete_message()
        .queue_url(&queue)
        .receipt_handle(messages[0].receipt_handle().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(queue_depth(&sqs, &queue).await, 0);
    assert_eq!(queue_depth(&sqs, &dlq).await, 0);
}
