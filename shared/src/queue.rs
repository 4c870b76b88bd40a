//! The SQS warm queue: sending warm requests, bounded so a caller never waits long.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use aws_sdk_sqs::config::{Region, retry::RetryConfig, timeout::TimeoutConfig};

use crate::messages::WarmRequest;

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("sqs send did not finish within {0:?}")]
    Timeout(Duration),
    #[error("sqs send failed: {0}")]
    Send(String),
}

/// An SQS client. With `endpoint` (a local `moto_server`), static dummy credentials are
/// used so nothing probes for real ones; otherwise the region and credentials Lambda gives
/// every function ([`lambda_environment`]).
pub async fn sqs_client(endpoint: Option<&str>) -> aws_sdk_sqs::Client {
    sqs_client_with(endpoint, None).await
}

/// As [`sqs_client`], with each operation bounded by `operation_timeout` and no retries,
/// for callers (sign-in) that must never wait on a slow queue.
pub async fn sqs_client_with(
    endpoint: Option<&str>,
    operation_timeout: Option<Duration>,
) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::from_conf(sqs_config_with(endpoint, operation_timeout).await)
}

/// The configuration [`sqs_client_with`] builds its client from, without building the
/// client (which loads the root certificates; see [`WarmQueue::lazy`]).
pub async fn sqs_config_with(
    endpoint: Option<&str>,
    operation_timeout: Option<Duration>,
) -> aws_sdk_sqs::Config {
    let mut builder = match endpoint {
        Some(endpoint) => {
            let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".to_owned());
            aws_sdk_sqs::Config::builder()
                .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
                .region(Region::new(region))
                .endpoint_url(endpoint)
                .credentials_provider(aws_sdk_sqs::config::Credentials::new(
                    "local",
                    "local",
                    None,
                    None,
                    "reco-local",
                ))
        }
        None => lambda_environment(|name| std::env::var(name).ok()),
    };
    if let Some(limit) = operation_timeout {
        builder = builder
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(limit)
                    .operation_attempt_timeout(limit)
                    .operation_timeout(limit)
                    .build(),
            )
            .retry_config(RetryConfig::disabled());
    }
    builder.build()
}

/// The SQS configuration of a function in Lambda: the region and the execution role's
/// session credentials from the variables Lambda sets in every execution environment
/// (`AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`; they
/// do not change during a process's life). This is what aws-config's chain resolves to in
/// Lambda; the rest of that chain (profiles, SSO, STS, instance metadata) never applies
/// there, and leaving aws-config out takes it and the STS client out of every binary.
/// A missing variable leaves that part unset, and the send fails with the SDK's own error
/// without sending anything, as with aws-config's chain finding nothing.
pub fn lambda_environment(lookup: impl Fn(&str) -> Option<String>) -> aws_sdk_sqs::config::Builder {
    let var = |name: &str| lookup(name).filter(|v| !v.is_empty());
    let mut builder = aws_sdk_sqs::Config::builder()
        .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest());
    if let Some(region) = var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION")) {
        builder = builder.region(Region::new(region));
    }
    if let (Some(key), Some(secret)) = (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
        builder = builder.credentials_provider(aws_sdk_sqs::config::Credentials::new(
            key,
            secret,
            var("AWS_SESSION_TOKEN"),
            None,
            "lambda-environment",
        ));
    }
    builder
}

#[derive(Clone, Debug)]
pub struct WarmQueue {
    /// The client, or (for [`WarmQueue::lazy`]) built on the first use from `config`.
    client: Arc<OnceLock<aws_sdk_sqs::Client>>,
    config: Option<aws_sdk_sqs::Config>,
    url: String,
    send_timeout: Duration,
}

impl WarmQueue {
    pub fn new(
        client: aws_sdk_sqs::Client,
        url: impl Into<String>,
        send_timeout: Duration,
    ) -> Self {
        Self {
            client: Arc::new(OnceLock::from(client)),
            config: None,
            url: url.into(),
            send_timeout,
        }
    }

    /// A queue whose SQS client is built on the first send, not now. Building it loads
    /// and parses the platform's root certificates (the SDK's HTTP client does so at
    /// client construction on purpose), a large share of a function's cold start, while
    /// the API sends only on a miss or a low pool and the warmer only to defer.
    pub fn lazy(
        config: aws_sdk_sqs::Config,
        url: impl Into<String>,
        send_timeout: Duration,
    ) -> Self {
        Self {
            client: Arc::new(OnceLock::new()),
            config: Some(config),
            url: url.into(),
            send_timeout,
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The SQS client (built here on first use for a [`WarmQueue::lazy`] queue).
    pub fn client(&self) -> &aws_sdk_sqs::Client {
        self.client.get_or_init(|| {
            let config = self
                .config
                .clone()
                .expect("an eager queue is built with its client");
            aws_sdk_sqs::Client::from_conf(config)
        })
    }

    /// Sends a warm request, delivered after `delay` (SQS allows up to 15 minutes).
    pub async fn send(&self, request: &WarmRequest, delay: Duration) -> Result<String, QueueError> {
        let delay_secs = delay.as_secs().min(900) as i32;
        let send = self
            .client()
            .send_message()
            .queue_url(&self.url)
            .message_body(request.to_json())
            .delay_seconds(delay_secs)
            .send();
        match tokio::time::timeout(self.send_timeout, send).await {
            Err(_) => Err(QueueError::Timeout(self.send_timeout)),
            Ok(Err(e)) => Err(QueueError::Send(
                aws_sdk_sqs::error::DisplayErrorContext(e).to_string(),
            )),
            Ok(Ok(out)) => Ok(out.message_id.unwrap_or_default()),
        }
    }
}

impl WarmQueue {
    /// Sends up to ten warm requests in one `SendMessageBatch`, delivered at once;
    /// returns the indices of the requests SQS did not take.
    pub async fn send_batch(&self, requests: &[WarmRequest]) -> Result<Vec<usize>, QueueError> {
        assert!(
            requests.len() <= 10,
            "SQS batches hold at most ten messages"
        );
        if requests.is_empty() {
            return Ok(Vec::new());
        }
        let entries: Vec<aws_sdk_sqs::types::SendMessageBatchRequestEntry> = requests
            .iter()
            .enumerate()
            .map(|(i, r)| {
                aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(r.to_json())
                    .build()
                    .expect("an entry with an id and a body")
            })
            .collect();
        let send = self
            .client()
            .send_message_batch()
            .queue_url(&self.url)
            .set_entries(Some(entries))
            .send();
        match tokio::time::timeout(self.send_timeout, send).await {
            Err(_) => Err(QueueError::Timeout(self.send_timeout)),
            Ok(Err(e)) => Err(QueueError::Send(
                aws_sdk_sqs::error::DisplayErrorContext(e).to_string(),
            )),
            Ok(Ok(out)) => Ok(out
                .failed()
                .iter()
                .filter_map(|f| f.id().parse::<usize>().ok())
                .collect()),
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;

    use super::*;

    fn lambda_variables(name: &str) -> Option<String> {
        match name {
            "AWS_REGION" => Some("eu-west-1"),
            "AWS_ACCESS_KEY_ID" => Some("ASIAEXAMPLE"),
            "AWS_SECRET_ACCESS_KEY" => Some("secret"),
            "AWS_SESSION_TOKEN" => Some("session-token"),
            _ => None,
        }
        .map(str::to_owned)
    }

    /// Sends one message with `config` to a listener that reads the request head and
    /// closes: the head, or None when no request arrived within a second.
    async fn request_head(builder: aws_sdk_sqs::config::Builder) -> Option<String> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let head = tokio::spawn(async move {
            let (mut socket, _) = tokio::time::timeout(Duration::from_secs(1), listener.accept())
                .await
                .ok()?
                .ok()?;
            let mut buf = vec![0u8; 32 * 1024];
            let mut n = 0;
            while !buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                match socket.read(&mut buf[n..]).await {
                    Ok(0) | Err(_) => break,
                    Ok(read) => n += read,
                }
            }
            Some(String::from_utf8_lossy(&buf[..n]).into_owned())
        });
        let config = builder
            .endpoint_url(&endpoint)
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .operation_timeout(Duration::from_secs(2))
                    .build(),
            )
            .build();
        let sent = aws_sdk_sqs::Client::from_conf(config)
            .send_message()
            .queue_url(format!("{endpoint}/123456789012/reco-warm"))
            .message_body("{}")
            .send()
            .await;
        assert!(sent.is_err(), "the listener never answers");
        head.await.unwrap()
    }

    #[tokio::test]
    async fn lambda_environment_signs_with_the_role_session_in_its_region() {
        let config = lambda_environment(lambda_variables).build();
        assert_eq!(config.region().map(|r| r.as_ref()), Some("eu-west-1"));
        let head = request_head(lambda_environment(lambda_variables))
            .await
            .expect("a signed request")
            .to_ascii_lowercase();
        assert!(head.contains("credential=asiaexample/"), "{head}");
        assert!(head.contains("/eu-west-1/sqs/aws4_request"), "{head}");
        assert!(
            head.contains("x-amz-security-token: session-token"),
            "{head}"
        );
    }

    #[tokio::test]
    async fn lambda_environment_without_credentials_sends_nothing() {
        let only_region = |name: &str| {
            match name {
                "AWS_DEFAULT_REGION" => Some("us-west-2"),
                // Empty is unset.
                "AWS_ACCESS_KEY_ID" | "AWS_SECRET_ACCESS_KEY" => Some(""),
                _ => None,
            }
            .map(str::to_owned)
        };
        let config = lambda_environment(only_region).build();
        assert_eq!(config.region().map(|r| r.as_ref()), Some("us-west-2"));
        assert!(
            request_head(lambda_environment(only_region))
                .await
                .is_none()
        );
        assert!(lambda_environment(|_| None).build().region().is_none());
    }
}
