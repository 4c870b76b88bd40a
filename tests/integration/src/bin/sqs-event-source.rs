//! `sqs-event-source`: a local stand-in for the Lambda SQS event source mapping.
//!
//! Long-polls a (local) SQS queue and invokes the warmer through the Lambda invoke API
//! that `cargo lambda watch` serves, with a real SQS event; messages the batch response
//! names as failed stay on the queue for redelivery (and, after the redrive policy's
//! receive count, the DLQ), exactly like `ReportBatchItemFailures` in AWS.
//!
//! ```text
//! sqs-event-source --queue-url http://127.0.0.1:5000/123456789012/reco-warm \
//!     --sqs-endpoint http://127.0.0.1:5000 --invoke http://127.0.0.1:9000 \
//!     [--function reco-warmer] [--wait-secs 10] [--create-queue] [--once]
//! ```

use std::process::ExitCode;
use std::time::Duration;

use reco_tests::local::poll_and_invoke;

const USAGE: &str = "\
usage: sqs-event-source --queue-url URL --sqs-endpoint URL [--invoke URL] [options]

  --queue-url URL       the queue to poll (WARM_QUEUE_URL)
  --sqs-endpoint URL    the SQS endpoint (a local moto_server; AWS_ENDPOINT_URL_SQS)
  --invoke URL          `cargo lambda watch` base URL (default http://127.0.0.1:9000)
  --function NAME       the function to invoke (default reco-warmer)
  --wait-secs N         long-poll wait per receive, 0-20 (default 10)
  --create-queue        create the queue (and NAME-dlq with a redrive policy) if missing
  --once                one poll, then exit (exit code 1 if the invocation failed)
  --help                this text
";

struct Args {
    queue_url: String,
    sqs_endpoint: String,
    invoke: String,
    function: String,
    wait_secs: i32,
    create_queue: bool,
    once: bool,
}

fn parse(args: &[String]) -> Result<Option<Args>, String> {
    let mut queue_url = None;
    let mut sqs_endpoint = None;
    let mut invoke = "http://127.0.0.1:9000".to_owned();
    let mut function = "reco-warmer".to_owned();
    let mut wait_secs = 10;
    let mut create_queue = false;
    let mut once = false;
    let mut i = 0;
    while i < args.len() {
        let flag = args[i].as_str();
        let mut value = || {
            i += 1;
            args.get(i)
                .cloned()
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag {
            "--help" | "-h" => return Ok(None),
            "--queue-url" => queue_url = Some(value()?),
            "--sqs-endpoint" => sqs_endpoint = Some(value()?),
            "--invoke" => invoke = value()?,
            "--function" => function = value()?,
            "--wait-secs" => {
                let raw = value()?;
                wait_secs = raw
                    .parse()
                    .ok()
                    .filter(|n| (0..=20).contains(n))
                    .ok_or_else(|| format!("--wait-secs: '{raw}' is not 0-20"))?;
            }
            "--create-queue" => create_queue = true,
            "--once" => once = true,
            other => return Err(format!("unknown flag {other}")),
        }
        i += 1;
    }
    Ok(Some(Args {
        queue_url: queue_url.ok_or("--queue-url is required")?,
        sqs_endpoint: sqs_endpoint.ok_or("--sqs-endpoint is required")?,
        invoke: invoke.trim_end_matches('/').to_owned(),
        function,
        wait_secs,
        create_queue,
        once,
    }))
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args = match parse(&args) {
        Ok(Some(a)) => a,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("sqs-event-source: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let sqs = reco_core::queue::sqs_client(Some(&args.sqs_endpoint)).await;
    if args.create_queue
        && let Err(e) = create_queue(&sqs, &args.queue_url).await
    {
        eprintln!("sqs-event-source: {e}");
        return ExitCode::FAILURE;
    }
    let http = match reqwest::Client::builder()
        // The first invocation may wait for `cargo lambda watch` to compile the warmer.
        .timeout(Duration::from_secs(900))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sqs-event-source: http client: {e}");
            return ExitCode::FAILURE;
        }
    };
    let invoke_base = format!("{}/2015-03-31/functions", args.invoke);
    eprintln!(
        "sqs-event-source: {} -> {}/{}/invocations",
        args.queue_url, invoke_base, args.function
    );
    loop {
        let result = poll_and_invoke(
            &sqs,
            &http,
            &args.queue_url,
            &invoke_base,
            &args.function,
            args.wait_secs,
        )
        .await;
        match result {
            Ok((0, _)) => {}
            Ok((n, failed)) => {
                eprintln!("sqs-event-source: delivered {n} message(s), {failed} reported failed")
            }
            Err(e) => {
                eprintln!("sqs-event-source: {e}");
                if args.once {
                    return ExitCode::FAILURE;
                }
                // The queue's visibility timeout redelivers; don't spin on a broken endpoint.
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        if args.once {
            return ExitCode::SUCCESS;
        }
    }
}

/// Creates the queue named by the URL's last segment, with `NAME-dlq` and a redrive
/// policy like the template's (5 receives; visibility 360 s scaled down to 60 s locally).
async fn create_queue(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> Result<(), String> {
    use aws_sdk_sqs::types::QueueAttributeName;
    let name = queue_url
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| format!("cannot take a queue name from {queue_url}"))?;
    let dlq_url = sqs
        .create_queue()
        .queue_name(format!("{name}-dlq"))
        .send()
        .await
        .map_err(sdk_error)?
        .queue_url
        .unwrap_or_default();
    let dlq_arn = sqs
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(sdk_error)?
        .attributes
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .ok_or("the DLQ has no ARN")?;
    let redrive =
        serde_json::json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5}).to_string();
    let created = sqs
        .create_queue()
        .queue_name(name)
        .attributes(QueueAttributeName::RedrivePolicy, redrive)
        .attributes(QueueAttributeName::VisibilityTimeout, "60")
        .send()
        .await
        .map_err(sdk_error)?
        .queue_url
        .unwrap_or_default();
    if created != queue_url {
        eprintln!("sqs-event-source: note: the server calls the queue {created}");
    }
    Ok(())
}

fn sdk_error<E: std::error::Error>(e: E) -> String {
    format!(
        "create queue: {}",
        aws_sdk_sqs::error::DisplayErrorContext(e)
    )
}
