//! CORS for a page on another origin (`CORS_ALLOWED_ORIGINS`): the function answers the
//! preflight and marks its responses itself, which is what a page sees locally (under
//! `cargo lambda watch --disable-cors`). In AWS, API Gateway's own CORS configuration
//! (`template.yaml`, the same list) answers preflights before the function and replaces
//! these headers. No origin is allowed unless listed: the default is none.

use lambda_http::http::HeaderValue;
use lambda_http::http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN,
    VARY,
};
use lambda_http::{Body, Request, Response};

use crate::ApiError;

/// The request headers a page may send: the Cognito JWT and a JSON body's type.
pub const ALLOWED_HEADERS: &str = "authorization, content-type";
/// How long a browser may cache a preflight answer.
pub const MAX_AGE_SECS: u32 = 600;

/// The origins allowed to call the API from a browser (exact `scheme://host[:port]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cors {
    origins: Vec<String>,
}

impl Cors {
    /// From `Config::cors_allowed_origins` (already checked and lower-cased there).
    pub fn new(origins: &[String]) -> Self {
        Self {
            origins: origins.to_vec(),
        }
    }

    /// The request's `Origin` when it is one of the allowed ones.
    fn allowed<'r>(&self, req: &'r Request) -> Option<&'r str> {
        let origin = req.headers().get(ORIGIN)?.to_str().ok()?;
        self.origins
            .iter()
            .any(|o| o.eq_ignore_ascii_case(origin))
            .then_some(origin)
    }

    /// A CORS preflight: `OPTIONS` with `Origin` and `Access-Control-Request-Method`.
    pub fn is_preflight(req: &Request) -> bool {
        req.method() == "OPTIONS"
            && req.headers().contains_key(ORIGIN)
            && req.headers().contains_key(ACCESS_CONTROL_REQUEST_METHOD)
    }

    /// The answer to a preflight for a route accepting `methods`: 204 with the allowed
    /// methods and headers, or a 403 naming `origin` when the origin is not allowed.
    pub fn preflight(
        &self,
        req: &Request,
        methods: &'static str,
    ) -> Result<Response<Body>, ApiError> {
        if self.allowed(req).is_none() {
            return Err(ApiError {
                field: Some("origin"),
                ..ApiError::new(
                    403,
                    "origin_not_allowed",
                    "this origin may not call the API from a browser (CORS_ALLOWED_ORIGINS)",
                )
            });
        }
        Ok(Response::builder()
            .status(204)
            .header(ACCESS_CONTROL_ALLOW_METHODS, format!("{methods}, OPTIONS"))
            .header(ACCESS_CONTROL_ALLOW_HEADERS, ALLOWED_HEADERS)
            .header(ACCESS_CONTROL_MAX_AGE, MAX_AGE_SECS.to_string())
            .body(Body::Empty)
            .expect("static response parts are valid"))
    }

    /// Marks any response (errors included, so a page can read a 429's `Retry-After`) for
    /// an allowed origin; with origins configured, every response varies by `Origin`.
    pub fn decorate(&self, req: &Request, response: &mut Response<Body>) {
        if self.origins.is_empty() {
            return;
        }
        let headers = response.headers_mut();
        headers.append(VARY, HeaderValue::from_static("origin"));
        let Some(origin) = self.allowed(req) else {
            return;
        };
        if let Ok(value) = HeaderValue::from_str(origin) {
            headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, value);
            headers.insert(
                ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static("retry-after"),
            );
        }
    }
}
