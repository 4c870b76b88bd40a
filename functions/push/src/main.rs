//! reco-push: the WebSub callback of YouTube's push notifications, behind an API Gateway
//! route without the JWT authorizer (the hub signs its posts instead).

use std::sync::Arc;

use lambda_http::request::LambdaRequest;
use lambda_http::tower::ServiceExt;
use lambda_http::{Adapter, Error, LambdaEvent, Request, service_fn};
use reco_api::event;
use reco_core::clock::SystemClock;
use reco_core::config::{Config, PushConfig};
use reco_core::push::secrets::PushSecretSource;
use reco_core::store::RedisConn;
use reco_core::wiring::{StartupError, exit_on_startup_error, install_metrics};
use reco_push::Callback;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let callback = exit_on_startup_error((|| -> Result<Callback, StartupError> {
        let config = Config::from_env()?;
        install_metrics(&config);
        let push = PushConfig::from_env()?;
        let redis = RedisConn::connect_lazy_with(&config.redis_url, &config.redis_options())?;
        Ok(Callback {
            redis,
            secrets: PushSecretSource::from_config(&push)?,
            clock: Arc::new(SystemClock),
        })
    })());
    let callback = Arc::new(callback);
    let handler = Adapter::from(service_fn(move |req: Request| {
        let callback = callback.clone();
        async move { Ok::<_, Error>(callback.handle(req).await) }
    }));
    lambda_runtime::run(
        handler.map_request(|event: LambdaEvent<LambdaRequest>| LambdaEvent {
            payload: event::readable(event.payload),
            context: event.context,
        }),
    )
    .await
}
