//! The WebSub callback (ARCHITECTURE.md § Push): the hub's verification GETs and its
//! signed notification POSTs, on `/push/v1/youtube/{channel_id}`, one callback URL per
//! subscription, so the secret a body must be signed with is known before the body is
//! read.
//!
//! What each request is answered, as WebSub says:
//! - A verification (`hub.mode` subscribe or unsubscribe) on the channel's callback URL
//!   (its token, `?t=`, derived from the master secret) of a topic we asked for, with a
//!   recent intent of the same mode: 200 with the challenge as the body, the lease
//!   recorded no longer than we asked. Anything else: 404, WebSub's "we do not agree".
//! - A denial (`hub.mode=denied`) with the token: 200; the subscription is no longer live.
//! - A notification whose `X-Hub-Signature` matches: applied, 204. One that does not (or
//!   has none): the same 204, and nothing changes, so a forger learns nothing; it is
//!   counted (`PushNotificationsRejected`). A signed body for a channel we no longer
//!   want: 410, which tells the hub to drop the subscription. A signed body that is not
//!   a notification: 400 naming what is wrong.
//! - A body over 64 KB: 413, before its signature is computed.
//! - Redis or the secret unreachable: 503 with `Retry-After`; the hub retries, nothing
//!   is lost.

use std::time::Instant;

use lambda_http::{Body, Request, RequestExt, Response};
use reco_api::ApiError;
use reco_api::event::UnreadablePart;
use reco_core::clock::SharedClock;
use reco_core::metrics::{self, Field, Metric};
use reco_core::push::notification::{self, MAX_NOTIFICATION_BYTES};
use reco_core::push::secrets::PushSecretSource;
use reco_core::push::signature::CALLBACK_TOKEN_PARAM;
use reco_core::push::subscriptions::{HubMode, Subscriptions, Verdict};
use reco_core::push::{apply, is_channel_id, topic_channel};
use reco_core::store::RedisConn;

/// Where the callback's routes start (after any stage prefix).
pub const ROUTE_PREFIX: &str = "/push/v1/youtube/";
/// The longest `hub.challenge` echoed (WebSub asks subscribers to limit it).
pub const MAX_CHALLENGE_CHARS: usize = 200;
/// `X-Hub-Signature`.
pub const SIGNATURE_HEADER: &str = "x-hub-signature";

pub struct Callback {
    pub redis: RedisConn,
    pub secrets: PushSecretSource,
    pub clock: SharedClock,
}

/// What a request came to, for its log line and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Confirmed(HubMode),
    Refused(&'static str),
    Denied,
    Applied(apply::Applied),
    /// The signature did not match, or there was none: ignored.
    Rejected(&'static str),
    /// Signed, for a channel we no longer want: ignored (410).
    NotWanted,
    /// Signed, and not a notification.
    Malformed,
    /// The request itself was wrong (a missing parameter, an unknown route).
    BadRequest,
    /// Redis or the secret could not be reached.
    Unavailable,
}

impl Outcome {
    fn name(&self) -> &'static str {
        match self {
            Outcome::Confirmed(_) => "confirmed",
            Outcome::Refused(_) => "refused",
            Outcome::Denied => "denied",
            Outcome::Applied(_) => "applied",
            Outcome::Rejected(_) => "rejected",
            Outcome::NotWanted => "not_wanted",
            Outcome::Malformed => "malformed",
            Outcome::BadRequest => "bad_request",
            Outcome::Unavailable => "unavailable",
        }
    }

    fn metrics(&self) -> Vec<(Metric, f64)> {
        match self {
            Outcome::Confirmed(_) => vec![(Metric::PushVerificationsConfirmed, 1.0)],
            Outcome::Refused(_) => vec![(Metric::PushVerificationsRefused, 1.0)],
            Outcome::Applied(a) => vec![
                (Metric::PushNotificationsAccepted, 1.0),
                (Metric::PushVideosQueued, a.queued as f64),
            ],
            Outcome::Rejected(_) => vec![(Metric::PushNotificationsRejected, 1.0)],
            Outcome::NotWanted | Outcome::Malformed => {
                vec![(Metric::PushNotificationsIgnored, 1.0)]
            }
            Outcome::Denied | Outcome::BadRequest | Outcome::Unavailable => Vec::new(),
        }
    }
}

fn empty(status: u16) -> Response<Body> {
    Response::builder()
        .status(status)
        .body(Body::Empty)
        .expect("static response parts are valid")
}

fn error(e: ApiError) -> Response<Body> {
    e.into_response("push")
}

fn unavailable(what: &str) -> Response<Body> {
    error(
        ApiError::new(
            503,
            "unavailable",
            format!("{what} is unreachable; retry later"),
        )
        .retry_after(60),
    )
}

/// The channel of a callback path, `…/push/v1/youtube/{channel_id}`.
pub fn channel_of_path(path: &str) -> Option<&str> {
    let start = path.find(ROUTE_PREFIX)?;
    let channel = path[start + ROUTE_PREFIX.len()..].trim_end_matches('/');
    is_channel_id(channel).then_some(channel)
}

/// Whether a challenge is one WebSub allows: its character set, and not too long.
fn valid_challenge(challenge: &str) -> bool {
    !challenge.is_empty()
        && challenge.chars().count() <= MAX_CHALLENGE_CHARS
        && challenge
            .bytes()
            .all(|b| matches!(b, b'+' | b'-'..=b'9' | b'=' | b'A'..=b'Z' | b'_' | b'a'..=b'z'))
}

impl Callback {
    /// The Lambda handler: always a response.
    pub async fn handle(&self, req: Request) -> Response<Body> {
        let started = Instant::now();
        let (response, outcome) = self.dispatch(&req).await;
        let mut values = outcome.metrics();
        values.push((
            Metric::PushCallbackLatencyMs,
            started.elapsed().as_secs_f64() * 1000.0,
        ));
        let detail = match &outcome {
            Outcome::Refused(why) | Outcome::Rejected(why) => *why,
            _ => "",
        };
        let logged = metrics::emit_with(
            &values,
            &[
                ("level", Field::Str("INFO")),
                ("message", Field::Str("push callback")),
                ("method", Field::Str(req.method().as_str())),
                ("status", Field::U64(u64::from(response.status().as_u16()))),
                ("outcome", Field::Str(outcome.name())),
                ("detail", Field::Str(detail)),
            ],
        );
        if !logged {
            tracing::info!(
                method = req.method().as_str(),
                status = response.status().as_u16(),
                outcome = outcome.name(),
                detail,
                "push callback"
            );
        }
        response
    }

    async fn dispatch(&self, req: &Request) -> (Response<Body>, Outcome) {
        if let Some(part) = UnreadablePart::from_marker(req.headers()) {
            return (
                error(ApiError::new(
                    400,
                    "unreadable_request",
                    format!("the request's {} could not be read", part.field()),
                )),
                Outcome::BadRequest,
            );
        }
        let Some(channel) = channel_of_path(req.uri().path()) else {
            return (
                error(ApiError::new(
                    404,
                    "not_found",
                    format!("no callback here: the path is {ROUTE_PREFIX}{{channel_id}}"),
                )),
                Outcome::BadRequest,
            );
        };
        match req.method().as_str() {
            "GET" => self.verification(req, channel).await,
            "POST" => self.notification(req, channel).await,
            other => (
                error(ApiError::new(
                    405,
                    "method_not_allowed",
                    format!("{other} is not GET or POST"),
                )),
                Outcome::BadRequest,
            ),
        }
    }

    /// The hub's GET: a verification of intent, or a denial.
    async fn verification(&self, req: &Request, channel: &str) -> (Response<Body>, Outcome) {
        let query = req.query_string_parameters();
        let Some(mode) = query.first("hub.mode") else {
            return (
                error(ApiError::invalid("hub.mode", "hub.mode is required")),
                Outcome::BadRequest,
            );
        };
        let Some(topic) = query.first("hub.topic") else {
            return (
                error(ApiError::invalid("hub.topic", "hub.topic is required")),
                Outcome::BadRequest,
            );
        };
        let now_ms = self.clock.now_ms();
        let subscriptions = Subscriptions::new(self.redis.clone());
        // The hub comes to the callback URL we gave it, token included; anyone else
        // cannot confirm, deny or lengthen a subscription.
        let secrets = match self.secrets.get().await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "the push master secret is unavailable");
                return (unavailable("the push secret"), Outcome::Unavailable);
            }
        };
        if !secrets.callback_token_matches(channel, query.first(CALLBACK_TOKEN_PARAM)) {
            return (
                error(ApiError::new(
                    404,
                    "not_requested",
                    "no such request of ours",
                )),
                Outcome::Refused("no callback token"),
            );
        }
        if topic_channel(topic) != Some(channel) {
            return (
                error(ApiError::new(
                    404,
                    "unknown_topic",
                    "not a topic of this callback",
                )),
                Outcome::Refused("topic is not this callback's channel"),
            );
        }
        if mode == "denied" {
            let reason = query.first("hub.reason").unwrap_or("");
            return match subscriptions.denied(channel, reason, now_ms).await {
                Ok(_) => (empty(200), Outcome::Denied),
                Err(_) => (unavailable("redis"), Outcome::Unavailable),
            };
        }
        let Some(mode) = HubMode::parse(mode) else {
            return (
                error(ApiError::invalid(
                    "hub.mode",
                    "hub.mode is not subscribe, unsubscribe or denied",
                )),
                Outcome::BadRequest,
            );
        };
        let challenge = query.first("hub.challenge").unwrap_or("");
        if !valid_challenge(challenge) {
            return (
                error(ApiError::invalid(
                    "hub.challenge",
                    format!(
                        "hub.challenge must be 1 to {MAX_CHALLENGE_CHARS} characters of WebSub's set"
                    ),
                )),
                Outcome::BadRequest,
            );
        }
        let lease = match query.first("hub.lease_seconds") {
            None => None,
            Some(raw) => match raw.parse::<u64>() {
                Ok(secs) => Some(secs),
                Err(_) => {
                    return (
                        error(ApiError::invalid(
                            "hub.lease_seconds",
                            "hub.lease_seconds is not a number of seconds",
                        )),
                        Outcome::BadRequest,
                    );
                }
            },
        };
        match subscriptions.verify(channel, mode, lease, now_ms).await {
            Ok(Verdict::Confirm) => (
                Response::builder()
                    .status(200)
                    .header("content-type", "application/octet-stream")
                    .header("x-content-type-options", "nosniff")
                    .body(Body::Text(challenge.to_owned()))
                    .expect("static response parts are valid"),
                Outcome::Confirmed(mode),
            ),
            Ok(Verdict::Refuse(why)) => (
                error(ApiError::new(
                    404,
                    "not_requested",
                    "no such request of ours",
                )),
                Outcome::Refused(why),
            ),
            Err(_) => (unavailable("redis"), Outcome::Unavailable),
        }
    }

    /// The hub's POST: a notification, acted on only when its signature matches.
    async fn notification(&self, req: &Request, channel: &str) -> (Response<Body>, Outcome) {
        let body: &[u8] = match req.body() {
            Body::Empty => &[],
            Body::Text(t) => t.as_bytes(),
            Body::Binary(b) => b,
            _ => &[],
        };
        if body.len() > MAX_NOTIFICATION_BYTES {
            return (
                error(ApiError::new(
                    413,
                    "body_too_large",
                    format!("the body is larger than {MAX_NOTIFICATION_BYTES} bytes"),
                )),
                Outcome::Malformed,
            );
        }
        let secrets = match self.secrets.get().await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "the push master secret is unavailable");
                return (unavailable("the push secret"), Outcome::Unavailable);
            }
        };
        let header = req
            .headers()
            .get(SIGNATURE_HEADER)
            .and_then(|v| v.to_str().ok());
        if let Err(e) = secrets.verify(channel, header, body) {
            return (empty(204), Outcome::Rejected(rejection(e)));
        }
        let now_ms = self.clock.now_ms();
        let subscriptions = Subscriptions::new(self.redis.clone());
        match subscriptions.accepts_notifications(channel, now_ms).await {
            Ok(true) => {}
            Ok(false) => return (empty(410), Outcome::NotWanted),
            Err(_) => return (unavailable("redis"), Outcome::Unavailable),
        }
        let parsed = match notification::parse(body) {
            Ok(n) => n,
            Err(e) => {
                return (
                    error(ApiError::invalid("body", e.to_string())),
                    Outcome::Malformed,
                );
            }
        };
        match apply::apply(&self.redis, channel, &parsed, now_ms).await {
            Ok(applied) => (empty(204), Outcome::Applied(applied)),
            Err(_) => (unavailable("redis"), Outcome::Unavailable),
        }
    }
}

fn rejection(e: reco_core::push::signature::SignatureError) -> &'static str {
    use reco_core::push::signature::SignatureError as E;
    match e {
        E::Missing => "no signature",
        E::Malformed => "malformed signature",
        E::UnknownMethod => "unknown signature method",
        E::Mismatch => "signature mismatch",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_channel_comes_from_the_path_after_any_stage() {
        let c = "UC_x5XG1OV2P6uZZ5FSM9Ttw";
        assert_eq!(channel_of_path(&format!("/push/v1/youtube/{c}")), Some(c));
        assert_eq!(
            channel_of_path(&format!("/prod/push/v1/youtube/{c}/")),
            Some(c)
        );
        assert_eq!(channel_of_path("/push/v1/youtube/not-a-channel"), None);
        assert_eq!(channel_of_path(&format!("/push/v1/youtube/{c}/x")), None);
        assert_eq!(channel_of_path("/api/v1/health"), None);
    }

    #[test]
    fn challenges_are_websubs_characters_and_bounded() {
        assert!(valid_challenge("16832595826105906514"));
        assert!(valid_challenge("abc-DEF_0.9+/="));
        assert!(!valid_challenge(""));
        assert!(!valid_challenge("<script>"));
        assert!(!valid_challenge("a b"));
        assert!(!valid_challenge(&"a".repeat(MAX_CHALLENGE_CHARS + 1)));
    }
}
