//! Figures 5 and 6 of `BENCHMARKS.md`: a simulated day on one API key, ours against the
//! earlier design, on the same users and the same day.
//!
//! `cargo run --release -p reco-bench --bin bench-day [-- --users 100000 --seed 7]`
//!
//! Users get Zipf-distributed interests over the fake YouTube's corpus (48 topics by size,
//! channels by subscribers within a topic) and a watch history from it; each signs in one
//! to three times over a Pacific day (more in the evening) and refreshes 4–10 times per
//! session, 20 to 120 s apart. A simulated clock (`SimClock`: event time, moved on by the
//! client's pacing sleeps; the fake's clock moved with it) runs the day in event order over
//! the real pieces:
//!
//! - **ours**: the real engine, quota guard (Google's default quotas, 5% margin, 80%
//!   background share, 10 calls/s, 300 units/min) and Redis; sign-in is the login
//!   function's `claim_warm`, a refresh is the API's page take (the one EVALSHA of a hit,
//!   with the API's chart fallback on a miss), and warms run through the real warmer
//!   (`Warmer::run_batch` on an SQS event, its lock, its deferrals). The SQS hop is
//!   modelled as 2 s of simulated time, a deferral as its delay.
//! - **baseline** (the earlier design): one cache entry per user and parameters with a
//!   15-minute TTL; a miss regenerates it with a `search.list` for the user's main topic
//!   and a `videos.list` for the details, straight to YouTube (no shared guard).
//!
//! Both run against their own fake YouTube with Google's default quotas (10,000 units,
//! 100 searches a day); its counters say what was spent and refused.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use fake_youtube::World;
use fake_youtube::corpus::CORPUS_EPOCH_SECS;
use reco_bench::{Series, SplitMix, Zipf, line_chart, round1, round3, write_json};
use reco_core::UserId;
use reco_core::clock::Clock;
use reco_core::config::AuthMode;
use reco_core::engine::PageRequest;
use reco_core::messages::{WarmReason, WarmRequest};
use reco_core::store::keys;
use reco_tests::Fake;
use reco_tests::apps::{Apps, config_with};
use reco_tests::services::FakeConfig;
use reco_tests::services::{RedisServer, TEST_API_KEY, TestEnv, start_fake};
use reco_warmer::ItemOutcome;
use serde_json::json;

const DAY_MS: i64 = 86_400_000;
/// The Pacific date simulated (see `main`).
const SIM_DAY: &str = "2026-11-26";
const HOUR_MS: i64 = 3_600_000;
const PAGE: usize = 20;
/// SendMessage → event source mapping → warmer, in simulated time.
const SQS_HOP_MS: i64 = 2_000;
/// The pool's freshness (RECOMMENDATION_CACHE_TTL_SECS) and the baseline's TTL.
const FRESH_MS: i64 = 900_000;
/// The API's Lambda instances the refreshes are spread over, and their memory (each
/// instance's item cache is a quarter of it).
const API_INSTANCES: usize = 4;
const API_MEMORY_MB: u64 = 128;
/// The simulated hour (Pacific, at its end) whose Redis memory is censused: the evening.
const CENSUS_HOUR: usize = 21;
/// How often (simulated) a progress line goes to stderr.
const TICK_MS: i64 = 600_000;

fn arg<T: std::str::FromStr>(name: &str, default: T) -> T {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name}: invalid value {v:?}"))
        })
        .unwrap_or(default)
}

/// The corpus, indexed for fast "is this video related to this user".
struct Index {
    video_idx: HashMap<String, u32>,
    /// Per video: (topic rank, channel index).
    video_meta: Vec<(u16, u32)>,
    video_ids: Vec<String>,
    /// Topics by size, largest first.
    topic_names: Vec<String>,
    /// Per topic rank: channels with enough uploads for a history, most subscribed first.
    topic_channels: Vec<Vec<u32>>,
    /// Per channel: its uploads, newest first (video indices).
    channel_uploads: Vec<Vec<u32>>,
}

impl Index {
    fn build(fake: &Fake) -> Self {
        let corpus = fake.corpus();
        let mut topics: Vec<_> = corpus.topics().iter().collect();
        topics.sort_by(|a, b| {
            b.video_count
                .cmp(&a.video_count)
                .then_with(|| a.name.cmp(&b.name))
        });
        let topic_names: Vec<String> = topics.iter().map(|t| t.name.clone()).collect();
        let topic_rank: HashMap<&str, u16> = topic_names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), i as u16))
            .collect();
        let channel_idx: HashMap<&str, u32> = corpus
            .channels()
            .iter()
            .enumerate()
            .map(|(i, c)| (c.id.as_str(), i as u32))
            .collect();
        let mut video_idx = HashMap::new();
        let mut video_meta = Vec::new();
        let mut video_ids = Vec::new();
        for (i, v) in corpus.videos().iter().enumerate() {
            video_idx.insert(v.id.clone(), i as u32);
            video_meta.push((
                topic_rank
                    .get(v.topic.as_str())
                    .copied()
                    .unwrap_or(u16::MAX),
                channel_idx
                    .get(v.channel_id.as_str())
                    .copied()
                    .unwrap_or(u32::MAX),
            ));
            video_ids.push(v.id.clone());
        }
        let channel_uploads: Vec<Vec<u32>> = corpus
            .channels()
            .iter()
            .map(|c| {
                corpus
                    .uploads_of(&c.id)
                    .iter()
                    .filter_map(|v| video_idx.get(&v.id).copied())
                    .collect()
            })
            .collect();
        let topic_channels = topic_names
            .iter()
            .map(|name| {
                let mut chans: Vec<_> = corpus
                    .channels_of_topic(name)
                    .filter(|c| c.video_count() >= 9)
                    .collect();
                chans.sort_by(|a, b| {
                    b.subscriber_count
                        .cmp(&a.subscriber_count)
                        .then_with(|| a.id.cmp(&b.id))
                });
                chans.iter().map(|c| channel_idx[c.id.as_str()]).collect()
            })
            .collect();
        Self {
            video_idx,
            video_meta,
            video_ids,
            topic_names,
            topic_channels,
            channel_uploads,
        }
    }
}

/// What the simulation knows about a served video, whichever world it runs in: a key for
/// "seen before", and the video's topic and channel for "related to this user".
trait Judge: Sync {
    /// A key for a video id of this world; `None` for an id it never made.
    fn key(&self, id: &str) -> Option<u64>;
    /// (topic, channel) of a video.
    fn meta(&self, key: u64) -> (u16, u32);
    fn video_id(&self, key: u64) -> String;
    /// The search the earlier design runs for a user whose main topic this is.
    fn topic_query(&self, topic: u16) -> String;
}

impl Judge for Index {
    fn key(&self, id: &str) -> Option<u64> {
        self.video_idx.get(id).map(|&v| u64::from(v))
    }
    fn meta(&self, key: u64) -> (u16, u32) {
        self.video_meta[key as usize]
    }
    fn video_id(&self, key: u64) -> String {
        self.video_ids[key as usize].clone()
    }
    fn topic_query(&self, topic: u16) -> String {
        self.topic_names[topic as usize].clone()
    }
}

/// The procedural world (`fake_youtube::World`): a video's key is its channel rank and
/// upload number, decoded from its id; topics are the world's topic indices.
struct WorldJudge {
    world: World,
}

impl Judge for WorldJudge {
    fn key(&self, id: &str) -> Option<u64> {
        self.world
            .decode_video(id)
            .map(|(rank, n)| (u64::from(rank) << 40) | n)
    }
    fn meta(&self, key: u64) -> (u16, u32) {
        let rank = (key >> 40) as u32;
        (self.world.channel_topic(rank) as u16, rank)
    }
    fn video_id(&self, key: u64) -> String {
        self.world
            .video_id((key >> 40) as u32, key & ((1 << 40) - 1))
    }
    fn topic_query(&self, topic: u16) -> String {
        self.world.topics()[topic as usize].name.clone()
    }
}

struct Session {
    start: i64,
    refreshes: u8,
}

struct SimUser {
    id: UserId,
    topics: Vec<u16>,
    channels: Vec<u32>,
    /// Video keys ([`Judge::key`]).
    history: Vec<u64>,
    sessions: Vec<Session>,
    /// (ms after sign-in) of each refresh, per session.
    gaps: Vec<Vec<u32>>,
}

impl SimUser {
    fn relates(&self, judge: &dyn Judge, video: u64) -> bool {
        let (topic, channel) = judge.meta(video);
        self.topics.contains(&topic) || self.channels.contains(&channel)
    }
}

/// Sessions start more often in the (Pacific) evening than at night.
const HOUR_WEIGHTS: [f64; 24] = [
    2.0, 1.2, 0.8, 0.6, 0.6, 0.8, 1.5, 2.5, 3.0, 3.0, 3.0, 3.2, 3.5, 3.5, 3.4, 3.5, 4.0, 4.8, 5.5,
    6.0, 6.0, 5.5, 4.5, 3.0,
];

/// Users of the corpus: Zipf interests over its topics by size, channels by subscribers.
fn make_users(index: &Index, n: usize, seed: u64, day_start: i64) -> Vec<SimUser> {
    let topic_zipf = Zipf::new(index.topic_names.len(), 1.0);
    let channel_zipfs: Vec<Zipf> = index
        .topic_channels
        .iter()
        .map(|c| Zipf::new(c.len().max(1), 1.0))
        .collect();
    (0..n)
        .map(|i| {
            let mut rng = SplitMix::new(seed ^ (i as u64).wrapping_mul(0x2545_F491_4F6C_DD1D));
            let mut topics = Vec::new();
            let mut channels = Vec::new();
            let mut history = Vec::new();
            let n_topics = if rng.f64() < 0.3 { 2 } else { 1 };
            while topics.len() < n_topics {
                let t = topic_zipf.sample(&mut rng) as u16;
                if topics.contains(&t) || index.topic_channels[t as usize].is_empty() {
                    continue;
                }
                topics.push(t);
                let want = if topics.len() == 1 {
                    rng.range(2, 4)
                } else {
                    rng.range(1, 2)
                } as usize;
                let pool = &index.topic_channels[t as usize];
                let mut picked = 0;
                for _ in 0..40 {
                    if picked == want {
                        break;
                    }
                    let c = pool[channel_zipfs[t as usize].sample(&mut rng)];
                    if channels.contains(&c) {
                        continue;
                    }
                    channels.push(c);
                    picked += 1;
                    // Older uploads (not the newest five), so new ones stay recommendable.
                    let uploads = &index.channel_uploads[c as usize];
                    let upper = uploads.len().min(30) as u64 - 1;
                    for _ in 0..rng.range(2, 4) {
                        let v = u64::from(uploads[rng.range(5, upper) as usize]);
                        if !history.contains(&v) {
                            history.push(v);
                        }
                    }
                }
            }
            let (sessions, gaps) = plan_sessions(&mut rng, day_start);
            SimUser {
                id: UserId::parse(&format!("sim-{i}")).unwrap(),
                topics,
                channels,
                history,
                sessions,
                gaps,
            }
        })
        .collect()
}

/// Users of the procedural world (`World::user`: 1–3 topics, a heavy-tailed number of
/// channels from the same long tail as everyone's); their history is one to three of
/// each channel's older uploads (not its newest five) at the day's start.
fn make_world_users(world: &World, n: usize, seed: u64, day_start: i64) -> Vec<SimUser> {
    let at = day_start / 1000;
    (0..n)
        .map(|i| {
            let spec = world.user(i as u64);
            let mut rng = SplitMix::new(seed ^ (i as u64).wrapping_mul(0x2545_F491_4F6C_DD1D));
            let mut history = Vec::new();
            for &rank in &spec.channels {
                let count = world.uploads_until(&world.channel(rank), at);
                if count < 7 {
                    continue;
                }
                let upper = count - 6;
                let lower = count.saturating_sub(30);
                for _ in 0..rng.range(1, 3) {
                    let key = (u64::from(rank) << 40) | rng.range(lower, upper);
                    if !history.contains(&key) {
                        history.push(key);
                    }
                }
            }
            let (sessions, gaps) = plan_sessions(&mut rng, day_start);
            SimUser {
                id: UserId::parse(&format!("sim-{i}")).unwrap(),
                topics: spec.topics.iter().map(|&t| t as u16).collect(),
                channels: spec.channels,
                history,
                sessions,
                gaps,
            }
        })
        .collect()
}

/// A user's sessions of the day: one to three, started by the diurnal weights at least
/// 20 minutes apart, each of 4–10 refreshes 20 to 120 s apart; returns them and each
/// refresh's offset (ms after the session's start).
fn plan_sessions(rng: &mut SplitMix, day_start: i64) -> (Vec<Session>, Vec<Vec<u32>>) {
    let hour_total: f64 = HOUR_WEIGHTS.iter().sum();
    let n_sessions = rng.range(1, 3) as usize;
    let mut starts: Vec<i64> = (0..n_sessions)
        .map(|_| {
            let mut u = rng.f64() * hour_total;
            let mut hour = 0;
            while hour < 23 && u >= HOUR_WEIGHTS[hour] {
                u -= HOUR_WEIGHTS[hour];
                hour += 1;
            }
            let minute_ms = (rng.f64() * (HOUR_MS as f64 - 1.0)) as i64;
            day_start + hour as i64 * HOUR_MS + minute_ms
        })
        .collect();
    starts.sort();
    let mut sessions = Vec::new();
    let mut gaps = Vec::new();
    let mut last_end = i64::MIN;
    for start in starts {
        let refreshes = rng.range(4, 10) as u8;
        let mut offsets = Vec::new();
        let mut at = rng.range(5_000, 30_000) as u32;
        for _ in 0..refreshes {
            offsets.push(at);
            at += rng.range(20_000, 120_000) as u32;
        }
        let length = i64::from(*offsets.last().unwrap());
        let earliest = last_end.saturating_add(20 * 60_000);
        // Late sessions move earlier so they end within the day; one that cannot
        // fit after the previous session is dropped.
        let start = start.max(earliest).min(day_start + DAY_MS - 1 - length);
        if start < earliest {
            break;
        }
        let end = start + length;
        last_end = end;
        sessions.push(Session { start, refreshes });
        gaps.push(offsets);
    }
    (sessions, gaps)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    SignIn { u: u32, s: u8 },
    Refresh { u: u32, s: u8, k: u8 },
    SessionEnd { u: u32, s: u8 },
    Warm { u: u32, reason: u8 },
}

/// At the end of an hour: units used, searches used, refreshes, full-new refreshes.
type Hour = (u64, u64, u64, u64);

/// The simulation's clock: event time, moved forward by the event loop and by the YouTube
/// client's pacing sleeps (a sleep moves the clock to its end at once, so a per-second
/// window passes in simulated time without the real wait). Never moves backwards.
#[derive(Debug)]
struct SimClock {
    now_ms: Arc<AtomicI64>,
}

impl SimClock {
    fn new(at_ms: i64) -> Self {
        Self {
            now_ms: Arc::new(AtomicI64::new(at_ms)),
        }
    }

    /// Moves to `t` unless the clock is already past it; returns the time now.
    fn advance_to(&self, t: i64) -> i64 {
        advance(&self.now_ms, t)
    }
}

fn advance(now_ms: &AtomicI64, t: i64) -> i64 {
    now_ms.fetch_max(t, Ordering::SeqCst).max(t)
}

impl Clock for SimClock {
    fn now(&self) -> jiff::Timestamp {
        jiff::Timestamp::from_millisecond(self.now_ms.load(Ordering::SeqCst))
            .unwrap_or(jiff::Timestamp::MAX)
    }

    fn sleep(
        &self,
        duration: Duration,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'static>> {
        let now_ms = self.now_ms.clone();
        let until = now_ms.load(Ordering::SeqCst) + duration.as_millis() as i64;
        Box::pin(async move {
            advance(&now_ms, until);
            tokio::task::yield_now().await;
        })
    }
}

/// Where the simulated warmer's deferrals go: an SQS endpoint (the JSON protocol's
/// `SendMessage`, what `WarmQueue::send` calls) that counts and drops them, because the
/// simulation delivers each deferral itself at its delay. moto's `SendMessage` slows with
/// every delayed message it holds (28 ms at 300, 87 ms at 1,200), which would make a
/// 100,000-user day a matter of hours; the real queue path is the integration tests' job.
async fn deferral_sink() -> (String, Arc<AtomicU64>) {
    use axum::routing::post;
    let sent = Arc::new(AtomicU64::new(0));
    let counter = sent.clone();
    let app = axum::Router::new().route(
        "/",
        post(move || {
            let n = counter.fetch_add(1, Ordering::Relaxed) + 1;
            async move {
                (
                    [("content-type", "application/x-amz-json-1.0")],
                    format!(r#"{{"MessageId":"sim-deferral-{n}"}}"#),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the deferral sink");
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.expect("deferral sink") });
    (url, sent)
}

/// What one design did over the day.
#[derive(Default)]
struct Tally {
    sign_ins: u64,
    refreshes: u64,
    full_new: u64,
    served: u64,
    related: u64,
    repeats: u64,
    empty: u64,
    statuses: HashMap<&'static str, u64>,
    warm_outcomes: HashMap<String, u64>,
    transient_examples: Vec<String>,
    /// Sum of the pool sizes of the warms that built one.
    warmed_pool_sizes: u64,
    /// Per hour: (units used, searches used, refreshes, full-new refreshes) at its end.
    hourly: Vec<Hour>,
    /// Redis memory at the end of [`CENSUS_HOUR`] (`reco_bench::memory_census`).
    census: Option<serde_json::Value>,
}

impl Tally {
    fn page(&mut self, user: &SimUser, judge: &dyn Judge, seen: &mut HashSet<u64>, ids: &[String]) {
        self.refreshes += 1;
        let mut all_new = ids.len() == PAGE;
        if ids.is_empty() {
            self.empty += 1;
        }
        for id in ids {
            let Some(v) = judge.key(id) else {
                all_new = false;
                continue;
            };
            self.served += 1;
            if user.relates(judge, v) {
                self.related += 1;
            }
            if !seen.insert(v) {
                all_new = false;
                self.repeats += 1;
            }
            if user.history.contains(&v) {
                all_new = false;
            }
        }
        if all_new {
            self.full_new += 1;
        }
    }

    fn summary(&self, fake: &Fake, users: usize, wall: Duration) -> serde_json::Value {
        let c = fake.counters();
        let share = |a: u64, b: u64| {
            if b == 0 {
                0.0
            } else {
                round3(a as f64 / b as f64)
            }
        };
        json!({
            "users": users,
            "sign_ins": self.sign_ins,
            "refreshes": self.refreshes,
            "units_used": sim_day(&c).units,
            "searches_used": sim_day(&c).searches,
            "quota_refusals": c.quota_violations,
            "rate_refusals": c.rate_violations,
            "youtube_requests": c.requests,
            "per_method": c.per_method.iter().map(|(k, m)| (k.clone(), json!({"calls": m.calls, "units": m.units}))).collect::<serde_json::Map<_, _>>(),
            "share_full_page_never_served": share(self.full_new, self.refreshes),
            "share_served_related": share(self.related, self.served),
            "videos_served": self.served,
            "repeats_served": self.repeats,
            "empty_pages": self.empty,
            "units_per_1000_users": round1(sim_day(&c).units as f64 * 1000.0 / users as f64),
            "cache_statuses": self.statuses,
            "warm_outcomes": self.warm_outcomes,
            "transient_examples": self.transient_examples,
            "mean_warmed_pool": round1(self.warmed_pool_sizes as f64 / self.warm_outcomes.get("warmed").copied().unwrap_or(0).max(1) as f64),
            "wall_s": round1(wall.as_secs_f64()),
            "hourly": self.hourly.iter().enumerate().map(|(h, (u, s, r, f))| json!({"hour": h + 1, "units": u, "searches": s, "refreshes": r, "full_new": f})).collect::<Vec<_>>(),
        })
    }
}

/// The simulated day's usage at the fake: its current-day counters would read the next
/// day's zero once a late event's clock passes Pacific midnight.
fn sim_day(c: &fake_youtube::Counters) -> fake_youtube::DayUsage {
    c.days.get(SIM_DAY).cloned().unwrap_or_default()
}

fn snapshot(tally: &mut Tally, fake: &Fake) {
    let c = fake.counters();
    tally.hourly.push((
        sim_day(&c).units,
        sim_day(&c).searches,
        tally.refreshes,
        tally.full_new,
    ));
}

fn sqs_event(body: String, seq: u64) -> SqsEvent {
    let mut record = SqsMessage::default();
    record.message_id = Some(format!("sim-{seq}"));
    record.receipt_handle = Some(format!("sim-receipt-{seq}"));
    record.body = Some(body);
    record.event_source = Some("aws:sqs".into());
    record.event_source_arn = Some("arn:aws:sqs:us-east-1:123456789012:reco-warm".into());
    record.aws_region = Some("us-east-1".into());
    record
        .attributes
        .insert("ApproximateReceiveCount".into(), "1".into());
    let mut event = SqsEvent::default();
    event.records = vec![record];
    event
}

fn progress(label: &str, hour: usize, t0: Instant, tally: &Tally) {
    let (u, s, r, f) = *tally.hourly.last().unwrap();
    println!(
        "  [{label}] hour {hour:>2}: {:>6.0} s wall, {r:>8} refreshes ({:.1}% full & new), {u:>5} units, {s:>3} searches",
        t0.elapsed().as_secs_f64(),
        if r == 0 {
            0.0
        } else {
            f as f64 * 100.0 / r as f64
        },
    );
}

/// What one event did, applied to the simulation's state after its batch.
enum Effect {
    Push(i64, Ev),
    SignIn,
    Page {
        u: u32,
        ids: Vec<String>,
        status: &'static str,
    },
    Warm(ItemOutcome),
    Forget(u32),
}

/// Events whose times fall within this much of the batch's first run concurrently (as
/// they would on many Lambda instances), at most one per user and [`BATCH_MAX`] in all.
const BATCH_MS: i64 = 2_000;
const BATCH_MAX: usize = 64;

/// The real pieces one event runs against.
struct Sim<'a> {
    users: &'a [SimUser],
    judge: &'a dyn Judge,
    engine: &'a reco_core::engine::Engine,
    /// The API's instances: each refresh lands on one of them, each with its own item
    /// cache (the engine otherwise shared).
    api_instances: &'a [reco_core::engine::Engine],
    warmer: &'a Arc<reco_warmer::Warmer>,
    conn: reco_core::store::RedisConn,
    clock: &'a SimClock,
    request: PageRequest,
}

impl Sim<'_> {
    async fn step(&self, t: i64, ev: Ev, warm_seq: u64) -> Vec<Effect> {
        let mut effects = Vec::new();
        let engine = self.engine;
        match ev {
            Ev::SignIn { u, s } => {
                let user = &self.users[u as usize];
                effects.push(Effect::SignIn);
                if s == 0 {
                    let events: Vec<reco_core::WatchEvent> = user
                        .history
                        .iter()
                        .map(|&v| reco_core::WatchEvent {
                            video_id: self.judge.video_id(v),
                            watched_at: None,
                            watch_seconds: Some(300),
                        })
                        .collect();
                    engine
                        .history
                        .record(&user.id, &events, t)
                        .await
                        .expect("record history");
                }
                // The login function: claim the warm unless a fresh, full pool exists.
                if engine.pool.claim_warm(&user.id).await.expect("claim warm") {
                    effects.push(Effect::Push(
                        t + SQS_HOP_MS,
                        Ev::Warm {
                            u,
                            reason: WarmReason::SignIn as u8,
                        },
                    ));
                }
                let first = user.gaps[s as usize][0];
                effects.push(Effect::Push(
                    t + i64::from(first),
                    Ev::Refresh { u, s, k: 0 },
                ));
            }
            Ev::Refresh { u, s, k } => {
                let user = &self.users[u as usize];
                let instance = &self.api_instances
                    [(u as usize * 31 + s as usize * 7 + k as usize) % self.api_instances.len()];
                let page = instance
                    .take_page(&user.id, &self.request)
                    .await
                    .expect("take page");
                let (ids, status): (Vec<String>, &'static str) = if page.generated_at_ms.is_none() {
                    // The API's miss path: the region's chart from the shared cache.
                    let chart = engine
                        .sources
                        .cached_chart(&engine.region)
                        .await
                        .unwrap_or_default();
                    let served: HashSet<String> = engine
                        .pool
                        .served_ids(&user.id)
                        .await
                        .unwrap_or_default()
                        .into_iter()
                        .collect();
                    let ids: Vec<String> = chart
                        .into_iter()
                        .map(|v| v.video_id)
                        .filter(|id| !served.contains(id))
                        .take(PAGE)
                        .collect();
                    engine.pool.mark_served(&user.id, &ids).await.unwrap();
                    (ids, "miss")
                } else {
                    let status = if page.stale
                        || page.pool_remaining < reco_core::engine::pool::LOW_WATERMARK
                    {
                        "stale"
                    } else {
                        "hit"
                    };
                    (
                        page.videos.iter().map(|v| v.video_id.clone()).collect(),
                        status,
                    )
                };
                effects.push(Effect::Page { u, ids, status });
                if page.should_enqueue_warm {
                    let reason = if page.generated_at_ms.is_none() {
                        WarmReason::PoolMissing
                    } else if page.stale {
                        WarmReason::PoolStale
                    } else {
                        WarmReason::PoolLow
                    };
                    effects.push(Effect::Push(
                        t + SQS_HOP_MS,
                        Ev::Warm {
                            u,
                            reason: reason as u8,
                        },
                    ));
                }
                let session = &user.sessions[s as usize];
                if k + 1 < session.refreshes {
                    let gap =
                        user.gaps[s as usize][k as usize + 1] - user.gaps[s as usize][k as usize];
                    effects.push(Effect::Push(
                        t + i64::from(gap),
                        Ev::Refresh { u, s, k: k + 1 },
                    ));
                } else {
                    effects.push(Effect::Push(t + 1, Ev::SessionEnd { u, s }));
                }
            }
            Ev::SessionEnd { u, s } => {
                let user = &self.users[u as usize];
                let next = user.sessions.get(s as usize + 1).map(|n| n.start);
                let mut conn = self.conn.clone();
                // Memory only: a pool left for longer than its freshness is rebuilt at the
                // next sign-in anyway (claim_warm), so it is dropped here; the served set
                // (what makes pages new) stays until the user's last session ends. It is
                // dropped as a warm replaces it — the cut's shown ids marked served, the
                // rest given back — then its keys go.
                if next.is_none_or(|n| n - t > FRESH_MS) {
                    engine.pool.replace(&user.id, &[]).await.unwrap();
                    let _: () = redis::cmd("DEL")
                        .arg(keys::feed(&user.id))
                        .arg(keys::cut(&user.id))
                        .arg(keys::pool_meta(&user.id))
                        .query_async(&mut conn)
                        .await
                        .unwrap();
                }
                match next {
                    Some(n) => effects.push(Effect::Push(n, Ev::SignIn { u, s: s + 1 })),
                    None => {
                        let _: () = redis::cmd("DEL")
                            .arg(keys::served(&user.id))
                            .arg(keys::history(&user.id))
                            .query_async(&mut conn)
                            .await
                            .unwrap();
                        effects.push(Effect::Forget(u));
                    }
                }
            }
            Ev::Warm { u, reason } => {
                let user = &self.users[u as usize];
                let reason = match reason {
                    r if r == WarmReason::SignIn as u8 => WarmReason::SignIn,
                    r if r == WarmReason::Deferred as u8 => WarmReason::Deferred,
                    r if r == WarmReason::PoolMissing as u8 => WarmReason::PoolMissing,
                    r if r == WarmReason::PoolStale as u8 => WarmReason::PoolStale,
                    _ => WarmReason::PoolLow,
                };
                let body = WarmRequest::new(user.id.clone(), reason, self.clock.now()).to_json();
                for (_, outcome) in self.warmer.run_batch(sqs_event(body, warm_seq)).await {
                    if let ItemOutcome::Deferred { delay_secs, .. } = &outcome {
                        // The warmer re-sent the request with this delay (to the sink):
                        // the simulation delivers it.
                        effects.push(Effect::Push(
                            t + *delay_secs as i64 * 1000,
                            Ev::Warm {
                                u,
                                reason: WarmReason::Deferred as u8,
                            },
                        ));
                    }
                    effects.push(Effect::Warm(outcome));
                }
            }
        }
        effects
    }
}

impl Ev {
    fn user(&self) -> u32 {
        match *self {
            Ev::SignIn { u, .. }
            | Ev::Refresh { u, .. }
            | Ev::SessionEnd { u, .. }
            | Ev::Warm { u, .. } => u,
        }
    }
}

/// Our design over the day; writes `<file>-ours-partial.json` at the end of every
/// simulated hour, so a run cut short still leaves its figures so far.
async fn run_ours(
    users: &[SimUser],
    judge: &dyn Judge,
    fake_config: FakeConfig,
    day_start: i64,
    file: &str,
) -> (serde_json::Value, Tally) {
    let env = TestEnv::start_with(fake_config).await;
    let clock = Arc::new(SimClock::new(day_start));
    // Production's quota guard timeout (the harness lengthens it for loaded test runs).
    let config = config_with(&env, &[("YOUTUBE_QUOTA_TIMEOUT_MS", "200")]);
    let apps = Apps::build_with(&env, config, Some(clock.clone()), AuthMode::None).await;
    let (sink_url, deferrals_sent) = deferral_sink().await;
    let warmer = Arc::new(reco_warmer::Warmer::new(
        &apps.services,
        reco_core::queue::WarmQueue::new(
            reco_core::queue::sqs_client_with(Some(&sink_url), Some(Duration::from_secs(5))).await,
            format!("{sink_url}/123456789012/reco-warm-sim"),
            Duration::from_secs(5),
        ),
    ));
    let api_instances: Vec<reco_core::engine::Engine> = (0..API_INSTANCES)
        .map(|_| {
            let mut engine = apps.services.engine.clone();
            engine.catalog = reco_core::engine::Catalog::for_function_memory_mb(
                apps.services.redis.clone(),
                API_MEMORY_MB,
            );
            engine
        })
        .collect();
    let sim = Sim {
        users,
        judge,
        engine: &apps.services.engine,
        api_instances: &api_instances,
        warmer: &warmer,
        conn: apps.services.redis.clone(),
        clock: &clock,
        request: PageRequest {
            max_results: PAGE,
            category_id: None,
            include_trending: true,
        },
    };

    let mut heap: BinaryHeap<Reverse<(i64, u64, Ev)>> = BinaryHeap::new();
    let mut seq = 0u64;
    let mut push = |heap: &mut BinaryHeap<Reverse<(i64, u64, Ev)>>, t: i64, ev: Ev| {
        seq += 1;
        heap.push(Reverse((t, seq, ev)));
    };
    for (i, u) in users.iter().enumerate() {
        if let Some(s) = u.sessions.first() {
            push(&mut heap, s.start, Ev::SignIn { u: i as u32, s: 0 });
        }
    }
    let mut seen: Vec<HashSet<u64>> = (0..users.len()).map(|_| HashSet::new()).collect();
    let mut tally = Tally::default();
    let mut next_hour = day_start + HOUR_MS;
    let day_end = day_start + DAY_MS;
    let t0 = Instant::now();
    let mut warm_seq = 0u64;
    let mut next_tick = day_start + TICK_MS;
    let mut batch: Vec<(i64, Ev)> = Vec::with_capacity(BATCH_MAX);
    let mut held: Vec<Reverse<(i64, u64, Ev)>> = Vec::new();
    let mut in_batch: HashSet<u32> = HashSet::new();
    while let Some(Reverse((first, _, _))) = heap.peek() {
        let first = *first;
        while first >= next_tick && next_tick < day_end {
            eprintln!(
                "    [ours] {:>5.2} h: {:>6.0} s wall, {} refreshes ({:.1}% full & new), {} units, {} searches, warms {:?}",
                (next_tick - day_start) as f64 / HOUR_MS as f64,
                t0.elapsed().as_secs_f64(),
                tally.refreshes,
                tally.full_new as f64 * 100.0 / tally.refreshes.max(1) as f64,
                sim_day(&env.fake.counters()).units,
                sim_day(&env.fake.counters()).searches,
                tally.warm_outcomes
            );
            next_tick += TICK_MS;
        }
        while first >= next_hour && next_hour <= day_end {
            snapshot(&mut tally, &env.fake);
            progress("ours", tally.hourly.len(), t0, &tally);
            if tally.hourly.len() == CENSUS_HOUR {
                let census = reco_bench::memory_census(&apps.services.redis).await;
                eprintln!("    [ours] memory at {CENSUS_HOUR}:00: {census}");
                tally.census = Some(census);
            }
            next_hour += HOUR_MS;
            let mut partial = tally.summary(&env.fake, users.len(), t0.elapsed());
            partial["simulated_hours"] = json!(tally.hourly.len());
            write_json(&format!("{file}-ours-partial"), &partial);
        }
        if first >= day_end {
            break;
        }
        // One batch: the events of the next BATCH_MS, one per user.
        while batch.len() < BATCH_MAX {
            let Some(Reverse((t, _, _))) = heap.peek() else {
                break;
            };
            if *t >= first + BATCH_MS || *t >= next_hour {
                break;
            }
            let Reverse((t, s, ev)) = heap.pop().unwrap();
            if in_batch.insert(ev.user()) {
                batch.push((t, ev));
            } else {
                held.push(Reverse((t, s, ev)));
            }
        }
        heap.extend(held.drain(..));
        in_batch.clear();
        clock.advance_to(first);
        env.fake.set_clock(clock.now());
        let steps = batch.drain(..).map(|(t, ev)| {
            warm_seq += 1;
            sim.step(t.max(first), ev, warm_seq)
        });
        for effect in futures_util::future::join_all(steps)
            .await
            .into_iter()
            .flatten()
        {
            match effect {
                Effect::Push(t, ev) => push(&mut heap, t, ev),
                Effect::SignIn => tally.sign_ins += 1,
                Effect::Page { u, ids, status } => {
                    *tally.statuses.entry(status).or_default() += 1;
                    tally.page(&users[u as usize], judge, &mut seen[u as usize], &ids);
                }
                Effect::Warm(outcome) => {
                    *tally
                        .warm_outcomes
                        .entry(outcome.kind().to_owned())
                        .or_default() += 1;
                    match outcome {
                        ItemOutcome::Warmed(w) => {
                            tally.warmed_pool_sizes += w.pool_size as u64;
                        }
                        ItemOutcome::Transient(e) | ItemOutcome::Poison(e)
                            if tally.transient_examples.len() < 5 =>
                        {
                            tally.transient_examples.push(e);
                        }
                        _ => {}
                    }
                }
                Effect::Forget(u) => seen[u as usize] = HashSet::new(),
            }
        }
    }
    while tally.hourly.len() < 24 {
        snapshot(&mut tally, &env.fake);
        progress("ours", tally.hourly.len(), t0, &tally);
    }
    let mut summary = tally.summary(&env.fake, users.len(), t0.elapsed());
    summary["redis_memory_at_census_hour"] = json!({"hour": CENSUS_HOUR, "census": tally.census});
    let (mut hits, mut reads, mut round_trips, mut missing) = (0, 0, 0, 0);
    for instance in &api_instances {
        let stats = instance.catalog.stats();
        hits += stats.cache_hits.load(Ordering::Relaxed);
        reads += stats.catalog_reads.load(Ordering::Relaxed);
        round_trips += stats.round_trips.load(Ordering::Relaxed);
        missing += stats.missing.load(Ordering::Relaxed);
    }
    summary["item_cache"] = json!({
        "api_instances": API_INSTANCES,
        "cache_bytes_each": API_MEMORY_MB * 1024 * 1024 / reco_core::engine::catalog::CACHE_MEMORY_SHARE,
        "items_from_cache": hits,
        "items_from_catalog": reads,
        "hit_rate": round3(hits as f64 / (hits + reads).max(1) as f64),
        "catalog_round_trips": round_trips,
        "entries_gone_from_catalog": missing,
    });
    summary["deferrals_sent"] = json!(deferrals_sent.load(Ordering::Relaxed));
    (summary, tally)
}

/// The earlier design: a per-(user, parameters) page cached for 15 minutes, regenerated
/// on a miss with one search and one videos.list, straight to YouTube.
async fn run_baseline(
    users: &[SimUser],
    judge: &dyn Judge,
    fake_config: FakeConfig,
    day_start: i64,
) -> (serde_json::Value, Tally) {
    let fake = start_fake(fake_config);
    let redis = RedisServer::start();
    let mut conn = redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let base = fake.base_url();

    let mut heap: BinaryHeap<Reverse<(i64, u64, Ev)>> = BinaryHeap::new();
    let mut seq = 0u64;
    for (i, u) in users.iter().enumerate() {
        if let Some(s) = u.sessions.first() {
            seq += 1;
            heap.push(Reverse((s.start, seq, Ev::SignIn { u: i as u32, s: 0 })));
        }
    }
    let mut seen: Vec<HashSet<u64>> = (0..users.len()).map(|_| HashSet::new()).collect();
    let mut tally = Tally::default();
    let mut next_hour = day_start + HOUR_MS;
    let day_end = day_start + DAY_MS;
    let t0 = Instant::now();
    while let Some(Reverse((t, _, ev))) = heap.pop() {
        while t >= next_hour && next_hour <= day_end {
            snapshot(&mut tally, &fake);
            progress("baseline", tally.hourly.len(), t0, &tally);
            next_hour += HOUR_MS;
        }
        if t >= day_end {
            break;
        }
        fake.set_clock(jiff::Timestamp::from_millisecond(t).unwrap());
        let mut next = |heap: &mut BinaryHeap<Reverse<(i64, u64, Ev)>>, at: i64, ev: Ev| {
            seq += 1;
            heap.push(Reverse((at, seq, ev)));
        };
        match ev {
            Ev::SignIn { u, s } => {
                tally.sign_ins += 1;
                let first = users[u as usize].gaps[s as usize][0];
                next(&mut heap, t + i64::from(first), Ev::Refresh { u, s, k: 0 });
            }
            Ev::Refresh { u, s, k } => {
                let user = &users[u as usize];
                let key = format!("baseline:{{u:{}}}:max=20:trending=1:category=", user.id);
                let cached: Option<String> = redis::cmd("GET")
                    .arg(&key)
                    .query_async(&mut conn)
                    .await
                    .unwrap();
                let cached: Option<(i64, Vec<String>)> =
                    cached.and_then(|c| serde_json::from_str(&c).ok());
                let (ids, status) = match cached {
                    Some((at, ids)) if t - at < FRESH_MS => (ids, "hit"),
                    _ => {
                        let query = judge.topic_query(user.topics[0]);
                        let ids = regenerate(&http, &base, &query).await;
                        if !ids.is_empty() {
                            let _: () = redis::cmd("SET")
                                .arg(&key)
                                .arg(serde_json::to_string(&(t, &ids)).unwrap())
                                .query_async(&mut conn)
                                .await
                                .unwrap();
                        }
                        (ids, "miss")
                    }
                };
                *tally.statuses.entry(status).or_default() += 1;
                tally.page(user, judge, &mut seen[u as usize], &ids);
                let session = &user.sessions[s as usize];
                if k + 1 < session.refreshes {
                    let gap =
                        user.gaps[s as usize][k as usize + 1] - user.gaps[s as usize][k as usize];
                    next(
                        &mut heap,
                        t + i64::from(gap),
                        Ev::Refresh { u, s, k: k + 1 },
                    );
                } else {
                    next(&mut heap, t + 1, Ev::SessionEnd { u, s });
                }
            }
            Ev::SessionEnd { u, s } => {
                let user = &users[u as usize];
                match user.sessions.get(s as usize + 1) {
                    Some(n) => next(&mut heap, n.start, Ev::SignIn { u, s: s + 1 }),
                    None => seen[u as usize] = HashSet::new(),
                }
            }
            Ev::Warm { .. } => unreachable!("the earlier design has no warms"),
        }
    }
    while tally.hourly.len() < 24 {
        snapshot(&mut tally, &fake);
        progress("baseline", tally.hourly.len(), t0, &tally);
    }
    let summary = tally.summary(&fake, users.len(), t0.elapsed());
    fake.shutdown();
    (summary, tally)
}

/// search.list (q, 20 videos) then videos.list for their details; empty on any refusal.
async fn regenerate(http: &reqwest::Client, base: &str, query: &str) -> Vec<String> {
    let search = http
        .get(format!("{base}/search"))
        .header("X-Goog-Api-Key", TEST_API_KEY)
        .query(&[
            ("part", "snippet"),
            ("type", "video"),
            ("maxResults", "20"),
            ("q", query),
        ])
        .send()
        .await
        .expect("fake reachable");
    if !search.status().is_success() {
        return Vec::new();
    }
    let body: serde_json::Value = search.json().await.unwrap_or_default();
    let ids: Vec<String> = body["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i["id"]["videoId"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if ids.is_empty() {
        return ids;
    }
    let details = http
        .get(format!("{base}/videos"))
        .header("X-Goog-Api-Key", TEST_API_KEY)
        .query(&[
            ("part", "snippet,contentDetails,statistics"),
            ("id", ids.join(",").as_str()),
        ])
        .send()
        .await
        .expect("fake reachable");
    if !details.status().is_success() {
        return Vec::new();
    }
    ids
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    // A day's worth of EMF lines would bury the figures; the fake meters what was spent.
    reco_core::metrics::install(reco_core::metrics::Sink::Off);
    let n: usize = arg("--users", 100_000);
    let seed: u64 = arg("--seed", 7);
    let only: String = arg("--only", "both".to_owned());
    // Thursday 26 November 2026, 00:00 Pacific (PST, UTC-8): one whole quota day.
    let day_start = jiff::Timestamp::from_second(1_795_680_000)
        .unwrap()
        .as_millisecond();
    assert_eq!(
        reco_core::clock::pacific_date(jiff::Timestamp::from_millisecond(day_start).unwrap()),
        SIM_DAY
    );
    // `--world N`: the procedural world of N channels; 0, the fake's materialised corpus.
    let world_channels: u32 = arg("--world", 0);
    let fake_config = FakeConfig {
        start_clock: Some(jiff::Timestamp::from_millisecond(day_start).unwrap()),
        world_channels: (world_channels > 0).then_some(world_channels),
        ..FakeConfig::default()
    };
    let t = Instant::now();
    let (judge, users): (Box<dyn Judge>, Vec<SimUser>) = if world_channels > 0 {
        let world = World::new(fake_config.seed, world_channels, CORPUS_EPOCH_SECS);
        let users = make_world_users(&world, n, seed, day_start);
        (Box::new(WorldJudge { world }), users)
    } else {
        let index_fake = start_fake(FakeConfig::default());
        let index = Index::build(&index_fake);
        index_fake.shutdown();
        let users = make_users(&index, n, seed, day_start);
        (Box::new(index), users)
    };
    let judge = judge.as_ref();
    let sessions: usize = users.iter().map(|u| u.sessions.len()).sum();
    let refreshes: usize = users
        .iter()
        .flat_map(|u| u.sessions.iter())
        .map(|s| s.refreshes as usize)
        .sum();
    let mut topic_users: HashMap<u16, usize> = HashMap::new();
    for u in &users {
        *topic_users.entry(u.topics[0]).or_default() += 1;
    }
    let mut topic_users: Vec<usize> = topic_users.into_values().collect();
    topic_users.sort_unstable_by(|a, b| b.cmp(a));
    let distinct_channels: HashSet<u32> = users
        .iter()
        .flat_map(|u| u.channels.iter().copied())
        .collect();
    println!(
        "{n} users (seed {seed}) in {:.1} s: {sessions} sessions, {refreshes} refreshes planned, \
         {} distinct history channels; main-topic users, top 5: {:?}",
        t.elapsed().as_secs_f64(),
        distinct_channels.len(),
        topic_users.iter().take(5).collect::<Vec<_>>()
    );

    let mut results = json!({
        "commit": reco_bench::git_describe(),
        "users": n,
        "seed": seed,
        "sessions": sessions,
        "refreshes_planned": refreshes,
        "distinct_history_channels": distinct_channels.len(),
        "world": if world_channels > 0 {
            json!({"procedural_channels": world_channels, "seed": fake_config.seed})
        } else {
            json!({"corpus_channels": fake_config.channels, "seed": fake_config.seed})
        },
        "day": "2026-11-26 (Pacific)",
    });
    let file = match (world_channels, n) {
        (0, 100_000) => "day".to_owned(),
        (0, _) => format!("day-{n}"),
        (_, _) => format!("world-day-{n}"),
    };
    // One after the other, each on its own Redis and fake YouTube (the harness starts
    // its servers with blocking waits, which would stall a design running beside it).
    let baseline = async {
        if only == "ours" {
            return None;
        }
        println!("\nbaseline (the earlier design): started");
        Some(run_baseline(&users, judge, fake_config.clone(), day_start).await)
    };
    let ours = async {
        if only == "baseline" {
            return None;
        }
        println!("\nours: started");
        Some(run_ours(&users, judge, fake_config.clone(), day_start, &file).await)
    };
    let baseline = baseline.await;
    let ours = ours.await;
    let mut tallies: Vec<(&str, Tally)> = Vec::new();
    if let Some((summary, tally)) = baseline {
        println!(
            "{}",
            serde_json::to_string_pretty(&summary["per_method"]).unwrap()
        );
        results["baseline"] = summary;
        tallies.push(("baseline", tally));
    }
    if let Some((summary, tally)) = ours {
        results["ours"] = summary;
        tallies.push(("ours", tally));
    }
    for (name, _) in &tallies {
        let r = &results[*name];
        println!(
            "\n{name}: {} users, {} refreshes: {} units, {} searches, {} quota refusals, \
             {:.1}% full pages of never-served videos, {:.1}% of served videos related, \
             {} units per 1,000 daily users",
            r["users"],
            r["refreshes"],
            r["units_used"],
            r["searches_used"],
            r["quota_refusals"],
            r["share_full_page_never_served"].as_f64().unwrap() * 100.0,
            r["share_served_related"].as_f64().unwrap() * 100.0,
            r["units_per_1000_users"],
        );
    }
    write_json(&file, &results);

    if tallies.len() == 2 {
        let hours = |t: &Tally, f: &dyn Fn(&Hour) -> f64| -> Vec<(f64, f64)> {
            std::iter::once((0.0, 0.0))
                .chain(
                    t.hourly
                        .iter()
                        .enumerate()
                        .map(|(h, x)| ((h + 1) as f64, f(x))),
                )
                .collect()
        };
        let names = ["earlier design (baseline)", "ours"];
        let units: Vec<Series> = tallies
            .iter()
            .enumerate()
            .map(|(i, (_, t))| Series::new(names[i], 1 - i, hours(t, &|x| x.0 as f64)))
            .collect();
        let max_units = tallies
            .iter()
            .filter_map(|(_, t)| t.hourly.last().map(|x| x.0))
            .max()
            .unwrap_or(0)
            .max(10_000) as f64;
        let mut units = units;
        units.push(Series::new(
            "daily quota (10,000 units)",
            3,
            vec![(0.0, 10_000.0), (24.0, 10_000.0)],
        ));
        line_chart(
            &format!("{file}-units.png"),
            &format!("YouTube units spent over the simulated day, {n} users"),
            "hour of the Pacific day",
            "units spent (cumulative)",
            (0.0, 24.0),
            (0.0, max_units * 1.1),
            &units,
        );
        let searches: Vec<Series> = tallies
            .iter()
            .enumerate()
            .map(|(i, (_, t))| Series::new(names[i], 1 - i, hours(t, &|x| x.1 as f64)))
            .chain(std::iter::once(Series::new(
                "daily search bucket (100)",
                3,
                vec![(0.0, 100.0), (24.0, 100.0)],
            )))
            .collect();
        line_chart(
            &format!("{file}-searches.png"),
            &format!("search.list calls over the simulated day, {n} users"),
            "hour of the Pacific day",
            "searches (cumulative)",
            (0.0, 24.0),
            (0.0, 120.0),
            &searches,
        );
        let share: Vec<Series> = tallies
            .iter()
            .enumerate()
            .map(|(i, (_, t))| {
                let mut prev = (0u64, 0u64);
                let pts = t
                    .hourly
                    .iter()
                    .enumerate()
                    .filter_map(|(h, x)| {
                        let (r, f) = (x.2 - prev.0, x.3 - prev.1);
                        prev = (x.2, x.3);
                        (r > 0).then(|| (h as f64 + 0.5, f as f64 * 100.0 / r as f64))
                    })
                    .collect();
                Series::new(names[i], 1 - i, pts)
            })
            .chain(std::iter::once(Series::new(
                "target (95%)",
                3,
                vec![(0.0, 95.0), (24.0, 95.0)],
            )))
            .collect();
        line_chart(
            &format!("{file}-all-new.png"),
            &format!("Refreshes with a full page of never-served videos, per hour, {n} users"),
            "hour of the Pacific day",
            "share of refreshes (%)",
            (0.0, 24.0),
            (0.0, 105.0),
            &share,
        );
    }
}
