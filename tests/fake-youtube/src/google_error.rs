//! Google's JSON error envelope.
//!
//! Clients (and the quota guard) branch on `error.errors[0].reason`, so the
//! fake must produce the very same envelope for every refusal, never a bare
//! text body. Field order follows the newer captures (`code`, `message`,
//! `errors`); no `status`/`details`, matching the reference samples.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// One refusal, ready to be rendered as Google would.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoogleError {
    pub code: u16,
    pub message: String,
    pub domain: &'static str,
    pub reason: &'static str,
    pub location: Option<String>,
}

#[derive(Serialize)]
struct Envelope<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    code: u16,
    message: &'a str,
    errors: [Item<'a>; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Item<'a> {
    message: &'a str,
    domain: &'a str,
    reason: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    location: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    location_type: Option<&'a str>,
}

impl GoogleError {
    fn new(
        code: u16,
        message: impl Into<String>,
        domain: &'static str,
        reason: &'static str,
    ) -> Self {
        GoogleError {
            code,
            message: message.into(),
            domain,
            reason,
            location: None,
        }
    }

    fn at(mut self, parameter: &str) -> Self {
        self.location = Some(parameter.to_string());
        self
    }

    /// The legacy body (error_400_keyInvalid_legacy.json): clients that
    /// match on `keyInvalid` must see exactly that reason.
    pub fn key_invalid() -> Self {
        Self::new(400, "Bad Request", "usageLimits", "keyInvalid")
    }

    pub fn required(parameter: &str) -> Self {
        Self::new(
            400,
            format!("Required parameter: {parameter}"),
            "global",
            "required",
        )
        .at(parameter)
    }

    pub fn unknown_part(part: &str) -> Self {
        Self::new(400, format!("'{part}'"), "youtube.part", "unknownPart").at("part")
    }

    pub fn invalid_value(parameter: &str, message: impl Into<String>) -> Self {
        Self::new(400, message, "youtube.parameter", "invalidValue").at(parameter)
    }

    pub fn max_results_out_of_range(value: &str) -> Self {
        Self::invalid_value(
            "maxResults",
            format!("Invalid value '{value}'. Values must be within the range: [0, 50]"),
        )
    }

    pub fn missing_filter(expected: &str) -> Self {
        Self::new(
            400,
            format!("No filter selected. Expected one of: {expected}"),
            "youtube.parameter",
            "missingRequiredParameter",
        )
    }

    pub fn invalid_page_token() -> Self {
        Self::new(
            400,
            "The request specifies an invalid page token.",
            "youtube.parameter",
            "invalidPageToken",
        )
        .at("pageToken")
    }

    pub fn invalid_search_filter(message: &str) -> Self {
        Self::new(400, message, "youtube.search", "invalidSearchFilter")
    }

    pub fn too_many_ids(parameter: &str) -> Self {
        Self::invalid_value(
            parameter,
            format!(
                "The request specifies more than 50 values for the <code>{parameter}</code> parameter."
            ),
        )
    }

    /// Same text as error_403_quotaExceeded.json (serde escapes nothing, but
    /// the decoded string is identical to Google's).
    pub fn quota_exceeded() -> Self {
        Self::new(
            403,
            "The request cannot be completed because you have exceeded your <a href=\"/youtube/v3/getting-started#quota\">quota</a>.",
            "youtube.quota",
            "quotaExceeded",
        )
    }

    pub fn rate_limit_exceeded() -> Self {
        Self::new(
            403,
            "Rate Limit Exceeded",
            "usageLimits",
            "rateLimitExceeded",
        )
    }

    /// The 429 flavour, as in error_429_rateLimitExceeded_videoUploadsPerDay.json.
    pub fn too_many_requests() -> Self {
        Self::new(
            429,
            "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute' of service 'youtube.googleapis.com' for consumer 'project_number:000000000000'.",
            "global",
            "rateLimitExceeded",
        )
    }

    pub fn backend_error() -> Self {
        Self::new(500, "Backend Error", "global", "backendError")
    }

    pub fn playlist_not_found() -> Self {
        Self::new(
            404,
            "The playlist identified with the request's <code>playlistId</code> parameter cannot be found.",
            "youtube.playlistItem",
            "playlistNotFound",
        )
        .at("playlistId")
    }

    pub fn video_chart_not_found() -> Self {
        Self::new(
            404,
            "The requested video chart is not supported or is not available.",
            "youtube.video",
            "videoChartNotFound",
        )
        .at("chart")
    }

    pub fn not_found() -> Self {
        Self::new(404, "Not Found", "global", "notFound")
    }

    pub fn body(&self) -> String {
        let env = Envelope {
            error: Inner {
                code: self.code,
                message: &self.message,
                errors: [Item {
                    message: &self.message,
                    domain: self.domain,
                    reason: self.reason,
                    location: self.location.as_deref(),
                    location_type: self.location.as_ref().map(|_| "parameter"),
                }],
            },
        };
        serde_json::to_string_pretty(&env).expect("error envelope serializes")
    }
}

impl IntoResponse for GoogleError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = (status, self.body()).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=UTF-8"),
        );
        resp
    }
}
