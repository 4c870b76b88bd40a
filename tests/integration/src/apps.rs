//! The three functions' handlers built on a [`TestEnv`], and the pieces of Lambda's
//! plumbing a test needs: API Gateway v2 requests and an SQS event source mapping.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use lambda_http::{Body, Request, RequestExt};
use reco_api::Api;
use reco_core::clock::SharedClock;
use reco_core::config::AuthMode;
use reco_core::wiring::Services;
use reco_login::Login;
use reco_warmer::Warmer;
use serde_json::{Value, json};

use crate::services::TestEnv;

pub struct Apps {
    pub services: Services,
    pub api: Api,
    pub warmer: Arc<Warmer>,
    pub login: Login,
}

impl Apps {
    /// Builds the handlers exactly as the functions' `main`s do, on `env`'s services.
    pub async fn build(env: &TestEnv, clock: Option<SharedClock>, auth: AuthMode) -> Self {
        Self::build_with(env, env.config(), clock, auth).await
    }

    /// As [`Apps::build`], with a config of the caller's (see [`config_with`]).
    pub async fn build_with(
        env: &TestEnv,
        config: reco_core::config::Config,
        clock: Option<SharedClock>,
        auth: AuthMode,
    ) -> Self {
        let services = Services::build(config, clock).expect("services");
        let endpoint = env.sqs.endpoint();
        let queue_client =
            reco_core::queue::sqs_client_with(Some(&endpoint), Some(Duration::from_secs(1))).await;
        let queue = reco_core::queue::WarmQueue::new(
            queue_client,
            env.queue_url.clone(),
            Duration::from_secs(1),
        );
        let api = Api {
            engine: services.engine.clone(),
            guard: services.guard.clone(),
            redis: services.redis.clone(),
            queue: Some(queue.clone()),
            auth,
            last_good: Default::default(),
            cors: reco_api::Cors::new(&services.config.cors_allowed_origins),
        };
        let warmer = Arc::new(Warmer::new(&services, queue.clone()));
        let login = Login {
            pool: Some(services.engine.pool.clone()),
            queue: Some(queue),
            clock: services.clock.clone(),
        };
        Self {
            services,
            api,
            warmer,
            login,
        }
    }
}

/// `env`'s config with some variables set or replaced (`YOUTUBE_DAILY_UNITS`, ...), read
/// through `Config::from_lookup` like the functions read their environment.
pub fn config_with(env: &TestEnv, overrides: &[(&str, &str)]) -> reco_core::config::Config {
    let mut vars = env.env();
    for (name, value) in overrides {
        vars.retain(|(k, _)| k != name);
        vars.push((name.to_string(), value.to_string()));
    }
    reco_core::config::Config::from_lookup(|name| {
        vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    })
    .expect("test config with overrides")
}

impl Apps {
    /// Records a watch history through `POST /api/v1/video/history/{user}` (no JWT, so
    /// for `AuthMode::None`), asserting the 202.
    pub async fn record_history(&self, user: &str, body: &str) {
        let path = format!("/api/v1/video/history/{user}");
        let response = self
            .api
            .handle(api_request("POST", &path, &[], Some(body), None))
            .await;
        let (status, json) = response_json(&response);
        assert_eq!(status, 202, "{json}");
    }
}

/// The video ids of a feed response body, in order.
pub fn video_ids(body: &Value) -> Vec<String> {
    body["videos"]
        .as_array()
        .expect("videos array")
        .iter()
        .map(|v| v["video_id"].as_str().unwrap().to_owned())
        .collect()
}

/// An API Gateway HTTP API (payload 2.0) request, with the JWT authorizer's claims when
/// `sub` is given, parsed by lambda_http exactly as in Lambda.
pub fn api_request(
    method: &str,
    path: &str,
    query: &[(&str, &str)],
    body: Option<&str>,
    sub: Option<&str>,
) -> Request {
    api_request_with(
        method,
        path,
        query,
        body.map(|b| (b, "application/json")),
        sub,
    )
}

/// As [`api_request`], with the body's content type given.
pub fn api_request_with(
    method: &str,
    path: &str,
    query: &[(&str, &str)],
    body: Option<(&str, &str)>,
    sub: Option<&str>,
) -> Request {
    let raw_query: Vec<String> = query
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    let mut event = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": raw_query.join("&"),
        "headers": {"accept": "application/json", "host": "api.test"},
        "requestContext": {
            "accountId": "123456789012", "apiId": "test", "domainName": "api.test", "domainPrefix": "api",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "test"},
            "requestId": "req-test", "routeKey": "$default", "stage": "$default", "time": "25/Nov/2026:10:00:00 +0000", "timeEpoch": 1764064800000u64
        },
        "isBase64Encoded": false
    });
    if !query.is_empty() {
        let map: serde_json::Map<String, Value> = query
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        event["queryStringParameters"] = Value::Object(map);
    }
    if let Some(sub) = sub {
        event["requestContext"]["authorizer"] =
            json!({"jwt": {"claims": {"sub": sub}, "scopes": null}});
    }
    if let Some((body, content_type)) = body {
        event["body"] = json!(body);
        event["headers"]["content-type"] = json!(content_type);
    }
    let mut ctx = lambda_http::Context::default();
    ctx.request_id = format!("req-{}", std::process::id());
    reco_api::event::request_from_str(&event.to_string())
        .expect("valid API Gateway v2 event")
        .with_lambda_context(ctx)
}

/// Status and JSON body of a handler response.
pub fn response_json(response: &lambda_http::Response<Body>) -> (u16, Value) {
    let text = match response.body() {
        Body::Text(t) => t.clone(),
        Body::Binary(b) => String::from_utf8_lossy(b).into_owned(),
        _ => String::new(),
    };
    let value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("response body is not JSON ({e}): {text:?}"));
    (response.status().as_u16(), value)
}

/// SQS messages as the Lambda event source mapping hands them to a function.
pub fn sqs_event_from_messages(
    messages: &[aws_sdk_sqs::types::Message],
    queue_arn: &str,
) -> SqsEvent {
    let records = messages
        .iter()
        .map(|m| {
            let mut record = SqsMessage::default();
            record.message_id = m.message_id.clone();
            record.receipt_handle = m.receipt_handle.clone();
            record.body = m.body.clone();
            record.md5_of_body = m.md5_of_body.clone();
            record.event_source = Some("aws:sqs".into());
            record.event_source_arn = Some(queue_arn.to_owned());
            record.aws_region = Some("us-east-1".into());
            record.attributes = m
                .attributes
                .as_ref()
                .map(|a| {
                    a.iter()
                        .map(|(k, v)| (k.as_str().to_owned(), v.clone()))
                        .collect()
                })
                .unwrap_or_default();
            record
        })
        .collect();
    let mut event = SqsEvent::default();
    event.records = records;
    event
}

/// One round of the event source mapping: receive up to `max` messages (waiting up to
/// `wait_secs`), hand them to the warmer, delete those not reported as failures.
/// Returns the (message id, outcome) pairs.
pub async fn deliver_once(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    warmer: &Arc<Warmer>,
    max: i32,
    wait_secs: i32,
) -> Vec<(String, reco_warmer::ItemOutcome)> {
    let received = sqs
        .receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(max)
        .wait_time_seconds(wait_secs)
        .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
        .send()
        .await
        .expect("receive from the warm queue");
    let messages = received.messages.unwrap_or_default();
    if messages.is_empty() {
        return Vec::new();
    }
    let event = sqs_event_from_messages(&messages, "arn:aws:sqs:us-east-1:123456789012:reco-warm");
    let outcomes = warmer.run_batch(event).await;
    for (message, (_, outcome)) in messages.iter().zip(&outcomes) {
        if !outcome.is_failure() {
            sqs.delete_message()
                .queue_url(queue_url)
                .receipt_handle(message.receipt_handle.clone().unwrap_or_default())
                .send()
                .await
                .expect("delete a processed message");
        }
    }
    outcomes
}

/// Messages waiting in a queue (visible ones).
pub async fn queue_depth(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> usize {
    use aws_sdk_sqs::types::QueueAttributeName;
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
        .send()
        .await
        .expect("queue attributes")
        .attributes
        .unwrap_or_default();
    attrs.values().filter_map(|v| v.parse::<usize>().ok()).sum()
}

/// Percent-encodes a query component, as a client would.
pub fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
