//! Builds the shared clients once per Lambda instance from [`Config`]: the functions'
//! `main`s stay thin, and tests build exactly what production builds.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::{SharedClock, SystemClock};
use crate::config::{Config, ConfigError};
use crate::engine::Engine;
use crate::queue::{WarmQueue, sqs_config_with};
use crate::quota::QuotaGuard;
use crate::store::{RedisConn, StoreError};
use crate::youtube::{YoutubeClient, YoutubeError};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("configuration: REDIS_URL / REDIS_CLUSTER / REDIS_TLS_CA_FILE could not be used: {0}")]
    Redis(#[from] StoreError),
    #[error("configuration: YOUTUBE_API_KEY / YOUTUBE_API_BASE_URL could not be used: {0}")]
    Youtube(#[from] YoutubeError),
}

/// Everything a function may need, built from one config.
#[derive(Clone)]
pub struct Services {
    pub config: Config,
    pub clock: SharedClock,
    pub redis: RedisConn,
    pub guard: QuotaGuard,
    pub engine: Engine,
}

impl Services {
    /// The services of the API and the warmer, which call YouTube (the API for
    /// force_refresh) and so need its key. `clock`: the system's unless a test or the
    /// simulator moves time. (The login function needs only the store and the queue, and
    /// builds them itself so that no other setting can stop a sign-in.)
    pub fn build(config: Config, clock: Option<SharedClock>) -> Result<Self, StartupError> {
        let clock = clock.unwrap_or_else(|| Arc::new(SystemClock));
        let redis = RedisConn::connect_lazy_with(&config.redis_url, &config.redis_options())?;
        let guard = QuotaGuard::new(redis.clone(), config.quota.clone(), clock.clone())
            .with_timeout(config.quota_timeout)
            .with_user_budget(config.user_budget);
        let youtube = Some(YoutubeClient::with_key_source(
            &config.youtube_api_base_url,
            config.youtube_key_source()?,
            guard.clone(),
        )?);
        let mut engine = Engine::new(
            redis.clone(),
            youtube,
            clock.clone(),
            config.region_code.clone(),
            config.recommendation_cache_ttl,
        );
        if let Some(memory_mb) = config.function_memory_mb {
            engine.catalog =
                crate::engine::Catalog::for_function_memory_mb(redis.clone(), memory_mb);
        }
        if let Some(supabase) = &config.supabase {
            engine.history_source = crate::engine::HistorySource::Supabase(
                crate::engine::supabase::SupabaseHistory::new(supabase.clone()),
            );
        }
        Ok(Self {
            config,
            clock,
            redis,
            guard,
            engine,
        })
    }

    /// The warm queue, with every send bounded by `send_timeout`. Its configuration is
    /// checked now; its SQS client is built on the first send ([`WarmQueue::lazy`]), so
    /// the root certificates are not loaded during the function's init.
    pub async fn warm_queue(&self, send_timeout: Duration) -> Result<WarmQueue, StartupError> {
        let url = self.config.require_queue_url()?.to_owned();
        let config = sqs_config_with(self.config.sqs_endpoint.as_deref(), Some(send_timeout)).await;
        Ok(WarmQueue::lazy(config, url, send_timeout))
    }
}

/// Chooses where this process's metrics go (`EMF_METRICS`), once, at start-up.
pub fn install_metrics(config: &Config) {
    crate::metrics::install(if config.emf_metrics {
        crate::metrics::Sink::Stdout
    } else {
        crate::metrics::Sink::Off
    });
}

/// Prints the one-line reason and exits: a function that cannot start must say why in
/// its first log line, not in a panic trace.
pub fn exit_on_startup_error<T>(result: Result<T, StartupError>) -> T {
    match result {
        Ok(v) => v,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}
