//! reco-warmer: the SQS-triggered pool builder.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::sqs::SqsEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use reco_core::config::Config;
use reco_core::wiring::{Services, exit_on_startup_error, install_metrics};
use reco_warmer::Warmer;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let services = exit_on_startup_error(Config::from_env().map_err(Into::into).and_then(|c| {
        install_metrics(&c);
        Services::build(c, None)
    }));
    let queue = exit_on_startup_error(services.warm_queue(Duration::from_secs(5)).await);
    let warmer = Arc::new(Warmer::new(&services, queue));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let warmer = warmer.clone();
        // The batch must answer before Lambda's own deadline (see `Warmer::handle_until`).
        // A deadline already past when the invocation starts is no real one: `cargo lambda
        // watch` sends a fixed `Lambda-Runtime-Deadline-Ms` of 600000 (1970), and Lambda's
        // own is always ahead. Such a batch runs without a deadline, as it would have.
        let deadline = event
            .context
            .deadline()
            .duration_since(std::time::SystemTime::now())
            .ok()
            .filter(|left| !left.is_zero())
            .map(|left| tokio::time::Instant::now() + left);
        async move { Ok::<_, Error>(warmer.handle_until(event.payload, deadline).await) }
    }))
    .await
}
