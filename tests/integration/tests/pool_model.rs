//! The pool's page take against a reference model (proptest), on a real `redis-server`.
//!
//! Random catalogs, pools and sequences of warms, refreshes (every filter combination),
//! watches, catalog evictions, lost claims and time going by are run through the real
//! engine (`Engine::take_page`, `PoolStore::replace`, `HistoryStore::record`) and through
//! a plain in-memory model of what the feed promises. Every reply must match the model's
//! exactly — the page (ids, order, reasons, trending), the remaining count, staleness,
//! the refill rule and who wins the claim, the entries skipped — and across the whole
//! sequence no video is shown twice, no watched video is shown after its watch, and
//! every filtered page holds only what its filters allow.
//!
//! A second test serves a pool written in the first layout (as the code before the feed
//! list wrote it) and checks that the next warm replaces it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use proptest::prelude::*;
use proptest::test_runner::{Config as PropConfig, TestCaseError, TestRunner};
use reco_core::UserId;
use reco_core::clock::{Clock, ManualClock, SharedClock};
use reco_core::domain::{Video, WatchEvent};
use reco_core::engine::pool::{LOW_WATERMARK, WARM_PENDING_TTL_MS};
use reco_core::engine::{Catalog, Engine, PageRequest};
use reco_core::store::{RedisConn, keys};
use reco_tests::RedisServer;

const VIDEOS: usize = 160;
const CATEGORIES: [&str; 3] = ["10", "20", "24"];
const FRESH_MS: i64 = 20 * 60_000;

fn video_id(i: usize) -> String {
    format!("vid{i:08}")
}

fn category(i: usize) -> &'static str {
    CATEGORIES[(i * 7 + i / 5) % 3]
}

/// The catalog's copy of video `i`: its reason and trending are the catalog's, which a
/// page must replace with the user's own.
fn catalog_video(i: usize) -> Video {
    Video {
        category_id: category(i).to_owned(),
        channel_id: format!("UCchannel{:02}", i % 13),
        channel_title: format!("Channel {}", i % 13),
        duration_secs: 60 + i as u32,
        published_at: "2026-11-20T10:00:00Z".into(),
        reason: "catalog".into(),
        tags: vec![format!("tag{}", i % 4)],
        thumbnail_url: format!("https://i.ytimg.com/vi/{}/mqdefault.jpg", video_id(i)),
        title: format!("Video {i} | with a bar"),
        trending: false,
        url: format!("https://www.youtube.com/watch?v={}", video_id(i)),
        video_id: video_id(i),
        view_count: i as u64 * 10,
    }
}

/// Video `i` as a warm ranks it for this user.
fn ranked_video(i: usize, trending: bool, warm: usize) -> Video {
    let mut v = catalog_video(i);
    v.trending = trending;
    v.reason = format!("warm {warm} | pick {i}");
    v
}

#[derive(Debug, Clone)]
enum Op {
    /// A warm ranks these videos (indexes, may repeat) with these trending flags.
    Warm(Vec<(usize, bool)>),
    Take {
        max: usize,
        category: Option<usize>,
        trending: bool,
    },
    Watch(Vec<usize>),
    Evict(usize),
    /// The claim's holder gave it up (its send failed).
    ReleaseClaim,
    Advance(i64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => proptest::collection::vec((0..VIDEOS, proptest::bool::weighted(0.15)), 0..150)
            .prop_map(Op::Warm),
        8 => (1usize..30, proptest::option::weighted(0.25, 0..3usize), proptest::bool::weighted(0.8))
            .prop_map(|(max, category, trending)| Op::Take { max, category, trending }),
        2 => proptest::collection::vec(0..VIDEOS, 1..4).prop_map(Op::Watch),
        1 => (0..VIDEOS).prop_map(Op::Evict),
        1 => Just(Op::ReleaseClaim),
        2 => prop_oneof![0i64..5_000, 60_000i64..200_000, 1_000_000i64..2_000_000]
            .prop_map(Op::Advance),
    ]
}

#[derive(Debug, Clone, PartialEq)]
struct ModelEntry {
    video: usize,
    trending: bool,
    reason: String,
}

/// What the feed promises, in memory.
#[derive(Default)]
struct Model {
    /// The pool's entries, best first; `None` before the first warm.
    feed: Option<Vec<ModelEntry>>,
    generated_at: i64,
    /// Served (or reserved) marks.
    served: HashSet<usize>,
    in_catalog: HashSet<usize>,
    /// Items the instance has hydrated once: it keeps them (well within their TTL).
    in_item_cache: HashSet<usize>,
    claim_until: Option<i64>,
}

#[derive(Debug, PartialEq)]
struct Reply {
    page: Vec<(String, bool, String)>,
    remaining: usize,
    generated: Option<i64>,
    stale: bool,
    needs_refill: bool,
    claimed: bool,
    missing: usize,
}

impl Model {
    fn warm(&mut self, ranked: &[(usize, bool)], warm: usize, now: i64) {
        for e in self.feed.take().unwrap_or_default() {
            self.served.remove(&e.video);
        }
        let mut seen = HashSet::new();
        let feed: Vec<ModelEntry> = ranked
            .iter()
            .filter(|(i, _)| seen.insert(*i) && !self.served.contains(i))
            .map(|&(i, trending)| ModelEntry {
                video: i,
                trending,
                reason: ranked_video(i, trending, warm).reason,
            })
            .collect();
        self.served.extend(feed.iter().map(|e| e.video));
        self.feed = Some(feed);
        self.generated_at = now;
        self.claim_until = None;
    }

    fn take(&mut self, request: &PageRequest, now: i64) -> Reply {
        let mut page = Vec::new();
        let mut missing = 0;
        let (remaining, generated, stale) = match self.feed.as_mut() {
            None => (0, None, false),
            Some(feed) => {
                let taken: Vec<ModelEntry> = if request.is_unfiltered() {
                    let n = request.max_results.min(feed.len());
                    feed.drain(..n).collect()
                } else {
                    let wanted = |e: &ModelEntry| {
                        request
                            .category_id
                            .as_deref()
                            .is_none_or(|c| category(e.video) == c)
                            && (request.include_trending || !e.trending)
                    };
                    let mut taken = Vec::new();
                    let mut rest = Vec::new();
                    for e in feed.drain(..) {
                        if taken.len() < request.max_results && wanted(&e) {
                            taken.push(e);
                        } else {
                            rest.push(e);
                        }
                    }
                    *feed = rest;
                    taken
                };
                let mut short = 0;
                let hydrate =
                    |entries: Vec<ModelEntry>,
                     page: &mut Vec<_>,
                     model_items: &mut dyn FnMut(usize) -> bool| {
                        let mut gone = 0;
                        for e in entries {
                            if model_items(e.video) {
                                page.push((video_id(e.video), e.trending, e.reason));
                            } else {
                                gone += 1;
                            }
                        }
                        gone
                    };
                let (cat, cache) = (&self.in_catalog, &mut self.in_item_cache);
                let mut has = |i: usize| {
                    if cache.contains(&i) {
                        true
                    } else if cat.contains(&i) {
                        cache.insert(i);
                        true
                    } else {
                        false
                    }
                };
                let gone = hydrate(taken, &mut page, &mut has);
                missing += gone;
                short += gone;
                if request.is_unfiltered() {
                    for _ in 0..2 {
                        if short == 0 || feed.is_empty() {
                            break;
                        }
                        let n = short.min(feed.len());
                        let more: Vec<ModelEntry> = feed.drain(..n).collect();
                        let gone = hydrate(more, &mut page, &mut has);
                        short = gone + short.saturating_sub(n);
                        missing += gone;
                    }
                }
                (
                    feed.len(),
                    Some(self.generated_at),
                    now - self.generated_at > FRESH_MS,
                )
            }
        };
        let needs_refill = generated.is_none() || remaining < LOW_WATERMARK || stale || missing > 0;
        // The claim's expiry runs on Redis's clock, not the simulated one: a case lasts
        // far less than it, so a claim holds until released or replaced by a warm.
        let claimed = needs_refill && self.claim_until.is_none();
        if claimed {
            self.claim_until = Some(now + WARM_PENDING_TTL_MS as i64);
        }
        Reply {
            page,
            remaining,
            generated,
            stale,
            needs_refill,
            claimed,
            missing,
        }
    }

    fn watch(&mut self, ids: &[usize]) {
        self.served.extend(ids.iter().copied());
        if let Some(feed) = self.feed.as_mut() {
            feed.retain(|e| !ids.contains(&e.video));
        }
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

async fn write_catalog(redis: &RedisConn, present: &[bool]) {
    if !present.contains(&true) {
        return;
    }
    let mut pipe = redis::pipe();
    for (i, &p) in present.iter().enumerate() {
        if p {
            pipe.set_ex(
                keys::video(&video_id(i)),
                serde_json::to_string(&catalog_video(i)).unwrap(),
                3600,
            )
            .ignore();
        }
    }
    pipe.query_async::<()>(&mut redis.clone()).await.unwrap();
}

#[test]
fn page_takes_match_the_model() {
    let redis = RedisServer::start();
    let rt = rt();
    let cases: u32 = std::env::var("POOL_MODEL_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(500);
    let mut runner = TestRunner::new(PropConfig {
        cases,
        failure_persistence: None,
        ..PropConfig::default()
    });
    let strategy = (
        proptest::collection::vec(proptest::bool::weighted(0.9), VIDEOS),
        proptest::collection::vec(op(), 1..60),
    );
    let totals = std::sync::Mutex::new((0usize, 0usize, 0usize, 0usize));
    runner
        .run(&strategy, |(present, ops)| {
            rt.block_on(async {
                let conn = RedisConn::connect_lazy(&redis.url(), Duration::from_secs(5)).unwrap();
                redis::cmd("FLUSHALL")
                    .query_async::<()>(&mut conn.clone())
                    .await
                    .unwrap();
                write_catalog(&conn, &present).await;
                let clock = Arc::new(ManualClock::new(
                    Timestamp::from_second(1_790_000_000).unwrap(),
                ));
                let shared: SharedClock = clock.clone();
                let mut engine = Engine::new(
                    conn.clone(),
                    None,
                    shared,
                    "US",
                    Duration::from_millis(FRESH_MS as u64),
                );
                // A fresh item cache per case, as large as a real instance's.
                engine.catalog = Catalog::new(conn.clone(), 32 * 1024 * 1024);
                let user = UserId::parse("model-user").unwrap();
                let mut model = Model {
                    in_catalog: (0..VIDEOS).filter(|&i| present[i]).collect(),
                    ..Model::default()
                };
                let mut shown: HashMap<String, usize> = HashMap::new();
                let mut watched_at: HashMap<String, usize> = HashMap::new();
                let mut warms = 0;
                for (step, op) in ops.iter().enumerate() {
                    let now = clock.now().as_millisecond();
                    match op {
                        Op::Warm(ranked) => {
                            warms += 1;
                            let videos: Vec<Video> = ranked
                                .iter()
                                .map(|&(i, t)| ranked_video(i, t, warms))
                                .collect();
                            let kept = engine.pool.replace(&user, &videos).await.unwrap();
                            model.warm(ranked, warms, now);
                            prop_assert_eq!(
                                kept,
                                model.feed.as_ref().unwrap().len(),
                                "step {}: {:?}",
                                step,
                                op
                            );
                        }
                        Op::Take {
                            max,
                            category: filter,
                            trending,
                        } => {
                            let request = PageRequest {
                                max_results: *max,
                                category_id: filter.map(|c| CATEGORIES[c].to_owned()),
                                include_trending: *trending,
                            };
                            let got = engine.take_page(&user, &request).await.unwrap();
                            let got = Reply {
                                page: got
                                    .videos
                                    .iter()
                                    .map(|v| (v.video_id.clone(), v.trending, v.reason.clone()))
                                    .collect(),
                                remaining: got.pool_remaining,
                                generated: got.generated_at_ms,
                                stale: got.stale,
                                needs_refill: got.needs_refill,
                                claimed: got.should_enqueue_warm,
                                missing: got.missing_items,
                            };
                            let want = model.take(&request, now);
                            prop_assert_eq!(&got, &want, "step {}: {:?}", step, op);
                            for (id, trending, _) in &got.page {
                                let i: usize = id[3..].parse().unwrap();
                                prop_assert!(
                                    shown.insert(id.clone(), step).is_none(),
                                    "{} shown twice",
                                    id
                                );
                                prop_assert!(
                                    !watched_at.contains_key(id),
                                    "{} shown after its watch",
                                    id
                                );
                                if let Some(c) = &request.category_id {
                                    prop_assert_eq!(category(i), c.as_str());
                                }
                                prop_assert!(request.include_trending || !trending);
                            }
                            let mut totals = totals.lock().unwrap();
                            totals.0 += 1;
                            totals.1 += got.page.len();
                            totals.2 += got.missing;
                            totals.3 += usize::from(got.claimed);
                        }
                        Op::Watch(ids) => {
                            let events: Vec<WatchEvent> = ids
                                .iter()
                                .map(|&i| WatchEvent {
                                    video_id: video_id(i),
                                    watched_at: None,
                                    watch_seconds: None,
                                })
                                .collect();
                            engine.history.record(&user, &events, now).await.unwrap();
                            model.watch(ids);
                            for &i in ids {
                                watched_at.insert(video_id(i), step);
                            }
                        }
                        Op::Evict(i) => {
                            redis::cmd("DEL")
                                .arg(keys::video(&video_id(*i)))
                                .query_async::<()>(&mut conn.clone())
                                .await
                                .unwrap();
                            model.in_catalog.remove(i);
                        }
                        Op::ReleaseClaim => {
                            engine.pool.release_warm_claim(&user).await.unwrap();
                            model.claim_until = None;
                        }
                        Op::Advance(ms) => clock.advance_ms(*ms),
                    }
                }
                // A warm after all that offers nothing shown or watched: the served set less
                // the pool's reservations is exactly what was shown or watched.
                let served: HashSet<String> = engine
                    .pool
                    .served_ids(&user)
                    .await
                    .unwrap()
                    .into_iter()
                    .collect();
                for id in shown.keys().chain(watched_at.keys()) {
                    prop_assert!(
                        served.contains(id),
                        "{} shown or watched but not served",
                        id
                    );
                }
                Ok::<(), TestCaseError>(())
            })
        })
        .unwrap();
    let (takes, videos, missing, claims) = *totals.lock().unwrap();
    println!(
        "{cases} cases: {takes} page takes, {videos} videos served, {missing} entries skipped as gone from the catalog, {claims} refills claimed"
    );
    assert!(takes > cases as usize && videos > takes && missing > 0 && claims > 0);
}

/// Writes `videos` as the user's pool in the first layout, exactly as `PoolStore::replace`
/// wrote it before the feed list (the code of that version, kept here as the fixture).
async fn write_first_layout_pool(redis: &RedisConn, user: &UserId, videos: &[Video], now: i64) {
    let (pool, items, meta) = (
        keys::pool(user),
        keys::pool_items(user),
        keys::pool_meta(user),
    );
    let mut pipe = redis::pipe();
    pipe.atomic().del(&pool).ignore().del(&items).ignore();
    let members: Vec<(usize, String)> = videos
        .iter()
        .enumerate()
        .map(|(i, v)| {
            (
                i,
                format!(
                    "{}|{}|{}",
                    v.video_id,
                    v.category_id,
                    if v.trending { 't' } else { 'h' }
                ),
            )
        })
        .collect();
    pipe.zadd_multiple(&pool, &members).ignore();
    let fields: Vec<(String, String)> = videos
        .iter()
        .map(|v| (v.video_id.clone(), serde_json::to_string(v).unwrap()))
        .collect();
    pipe.hset_multiple(&items, &fields).ignore();
    pipe.hset_multiple(
        &meta,
        &[
            ("generated_at", now),
            ("built_from", now),
            ("size", videos.len() as i64),
        ],
    )
    .ignore()
    .expire(&pool, 7 * 86_400)
    .ignore()
    .expire(&items, 7 * 86_400)
    .ignore()
    .expire(&meta, 7 * 86_400)
    .ignore()
    .del(keys::warm_claim(user))
    .ignore();
    pipe.query_async::<()>(&mut redis.clone()).await.unwrap();
}

/// A pool written by the code before the feed list is served as it was (its own items,
/// its served marks, its filters), and the next warm replaces it with a feed list that
/// offers nothing it served.
#[test]
fn a_first_layout_pool_is_served_then_replaced_by_the_next_warm() {
    let redis = RedisServer::start();
    rt().block_on(async {
        let conn = RedisConn::connect_lazy(&redis.url(), Duration::from_secs(5)).unwrap();
        let clock = Arc::new(ManualClock::new(
            Timestamp::from_second(1_790_000_000).unwrap(),
        ));
        let shared: SharedClock = clock.clone();
        let engine = Engine::new(conn.clone(), None, shared, "US", Duration::from_secs(3600));
        let user = UserId::parse("deployed-user").unwrap();
        let now = clock.now().as_millisecond();
        // No catalog at all: the first layout carries its own copies.
        let old: Vec<Video> = (0..120).map(|i| ranked_video(i, i % 10 == 0, 0)).collect();
        write_first_layout_pool(&conn, &user, &old, now).await;

        let mut shown = HashSet::new();
        let common = PageRequest {
            max_results: 20,
            category_id: None,
            include_trending: true,
        };
        let page = engine.take_page(&user, &common).await.unwrap();
        let ids: Vec<String> = page.videos.iter().map(|v| v.video_id.clone()).collect();
        let expected: Vec<String> = (0..20).map(video_id).collect();
        assert_eq!(ids, expected, "the old pool's first page, in rank order");
        assert_eq!(
            page.videos[0], old[0],
            "the old layout's own copy, reason and all"
        );
        assert_eq!((page.pool_remaining, page.needs_refill), (100, false));
        shown.extend(ids);
        let filtered = PageRequest {
            max_results: 5,
            category_id: Some(CATEGORIES[1].to_owned()),
            include_trending: false,
        };
        let page = engine.take_page(&user, &filtered).await.unwrap();
        assert_eq!(page.videos.len(), 5);
        for v in &page.videos {
            assert_eq!((v.category_id.as_str(), v.trending), (CATEGORIES[1], false));
            assert!(
                shown.insert(v.video_id.clone()),
                "{} shown twice",
                v.video_id
            );
        }

        // The next warm ranks everything again: what the old pool served stays served.
        let ranked: Vec<Video> = (0..160).map(|i| ranked_video(i, false, 1)).collect();
        write_catalog(&conn, &[true; VIDEOS]).await;
        let kept = engine.pool.replace(&user, &ranked).await.unwrap();
        assert_eq!(kept, 160 - shown.len());
        let mut c = conn.clone();
        let (pool_exists, items_exist): (bool, bool) = redis::pipe()
            .exists(keys::pool(&user))
            .exists(keys::pool_items(&user))
            .query_async(&mut c)
            .await
            .unwrap();
        assert!(
            !pool_exists && !items_exist,
            "the first layout's keys are gone"
        );
        let mut pages = 0;
        loop {
            let page = engine.take_page(&user, &common).await.unwrap();
            if page.videos.is_empty() {
                break;
            }
            pages += 1;
            for v in &page.videos {
                assert!(
                    shown.insert(v.video_id.clone()),
                    "{} shown twice",
                    v.video_id
                );
                let i: usize = v.video_id[3..].parse().unwrap();
                assert_eq!(
                    v.reason,
                    ranked_video(i, false, 1).reason,
                    "the new warm's reason"
                );
            }
        }
        assert_eq!(
            shown.len(),
            160,
            "every video shown once over {pages} pages"
        );
    });
}
