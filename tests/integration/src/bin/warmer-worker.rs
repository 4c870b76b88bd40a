//! `warmer-worker`: one warmer instance consuming the warm queue like the Lambda event
//! source mapping does, in its own process. The two-processes test runs two of them on
//! the same queue.
//!
//! Reads the functions' environment (`REDIS_URL`, `WARM_QUEUE_URL`,
//! `AWS_ENDPOINT_URL_SQS`, `YOUTUBE_*`, ...) plus:
//! - `WORKER_NAME`: printed on every outcome line (default: the process id);
//! - `WORKER_MAX_BATCH`: messages per receive, 1-10 (default 10);
//! - `WORKER_IDLE_EXIT_SECS`: exit after this long without a message (default 10).
//!
//! Prints one line per message, `worker=NAME message=ID outcome=KIND`, and the warmer's
//! own log lines (`AWS_LAMBDA_LOG_FORMAT=json` makes them JSON).

use std::sync::Arc;
use std::time::{Duration, Instant};

use reco_core::config::Config;
use reco_core::wiring::{Services, exit_on_startup_error, install_metrics};
use reco_tests::apps::deliver_once;
use reco_warmer::Warmer;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    lambda_runtime::tracing::init_default_subscriber();
    let name = std::env::var("WORKER_NAME").unwrap_or_else(|_| std::process::id().to_string());
    let max_batch: i32 = env_or::<i32>("WORKER_MAX_BATCH", 10).clamp(1, 10);
    let idle_exit = Duration::from_secs(env_or("WORKER_IDLE_EXIT_SECS", 10));
    let services = exit_on_startup_error(Config::from_env().map_err(Into::into).and_then(|c| {
        install_metrics(&c);
        Services::build(c, None)
    }));
    let queue = exit_on_startup_error(services.warm_queue(Duration::from_secs(5)).await);
    let sqs = queue.client().clone();
    let queue_url = queue.url().to_owned();
    let warmer = Arc::new(Warmer::new(&services, queue));
    println!("worker={name} ready");
    let mut last_message = Instant::now();
    while last_message.elapsed() < idle_exit {
        let outcomes = deliver_once(&sqs, &queue_url, &warmer, max_batch, 1).await;
        if !outcomes.is_empty() {
            last_message = Instant::now();
        }
        for (message_id, outcome) in outcomes {
            println!(
                "worker={name} message={message_id} outcome={}",
                outcome.kind()
            );
        }
    }
    println!("worker={name} idle; exiting");
}
