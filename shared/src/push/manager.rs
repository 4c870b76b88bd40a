//! The subscription manager, run on a schedule: hydrates pushed uploads and warms their
//! watchers ([`super::hydrate`]), subscribes the channels our users want most, renews
//! leases before they end, and drops channels nobody wants any more, pacing its requests
//! to the hub.
//!
//! Demand is the sources' own record ([`keys::source_demand`]): how many warms read each
//! channel's uploads today and yesterday. The channels warms read most are the ones whose
//! polling costs most and whose uploads most users wait for.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;

use jiff::{Timestamp, ToSpan};
use thiserror::Error;

use super::hydrate::{self, FanOut, Hydration};
use super::secrets::PushSecretSource;
use super::signature::CALLBACK_TOKEN_PARAM;
use super::subscriptions::{HubMode, Subscriptions};
use super::{channel_of_uploads, topic_for};
use crate::clock::{SharedClock, pacific_date};
use crate::config::{ConfigError, PushConfig};
use crate::engine::sources::SourceCache;
use crate::engine::{EngineError, PoolStore};
use crate::queue::WarmQueue;
use crate::store::{RedisConn, StoreError, keys};

/// A lease is renewed this long before it ends.
pub const RENEW_BEFORE_MS: i64 = 86_400_000;
/// A subscription is not dropped within this long of being asked for, so demand that
/// dips for an hour does not make it flap.
pub const KEEP_AT_LEAST_MS: i64 = 86_400_000;
/// A renewal the hub has not verified is asked again after this long.
pub const RENEW_RETRY_MS: i64 = 3_600_000;
/// How long a run reuses the channels in demand an earlier run of the instance read
/// (two `ZREVRANGE`s of up to 40,000 members each).
pub const DEMAND_REFRESH_MS: i64 = 10 * 60_000;
/// How long into a run the manager still starts requests to the hub (the function's
/// timeout is 60 s; hydration and the watchers' warms follow).
pub const MAINTAIN_BUDGET: Duration = Duration::from_secs(25);
/// Spacing between two requests to the hub.
const HUB_REQUEST_SPACING: Duration = Duration::from_millis(20);

#[derive(Debug, Error)]
pub enum PushError {
    #[error("redis: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Engine(#[from] EngineError),
    #[error("the hub answered HTTP {status} to a {mode} request")]
    HubStatus { status: u16, mode: &'static str },
    #[error("the hub could not be reached: {0}")]
    HubTransport(String),
    #[error("the push master secret is unavailable: {0}")]
    Secret(String),
    #[error("a phase of the run failed: {0}")]
    Phase(String),
}

/// What the manager needs to know.
#[derive(Clone, Debug)]
pub struct ManagerSettings {
    /// `PUSH_HUB_URL`.
    pub hub_url: String,
    /// `PUSH_CALLBACK_URL`: the callback route's base; a channel's callback is
    /// `{base}/{channel_id}`, so the callback knows whose secret signs a body before it
    /// reads it.
    pub callback_base: String,
    /// `PUSH_MAX_SUBSCRIPTIONS`.
    pub max_subscriptions: usize,
    /// `PUSH_LEASE_SECONDS`.
    pub lease_secs: u64,
    /// `PUSH_HUB_REQUESTS_PER_RUN`.
    pub hub_requests_per_run: usize,
    /// `PUSH_HYDRATE_MAX_WAIT_SECS`, in ms.
    pub hydrate_max_wait_ms: i64,
}

impl ManagerSettings {
    /// The manager's settings; `PUSH_CALLBACK_URL` is required.
    pub fn from_config(config: &PushConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            hub_url: config.hub_url.clone(),
            callback_base: config.require_callback_url()?.to_owned(),
            max_subscriptions: config.max_subscriptions,
            lease_secs: config.lease_secs,
            hub_requests_per_run: config.hub_requests_per_run,
            hydrate_max_wait_ms: config.hydrate_max_wait_secs as i64 * 1000,
        })
    }

    /// A channel's callback URL: `{base}/{channel_id}?t={token}` (see
    /// `PushSecrets::callback_token`).
    pub fn callback_for(&self, channel_id: &str, token: &str) -> String {
        format!(
            "{}/{channel_id}?{CALLBACK_TOKEN_PARAM}={token}",
            self.callback_base.trim_end_matches('/')
        )
    }
}

/// Requests to a WebSub hub.
#[derive(Clone, Debug)]
pub struct Hub {
    http: reqwest::Client,
    secrets: std::sync::Arc<PushSecretSource>,
    settings: ManagerSettings,
}

impl Hub {
    pub fn new(secrets: PushSecretSource, settings: ManagerSettings) -> Result<Self, PushError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| PushError::HubTransport(e.without_url().to_string()))?;
        Ok(Self {
            http,
            secrets: std::sync::Arc::new(secrets),
            settings,
        })
    }

    pub fn settings(&self) -> &ManagerSettings {
        &self.settings
    }

    /// Asks the hub to subscribe or unsubscribe `channel_id`. The hub answers 202 and
    /// verifies later, with a GET to the callback.
    pub async fn request(&self, channel_id: &str, mode: HubMode) -> Result<(), PushError> {
        let secrets = self.secrets.get().await.map_err(PushError::Secret)?;
        let callback = self
            .settings
            .callback_for(channel_id, &secrets.callback_token(channel_id));
        let topic = topic_for(channel_id);
        let lease = self.settings.lease_secs.to_string();
        let secret = secrets.secret_for(channel_id);
        let mut form: Vec<(&str, &str)> = vec![
            ("hub.callback", &callback),
            ("hub.mode", mode.as_str()),
            ("hub.topic", &topic),
            ("hub.verify", "async"),
        ];
        if mode == HubMode::Subscribe {
            form.push(("hub.lease_seconds", &lease));
            form.push(("hub.secret", secret.expose()));
        }
        let body = serde_urlencoded_form(&form);
        let response = self
            .http
            .post(&self.settings.hub_url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            // Never the URL or the body: the body holds the secret.
            .map_err(|e| PushError::HubTransport(e.without_url().to_string()))?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            Ok(())
        } else {
            Err(PushError::HubStatus {
                status,
                mode: mode.as_str(),
            })
        }
    }
}

/// `application/x-www-form-urlencoded` of `pairs`.
fn serde_urlencoded_form(pairs: &[(&str, &str)]) -> String {
    use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
    pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                utf8_percent_encode(k, NON_ALPHANUMERIC),
                utf8_percent_encode(v, NON_ALPHANUMERIC)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// What one run did, for its log line and metrics.
#[derive(Debug, Clone, Default)]
pub struct ManagerRun {
    pub hydration: Hydration,
    pub fan_out: FanOut,
    pub subscribed: usize,
    pub renewed: usize,
    pub unsubscribed: usize,
    pub hub_failures: usize,
    pub live: u64,
    /// Live leases that end within [`RENEW_BEFORE_MS`] after the run.
    pub expiring_soon: u64,
    /// Phases that failed (the others ran).
    pub failures: Vec<String>,
}

/// The channels warms want most, today and yesterday together, best first.
pub async fn channels_by_demand(
    redis: &RedisConn,
    now: Timestamp,
    limit: usize,
) -> Result<Vec<String>, StoreError> {
    let mut demand: HashMap<String, f64> = HashMap::new();
    let yesterday = now.checked_sub(24.hours()).unwrap_or(now);
    let mut conn = redis.clone();
    let prefix = keys::playlist_latest("");
    for day in [pacific_date(now), pacific_date(yesterday)] {
        // Playlists share the ranking with charts and searches, which are few.
        let rows: Vec<(String, f64)> = redis::cmd("ZREVRANGE")
            .arg(keys::source_demand(&day))
            .arg(0)
            .arg(limit as i64 * 2 + 200)
            .arg("WITHSCORES")
            .query_async(&mut conn)
            .await?;
        for (source, count) in rows {
            if let Some(channel) = source.strip_prefix(&prefix).and_then(channel_of_uploads) {
                *demand.entry(channel).or_default() += count;
            }
        }
    }
    let mut ranked: Vec<(String, f64)> = demand.into_iter().collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    ranked.truncate(limit);
    Ok(ranked.into_iter().map(|(c, _)| c).collect())
}

/// One scheduled run.
pub struct Manager {
    pub redis: RedisConn,
    pub sources: SourceCache,
    pub pool: PoolStore,
    pub queue: WarmQueue,
    pub hub: Hub,
    pub clock: SharedClock,
    /// The channels in demand as last read, and when (kept by the instance).
    pub demand: std::sync::Mutex<Option<(i64, std::sync::Arc<Vec<String>>)>>,
}

impl Manager {
    /// The channels in demand, read at most every [`DEMAND_REFRESH_MS`].
    async fn desired(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> Result<std::sync::Arc<Vec<String>>, StoreError> {
        let now_ms = now.as_millisecond();
        if let Some((at, desired)) = self.demand.lock().expect("demand lock").as_ref()
            && now_ms - at < DEMAND_REFRESH_MS
            && now_ms >= *at
        {
            return Ok(desired.clone());
        }
        let desired = std::sync::Arc::new(channels_by_demand(&self.redis, now, limit).await?);
        *self.demand.lock().expect("demand lock") = Some((now_ms, desired.clone()));
        Ok(desired)
    }

    /// One run: subscriptions first (a lapsed lease sends a channel back to polling,
    /// which costs units), then hydration, then the watchers' warms. A phase that fails is
    /// recorded in [`ManagerRun::failures`] and the others still run; the handler reports
    /// the run failed after all of them.
    pub async fn run(&self) -> Result<ManagerRun, PushError> {
        let mut run = ManagerRun::default();
        let started = std::time::Instant::now();
        let now = self.clock.now();
        let now_ms = now.as_millisecond();
        if let Err(e) = self.maintain(now, &mut run, started).await {
            run.failures.push(format!("subscriptions: {e}"));
        }
        let max_wait_ms = self.hub.settings().hydrate_max_wait_ms;
        match hydrate::hydrate_pending(&self.redis, &self.sources, now_ms, max_wait_ms).await {
            Ok(h) => run.hydration = h,
            Err(e) => run.failures.push(format!("hydration: {e}")),
        }
        match hydrate::fan_out(
            &self.redis,
            &self.pool,
            &self.queue,
            &run.hydration.channels,
            now,
        )
        .await
        {
            Ok(f) => run.fan_out = f,
            Err(e) => run.failures.push(format!("watchers' warms: {e}")),
        }
        let subscriptions = Subscriptions::new(self.redis.clone());
        run.live = subscriptions.live_count(now_ms).await?;
        run.expiring_soon = subscriptions
            .expiring_count(now_ms, now_ms + RENEW_BEFORE_MS)
            .await?;
        Ok(run)
    }

    /// Renewals of leases still in demand first, then new subscriptions by demand, then
    /// the channels nobody wants; at most `hub_requests_per_run` requests in all, and none
    /// started after [`MAINTAIN_BUDGET`] of the run.
    async fn maintain(
        &self,
        now: Timestamp,
        run: &mut ManagerRun,
        started: std::time::Instant,
    ) -> Result<(), PushError> {
        let settings = self.hub.settings().clone();
        let now_ms = now.as_millisecond();
        let subscriptions = Subscriptions::new(self.redis.clone());
        let mut budget = settings.hub_requests_per_run;
        let out_of_time = || started.elapsed() > MAINTAIN_BUDGET;
        let desired = self.desired(now, settings.max_subscriptions).await?;
        let desired_set: BTreeSet<&String> = desired.iter().collect();
        let wanted: HashMap<String, i64> = subscriptions.wanted().await?.into_iter().collect();
        // Renewals: more rows than the budget, as those asked lately are passed over.
        let renew = subscriptions
            .expiring(now_ms, now_ms + RENEW_BEFORE_MS, budget.saturating_mul(4))
            .await?;
        let mut asked: HashSet<String> = HashSet::new();
        for (channel, _) in renew {
            if budget == 0 || out_of_time() {
                return Ok(());
            }
            // No longer in demand: left to lapse (and unsubscribed below).
            if !desired_set.contains(&channel) {
                continue;
            }
            // Asked lately and the hub has not verified yet: not again every minute.
            if wanted
                .get(&channel)
                .is_some_and(|&at| now_ms - at < RENEW_RETRY_MS)
            {
                continue;
            }
            budget -= 1;
            if self
                .ask(&subscriptions, &channel, HubMode::Subscribe, now_ms, run)
                .await
            {
                run.renewed += 1;
            }
            asked.insert(channel);
        }
        let live: HashSet<String> = {
            let flags = subscriptions.live_among(&desired, now_ms).await?;
            desired
                .iter()
                .zip(flags)
                .filter(|(_, live)| *live)
                .map(|(c, _)| c.clone())
                .collect()
        };
        for channel in desired.iter() {
            if budget == 0 || out_of_time() {
                return Ok(());
            }
            if live.contains(channel) || asked.contains(channel) {
                continue;
            }
            // Asked and not yet verified: ask again only once the intent has lapsed.
            if let Some(&asked_at) = wanted.get(channel)
                && now_ms - asked_at < super::subscriptions::INTENT_MS
            {
                continue;
            }
            budget -= 1;
            if self
                .ask(&subscriptions, channel, HubMode::Subscribe, now_ms, run)
                .await
            {
                run.subscribed += 1;
            }
        }
        for (channel, asked_at) in &wanted {
            if budget == 0 || out_of_time() {
                return Ok(());
            }
            if desired_set.contains(channel) || now_ms - asked_at < KEEP_AT_LEAST_MS {
                continue;
            }
            budget -= 1;
            if self
                .ask(&subscriptions, channel, HubMode::Unsubscribe, now_ms, run)
                .await
            {
                run.unsubscribed += 1;
            }
        }
        Ok(())
    }

    /// Writes the intent, then asks the hub; a failure is counted and logged, and the
    /// channel is asked again by a later run.
    async fn ask(
        &self,
        subscriptions: &Subscriptions,
        channel: &str,
        mode: HubMode,
        now_ms: i64,
        run: &mut ManagerRun,
    ) -> bool {
        let lease_secs = self.hub.settings().lease_secs;
        if let Err(e) = subscriptions
            .intend(channel, mode, lease_secs, now_ms)
            .await
        {
            tracing::warn!(error = %e, channel, "could not record a subscription intent");
            run.hub_failures += 1;
            return false;
        }
        tokio::time::sleep(HUB_REQUEST_SPACING).await;
        match self.hub.request(channel, mode).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, channel, mode = mode.as_str(), "hub request failed");
                run.hub_failures += 1;
                false
            }
        }
    }
}
