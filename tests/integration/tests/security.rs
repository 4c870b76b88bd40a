//! Security tests, extending `api_contract.rs` (which already covers the basic 401/403,
//! malformed user ids and parameters writing nothing, and a 70 KB body):
//!
//! * `another_users_data_is_out_of_reach`: with `AUTH_MODE=jwt`, every route and method
//!   aimed at another user — by path, by percent-encoding, by a stage prefix, by a `sub`
//!   carrying hash-tag or glob characters — is refused, and the victim's keys in Redis
//!   are byte-for-byte unchanged.
//! * `key_injection_stays_inside_the_users_hash_tag`: user ids, `sub` claims, video ids
//!   and parameters built to escape a `{u:<id>}` key (braces, colons, globs, CR/LF,
//!   NUL) never create a key outside the expected shapes.
//! * `oversized_bodies_headers_and_nesting`: a 6 MB body (Lambda's payload limit), a 1 MB
//!   header, 2,000 headers, query strings and path segments at API Gateway's 10 KB limit
//!   and JSON nested 30,000 deep each get a JSON 4xx or a normal answer, never a panic.
//! * `api_key_and_history_never_reach_logs_or_errors`: a key YouTube rejects
//!   (`keyInvalid`) and an unreachable YouTube, through warms and force_refresh: the key
//!   appears in no log line, no error and no response; neither does the watch history.
//!
//! Run: `cargo nextest run -p reco-tests --test security --no-capture`.

mod support;

use std::collections::BTreeMap;

use lambda_http::Request;
use lambda_http::http::{HeaderName, HeaderValue};
use reco_core::UserId;
use reco_core::config::AuthMode;
use reco_core::messages::{WarmReason, WarmRequest};
use reco_tests::apps::{config_with, deliver_once, encode};
use reco_tests::scenario::history_in_topic;
use reco_tests::{Apps, TEST_API_KEY, TestEnv, api_request, api_request_with, response_json};
use serde_json::Value;

const VICTIM: &str = "victim-0000-4000-8000-000000000001";
const ATTACKER: &str = "attacker-0000-4000-8000-000000000002";

fn feed(user: &str) -> String {
    format!("/api/v1/video/recommendations/{user}")
}

fn history_path(user: &str) -> String {
    format!("/api/v1/video/history/{user}")
}

/// Every key with its type and DUMP, sorted: a byte-for-byte picture of the store.
fn snapshot(env: &TestEnv, pattern: &str) -> BTreeMap<String, Vec<u8>> {
    let mut conn = env.redis.client().get_connection().unwrap();
    let keys: Vec<String> = redis::cmd("KEYS").arg(pattern).query(&mut conn).unwrap();
    keys.into_iter()
        .map(|k| {
            let dump: Vec<u8> = redis::cmd("DUMP").arg(&k).query(&mut conn).unwrap();
            (k, dump)
        })
        .collect()
}

async fn warm(env: &TestEnv, apps: &Apps, user: &str) {
    let sqs = env.sqs.client().await;
    let request = WarmRequest::new(
        UserId::parse(user).unwrap(),
        WarmReason::SignIn,
        apps.services.clock.now(),
    );
    sqs.send_message()
        .queue_url(&env.queue_url)
        .message_body(request.to_json())
        .send()
        .await
        .unwrap();
    let outcomes = deliver_once(&sqs, &env.queue_url, &apps.warmer, 10, 5).await;
    assert!(
        outcomes
            .iter()
            .all(|(_, o)| matches!(o, reco_warmer::ItemOutcome::Warmed(_))),
        "{outcomes:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_users_data_is_out_of_reach() {
    let env = TestEnv::start().await;
    let apps = Apps::build(&env, None, AuthMode::Jwt).await;
    let history = history_in_topic(&env.fake, 0, 2, 4);
    for user in [VICTIM, ATTACKER] {
        let response = apps
            .api
            .handle(api_request(
                "POST",
                &history_path(user),
                &[],
                Some(&history.body()),
                Some(user),
            ))
            .await;
        assert_eq!(response.status().as_u16(), 202);
        warm(&env, &apps, user).await;
    }
    let before = snapshot(&env, &format!("*{{u:{VICTIM}}}*"));
    assert!(
        before.len() >= 3,
        "the victim has a pool: {:?}",
        before.keys()
    );

    let body = r#"{"events":[{"video_id":"dQw4w9WgXcQ","watch_seconds":30}]}"#;
    let encoded_victim: String = VICTIM
        .chars()
        .map(|c| format!("%{:02X}", c as u32))
        .collect();
    let paths = [
        feed(VICTIM),
        feed(&encoded_victim),
        format!("/prod{}", feed(VICTIM)),
        format!("{}/", feed(VICTIM)),
        history_path(VICTIM),
        history_path(&encoded_victim),
        format!("/prod{}", history_path(VICTIM)),
    ];
    let subs = [
        Some(ATTACKER.to_owned()),
        Some(format!("{{u:{VICTIM}}}")),
        Some(format!("{VICTIM}}}")),
        Some(format!("{VICTIM} ")),
        Some(format!("{VICTIM}\n")),
        Some("*".to_owned()),
        Some(String::new()),
        Some(VICTIM.to_uppercase()),
        None,
    ];
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    for path in &paths {
        for sub in &subs {
            for (method, with_body) in [("GET", false), ("POST", true)] {
                let request = api_request_with(
                    method,
                    path,
                    &[("max_results", "50")],
                    with_body.then_some((body, "application/json")),
                    sub.as_deref(),
                );
                let response = apps.api.handle(request).await;
                let (status, json) = response_json(&response);
                assert!(
                    [401, 403, 405].contains(&status),
                    "{method} {path} as {sub:?}: {status} {json}"
                );
                assert!(
                    json.get("videos").is_none(),
                    "videos leaked to {sub:?}: {json}"
                );
                *statuses.entry(status).or_default() += 1;
            }
        }
    }
    // The victim's pool, served set, history and metadata are untouched.
    let after = snapshot(&env, &format!("*{{u:{VICTIM}}}*"));
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>()
    );
    for (key, dump) in &before {
        assert_eq!(
            Some(dump),
            after.get(key),
            "{key} changed under the attacks"
        );
    }
    // And the victim still reads their own feed.
    let response = apps
        .api
        .handle(api_request("GET", &feed(VICTIM), &[], None, Some(VICTIM)))
        .await;
    assert_eq!(response.status().as_u16(), 200);
    let total: usize = statuses.values().sum();
    println!(
        "cross-user: {total} requests at another user's feed and history ({} paths × {} subs × GET/POST): {statuses:?}; the victim's {} keys unchanged",
        paths.len(),
        subs.len(),
        before.len()
    );
}

/// The key shapes the project writes (store::keys and quota::keys).
fn expected_key(key: &str, valid_users: &[&str]) -> bool {
    if let Some(rest) = key.strip_prefix("reco:{u:") {
        let Some((user, suffix)) = rest.split_once("}:") else {
            return false;
        };
        return valid_users.contains(&user)
            && [
                "pool",
                "items",
                "meta",
                "served",
                "history",
                "warm-pending",
                "warm-lock",
                "refresh-cooldown",
                "interests",
            ]
            .iter()
            .any(|s| suffix == *s || suffix.starts_with(&format!("{s}:")));
    }
    key.starts_with("reco:src:") || key.starts_with("reco:alloc:") || key.contains("{quota}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_injection_stays_inside_the_users_hash_tag() {
    let env = TestEnv::start().await;
    let apps = Apps::build(&env, None, AuthMode::None).await;
    let jwt_apps = Apps::build(&env, None, AuthMode::Jwt).await;
    let good = "good-user";
    apps.record_history(good, &history_in_topic(&env.fake, 1, 1, 3).body())
        .await;
    let hostile = [
        "x}:pool",
        "{quota}",
        "u:{x}",
        "a}{b",
        "*",
        "?",
        "[a-z]",
        "x\r\nFLUSHALL\r\n",
        "x\u{0}y",
        "x y",
        "%7Bu%3Aother%7D",
        "reco:src:video:x",
        "\u{202e}x",
        &"a".repeat(129),
    ];
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    let mut record = |status: u16| *statuses.entry(status).or_default() += 1;
    for user in hostile {
        let encoded = encode(user);
        // Through the path, with no auth and with a matching JWT `sub`.
        for (api, sub) in [(&apps.api, None), (&jwt_apps.api, Some(user))] {
            for (method, path, body) in [
                ("GET", feed(&encoded), None),
                ("POST", feed(&encoded), Some("{\"max_results\": 5}")),
                (
                    "POST",
                    history_path(&encoded),
                    Some(r#"{"events":[{"video_id":"dQw4w9WgXcQ"}]}"#),
                ),
            ] {
                let response = api.handle(api_request(method, &path, &[], body, sub)).await;
                let (status, json) = response_json(&response);
                assert!(
                    (400..500).contains(&status),
                    "{method} {path:?}: {status} {json}"
                );
                record(status);
            }
        }
    }
    // Hostile video ids and parameters for a valid user.
    for video_id in [
        "dQw4w9WgX}{",
        "{u:victim}x",
        "*??????????",
        "dQw4w9WgXc\n",
        "reco:src:vi",
    ] {
        let body = serde_json::json!({"events": [{"video_id": video_id}]}).to_string();
        let response = apps
            .api
            .handle(api_request(
                "POST",
                &history_path(good),
                &[],
                Some(&body),
                None,
            ))
            .await;
        let (status, json) = response_json(&response);
        assert_eq!(status, 400, "video id {video_id:?}: {json}");
        record(status);
    }
    for (name, value) in [
        ("category_filter", "{quota}"),
        ("category_filter", "20}:pool"),
        ("max_results", "5}"),
        ("include_trending", "*"),
    ] {
        let response = apps
            .api
            .handle(api_request(
                "GET",
                &feed(good),
                &[(name, value)],
                None,
                None,
            ))
            .await;
        let (status, json) = response_json(&response);
        assert_eq!(status, 400, "{name}={value:?}: {json}");
        record(status);
    }
    let keys: Vec<String> = snapshot(&env, "*").into_keys().collect();
    for key in &keys {
        assert!(expected_key(key, &[good]), "unexpected key {key:?}");
    }
    println!(
        "key injection: {} hostile user ids × 2 auth modes × 3 routes, 5 video ids, 4 parameters: {statuses:?}; {} keys in Redis, all of the expected shapes",
        hostile.len(),
        keys.len()
    );
}

fn with_headers(mut request: Request, headers: &[(String, String)]) -> Request {
    for (name, value) in headers {
        request.headers_mut().append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_headers_and_nesting() {
    let env = TestEnv::start().await;
    let apps = Apps::build(&env, None, AuthMode::None).await;
    let user = "big-input-user";
    apps.record_history(user, &history_in_topic(&env.fake, 2, 1, 3).body())
        .await;
    let mut answers = Vec::new();
    let mut check =
        |what: &str, response: lambda_http::Response<lambda_http::Body>, want: &[u16]| {
            let (status, json) = response_json(&response);
            assert!(want.contains(&status), "{what}: {status} {json}");
            answers.push(format!("{what} → {status}"));
        };

    let six_mb = format!(
        "{{\"events\": [{{\"video_id\": \"{}\"}}]}}",
        "x".repeat(6 << 20)
    );
    let r = apps
        .api
        .handle(api_request(
            "POST",
            &history_path(user),
            &[],
            Some(&six_mb),
            None,
        ))
        .await;
    check("6 MB history body", r, &[413]);
    let r = apps
        .api
        .handle(api_request("POST", &feed(user), &[], Some(&six_mb), None))
        .await;
    check("6 MB feed body", r, &[413]);

    // Under the 64 KB body limit, so the parser's recursion limit is what answers.
    let deep = format!("{}{}", "[".repeat(30_000), "]".repeat(30_000));
    let r = apps
        .api
        .handle(api_request("POST", &feed(user), &[], Some(&deep), None))
        .await;
    check("JSON nested 30,000 deep (feed)", r, &[400]);
    let deep_object = format!(
        "{{\"events\": {}{}}}",
        "[".repeat(25_000),
        "]".repeat(25_000)
    );
    let r = apps
        .api
        .handle(api_request(
            "POST",
            &history_path(user),
            &[],
            Some(&deep_object),
            None,
        ))
        .await;
    check("JSON nested 25,000 deep (history)", r, &[400]);
    let many_events: Vec<Value> = (0..101)
        .map(|i| serde_json::json!({"video_id": format!("dQw4w9Wg{i:03}")}))
        .collect();
    let r = apps
        .api
        .handle(api_request(
            "POST",
            &history_path(user),
            &[],
            Some(&serde_json::json!({"events": many_events}).to_string()),
            None,
        ))
        .await;
    check("101 history events", r, &[400, 413]);

    let huge_header = vec![("x-padding".to_owned(), "a".repeat(1 << 20))];
    let r = apps
        .api
        .handle(with_headers(
            api_request("GET", &feed(user), &[], None, None),
            &huge_header,
        ))
        .await;
    check("1 MB header", r, &[200, 400, 431]);
    let many_headers: Vec<(String, String)> = (0..2000)
        .map(|i| (format!("x-h-{i}"), "v".repeat(100)))
        .collect();
    let r = apps
        .api
        .handle(with_headers(
            api_request("GET", &feed(user), &[], None, None),
            &many_headers,
        ))
        .await;
    check("2,000 headers", r, &[200, 400, 431]);
    let content_type = vec![(
        "content-type".to_owned(),
        format!("application/json; {}", "x=y; ".repeat(20_000)),
    )];
    let r = apps
        .api
        .handle(with_headers(
            api_request("POST", &feed(user), &[], None, None),
            &content_type,
        ))
        .await;
    check("100 KB content-type", r, &[200, 400, 415]);

    // API Gateway caps the request line and headers at 10 KB, so these are the largest
    // URLs that reach the function (over 64 KB, the API's event check answers 400:
    // functions/api/src/event.rs).
    let params: Vec<(String, String)> = (0..1_000)
        .map(|i| (format!("p{i}"), "1".to_owned()))
        .chain(std::iter::once(("max_results".to_owned(), "5".to_owned())))
        .collect();
    let refs: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let r = apps
        .api
        .handle(api_request("GET", &feed(user), &refs, None, None))
        .await;
    check("1,000 query parameters", r, &[200, 400]);
    let repeated: Vec<(&str, &str)> = (0..800).map(|_| ("max_results", "50")).collect();
    let r = apps
        .api
        .handle(api_request("GET", &feed(user), &repeated, None, None))
        .await;
    check("max_results × 800", r, &[200, 400]);
    let long_category = "g".repeat(9_000);
    let r = apps
        .api
        .handle(api_request(
            "GET",
            &feed(user),
            &[("category_filter", long_category.as_str())],
            None,
            None,
        ))
        .await;
    check("9 KB category_filter", r, &[400]);
    // The 400 does not echo 9 KB back.
    let long_user = "u".repeat(9_000);
    let r = apps
        .api
        .handle(api_request("GET", &feed(&long_user), &[], None, None))
        .await;
    let size = match r.body() {
        lambda_http::Body::Text(t) => t.len(),
        _ => 0,
    };
    assert!(size < 2048, "a 9 KB user id is echoed back ({size} bytes)");
    check("9 KB user id", r, &[400, 404]);
    for line in &answers {
        println!("oversized: {line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_key_and_history_never_reach_logs_or_errors() {
    support::logs();
    let env = TestEnv::start().await;
    let user = "history-owner";
    let history = history_in_topic(&env.fake, 3, 2, 4);
    let wrong_key = "AIzaWRONG-secret-key-never-log-9876543210";
    let mut responses = Vec::new();
    let mut errors = Vec::new();
    // 1. A key YouTube rejects (400 keyInvalid); 2. YouTube unreachable; 3. the right key.
    let scenarios = [
        ("keyInvalid", vec![("YOUTUBE_API_KEY", wrong_key)]),
        (
            "unreachable",
            vec![("YOUTUBE_API_BASE_URL", "http://127.0.0.1:9/youtube/v3")],
        ),
        ("healthy", vec![]),
    ];
    for (name, overrides) in &scenarios {
        let config = config_with(&env, overrides);
        let apps = Apps::build_with(&env, config, None, AuthMode::None).await;
        apps.record_history(user, &history.body()).await;
        let sqs = env.sqs.client().await;
        let request = WarmRequest::new(
            UserId::parse(user).unwrap(),
            WarmReason::SignIn,
            apps.services.clock.now(),
        );
        sqs.send_message()
            .queue_url(&env.queue_url)
            .message_body(request.to_json())
            .send()
            .await
            .unwrap();
        for (_, outcome) in deliver_once(&sqs, &env.queue_url, &apps.warmer, 10, 5).await {
            errors.push(format!("{name}: {outcome:?}"));
        }
        for query in [
            vec![("max_results", "5"), ("force_refresh", "true")],
            vec![("max_results", "5")],
        ] {
            let response = apps
                .api
                .handle(api_request("GET", &feed(user), &query, None, None))
                .await;
            let (status, json) = response_json(&response);
            responses.push(format!("{name}: {status} {json}"));
        }
        // Purge what is left (the failed warms), so the next scenario starts clean.
        let _ = sqs.purge_queue().queue_url(&env.queue_url).send().await;
    }
    let mut secrets = vec![TEST_API_KEY.to_owned(), wrong_key.to_owned()];
    {
        let corpus = env.fake.corpus();
        for id in &history.video_ids {
            secrets.push(id.clone());
            secrets.push(corpus.video(id).unwrap().title.clone());
        }
    }
    let extra: Vec<String> = responses.iter().chain(&errors).cloned().collect();
    let checked = support::assert_absent("the API key or the watch history", &secrets, &extra);
    let lines = support::log_lines();
    let youtube_errors = lines
        .iter()
        .filter(|l| l.contains("youtube") || l.contains("keyInvalid"))
        .count();
    assert!(
        youtube_errors > 0,
        "the faults were not exercised: {lines:?}"
    );
    println!(
        "secrets: keyInvalid, unreachable YouTube and healthy runs: {checked} log lines, responses and errors checked ({youtube_errors} about YouTube failures); no API key, no history video id or title"
    );
    for e in &errors {
        println!("  warm outcome {e}");
    }
}
