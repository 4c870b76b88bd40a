//! Warm requests: the message the login and API functions put on the warm queue.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::domain::UserId;

pub const WARM_REQUEST_VERSION: u32 = 1;

/// Why a warm was asked for; kept in the message for logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WarmReason {
    SignIn,
    FirstSignIn,
    PoolMissing,
    PoolLow,
    PoolStale,
    HistoryChanged,
    Deferred,
    /// A channel the user watches pushed an upload (`push::hydrate`).
    NewUploads,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WarmRequest {
    pub v: u32,
    pub user_id: UserId,
    pub reason: WarmReason,
    pub requested_at: Timestamp,
}

/// Why a message body is not a warm request. Such a message is poison: retrying cannot
/// fix it, so it goes to the DLQ.
#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    #[error("warm request is not valid JSON or lacks a field: {0}")]
    Malformed(String),
    #[error("warm request has unknown version {0}")]
    UnknownVersion(u64),
}

impl WarmRequest {
    pub fn new(user_id: UserId, reason: WarmReason, requested_at: Timestamp) -> Self {
        Self {
            v: WARM_REQUEST_VERSION,
            user_id,
            reason,
            requested_at,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a warm request always serialises")
    }

    pub fn parse(body: &str) -> Result<Self, MessageError> {
        // Check the version before the rest, so a future message shape is reported as
        // such rather than as a missing field.
        let value: serde_json::Value =
            serde_json::from_str(body).map_err(|e| MessageError::Malformed(e.to_string()))?;
        match value.get("v").and_then(|v| v.as_u64()) {
            Some(v) if v == u64::from(WARM_REQUEST_VERSION) => {}
            Some(v) => return Err(MessageError::UnknownVersion(v)),
            None => return Err(MessageError::Malformed("missing field `v`".into())),
        }
        serde_json::from_value(value).map_err(|e| MessageError::Malformed(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_poison() {
        let req = WarmRequest::new(
            UserId::parse("user-1").unwrap(),
            WarmReason::SignIn,
            "2026-11-25T10:00:00Z".parse().unwrap(),
        );
        assert_eq!(WarmRequest::parse(&req.to_json()).unwrap(), req);
        assert!(matches!(
            WarmRequest::parse("{nope"),
            Err(MessageError::Malformed(_))
        ));
        assert!(matches!(
            WarmRequest::parse(
                r#"{"v":2,"user_id":"a","reason":"sign_in","requested_at":"2026-11-25T10:00:00Z"}"#
            ),
            Err(MessageError::UnknownVersion(2))
        ));
        assert!(matches!(
            WarmRequest::parse(
                r#"{"v":1,"user_id":"a:b","reason":"sign_in","requested_at":"2026-11-25T10:00:00Z"}"#
            ),
            Err(MessageError::Malformed(_))
        ));
    }
}
