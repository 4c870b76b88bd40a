//! Where the push master secret comes from: `PUSH_SECRET` locally, or Secrets Manager
//! through the Lambda extension (`PUSH_SECRET_ID`), read on first use (the extension does
//! not serve during init) and kept for the instance's life, like the YouTube API key.

use tokio::sync::OnceCell;

use super::signature::{MIN_MASTER_SECRET_BYTES, PushSecrets};
use crate::config::{ConfigError, PushConfig};
use crate::youtube::{read_secret, secrets_extension_endpoint};

#[derive(Debug)]
pub enum PushSecretSource {
    Plain(PushSecrets),
    Extension {
        endpoint: String,
        secret_id: String,
        http: reqwest::Client,
        secrets: OnceCell<PushSecrets>,
    },
}

fn too_short() -> String {
    format!("the push master secret is shorter than {MIN_MASTER_SECRET_BYTES} bytes")
}

/// The secret out of a `SecretString`: the whole string, or a JSON object's
/// `PUSH_SECRET` member.
fn secret_from_string(raw: &str) -> Option<String> {
    let trimmed = raw.trim();
    if trimmed.starts_with('{') {
        let object: serde_json::Value = serde_json::from_str(trimmed).ok()?;
        object
            .get("PUSH_SECRET")
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    } else {
        (!trimmed.is_empty()).then(|| trimmed.to_owned())
    }
}

impl PushSecretSource {
    pub fn from_config(config: &PushConfig) -> Result<Self, ConfigError> {
        match (&config.secret, &config.secret_id) {
            (Some(secret), _) => {
                PushSecrets::new(secret)
                    .map(Self::Plain)
                    .ok_or_else(|| ConfigError::Invalid {
                        name: "PUSH_SECRET",
                        reason: too_short(),
                    })
            }
            (None, Some(secret_id)) => Ok(Self::Extension {
                endpoint: secrets_extension_endpoint(),
                secret_id: secret_id.clone(),
                http: reqwest::Client::builder()
                    .timeout(std::time::Duration::from_secs(2))
                    .build()
                    .map_err(|e| ConfigError::Invalid {
                        name: "PUSH_SECRET_ID",
                        reason: format!("no HTTP client: {}", e.without_url()),
                    })?,
                secrets: OnceCell::new(),
            }),
            (None, None) => Err(ConfigError::Missing {
                name: "PUSH_SECRET (or PUSH_SECRET_ID)",
            }),
        }
    }

    /// The master secret; a failed read from the extension is retried by the next call.
    /// The error names the secret's id, never its value.
    pub async fn get(&self) -> Result<&PushSecrets, String> {
        match self {
            Self::Plain(secrets) => Ok(secrets),
            Self::Extension {
                endpoint,
                secret_id,
                http,
                secrets,
            } => {
                secrets
                    .get_or_try_init(|| async {
                        let body = read_secret(http, endpoint, secret_id).await?;
                        let raw = body
                            .get("SecretString")
                            .and_then(|v| v.as_str())
                            .and_then(secret_from_string)
                            .ok_or_else(|| {
                                format!("secret {secret_id} holds no push secret (a plain string, or JSON with PUSH_SECRET)")
                            })?;
                        let secrets = PushSecrets::new(&raw).ok_or_else(too_short)?;
                        tracing::info!(%secret_id, "push master secret read from Secrets Manager");
                        Ok(secrets)
                    })
                    .await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_string_is_the_secret_or_holds_it() {
        assert_eq!(secret_from_string("  abc  ").as_deref(), Some("abc"));
        assert_eq!(
            secret_from_string(r#"{"PUSH_SECRET": "xyz"}"#).as_deref(),
            Some("xyz")
        );
        assert_eq!(secret_from_string(r#"{"other": "xyz"}"#), None);
        assert_eq!(secret_from_string("   "), None);
    }
}
