//! Sign-in → warm request. Whatever happens here, the sign-in completes: the handler
//! always returns the event it was given, and all of its work is bounded by
//! [`SIGN_IN_DEADLINE`].
//!
//! That holds at start too. The function reads only the settings it uses
//! ([`LOGIN_VARIABLES`]), and one it cannot use (a bad Redis URL, an unreadable TLS CA
//! file, no queue URL) costs the warm-up, never the sign-in: the function starts without
//! that part, says so once in its log, and counts every warm-up it could not enqueue.

use reco_core::metrics::{self, Metric};
use std::time::Duration;

use serde_json::Value;

use reco_core::UserId;
use reco_core::clock::SharedClock;
use reco_core::config::Config;
use reco_core::engine::PoolStore;
use reco_core::messages::{WarmReason, WarmRequest};
use reco_core::queue::{WarmQueue, sqs_config_with};
use reco_core::store::RedisConn;

/// The settings the login function reads; any other is ignored, so a setting only
/// another function uses can never stop sign-ins.
pub const LOGIN_VARIABLES: &[&str] = &[
    "REDIS_URL",
    "REDIS_CLUSTER",
    "REDIS_TLS_CA_FILE",
    "RECOMMENDATION_CACHE_TTL_SECS",
    "EMF_METRICS",
    "WARM_QUEUE_URL",
    "AWS_ENDPOINT_URL_SQS",
];

/// The most a sign-in waits on Redis for the dedupe check before sending anyway.
pub const CLAIM_TIMEOUT: Duration = Duration::from_millis(300);
/// The most a sign-in waits on SQS.
pub const SEND_TIMEOUT: Duration = Duration::from_millis(1000);
/// The most the whole handler spends, whatever is slow (Redis, SQS or both): Cognito
/// waits for the trigger, and the sign-in must not feel it. Claim, send and the release
/// after a failed send each have their own bound; this one caps their sum.
pub const SIGN_IN_DEADLINE: Duration = Duration::from_millis(1200);

pub struct Login {
    /// The dedupe of sign-in bursts; `None` when Redis could not be configured (every
    /// sign-in then sends, and the warmer's lock keeps the work single).
    pub pool: Option<PoolStore>,
    /// `None` when the queue could not be configured: sign-ins complete, unwarmed.
    pub queue: Option<WarmQueue>,
    pub clock: SharedClock,
}

/// What the handler decided, for logs and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginOutcome {
    Enqueued {
        user_id: String,
    },
    AlreadyPendingOrFresh {
        user_id: String,
    },
    SendFailed {
        user_id: String,
        error: String,
    },
    NoUser {
        why: String,
    },
    /// The deadline passed (Redis and SQS both slow); nothing is known to be queued.
    TimedOut,
}

impl Login {
    /// The login function as its `main` builds it, from the environment `lookup` reads,
    /// whatever its state: each part that cannot be built is left out and its reason
    /// returned, for one log line at start.
    pub async fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
        clock: SharedClock,
    ) -> (Login, Vec<String>) {
        let mut problems = Vec::new();
        let config = Config::from_lookup_only(LOGIN_VARIABLES, &lookup);
        let emf = config.as_ref().map(|c| c.emf_metrics).unwrap_or(true);
        metrics::install(if emf {
            metrics::Sink::Stdout
        } else {
            metrics::Sink::Off
        });
        let pool = match &config {
            Ok(c) => match RedisConn::connect_lazy_with(&c.redis_url, &c.redis_options()) {
                Ok(redis) => Some(PoolStore::new(
                    redis,
                    clock.clone(),
                    c.recommendation_cache_ttl,
                )),
                Err(e) => {
                    problems.push(format!(
                        "configuration: REDIS_URL / REDIS_CLUSTER / REDIS_TLS_CA_FILE could not be used ({e}); sign-ins are not deduplicated"
                    ));
                    None
                }
            },
            Err(e) => {
                problems.push(format!("{e}; sign-ins are not deduplicated"));
                None
            }
        };
        let queue = match lookup("WARM_QUEUE_URL").filter(|u| !u.trim().is_empty()) {
            Some(url) => {
                let endpoint = Config::sqs_endpoint_from(&lookup);
                let sqs = sqs_config_with(endpoint.as_deref(), Some(SEND_TIMEOUT)).await;
                Some(WarmQueue::lazy(sqs, url.trim(), SEND_TIMEOUT))
            }
            None => {
                problems.push(
                    "configuration: WARM_QUEUE_URL is required but not set; sign-ins complete without a warm-up".into(),
                );
                None
            }
        };
        (Login { pool, queue, clock }, problems)
    }
}

/// Extracts the user and why they are being warmed from a Cognito trigger event or a
/// plain `{"user_id": "..."}` invocation.
///
/// Cognito events are read field by field rather than through `aws_lambda_events`'
/// typed structs: those require fields Cognito leaves out (`request.newDeviceUsed`,
/// `callerContext`, `response`) and reject trigger sources they do not list, and a
/// sign-in hook must not stop warming because an optional field went missing. Only the
/// user matters here: `request.userAttributes.sub`, the id the API reads from the JWT.
/// There is no fallback to `userName`: a pool warmed under a name no JWT carries as its
/// `sub` would never be read.
pub fn user_from_event(event: &Value) -> Result<(UserId, WarmReason), String> {
    if let Some(trigger) = event.get("triggerSource").and_then(Value::as_str) {
        let reason = if trigger == "PostConfirmation_ConfirmSignUp" {
            WarmReason::FirstSignIn
        } else {
            WarmReason::SignIn
        };
        let sub = event
            .get("request")
            .and_then(|r| r.get("userAttributes"))
            .and_then(|a| a.get("sub"))
            .and_then(Value::as_str)
            .ok_or_else(|| {
                format!(
                    "Cognito {trigger} event has no request.userAttributes.sub (the user id the API's JWTs carry)"
                )
            })?;
        return UserId::parse(sub)
            .map(|u| (u, reason))
            .map_err(|e| e.to_string());
    }
    match event.get("user_id").and_then(Value::as_str) {
        Some(raw) => UserId::parse(raw)
            .map(|u| (u, WarmReason::SignIn))
            .map_err(|e| e.to_string()),
        None => Err("event is neither a Cognito trigger nor {\"user_id\": ...}".into()),
    }
}

/// Kept back from the send so a failed send can still release the dedupe flag in time.
const RELEASE_RESERVE: Duration = Duration::from_millis(100);

impl Login {
    pub async fn on_sign_in(&self, event: &Value) -> LoginOutcome {
        let deadline = tokio::time::Instant::now() + SIGN_IN_DEADLINE;
        let left = || deadline.saturating_duration_since(tokio::time::Instant::now());
        let (user, reason) = match user_from_event(event) {
            Ok(found) => found,
            Err(why) => {
                tracing::warn!(%why, "sign-in event without a usable user; nothing enqueued");
                return LoginOutcome::NoUser { why };
            }
        };
        let Some(queue) = &self.queue else {
            metrics::emit(&[(Metric::WarmEnqueueFailed, 1.0)]);
            return LoginOutcome::SendFailed {
                user_id: user.to_string(),
                error: "no warm queue configured (WARM_QUEUE_URL)".into(),
            };
        };
        // Dedupe in Redis; if Redis is slow, down or not configured, send anyway: the
        // warmer's lock still keeps the work single.
        if let Some(pool) = &self.pool {
            match tokio::time::timeout(CLAIM_TIMEOUT.min(left()), pool.claim_warm(&user)).await {
                Ok(Ok(false)) => {
                    return LoginOutcome::AlreadyPendingOrFresh {
                        user_id: user.to_string(),
                    };
                }
                Ok(Ok(true)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "warm dedupe unavailable; sending anyway"),
                Err(_) => tracing::warn!("warm dedupe timed out; sending anyway"),
            }
        }
        let request = WarmRequest::new(user.clone(), reason, self.clock.now());
        // The queue bounds its own send (no retries, about a second); the deadline may
        // shorten that when Redis already used part of the budget.
        let send_budget = SEND_TIMEOUT.min(left().saturating_sub(RELEASE_RESERVE));
        let sent =
            match tokio::time::timeout(send_budget, queue.send(&request, Duration::ZERO)).await {
                Ok(result) => result.map_err(|e| e.to_string()),
                Err(_) => Err(format!("sqs send did not finish within {send_budget:?}")),
            };
        match sent {
            Ok(_) => LoginOutcome::Enqueued {
                user_id: user.to_string(),
            },
            Err(error) => {
                tracing::error!(%error, "could not enqueue the sign-in warm; sign-in continues");
                metrics::emit(&[(Metric::WarmEnqueueFailed, 1.0)]);
                // Let the next sign-in (or feed request) try again rather than wait out
                // the pending flag's TTL.
                if let Some(pool) = &self.pool {
                    let _ = tokio::time::timeout(
                        CLAIM_TIMEOUT.min(left()),
                        pool.release_warm_claim(&user),
                    )
                    .await;
                }
                LoginOutcome::SendFailed {
                    user_id: user.to_string(),
                    error,
                }
            }
        }
    }

    /// The Lambda handler: returns the event unchanged, always, within
    /// [`SIGN_IN_DEADLINE`] (plus scheduling slack).
    pub async fn handle(&self, event: Value) -> Value {
        let outcome = tokio::time::timeout(
            SIGN_IN_DEADLINE + Duration::from_millis(50),
            self.on_sign_in(&event),
        )
        .await
        .unwrap_or(LoginOutcome::TimedOut);
        match &outcome {
            LoginOutcome::TimedOut => {
                tracing::error!("sign-in warm ran out of time; sign-in continues");
                metrics::emit(&[(Metric::WarmEnqueueFailed, 1.0)]);
            }
            other => tracing::info!(outcome = outcome_kind(other), "sign-in handled"),
        }
        event
    }
}

fn outcome_kind(outcome: &LoginOutcome) -> &'static str {
    match outcome {
        LoginOutcome::Enqueued { .. } => "enqueued",
        LoginOutcome::AlreadyPendingOrFresh { .. } => "skipped",
        LoginOutcome::SendFailed { .. } => "send_failed",
        LoginOutcome::NoUser { .. } => "no_user",
        LoginOutcome::TimedOut => "timed_out",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cognito_post_authentication_without_optional_fields() {
        let event = serde_json::json!({
            "version": "1",
            "triggerSource": "PostAuthentication_Authentication",
            "region": "eu-west-1",
            "userPoolId": "eu-west-1_AbCdEf",
            "userName": "alice",
            "callerContext": {"awsSdkVersion": "aws-sdk-unknown-unknown", "clientId": "abc"},
            "request": {"userAttributes": {"sub": "8f1e2d3c-0000-4000-8000-123456789abc", "email": "a@example.com"}},
            "response": {}
        });
        let (user, reason) = user_from_event(&event).unwrap();
        assert_eq!(user.as_str(), "8f1e2d3c-0000-4000-8000-123456789abc");
        assert_eq!(reason, WarmReason::SignIn);
    }

    #[test]
    fn plain_invocations_and_bad_users() {
        let (user, _) = user_from_event(&serde_json::json!({"user_id": "bob"})).unwrap();
        assert_eq!(user.as_str(), "bob");
        assert!(user_from_event(&serde_json::json!({"user_id": "a:b"})).is_err());
        assert!(user_from_event(&serde_json::json!({"hello": 1})).is_err());
    }

    #[test]
    fn parses_minimal_cognito_payloads_and_trigger_variants() {
        // Nothing but the trigger and the user: no callerContext, no response, no
        // newDeviceUsed, no version.
        let bare = serde_json::json!({
            "triggerSource": "PostAuthentication_Authentication",
            "request": {"userAttributes": {"sub": "u-1"}}
        });
        assert_eq!(
            user_from_event(&bare).unwrap(),
            (UserId::parse("u-1").unwrap(), WarmReason::SignIn)
        );
        let confirm = serde_json::json!({
            "triggerSource": "PostConfirmation_ConfirmSignUp",
            "userName": "ignored-when-sub-present",
            "request": {"userAttributes": {"sub": "u-2"}}
        });
        assert_eq!(
            user_from_event(&confirm).unwrap().1,
            WarmReason::FirstSignIn
        );
        // A password reset confirmation is not a first sign-in.
        let reset = serde_json::json!({
            "triggerSource": "PostConfirmation_ConfirmForgotPassword",
            "request": {"userAttributes": {"sub": "u-3"}}
        });
        assert_eq!(user_from_event(&reset).unwrap().1, WarmReason::SignIn);
        // No sub: no user, whatever the user name (no JWT carries it as its `sub`); a
        // clear error, no panic.
        let by_name = serde_json::json!({
            "triggerSource": "PostAuthentication_Authentication",
            "userName": "carol",
            "request": {"userAttributes": null}
        });
        assert!(
            user_from_event(&by_name)
                .unwrap_err()
                .contains("no request.userAttributes.sub")
        );
        let nobody = serde_json::json!({"triggerSource": "PostAuthentication_Authentication"});
        assert!(
            user_from_event(&nobody)
                .unwrap_err()
                .contains("no request.userAttributes.sub")
        );
        // The shipped sample events parse.
        for (file, reason) in [
            ("cognito-post-authentication.json", WarmReason::SignIn),
            ("cognito-post-confirmation.json", WarmReason::FirstSignIn),
        ] {
            let path = format!("{}/../../events/{file}", env!("CARGO_MANIFEST_DIR"));
            let event: Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            assert_eq!(user_from_event(&event).unwrap().1, reason, "{file}");
        }
    }
}
