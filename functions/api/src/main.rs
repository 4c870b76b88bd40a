//! reco-api: the API Gateway HTTP API function.

use std::sync::Arc;
use std::time::Duration;

use lambda_http::request::LambdaRequest;
use lambda_http::tower::ServiceExt;
use lambda_http::{Adapter, Error, LambdaEvent, Request, service_fn};
use reco_api::{Api, event};
use reco_core::config::Config;
use reco_core::wiring::{Services, exit_on_startup_error, install_metrics};

// One thread: Lambda hands an instance one invocation at a time, so a second thread only
// adds hand-offs between them (the Redis connection's task and the handler's); measured
// with bench-tail (BENCHMARKS.md § 1).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let services = exit_on_startup_error(Config::from_env().map_err(Into::into).and_then(|c| {
        install_metrics(&c);
        Services::build(c, None)
    }));
    let queue = exit_on_startup_error(services.warm_queue(Duration::from_millis(800)).await);
    let api = Arc::new(Api {
        engine: services.engine.clone(),
        guard: services.guard.clone(),
        redis: services.redis.clone(),
        queue: Some(queue),
        auth: services.config.auth_mode,
        cors: reco_api::Cors::new(&services.config.cors_allowed_origins),
        last_good: reco_api::LastGoodPages::for_function_memory_mb(
            services
                .config
                .function_memory_mb
                .unwrap_or(reco_api::DEFAULT_FUNCTION_MEMORY_MB),
        ),
    });
    let handler = Adapter::from(service_fn(move |req: Request| {
        let api = api.clone();
        async move { Ok::<_, Error>(api.handle(req).await) }
    }));
    // Checked before lambda_http converts it: a malformed event gets a 400, not a panic.
    lambda_runtime::run(
        handler.map_request(|event: LambdaEvent<LambdaRequest>| LambdaEvent {
            payload: event::readable(event.payload),
            context: event.context,
        }),
    )
    .await
}
