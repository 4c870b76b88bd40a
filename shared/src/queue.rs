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
/// used so nothing probes for real ones; otherwise the standard AWS chain, which honours
/// `AWS_ENDPOINT_URL_SQS` too.
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
        None => {
            let shared = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
            aws_sdk_sqs::config::Builder::from(&shared)
        }
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
