//! Watch history read from Supabase (PostgREST), for products that already keep their
//! users there.
//!
//! One GET per warm:
//! `{url}/rest/v1/{table}?select=video,watched_at[,seconds]&{user}=eq.{id}&order=watched_at.desc.nullslast&limit=N`
//! with the service key as `apikey` and `Authorization: Bearer` (both marked sensitive, and
//! scrubbed from every error message). Rows are parsed leniently: a row whose video id is
//! not a YouTube id is skipped, an unreadable time or duration becomes `None`.

use std::time::Duration;

use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderValue};
use serde_json::Value;

use crate::domain::{Interests, MAX_INTERESTS, UserId, WatchEvent, is_video_id};

/// Time to open a connection to Supabase.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Time for the whole request, body included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

pub use crate::config::SupabaseConfig;

#[derive(Debug, thiserror::Error)]
pub enum SupabaseError {
    #[error("supabase unreachable: {0}")]
    Unreachable(String),
    #[error("supabase answered HTTP {status}: {message}")]
    Http { status: u16, message: String },
    #[error("supabase returned rows that are not watch events: {0}")]
    Malformed(String),
}

#[derive(Clone)]
pub struct SupabaseHistory {
    config: SupabaseConfig,
    /// Built once; `Err` (a message without the key) when the key cannot be a header
    /// value or the client cannot be built, reported by every call.
    http: Result<reqwest::Client, String>,
}

impl std::fmt::Debug for SupabaseHistory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SupabaseHistory")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl SupabaseHistory {
    pub fn new(config: SupabaseConfig) -> Self {
        let http = build_client(&config.service_key);
        Self { config, http }
    }

    pub fn config(&self) -> &SupabaseConfig {
        &self.config
    }

    /// `{url}/rest/v1/{table}`, the table name percent-encoded as a path segment.
    pub fn endpoint(&self) -> String {
        format!(
            "{}/rest/v1/{}",
            self.config.url.trim_end_matches('/'),
            encode_path_segment(&self.config.table)
        )
    }

    /// The query string pairs of [`SupabaseHistory::recent`] (encoded by reqwest).
    pub fn query(&self, user: &UserId, limit: usize) -> Vec<(String, String)> {
        let c = &self.config;
        let mut select = vec![c.video_column.as_str(), c.watched_at_column.as_str()];
        if let Some(seconds) = &c.watch_seconds_column {
            select.push(seconds.as_str());
        }
        vec![
            ("select".to_owned(), select.join(",")),
            (c.user_column.clone(), format!("eq.{}", user.as_str())),
            (
                "order".to_owned(),
                format!("{}.desc.nullslast", c.watched_at_column),
            ),
            ("limit".to_owned(), limit.to_string()),
        ]
    }

    /// The newest `limit` watch events of `user`, newest first.
    pub async fn recent(
        &self,
        user: &UserId,
        limit: usize,
    ) -> Result<Vec<WatchEvent>, SupabaseError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let rows = self
            .rows(&self.endpoint(), &self.query(user, limit))
            .await?;
        let events = parse_rows(&self.config, &rows);
        let skipped = rows.len() - events.len();
        if skipped > 0 {
            tracing::debug!(
                skipped,
                table = %self.config.table,
                "supabase history rows without a YouTube video id were skipped"
            );
        }
        Ok(events)
    }

    /// The user's declared interests from `interests_table`, if one is configured; topics
    /// or categories that do not validate are dropped, not fatal.
    pub async fn interests(&self, user: &UserId) -> Result<Interests, SupabaseError> {
        let Some(table) = &self.config.interests_table else {
            return Ok(Interests::default());
        };
        let endpoint = format!(
            "{}/rest/v1/{}",
            self.config.url.trim_end_matches('/'),
            encode_path_segment(table)
        );
        let query = vec![
            ("select".to_owned(), "topics,categories".to_owned()),
            (
                self.config.user_column.clone(),
                format!("eq.{}", user.as_str()),
            ),
            ("limit".to_owned(), "1".to_owned()),
        ];
        let rows = self.rows(&endpoint, &query).await?;
        Ok(rows.first().map(parse_interests).unwrap_or_default())
    }

    /// One GET, its JSON array of rows, or a typed error without the key.
    async fn rows(
        &self,
        endpoint: &str,
        query: &[(String, String)],
    ) -> Result<Vec<Value>, SupabaseError> {
        let http = self
            .http
            .as_ref()
            .map_err(|why| SupabaseError::Unreachable(self.scrub(why)))?;
        let response = http
            .get(endpoint)
            .query(query)
            .send()
            .await
            .map_err(|e| SupabaseError::Unreachable(self.scrub(&transport_message(e))))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| SupabaseError::Unreachable(self.scrub(&transport_message(e))))?;
        if !status.is_success() {
            return Err(SupabaseError::Http {
                status: status.as_u16(),
                message: self.scrub(&error_message(&body)),
            });
        }
        let rows: Value = serde_json::from_slice(&body)
            .map_err(|e| SupabaseError::Malformed(format!("body is not JSON: {e}")))?;
        match rows {
            Value::Array(rows) => Ok(rows),
            other => Err(SupabaseError::Malformed(format!(
                "expected a JSON array of rows, got {}",
                json_kind(&other)
            ))),
        }
    }

    /// Removes the service key from a message that might have picked it up.
    fn scrub(&self, message: &str) -> String {
        scrub_secret(message, &self.config.service_key)
    }
}

fn build_client(key: &str) -> Result<reqwest::Client, String> {
    let mut headers = HeaderMap::new();
    let mut apikey = HeaderValue::from_str(key).map_err(|_| {
        "SUPABASE_SERVICE_KEY contains characters not allowed in a header".to_owned()
    })?;
    apikey.set_sensitive(true);
    let mut bearer = HeaderValue::from_str(&format!("Bearer {key}")).map_err(|_| {
        "SUPABASE_SERVICE_KEY contains characters not allowed in a header".to_owned()
    })?;
    bearer.set_sensitive(true);
    headers.insert("apikey", apikey);
    headers.insert(AUTHORIZATION, bearer);
    headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
    reqwest::Client::builder()
        .default_headers(headers)
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .pool_idle_timeout(Duration::from_secs(50))
        .build()
        .map_err(|e| format!("could not build the HTTP client: {}", e.without_url()))
}

fn transport_message(e: reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let e = e.without_url();
    let mut message = format!("{what}: {e}");
    let mut source = std::error::Error::source(&e);
    while let Some(inner) = source {
        message.push_str(": ");
        message.push_str(&inner.to_string());
        source = inner.source();
    }
    message
}

/// PostgREST's error body is `{"code","message","details","hint"}`; anything else is
/// reported as (a bounded prefix of) its text.
fn error_message(body: &[u8]) -> String {
    if let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) {
        let field = |name: &str| map.get(name).and_then(Value::as_str).map(str::to_owned);
        if let Some(message) = field("message")
            .or_else(|| field("msg"))
            .or_else(|| field("error"))
        {
            return match field("code") {
                Some(code) => format!("{message} ({code})"),
                None => message,
            };
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "empty body".to_owned();
    }
    text.chars().take(200).collect()
}

fn scrub_secret(message: &str, secret: &str) -> String {
    if secret.is_empty() {
        message.to_owned()
    } else {
        message.replace(secret, "<redacted>")
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// An interests row: `topics` and `categories` as arrays or comma-separated text; each
/// entry that does not validate is dropped.
pub fn parse_interests(row: &Value) -> Interests {
    let list = |name: &str| -> Vec<String> {
        match row.get(name) {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            Some(Value::String(text)) => text.split(',').map(|t| t.trim().to_owned()).collect(),
            _ => Vec::new(),
        }
    };
    let mut interests = Interests::default();
    for topic in list("topics").into_iter().take(MAX_INTERESTS) {
        if let Ok(one) = Interests::new(&[topic], &[]) {
            interests.topics.extend(one.topics);
        }
    }
    for category in list("categories").into_iter().take(MAX_INTERESTS) {
        if let Ok(one) = Interests::new(&[], &[category]) {
            interests.categories.extend(one.categories);
        }
    }
    interests.topics.dedup();
    interests.categories.dedup();
    interests
}

/// Rows → events, in the order given; rows without a YouTube video id are skipped.
pub fn parse_rows(config: &SupabaseConfig, rows: &[Value]) -> Vec<WatchEvent> {
    rows.iter()
        .filter_map(|row| {
            let row = row.as_object()?;
            let video_id = row.get(&config.video_column)?.as_str()?.trim();
            if !is_video_id(video_id) {
                return None;
            }
            Some(WatchEvent {
                video_id: video_id.to_owned(),
                watched_at: row.get(&config.watched_at_column).and_then(parse_timestamp),
                watch_seconds: config
                    .watch_seconds_column
                    .as_ref()
                    .and_then(|column| row.get(column))
                    .and_then(parse_seconds),
            })
        })
        .collect()
}

/// RFC 3339 (`2026-11-25T10:00:00Z`), Postgres `timestamptz` text
/// (`2026-11-25 10:00:00.123+00`), a `timestamp` without zone (taken as UTC), or epoch
/// seconds / milliseconds as a number.
pub fn parse_timestamp(value: &Value) -> Option<jiff::Timestamp> {
    match value {
        Value::String(text) => parse_timestamp_text(text.trim()),
        Value::Number(n) => {
            let n = n.as_f64()?;
            if !n.is_finite() || n < 0.0 {
                return None;
            }
            // Ten-digit values are seconds; anything past year 33658 in seconds is ms.
            let ms = if n < 1e12 { n * 1000.0 } else { n };
            jiff::Timestamp::from_millisecond(ms as i64).ok()
        }
        _ => None,
    }
}

fn parse_timestamp_text(text: &str) -> Option<jiff::Timestamp> {
    if text.is_empty() {
        return None;
    }
    if let Ok(ts) = text.parse::<jiff::Timestamp>() {
        return Some(ts);
    }
    // Postgres writes `+00` / `+05:30` / `-08`: jiff wants minutes on short offsets.
    let normalised = normalise_offset(&text.replacen(' ', "T", 1));
    if let Ok(ts) = normalised.parse::<jiff::Timestamp>() {
        return Some(ts);
    }
    // `timestamp` (no zone): UTC by convention.
    normalised
        .parse::<jiff::civil::DateTime>()
        .ok()
        .and_then(|dt| jiff::tz::TimeZone::UTC.to_timestamp(dt).ok())
}

/// `...+05` → `...+05:00`, `...-0800` → `...-08:00`; anything else unchanged.
fn normalise_offset(text: &str) -> String {
    let Some(time_start) = text.find('T') else {
        return text.to_owned();
    };
    let Some(sign_at) = text[time_start..].rfind(['+', '-']).map(|i| i + time_start) else {
        return text.to_owned();
    };
    let (head, offset) = text.split_at(sign_at);
    let digits = &offset[1..];
    let sign = &offset[..1];
    if digits.bytes().all(|b| b.is_ascii_digit()) {
        match digits.len() {
            2 => return format!("{head}{sign}{digits}:00"),
            4 => return format!("{head}{sign}{}:{}", &digits[..2], &digits[2..]),
            _ => {}
        }
    }
    text.to_owned()
}

/// A non-negative number of seconds (integer, float, or numeric string); else `None`.
pub fn parse_seconds(value: &Value) -> Option<u32> {
    let n = match value {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    if n.is_finite() && n >= 0.0 {
        Some(n.round().min(u32::MAX as f64) as u32)
    } else {
        None
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn encode_path_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config() -> SupabaseConfig {
        SupabaseConfig {
            url: "http://127.0.0.1:1".into(),
            service_key: "service-secret".into(),
            table: "watch_history".into(),
            user_column: "user_id".into(),
            video_column: "video_id".into(),
            watched_at_column: "watched_at".into(),
            watch_seconds_column: Some("seconds".into()),
            interests_table: None,
        }
    }

    #[test]
    fn timestamps_in_postgres_and_rfc3339_forms() {
        let want: jiff::Timestamp = "2026-11-25T10:00:00Z".parse().unwrap();
        for text in [
            "2026-11-25T10:00:00Z",
            "2026-11-25T10:00:00+00:00",
            "2026-11-25 10:00:00+00",
            "2026-11-25 10:00:00+0000",
            "2026-11-25 15:30:00+05:30",
            "2026-11-25 02:00:00-08",
            "2026-11-25 10:00:00",
        ] {
            assert_eq!(parse_timestamp(&json!(text)), Some(want), "{text}");
        }
        assert_eq!(
            parse_timestamp(&json!("2026-11-25 10:00:00.123456+00")),
            Some("2026-11-25T10:00:00.123456Z".parse().unwrap())
        );
        assert_eq!(
            parse_timestamp(&json!(1_795_600_800)),
            Some(jiff::Timestamp::from_second(1_795_600_800).unwrap())
        );
        assert_eq!(parse_timestamp(&json!("yesterday")), None);
        assert_eq!(parse_timestamp(&Value::Null), None);
    }

    #[test]
    fn rows_are_parsed_leniently() {
        let rows = vec![
            json!({"video_id": "dQw4w9WgXcQ", "watched_at": "2026-11-25 10:00:00+00", "seconds": 212}),
            json!({"video_id": "too-short", "watched_at": "2026-11-25 09:00:00+00", "seconds": 1}),
            json!({"video_id": null}),
            json!(42),
            json!({"video_id": "aaaaaaaaaaa", "watched_at": null, "seconds": null}),
            json!({"video_id": "bbbbbbbbbbb", "watched_at": "garbage", "seconds": 12.6}),
            json!({"video_id": "ccccccccccc", "seconds": "30"}),
        ];
        let events = parse_rows(&config(), &rows);
        let ids: Vec<_> = events.iter().map(|e| e.video_id.as_str()).collect();
        assert_eq!(
            ids,
            ["dQw4w9WgXcQ", "aaaaaaaaaaa", "bbbbbbbbbbb", "ccccccccccc"]
        );
        assert_eq!(events[0].watch_seconds, Some(212));
        assert!(events[0].watched_at.is_some());
        assert_eq!(events[1].watch_seconds, None);
        assert_eq!(events[1].watched_at, None);
        assert_eq!(events[2].watch_seconds, Some(13));
        assert_eq!(events[2].watched_at, None);
        assert_eq!(events[3].watch_seconds, Some(30));
    }

    #[test]
    fn query_names_the_configured_columns() {
        let history = SupabaseHistory::new(config());
        let user = UserId::parse("a+b@example.com").unwrap();
        assert_eq!(
            history.query(&user, 50),
            vec![
                (
                    "select".to_owned(),
                    "video_id,watched_at,seconds".to_owned()
                ),
                ("user_id".to_owned(), "eq.a+b@example.com".to_owned()),
                ("order".to_owned(), "watched_at.desc.nullslast".to_owned()),
                ("limit".to_owned(), "50".to_owned()),
            ]
        );
        assert_eq!(
            history.endpoint(),
            "http://127.0.0.1:1/rest/v1/watch_history"
        );
    }

    #[test]
    fn error_bodies_and_secrets() {
        assert_eq!(
            error_message(br#"{"code":"42P01","message":"relation \"public.x\" does not exist","details":null,"hint":null}"#),
            "relation \"public.x\" does not exist (42P01)"
        );
        assert_eq!(
            error_message(b"<html>bad gateway</html>"),
            "<html>bad gateway</html>"
        );
        assert_eq!(error_message(b""), "empty body");
        assert_eq!(
            scrub_secret("key service-secret leaked", "service-secret"),
            "key <redacted> leaked"
        );
        assert!(!format!("{:?}", SupabaseHistory::new(config())).contains("service-secret"));
    }

    #[tokio::test]
    async fn a_key_that_cannot_be_a_header_is_a_clear_error_without_the_key() {
        let mut config = config();
        config.service_key = "bad\nkey-secret".into();
        let history = SupabaseHistory::new(config);
        let err = history
            .recent(&UserId::parse("u1").unwrap(), 10)
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("SUPABASE_SERVICE_KEY"), "{text}");
        assert!(!text.contains("key-secret"), "{text}");
    }
}
