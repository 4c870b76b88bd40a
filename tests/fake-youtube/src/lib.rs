//! A local double of the YouTube Data API v3.
//!
//! It answers with Google's shapes (including the error envelope), meters
//! quota exactly as Google does (per method, per Pacific day), lets tests move
//! its clock and inject faults, and serves a deterministic corpus generated
//! from a seed. The project's tests talk to it over real HTTP so the YouTube
//! client, quota guard and warmer run unchanged against it.

mod admin;
mod api;
mod catalog;
pub mod corpus;
mod google_error;
pub mod hub;
pub mod page_token;
pub mod quota;
pub mod thumbnail;
mod topics;
pub mod world;

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tokio::sync::Notify;

use crate::catalog::Catalog;

pub use corpus::{Channel, Corpus, Topic, Video};
pub use google_error::GoogleError;
pub use hub::{Delivery, Forgery, HubChaos, HubState, HubStats};
pub use quota::{Counters, DayUsage, Limits, MeterState, MethodCounters, pacific_date};
pub use world::World;

/// How the fake is set up; defaults are Google's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeConfig {
    pub seed: u64,
    pub api_key: String,
    pub daily_units: u64,
    pub daily_searches: u64,
    pub max_calls_per_second: Option<u64>,
    pub max_units_per_minute: Option<u64>,
    /// Where the fake's clock starts; `None` = the real time.
    pub start_clock: Option<Timestamp>,
    pub channels: usize,
    /// Serve a procedural [`World`] of this many channels instead of the corpus
    /// (`channels` is then unused): uploads appear by each channel's cadence as the
    /// clock moves.
    pub world_channels: Option<u32>,
}

impl Default for FakeConfig {
    fn default() -> Self {
        FakeConfig {
            seed: 42,
            api_key: "fake-youtube-key".to_string(),
            daily_units: 10_000,
            daily_searches: 100,
            max_calls_per_second: None,
            max_units_per_minute: None,
            start_clock: None,
            channels: 3000,
            world_channels: None,
        }
    }
}

/// A failure to simulate on the next calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Sleep, then serve normally.
    Latency(Duration),
    /// 500 `backendError`.
    ServerError,
    /// 429 `rateLimitExceeded`.
    TooManyRequests,
    /// 200 with a truncated JSON body.
    MalformedJson,
}

/// State shared by the handlers and the handle.
pub(crate) struct Shared {
    pub(crate) api_key: String,
    pub(crate) catalog: Catalog,
    pub(crate) meter: Mutex<quota::Meter>,
    /// now = system now + offset: the clock keeps ticking after it is moved,
    /// so per-second windows still see real time pass.
    offset_ns: Mutex<i128>,
    faults: Mutex<VecDeque<(Fault, u32)>>,
    pub(crate) generation_time: Duration,
    pub(crate) hub: hub::Hub,
}

impl Shared {
    pub(crate) fn now(&self) -> Timestamp {
        let off = *self.offset_ns.lock().expect("clock lock");
        let ns = Timestamp::now().as_nanosecond() + off;
        Timestamp::from_nanosecond(ns).expect("clock in range")
    }

    pub(crate) fn set_clock(&self, t: Timestamp) {
        let mut off = self.offset_ns.lock().expect("clock lock");
        *off = t.as_nanosecond() - Timestamp::now().as_nanosecond();
    }

    pub(crate) fn advance_clock(&self, secs: i64) {
        *self.offset_ns.lock().expect("clock lock") += i128::from(secs) * 1_000_000_000;
    }

    pub(crate) fn inject(&self, fault: Fault, count: u32) {
        if count > 0 {
            self.faults
                .lock()
                .expect("faults lock")
                .push_back((fault, count));
        }
    }

    pub(crate) fn take_fault(&self) -> Option<Fault> {
        let mut q = self.faults.lock().expect("faults lock");
        let (fault, left) = q.front_mut()?;
        let f = fault.clone();
        *left -= 1;
        if *left == 0 {
            q.pop_front();
        }
        Some(f)
    }

    /// The materialised corpus; a world-backed fake has none (a test's mistake).
    pub(crate) fn corpus(&self) -> RwLockReadGuard<'_, Corpus> {
        match &self.catalog {
            Catalog::Corpus(c) => c.read().expect("corpus lock"),
            Catalog::World(_) => panic!("this fake serves a procedural world, not a corpus"),
        }
    }

    pub(crate) fn world(&self) -> Option<&World> {
        match &self.catalog {
            Catalog::World(w) => Some(w),
            Catalog::Corpus(_) => None,
        }
    }

    /// Publishes a test's upload into the corpus; a world publishes by its clock alone.
    pub(crate) fn publish(&self, channel_id: &str, title: &str, tags: &[String]) -> Option<String> {
        let now = self.now();
        let id = match &self.catalog {
            Catalog::Corpus(c) => c
                .write()
                .expect("corpus lock")
                .publish_upload(channel_id, title, tags, now),
            Catalog::World(_) => None,
        }?;
        // The hub tells the channel's subscribers at its next delivery.
        self.hub.queue(hub::HubEventKind::upload(
            channel_id,
            &id,
            title,
            now.as_second(),
        ));
        Some(id)
    }

    /// A video's channel and publication second, in the corpus or the world.
    pub(crate) fn video_origin(&self, video_id: &str) -> Option<(String, i64)> {
        let now = self.now();
        let view = self.catalog.view();
        let video = view.video(video_id, now)?;
        Some((video.channel_id.clone(), video.published_at.as_second()))
    }
}

/// A running fake. Cloning shares the same server.
#[derive(Clone)]
pub struct FakeYoutube {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: Arc<Notify>,
}

impl FakeYoutube {
    fn build(config: &FakeConfig) -> Arc<Shared> {
        let t0 = std::time::Instant::now();
        let catalog = match config.world_channels {
            Some(n) => Catalog::World(World::new(config.seed, n, corpus::CORPUS_EPOCH_SECS)),
            None => Catalog::Corpus(RwLock::new(Corpus::generate(
                config.seed,
                config.channels.max(1),
            ))),
        };
        let generation_time = t0.elapsed();
        let offset_ns = config
            .start_clock
            .map_or(0, |t| t.as_nanosecond() - Timestamp::now().as_nanosecond());
        let limits = Limits {
            daily_units: config.daily_units,
            daily_searches: config.daily_searches,
            max_calls_per_second: config.max_calls_per_second,
            max_units_per_minute: config.max_units_per_minute,
        };
        let shared = Arc::new(Shared {
            api_key: config.api_key.clone(),
            catalog,
            meter: Mutex::new(quota::Meter::new(limits, Timestamp::now())),
            offset_ns: Mutex::new(offset_ns),
            faults: Mutex::new(VecDeque::new()),
            generation_time,
            hub: hub::Hub::new(),
        });
        // Key the first day by the configured clock, not the real one.
        let now = shared.now();
        shared.meter.lock().expect("meter lock").reset(now);
        shared
    }

    /// Binds and serves on the *current* tokio runtime.
    pub async fn start(listen: SocketAddr, config: FakeConfig) -> std::io::Result<FakeYoutube> {
        let shared = Self::build(&config);
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(Notify::new());
        let app = axum::Router::new()
            .merge(api::router())
            .merge(admin::router())
            .route(
                "/hub",
                axum::routing::post(
                    |state: axum::extract::State<Arc<Shared>>, body: String| async move {
                        let (status, text) = hub::Hub::request(&state.0, &body);
                        (
                            axum::http::StatusCode::from_u16(status)
                                .unwrap_or(axum::http::StatusCode::BAD_REQUEST),
                            text,
                        )
                    },
                ),
            )
            // A local run's hub delivers when asked (tests call `hub_deliver` directly).
            .route(
                "/admin/hub/deliver",
                axum::routing::post(|state: axum::extract::State<Arc<Shared>>| async move {
                    axum::Json(serde_json::json!(hub::Hub::deliver(&state.0).await))
                }),
            )
            .route(
                "/admin/hub",
                axum::routing::get(|state: axum::extract::State<Arc<Shared>>| async move {
                    let now = state.0.now().as_second();
                    axum::Json(serde_json::json!(state.0.hub.stats(now)))
                }),
            )
            .merge(thumbnail::router())
            .with_state(shared.clone());
        let stop2 = stop.clone();
        tokio::spawn(async move {
            let serve = axum::serve(listener, app)
                .with_graceful_shutdown(async move { stop2.notified().await });
            if let Err(e) = serve.await {
                tracing::error!("fake-youtube server stopped: {e}");
            }
        });
        Ok(FakeYoutube { shared, addr, stop })
    }

    /// Starts on a dedicated OS thread with its own runtime, so it outlives
    /// the caller's runtime (each `#[tokio::test]` has its own) and works from
    /// sync code too. Binds 127.0.0.1:0.
    pub fn spawn(config: FakeConfig) -> std::io::Result<FakeYoutube> {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("fake-youtube".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                rt.block_on(async move {
                    let listen = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
                    match FakeYoutube::start(listen, config).await {
                        Ok(fake) => {
                            let stop = fake.stop.clone();
                            let _ = tx.send(Ok(fake));
                            stop.notified().await;
                            // Let the server task see the same notification.
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        Err(e) => {
                            let _ = tx.send(Err(e));
                        }
                    }
                });
            })?;
        rx.recv()
            .map_err(|_| std::io::Error::other("fake-youtube thread died while starting"))?
    }

    /// Stops accepting connections (the spawned thread, if any, ends).
    pub fn shutdown(&self) {
        self.stop.notify_waiters();
        self.stop.notify_one();
    }

    pub fn base_url(&self) -> String {
        format!("http://{}/youtube/v3", self.addr)
    }

    pub fn admin_url(&self) -> String {
        format!("http://{}/admin", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn api_key(&self) -> &str {
        &self.shared.api_key
    }

    pub fn counters(&self) -> Counters {
        let now = self.now();
        self.shared.meter.lock().expect("meter lock").snapshot(now)
    }

    /// All the meter counted, for [`FakeYoutube::restore_meter`] on another fake.
    pub fn meter_state(&self) -> MeterState {
        self.shared.meter.lock().expect("meter lock").state()
    }

    /// Carries over what another fake metered (its days, methods and today's polled
    /// playlists), as a resumed simulation needs.
    pub fn restore_meter(&self, state: MeterState) {
        self.shared.meter.lock().expect("meter lock").restore(state);
    }

    /// The hub's subscriptions, for [`FakeYoutube::restore_hub`] on another fake.
    pub fn hub_state(&self) -> HubState {
        self.shared.hub.state()
    }

    /// Carries over another fake's hub subscriptions (leases, secrets, what was
    /// delivered), their callbacks moved to `callback_origin` (`http://host:port`), as a
    /// resumed simulation with push needs.
    pub fn restore_hub(&self, state: HubState, callback_origin: &str) {
        self.shared.hub.restore(state, callback_origin);
    }

    /// Zeroes the counters; the corpus and the clock stay.
    pub fn reset_counters(&self) {
        let now = self.now();
        self.shared.meter.lock().expect("meter lock").reset(now);
    }

    pub fn now(&self) -> Timestamp {
        self.shared.now()
    }

    pub fn set_clock(&self, t: Timestamp) {
        self.shared.set_clock(t);
    }

    pub fn advance_clock(&self, secs: i64) {
        self.shared.advance_clock(secs);
    }

    /// Advances by a signed duration (sub-second precision).
    pub fn advance_clock_by(&self, d: SignedDuration) {
        *self.shared.offset_ns.lock().expect("clock lock") += d.as_nanos();
    }

    pub fn limits(&self) -> Limits {
        self.shared.meter.lock().expect("meter lock").limits.clone()
    }

    pub fn set_limits(&self, limits: Limits) {
        self.shared.meter.lock().expect("meter lock").limits = limits;
    }

    /// The next `count` valid-key calls under /youtube/v3 get `fault`.
    /// Faults queue up in the order injected.
    pub fn inject_faults(&self, fault: Fault, count: u32) {
        self.shared.inject(fault, count);
    }

    /// Publishes a new video at the fake's now, first in the channel's
    /// uploads. Panics if the channel is unknown (a test bug).
    pub fn publish_upload(&self, channel_id: &str, title: &str) -> String {
        self.publish_upload_with_tags(channel_id, title, &[])
            .unwrap_or_else(|| panic!("publish_upload: unknown channel {channel_id}"))
    }

    pub fn publish_upload_with_tags(
        &self,
        channel_id: &str,
        title: &str,
        tags: &[String],
    ) -> Option<String> {
        self.shared.publish(channel_id, title, tags)
    }

    /// Read access to the corpus; do not hold it across an HTTP call to this fake
    /// that publishes an upload.
    pub fn corpus(&self) -> RwLockReadGuard<'_, Corpus> {
        self.shared.corpus()
    }

    /// The procedural world this fake serves, if it serves one.
    pub fn world(&self) -> Option<&World> {
        self.shared.world()
    }

    /// The hub's subscribe endpoint (`PUSH_HUB_URL`).
    pub fn hub_url(&self) -> String {
        format!("http://{}/hub", self.addr)
    }

    /// Waits until every verification the hub started has finished (at most 10 s).
    pub async fn hub_idle(&self) {
        for _ in 0..2_000 {
            if self.shared.hub.pending() == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("the fake hub's verifications did not finish within 10 s");
    }

    /// Posts what happened since the last delivery to the live subscribers.
    pub async fn hub_deliver(&self) -> Delivery {
        hub::Hub::deliver(&self.shared).await
    }

    pub fn hub_stats(&self) -> HubStats {
        self.shared.hub.stats(self.now().as_second())
    }

    pub fn set_hub_chaos(&self, chaos: HubChaos) {
        self.shared.hub.set_chaos(chaos);
    }

    /// The live subscription of a channel: its callback and the end of its lease.
    pub fn hub_subscription(&self, channel_id: &str) -> Option<(String, Timestamp)> {
        let now = self.now().as_second();
        self.shared
            .hub
            .subscription_of(channel_id, now)
            .map(|(callback, until)| {
                (
                    callback,
                    Timestamp::from_second(until).expect("a lease end"),
                )
            })
    }

    /// Changes a video's title: its subscribers hear of it at the next delivery.
    pub fn hub_retitle(&self, video_id: &str, title: &str) -> bool {
        let Some((channel_id, published)) = self.shared.video_origin(video_id) else {
            return false;
        };
        let now = self.now().as_second();
        self.shared.hub.queue(hub::HubEventKind::update(
            &channel_id,
            video_id,
            title,
            published,
            now,
        ));
        true
    }

    /// Deletes a video: `videos.list` no longer returns it, and its channel's
    /// subscribers get a tombstone at the next delivery.
    pub fn hub_delete(&self, video_id: &str) -> bool {
        let Some((channel_id, _)) = self.shared.video_origin(video_id) else {
            return false;
        };
        let now = self.now().as_second();
        let event = hub::HubEventKind::delete(&self.shared.hub, &channel_id, video_id, now);
        self.shared.hub.queue(event);
        true
    }

    /// Posts a forged notification of `video_id` to the subscriber of `channel_id`; the
    /// callback's status, or `None` when the channel has no subscriber (or, for a
    /// replay, nothing was delivered to it yet).
    pub async fn hub_impostor(
        &self,
        channel_id: &str,
        video_id: &str,
        forgery: Forgery,
    ) -> Option<u16> {
        hub::Hub::impostor(&self.shared, channel_id, video_id, forgery).await
    }

    /// How long generating the corpus (or the world's tables) took.
    pub fn generation_time(&self) -> Duration {
        self.shared.generation_time
    }
}
