//! API Gateway events that lambda_http cannot turn into a request.
//!
//! lambda_http builds the request's URL from the Host header (or the request context's
//! domain name), X-Forwarded-Proto, the stage and path and the raw query string, and
//! decodes a base64 body, and it `unwrap`s each step. A header it cannot parse — the fuzzer
//! found `Host: abc.execute-api.us-east-[1.amazonaws.com` — would panic, and under
//! `panic = "abort"` take the whole instance down with every request in flight. So each
//! event is checked first, the same way lambda_http will read it, and one that would not
//! convert is replaced by a harmless event marked with [`UNREADABLE_PART_HEADER`]; the
//! handler answers it with a 400 that names the part.

use std::env;

use base64::Engine;
use lambda_http::Request;
use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use lambda_http::http::{HeaderMap, HeaderValue, Uri, header::HOST};
use lambda_http::request::LambdaRequest;
use url::Url;

/// Set on a replaced event; its value is one of the [`UnreadablePart`] names.
pub const UNREADABLE_PART_HEADER: &str = "x-reco-unreadable-part";
const FORWARDED_PROTO: &str = "x-forwarded-proto";

/// The part of an event that lambda_http could not have turned into a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnreadablePart {
    Host,
    DomainName,
    ForwardedProto,
    Path,
    QueryString,
    Body,
}

impl UnreadablePart {
    pub const ALL: [UnreadablePart; 6] = [
        Self::Host,
        Self::DomainName,
        Self::ForwardedProto,
        Self::Path,
        Self::QueryString,
        Self::Body,
    ];

    /// The event field, as a client or an operator would look for it.
    pub fn field(self) -> &'static str {
        match self {
            Self::Host => "Host header",
            Self::DomainName => "requestContext.domainName",
            Self::ForwardedProto => "X-Forwarded-Proto header",
            Self::Path => "path",
            Self::QueryString => "query string",
            Self::Body => "body (base64)",
        }
    }

    /// The marker a client might also send: only these names are recognised.
    pub fn from_marker(headers: &HeaderMap) -> Option<Self> {
        let value = headers.get(UNREADABLE_PART_HEADER)?.to_str().ok()?;
        Self::ALL.into_iter().find(|part| part.field() == value)
    }
}

/// The event unchanged when lambda_http can convert it; otherwise a minimal event of the
/// same method that converts, carrying the unreadable part's name in a header.
pub fn readable(payload: LambdaRequest) -> LambdaRequest {
    let LambdaRequest::ApiGatewayV2(mut event) = payload else {
        return payload;
    };
    if let Some(part) = unreadable_part(&event) {
        event.headers = HeaderMap::new();
        event.headers.insert(
            UNREADABLE_PART_HEADER,
            HeaderValue::from_static(part.field()),
        );
        event.request_context.domain_name = None;
        event.request_context.stage = None;
        event.raw_path = Some("/".to_owned());
        event.raw_query_string = None;
        event.query_string_parameters = Default::default();
        event.cookies = None;
        event.body = None;
        event.is_base64_encoded = false;
    }
    LambdaRequest::ApiGatewayV2(event)
}

/// `lambda_http::request::from_str` with the check in between: an event as the runtime
/// hands it to `main`, for tests and the fuzzer.
pub fn request_from_str(event: &str) -> Result<Request, serde_json::Error> {
    serde_json::from_str::<LambdaRequest>(event).map(|payload| Request::from(readable(payload)))
}

/// What lambda_http 1.x does in `into_api_gateway_v2_request`, without panicking.
pub fn unreadable_part(event: &ApiGatewayV2httpRequest) -> Option<UnreadablePart> {
    let header_host = event.headers.get(HOST).and_then(|v| v.to_str().ok());
    let host = header_host.or(event.request_context.domain_name.as_deref());
    let raw_path = event.raw_path.as_deref().unwrap_or_default();
    let path = path_with_stage(event.request_context.stage.as_deref(), raw_path);
    let url = match host {
        None => match Url::parse(&format!("http://localhost{path}")) {
            Ok(url) => url.path().to_owned(),
            Err(_) => return Some(UnreadablePart::Path),
        },
        Some(host) => {
            let proto = event.headers.get(FORWARDED_PROTO);
            let scheme = proto.and_then(|v| v.to_str().ok()).unwrap_or("https");
            match Url::parse(&format!("{scheme}://{host}{path}")) {
                Ok(url) => url.to_string(),
                Err(_) if Url::parse(&format!("{scheme}://localhost/")).is_err() => {
                    return Some(UnreadablePart::ForwardedProto);
                }
                Err(_) if Url::parse(&format!("https://{host}/")).is_err() => {
                    return Some(if header_host.is_some() {
                        UnreadablePart::Host
                    } else {
                        UnreadablePart::DomainName
                    });
                }
                Err(_) => return Some(UnreadablePart::Path),
            }
        }
    };
    if url.parse::<Uri>().is_err() {
        return Some(UnreadablePart::Path);
    }
    if let Some(query) = event.raw_query_string.as_deref().filter(|q| !q.is_empty())
        && format!("{url}?{query}").parse::<Uri>().is_err()
    {
        return Some(UnreadablePart::QueryString);
    }
    if event.is_base64_encoded
        && let Some(body) = &event.body
        && base64::engine::general_purpose::STANDARD
            .decode(body)
            .is_err()
    {
        return Some(UnreadablePart::Body);
    }
    None
}

/// lambda_http's `apigw_path_with_stage`.
fn path_with_stage(stage: Option<&str>, path: &str) -> String {
    if env::var("AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH").is_ok() {
        return path.to_owned();
    }
    match stage {
        None | Some("$default") => path.to_owned(),
        Some(stage) if path.starts_with(&format!("/{stage}/")) => path.to_owned(),
        Some(stage) => format!("/{stage}{path}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(edit: impl FnOnce(&mut serde_json::Value)) -> LambdaRequest {
        let mut value: serde_json::Value = serde_json::from_str(include_str!(
            "../../../events/apigw-get-recommendations.json"
        ))
        .expect("sample event");
        edit(&mut value);
        serde_json::from_value(value).expect("an API Gateway v2 event")
    }

    fn convert(payload: LambdaRequest) -> Request {
        Request::from(readable(payload))
    }

    #[test]
    fn a_sound_event_is_left_as_it_is() {
        let request = convert(event(|_| {}));
        assert!(request.headers().get(UNREADABLE_PART_HEADER).is_none());
        assert!(
            request
                .uri()
                .path()
                .starts_with("/api/v1/video/recommendations/")
        );
        assert_eq!(
            request.uri().query(),
            Some("max_results=10&include_trending=true")
        );
    }

    #[test]
    fn each_part_lambda_http_would_panic_on_is_named() {
        type Edit = fn(&mut serde_json::Value);
        let cases: [(UnreadablePart, Edit); 9] = [
            (UnreadablePart::Host, |v| {
                v["headers"]["host"] = "abc123.execute-api.us-east-[1.amazonaws.com".into()
            }),
            (UnreadablePart::DomainName, |v| {
                v["headers"].as_object_mut().unwrap().remove("host");
                v["requestContext"]["domainName"] = "exa mple.com".into();
            }),
            (UnreadablePart::ForwardedProto, |v| {
                v["headers"]["x-forwarded-proto"] = "ht tp".into()
            }),
            (UnreadablePart::Path, |v| {
                v["headers"].as_object_mut().unwrap().remove("host");
                v["requestContext"]
                    .as_object_mut()
                    .unwrap()
                    .remove("domainName");
                v["rawPath"] = ":99999".into();
            }),
            // Over http's 64 KB URI limit.
            (UnreadablePart::Path, |v| {
                v["rawPath"] =
                    format!("/api/v1/video/recommendations/{}", "u".repeat(70_000)).into()
            }),
            // A stage over the limit: the replacement event must not keep it.
            (UnreadablePart::Path, |v| {
                v["requestContext"]["stage"] = "s".repeat(70_000).into()
            }),
            (UnreadablePart::QueryString, |v| {
                v["rawQueryString"] = format!("max_results={}", "1".repeat(70_000)).into()
            }),
            (UnreadablePart::QueryString, |v| {
                v["rawQueryString"] = "max_results=1 0".into()
            }),
            (UnreadablePart::Body, |v| {
                v["body"] = "not base64!".into();
                v["isBase64Encoded"] = true.into();
            }),
        ];
        for (part, edit) in cases {
            // Each case is one lambda_http itself cannot convert.
            let unchecked = std::panic::catch_unwind(|| Request::from(event(edit)));
            assert!(unchecked.is_err(), "lambda_http converts {part:?}");
            let request = convert(event(edit));
            assert_eq!(
                UnreadablePart::from_marker(request.headers()),
                Some(part),
                "{part:?}"
            );
            assert_eq!(request.uri().path(), "/");
        }
    }

    #[test]
    fn a_marker_sent_by_a_client_names_only_known_parts() {
        let mut headers = HeaderMap::new();
        headers.insert(UNREADABLE_PART_HEADER, HeaderValue::from_static("<script>"));
        assert_eq!(UnreadablePart::from_marker(&headers), None);
    }
}
