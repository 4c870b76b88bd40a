//! reco-login: the Cognito post-authentication (and post-confirmation) trigger.

use std::sync::Arc;

use lambda_runtime::{Error, LambdaEvent, service_fn};
use reco_core::config::Config;
use reco_core::wiring::{Services, exit_on_startup_error};
use reco_login::{Login, SEND_TIMEOUT};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let services = exit_on_startup_error(
        Config::from_env()
            .map_err(Into::into)
            .and_then(|c| Services::build(c, None, false)),
    );
    let queue = exit_on_startup_error(services.warm_queue(SEND_TIMEOUT).await);
    let login = Arc::new(Login {
        pool: services.engine.pool.clone(),
        queue,
        clock: services.clock.clone(),
    });
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let login = login.clone();
        async move { Ok::<Value, Error>(login.handle(event.payload).await) }
    }))
    .await
}
