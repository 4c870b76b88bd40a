//! Local stand-ins for AWS plumbing, used by the demo and the `cargo lambda watch`
//! workflow: the SQS event source mapping, invoking a function through the Lambda
//! invoke API that `cargo lambda watch` serves.

use aws_lambda_events::sqs::SqsBatchResponse;

use crate::apps::sqs_event_from_messages;

/// One poll of the SQS event source mapping: receive up to 10 messages, invoke the
/// warmer with a real SQS event through `invoke_base`
/// (`http://127.0.0.1:9000/2015-03-31/functions`), delete every message the batch
/// response does not name as failed. Returns (received, failed).
pub async fn poll_and_invoke(
    sqs: &aws_sdk_sqs::Client,
    http: &reqwest::Client,
    queue_url: &str,
    invoke_base: &str,
    function: &str,
    wait_secs: i32,
) -> Result<(usize, usize), String> {
    let received = sqs
        .receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(10)
        .wait_time_seconds(wait_secs)
        .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
        .send()
        .await
        .map_err(|e| format!("receive: {}", aws_sdk_sqs::error::DisplayErrorContext(e)))?;
    let messages = received.messages.unwrap_or_default();
    if messages.is_empty() {
        return Ok((0, 0));
    }
    let event = sqs_event_from_messages(&messages, "arn:aws:sqs:us-east-1:000000000000:reco-warm");
    let url = format!("{invoke_base}/{function}/invocations");
    let response = http
        .post(&url)
        .json(&event)
        .send()
        .await
        .map_err(|e| format!("invoke {function}: {e}"))?;
    let status = response.status();
    let text = response
        .text()
        .await
        .map_err(|e| format!("invoke {function}: {e}"))?;
    // A function error (not a batch response) leaves every message for redelivery.
    let batch: SqsBatchResponse = match serde_json::from_str(&text) {
        Ok(b) if status.is_success() => b,
        _ => {
            return Err(format!(
                "{function} failed (HTTP {status}): {}",
                text.chars().take(300).collect::<String>()
            ));
        }
    };
    let failed: Vec<&str> = batch
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    for message in &messages {
        if failed.contains(&message.message_id.as_deref().unwrap_or("")) {
            continue;
        }
        sqs.delete_message()
            .queue_url(queue_url)
            .receipt_handle(message.receipt_handle.clone().unwrap_or_default())
            .send()
            .await
            .map_err(|e| format!("delete: {}", aws_sdk_sqs::error::DisplayErrorContext(e)))?;
    }
    Ok((messages.len(), failed.len()))
}
