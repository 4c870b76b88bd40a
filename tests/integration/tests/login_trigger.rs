//! The sign-in trigger against real Redis and a real SQS (moto): it never slows or breaks
//! a sign-in, a burst of sign-ins enqueues one warm, and every accepted event shape
//! (Cognito PostAuthentication without optional fields, PostConfirmation, a plain
//! `{"user_id"}`) ends up as a well-formed message on the queue.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reco_core::clock::SystemClock;
use reco_core::config::AuthMode;
use reco_core::engine::PoolStore;
use reco_core::messages::{WarmReason, WarmRequest};
use reco_core::queue::{WarmQueue, sqs_client_with};
use reco_core::store::{DEFAULT_RESPONSE_TIMEOUT, RedisConn, keys};
use reco_login::{Login, SEND_TIMEOUT};
use reco_tests::apps::{deliver_once, queue_depth};
use reco_tests::services::free_port;
use reco_tests::{Apps, RedisServer, TestEnv};
use serde_json::{Value, json};

/// The sign-in must complete within this, whatever is down.
const SIGN_IN_LIMIT: Duration = Duration::from_millis(1500);

fn event_file(name: &str) -> Value {
    let path = format!("{}/../../events/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect(&path)).unwrap()
}

fn post_authentication(sub: &str) -> Value {
    let mut event = event_file("cognito-post-authentication.json");
    event["request"]["userAttributes"]["sub"] = json!(sub);
    event
}

/// A loopback port that accepts connections and never answers: a hung endpoint, the
/// worst case for a caller (a refused port at least fails fast).
fn black_hole() -> (u16, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        let mut held = Vec::new();
        // Hold every connection open, silently, until the test process ends.
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    (port, handle)
}

async fn queue_at(endpoint: &str) -> WarmQueue {
    let client = sqs_client_with(Some(endpoint), Some(SEND_TIMEOUT)).await;
    WarmQueue::new(
        client,
        format!("{endpoint}/123456789012/reco-warm"),
        SEND_TIMEOUT,
    )
}

fn login_with(redis_url: &str, queue: WarmQueue) -> Login {
    let clock = Arc::new(SystemClock);
    let redis = RedisConn::connect_lazy(redis_url, DEFAULT_RESPONSE_TIMEOUT).unwrap();
    Login {
        pool: Some(PoolStore::new(
            redis,
            clock.clone(),
            Duration::from_secs(900),
        )),
        queue: Some(queue),
        clock,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_completes_quickly_when_sqs_or_redis_are_unreachable() {
    let redis = RedisServer::start();
    let (sqs_hole, _t1) = black_hole();
    let (redis_hole, _t2) = black_hole();
    let refused = free_port();
    let cases = [
        (
            "sqs refused",
            redis.url(),
            format!("http://127.0.0.1:{refused}"),
        ),
        (
            "sqs hangs",
            redis.url(),
            format!("http://127.0.0.1:{sqs_hole}"),
        ),
        (
            "sqs and redis hang",
            format!("redis://127.0.0.1:{redis_hole}"),
            format!("http://127.0.0.1:{sqs_hole}"),
        ),
    ];
    let mut conn = redis.client().get_connection().unwrap();
    for (i, (case, redis_url, sqs)) in cases.iter().enumerate() {
        let login = login_with(redis_url, queue_at(sqs).await);
        let user = format!("user-down-{i}");
        let event = post_authentication(&user);
        let started = Instant::now();
        let returned = login.handle(event.clone()).await;
        let took = started.elapsed();
        println!("login with {case}: returned in {took:?}");
        assert_eq!(
            returned, event,
            "{case}: the event must come back unchanged"
        );
        assert!(
            took < SIGN_IN_LIMIT,
            "{case}: sign-in took {took:?}, limit {SIGN_IN_LIMIT:?}"
        );
        if redis_url == &redis.url() {
            // The failed send released the dedupe flag: the next sign-in tries again
            // instead of waiting out the flag's TTL.
            let user = reco_core::UserId::parse(&user).unwrap();
            let pending: bool = redis::cmd("EXISTS")
                .arg(keys::warm_claim(&user))
                .query(&mut conn)
                .unwrap();
            assert!(!pending, "{case}: warm-pending flag left behind");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_sign_ins_within_a_second_enqueue_exactly_one_warm() {
    let env = TestEnv::start().await;
    let apps = Apps::build(&env, None, AuthMode::None).await;
    let login = Arc::new(Login {
        pool: Some(apps.services.engine.pool.clone()),
        queue: Some(apps.warmer.queue.clone()),
        clock: apps.services.clock.clone(),
    });
    let sub = "8f1e2d3c-0000-4000-8000-123456789abc";
    let history = reco_tests::scenario::history_in_topic(&env.fake, 0, 3, 4);
    let response = apps
        .api
        .handle(reco_tests::api_request(
            "POST",
            &format!("/api/v1/video/history/{sub}"),
            &[],
            Some(&history.body()),
            None,
        ))
        .await;
    assert_eq!(reco_tests::response_json(&response).0, 202);
    let event = post_authentication(sub);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let login = login.clone();
        let event = event.clone();
        tasks.push(tokio::spawn(async move {
            let returned = login.handle(event.clone()).await;
            assert_eq!(returned, event);
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let took = started.elapsed();
    let sqs = env.sqs.client().await;
    let depth = queue_depth(&sqs, &env.queue_url).await;
    println!("10 concurrent sign-ins in {took:?}: {depth} message(s) queued");
    assert!(took < Duration::from_secs(1), "took {took:?}");
    assert_eq!(depth, 1);

    // The message is exactly the documented shape.
    let received = sqs
        .receive_message()
        .queue_url(&env.queue_url)
        .max_number_of_messages(10)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default();
    assert_eq!(received.len(), 1);
    let body: Value = serde_json::from_str(received[0].body().unwrap()).unwrap();
    let mut fields: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    fields.sort();
    assert_eq!(fields, ["reason", "requested_at", "user_id", "v"], "{body}");
    assert_eq!(body["v"], 1);
    assert_eq!(body["user_id"], sub);
    assert_eq!(body["reason"], "sign_in");
    WarmRequest::parse(received[0].body().unwrap()).expect("the warmer accepts it");
    sqs.change_message_visibility()
        .queue_url(&env.queue_url)
        .receipt_handle(received[0].receipt_handle().unwrap())
        .visibility_timeout(0)
        .send()
        .await
        .unwrap();

    // Once the warmer has built a fresh pool, signing in again enqueues nothing.
    let outcomes = deliver_once(&sqs, &env.queue_url, &apps.warmer, 10, 2).await;
    assert_eq!(outcomes.len(), 1);
    assert!(
        matches!(&outcomes[0].1, reco_warmer::ItemOutcome::Warmed(w) if w.pool_size >= 200),
        "{outcomes:?}"
    );
    for _ in 0..3 {
        login.handle(event.clone()).await;
    }
    assert_eq!(queue_depth(&sqs, &env.queue_url).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_accepted_event_shape_reaches_the_queue_as_a_warm_request() {
    let env = TestEnv::start().await;
    let apps = Apps::build(&env, None, AuthMode::None).await;
    // A PostAuthentication with nothing optional: no newDeviceUsed, no callerContext,
    // no response, no version (the typed aws_lambda_events struct rejects this).
    let bare = json!({
        "triggerSource": "PostAuthentication_Authentication",
        "userPoolId": "us-east-1_AbCdEfGhI",
        "userName": "bare-user",
        "request": {"userAttributes": {"sub": "user-bare"}}
    });
    let mut confirm = event_file("cognito-post-confirmation.json");
    confirm["request"]["userAttributes"]["sub"] = json!("user-confirmed");
    let plain = json!({"user_id": "user-plain"});
    let cases = [
        (&bare, "user-bare", WarmReason::SignIn),
        (&confirm, "user-confirmed", WarmReason::FirstSignIn),
        (&plain, "user-plain", WarmReason::SignIn),
    ];
    for (event, _, _) in &cases {
        let returned = apps.login.handle((*event).clone()).await;
        assert_eq!(&returned, *event);
    }
    // Not a user at all: returned unchanged, nothing queued.
    let junk = json!({"hello": "world"});
    assert_eq!(apps.login.handle(junk.clone()).await, junk);

    let sqs = env.sqs.client().await;
    let mut found = Vec::new();
    for _ in 0..5 {
        let messages = sqs
            .receive_message()
            .queue_url(&env.queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap()
            .messages
            .unwrap_or_default();
        for m in messages {
            let request = WarmRequest::parse(m.body().unwrap()).expect("a valid warm request");
            found.push((request.user_id.to_string(), request.reason));
        }
        if found.len() >= cases.len() {
            break;
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    let mut expected: Vec<(String, WarmReason)> = cases
        .iter()
        .map(|(_, user, reason)| (user.to_string(), *reason))
        .collect();
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    println!("queued: {found:?}");
    assert_eq!(found, expected);
}
