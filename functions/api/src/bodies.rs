//! Request bodies: read within the size limit, declared JSON, then each field checked
//! with a 400 that names it.

use lambda_http::{Body, Request};
use reco_core::domain::{Interests, WatchEvent, is_video_id};
use serde_json::Value;

use crate::ApiError;

/// Bodies larger than this are refused with 413 before parsing.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
pub const MAX_HISTORY_EVENTS: usize = 100;

pub(crate) fn body_bytes(req: &Request) -> &[u8] {
    match req.body() {
        Body::Empty => &[],
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => &[],
    }
}

/// Reads a JSON body: 413 over the limit, 415 when it is not declared JSON, 400 broken.
pub(crate) fn json_body(req: &Request) -> Result<Value, ApiError> {
    let bytes = body_bytes(req);
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ApiError::new(
            413,
            "body_too_large",
            format!("the body is over {MAX_BODY_BYTES} bytes"),
        ));
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if essence != "application/json" && !essence.ends_with("+json") {
        return Err(ApiError::new(
            415,
            "unsupported_media_type",
            "the body must be application/json",
        ));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::invalid("body", format!("the body is not valid JSON: {e}")))
}

/// The optional `"interests": {"topics": [..], "categories": [..]}` of a history body;
/// it replaces what the user declared before (empty lists clear it).
pub fn parse_interests(body: &Value) -> Result<Option<Interests>, ApiError> {
    let Some(value) = body.get("interests") else {
        return Ok(None);
    };
    let Some(object) = value.as_object() else {
        return Err(ApiError::invalid(
            "interests",
            "interests must be {\"topics\": [...], \"categories\": [...]}",
        ));
    };
    let list = |name: &str, field: &'static str| -> Result<Vec<String>, ApiError> {
        let invalid = || ApiError::invalid(field, format!("{name} must be a list of strings"));
        match object.get(name) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| item.as_str().map(str::to_owned).ok_or_else(invalid))
                .collect(),
            Some(_) => Err(invalid()),
        }
    };
    let topics = list("topics", "interests.topics")?;
    let categories = list("categories", "interests.categories")?;
    let interests = Interests::new(&topics, &categories)
        .map_err(|e| ApiError::invalid(e.field(), e.to_string()))?;
    Ok(Some(interests))
}

/// `{"events": [{"video_id", "watched_at"?, "watch_seconds"?}]}`, 1 to 100 events.
pub fn parse_history(body: &Value) -> Result<Vec<WatchEvent>, ApiError> {
    let events = body
        .get("events")
        .and_then(Value::as_array)
        .ok_or_else(|| ApiError::invalid("events", "the body must be {\"events\": [...]}"))?;
    if events.is_empty() || events.len() > MAX_HISTORY_EVENTS {
        return Err(ApiError::invalid(
            "events",
            format!("events must hold 1 to {MAX_HISTORY_EVENTS} items"),
        ));
    }
    events
        .iter()
        .map(|e| {
            let video_id = e
                .get("video_id")
                .and_then(Value::as_str)
                .filter(|id| is_video_id(id))
                .ok_or_else(|| {
                    ApiError::invalid(
                        "events.video_id",
                        "each event needs a video_id of 11 characters [A-Za-z0-9_-]",
                    )
                })?;
            let watched_at = match e.get("watched_at") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s.parse::<jiff::Timestamp>().map_err(|_| {
                    ApiError::invalid("events.watched_at", "watched_at must be an RFC 3339 time")
                })?),
                Some(_) => {
                    return Err(ApiError::invalid(
                        "events.watched_at",
                        "watched_at must be an RFC 3339 time",
                    ));
                }
            };
            let watch_seconds = match e.get("watch_seconds") {
                None | Some(Value::Null) => None,
                Some(v) => Some(v.as_u64().filter(|s| *s <= 7 * 86_400).ok_or_else(|| {
                    ApiError::invalid(
                        "events.watch_seconds",
                        "watch_seconds must be a whole number of seconds",
                    )
                })? as u32),
            };
            Ok(WatchEvent {
                video_id: video_id.to_owned(),
                watched_at,
                watch_seconds,
            })
        })
        .collect()
}
