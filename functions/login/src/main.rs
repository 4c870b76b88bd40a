//! reco-login: the Cognito post-authentication (and post-confirmation) trigger.
//!
//! It starts whatever the state of its settings: a sign-in must never fail because the
//! warm-up cannot run (see `Login::from_lookup`).

use std::sync::Arc;

use lambda_runtime::{Error, LambdaEvent, service_fn};
use reco_core::clock::SystemClock;
use reco_login::Login;
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let (login, problems) =
        Login::from_lookup(|name| std::env::var(name).ok(), Arc::new(SystemClock)).await;
    for problem in &problems {
        tracing::error!(%problem, "sign-in warm-ups are degraded; sign-ins still complete");
    }
    let login = Arc::new(login);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let login = login.clone();
        async move { Ok::<Value, Error>(login.handle(event.payload).await) }
    }))
    .await
}
