//! reco-push-manager: the scheduled run of YouTube's push notifications (a SAM schedule
//! event, every minute).

use std::sync::Arc;
use std::time::Duration;

use lambda_runtime::{Error, LambdaEvent, service_fn};
use reco_core::config::{Config, PushConfig};
use reco_core::wiring::{Services, StartupError, exit_on_startup_error, install_metrics};
use reco_push_manager::PushManager;
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let services = exit_on_startup_error(Config::from_env().map_err(Into::into).and_then(|c| {
        install_metrics(&c);
        Services::build(c, None)
    }));
    let queue = exit_on_startup_error(services.warm_queue(Duration::from_secs(5)).await);
    let manager = exit_on_startup_error(
        PushConfig::from_env()
            .map_err(StartupError::from)
            .and_then(|push| PushManager::new(&services, queue, &push)),
    );
    let manager = Arc::new(manager);
    lambda_runtime::run(service_fn(move |_: LambdaEvent<Value>| {
        let manager = manager.clone();
        // A failed run is an error of the invocation (the Errors metric); the next tick
        // takes up where it stopped.
        async move { manager.handle().await.map_err(Error::from) }
    }))
    .await
}
