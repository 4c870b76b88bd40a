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
use futures_util::StreamExt;
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
use serde::{Deserialize, Serialize};
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
    /// When the video was published (seconds), where the world says (for upload latency).
    fn upload_secs(&self, _key: u64) -> Option<i64> {
        None
    }
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
    fn upload_secs(&self, key: u64) -> Option<i64> {
        Some(
            self.world
                .upload_time_of((key >> 40) as u32, key & ((1 << 40) - 1)),
        )
    }
}

struct Session {
    start: i64,
    refreshes: u8,
}

/// Who a user is: what they follow and watched before their first sign-in, and how
/// often they come back.
struct SimUser {
    id: UserId,
    topics: Vec<u16>,
    channels: Vec<u32>,
    /// Video keys ([`Judge::key`]) watched before the first sign-in (imported then).
    history: Vec<u64>,
    /// The chance of a session-day on any day after the first.
    activity: f64,
    /// The day of the first sign-in, and the first day of no return (churn).
    joined: u16,
    leaves: u16,
}

/// A user's sessions of one day (none if they do not come that day).
#[derive(Default)]
struct Plan {
    sessions: Vec<Session>,
    /// (ms after sign-in) of each refresh, per session.
    gaps: Vec<Vec<u32>>,
    /// The first sign-in ever: the history is imported (recorded) then.
    first_sign_in: bool,
}

/// What the simulation learned about a user as the run went: what was served (the
/// judge's record of "never served"), what they watched, and which uploads of their
/// channels reached their pool (timed once each).
#[derive(Default, Serialize, Deserialize)]
struct Learned {
    seen: HashSet<u64>,
    watched: Vec<u64>,
    channels: Vec<u32>,
    pooled: HashSet<u64>,
    signed_in: bool,
    /// When the user's pool was last built (ms): whether they were in a session when an
    /// upload came.
    #[serde(default)]
    last_warm_ms: Option<i64>,
}

impl SimUser {
    fn relates(&self, learned: &Learned, judge: &dyn Judge, video: u64) -> bool {
        let (topic, channel) = judge.meta(video);
        self.topics.contains(&topic)
            || self.channels.contains(&channel)
            || learned.channels.contains(&channel)
    }

    fn watches_channel(&self, learned: &Learned, channel: u32) -> bool {
        self.channels.contains(&channel) || learned.channels.contains(&channel)
    }
}

/// How often users come back, as (share of users, chance of a session-day): a third
/// nearly daily, a third every other day, the rest about weekly.
const ACTIVITY: [(f64, f64); 3] = [(0.3, 0.95), (0.3, 0.55), (0.4, 0.2)];
/// A user's chance of leaving for good on any day after the first; new sign-ups
/// replace them (a share of the starting population a day).
const CHURN_PER_DAY: f64 = 0.02;
const SIGNUPS_PER_DAY: f64 = 0.02;

fn mean_activity() -> f64 {
    ACTIVITY.iter().map(|(share, p)| share * p).sum()
}

/// Sessions start more often in the (Pacific) evening than at night.
const HOUR_WEIGHTS: [f64; 24] = [
    2.0, 1.2, 0.8, 0.6, 0.6, 0.8, 1.5, 2.5, 3.0, 3.0, 3.0, 3.2, 3.5, 3.5, 3.4, 3.5, 4.0, 4.8, 5.5,
    6.0, 6.0, 5.5, 4.5, 3.0,
];

/// Users of the corpus: Zipf interests over its topics by size, channels by subscribers;
/// all of them come on the (one) day, whose plans are returned beside them.
fn make_users(index: &Index, n: usize, seed: u64, day_start: i64) -> (Vec<SimUser>, Vec<Plan>) {
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
            let user = SimUser {
                id: UserId::parse(&format!("sim-{i}")).unwrap(),
                topics,
                channels,
                history,
                activity: 1.0,
                joined: 0,
                leaves: u16::MAX,
            };
            let plan = Plan {
                sessions,
                gaps,
                first_sign_in: true,
            };
            (user, plan)
        })
        .unzip()
}

/// User `i` of the procedural world (`World::user`: 1–3 topics, a heavy-tailed number
/// of channels from the same long tail as everyone's), first signing in on day `joined`;
/// their history is one to three of each channel's older uploads (not its newest five)
/// at `at_ms`. How often they come back and when they leave are drawn from the seed.
fn make_world_user(world: &World, i: u32, seed: u64, joined: u16, at_ms: i64) -> SimUser {
    let spec = world.user(u64::from(i));
    let mut rng = SplitMix::new(seed ^ u64::from(i).wrapping_mul(0x2545_F491_4F6C_DD1D));
    let mut history = Vec::new();
    for &rank in &spec.channels {
        let count = world.uploads_until(&world.channel(rank), at_ms / 1000);
        if count < 7 {
            continue;
        }
        let (lower, upper) = (count.saturating_sub(30), count - 6);
        for _ in 0..rng.range(1, 3) {
            let key = (u64::from(rank) << 40) | rng.range(lower, upper);
            if !history.contains(&key) {
                history.push(key);
            }
        }
    }
    let mut pick = rng.f64();
    let activity = ACTIVITY
        .iter()
        .find(|(share, _)| {
            pick -= share;
            pick < 0.0
        })
        .map_or(ACTIVITY[ACTIVITY.len() - 1].1, |(_, p)| *p);
    // Days until leaving: geometric with CHURN_PER_DAY.
    let stay = (rng.f64().max(1e-12).ln() / (1.0 - CHURN_PER_DAY).ln()).floor() as u64 + 1;
    SimUser {
        id: UserId::parse(&format!("sim-{i}")).unwrap(),
        topics: spec.topics.iter().map(|&t| t as u16).collect(),
        channels: spec.channels,
        history,
        activity,
        joined,
        leaves: (u64::from(joined) + stay).min(u64::from(u16::MAX)) as u16,
    }
}

/// Whether user `u` comes on `day` and, if so, their sessions: a new sign-up always
/// comes on their first day; later, with their activity, until they leave.
fn plan_day(user: &SimUser, u: u32, seed: u64, day: u16, day_start: i64) -> Option<Plan> {
    if day < user.joined || day >= user.leaves {
        return None;
    }
    let mut rng = SplitMix::new(
        seed ^ 0xDA7_5EED
            ^ u64::from(u).wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ (u64::from(day) << 48),
    );
    // A sign-up comes on their first day; everyone else by their activity.
    let signs_up_today = day == user.joined && day > 0;
    if !signs_up_today && rng.f64() >= user.activity {
        return None;
    }
    let (sessions, gaps) = plan_sessions(&mut rng, day_start);
    Some(Plan {
        sessions,
        gaps,
        first_sign_in: false,
    })
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
enum Ev {
    SignIn {
        u: u32,
        s: u8,
    },
    Refresh {
        u: u32,
        s: u8,
        k: u8,
    },
    SessionEnd {
        u: u32,
        s: u8,
    },
    Warm {
        u: u32,
        reason: u8,
    },
    /// `--push`: the hub delivers what the world published, and the push manager runs
    /// (its schedule: every minute).
    PushTick,
}

/// A user is in a session when an upload comes if their pool was built within this long
/// before it (the push manager's `ACTIVE_WATCHER_MS`).
const ACTIVE_SESSION_MS: i64 = reco_core::push::hydrate::ACTIVE_WATCHER_MS;
/// The push manager's schedule, and the first one of a day.
const PUSH_TICK_MS: i64 = 60_000;
/// The simulated deployment's push master secret.
const SIM_PUSH_SECRET: &str = "simulated-push-master-secret-0123456789";
/// The user of an event without one (a push tick), for the window's one-per-user rule.
const NO_USER: u32 = u32::MAX;

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
///
/// The push manager's watcher warms come as `SendMessageBatch`es: their bodies are kept in
/// `batched` for the simulation to deliver.
async fn deferral_sink() -> (String, Arc<AtomicU64>, WarmBodies) {
    use axum::routing::post;
    let sent = Arc::new(AtomicU64::new(0));
    let batched: WarmBodies = Arc::default();
    let counter = sent.clone();
    let kept = batched.clone();
    let app = axum::Router::new().route(
        "/",
        post(move |headers: axum::http::HeaderMap, body: String| {
            let batch = headers
                .get("x-amz-target")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|t| t.ends_with("SendMessageBatch"));
            let answer = if batch {
                let request: serde_json::Value =
                    serde_json::from_str(&body).expect("a SendMessageBatch request");
                let mut ok = Vec::new();
                let mut kept = kept.lock().expect("the sink's batches");
                for entry in request["Entries"].as_array().into_iter().flatten() {
                    kept.push(entry["MessageBody"].as_str().unwrap_or("").to_owned());
                    ok.push(json!({"Id": entry["Id"], "MessageId": "sim-push-warm", "MD5OfMessageBody": ""}));
                }
                json!({"Successful": ok, "Failed": []}).to_string()
            } else {
                let n = counter.fetch_add(1, Ordering::Relaxed) + 1;
                format!(r#"{{"MessageId":"sim-deferral-{n}"}}"#)
            };
            async move { ([("content-type", "application/x-amz-json-1.0")], answer) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the deferral sink");
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.expect("deferral sink") });
    (url, sent, batched)
}

/// Warm request bodies the push manager sent, waiting for the simulation.
type WarmBodies = Arc<std::sync::Mutex<Vec<String>>>;

/// The push callback function behind a local HTTP API: each request becomes the API
/// Gateway event the function gets in AWS (the harness's conversion), and is handled by
/// the real `reco_push::Callback`.
async fn push_callback_server(callback: Arc<reco_push::Callback>) -> String {
    use axum::response::IntoResponse;
    let app = axum::Router::new().fallback(
        move |method: axum::http::Method,
              uri: axum::http::Uri,
              headers: axum::http::HeaderMap,
              body: axum::body::Bytes| {
            let callback = callback.clone();
            async move {
                let event = reco_tests::apigw::http_api_event(&method, &uri, &headers, &body);
                let request = reco_api::event::request_from_str(&event.to_string())
                    .expect("an API Gateway event");
                let response = callback.handle(request).await;
                let status = response.status().as_u16();
                let bytes = match response.into_body() {
                    lambda_http::Body::Text(t) => t.into_bytes(),
                    lambda_http::Body::Binary(b) => b,
                    _ => Vec::new(),
                };
                (
                    axum::http::StatusCode::from_u16(status).expect("a status"),
                    bytes,
                )
                    .into_response()
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the push callback");
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.expect("push callback") });
    url
}

/// `--push`: the hub (the fake's) and the manager (the product's), on the simulation's
/// clock.
struct PushSim {
    fake: Fake,
    manager: reco_core::push::manager::Manager,
    warm_bodies: WarmBodies,
}

/// One simulated day's counts, cumulative within the day.
#[derive(Default, Clone, Serialize, Deserialize)]
struct Counts {
    sign_ins: u64,
    refreshes: u64,
    full_new: u64,
    served: u64,
    related: u64,
    /// The same for the day's heaviest decile of users (by the refreshes planned for
    /// them that day): refreshes, full new pages, served, related, empty pages.
    #[serde(default)]
    heavy: [u64; 5],
    /// Served and related videos by the engine's reason ([`REASONS`]).
    #[serde(default)]
    served_by_reason: [u64; 5],
    #[serde(default)]
    related_by_reason: [u64; 5],
    /// Unrelated served videos of a topic the user watched a video of in the simulation
    /// (a page's video they took): the judge holds the user to the topics they came with.
    #[serde(default)]
    unrelated_of_a_watched_topic: u64,
    repeats: u64,
    empty: u64,
    watches: u64,
    warms: u64,
    deferred: u64,
    /// `--push`: notifications the hub delivered, uploads hydrated, `videos.list` calls
    /// (units) of hydration, warms sent to watchers.
    #[serde(default)]
    push_notifications: u64,
    #[serde(default)]
    push_hydrated: u64,
    #[serde(default)]
    push_hydration_calls: u64,
    #[serde(default)]
    push_warms: u64,
    /// Forged notifications an impostor posted to the callback, and those acted on.
    #[serde(default)]
    push_forged: u64,
    #[serde(default)]
    push_forged_acted_on: u64,
}

/// What one design did over one simulated day.
#[derive(Default, Serialize, Deserialize)]
struct Tally {
    /// The day's Pacific date (the fake's quota day), and its start (seconds).
    date: String,
    day_start_s: i64,
    /// When the run began (seconds): uploads from then on are the ones timed.
    run_start_s: i64,
    counts: Counts,
    statuses: std::collections::BTreeMap<String, u64>,
    warm_outcomes: HashMap<String, u64>,
    transient_examples: Vec<String>,
    /// Sum of the pool sizes of the warms that built one.
    warmed_pool_sizes: u64,
    /// At the end of each hour: the day's counts and the fake's usage so far.
    hourly: Vec<(Counts, fake_youtube::DayUsage)>,
    /// Redis memory at the end of [`CENSUS_HOUR`] (`reco_bench::memory_census`).
    census: Option<serde_json::Value>,
    /// Seconds from an upload of a channel the user watches (published during the run)
    /// to its entry in their pool, and to its first appearance in one of their pages.
    to_pool_s: Vec<f64>,
    to_page_s: Vec<f64>,
    /// Distinct such uploads that reached a watcher's pool this day.
    reached_pool: HashSet<u64>,
    /// The channel of each `to_pool_s` upload, to split them by subscription.
    #[serde(default)]
    to_pool_channel: Vec<u32>,
    /// The same latencies for users in a session when the upload came (a warm of theirs
    /// within the two hours before it), with the channel: the latency the product can
    /// act on; an upload that comes while its watcher is away waits for their return.
    #[serde(default)]
    to_pool_active: Vec<(u32, f64)>,
    /// `--push`: live subscriptions after the last manager run, and the channels
    /// subscribed at the end of the day (set then).
    #[serde(default)]
    push_live: u64,
    #[serde(default)]
    subscribed: Option<HashSet<u32>>,
}

/// When video `v` was uploaded, if it is an upload of one of the user's channels
/// published since the run began: the uploads whose latency is timed.
fn timed_upload(
    run_start_s: i64,
    user: &SimUser,
    learned: &Learned,
    judge: &dyn Judge,
    v: u64,
    upload_s: Option<i64>,
) -> Option<i64> {
    if !user.watches_channel(learned, judge.meta(v).1) {
        return None;
    }
    upload_s.filter(|&up| up >= run_start_s)
}

impl Tally {
    fn new(date: String, day_start_s: i64, run_start_s: i64) -> Self {
        Tally {
            date,
            day_start_s,
            run_start_s,
            ..Tally::default()
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn page(
        &mut self,
        user: &SimUser,
        learned: &mut Learned,
        judge: &dyn Judge,
        served: &[Served],
        at_ms: i64,
        heavy: bool,
    ) {
        let run_start_s = self.run_start_s;
        let c = &mut self.counts;
        let (before_served, before_related) = (c.served, c.related);
        c.refreshes += 1;
        let mut all_new = served.len() == PAGE;
        if served.is_empty() {
            c.empty += 1;
        }
        for s in served {
            let Some(v) = s.key else {
                all_new = false;
                continue;
            };
            c.served += 1;
            c.served_by_reason[s.reason] += 1;
            if user.relates(learned, judge, v) {
                c.related += 1;
                c.related_by_reason[s.reason] += 1;
            } else {
                let topic = judge.meta(v).0;
                if learned.watched.iter().any(|&w| judge.meta(w).0 == topic) {
                    c.unrelated_of_a_watched_topic += 1;
                }
            }
            if !learned.seen.insert(v) {
                all_new = false;
                c.repeats += 1;
            } else if let Some(up) = timed_upload(run_start_s, user, learned, judge, v, s.upload_s)
            {
                self.to_page_s.push((at_ms / 1000 - up) as f64);
            }
            if user.history.contains(&v) || learned.watched.contains(&v) {
                all_new = false;
            }
        }
        if heavy {
            c.heavy[0] += 1;
            c.heavy[1] += u64::from(all_new);
            c.heavy[2] += c.served - before_served;
            c.heavy[3] += c.related - before_related;
            c.heavy[4] += u64::from(served.is_empty());
        }
        if all_new {
            c.full_new += 1;
        }
    }

    /// A warm left these entries in the user's pool at `at_ms`: the uploads of their
    /// channels published during the run are timed, once each per user.
    fn pool(
        &mut self,
        user: &SimUser,
        learned: &mut Learned,
        judge: &dyn Judge,
        served: &[Served],
        at_ms: i64,
    ) {
        let previous_warm_ms = learned.last_warm_ms.replace(at_ms);
        for s in served {
            let Some(v) = s.key else { continue };
            if let Some(up) = timed_upload(self.run_start_s, user, learned, judge, v, s.upload_s)
                && learned.pooled.insert(v)
            {
                self.to_pool_s.push((at_ms / 1000 - up) as f64);
                self.to_pool_channel.push(judge.meta(v).1);
                if previous_warm_ms
                    .is_some_and(|w| w <= up * 1000 && up * 1000 - w <= ACTIVE_SESSION_MS)
                {
                    self.to_pool_active
                        .push((judge.meta(v).1, (at_ms / 1000 - up) as f64));
                }
                if (self.day_start_s..self.day_start_s + DAY_MS / 1000).contains(&up) {
                    self.reached_pool.insert(v);
                }
            }
        }
    }

    /// `--push` figures: what the hub and the manager did, and the uploads' latency to
    /// a watcher's pool split by whether their channel was subscribed at the day's end.
    fn push_summary(
        &self,
        latency: &dyn Fn(&[f64]) -> serde_json::Value,
        day: &fake_youtube::DayUsage,
    ) -> serde_json::Value {
        let Some(subscribed) = &self.subscribed else {
            return serde_json::Value::Null;
        };
        let split = |want: bool| -> Vec<f64> {
            self.to_pool_s
                .iter()
                .zip(&self.to_pool_channel)
                .filter(|(_, c)| subscribed.contains(c) == want)
                .map(|(s, _)| *s)
                .collect()
        };
        let split_active = |want: bool| -> Vec<f64> {
            self.to_pool_active
                .iter()
                .filter(|(c, _)| subscribed.contains(c) == want)
                .map(|(_, s)| *s)
                .collect()
        };
        let c = &self.counts;
        json!({
            "upload_to_pool_in_session_subscribed": latency(&split_active(true)),
            "upload_to_pool_in_session_not_subscribed": latency(&split_active(false)),
            "notifications_delivered": c.push_notifications,
            "forged_notifications_posted": c.push_forged,
            "forged_notifications_acted_on": c.push_forged_acted_on,
            "uploads_hydrated": c.push_hydrated,
            "hydration_units": c.push_hydration_calls,
            // What push was meant to save: polls of channels the hub was pushing (first
            // polls of a back catalogue, a week's silence), beside hydration's units.
            "polls_of_subscribed": day.polls_of_subscribed,
            "subscribed_upload_units": day.polls_of_subscribed + c.push_hydration_calls,
            "watcher_warms_sent": c.push_warms,
            "live_subscriptions_at_end": self.push_live,
            "channels_subscribed_at_end": subscribed.len(),
            "upload_to_pool_subscribed": latency(&split(true)),
            "upload_to_pool_not_subscribed": latency(&split(false)),
        })
    }

    fn usage(&self, fake: &Fake) -> fake_youtube::DayUsage {
        fake.counters()
            .days
            .get(&self.date)
            .cloned()
            .unwrap_or_default()
    }

    fn snapshot(&mut self, fake: &Fake) {
        let usage = self.usage(fake);
        self.hourly.push((self.counts.clone(), usage));
    }

    fn summary(&self, fake: &Fake, users: usize, wall: Duration) -> serde_json::Value {
        let c = fake.counters();
        let day = self.usage(fake);
        let counts = &self.counts;
        let share = |a: u64, b: u64| {
            if b == 0 {
                0.0
            } else {
                round3(a as f64 / b as f64)
            }
        };
        let per_method = |m: &std::collections::BTreeMap<String, fake_youtube::MethodCounters>| {
            m.iter()
                .map(|(k, m)| (k.clone(), json!({"calls": m.calls, "units": m.units})))
                .collect::<serde_json::Map<_, _>>()
        };
        let mut prev = (Counts::default(), fake_youtube::DayUsage::default());
        let hourly: Vec<serde_json::Value> = self
            .hourly
            .iter()
            .enumerate()
            .map(|(h, (c, u))| {
                let (pc, pu) = &prev;
                let refreshes = c.refreshes - pc.refreshes;
                let units_by_method: serde_json::Map<_, _> = u
                    .per_method
                    .iter()
                    .map(|(k, m)| {
                        let before = pu.per_method.get(k).map_or(0, |p| p.units);
                        (k.clone(), json!(m.units - before))
                    })
                    .collect();
                let row = json!({
                    "hour": h + 1,
                    "units": u.units,
                    "searches": u.searches,
                    "refreshes": c.refreshes,
                    "full_new": c.full_new,
                    "hour_refreshes": refreshes,
                    "hour_share_full_new": share(c.full_new - pc.full_new, refreshes),
                    "hour_empty_pages": c.empty - pc.empty,
                    "hour_share_related": share(c.related - pc.related, c.served - pc.served),
                    "hour_heaviest_decile": {
                        "refreshes": c.heavy[0] - pc.heavy[0],
                        "share_full_new": share(c.heavy[1] - pc.heavy[1], c.heavy[0] - pc.heavy[0]),
                        "share_related": share(c.heavy[3] - pc.heavy[3], c.heavy[2] - pc.heavy[2]),
                        "empty_pages": c.heavy[4] - pc.heavy[4],
                    },
                    "hour_units": u.units - pu.units,
                    "hour_searches": u.searches - pu.searches,
                    "hour_units_by_method": units_by_method,
                    "hour_warms": c.warms - pc.warms,
                    "hour_deferrals": c.deferred - pc.deferred,
                    "distinct_playlists_so_far": u.distinct_playlists,
                    "hour_upload_units": upload_units(u, c) - upload_units(pu, pc),
                    "hour_push_warms": c.push_warms - pc.push_warms,
                });
                prev = (c.clone(), u.clone());
                row
            })
            .collect();
        let latency = |v: &[f64]| {
            let mut v = v.to_vec();
            v.sort_by(f64::total_cmp);
            let q = |p: f64| {
                v.get(((v.len() as f64 - 1.0) * p).round() as usize)
                    .map(|s| round1(*s / 60.0))
            };
            json!({"count": v.len(), "median_min": q(0.5), "p90_min": q(0.9)})
        };
        json!({
            "date": self.date,
            "users": users,
            "sign_ins": counts.sign_ins,
            "refreshes": counts.refreshes,
            "units_used": day.units,
            "searches_used": day.searches,
            "quota_refusals": c.quota_violations,
            "rate_refusals": c.rate_violations,
            "youtube_requests": c.requests,
            "per_method": per_method(&day.per_method),
            "distinct_playlists_polled": day.distinct_playlists,
            "share_full_page_never_served": share(counts.full_new, counts.refreshes),
            "share_served_related": share(counts.related, counts.served),
            "heaviest_decile": {
                "refreshes": counts.heavy[0],
                "share_full_new": share(counts.heavy[1], counts.heavy[0]),
                "share_related": share(counts.heavy[3], counts.heavy[2]),
                "empty_pages": counts.heavy[4],
            },
            "related_by_reason": REASONS.iter().enumerate().map(|(i, r)| (r.to_string(), json!({
                "served": counts.served_by_reason[i],
                "related": counts.related_by_reason[i],
                "share_related": share(counts.related_by_reason[i], counts.served_by_reason[i]),
            }))).collect::<serde_json::Map<_, _>>(),
            "unrelated_of_a_watched_topic": counts.unrelated_of_a_watched_topic,
            "videos_served": counts.served,
            "repeats_served": counts.repeats,
            "empty_pages": counts.empty,
            "watches": counts.watches,
            "units_per_1000_users": round1(day.units as f64 * 1000.0 / users.max(1) as f64),
            "cache_statuses": self.statuses,
            "warm_outcomes": self.warm_outcomes,
            "transient_examples": self.transient_examples,
            "mean_warmed_pool": round1(self.warmed_pool_sizes as f64 / self.warm_outcomes.get("warmed").copied().unwrap_or(0).max(1) as f64),
            "upload_to_pool": latency(&self.to_pool_s),
            "upload_to_pool_in_session": latency(&self.to_pool_active.iter().map(|(_, s)| *s).collect::<Vec<_>>()),
            "upload_to_page": latency(&self.to_page_s),
            "upload_units": upload_units(&day, counts),
            "push": self.push_summary(&latency, &day),
            "wall_s": round1(wall.as_secs_f64()),
            "hourly": hourly,
        })
    }
}

/// Units spent keeping uploads fresh: polls of uploads playlists, and (with push) the
/// hydration of pushed uploads.
fn upload_units(usage: &fake_youtube::DayUsage, counts: &Counts) -> u64 {
    usage
        .per_method
        .get("playlistItems.list")
        .map_or(0, |m| m.units)
        + counts.push_hydration_calls
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

fn progress(label: &str, day: usize, hour: usize, t0: Instant, tally: &Tally) {
    let (c, u) = tally.hourly.last().unwrap();
    println!(
        "  [{label}] day {} hour {hour:>2}: {:>6.0} s wall, {:>8} refreshes ({:.1}% full & new, {} empty), {:>5} units, {:>3} searches",
        day + 1,
        t0.elapsed().as_secs_f64(),
        c.refreshes,
        if c.refreshes == 0 {
            0.0
        } else {
            c.full_new as f64 * 100.0 / c.refreshes as f64
        },
        c.empty,
        u.units,
        u.searches,
    );
}

/// A video a page or a pool held, as the judge knows it: worked out in the event's
/// task, so the one task that applies the effects only counts.
#[derive(Clone, Copy)]
struct Served {
    /// `None` for an id the judge's world never made.
    key: Option<u64>,
    /// Why the engine picked it ([`REASONS`]), from the card's reason.
    reason: usize,
    /// When it was uploaded (seconds), where the world says.
    upload_s: Option<i64>,
}

impl Served {
    fn all(judge: &dyn Judge, ids: &[String]) -> Vec<Served> {
        ids.iter()
            .map(|id| {
                let key = judge.key(id);
                Served {
                    key,
                    reason: REASONS.len() - 1,
                    upload_s: key.and_then(|v| judge.upload_secs(v)),
                }
            })
            .collect()
    }

    /// [`Served::all`] for cards whose reasons the engine gave.
    fn picked(judge: &dyn Judge, videos: &[reco_core::domain::Video]) -> Vec<Served> {
        let ids: Vec<String> = videos.iter().map(|v| v.video_id.clone()).collect();
        let mut served = Self::all(judge, &ids);
        for (s, v) in served.iter_mut().zip(videos) {
            s.reason = reason_class(&v.reason);
        }
        served
    }
}

/// The day's heaviest decile: the tenth of the day's users with the most refreshes
/// planned (ties broken by user index).
fn heaviest_decile(plans: &[Option<Plan>]) -> HashSet<u32> {
    let mut by_refreshes: Vec<(usize, u32)> = plans
        .iter()
        .enumerate()
        .filter_map(|(u, p)| {
            p.as_ref()
                .map(|p| (p.gaps.iter().map(Vec::len).sum::<usize>(), u as u32))
        })
        .collect();
    by_refreshes.sort_unstable_by(|a, b| b.cmp(a));
    let n = by_refreshes.len().div_ceil(10);
    by_refreshes.into_iter().take(n).map(|(_, u)| u).collect()
}

/// The engine's reasons for a pick, by the start of its text (`rank::reason`, and the
/// unpooled page's own-channel and chart cards); the last, a card without one.
const REASONS: [&str; 5] = [
    "own channel",
    "like a watched video",
    "trending",
    "popular",
    "unranked",
];

fn reason_class(reason: &str) -> usize {
    if reason.starts_with("from a channel you watch") {
        0
    } else if reason.starts_with("like ") {
        1
    } else if reason.starts_with("trending") {
        2
    } else if reason.starts_with("popular") {
        3
    } else {
        4
    }
}

/// What one event did, applied to the simulation's state when it completes.
enum Effect {
    Push(i64, Ev),
    SignIn,
    Page {
        u: u32,
        served: Vec<Served>,
        status: &'static str,
    },
    Watched {
        u: u32,
        id: String,
    },
    Warm(ItemOutcome),
    /// The user's pool after a warm (only when upload latency is timed).
    Pool {
        u: u32,
        served: Vec<Served>,
    },
    /// One push tick: notifications delivered, the manager's run.
    PushRun {
        delivered: u64,
        hydrated: u64,
        hydration_calls: u64,
        warms_sent: u64,
        live: u64,
        forged: u64,
        forged_acted_on: u64,
    },
}

/// Events run concurrently (as they would on many Lambda instances) while they fall
/// within their allowance of every event still running, at most one per user and
/// [`WINDOW_MAX`] at once: a page may be overtaken by events up to [`WINDOW_MS`] later,
/// a warm by events up to [`WARM_WINDOW_MS`] later, as a real warm takes seconds of
/// YouTube calls while pages go on. A sliding window, not batches: a slow warm holds
/// back only the events beyond its allowance.
const WINDOW_MS: i64 = 2_000;
const WARM_WINDOW_MS: i64 = 10_000;
const WINDOW_MAX: usize = 256;
/// The chance that a user watches one video of a page (recorded through the history
/// endpoint's code path, so their history grows with what they were served).
const WATCH_CHANCE: f64 = 0.4;

/// The real pieces one event runs against, shared by the day's events: each event is
/// a task of its own, so the two workers share them as Lambda instances would.
struct Sim {
    users: Arc<Vec<SimUser>>,
    plans: Arc<Vec<Option<Plan>>>,
    judge: &'static dyn Judge,
    engine: reco_core::engine::Engine,
    /// The API's instances: each refresh lands on one of them, each with its own item
    /// cache (the engine otherwise shared).
    api_instances: Arc<Vec<reco_core::engine::Engine>>,
    warmer: Arc<reco_warmer::Warmer>,
    conn: reco_core::store::RedisConn,
    clock: Arc<SimClock>,
    request: PageRequest,
    seed: u64,
    /// Read the pool after each warm (upload latency), in the procedural world.
    time_uploads: bool,
    push: Option<Arc<PushSim>>,
}

impl Sim {
    /// The user watches one of the page's videos now and then (one of their channels' if
    /// there is one, else the first), recorded as the history endpoint records it.
    async fn watch(&self, u: u32, t: i64, ids: &[String]) -> Option<Effect> {
        let user = &self.users[u as usize];
        let mut rng = SplitMix::new(
            self.seed ^ 0x3A7C ^ (u64::from(u) << 20) ^ (t as u64).wrapping_mul(0x9E37_79B9),
        );
        if ids.is_empty() || rng.f64() >= WATCH_CHANCE {
            return None;
        }
        let id = ids
            .iter()
            .find(|id| {
                self.judge
                    .key(id)
                    .is_some_and(|v| user.channels.contains(&self.judge.meta(v).1))
            })
            .unwrap_or(&ids[0])
            .clone();
        let event = reco_core::WatchEvent {
            video_id: id.clone(),
            watched_at: None,
            watch_seconds: Some(240),
        };
        patiently("record a watch", || {
            self.engine
                .history
                .record(&user.id, std::slice::from_ref(&event), t)
        })
        .await;
        Some(Effect::Watched { u, id })
    }

    fn plan(&self, u: u32) -> &Plan {
        self.plans[u as usize]
            .as_ref()
            .expect("events only for users who come today")
    }

    async fn step(&self, t: i64, ev: Ev, warm_seq: u64) -> Vec<Effect> {
        let mut effects = Vec::new();
        let engine = &self.engine;
        match ev {
            Ev::SignIn { u, s } => {
                let user = &self.users[u as usize];
                let plan = self.plan(u);
                effects.push(Effect::SignIn);
                if s == 0 && plan.first_sign_in {
                    let events: Vec<reco_core::WatchEvent> = user
                        .history
                        .iter()
                        .map(|&v| reco_core::WatchEvent {
                            video_id: self.judge.video_id(v),
                            watched_at: None,
                            watch_seconds: Some(300),
                        })
                        .collect();
                    patiently("record history", || {
                        engine.history.record(&user.id, &events, t)
                    })
                    .await;
                }
                // The login function: claim the warm unless a fresh, full pool exists.
                if patiently("claim warm", || engine.pool.claim_warm(&user.id)).await {
                    effects.push(Effect::Push(
                        t + SQS_HOP_MS,
                        Ev::Warm {
                            u,
                            reason: WarmReason::SignIn as u8,
                        },
                    ));
                }
                let first = plan.gaps[s as usize][0];
                effects.push(Effect::Push(
                    t + i64::from(first),
                    Ev::Refresh { u, s, k: 0 },
                ));
            }
            Ev::Refresh { u, s, k } => {
                let user = &self.users[u as usize];
                let plan = self.plan(u);
                let instance = &self.api_instances
                    [(u as usize * 31 + s as usize * 7 + k as usize) % self.api_instances.len()];
                let page =
                    patiently("take page", || instance.take_page(&user.id, &self.request)).await;
                let (served, ids, status): (Vec<Served>, Vec<String>, &'static str) = if page
                    .generated_at_ms
                    .is_none()
                    || page.videos.is_empty()
                {
                    // The API's unpooled path (no pool yet, or read to the end): the
                    // cached uploads of the user's channels, then the region's chart
                    // from the shared cache, chosen and marked served by the same
                    // script.
                    let chart = engine
                        .sources
                        .cached_chart(&engine.region)
                        .await
                        .unwrap_or_default();
                    let candidates = patiently("unpooled candidates", || {
                        engine.unpooled_candidates(&user.id, chart.clone())
                    })
                    .await;
                    let picked = patiently("serve unpooled", || {
                        engine
                            .pool
                            .serve_unpooled(&user.id, candidates.clone(), &self.request)
                    })
                    .await;
                    if picked.is_empty() {
                        // Why a page is empty: the console's record, for the report.
                        let own = candidates.iter().filter(|v| !v.trending).count();
                        eprintln!(
                            "    empty page: {} at {} s of the UTC day, {} candidates outside the pool ({own} of the user's channels), pool generated {:?}",
                            user.id,
                            t / 1000 % 86_400,
                            candidates.len(),
                            page.generated_at_ms.map(|g| (t - g) / 1000),
                        );
                    }
                    let ids: Vec<String> = picked.iter().map(|v| v.video_id.clone()).collect();
                    let status = if page.generated_at_ms.is_none() {
                        "miss"
                    } else {
                        "stale"
                    };
                    (Served::picked(self.judge, &picked), ids, status)
                } else {
                    let status = if page.stale
                        || page.pool_remaining < reco_core::engine::pool::LOW_WATERMARK
                    {
                        "stale"
                    } else {
                        "hit"
                    };
                    (
                        Served::picked(self.judge, &page.videos),
                        page.videos.iter().map(|v| v.video_id.clone()).collect(),
                        status,
                    )
                };
                let watch = self.watch(u, t, &ids).await;
                effects.push(Effect::Page { u, served, status });
                effects.extend(watch);
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
                let session = &plan.sessions[s as usize];
                if k + 1 < session.refreshes {
                    let gap =
                        plan.gaps[s as usize][k as usize + 1] - plan.gaps[s as usize][k as usize];
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
                let next = self.plan(u).sessions.get(s as usize + 1).map(|n| n.start);
                let mut conn = self.conn.clone();
                // Memory only: a pool left for longer than its freshness is rebuilt at the
                // next sign-in anyway (claim_warm), so it is dropped here, as a warm
                // replaces it (the cut's shown ids marked served, the rest given back).
                // The served marks and the history stay: they carry over to later days.
                if next.is_none_or(|n| n - t > FRESH_MS) {
                    // Patiently: on a loaded host a reply can come later than the
                    // connection's 500 ms, and this is the simulator's own bookkeeping.
                    let mut attempt = 0;
                    loop {
                        let dropped = async {
                            engine.pool.replace(&user.id, &[]).await?;
                            redis::cmd("DEL")
                                .arg(keys::feed(&user.id))
                                .arg(keys::cut(&user.id))
                                .arg(keys::pool_meta(&user.id))
                                .query_async::<()>(&mut conn)
                                .await
                                .map_err(reco_core::store::StoreError::from)
                        }
                        .await;
                        match dropped {
                            Ok(()) => break,
                            Err(e) if attempt < 5 => {
                                attempt += 1;
                                eprintln!(
                                    "    dropping {}'s pool: {e}; again ({attempt})",
                                    user.id
                                );
                                tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
                            }
                            Err(e) => panic!("drop the pool: {e}"),
                        }
                    }
                }
                if let Some(n) = next {
                    effects.push(Effect::Push(n, Ev::SignIn { u, s: s + 1 }));
                }
            }
            Ev::PushTick => {
                let push = self.push.as_ref().expect("push ticks only with --push");
                let delivery = push.fake.hub_deliver().await;
                // A run whose only failures are Redis timeouts of the simulator's busy host
                // is run again, as the scheduled function's next run would; any other
                // failure is the product's and stops the simulation.
                let run = patiently("push manager", || async {
                    let run = push.manager.run().await.map_err(|e| e.to_string())?;
                    if !run.failures.is_empty()
                        && run.failures.iter().all(|f| f.contains("timed out"))
                    {
                        return Err(format!("{:?}", run.failures));
                    }
                    Ok(run)
                })
                .await;
                assert!(run.failures.is_empty(), "push manager: {:?}", run.failures);
                let bodies = std::mem::take(&mut *push.warm_bodies.lock().expect("warm bodies"));
                for body in bodies {
                    let request = WarmRequest::parse(&body).expect("the manager's warm request");
                    if let Some(u) = request
                        .user_id
                        .as_str()
                        .strip_prefix("sim-")
                        .and_then(|i| i.parse::<u32>().ok())
                        .filter(|&u| (u as usize) < self.users.len())
                    {
                        effects.push(Effect::Push(
                            t + SQS_HOP_MS,
                            Ev::Warm {
                                u,
                                reason: WarmReason::NewUploads as u8,
                            },
                        ));
                    }
                }
                // Once an hour an impostor posts forgeries of a new upload to a live
                // subscription's callback: unsigned, signed with a guessed secret, and
                // tampered after signing. None may change anything.
                let (mut forged, mut forged_acted_on) = (0, 0);
                if (t / PUSH_TICK_MS) % 60 == 30 {
                    let mut conn = self.conn.clone();
                    let live: Vec<String> = redis::cmd("ZRANGEBYSCORE")
                        .arg(keys::push_leases())
                        .arg(t)
                        .arg("+inf")
                        .arg("LIMIT")
                        .arg(0)
                        .arg(1)
                        .query_async(&mut conn)
                        .await
                        .expect("a live lease");
                    if let Some(channel) = live.first() {
                        for (k, forgery) in [
                            fake_youtube::Forgery::Unsigned,
                            fake_youtube::Forgery::WrongSecret,
                            fake_youtube::Forgery::Tampered,
                        ]
                        .into_iter()
                        .enumerate()
                        {
                            let id = format!("zz{:09}", (t / 1000 * 3 + k as i64) % 1_000_000_000);
                            if push
                                .fake
                                .hub_impostor(channel, &id, forgery)
                                .await
                                .is_some()
                            {
                                forged += 1;
                                let seen: bool = redis::cmd("EXISTS")
                                    .arg(keys::push_seen(&id))
                                    .query_async(&mut conn)
                                    .await
                                    .expect("EXISTS");
                                forged_acted_on += u64::from(seen);
                            }
                        }
                    }
                }
                effects.push(Effect::PushRun {
                    delivered: delivery.delivered,
                    hydrated: run.hydration.hydrated as u64,
                    hydration_calls: run.hydration.calls as u64,
                    warms_sent: run.fan_out.warms_sent as u64,
                    live: run.live,
                    forged,
                    forged_acted_on,
                });
                effects.push(Effect::Push(t + PUSH_TICK_MS, Ev::PushTick));
            }
            Ev::Warm { u, reason } => {
                let user = &self.users[u as usize];
                let reason = match reason {
                    r if r == WarmReason::SignIn as u8 => WarmReason::SignIn,
                    r if r == WarmReason::Deferred as u8 => WarmReason::Deferred,
                    r if r == WarmReason::PoolMissing as u8 => WarmReason::PoolMissing,
                    r if r == WarmReason::PoolStale as u8 => WarmReason::PoolStale,
                    r if r == WarmReason::NewUploads as u8 => WarmReason::NewUploads,
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
                    if self.time_uploads && matches!(outcome, ItemOutcome::Warmed(_)) {
                        let ids: Vec<String> = pool_entries_patiently(&engine.pool, &user.id)
                            .await
                            .iter()
                            .map(|e| e.video_id().to_owned())
                            .collect();
                        effects.push(Effect::Pool {
                            u,
                            served: Served::all(self.judge, &ids),
                        });
                    }
                    effects.push(Effect::Warm(outcome));
                }
            }
        }
        effects
    }
}

impl Ev {
    /// How much later an event may be that overtakes this one (see [`WINDOW_MS`]).
    fn allowance_ms(&self) -> i64 {
        match self {
            Ev::Warm { .. } => WARM_WINDOW_MS,
            _ => WINDOW_MS,
        }
    }

    fn user(&self) -> u32 {
        match *self {
            Ev::SignIn { u, .. }
            | Ev::Refresh { u, .. }
            | Ev::SessionEnd { u, .. }
            | Ev::Warm { u, .. } => u,
            Ev::PushTick => NO_USER,
        }
    }
}

/// The users of a run and who comes on which day: the corpus's (all on its one day) or
/// the procedural world's population (churn, sign-ups, activity).
struct Population {
    users: Vec<SimUser>,
    learned: Vec<Learned>,
    /// The corpus's users come with their one day planned.
    corpus_plans: Option<Vec<Plan>>,
    world: Option<World>,
    seed: u64,
    /// The starting population (sign-ups per day are a share of it).
    initial: u32,
}

impl Population {
    /// The day's plans (one per user, `None` for those who do not come), after adding
    /// the day's sign-ups.
    fn plan_day(&mut self, day: u16, day_start: i64) -> Vec<Option<Plan>> {
        if let Some(plans) = self.corpus_plans.take() {
            assert_eq!(day, 0, "the corpus's users have one day");
            self.learned.iter_mut().for_each(|l| l.signed_in = true);
            return plans.into_iter().map(Some).collect();
        }
        let world = self.world.as_ref().expect("a world or a corpus");
        if day > 0 {
            let signups = (f64::from(self.initial) * SIGNUPS_PER_DAY).round() as u32;
            for _ in 0..signups {
                let i = self.users.len() as u32;
                self.users
                    .push(make_world_user(world, i, self.seed, day, day_start));
                self.learned.push(Learned::default());
            }
        }
        let plans = self.plans(day, day_start, |_, learned| !learned.signed_in);
        for (learned, plan) in self.learned.iter_mut().zip(&plans) {
            learned.signed_in |= plan.is_some();
        }
        plans
    }

    /// The day's plans of the users as they are (no sign-ups added); `first_sign_in`
    /// says whose (by index) first sign-in ever it is.
    fn plans(
        &self,
        day: u16,
        day_start: i64,
        first_sign_in: impl Fn(u32, &Learned) -> bool,
    ) -> Vec<Option<Plan>> {
        self.users
            .iter()
            .zip(&self.learned)
            .enumerate()
            .map(|(u, (user, learned))| {
                let mut plan = plan_day(user, u as u32, self.seed, day, day_start)?;
                plan.first_sign_in = first_sign_in(u as u32, learned);
                Some(plan)
            })
            .collect()
    }

    /// The world's population as a checkpoint left it: each user is remade from the seed
    /// and the day they joined; what was learned about them is the checkpoint's.
    fn restore(&mut self, joined: &[u16], learned: Vec<Learned>, run_start: i64) {
        let world = self.world.as_ref().expect("checkpoints are of world runs");
        self.users = joined
            .iter()
            .enumerate()
            .map(|(i, &day)| {
                make_world_user(
                    world,
                    i as u32,
                    self.seed,
                    day,
                    run_start + i64::from(day) * DAY_MS,
                )
            })
            .collect();
        self.learned = learned;
    }
}

/// What a run is: enough to start it again from a checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RunArgs {
    users: usize,
    seed: u64,
    world_channels: u32,
    days: u16,
    file: String,
    #[serde(default)]
    push: bool,
}

/// A run's whole state at the end of a simulated hour, when no event is running: the
/// simulation's own record here, Redis in the RDB file it names (saved at the same
/// instant), the fake's meter, and the clock. The world and the users are remade from
/// the seed. Lost on resume, as in a cold start of every Lambda instance: the API
/// instances' item caches and last good pages.
#[derive(Serialize, Deserialize)]
struct Checkpoint {
    args: RunArgs,
    day: u16,
    next_hour: i64,
    clock_ms: i64,
    heap: Vec<(i64, u64, Ev)>,
    seq: u64,
    warm_seq: u64,
    /// The day's tally so far; `None` when the checkpoint is of a day not yet begun.
    tally: Option<Tally>,
    done: Vec<Tally>,
    day_summaries: Vec<serde_json::Value>,
    joined: Vec<u16>,
    learned: Vec<Learned>,
    /// Users whose first sign-in ever is planned for the checkpoint's day.
    first_sign_in_today: Vec<u32>,
    meter: fake_youtube::MeterState,
    /// The fake hub's subscriptions (`--push`): without them a resumed hub would push
    /// nothing to channels the product still trusts as pushed.
    #[serde(default)]
    hub: fake_youtube::HubState,
    deferrals_sent: u64,
    redis_file: String,
    wall_s: f64,
}

const CHECKPOINT_FILE: &str = "checkpoint.json";

impl Checkpoint {
    fn read(dir: &std::path::Path) -> Checkpoint {
        let path = dir.join(CHECKPOINT_FILE);
        let file = std::fs::File::open(&path)
            .unwrap_or_else(|e| panic!("cannot read the checkpoint {}: {e}", path.display()));
        serde_json::from_reader(std::io::BufReader::new(file))
            .unwrap_or_else(|e| panic!("{} is not a checkpoint: {e}", path.display()))
    }

    /// Written as pending: it is moved into place by [`Checkpoints::commit`] once
    /// Redis's background save of the same instant has finished.
    fn write_pending(&self, dir: &std::path::Path) {
        let bytes = serde_json::to_vec(self).expect("serialise the checkpoint");
        std::fs::write(dir.join(PENDING_FILE), bytes).expect("write the checkpoint");
    }
}

const PENDING_FILE: &str = "checkpoint.json.pending";

/// Polls `INFO persistence` until it has the line `field` (a line of its own:
/// `async_loading:0` is there while `loading` is 1); returns that INFO and the wait.
fn wait_for_persistence(redis: &RedisServer, field: &str) -> (String, Duration) {
    let started = Instant::now();
    tokio::task::block_in_place(|| {
        let mut conn = redis.client().get_connection().expect("connect to Redis");
        loop {
            let info: String = redis::cmd("INFO")
                .arg("persistence")
                .query(&mut conn)
                .expect("INFO persistence");
            if info.lines().any(|line| line.trim() == field) {
                return (info, started.elapsed());
            }
            assert!(
                started.elapsed() < Duration::from_secs(600),
                "Redis has not reached {field} after 10 minutes"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    })
}

/// Waits while Redis loads a checkpoint's file: it accepts connections at once but
/// answers `LOADING` until the whole dataset is in memory (seconds for a week's).
fn wait_until_loaded(redis: &RedisServer) {
    let (_, waited) = wait_for_persistence(redis, "loading:0");
    println!(
        "Redis loaded the checkpoint in {:.1} s",
        waited.as_secs_f64()
    );
}

/// A run's checkpoints: each one's Redis file is saved in the background (`BGSAVE`, a
/// fork's snapshot of the instant the simulation paused), and the checkpoint becomes
/// the one a resume reads only when that save is complete, at the next checkpoint or
/// the run's end. A run killed in between leaves the previous checkpoint whole.
struct Checkpoints {
    dir: std::path::PathBuf,
    /// The Redis file of the checkpoint in place, and of the pending one.
    committed: Option<String>,
    pending: Option<String>,
}

impl Checkpoints {
    /// Snapshots Redis now and writes the simulation's record as pending, after
    /// committing the previous checkpoint.
    fn take(&mut self, redis: &RedisServer, checkpoint: &Checkpoint) {
        self.commit(redis);
        let mut conn = redis.client().get_connection().expect("connect to save");
        let _: String = redis::cmd("BGSAVE").query(&mut conn).expect("BGSAVE");
        checkpoint.write_pending(&self.dir);
        self.pending = Some(checkpoint.redis_file.clone());
    }

    /// Waits for the pending checkpoint's save, names its file, and moves it in place.
    fn commit(&mut self, redis: &RedisServer) {
        let Some(name) = self.pending.take() else {
            return;
        };
        let (info, _) = wait_for_persistence(redis, "rdb_bgsave_in_progress:0");
        assert!(
            info.lines()
                .any(|l| l.trim() == "rdb_last_bgsave_status:ok"),
            "Redis's background save failed: {info}"
        );
        std::fs::rename(self.dir.join(REDIS_DUMP), self.dir.join(&name))
            .expect("name the Redis file");
        std::fs::rename(self.dir.join(PENDING_FILE), self.dir.join(CHECKPOINT_FILE))
            .expect("move the checkpoint in place");
        if let Some(old) = self
            .committed
            .replace(name.clone())
            .filter(|old| *old != name)
        {
            let _ = std::fs::remove_file(self.dir.join(old));
        }
    }
}

/// A run's figures: one tally per simulated day.
struct RunResult {
    summary: serde_json::Value,
    days: Vec<Tally>,
}

/// Where a run's checkpoints go, and the run they are of.
struct Checkpointing {
    dir: std::path::PathBuf,
    args: RunArgs,
}

/// Our design over `days` days; writes `<file>-ours-partial.json` at the end of every
/// simulated hour, so a run cut short still leaves its figures so far, and a checkpoint
/// when `checkpoints` says where. `resume` continues from one.
#[allow(clippy::too_many_arguments)]
async fn run_ours(
    population: &mut Population,
    judge: &'static dyn Judge,
    fake_config: FakeConfig,
    run_start: i64,
    days: u16,
    file: &str,
    checkpoints: Option<&Checkpointing>,
    resume: Option<Checkpoint>,
    push: bool,
) -> RunResult {
    // Redis works in the checkpoint directory: its saves land there, and a resumed run
    // starts from the checkpoint's file.
    // A copy of the checkpoint's file: the server's own saves replace `dump.rdb`, never
    // a checkpoint's file, which stays whole until a newer checkpoint is in place.
    let env = match checkpoints {
        Some(cp) => {
            if let Some(c) = &resume {
                std::fs::copy(cp.dir.join(&c.redis_file), cp.dir.join(REDIS_DUMP))
                    .expect("copy the checkpoint's Redis file");
            } else {
                let _ = std::fs::remove_file(cp.dir.join(REDIS_DUMP));
            }
            let dir = cp.dir.to_str().expect("a UTF-8 checkpoint path");
            // Uncompressed: the hourly background save of a week's gigabytes is a fork
            // working beside the simulation on the same two cores; without LZF it takes
            // less of them (the file is larger, and disk is not what is short).
            TestEnv::start_with_redis_args(
                fake_config,
                &[
                    "--dir",
                    dir,
                    "--dbfilename",
                    REDIS_DUMP,
                    "--rdbcompression",
                    "no",
                ],
            )
            .await
        }
        None => TestEnv::start_with(fake_config).await,
    };
    if resume.is_some() {
        wait_until_loaded(&env.redis);
    }
    let clock = Arc::new(SimClock::new(
        resume.as_ref().map_or(run_start, |c| c.clock_ms),
    ));
    if let Some(c) = &resume {
        env.fake.set_clock(clock.now());
        env.fake.restore_meter(c.meter.clone());
    }
    // Production's quota guard timeout (the harness lengthens it for loaded test runs).
    // `YOUTUBE_DAY_PACING=off` in the environment measures the engine without the day's
    // pace and the evening release, for the A/B.
    let pacing = std::env::var("YOUTUBE_DAY_PACING").unwrap_or_else(|_| "on".into());
    let config = config_with(
        &env,
        &[
            ("YOUTUBE_QUOTA_TIMEOUT_MS", "200"),
            ("YOUTUBE_DAY_PACING", pacing.as_str()),
        ],
    );
    let apps = Apps::build_with(&env, config, Some(clock.clone()), AuthMode::None).await;
    let (sink_url, deferrals_sent, warm_bodies) = deferral_sink().await;
    let queue = reco_core::queue::WarmQueue::new(
        reco_core::queue::sqs_client_with(Some(&sink_url), Some(Duration::from_secs(5))).await,
        format!("{sink_url}/123456789012/reco-warm-sim"),
        Duration::from_secs(5),
    );
    let warmer = Arc::new(reco_warmer::Warmer::new(&apps.services, queue.clone()));
    // `--push`: the callback behind a local HTTP API, the manager on the simulation's
    // clock, the fake's hub delivering the world's uploads.
    let push_sim = if push {
        let secrets = || {
            reco_core::push::secrets::PushSecretSource::Plain(
                reco_core::push::signature::PushSecrets::new(SIM_PUSH_SECRET)
                    .expect("a long enough secret"),
            )
        };
        let callback = Arc::new(reco_push::Callback {
            redis: apps.services.redis.clone(),
            secrets: secrets(),
            clock: clock.clone(),
        });
        let base = push_callback_server(callback).await;
        if let Some(c) = &resume {
            env.fake.restore_hub(c.hub.clone(), &base);
            println!("the hub goes on with {} subscriptions", c.hub.len());
        }
        let settings = reco_core::push::manager::ManagerSettings {
            hub_url: env.fake.hub_url(),
            callback_base: format!("{base}/push/v1/youtube"),
            max_subscriptions: 20_000,
            lease_secs: 432_000,
            hub_requests_per_run: 100,
            hydrate_max_wait_ms: 300_000,
        };
        Some(Arc::new(PushSim {
            fake: env.fake.clone(),
            manager: reco_core::push::manager::Manager {
                redis: apps.services.redis.clone(),
                sources: apps.services.engine.sources.clone(),
                pool: apps.services.engine.pool.clone(),
                queue,
                hub: reco_core::push::manager::Hub::new(secrets(), settings)
                    .expect("the hub client"),
                clock: clock.clone(),
                demand: Default::default(),
            },
            warm_bodies,
        }))
    } else {
        None
    };
    let api_instances: Arc<Vec<reco_core::engine::Engine>> = (0..API_INSTANCES)
        .map(|_| {
            let mut engine = apps.services.engine.clone();
            engine.catalog = reco_core::engine::Catalog::for_function_memory_mb(
                apps.services.redis.clone(),
                API_MEMORY_MB,
            );
            engine
        })
        .collect::<Vec<_>>()
        .into();
    let t0 = Instant::now();
    let mut heap: BinaryHeap<Reverse<(i64, u64, Ev)>> = BinaryHeap::new();
    let mut seq = 0u64;
    let mut warm_seq = 0u64;
    let mut tallies: Vec<Tally> = Vec::new();
    let mut day_summaries: Vec<serde_json::Value> = Vec::new();
    let mut wall_before = 0.0;
    let mut first_day = 0;
    // A resumed day: its plans, events and tally as the checkpoint left them.
    let mut resumed: Option<(Vec<Option<Plan>>, Tally, i64)> = None;
    let mut saving = Checkpoints {
        dir: checkpoints.map_or_else(Default::default, |cp| cp.dir.clone()),
        committed: resume.as_ref().map(|c| c.redis_file.clone()),
        pending: None,
    };
    if let Some(c) = resume {
        population.restore(&c.joined, c.learned, run_start);
        let day_start = run_start + i64::from(c.day) * DAY_MS;
        heap.extend(c.heap.into_iter().map(Reverse));
        (seq, warm_seq) = (c.seq, c.warm_seq);
        tallies = c.done;
        day_summaries = c.day_summaries;
        wall_before = c.wall_s;
        first_day = c.day;
        deferrals_sent.store(c.deferrals_sent, Ordering::Relaxed);
        println!(
            "resumed from {} at day {} hour {} (after {:.0} s of earlier runs)",
            checkpoints.map_or(String::new(), |cp| cp.dir.display().to_string()),
            c.day + 1,
            c.tally.as_ref().map_or(0, |t| t.hourly.len()),
            c.wall_s
        );
        if let Some(tally) = c.tally {
            let today: HashSet<u32> = c.first_sign_in_today.iter().copied().collect();
            let plans = population.plans(c.day, day_start, |u, _| today.contains(&u));
            resumed = Some((plans, tally, c.next_hour));
        }
    }
    let wall = |t0: Instant| wall_before + t0.elapsed().as_secs_f64();
    for day in first_day..days {
        let day_start = run_start + i64::from(day) * DAY_MS;
        let day_end = day_start + DAY_MS;
        let (plans, mut tally, mut next_hour) = match resumed.take() {
            Some(r) => r,
            None => {
                let plans = population.plan_day(day, day_start);
                // Only deferred warms outlive their day (sessions end within it); the rest
                // of yesterday's events would refer to yesterday's plans.
                heap.retain(|Reverse((_, _, ev))| matches!(ev, Ev::Warm { .. }));
                if push_sim.is_some() {
                    seq += 1;
                    heap.push(Reverse((day_start + PUSH_TICK_MS, seq, Ev::PushTick)));
                }
                for (u, plan) in plans.iter().enumerate() {
                    if let Some(first) = plan.as_ref().and_then(|p| p.sessions.first()) {
                        seq += 1;
                        heap.push(Reverse((
                            first.start,
                            seq,
                            Ev::SignIn { u: u as u32, s: 0 },
                        )));
                    }
                }
                let date = reco_core::clock::pacific_date(
                    jiff::Timestamp::from_millisecond(day_start).unwrap(),
                );
                (
                    plans,
                    Tally::new(date, day_start / 1000, run_start / 1000),
                    day_start + HOUR_MS,
                )
            }
        };
        let active = plans.iter().filter(|p| p.is_some()).count();
        let heavy = heaviest_decile(&plans);
        println!(
            "\n[ours] day {} ({}): {active} users come",
            day + 1,
            tally.date
        );
        // The day's users are the tasks' while it runs, and the population's again after.
        let users = Arc::new(std::mem::take(&mut population.users));
        let plans = Arc::new(plans);
        let sim = Arc::new(Sim {
            users: users.clone(),
            plans: plans.clone(),
            judge,
            engine: apps.services.engine.clone(),
            api_instances: api_instances.clone(),
            warmer: warmer.clone(),
            conn: apps.services.redis.clone(),
            clock: clock.clone(),
            request: PageRequest {
                max_results: PAGE,
                category_id: None,
                include_trending: true,
            },
            seed: population.seed,
            time_uploads: population.world.is_some(),
            push: push_sim.clone(),
        });
        let learned = &mut population.learned;
        let mut next_tick = next_hour - HOUR_MS + TICK_MS;
        let mut in_flight = futures_util::stream::FuturesUnordered::new();
        // Until when each event in flight may be overtaken (a multiset), and their users.
        let mut running: std::collections::BTreeMap<(i64, u64), ()> = Default::default();
        let mut busy: HashSet<u32> = HashSet::new();
        let mut held: Vec<Reverse<(i64, u64, Ev)>> = Vec::new();
        loop {
            // Start what the window allows.
            while in_flight.len() < WINDOW_MAX {
                let Some(Reverse((t, _, _))) = heap.peek() else {
                    break;
                };
                let t = *t;
                let horizon = running.keys().next().map_or(i64::MAX, |k| k.0);
                if t >= horizon || t >= next_hour || t >= day_end {
                    break;
                }
                let Reverse((t, s, ev)) = heap.pop().unwrap();
                if !busy.insert(ev.user()) {
                    held.push(Reverse((t, s, ev)));
                    continue;
                }
                running.insert((t + ev.allowance_ms(), s), ());
                let now = clock.advance_to(t);
                env.fake.set_clock(clock.now());
                warm_seq += 1;
                let step = tokio::spawn({
                    let (sim, warm_seq) = (sim.clone(), warm_seq);
                    async move { sim.step(now.max(t), ev, warm_seq).await }
                });
                in_flight.push(async move { ((t, s, ev), step.await.expect("an event's task")) });
            }
            heap.extend(held.drain(..));
            if in_flight.is_empty() {
                // Quiet: the hour (or the day) is over, or nothing is left.
                let next = heap.peek().map(|Reverse((t, _, _))| *t);
                if next.is_some_and(|t| t < next_hour && t < day_end) {
                    continue;
                }
                while next_tick <= next.unwrap_or(i64::MAX).min(next_hour) && next_tick < day_end {
                    next_tick += TICK_MS;
                }
                if next_hour > day_end {
                    break;
                }
                clock.advance_to(next_hour);
                tally.snapshot(&env.fake);
                progress("ours", usize::from(day), tally.hourly.len(), t0, &tally);
                if tally.hourly.len() == CENSUS_HOUR {
                    let census = reco_bench::memory_census(&apps.services.redis).await;
                    eprintln!("    [ours] memory at {CENSUS_HOUR}:00: {census}");
                    tally.census = Some(census);
                }
                next_hour += HOUR_MS;
                let mut partial = json!({
                    "days_done": day_summaries,
                    "day": tally.summary(&env.fake, active, Duration::from_secs_f64(wall(t0))),
                    "simulated_hours": i64::from(day) * 24 + tally.hourly.len() as i64,
                });
                partial["wall_s"] = json!(round1(wall(t0)));
                write_json(&format!("{file}-ours-partial"), &partial);
                // The day's last hour is checkpointed as the next day not yet begun, below.
                if let Some(cp) = checkpoints
                    && next_hour <= day_end
                {
                    let saved = Instant::now();
                    let name = format!("redis-day{}-hour{}.rdb", day + 1, tally.hourly.len());
                    let first_today: Vec<u32> = plans
                        .iter()
                        .enumerate()
                        .filter(|(_, p)| p.as_ref().is_some_and(|p| p.first_sign_in))
                        .map(|(u, _)| u as u32)
                        .collect();
                    let checkpoint = Checkpoint {
                        args: cp.args.clone(),
                        day,
                        next_hour,
                        clock_ms: clock.now().as_millisecond(),
                        heap: heap.iter().map(|Reverse(e)| *e).collect(),
                        seq,
                        warm_seq,
                        tally: Some(std::mem::take(&mut tally)),
                        done: std::mem::take(&mut tallies),
                        day_summaries: day_summaries.clone(),
                        joined: users.iter().map(|u| u.joined).collect(),
                        learned: std::mem::take(learned),
                        first_sign_in_today: first_today,
                        meter: env.fake.meter_state(),
                        hub: env.fake.hub_state(),
                        deferrals_sent: deferrals_sent.load(Ordering::Relaxed),
                        redis_file: name,
                        wall_s: wall(t0),
                    };
                    saving.take(&env.redis, &checkpoint);
                    tally = checkpoint.tally.expect("just put");
                    tallies = checkpoint.done;
                    *learned = checkpoint.learned;
                    eprintln!(
                        "    [ours] checkpoint at day {} hour {}: {:.1} s",
                        day + 1,
                        tally.hourly.len(),
                        saved.elapsed().as_secs_f64()
                    );
                }
                continue;
            }
            let Some(((t, s, ev), effects)) = in_flight.next().await else {
                unreachable!()
            };
            running.remove(&(t + ev.allowance_ms(), s));
            busy.remove(&ev.user());
            while t >= next_tick && next_tick < day_end {
                eprintln!(
                    "    [ours] day {} {:>5.2} h: {:>6.0} s wall, {} refreshes ({:.1}% full & new), {} units, warms {:?}",
                    day + 1,
                    (next_tick - day_start) as f64 / HOUR_MS as f64,
                    t0.elapsed().as_secs_f64(),
                    tally.counts.refreshes,
                    tally.counts.full_new as f64 * 100.0 / tally.counts.refreshes.max(1) as f64,
                    tally.usage(&env.fake).units,
                    tally.warm_outcomes
                );
                next_tick += TICK_MS;
            }
            for effect in effects {
                match effect {
                    Effect::Push(at, ev) => {
                        seq += 1;
                        heap.push(Reverse((at, seq, ev)));
                    }
                    Effect::SignIn => tally.counts.sign_ins += 1,
                    Effect::Page { u, served, status } => {
                        *tally.statuses.entry(status.to_owned()).or_default() += 1;
                        tally.page(
                            &users[u as usize],
                            &mut learned[u as usize],
                            judge,
                            &served,
                            t,
                            heavy.contains(&u),
                        );
                    }
                    Effect::Watched { u, id } => {
                        tally.counts.watches += 1;
                        if let Some(v) = judge.key(&id) {
                            let l = &mut learned[u as usize];
                            l.watched.push(v);
                            let channel = judge.meta(v).1;
                            if !users[u as usize].channels.contains(&channel)
                                && !l.channels.contains(&channel)
                            {
                                l.channels.push(channel);
                            }
                        }
                    }
                    Effect::Pool { u, served } => tally.pool(
                        &users[u as usize],
                        &mut learned[u as usize],
                        judge,
                        &served,
                        t,
                    ),
                    Effect::PushRun {
                        delivered,
                        hydrated,
                        hydration_calls,
                        warms_sent,
                        live,
                        forged,
                        forged_acted_on,
                    } => {
                        let c = &mut tally.counts;
                        c.push_forged += forged;
                        c.push_forged_acted_on += forged_acted_on;
                        c.push_notifications += delivered;
                        c.push_hydrated += hydrated;
                        c.push_hydration_calls += hydration_calls;
                        c.push_warms += warms_sent;
                        tally.push_live = live;
                    }
                    Effect::Warm(outcome) => {
                        tally.counts.warms += 1;
                        *tally
                            .warm_outcomes
                            .entry(outcome.kind().to_owned())
                            .or_default() += 1;
                        match outcome {
                            ItemOutcome::Warmed(w) => {
                                tally.warmed_pool_sizes += w.pool_size as u64;
                            }
                            ItemOutcome::Deferred { .. } => tally.counts.deferred += 1,
                            ItemOutcome::Transient(e) | ItemOutcome::Poison(e)
                                if tally.transient_examples.len() < 5 =>
                            {
                                tally.transient_examples.push(e);
                            }
                            _ => {}
                        }
                    }
                }
            }
        }
        drop(in_flight);
        drop(sim);
        population.users = Arc::try_unwrap(users)
            .ok()
            .expect("the day's tasks are done with its users");
        // Events left for later days are the day's spill (deferred warms); sessions end
        // within their day.
        if push_sim.is_some()
            && let Some(world) = &population.world
        {
            let mut conn = apps.services.redis.clone();
            let live: Vec<String> = redis::cmd("ZRANGEBYSCORE")
                .arg(keys::push_leases())
                .arg(clock.now().as_millisecond())
                .arg("+inf")
                .query_async(&mut conn)
                .await
                .expect("the live leases");
            tally.subscribed = Some(live.iter().filter_map(|c| world.channel_rank(c)).collect());
        }
        let mut summary = tally.summary(&env.fake, active, Duration::from_secs_f64(wall(t0)));
        summary["redis_memory_at_census_hour"] =
            json!({"hour": CENSUS_HOUR, "census": tally.census});
        if let Some(world) = &population.world {
            summary["uploads_of_watched_channels"] = watched_uploads(
                world,
                &population.users,
                &plans,
                &population.learned,
                day_start,
                &tally,
            );
        }
        day_summaries.push(summary);
        tallies.push(tally);
        if let Some(cp) = checkpoints
            && day + 1 < days
        {
            let name = format!("redis-day{}-end.rdb", day + 1);
            let checkpoint = Checkpoint {
                args: cp.args.clone(),
                day: day + 1,
                next_hour: day_end + HOUR_MS,
                clock_ms: clock.now().as_millisecond(),
                heap: heap.iter().map(|Reverse(e)| *e).collect(),
                seq,
                warm_seq,
                tally: None,
                done: std::mem::take(&mut tallies),
                day_summaries: day_summaries.clone(),
                joined: population.users.iter().map(|u| u.joined).collect(),
                learned: std::mem::take(&mut population.learned),
                first_sign_in_today: Vec::new(),
                meter: env.fake.meter_state(),
                hub: env.fake.hub_state(),
                deferrals_sent: deferrals_sent.load(Ordering::Relaxed),
                redis_file: name,
                wall_s: wall(t0),
            };
            saving.take(&env.redis, &checkpoint);
            tallies = checkpoint.done;
            population.learned = checkpoint.learned;
        }
    }
    saving.commit(&env.redis);
    let mut summary = if days == 1 {
        day_summaries[0].clone()
    } else {
        json!({"days": day_summaries})
    };
    let (mut hits, mut reads, mut round_trips, mut missing) = (0, 0, 0, 0);
    for instance in api_instances.iter() {
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
    summary["judge_vs_store"] = judge_vs_store(&apps.services.engine, population, judge).await;
    summary["wall_s"] = json!(round1(wall(t0)));
    RunResult {
        summary,
        days: tallies,
    }
}

/// The simulation's own record of what each user was served against the store's served
/// marks: every video the judge saw served must be marked, and every mark must be a
/// video served, watched or imported from the history. Both counts must be 0.
async fn judge_vs_store(
    engine: &reco_core::engine::Engine,
    population: &Population,
    judge: &dyn Judge,
) -> serde_json::Value {
    let (mut users, mut served_not_marked, mut marked_not_served) = (0u64, 0u64, 0u64);
    let mut examples: Vec<String> = Vec::new();
    for (user, learned) in population.users.iter().zip(&population.learned) {
        if !learned.signed_in {
            continue;
        }
        users += 1;
        let marked: HashSet<String> = engine
            .pool
            .served_ids(&user.id)
            .await
            .expect("read the served marks")
            .into_iter()
            .collect();
        for &v in &learned.seen {
            if !marked.contains(&judge.video_id(v)) {
                served_not_marked += 1;
                if examples.len() < 5 {
                    examples.push(format!("{} served {} unmarked", user.id, judge.video_id(v)));
                }
            }
        }
        for id in &marked {
            let known = judge.key(id).is_some_and(|v| {
                learned.seen.contains(&v)
                    || learned.watched.contains(&v)
                    || user.history.contains(&v)
            });
            if !known {
                marked_not_served += 1;
                if examples.len() < 5 {
                    examples.push(format!("{} marked {id} never served", user.id));
                }
            }
        }
    }
    json!({
        "users_checked": users,
        "served_not_marked": served_not_marked,
        "marked_not_served": marked_not_served,
        "examples": examples,
    })
}

/// The file Redis saves to in the checkpoint directory.
const REDIS_DUMP: &str = "dump.rdb";

/// The day's uploads by the channels its users watch, and how many of them reached at
/// least one watcher's pool.
fn watched_uploads(
    world: &World,
    users: &[SimUser],
    plans: &[Option<Plan>],
    learned: &[Learned],
    day_start: i64,
    tally: &Tally,
) -> serde_json::Value {
    let mut channels: HashSet<u32> = HashSet::new();
    for (u, plan) in plans.iter().enumerate() {
        if plan.is_some() {
            channels.extend(users[u].channels.iter().copied());
            channels.extend(learned[u].channels.iter().copied());
        }
    }
    let (from, to) = (day_start / 1000, (day_start + DAY_MS) / 1000);
    let published: u64 = channels
        .iter()
        .map(|&rank| {
            let spec = world.channel(rank);
            world.uploads_until(&spec, to) - world.uploads_until(&spec, from)
        })
        .sum();
    json!({
        "watched_channels": channels.len(),
        "published": published,
        "reached_a_watchers_pool": tally.reached_pool.len(),
    })
}

/// The earlier design: a per-(user, parameters) page cached for 15 minutes, regenerated
/// on a miss with one search and one videos.list, straight to YouTube.
async fn run_baseline(
    population: &mut Population,
    judge: &dyn Judge,
    fake_config: FakeConfig,
    run_start: i64,
    days: u16,
) -> RunResult {
    let fake = start_fake(fake_config);
    let redis = RedisServer::start();
    let mut conn = redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let base = fake.base_url();
    let t0 = Instant::now();
    let mut seq = 0u64;
    let mut tallies = Vec::new();
    let mut day_summaries = Vec::new();
    for day in 0..days {
        let day_start = run_start + i64::from(day) * DAY_MS;
        let day_end = day_start + DAY_MS;
        let plans = population.plan_day(day, day_start);
        let active = plans.iter().filter(|p| p.is_some()).count();
        let users = &population.users;
        let learned = &mut population.learned;
        let mut heap: BinaryHeap<Reverse<(i64, u64, Ev)>> = BinaryHeap::new();
        for (u, plan) in plans.iter().enumerate() {
            if let Some(first) = plan.as_ref().and_then(|p| p.sessions.first()) {
                seq += 1;
                heap.push(Reverse((
                    first.start,
                    seq,
                    Ev::SignIn { u: u as u32, s: 0 },
                )));
            }
        }
        let date =
            reco_core::clock::pacific_date(jiff::Timestamp::from_millisecond(day_start).unwrap());
        let mut tally = Tally::new(date, day_start / 1000, run_start / 1000);
        let mut next_hour = day_start + HOUR_MS;
        let plan = |u: u32| plans[u as usize].as_ref().expect("a user who comes today");
        loop {
            let next = heap.peek().map(|Reverse((t, _, _))| *t);
            while next.is_none_or(|t| t >= next_hour) && next_hour <= day_end {
                tally.snapshot(&fake);
                progress("baseline", usize::from(day), tally.hourly.len(), t0, &tally);
                next_hour += HOUR_MS;
            }
            let Some(Reverse((t, _, ev))) = heap.pop() else {
                break;
            };
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
                    tally.counts.sign_ins += 1;
                    let first = plan(u).gaps[s as usize][0];
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
                    *tally.statuses.entry(status.to_owned()).or_default() += 1;
                    // The earlier design's run does not split out the heaviest decile.
                    tally.page(
                        user,
                        &mut learned[u as usize],
                        judge,
                        &Served::all(judge, &ids),
                        t,
                        false,
                    );
                    let p = plan(u);
                    if k + 1 < p.sessions[s as usize].refreshes {
                        let gap =
                            p.gaps[s as usize][k as usize + 1] - p.gaps[s as usize][k as usize];
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
                    if let Some(n) = plan(u).sessions.get(s as usize + 1) {
                        next(&mut heap, n.start, Ev::SignIn { u, s: s + 1 });
                    }
                }
                Ev::Warm { .. } | Ev::PushTick => {
                    unreachable!("the earlier design has no warms or push")
                }
            }
        }
        day_summaries.push(tally.summary(&fake, active, t0.elapsed()));
        tallies.push(tally);
    }
    fake.shutdown();
    let mut summary = if days == 1 {
        day_summaries[0].clone()
    } else {
        json!({"days": day_summaries})
    };
    summary["wall_s"] = json!(round1(t0.elapsed().as_secs_f64()));
    RunResult {
        summary,
        days: tallies,
    }
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

/// `op`, asked again when it fails: the simulation's users and bookkeeping are not the
/// product's code under test, and a Redis reply later than the product's 500 ms timeout
/// (a busy host running two simulations) must not end a run hours long. A retried step
/// whose first attempt did reach Redis (a page taken, a watch recorded) is done twice;
/// the counts print each retry.
async fn patiently<T, E: std::fmt::Display, F: std::future::Future<Output = Result<T, E>>>(
    what: &str,
    mut op: impl FnMut() -> F,
) -> T {
    let mut attempt = 0;
    loop {
        match op().await {
            Ok(v) => return v,
            Err(e) if attempt < 5 => {
                attempt += 1;
                eprintln!("    {what}: {e}; again ({attempt})");
                tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
            }
            Err(e) => panic!("{what}: {e}"),
        }
    }
}

/// The pool's entries for the upload-latency record.
async fn pool_entries_patiently(
    pool: &reco_core::engine::PoolStore,
    user: &UserId,
) -> Vec<reco_core::engine::Entry> {
    patiently("read the pool", || pool.entries(user)).await
}

/// The simulator's allocator. Profiled on day 3 of the 20,000-user week, a third of the
/// process's CPU was glibc's malloc (`_int_malloc`, `malloc_consolidate`, arena locks
/// when one worker frees what the other allocated), growing with the heap day after day.
/// The functions keep the system allocator: their processes are short and small.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Two workers: the warmer's concurrent warms (spawned tasks) and the Redis and HTTP
/// connections' drivers run beside the event loop, on the machine's two cores.
#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // A day's worth of EMF lines would bury the figures; the fake meters what was spent.
    reco_core::metrics::install(reco_core::metrics::Sink::Off);
    // `--resume DIR`: go on from the checkpoint there, with its run's arguments.
    let resume_dir: String = arg("--resume", String::new());
    let resume =
        (!resume_dir.is_empty()).then(|| Checkpoint::read(std::path::Path::new(&resume_dir)));
    let (n, seed, world_channels, days, push) = match &resume {
        Some(c) => (
            c.args.users,
            c.args.seed,
            c.args.world_channels,
            c.args.days,
            c.args.push,
        ),
        // `--world N`: the procedural world of N channels; 0, the fake's corpus.
        None => (
            arg("--users", 100_000),
            arg("--seed", 7),
            arg("--world", 0),
            arg("--days", 1),
            // `--push`: ours with YouTube's push notifications (the fake's hub).
            std::env::args().any(|a| a == "--push"),
        ),
    };
    assert!(
        !push || world_channels > 0,
        "--push needs --world: the hub delivers the world's uploads"
    );
    let only: String = if resume.is_some() {
        "ours".to_owned()
    } else {
        arg("--only", "both".to_owned())
    };
    // `--checkpoint DIR`: checkpoint ours there at every simulated hour.
    let checkpoint_dir: String = if resume.is_some() {
        resume_dir.clone()
    } else {
        arg("--checkpoint", String::new())
    };
    assert!(
        checkpoint_dir.is_empty() || world_channels > 0,
        "checkpoints are of runs in the world (--world N)"
    );
    assert!(
        days == 1 || world_channels > 0,
        "--days needs --world: the corpus's users have one day"
    );
    // Thursday 26 November 2026, 00:00 Pacific (PST, UTC-8): one whole quota day.
    let run_start = jiff::Timestamp::from_second(1_795_680_000)
        .unwrap()
        .as_millisecond();
    assert_eq!(
        reco_core::clock::pacific_date(jiff::Timestamp::from_millisecond(run_start).unwrap()),
        SIM_DAY
    );
    let fake_config = FakeConfig {
        start_clock: Some(jiff::Timestamp::from_millisecond(run_start).unwrap()),
        world_channels: (world_channels > 0).then_some(world_channels),
        ..FakeConfig::default()
    };
    let t = Instant::now();
    let corpus_index = (world_channels == 0).then(|| {
        let index_fake = start_fake(FakeConfig::default());
        let index = Index::build(&index_fake);
        index_fake.shutdown();
        index
    });
    let corpus_index: Option<&'static Index> = corpus_index.map(|i| &*Box::leak(Box::new(i)));
    let world = (world_channels > 0)
        .then(|| World::new(fake_config.seed, world_channels, CORPUS_EPOCH_SECS));
    // In the world, `n` is the daily users: the population is larger, as not everyone
    // comes every day.
    let initial = if world.is_some() {
        (n as f64 / mean_activity()).round() as u32
    } else {
        n as u32
    };
    let population = || match (&corpus_index, &world) {
        (Some(index), _) => {
            let (users, plans) = make_users(index, n, seed, run_start);
            Population {
                learned: (0..users.len()).map(|_| Learned::default()).collect(),
                users,
                corpus_plans: Some(plans),
                world: None,
                seed,
                initial,
            }
        }
        (None, Some(world)) => {
            let users: Vec<SimUser> = (0..initial)
                .map(|i| make_world_user(world, i, seed, 0, run_start))
                .collect();
            Population {
                learned: (0..users.len()).map(|_| Learned::default()).collect(),
                users,
                corpus_plans: None,
                world: Some(world.clone()),
                seed,
                initial,
            }
        }
        (None, None) => unreachable!("a corpus or a world"),
    };
    // The judge lives as long as the run: the day's event tasks all read it.
    let judge: &'static dyn Judge = match (&corpus_index, &world) {
        (Some(index), _) => *index,
        (None, Some(world)) => Box::leak(Box::new(WorldJudge {
            world: world.clone(),
        })),
        (None, None) => unreachable!("a corpus or a world"),
    };
    let probe = population();
    let mut topic_users: HashMap<u16, usize> = HashMap::new();
    for u in &probe.users {
        *topic_users.entry(u.topics[0]).or_default() += 1;
    }
    let mut topic_users: Vec<usize> = topic_users.into_values().collect();
    topic_users.sort_unstable_by(|a, b| b.cmp(a));
    let distinct_channels: HashSet<u32> = probe
        .users
        .iter()
        .flat_map(|u| u.channels.iter().copied())
        .collect();
    println!(
        "{n} daily users (seed {seed}; a population of {} over {days} day(s)) in {:.1} s: \
         {} distinct history channels among them; main-topic users, top 5: {:?}",
        probe.users.len(),
        t.elapsed().as_secs_f64(),
        distinct_channels.len(),
        topic_users.iter().take(5).collect::<Vec<_>>()
    );
    drop(probe);

    let mut results = json!({
        "commit": reco_bench::git_describe(),
        "users": n,
        "seed": seed,
        "days": days,
        "population_at_start": initial,
        "distinct_history_channels_at_start": distinct_channels.len(),
        "world": if world_channels > 0 {
            json!({"procedural_channels": world_channels, "seed": fake_config.seed,
                   "activity": ACTIVITY.iter().map(|(s, p)| json!({"share": s, "daily_chance": p})).collect::<Vec<_>>(),
                   "churn_per_day": CHURN_PER_DAY, "signups_per_day": SIGNUPS_PER_DAY,
                   "watch_chance_per_refresh": WATCH_CHANCE})
        } else {
            json!({"corpus_channels": fake_config.channels, "seed": fake_config.seed})
        },
        "first_day": "2026-11-26 (Pacific)",
    });
    if world_channels == 0 {
        results["distinct_history_channels"] = json!(distinct_channels.len());
    }
    let file = match (world_channels, n, days) {
        (0, 100_000, _) => "day".to_owned(),
        (0, _, _) => format!("day-{n}"),
        (_, _, 1) => format!("world-day-{n}"),
        (_, _, d) => format!("world-{d}days-{n}"),
    };
    let file = if push { format!("{file}-push") } else { file };
    let checkpoints = (!checkpoint_dir.is_empty()).then(|| {
        std::fs::create_dir_all(&checkpoint_dir).expect("create the checkpoint directory");
        Checkpointing {
            dir: std::fs::canonicalize(&checkpoint_dir).expect("the checkpoint directory"),
            args: RunArgs {
                users: n,
                seed,
                world_channels,
                days,
                file: file.clone(),
                push,
            },
        }
    });
    // One after the other, each on its own Redis and fake YouTube (the harness starts
    // its servers with blocking waits, which would stall a design running beside it).
    let mut runs: Vec<(&str, RunResult)> = Vec::new();
    if only != "ours" {
        println!("\nbaseline (the earlier design): started");
        let mut p = population();
        let r = run_baseline(&mut p, judge, fake_config.clone(), run_start, days).await;
        runs.push(("baseline", r));
    }
    if only != "baseline" {
        println!("\nours: started");
        let mut p = population();
        let r = run_ours(
            &mut p,
            judge,
            fake_config.clone(),
            run_start,
            days,
            &file,
            checkpoints.as_ref(),
            resume,
            push,
        )
        .await;
        runs.push(("ours", r));
    }
    for (name, run) in &runs {
        results[*name] = run.summary.clone();
        for (d, tally) in run.days.iter().enumerate() {
            let c = &tally.counts;
            let units = tally.hourly.last().map_or(0, |(_, u)| u.units);
            println!(
                "\n{name}, day {}: {} refreshes: {units} units, {} empty pages, \
                 {:.1}% full pages of never-served videos, {:.1}% of served videos related",
                d + 1,
                c.refreshes,
                c.empty,
                c.full_new as f64 * 100.0 / c.refreshes.max(1) as f64,
                c.related as f64 * 100.0 / c.served.max(1) as f64,
            );
        }
    }
    // A run of one design keeps the other's figures from an earlier run of the same
    // users, world and days.
    if runs.len() == 1
        && let Ok(text) =
            std::fs::read_to_string(reco_bench::out_dir().join(format!("{file}.json")))
        && let Ok(earlier) = serde_json::from_str::<serde_json::Value>(&text)
    {
        let same = ["users", "seed", "days", "world"]
            .iter()
            .all(|k| earlier[*k] == results[*k]);
        let other = if runs[0].0 == "ours" {
            "baseline"
        } else {
            "ours"
        };
        if same && !earlier[other].is_null() {
            results[other] = earlier[other].clone();
            results[format!("commit_{other}")] = earlier["commit"].clone();
        }
    }
    write_json(&file, &results);
    plot(&file, n, &runs);
}

/// Per-hour freshness for each day (ours, and the baseline's first day), searches and
/// units over the run, beside the file's JSON.
fn plot(file: &str, n: usize, runs: &[(&str, RunResult)]) {
    let name = |r: &str| {
        if r == "ours" {
            "ours"
        } else {
            "earlier design (baseline)"
        }
    };
    let colour = |r: &str| usize::from(r != "ours");
    let days = runs.first().map_or(0, |(_, r)| r.days.len());
    let hours = (days * 24) as f64;
    // Cumulative units over the whole run (each day's quota starts at zero).
    let units: Vec<Series> = runs
        .iter()
        .map(|(r, run)| {
            let mut total = 0u64;
            let mut pts = vec![(0.0, 0.0)];
            for (d, tally) in run.days.iter().enumerate() {
                for (h, (_, u)) in tally.hourly.iter().enumerate() {
                    pts.push(((d * 24 + h + 1) as f64, (total + u.units) as f64));
                }
                total += tally.hourly.last().map_or(0, |(_, u)| u.units);
            }
            Series::new(name(r), colour(r), pts)
        })
        .chain(std::iter::once(Series::new(
            "daily quotas (10,000 units a day)",
            3,
            (0..=days)
                .map(|d| ((d * 24) as f64, (d * 10_000) as f64))
                .collect(),
        )))
        .collect();
    let max_units = units
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .fold(10_000.0, f64::max);
    line_chart(
        &format!("{file}-units.png"),
        &format!("YouTube units spent over the simulated run, {n} daily users"),
        "hour of the run (Pacific days)",
        "units spent (cumulative)",
        (0.0, hours),
        (0.0, max_units * 1.1),
        &units,
    );
    if days == 1 {
        let searches: Vec<Series> = runs
            .iter()
            .map(|(r, run)| {
                let pts = std::iter::once((0.0, 0.0))
                    .chain(
                        run.days[0]
                            .hourly
                            .iter()
                            .enumerate()
                            .map(|(h, (_, u))| ((h + 1) as f64, u.searches as f64)),
                    )
                    .collect();
                Series::new(name(r), colour(r), pts)
            })
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
    }
    let per_hour = |tally: &Tally| -> Vec<(f64, f64)> {
        let mut prev = (0u64, 0u64);
        tally
            .hourly
            .iter()
            .enumerate()
            .filter_map(|(h, (c, _))| {
                let (r, f) = (c.refreshes - prev.0, c.full_new - prev.1);
                prev = (c.refreshes, c.full_new);
                (r > 0).then(|| (h as f64 + 0.5, f as f64 * 100.0 / r as f64))
            })
            .collect()
    };
    let mut share: Vec<Series> = Vec::new();
    for (r, run) in runs {
        if days == 1 {
            share.push(Series::new(name(r), colour(r), per_hour(&run.days[0])));
        } else if *r == "ours" {
            for (d, tally) in run.days.iter().enumerate() {
                share.push(Series::new(
                    format!("ours, day {}", d + 1),
                    d % 7,
                    per_hour(tally),
                ));
            }
        }
    }
    share.push(Series::new(
        "target (97%)",
        if days == 1 { 3 } else { 7 },
        vec![(0.0, 97.0), (24.0, 97.0)],
    ));
    line_chart(
        &format!("{file}-all-new.png"),
        &format!("Refreshes with a full page of never-served videos, per hour, {n} daily users"),
        "hour of the Pacific day",
        "share of refreshes (%)",
        (0.0, 24.0),
        (0.0, 105.0),
        &share,
    );
}
