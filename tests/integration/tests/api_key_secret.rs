//! The YouTube API key read from Secrets Manager through the AWS Parameters and Secrets
//! Lambda Extension, against a local double of the extension's HTTP interface: read once
//! per instance on the first YouTube call, with the session token; an extension failure is
//! a clear, retryable error that never carries the key.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use reco_core::UserId;
use reco_core::config::AuthMode;
use reco_core::engine::EngineError;
use reco_core::quota::Priority;
use reco_core::youtube::YoutubeError;
use reco_tests::apps::config_with;
use reco_tests::scenario::history_in_topic;
use reco_tests::services::TEST_API_KEY;
use reco_tests::{Apps, TestEnv};
use serde_json::json;

const SESSION_TOKEN: &str = "session-token-for-the-extension";
const SECRET_ID: &str = "reco/youtube-api-key";

#[derive(Default)]
struct Extension {
    requests: AtomicUsize,
    /// Answer 500 to this many requests first.
    failures_left: AtomicUsize,
}

async fn get_secret(
    State(ext): State<Arc<Extension>>,
    headers: HeaderMap,
    Query(params): Query<std::collections::HashMap<String, String>>,
) -> axum::response::Response {
    ext.requests.fetch_add(1, Ordering::SeqCst);
    if headers
        .get("X-Aws-Parameters-Secrets-Token")
        .and_then(|v| v.to_str().ok())
        != Some(SESSION_TOKEN)
    {
        return (StatusCode::UNAUTHORIZED, "missing token").into_response();
    }
    if ext
        .failures_left
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        return (StatusCode::INTERNAL_SERVER_ERROR, "extension not ready").into_response();
    }
    if params.get("secretId").map(String::as_str) != Some(SECRET_ID) {
        return (StatusCode::BAD_REQUEST, "ResourceNotFoundException").into_response();
    }
    axum::Json(json!({
        "ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:reco/youtube-api-key-AbCdEf",
        "Name": SECRET_ID,
        "SecretString": json!({"YOUTUBE_API_KEY": TEST_API_KEY}).to_string(),
        "VersionId": "v1",
        "VersionStages": ["AWSCURRENT"],
    }))
    .into_response()
}

async fn spawn_extension() -> (Arc<Extension>, u16) {
    let ext = Arc::new(Extension::default());
    let app = axum::Router::new()
        .route("/secretsmanager/get", axum::routing::get(get_secret))
        .with_state(ext.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (ext, port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_comes_from_the_extension_once_and_failures_are_retryable_and_keyless() {
    let (ext, port) = spawn_extension().await;
    // The process environment is this test's alone (nextest runs each test in its own
    // process), as a Lambda instance's is.
    unsafe {
        std::env::set_var("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT", port.to_string());
        std::env::set_var("AWS_SESSION_TOKEN", SESSION_TOKEN);
    }
    let env = TestEnv::start().await;
    // No YOUTUBE_API_KEY in the environment: only the secret's id.
    let config = config_with(
        &env,
        &[
            ("YOUTUBE_API_KEY", ""),
            ("YOUTUBE_API_KEY_SECRET_ID", SECRET_ID),
        ],
    );
    assert!(config.youtube_api_key.is_none());
    assert!(!format!("{config:?}").contains(TEST_API_KEY));
    let apps = Apps::build_with(&env, config, None, AuthMode::None).await;
    assert_eq!(
        ext.requests.load(Ordering::SeqCst),
        0,
        "nothing is read at start (the extension does not serve during init)"
    );

    // The extension is not ready for the first two reads: the warm fails with a typed,
    // retryable error that names the secret, not the key, and YouTube is not called.
    ext.failures_left.store(2, Ordering::SeqCst);
    let user = UserId::parse("secret-reader").unwrap();
    let history = history_in_topic(&env.fake, 5, 2, 4);
    apps.record_history(user.as_str(), &history.body()).await;
    for _ in 0..2 {
        let err = apps
            .services
            .engine
            .warm(&user, Priority::Background)
            .await
            .expect_err("no key yet");
        let text = err.to_string();
        assert!(
            matches!(err, EngineError::Youtube(YoutubeError::KeyUnavailable(_))),
            "{err:?}"
        );
        assert!(
            text.contains("HTTP 500") && !text.contains(TEST_API_KEY),
            "{text}"
        );
    }
    assert_eq!(env.fake.counters().requests, 0, "no call without a key");

    // Then it answers: the key is read once and kept for every later call and warm.
    let outcome = apps
        .services
        .engine
        .warm(&user, Priority::Background)
        .await
        .expect("warm with the key from the secret");
    apps.services
        .engine
        .warm(
            &UserId::parse("second-reader").unwrap(),
            Priority::Background,
        )
        .await
        .expect("second warm");
    let counters = env.fake.counters();
    println!(
        "extension reads: {} (2 refused, 1 served); pool of {}; {} YouTube requests, all accepted",
        ext.requests.load(Ordering::SeqCst),
        outcome.pool_size,
        counters.requests
    );
    assert_eq!(ext.requests.load(Ordering::SeqCst), 3);
    assert!(outcome.pool_size > 0);
    assert!(
        counters.units_used > 0,
        "the fake accepted the secret's key"
    );
}
