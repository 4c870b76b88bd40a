//! Client-facing errors: every failure is a JSON body with a code, a message that names
//! the field, and the status a client can act on.

use lambda_http::{Body, Response};
use serde_json::json;

#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    pub field: Option<&'static str>,
    pub retry_after_secs: Option<u64>,
}

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
            retry_after_secs: None,
        }
    }

    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field: Some(field),
            ..Self::new(400, "invalid_parameter", message)
        }
    }

    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs);
        self
    }

    pub fn into_response(self, request_id: &str) -> Response<Body> {
        let mut error = json!({"code": self.code, "message": self.message});
        if let Some(field) = self.field {
            error["field"] = json!(field);
        }
        let body = json!({"success": false, "error": error, "request_id": request_id});
        let mut builder = Response::builder()
            .status(self.status)
            .header("content-type", "application/json");
        if let Some(secs) = self.retry_after_secs {
            builder = builder.header("retry-after", secs.to_string());
        }
        builder
            .body(Body::Text(body.to_string()))
            .expect("static response parts are valid")
    }
}
