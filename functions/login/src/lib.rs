//! Sign-in → warm request. Whatever happens here, the sign-in completes: the handler
//! always returns the event it was given, and every call it makes is bounded.

use std::time::Duration;

use serde_json::Value;

use aws_lambda_events::cognito::{
    CognitoEventUserPoolsPostAuthentication, CognitoEventUserPoolsPostConfirmation,
};
use reco_core::UserId;
use reco_core::clock::SharedClock;
use reco_core::engine::PoolStore;
use reco_core::messages::{WarmReason, WarmRequest};
use reco_core::queue::WarmQueue;

/// The most a sign-in waits on Redis for the dedupe check before sending anyway.
pub const CLAIM_TIMEOUT: Duration = Duration::from_millis(300);
/// The most a sign-in waits on SQS.
pub const SEND_TIMEOUT: Duration = Duration::from_millis(1000);

pub struct Login {
    pub pool: PoolStore,
    pub queue: WarmQueue,
    pub clock: SharedClock,
}

/// What the handler decided, for logs and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginOutcome {
    Enqueued { user_id: String },
    AlreadyPendingOrFresh { user_id: String },
    SendFailed { user_id: String, error: String },
    NoUser { why: String },
}

/// Extracts the user and why they are being warmed from a Cognito trigger event or a
/// plain `{"user_id": "..."}` invocation.
pub fn user_from_event(event: &Value) -> Result<(UserId, WarmReason), String> {
    if let Some(trigger) = event.get("triggerSource").and_then(Value::as_str) {
        let (attributes, reason) = if trigger.starts_with("PostConfirmation") {
            let e: CognitoEventUserPoolsPostConfirmation = serde_json::from_value(event.clone())
                .map_err(|e| format!("not a Cognito PostConfirmation event: {e}"))?;
            (e.request.user_attributes, WarmReason::FirstSignIn)
        } else {
            let e: CognitoEventUserPoolsPostAuthentication = serde_json::from_value(event.clone())
                .map_err(|e| format!("not a Cognito PostAuthentication event: {e}"))?;
            (e.request.user_attributes, WarmReason::SignIn)
        };
        let sub = attributes
            .get("sub")
            .cloned()
            .or_else(|| {
                event
                    .get("userName")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .ok_or("Cognito event has no sub attribute and no userName")?;
        return UserId::parse(&sub)
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

impl Login {
    pub async fn on_sign_in(&self, event: &Value) -> LoginOutcome {
        let (user, reason) = match user_from_event(event) {
            Ok(found) => found,
            Err(why) => {
                tracing::warn!(%why, "sign-in event without a usable user; nothing enqueued");
                return LoginOutcome::NoUser { why };
            }
        };
        // Dedupe in Redis; if Redis is slow or down, send anyway: the warmer's lock
        // still keeps the work single.
        match tokio::time::timeout(CLAIM_TIMEOUT, self.pool.claim_warm(&user)).await {
            Ok(Ok(false)) => {
                return LoginOutcome::AlreadyPendingOrFresh {
                    user_id: user.to_string(),
                };
            }
            Ok(Ok(true)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "warm dedupe unavailable; sending anyway"),
            Err(_) => tracing::warn!("warm dedupe timed out; sending anyway"),
        }
        let request = WarmRequest::new(user.clone(), reason, self.clock.now());
        match self.queue.send(&request, Duration::ZERO).await {
            Ok(_) => LoginOutcome::Enqueued {
                user_id: user.to_string(),
            },
            Err(e) => {
                tracing::error!(error = %e, metric = "warm_enqueue_failed", "could not enqueue the sign-in warm; sign-in continues");
                let _ =
                    tokio::time::timeout(CLAIM_TIMEOUT, self.pool.release_warm_claim(&user)).await;
                LoginOutcome::SendFailed {
                    user_id: user.to_string(),
                    error: e.to_string(),
                }
            }
        }
    }

    /// The Lambda handler: returns the event unchanged, always.
    pub async fn handle(&self, event: Value) -> Value {
        let outcome = self.on_sign_in(&event).await;
        tracing::info!(outcome = ?outcome_kind(&outcome), "sign-in handled");
        event
    }
}

fn outcome_kind(outcome: &LoginOutcome) -> &'static str {
    match outcome {
        LoginOutcome::Enqueued { .. } => "enqueued",
        LoginOutcome::AlreadyPendingOrFresh { .. } => "skipped",
        LoginOutcome::SendFailed { .. } => "send_failed",
        LoginOutcome::NoUser { .. } => "no_user",
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
}
