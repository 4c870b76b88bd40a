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

/// `{"topics": [..], "categories": [..]}`: the declared interests, as the client sends them.
#[derive(serde::Deserialize)]
struct InterestsBody {
    #[serde(default)]
    topics: Option<Vec<String>>,
    #[serde(default)]
    categories: Option<Vec<String>>,
}

/// One watch event, as the client sends it; checked further by [`parse_history`].
#[derive(serde::Deserialize)]
struct EventBody {
    // Optional here so that a missing id gets the same answer as a malformed one.
    #[serde(default)]
    video_id: Option<String>,
    #[serde(default)]
    watched_at: Option<String>,
    #[serde(default)]
    watch_seconds: Option<u64>,
}

/// The answer to a field of a history body that does not parse or check, by its name:
/// one message per field, whichever way it is wrong.
fn invalid_field(field: &str) -> ApiError {
    let (field, message): (&'static str, &str) = match field {
        "events.video_id" => (
            "events.video_id",
            "each event needs a video_id of 11 characters [A-Za-z0-9_-]",
        ),
        "events.watched_at" => ("events.watched_at", "watched_at must be an RFC 3339 time"),
        "events.watch_seconds" => (
            "events.watch_seconds",
            "watch_seconds must be a whole number of seconds",
        ),
        "interests.topics" => ("interests.topics", "topics must be a list of strings"),
        "interests.categories" => (
            "interests.categories",
            "categories must be a list of strings",
        ),
        "interests" => (
            "interests",
            "interests must be {\"topics\": [...], \"categories\": [...]}",
        ),
        _ => ("events", "the body must be {\"events\": [...]}"),
    };
    ApiError::invalid(field, message)
}

/// Deserializes `value` as `T`; an error names the field it is in (`prefix`, then the
/// path inside `value` without list indices: `events.watched_at`).
fn typed<T: serde::de::DeserializeOwned>(value: &Value, prefix: &str) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let mut field = prefix.to_owned();
        for segment in e.path().iter() {
            if let serde_path_to_error::Segment::Map { key } = segment {
                field.push('.');
                field.push_str(key);
            }
        }
        invalid_field(&field)
    })
}

/// The optional `"interests": {"topics": [..], "categories": [..]}` of a history body;
/// it replaces what the user declared before (empty lists clear it).
pub fn parse_interests(body: &Value) -> Result<Option<Interests>, ApiError> {
    let Some(value) = body.get("interests") else {
        return Ok(None);
    };
    // A struct deserializes from a JSON array too: only an object is interests.
    if !value.is_object() {
        return Err(invalid_field("interests"));
    }
    let declared: InterestsBody = typed(value, "interests")?;
    let interests = Interests::new(
        &declared.topics.unwrap_or_default(),
        &declared.categories.unwrap_or_default(),
    )
    .map_err(|e| ApiError::invalid(e.field(), e.to_string()))?;
    Ok(Some(interests))
}

/// `{"events": [{"video_id", "watched_at"?, "watch_seconds"?}]}`, 1 to 100 events.
pub fn parse_history(body: &Value) -> Result<Vec<WatchEvent>, ApiError> {
    let events = body
        .get("events")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid_field("events"))?;
    if events.is_empty() || events.len() > MAX_HISTORY_EVENTS {
        return Err(ApiError::invalid(
            "events",
            format!("events must hold 1 to {MAX_HISTORY_EVENTS} items"),
        ));
    }
    events
        .iter()
        .map(|event| {
            if !event.is_object() {
                return Err(invalid_field("events.video_id"));
            }
            let event: EventBody = typed(event, "events")?;
            let video_id = event
                .video_id
                .filter(|id| is_video_id(id))
                .ok_or_else(|| invalid_field("events.video_id"))?;
            let watched_at = event
                .watched_at
                .map(|t| t.parse::<jiff::Timestamp>())
                .transpose()
                .map_err(|_| invalid_field("events.watched_at"))?;
            let watch_seconds = event
                .watch_seconds
                .map(|s| {
                    u32::try_from(s)
                        .ok()
                        .filter(|s| *s <= 7 * 86_400)
                        .ok_or_else(|| invalid_field("events.watch_seconds"))
                })
                .transpose()?;
            Ok(WatchEvent {
                video_id,
                watched_at,
                watch_seconds,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field(result: Result<impl std::fmt::Debug, ApiError>) -> String {
        let e = result.unwrap_err();
        let body = e.into_response("t").into_body();
        let lambda_http::Body::Text(text) = body else {
            panic!("a text body")
        };
        let v: Value = serde_json::from_str(&text).unwrap();
        v["error"]["field"].as_str().unwrap_or_default().to_owned()
    }

    #[test]
    fn each_wrong_field_of_a_history_body_is_named() {
        let event = |e: Value| json!({"events": [e]});
        let cases = [
            (json!({}), "events"),
            (json!({"events": "x"}), "events"),
            (json!({"events": []}), "events"),
            (event(json!({})), "events.video_id"),
            (event(json!({"video_id": 7})), "events.video_id"),
            (event(json!({"video_id": "short"})), "events.video_id"),
            (event(json!("not an object")), "events.video_id"),
            (
                event(json!({"video_id": "dQw4w9WgXcQ", "watched_at": 5})),
                "events.watched_at",
            ),
            (
                event(json!({"video_id": "dQw4w9WgXcQ", "watched_at": "yesterday"})),
                "events.watched_at",
            ),
            (
                event(json!({"video_id": "dQw4w9WgXcQ", "watch_seconds": -1})),
                "events.watch_seconds",
            ),
            (
                event(json!({"video_id": "dQw4w9WgXcQ", "watch_seconds": 1.5})),
                "events.watch_seconds",
            ),
            (
                event(json!({"video_id": "dQw4w9WgXcQ", "watch_seconds": 700_000})),
                "events.watch_seconds",
            ),
        ];
        for (body, want) in cases {
            assert_eq!(field(parse_history(&body)), want, "{body}");
        }
        let ok = parse_history(&event(json!({
            "video_id": "dQw4w9WgXcQ",
            "watched_at": "2026-11-25T10:00:00Z",
            "watch_seconds": 120,
            "ignored": true
        })))
        .unwrap();
        assert_eq!(ok[0].watch_seconds, Some(120));
        assert!(ok[0].watched_at.is_some());
        let nulls = parse_history(&event(
            json!({"video_id": "dQw4w9WgXcQ", "watched_at": null, "watch_seconds": null}),
        ))
        .unwrap();
        assert_eq!((nulls[0].watched_at, nulls[0].watch_seconds), (None, None));
    }

    #[test]
    fn each_wrong_field_of_interests_is_named() {
        let cases = [
            (json!({"interests": null}), "interests"),
            (json!({"interests": []}), "interests"),
            (json!({"interests": {"topics": "jazz"}}), "interests.topics"),
            (json!({"interests": {"topics": [1]}}), "interests.topics"),
            (
                json!({"interests": {"categories": {}}}),
                "interests.categories",
            ),
        ];
        for (body, want) in cases {
            assert_eq!(field(parse_interests(&body)), want, "{body}");
        }
        assert!(parse_interests(&json!({})).unwrap().is_none());
        let cleared = parse_interests(&json!({"interests": {"topics": null}})).unwrap();
        assert!(cleared.is_some_and(|i| i.is_empty()));
    }
}
