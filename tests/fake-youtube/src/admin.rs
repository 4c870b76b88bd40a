//! Test-only control endpoints (no key needed), for the harness and for
//! tests written in other languages or run out of process.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use jiff::Timestamp;
use serde_json::{Value, json};

use crate::{Fault, Shared};

pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/admin/counters", get(counters))
        .route("/admin/clock", get(clock).post(set_clock))
        .route("/admin/limits", get(limits).post(set_limits))
        .route("/admin/faults", post(faults))
        .route("/admin/channels/{channel_id}/uploads", post(upload))
        .route("/admin/videos/{id}", get(video))
        .route("/admin/corpus", get(corpus))
        .route("/admin/reset", post(reset))
}

fn bad(msg: impl Into<String>) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({ "error": msg.into() })),
    )
        .into_response()
}

fn body(b: Result<Json<Value>, JsonRejection>) -> Result<Value, String> {
    b.map(|Json(v)| v)
        .map_err(|e| format!("invalid JSON body: {e}"))
}

async fn counters(State(s): State<Arc<Shared>>) -> Response {
    let now = s.now();
    let c = s.meter.lock().expect("meter lock").snapshot(now);
    Json(c).into_response()
}

fn clock_json(s: &Shared) -> Response {
    let now = s.now();
    Json(json!({ "now": now.to_string(), "pacific_date": crate::quota::pacific_date(now) }))
        .into_response()
}

async fn clock(State(s): State<Arc<Shared>>) -> Response {
    clock_json(&s)
}

async fn set_clock(
    State(s): State<Arc<Shared>>,
    b: Result<Json<Value>, JsonRejection>,
) -> Response {
    let v = match body(b) {
        Ok(v) => v,
        Err(e) => return bad(e),
    };
    if let Some(set) = v.get("set") {
        let Some(t) = set.as_str().and_then(|t| t.parse::<Timestamp>().ok()) else {
            return bad("`set` must be an RFC 3339 timestamp");
        };
        s.set_clock(t);
    }
    if let Some(adv) = v.get("advance_secs") {
        let Some(secs) = adv.as_i64() else {
            return bad("`advance_secs` must be an integer");
        };
        s.advance_clock(secs);
    }
    clock_json(&s)
}

async fn limits(State(s): State<Arc<Shared>>) -> Response {
    Json(s.meter.lock().expect("meter lock").limits.clone()).into_response()
}

async fn set_limits(
    State(s): State<Arc<Shared>>,
    b: Result<Json<Value>, JsonRejection>,
) -> Response {
    let v = match body(b) {
        Ok(v) => v,
        Err(e) => return bad(e),
    };
    let Some(obj) = v.as_object() else {
        return bad("body must be an object");
    };
    let mut meter = s.meter.lock().expect("meter lock");
    let mut l = meter.limits.clone();
    for (k, val) in obj {
        let n = val.as_u64();
        if !val.is_null() && n.is_none() {
            return bad(format!("`{k}` must be a non-negative integer or null"));
        }
        match k.as_str() {
            "daily_units" => l.daily_units = n.unwrap_or(u64::MAX),
            "daily_searches" => l.daily_searches = n.unwrap_or(u64::MAX),
            "max_calls_per_second" => l.max_calls_per_second = n,
            "max_units_per_minute" => l.max_units_per_minute = n,
            other => return bad(format!("unknown limit `{other}`")),
        }
    }
    meter.limits = l.clone();
    Json(l).into_response()
}

async fn faults(State(s): State<Arc<Shared>>, b: Result<Json<Value>, JsonRejection>) -> Response {
    let v = match body(b) {
        Ok(v) => v,
        Err(e) => return bad(e),
    };
    let count = v.get("count").and_then(Value::as_u64).unwrap_or(1);
    let fault = match v.get("kind").and_then(Value::as_str) {
        Some("latency") => Fault::Latency(Duration::from_millis(
            v.get("latency_ms").and_then(Value::as_u64).unwrap_or(1000),
        )),
        Some("server_error") => Fault::ServerError,
        Some("too_many_requests") => Fault::TooManyRequests,
        Some("malformed_json") => Fault::MalformedJson,
        _ => {
            return bad(
                "`kind` must be one of latency, server_error, too_many_requests, malformed_json",
            );
        }
    };
    let Ok(count) = u32::try_from(count) else {
        return bad("`count` too large");
    };
    s.inject(fault, count);
    Json(json!({ "queued": count })).into_response()
}

async fn upload(
    State(s): State<Arc<Shared>>,
    Path(channel_id): Path<String>,
    b: Result<Json<Value>, JsonRejection>,
) -> Response {
    let v = match body(b) {
        Ok(v) => v,
        Err(e) => return bad(e),
    };
    let Some(title) = v.get("title").and_then(Value::as_str) else {
        return bad("`title` is required");
    };
    let tags: Vec<String> = v
        .get("tags")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|t| t.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    match s.publish(&channel_id, title, &tags) {
        Some(id) => (StatusCode::CREATED, Json(json!({ "video_id": id }))).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({ "error": format!("unknown channel {channel_id}") })),
        )
            .into_response(),
    }
}

async fn video(State(s): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let view = s.catalog.view();
    match view.video(&id, s.now()) {
        Some(v) => Json(json!({
            "id": v.id,
            "channel_id": v.channel_id,
            "topic": v.topic,
            "category_id": v.category_id,
            "title": v.title,
            "tags": v.tags,
            "published_at": v.published_at.to_string(),
        }))
        .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({ "error": format!("unknown video {id}") })),
        )
            .into_response(),
    }
}

async fn corpus(State(s): State<Arc<Shared>>) -> Response {
    if let Some(world) = s.world() {
        let topics: Vec<Value> = world
            .topics()
            .iter()
            .enumerate()
            .map(|(i, t)| {
                json!({
                    "name": t.name,
                    "category_id": t.category_id,
                    "sample_channel_id": world.topic_channels(i).first().map(|&r| world.channel(r).id),
                })
            })
            .collect();
        return Json(json!({
            "world_channels": world.channel_count(),
            "generation_ms": s.generation_time.as_millis() as u64,
            "topics": topics,
        }))
        .into_response();
    }
    let corpus = s.corpus();
    let topics: Vec<Value> = corpus
        .topics()
        .iter()
        .map(|t| {
            json!({
                "name": t.name,
                "category_id": t.category_id,
                "channels": t.channel_count,
                "videos": t.video_count,
                "sample_channel_id": t.channels.first().map(|&c| corpus.channels()[c].id.clone()),
            })
        })
        .collect();
    Json(json!({
        "channels": corpus.channels().len(),
        "videos": corpus.videos().len(),
        "generation_ms": s.generation_time.as_millis() as u64,
        "topics": topics,
    }))
    .into_response()
}

async fn reset(State(s): State<Arc<Shared>>) -> Response {
    let now = s.now();
    s.meter.lock().expect("meter lock").reset(now);
    Json(json!({ "reset": true })).into_response()
}
