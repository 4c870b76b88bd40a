//! The HTTP API's contract through the real handler, real Redis and real SQS (moto),
//! with API Gateway v2 events carrying the JWT authorizer's claims.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use reco_core::UserId;
use reco_core::config::AuthMode;
use reco_core::quota::Priority;
use reco_tests::apps::{encode, queue_depth, video_ids};
use reco_tests::scenario::history_in_topic;
use reco_tests::services::RedisMonitor;
use reco_tests::{Apps, TestEnv, api_request, api_request_with, response_json};
use serde_json::Value;

const ME: &str = "8f1e2d3c-0000-4000-8000-123456789abc";
const OTHER: &str = "11111111-2222-4333-8444-555555555555";

fn feed(user: &str) -> String {
    format!("/api/v1/video/recommendations/{user}")
}

fn history_path(user: &str) -> String {
    format!("/api/v1/video/history/{user}")
}

fn openapi() -> Value {
    serde_json::from_str(include_str!("../../../functions/api/openapi.json"))
        .expect("openapi.json parses")
}

/// Whether the OpenAPI document lists `status` for the operation serving `path`.
fn documented(doc: &Value, method: &str, path: &str, status: u16) -> bool {
    let template = if path.contains("/recommendations/") {
        "/api/v1/video/recommendations/{user_id}"
    } else if path.contains("/history/") {
        "/api/v1/video/history/{user_id}"
    } else {
        "/api/v1/health"
    };
    let operation = &doc["paths"][template][method.to_ascii_lowercase()];
    operation["responses"].get(status.to_string()).is_some()
        || (status == 405
            && doc["paths"][template]["get"]["responses"]
                .get("405")
                .is_some())
}

async fn warmed(env: &TestEnv, apps: &Apps, user: &str) {
    let history = history_in_topic(&env.fake, 0, 3, 4);
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
    apps.services
        .engine
        .warm(&UserId::parse(user).unwrap(), Priority::Background)
        .await
        .expect("warm");
}

/// (expected status, method, path, query, body and content type, JWT sub)
type Case<'a> = (
    u16,
    &'a str,
    String,
    Vec<(&'a str, &'a str)>,
    Option<(String, &'a str)>,
    Option<&'a str>,
);

fn assert_error_shape(status: u16, body: &Value) {
    assert_eq!(body["success"], false, "{status}: {body}");
    assert!(
        body["error"]["code"].is_string() && body["error"]["message"].is_string(),
        "{status}: {body}"
    );
    assert!(body["request_id"].is_string(), "{status}: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_status_code_from_a_realistic_request() {
    let mut env = TestEnv::start().await;
    let apps = Apps::build(&env, None, AuthMode::Jwt).await;
    warmed(&env, &apps, ME).await;
    let doc = openapi();
    let big = format!(
        "{{\"events\": [{{\"video_id\": \"{}\"}}]}}",
        "x".repeat(70_000)
    );
    let cases: Vec<Case> = vec![
        (
            200,
            "GET",
            feed(ME),
            vec![("max_results", "5")],
            None,
            Some(ME),
        ),
        (200, "GET", "/api/v1/health".into(), vec![], None, None),
        (
            202,
            "POST",
            history_path(ME),
            vec![],
            Some((
                r#"{"events":[{"video_id":"dQw4w9WgXcQ","watch_seconds":30}]}"#.into(),
                "application/json",
            )),
            Some(ME),
        ),
        (
            400,
            "GET",
            feed(ME),
            vec![("max_results", "0")],
            None,
            Some(ME),
        ),
        (
            400,
            "POST",
            feed(ME),
            vec![],
            Some(("{not json".into(), "application/json")),
            Some(ME),
        ),
        (401, "GET", feed(ME), vec![], None, None),
        (403, "GET", feed(OTHER), vec![], None, Some(ME)),
        (
            403,
            "POST",
            history_path(OTHER),
            vec![],
            Some((
                r#"{"events":[{"video_id":"dQw4w9WgXcQ"}]}"#.into(),
                "application/json",
            )),
            Some(ME),
        ),
        (
            404,
            "GET",
            "/api/v1/video/nothing-here".into(),
            vec![],
            None,
            Some(ME),
        ),
        (405, "DELETE", feed(ME), vec![], None, Some(ME)),
        (
            413,
            "POST",
            history_path(ME),
            vec![],
            Some((big, "application/json")),
            Some(ME),
        ),
        (
            415,
            "POST",
            feed(ME),
            vec![],
            Some(("max_results=5".into(), "text/plain")),
            Some(ME),
        ),
    ];
    for (want, method, path, query, body, sub) in &cases {
        let body = body.as_ref().map(|(b, ct)| (b.as_str(), *ct));
        let response = apps
            .api
            .handle(api_request_with(method, path, query, body, *sub))
            .await;
        let (status, json) = response_json(&response);
        assert_eq!(status, *want, "{method} {path}: {json}");
        if status >= 400 {
            assert_error_shape(status, &json);
        }
        if status == 400 {
            assert!(
                json["error"]["field"].is_string(),
                "a 400 names the field: {json}"
            );
        }
        if status != 404 {
            assert!(
                documented(&doc, method, path, status),
                "{method} {path} {status} is not in openapi.json"
            );
        }
    }

    // 429: a second force_refresh inside the cooldown.
    let first = apps
        .api
        .handle(api_request(
            "GET",
            &feed(ME),
            &[("force_refresh", "true")],
            None,
            Some(ME),
        ))
        .await;
    let (status, body) = response_json(&first);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["meta"]["cache_status"], "refreshed");
    let second = apps
        .api
        .handle(api_request(
            "GET",
            &feed(ME),
            &[("force_refresh", "true")],
            None,
            Some(ME),
        ))
        .await;
    let (status, body) = response_json(&second);
    assert_eq!(status, 429, "{body}");
    assert!(second.headers().get("retry-after").is_some());
    assert!(documented(&doc, "GET", &feed(ME), 429));

    // 503: Redis gone. A user this instance has served gets their last good page,
    // marked degraded; one it has not gets a 503 with Retry-After, within a second.
    env.redis.kill();
    let started = Instant::now();
    let response = apps
        .api
        .handle(api_request("GET", &feed(OTHER), &[], None, Some(OTHER)))
        .await;
    let elapsed = started.elapsed();
    let (status, body) = response_json(&response);
    assert_eq!(status, 503, "{body}");
    assert_error_shape(status, &body);
    assert!(response.headers().get("retry-after").is_some());
    assert!(elapsed < Duration::from_secs(1), "503 took {elapsed:?}");
    println!("503 answered in {elapsed:?}");
    let started = Instant::now();
    let (status, body) = response_json(
        &apps
            .api
            .handle(api_request("GET", &feed(ME), &[], None, Some(ME)))
            .await,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["meta"]["degraded"], "store_unavailable");
    assert!(body["count"].as_u64().unwrap() > 0);
    assert!(started.elapsed() < Duration::from_secs(1));
    let (status, _) = response_json(
        &apps
            .api
            .handle(api_request("GET", "/api/v1/health", &[], None, None))
            .await,
    );
    assert_eq!(status, 503);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_matches_the_handler() {
    let env = TestEnv::start().await;
    let apps = Apps::build(&env, None, AuthMode::Jwt).await;
    warmed(&env, &apps, ME).await;
    let doc = openapi();
    let get = &doc["paths"]["/api/v1/video/recommendations/{user_id}"]["get"];
    for param in get["parameters"].as_array().unwrap() {
        let name = param["name"].as_str().unwrap();
        let valid = param["x-valid"].as_str().unwrap();
        let invalid = param["x-invalid"].as_str().unwrap();
        let (status, body) = response_json(
            &apps
                .api
                .handle(api_request(
                    "GET",
                    &feed(ME),
                    &[(name, valid)],
                    None,
                    Some(ME),
                ))
                .await,
        );
        assert_eq!(status, 200, "{name}={valid}: {body}");
        let (status, body) = response_json(
            &apps
                .api
                .handle(api_request(
                    "GET",
                    &feed(ME),
                    &[(name, invalid)],
                    None,
                    Some(ME),
                ))
                .await,
        );
        assert_eq!(
            (status, body["error"]["field"].as_str()),
            (400, Some(name)),
            "{name}={invalid}: {body}"
        );
        // The same field in a POST body follows the same rule.
        let schema = &doc["components"]["schemas"]["FeedRequest"]["properties"][name];
        assert!(schema.is_object(), "{name} missing from FeedRequest");
        let json_invalid = serde_json::json!({ name: invalid }).to_string();
        let (status, body) = response_json(
            &apps
                .api
                .handle(api_request(
                    "POST",
                    &feed(ME),
                    &[],
                    Some(&json_invalid),
                    Some(ME),
                ))
                .await,
        );
        assert_eq!(
            (status, body["error"]["field"].as_str()),
            (400, Some(name)),
            "POST {name}={invalid}: {body}"
        );
    }
    // Every documented path answers (not 404) on each documented method, and the
    // success body carries every required field of its schema.
    let feed_required: Vec<&str> = doc["components"]["schemas"]["Feed"]["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let meta_required: Vec<&str> =
        doc["components"]["schemas"]["Feed"]["properties"]["meta"]["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
    for (template, methods) in doc["paths"].as_object().unwrap() {
        let path = template.replace("{user_id}", ME);
        for method in methods
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| *k != "parameters")
        {
            let body = (method == "post").then_some(r#"{"events":[{"video_id":"dQw4w9WgXcQ"}]}"#);
            let body = if template.contains("recommendations") && method == "post" {
                Some("{}")
            } else {
                body
            };
            let (status, json) = response_json(
                &apps
                    .api
                    .handle(api_request(
                        &method.to_uppercase(),
                        &path,
                        &[],
                        body,
                        Some(ME),
                    ))
                    .await,
            );
            assert!(status < 300, "{method} {template}: {status} {json}");
            assert!(
                doc["paths"][template][method]["responses"]
                    .get(status.to_string())
                    .is_some()
            );
            if template.contains("recommendations") {
                for field in &feed_required {
                    assert!(json.get(*field).is_some(), "{field} missing: {json}");
                }
                for field in &meta_required {
                    assert!(
                        json["meta"].get(*field).is_some(),
                        "meta.{field} missing: {json}"
                    );
                }
            }
        }
    }
}

/// A tiny deterministic generator, so a failing case can be replayed.
struct Gen(u64);
impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_malformed_requests_get_json_4xx_and_write_nothing() {
    let env = TestEnv::start().await;
    let apps = Apps::build(&env, None, AuthMode::None).await;
    let mut admin = env.redis.client().get_connection().unwrap();
    let long = "u".repeat(10_000);
    let bad_users = [
        "a{b",
        "a}b",
        "a:b",
        "*",
        "a\nb",
        "a b",
        "",
        "..{u:x}..",
        "x*y?",
        long.as_str(),
        "é",
        "a/b",
    ];
    let bad_counts = [
        "-1",
        "0",
        "51",
        "1e3",
        "abc",
        "",
        "true",
        "null",
        "9999999999999999999",
        "20x",
        "{",
        "%00",
    ];
    let bad_flags = ["2", "maybe", "", "null", "yes please", "{", "%00", "truee"];
    let bad_categories = ["knitting", "0", "999", "%00", "{u:x}", "gaming*", "\n"];
    let feed_bodies = [
        "{",
        "[]",
        "42",
        "\"x\"",
        "{\"max_results\": \"many\"}",
        "{\"max_results\": 1.5}",
        "{\"max_results\": 0}",
        "{\"include_trending\": 3}",
        "{\"force_refresh\": \"later\"}",
        "{\"category_filter\": []}",
        "{\"category_filter\": \"knitting\"}",
        "\u{0}",
    ];
    let history_bodies = [
        "{",
        "[]",
        "42",
        "{\"events\": 5}",
        "{\"events\": []}",
        "{\"events\": [{}]}",
        "{\"events\": [{\"video_id\": \"short\"}]}",
        "{\"events\": [{\"video_id\": \"dQw4w9WgXcQ\", \"watch_seconds\": -5}]}",
        "{\"events\": [{\"video_id\": \"dQw4w9WgXcQ\", \"watched_at\": \"yesterday\"}]}",
        "\u{0}",
    ];
    let mut rng = Gen(0x5eed_1234_abcd_0001);
    let mut statuses = std::collections::BTreeMap::new();
    for i in 0..1000 {
        let user = if rng.next().is_multiple_of(3) {
            "valid-user".to_owned()
        } else {
            rng.pick(&bad_users).to_owned()
        };
        let encoded_user = encode(&user);
        let request = match i % 6 {
            0 => {
                let (name, value) = match rng.next() % 4 {
                    0 => ("max_results", rng.pick(&bad_counts)),
                    1 => ("force_refresh", rng.pick(&bad_flags)),
                    2 => ("include_trending", rng.pick(&bad_flags)),
                    _ => ("category_filter", rng.pick(&bad_categories)),
                };
                api_request("GET", &feed(&encoded_user), &[(name, value)], None, None)
            }
            1 => api_request_with(
                "POST",
                &feed(&encoded_user),
                &[],
                Some((rng.pick(&feed_bodies), "application/json")),
                None,
            ),
            2 => api_request_with(
                "POST",
                &history_path(&encoded_user),
                &[],
                Some((rng.pick(&history_bodies), "application/json")),
                None,
            ),
            3 => api_request_with(
                rng.pick(&["PUT", "DELETE", "PATCH"]),
                &feed(&encoded_user),
                &[],
                None,
                None,
            ),
            4 => api_request_with(
                "POST",
                &history_path(&encoded_user),
                &[],
                Some((
                    "{}",
                    rng.pick(&["text/plain", "application/xml", "multipart/form-data"]),
                )),
                None,
            ),
            _ => api_request_with(
                "POST",
                &feed(&encoded_user),
                &[],
                Some((
                    &"x".repeat(70_000 + (rng.next() % 1000) as usize),
                    "application/json",
                )),
                None,
            ),
        };
        let described = format!("{} {}", request.method(), request.uri());
        let response = apps.api.handle(request).await;
        let (status, body) = response_json(&response);
        assert!(
            (400..500).contains(&status),
            "case {i} {described}: {status} {body}"
        );
        assert_error_shape(status, &body);
        *statuses.entry(status).or_insert(0) += 1;
    }
    println!("statuses: {statuses:?}");
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut admin).unwrap();
    assert!(keys.is_empty(), "malformed requests wrote keys: {keys:?}");
}

/// Events lambda_http would panic on while building the request (the fuzzer's find: a Host
/// header with a `[`), which under `panic = "abort"` would take the instance down: a 400
/// naming the part, through the same check as the function's `main`, and nothing written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_lambda_http_cannot_read_get_a_400_naming_the_part() {
    let env = TestEnv::start().await;
    let apps = Apps::build(&env, None, AuthMode::Jwt).await;
    let mut admin = env.redis.client().get_connection().unwrap();
    let found_by_the_fuzzer: Value = serde_json::from_str(include_str!(
        "../../fixtures/events/apigw-unparseable-host.json"
    ))
    .unwrap();
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut event = found_by_the_fuzzer.clone();
        event["headers"]["host"] = "abc123.execute-api.us-east-1.amazonaws.com".into();
        edit(&mut event);
        event.to_string()
    };
    let cases = [
        ("Host header", found_by_the_fuzzer.to_string()),
        (
            "X-Forwarded-Proto header",
            with(&|e| e["headers"]["x-forwarded-proto"] = "ht tp".into()),
        ),
        (
            "query string",
            with(&|e| e["rawQueryString"] = "max_results=1 0".into()),
        ),
        (
            "body (base64)",
            with(&|e| {
                e["body"] = "{not base64}".into();
                e["isBase64Encoded"] = true.into();
            }),
        ),
    ];
    for (field, event) in cases {
        let request = reco_api::event::request_from_str(&event).expect("an event");
        let (status, body) = response_json(&apps.api.handle(request).await);
        assert_eq!(status, 400, "{field}: {body}");
        assert_error_shape(status, &body);
        assert_eq!(body["error"]["field"], field, "{body}");
    }
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut admin).unwrap();
    assert!(keys.is_empty(), "unreadable events wrote keys: {keys:?}");
    // The same event with a sound Host header is served as usual.
    let sound = with(&|_| {});
    let request = reco_api::event::request_from_str(&sound).expect("an event");
    let (status, body) = response_json(&apps.api.handle(request).await);
    assert_eq!(
        (status, &body["success"]),
        (200, &Value::Bool(true)),
        "{body}"
    );
}

/// The command names a MONITOR saw, in order.
fn command_names(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|l| l.split('"').nth(1))
        .map(str::to_ascii_uppercase)
        .collect()
}

/// The common hit is one plain command on the user's keys — the `LPOP` of the next
/// pre-cut page — when the instance's item cache holds the page's videos (another user
/// was just shown them), and one `MGET` of the catalog more when it does not. No script,
/// no other write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cache_hit_is_one_lpop_of_a_pre_cut_page() {
    let env = TestEnv::start().await;
    let apps = Apps::build(&env, None, AuthMode::Jwt).await;
    // Two users with the same history: the same pool, so the second's first page is
    // already in the item cache once the first has been shown it.
    warmed(&env, &apps, ME).await;
    warmed(&env, &apps, "twin").await;
    let page = |user: &'static str| {
        let apps = &apps;
        async move {
            response_json(
                &apps
                    .api
                    .handle(api_request(
                        "GET",
                        &feed(user),
                        &[("max_results", "20")],
                        None,
                        Some(user),
                    ))
                    .await,
            )
        }
    };
    let (status, first) = page("twin").await;
    assert_eq!(status, 200, "{first}");

    let monitor = RedisMonitor::start(&env.redis);
    let (status, body) = page(ME).await;
    let warm_cache = command_names(&monitor.stop());
    assert_eq!(
        (status, body["meta"]["cache_status"].as_str()),
        (200, Some("hit")),
        "{body}"
    );
    assert_eq!(
        video_ids(&body),
        video_ids(&first),
        "the twins' pools differ"
    );
    assert_eq!(warm_cache, ["LPOP"], "item cache warm");

    let monitor = RedisMonitor::start(&env.redis);
    let (status, body) = page(ME).await;
    let cold_cache = command_names(&monitor.stop());
    assert_eq!(
        (
            status,
            body["meta"]["cache_status"].as_str(),
            body["count"].as_u64()
        ),
        (200, Some("hit"), Some(20)),
        "{body}"
    );
    assert_eq!(cold_cache, ["LPOP", "MGET"], "item cache cold");
    let stats = apps.services.engine.catalog.stats();
    println!(
        "item cache: {} hits, {} catalog reads in {} round trips",
        stats.cache_hits.load(std::sync::atomic::Ordering::Relaxed),
        stats
            .catalog_reads
            .load(std::sync::atomic::Ordering::Relaxed),
        stats.round_trips.load(std::sync::atomic::Ordering::Relaxed)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_fifty_refreshes_enqueues_at_most_one_warm() {
    let env = TestEnv::start().await;
    let apps = std::sync::Arc::new(Apps::build(&env, None, AuthMode::None).await);
    let sqs = env.sqs.client().await;
    // No pool yet: every one of the 50 would want a warm.
    let requests = (0..50).map(|_| {
        let apps = apps.clone();
        tokio::spawn(async move {
            apps.api
                .handle(api_request("GET", &feed("bursty"), &[], None, None))
                .await
        })
    });
    let mut queued = 0;
    for r in requests {
        let (status, body) = response_json(&r.await.unwrap());
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["meta"]["cache_status"], "miss");
        queued += usize::from(body["meta"]["refresh_queued"] == true);
    }
    let depth = queue_depth(&sqs, &env.queue_url).await;
    println!("50 concurrent refreshes: {queued} said refresh_queued, queue depth {depth}");
    assert_eq!(depth, 1);
    assert_eq!(queued, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_and_post_give_the_same_contract() {
    let env = TestEnv::start().await;
    let apps = Apps::build(&env, None, AuthMode::None).await;
    warmed(&env, &apps, "getter").await;
    warmed(&env, &apps, "poster").await;
    let (gs, g) = response_json(
        &apps
            .api
            .handle(api_request(
                "GET",
                &feed("getter"),
                &[
                    ("max_results", "7"),
                    ("include_trending", "false"),
                    ("category_filter", "sports"),
                ],
                None,
                None,
            ))
            .await,
    );
    let (ps, p) = response_json(
        &apps
            .api
            .handle(api_request(
                "POST",
                &feed("poster"),
                &[],
                Some(
                    r#"{"max_results": 7, "include_trending": false, "category_filter": "SPORTS"}"#,
                ),
                None,
            ))
            .await,
    );
    assert_eq!(gs, ps);
    let keys = |v: &Value| {
        v.as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(keys(&g), keys(&p));
    assert_eq!(keys(&g["meta"]), keys(&p["meta"]));
    assert_eq!(g["count"], p["count"]);
    let ids = |v: &Value| {
        v["videos"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["video_id"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ids(&g),
        ids(&p),
        "same history, same parameters, different feeds"
    );
}
