//! The push subscription manager's handler: one run of `push::manager` per schedule
//! tick, its figures as one EMF line.

use reco_core::config::{ConfigError, PushConfig};
use reco_core::metrics::{self, Field, Metric};
use reco_core::push::manager::{Hub, Manager, ManagerRun, ManagerSettings, PushError};
use reco_core::push::secrets::PushSecretSource;
use reco_core::queue::WarmQueue;
use reco_core::wiring::{Services, StartupError};
use serde_json::{Value, json};

pub struct PushManager {
    manager: Manager,
}

impl PushManager {
    pub fn new(
        services: &Services,
        queue: WarmQueue,
        push: &PushConfig,
    ) -> Result<Self, StartupError> {
        let settings = ManagerSettings::from_config(push)?;
        let secrets = PushSecretSource::from_config(push)?;
        Ok(Self {
            manager: Manager {
                redis: services.redis.clone(),
                sources: services.engine.sources.clone(),
                pool: services.engine.pool.clone(),
                queue,
                hub: Hub::new(secrets, settings).map_err(|e| {
                    StartupError::Config(ConfigError::Invalid {
                        name: "PUSH_HUB_URL",
                        reason: e.to_string(),
                    })
                })?,
                clock: services.clock.clone(),
                demand: Default::default(),
            },
        })
    }

    pub fn manager(&self) -> &Manager {
        &self.manager
    }

    /// One run; its summary is the invocation's result and its log line. A run in which
    /// a phase failed is an error of the invocation (the Errors alarm), after every phase
    /// ran and the metrics were written.
    pub async fn handle(&self) -> Result<Value, PushError> {
        let run = self.manager.run().await?;
        emit(&run);
        if let Some(first) = run.failures.first() {
            tracing::error!(failures = ?run.failures, "a push manager phase failed");
            return Err(PushError::Phase(first.clone()));
        }
        Ok(summary(&run))
    }
}

pub fn summary(run: &ManagerRun) -> Value {
    json!({
        "hydrated": run.hydration.hydrated,
        "dropped": run.hydration.dropped,
        "hydration_calls": run.hydration.calls,
        "hydration_backlog": run.hydration.backlog,
        "hydration_denied": run.hydration.denied,
        "watchers": run.fan_out.watchers,
        "warms_sent": run.fan_out.warms_sent,
        "warms_coalesced": run.fan_out.coalesced,
        "subscribed": run.subscribed,
        "renewed": run.renewed,
        "unsubscribed": run.unsubscribed,
        "hub_failures": run.hub_failures,
        "live": run.live,
        "expiring_soon": run.expiring_soon,
    })
}

fn emit(run: &ManagerRun) {
    metrics::emit_with(
        &[
            (Metric::PushLiveSubscriptions, run.live as f64),
            (Metric::PushLeasesExpiringSoon, run.expiring_soon as f64),
            (Metric::PushHydrationBacklog, run.hydration.backlog as f64),
            (Metric::PushVideosHydrated, run.hydration.hydrated as f64),
            (Metric::PushWarmsSent, run.fan_out.warms_sent as f64),
            (Metric::PushHubFailures, run.hub_failures as f64),
        ],
        &[
            ("level", Field::Str("INFO")),
            ("message", Field::Str("push manager run")),
            ("subscribed", Field::U64(run.subscribed as u64)),
            ("renewed", Field::U64(run.renewed as u64)),
            ("unsubscribed", Field::U64(run.unsubscribed as u64)),
        ],
    );
}
