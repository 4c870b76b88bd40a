//! An API Gateway HTTP API in front of a real function binary, on loopback: each HTTP
//! request becomes a payload-2.0 event for the binary (through the Runtime API emulator,
//! [`RuntimeApi`]), and its answer becomes the HTTP response. This is the path the push
//! hub's requests take in AWS, so the fake hub can verify and notify the real callback.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Value, json};
use tokio::sync::{Mutex, Notify};

use crate::runtime_api::{Answer, RuntimeApi};

/// A function behind a local HTTP API; stops when dropped.
pub struct ApiGateway {
    addr: SocketAddr,
    stop: Arc<Notify>,
    function: Arc<Mutex<RuntimeApi>>,
}

impl Drop for ApiGateway {
    fn drop(&mut self) {
        self.stop.notify_waiters();
    }
}

impl ApiGateway {
    pub async fn start(function: RuntimeApi) -> Self {
        let function = Arc::new(Mutex::new(function));
        let listener = tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .await
            .expect("bind the local API gateway");
        let addr = listener.local_addr().expect("its address");
        let stop = Arc::new(Notify::new());
        let app = axum::Router::new()
            .fallback(forward)
            .with_state(function.clone());
        let stopped = stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move { stopped.notified().await })
                .await;
        });
        Self {
            addr,
            stop,
            function,
        }
    }

    /// The public URL of `path` on this API.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Everything the function printed so far (its EMF lines included).
    pub async fn function_log(&self) -> String {
        self.function.lock().await.log()
    }
}

/// The payload-2.0 event API Gateway would send for this request.
pub fn http_api_event(method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Value {
    let mut header_map: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        header_map
            .entry(name.as_str().to_ascii_lowercase())
            .and_modify(|v| {
                v.push(',');
                v.push_str(&value);
            })
            .or_insert(value);
    }
    let raw_query = uri.query().unwrap_or("");
    let mut query: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in url::form_urlencoded::parse(raw_query.as_bytes()) {
        query
            .entry(k.into_owned())
            .and_modify(|existing| {
                existing.push(',');
                existing.push_str(&v);
            })
            .or_insert_with(|| v.into_owned());
    }
    let mut event = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": uri.path(),
        "rawQueryString": raw_query,
        "headers": header_map,
        "requestContext": {
            "accountId": "123456789012", "apiId": "local", "domainName": "push.test", "domainPrefix": "push",
            "http": {"method": method.as_str(), "path": uri.path(), "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "fake-hub"},
            "requestId": "req-local", "routeKey": "$default", "stage": "$default", "time": "07/Dec/2026:10:00:00 +0000", "timeEpoch": 1796637600000u64
        },
        "isBase64Encoded": false
    });
    if !query.is_empty() {
        event["queryStringParameters"] = json!(query);
    }
    if !body.is_empty() {
        match std::str::from_utf8(body) {
            Ok(text) => event["body"] = json!(text),
            Err(_) => {
                event["body"] = json!(base64::engine::general_purpose::STANDARD.encode(body));
                event["isBase64Encoded"] = json!(true);
            }
        }
    }
    event
}

async fn forward(
    State(function): State<Arc<Mutex<RuntimeApi>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let event = http_api_event(&method, &uri, &headers, &body).to_string();
    let answer = function
        .lock()
        .await
        .invoke(&event, Duration::from_secs(10), Duration::from_secs(30))
        .await;
    let text = match answer {
        Ok((Answer::Response(text), _)) => text,
        other => {
            return (
                StatusCode::BAD_GATEWAY,
                format!("the function failed: {other:?}"),
            )
                .into_response();
        }
    };
    let Ok(answer) = serde_json::from_str::<Value>(&text) else {
        return (StatusCode::BAD_GATEWAY, "the function's answer is not JSON").into_response();
    };
    let status = answer["statusCode"]
        .as_u64()
        .and_then(|s| StatusCode::from_u16(s as u16).ok())
        .unwrap_or(StatusCode::BAD_GATEWAY);
    let body = answer["body"].as_str().unwrap_or("").to_owned();
    let body = if answer["isBase64Encoded"].as_bool() == Some(true) {
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap_or_default()
    } else {
        body.into_bytes()
    };
    let mut response = (status, body).into_response();
    if let Some(map) = answer["headers"].as_object() {
        for (name, value) in map {
            if let (Ok(name), Some(Ok(value))) = (
                axum::http::HeaderName::from_bytes(name.as_bytes()),
                value.as_str().map(axum::http::HeaderValue::from_str),
            ) {
                response.headers_mut().insert(name, value);
            }
        }
    }
    response
}
