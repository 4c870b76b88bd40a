//! The recommendation engine against real Redis and the fake YouTube, whose corpus knows
//! every video's topic: new videos on every refresh, related, for almost no quota.

use std::collections::HashSet;
use std::sync::Arc;

use reco_core::UserId;
use reco_core::clock::OffsetClock;
use reco_core::config::AuthMode;
use reco_core::engine::{PageRequest, WarmOutcome};
use reco_core::quota::Priority;
use reco_tests::apps::deliver_once;
use reco_tests::scenario::{History, history_in_topic};
use reco_tests::{Apps, TestEnv, api_request, response_json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_refreshes_of_twenty_are_all_new_unwatched_and_related() {
    let env = TestEnv::start().await;
    let apps = Apps::build(&env, None, AuthMode::None).await;
    let history = history_in_topic(&env.fake, 1, 3, 4);
    let user = UserId::parse("reader-1").unwrap();
    record_and_warm(&apps, &user, &history).await;

    let sqs = env.sqs.client().await;
    let watched: HashSet<&String> = history.video_ids.iter().collect();
    let (mut seen, mut related, mut warms) = (HashSet::new(), 0usize, 0usize);
    for refresh in 0..20 {
        let path = format!("/api/v1/video/recommendations/{user}");
        let (status, body) = response_json(
            &apps
                .api
                .handle(api_request(
                    "GET",
                    &path,
                    &[("max_results", "20")],
                    None,
                    None,
                ))
                .await,
        );
        assert_eq!(status, 200, "{body}");
        let page = reco_tests::apps::video_ids(&body);
        assert_eq!(
            page.len(),
            20,
            "refresh {refresh} was not a full page: {}",
            body["meta"]
        );
        for id in page {
            assert!(!watched.contains(&id), "watched video {id} recommended");
            assert!(
                seen.insert(id.clone()),
                "refresh {refresh}: {id} shown twice"
            );
            related += usize::from(history.relates_to(&env.fake, &id));
        }
        // The refill the API enqueued when the pool ran low, as Lambda would deliver it.
        warms += deliver_once(&sqs, &env.queue_url, &apps.warmer, 10, 0)
            .await
            .len();
    }
    let share = related as f64 / seen.len() as f64;
    println!(
        "400 served, {related} related ({:.1}%), {warms} refills, units {}",
        share * 100.0,
        env.fake.counters().units_used
    );
    assert!(share >= 0.8, "only {:.1}% related", share * 100.0);
    assert!(warms >= 1, "the pool never asked for a refill");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_user_with_the_same_interests_costs_no_units() {
    let env = TestEnv::start().await;
    let apps = Apps::build(&env, None, AuthMode::None).await;
    let history = history_in_topic(&env.fake, 2, 3, 4);
    for user in ["first", "second"] {
        apps.record_history(user, &history.body()).await;
    }
    let first = apps
        .services
        .engine
        .warm(&UserId::parse("first").unwrap(), Priority::Background)
        .await
        .unwrap();
    let after_first = env.fake.counters();
    let second = apps
        .services
        .engine
        .warm(&UserId::parse("second").unwrap(), Priority::Background)
        .await
        .unwrap();
    let after_second = env.fake.counters();
    println!(
        "first warm: {} units, {} searches; second: {} units, {} searches",
        after_first.units_used,
        after_first.searches_used,
        after_second.units_used - after_first.units_used,
        after_second.searches_used - after_first.searches_used
    );
    assert!(after_first.units_used > 0 && first.pool_size > 0);
    assert_eq!(
        after_second.units_used, after_first.units_used,
        "the second warm spent units"
    );
    assert_eq!(
        after_second.searches_used, after_first.searches_used,
        "the second warm spent searches"
    );
    assert_eq!(second.pool_size, first.pool_size);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_upload_on_a_watched_channel_reaches_the_feed_after_the_next_warm() {
    let env = TestEnv::start().await;
    let clock = Arc::new(OffsetClock::new());
    let apps = Apps::build(&env, Some(clock.clone()), AuthMode::None).await;
    let history = history_in_topic(&env.fake, 3, 2, 4);
    let user = UserId::parse("fan").unwrap();
    record_and_warm(&apps, &user, &history).await;

    let channel = history.channels.iter().next().unwrap().clone();
    let new_video = env
        .fake
        .publish_upload(&channel, "Brand new upload for fans");
    // Past the uploads cache's freshness, as the next scheduled warm would be.
    clock.advance_ms(reco_core::engine::sources::PLAYLIST_FRESH_MS + 1000);
    apps.services
        .engine
        .warm(&user, Priority::Background)
        .await
        .unwrap();
    let page = apps
        .services
        .engine
        .take_page(
            &user,
            &PageRequest {
                max_results: 50,
                category_id: None,
                include_trending: true,
            },
        )
        .await
        .unwrap();
    let position = page.videos.iter().position(|v| v.video_id == new_video);
    println!("new upload {new_video} at position {position:?} of the next page");
    assert!(position.is_some(), "the new upload is not in the next page");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn category_filter_and_every_page_size_come_from_one_pool() {
    let env = TestEnv::start().await;
    let apps = Apps::build(&env, None, AuthMode::None).await;
    let history = history_in_topic(&env.fake, 0, 3, 4);
    let user = UserId::parse("sizes").unwrap();
    record_and_warm(&apps, &user, &history).await;
    let category = env
        .fake
        .corpus()
        .video(&history.video_ids[0])
        .unwrap()
        .category_id
        .clone();

    let path = format!("/api/v1/video/recommendations/{user}");
    let (status, body) = response_json(
        &apps
            .api
            .handle(api_request(
                "GET",
                &path,
                &[("category_filter", &category), ("max_results", "10")],
                None,
                None,
            ))
            .await,
    );
    assert_eq!(status, 200, "{body}");
    assert!(body["count"].as_u64().unwrap() > 0, "{body}");
    for v in body["videos"].as_array().unwrap() {
        assert_eq!(v["category_id"], category.as_str(), "{v}");
    }

    let mut generated = None;
    let mut remaining = body["meta"]["pool_remaining"].as_u64().unwrap();
    for size in [1u64, 2, 5, 13, 20, 50] {
        let (status, body) = response_json(
            &apps
                .api
                .handle(api_request(
                    "GET",
                    &path,
                    &[("max_results", &size.to_string())],
                    None,
                    None,
                ))
                .await,
        );
        assert_eq!(status, 200);
        assert_eq!(body["count"], size, "page size {size}");
        let meta = &body["meta"];
        assert_eq!(
            meta["pool_remaining"].as_u64().unwrap(),
            remaining - size,
            "page {size} did not come from the same pool"
        );
        remaining -= size;
        let g = meta["generated_at"].clone();
        assert!(
            generated.get_or_insert(g.clone()) == &g,
            "a page size split the cache"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filtered_page_take_is_one_script_and_one_catalog_read() {
    let env = TestEnv::start().await;
    let apps = Apps::build(&env, None, AuthMode::None).await;
    let history = history_in_topic(&env.fake, 0, 3, 4);
    let user = UserId::parse("counted").unwrap();
    record_and_warm(&apps, &user, &history).await;
    let entries = apps.services.engine.pool.entries(&user).await.unwrap();
    let category = entries[0].category_id().to_owned();
    let request = PageRequest {
        max_results: 5,
        category_id: Some(category.clone()),
        include_trending: false,
    };
    // Load the script once, so the measured take is the steady state (EVALSHA).
    apps.services
        .engine
        .take_page(&user, &request)
        .await
        .unwrap();

    let monitor = reco_tests::services::RedisMonitor::start(&env.redis);
    let page = apps
        .services
        .engine
        .take_page(&user, &request)
        .await
        .unwrap();
    let commands: Vec<String> = monitor
        .stop()
        .iter()
        .filter_map(|l| l.split('"').nth(1).map(str::to_owned))
        .collect();
    assert!(!page.videos.is_empty());
    assert!(
        page.videos
            .iter()
            .all(|v| v.category_id == category && !v.trending),
        "{:?}",
        page.videos
    );
    // The script, then the page's videos from the catalog (this instance has not seen
    // them), then nothing: no claim while the pool is full and fresh.
    assert_eq!(
        commands,
        ["EVALSHA", "MGET"],
        "a filtered take sent {commands:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_units_run_short_popular_sources_refresh_and_the_long_tail_waits() {
    use reco_core::quota::{Admission, Cost};
    let env = TestEnv::start().await;
    let clock = Arc::new(OffsetClock::new());
    // 22:00 Pacific: the day's pace allows most of the day's units by then.
    let late: jiff::Timestamp = "2026-11-26T06:00:00Z".parse().unwrap();
    clock.set(late);
    env.fake.set_clock(late);
    let mut vars = env.env();
    vars.push(("YOUTUBE_MAX_UNITS_PER_MINUTE".into(), "0".into()));
    let config = reco_core::config::Config::from_lookup(|n| {
        vars.iter()
            .rev()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.clone())
    })
    .unwrap();
    let services = reco_core::wiring::Services::build(config, Some(clock.clone())).unwrap();
    let engine = &services.engine;

    let popular = history_in_topic(&env.fake, 0, 3, 4);
    let niche = history_in_topic(&env.fake, 6, 3, 4);
    let now = clock.now_ms();
    let events = |h: &reco_tests::scenario::History| -> Vec<reco_core::WatchEvent> {
        h.video_ids
            .iter()
            .map(|id| reco_core::WatchEvent {
                video_id: id.clone(),
                watched_at: None,
                watch_seconds: Some(300),
            })
            .collect()
    };
    let popular_users: Vec<UserId> = (0..4)
        .map(|i| UserId::parse(&format!("popular-{i}")).unwrap())
        .collect();
    let niche_user = UserId::parse("niche").unwrap();
    for user in &popular_users {
        engine
            .history
            .record(user, &events(&popular), now)
            .await
            .unwrap();
        forget_word_counts(&env).await;
        engine.warm(user, Priority::Background).await.unwrap();
    }
    engine
        .history
        .record(&niche_user, &events(&niche), now)
        .await
        .unwrap();
    forget_word_counts(&env).await;
    engine
        .warm(&niche_user, Priority::Background)
        .await
        .unwrap();

    // Every uploads cache goes stale, and the background day is spent nearly to its pace.
    use reco_core::clock::Clock;
    clock.advance_ms(reco_core::engine::sources::PLAYLIST_FRESH_MS + 1000);
    let state = services.guard.state().await.unwrap();
    let units = state.bucket(reco_core::quota::Bucket::Units).unwrap();
    // Room under the day's pace of 0.6 of the allocator's band: only the most-demanded
    // 60% of stale sources may refresh.
    let room = (units.background_limit as f64 * reco_core::quota::pacing::PACE_BAND * 0.6) as u64;
    let spend = units.background_now - room - units.used;
    assert_eq!(
        services
            .guard
            .admit(
                Cost {
                    units: spend,
                    searches: 0
                },
                Priority::Interactive
            )
            .await
            .unwrap(),
        Admission::Allowed
    );

    let playlist_calls = |fake: &reco_tests::Fake| {
        fake.counters()
            .per_method
            .get("playlistItems.list")
            .map_or(0, |m| m.calls)
    };
    let before = playlist_calls(&env.fake);
    forget_word_counts(&env).await;
    let tail = engine
        .warm(&niche_user, Priority::Background)
        .await
        .unwrap();
    let tail_calls = playlist_calls(&env.fake) - before;
    let before = playlist_calls(&env.fake);
    forget_word_counts(&env).await;
    let head = engine
        .warm(&popular_users[0], Priority::Background)
        .await
        .unwrap();
    let head_calls = playlist_calls(&env.fake) - before;
    println!(
        "long tail: {tail_calls} uploads refreshed, {} served stale; popular: {head_calls} refreshed, {} stale",
        tail.stale_served, head.stale_served
    );
    // The most-demanded sources all refresh; a good part of the long tail waits on its
    // stale copy, although it asked first.
    assert_eq!(
        head.stale_served, 0,
        "popular sources were held back: {head:?}"
    );
    assert!(
        tail.stale_served >= 10,
        "the allocator held back nothing of the long tail: {tail:?}"
    );
    assert!(
        head_calls > tail_calls,
        "the long tail got as many units as the popular sources"
    );
    assert!(
        tail.pool_size > 0,
        "the long-tail user still gets a pool from the stale copies"
    );
}

/// A warm asks the served set only about its candidates (`PoolStore::served_among`) and
/// learns the last cut's shown ids from the pages. The pool write drops marked videos
/// anyway; what the warm must get right is ranking only what can still be shown, so
/// that no shown video takes a place in its ranking (its pool size is what is stored).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rewarm_never_pools_a_video_already_shown_or_watched() {
    let env = TestEnv::start().await;
    let apps = Apps::build(&env, None, AuthMode::None).await;
    let history = history_in_topic(&env.fake, 2, 3, 4);
    let user = UserId::parse("rewarmed-1").unwrap();
    apps.record_history(user.as_str(), &history.body()).await;
    let engine = &apps.services.engine;
    let path = format!("/api/v1/video/recommendations/{user}");
    let mut shown: HashSet<String> = HashSet::new();
    for round in 0..3 {
        let outcome = engine
            .warm(&user, Priority::Background)
            .await
            .expect("warm");
        let pooled: Vec<String> = engine
            .pool
            .entries(&user)
            .await
            .expect("entries")
            .iter()
            .map(|e| e.video_id().to_owned())
            .collect();
        assert_eq!(
            outcome.pool_size,
            pooled.len(),
            "round {round}: the warm ranked videos already shown"
        );
        assert!(
            pooled.len() >= 60,
            "round {round}: the pool holds only {} entries",
            pooled.len()
        );
        for id in &pooled {
            assert!(
                !shown.contains(id),
                "round {round}: {id} was shown and is pooled again"
            );
            assert!(
                !history.video_ids.contains(id),
                "round {round}: watched {id} pooled"
            );
        }
        for _ in 0..3 {
            let (status, body) = feed_page(&apps, &path).await;
            assert_eq!(status, 200, "{body}");
            shown.extend(reco_tests::apps::video_ids(&body));
        }
    }
    // The marks of the first two rounds were made by the warms after them.
    let marked = engine.pool.served_ids(&user).await.expect("served");
    assert!(marked.len() >= 120, "only {} marks", marked.len());
}

/// Clears the catalog's word counts, so the next warm's profile words are unweighted
/// (`SourceCache::term_idf` gives nothing under `MIN_TERM_DOCS` videos): for tests whose
/// subject is not which words a profile leads with, but what a warm does with them.
/// Records `history` as `user`'s and builds their pool as the warmer would.
async fn record_and_warm(apps: &Apps, user: &UserId, history: &History) -> WarmOutcome {
    apps.record_history(user.as_str(), &history.body()).await;
    apps.services
        .engine
        .warm(user, Priority::Background)
        .await
        .expect("warm")
}

/// The user's next feed page, as a client asks for it: status and body.
async fn feed_page(apps: &Apps, path: &str) -> (u16, serde_json::Value) {
    response_json(
        &apps
            .api
            .handle(api_request("GET", path, &[], None, None))
            .await,
    )
}

async fn forget_word_counts(env: &TestEnv) {
    let mut conn = env
        .redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: () = redis::cmd("DEL")
        .arg(reco_core::store::keys::term_df())
        .arg(reco_core::store::keys::term_docs())
        .query_async(&mut conn)
        .await
        .unwrap();
}

/// Spend nothing first: a warm short of candidates reads what other users' warms already
/// fetched (uploads of more of its own channels, and of the channels users of the same
/// topic watch), whatever its age, before it spends a unit on channels the user has not
/// watched. Two hours after others fetched a topic's channels, a newcomer to it refreshes
/// only their own channel's uploads, not the sixteen related channels a warm would
/// otherwise pay to refresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_warm_serves_what_others_fetched_before_it_spends() {
    let env = TestEnv::start().await;
    let clock = Arc::new(OffsetClock::new());
    let noon: jiff::Timestamp = "2026-11-26T20:00:00Z".parse().unwrap();
    clock.set(noon);
    env.fake.set_clock(noon);
    let apps = Apps::build(&env, Some(clock.clone()), AuthMode::None).await;
    let engine = &apps.services.engine;
    // Seven users of one topic, four channels each, fetch 28 channels' uploads.
    let topic = history_in_topic(&env.fake, 0, 28, 2);
    for (i, chunk) in topic.video_ids.chunks(8).enumerate() {
        let user = UserId::parse(&format!("other-{i}")).unwrap();
        let history = reco_tests::scenario::History {
            video_ids: chunk.to_vec(),
            ..topic.clone()
        };
        apps.record_history(user.as_str(), &history.body()).await;
        forget_word_counts(&env).await;
        engine
            .warm(&user, Priority::Background)
            .await
            .expect("warm");
    }
    // Two hours on, every cached uploads list is stale.
    let later = noon + jiff::SignedDuration::from_hours(2);
    clock.set(later);
    env.fake.set_clock(later);
    let newcomer = UserId::parse("newcomer").unwrap();
    let own = reco_tests::scenario::History {
        video_ids: topic.video_ids[..2].to_vec(),
        ..topic.clone()
    };
    apps.record_history(newcomer.as_str(), &own.body()).await;
    let playlist_calls = |fake: &reco_tests::Fake| {
        fake.counters()
            .per_method
            .get("playlistItems.list")
            .map_or(0, |m| m.calls)
    };
    let before = playlist_calls(&env.fake);
    forget_word_counts(&env).await;
    let outcome = engine
        .warm(&newcomer, Priority::Background)
        .await
        .expect("warm");
    let refreshed = playlist_calls(&env.fake) - before;
    let entries = engine.pool.entries(&newcomer).await.expect("entries");
    let corpus = env.fake.corpus();
    let channels: HashSet<String> = entries
        .iter()
        .filter_map(|e| corpus.video(e.video_id()).map(|v| v.channel_id.clone()))
        .filter(|c| topic.channels.contains(c))
        .collect();
    println!(
        "pool {} from {} of the topic's channels; {refreshed} uploads lists refreshed",
        outcome.pool_size,
        channels.len()
    );
    assert_eq!(
        outcome.pool_size,
        reco_core::engine::POOL_TARGET,
        "{outcome:?}"
    );
    assert!(
        channels.len() > reco_core::engine::PEER_CHANNELS / 2,
        "the pool draws on only {} of the topic's channels",
        channels.len()
    );
    assert_eq!(
        refreshed, 1,
        "the warm paid to refresh channels the user does not watch"
    );
}

/// A user who reads their pool to the end before its refill lands gets the region's
/// chart, unserved videos only, instead of an empty page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_read_to_the_end_serves_the_chart_not_an_empty_page() {
    let env = TestEnv::start().await;
    let apps = Apps::build(&env, None, AuthMode::None).await;
    let history = history_in_topic(&env.fake, 3, 3, 4);
    let user = UserId::parse("reads-to-the-end").unwrap();
    let outcome = record_and_warm(&apps, &user, &history).await;
    let path = format!("/api/v1/video/recommendations/{user}");
    let mut shown: HashSet<String> = HashSet::new();
    let pages = outcome.pool_size.div_ceil(20);
    for _ in 0..pages + 2 {
        let (status, body) = feed_page(&apps, &path).await;
        assert_eq!(status, 200, "{body}");
        let ids = reco_tests::apps::video_ids(&body);
        assert!(
            !ids.is_empty(),
            "an empty page after {} videos: {body}",
            shown.len()
        );
        for id in ids {
            assert!(shown.insert(id.clone()), "{id} served twice");
        }
    }
    assert!(
        shown.len() > outcome.pool_size,
        "nothing past the pool was served"
    );
}

/// A page outside a pool read to the end is chosen from candidates that leave out what
/// the pool showed (its last cut), as the serving script does. They used to be left in:
/// the user's own channels' shown uploads filled the candidates, the deeper steps (alike
/// strangers, the category charts) never ran, and a heavy reader whose region chart was
/// read too got an empty page while the catalog held videos they had never seen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_outside_a_read_pool_leaves_out_what_the_pool_showed() {
    let env = TestEnv::start().await;
    let apps = Apps::build(&env, None, AuthMode::None).await;
    let history = history_in_topic(&env.fake, 4, 3, 4);
    let user = UserId::parse("read-the-pool").unwrap();
    record_and_warm(&apps, &user, &history).await;
    let path = format!("/api/v1/video/recommendations/{user}");
    let mut shown: HashSet<String> = HashSet::new();
    loop {
        let (status, body) = feed_page(&apps, &path).await;
        assert_eq!(status, 200, "{body}");
        let status = &body["meta"]["cache_status"];
        assert!(status == "hit" || status == "stale", "{body}");
        shown.extend(reco_tests::apps::video_ids(&body));
        if body["meta"]["pool_remaining"] == 0 {
            break;
        }
    }
    let own_shown = shown
        .iter()
        .filter(|id| {
            env.fake
                .corpus()
                .video(id)
                .is_some_and(|v| history.channels.contains(&v.channel_id))
        })
        .count();
    assert!(own_shown > 0, "the pool showed none of the user's channels");
    let candidates = apps
        .services
        .engine
        .unpooled_candidates(&user, Vec::new())
        .await
        .expect("candidates");
    let again: Vec<&str> = candidates
        .iter()
        .map(|v| v.video_id.as_str())
        .filter(|id| shown.contains(*id))
        .collect();
    assert!(
        again.is_empty(),
        "{} of {} candidates were shown by the pool already ({own_shown} of the user's channels were): {again:?}",
        again.len(),
        candidates.len()
    );
    assert!(!candidates.is_empty(), "no candidate past the pool");
}

/// A user with no pool yet is served the uploads of their own channels that the catalog
/// already holds (another user's warm fetched them), never a video they watched, before
/// the region's chart; then the chart; and no page is empty while either has something
/// unseen. The chart alone used to be the whole of such a page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_outside_the_pool_serves_the_users_channels_before_the_chart() {
    let env = TestEnv::start().await;
    let apps = Apps::build(&env, None, AuthMode::None).await;
    let history = history_in_topic(&env.fake, 2, 3, 4);
    let warmed = UserId::parse("warmed-first").unwrap();
    record_and_warm(&apps, &warmed, &history).await;
    let newcomer = UserId::parse("no-pool-yet").unwrap();
    apps.record_history(newcomer.as_str(), &history.body())
        .await;
    let path = format!("/api/v1/video/recommendations/{newcomer}");
    let get = || async { feed_page(&apps, &path).await };
    let (status, first) = get().await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["meta"]["cache_status"], "miss", "{first}");
    let videos = first["videos"].as_array().expect("videos");
    assert_eq!(videos.len(), 20, "{first}");
    let own: Vec<&serde_json::Value> = videos
        .iter()
        .take_while(|v| history.channels.contains(v["channel_id"].as_str().unwrap()))
        .collect();
    // 3 channels, the newest 30 cached of each, 4 of them watched.
    assert!(
        own.len() >= 15,
        "{} of the user's channels first: {first}",
        own.len()
    );
    for v in &own {
        let id = v["video_id"].as_str().unwrap();
        assert!(
            !history.video_ids.iter().any(|w| w == id),
            "{id} was watched"
        );
        assert!(
            v["reason"]
                .as_str()
                .unwrap()
                .starts_with("from a channel you watch"),
            "{v}"
        );
    }
    // The rest of the first page and the pages after it: the chart, never repeated,
    // never empty until both are read.
    let mut shown: HashSet<String> = reco_tests::apps::video_ids(&first).into_iter().collect();
    assert_eq!(shown.len(), 20);
    let mut trending = videos.iter().filter(|v| v["trending"] == true).count();
    let of_own = |body: &serde_json::Value| {
        body["videos"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|v| history.channels.contains(v["channel_id"].as_str().unwrap()))
            .count()
    };
    let mut own_served = of_own(&first);
    loop {
        let (status, body) = get().await;
        assert_eq!(status, 200, "{body}");
        let ids = reco_tests::apps::video_ids(&body);
        if ids.is_empty() {
            break;
        }
        own_served += of_own(&body);
        trending += body["videos"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|v| v["trending"] == true)
            .count();
        for id in ids {
            assert!(shown.insert(id.clone()), "{id} served twice");
        }
        assert!(shown.len() < 400, "pages without end");
    }
    assert!(trending > 0, "the chart came after the user's channels");
    // Past the first pages: the served ones are set aside before the serving script's
    // 200, so the rest of what the catalog holds of the channels is still reached (the
    // newest 10 of each, as the page once took, would give 18 unwatched: 37 here).
    assert!(
        own_served >= 30,
        "{own_served} uploads of the user's channels served in all"
    );
}

/// A user who has read all that the catalog holds of their channels (and the chart) is
/// served the cached uploads of channels that users strong in the same words watch,
/// alike ones first, before the chart, never one served twice: the page is empty only
/// when those are read too. Such pages used to be the chart alone, and empty once it
/// was read, while related videos the user had never seen sat in the catalog.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_who_read_their_channels_is_served_channels_alike_in_words() {
    let env = TestEnv::start().await;
    let apps = Apps::build(&env, None, AuthMode::None).await;
    // Six channels of one topic, four watched videos each, in channel order.
    let both = history_in_topic(&env.fake, 2, 6, 4);
    let reader_ids: Vec<String> = both.video_ids[..12].to_vec();
    let reader_channels: HashSet<String> = {
        let corpus = env.fake.corpus();
        reader_ids
            .iter()
            .map(|id| corpus.video(id).expect("corpus video").channel_id.clone())
            .collect()
    };
    let strangers: HashSet<String> = both
        .channels
        .iter()
        .filter(|c| !reader_channels.contains(*c))
        .cloned()
        .collect();
    assert_eq!((reader_channels.len(), strangers.len()), (3, 3));
    // A user of all six: their warm caches the six channels' uploads and records the six
    // under their strongest words.
    let peer = UserId::parse("six-channels").unwrap();
    record_and_warm(&apps, &peer, &both).await;
    // The reader watched three of them, and has no pool: every page is outside it.
    let reader = UserId::parse("three-channels").unwrap();
    let reader_history = reco_tests::scenario::History {
        video_ids: reader_ids.clone(),
        topics: both.topics.clone(),
        channels: reader_channels.clone(),
    };
    apps.record_history(reader.as_str(), &reader_history.body())
        .await;
    let path = format!("/api/v1/video/recommendations/{reader}");
    // 0: the reader's channels, 1: the strangers alike in words, 2: the chart.
    let mut order: Vec<u8> = Vec::new();
    let mut shown: HashSet<String> = HashSet::new();
    loop {
        let (status, body) = feed_page(&apps, &path).await;
        assert_eq!(status, 200, "{body}");
        let videos = body["videos"].as_array().expect("videos");
        if videos.is_empty() {
            break;
        }
        for v in videos {
            let id = v["video_id"].as_str().unwrap();
            assert!(shown.insert(id.to_owned()), "{id} served twice");
            assert!(!reader_ids.iter().any(|w| w == id), "{id} was watched");
            let channel = v["channel_id"].as_str().unwrap();
            let class = if v["trending"] == true {
                2
            } else if reader_channels.contains(channel) {
                0
            } else if strangers.contains(channel) {
                assert!(v["reason"].as_str().unwrap().starts_with("like \""), "{v}");
                1
            } else {
                panic!("{v} is from none of the sources a page outside the pool reads");
            };
            order.push(class);
        }
        assert!(shown.len() < 600, "pages without end");
    }
    let count = |class: u8| order.iter().filter(|c| **c == class).count();
    assert!(count(0) > 0 && count(2) > 0, "{order:?}");
    assert!(
        count(1) >= 20,
        "{} uploads of the channels alike in words served: {order:?}",
        count(1)
    );
    // Each source is read to its end before the next: the user's channels, then the
    // strangers alike in words, then the chart.
    assert!(order.windows(2).all(|w| w[0] <= w[1]), "{order:?}");
}

/// A user whose history's videos the catalog does not hold (the unit that fetches them
/// was refused, or YouTube knows none of them) is someone the warm knows nothing about:
/// it reads the cold-start categories' charts, as for a user with no history, rather
/// than the region's chart alone, which such a user read to the end in minutes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_history_the_catalog_cannot_read_warms_like_a_cold_start() {
    let env = TestEnv::start().await;
    let apps = Apps::build(&env, None, AuthMode::None).await;
    let user = UserId::parse("unknown-history").unwrap();
    let body = serde_json::json!({"events": [
        {"video_id": "AAAAAAAAAAA", "watch_seconds": 300},
        {"video_id": "BBBBBBBBBBB", "watch_seconds": 300},
    ]})
    .to_string();
    apps.record_history(user.as_str(), &body).await;
    let outcome = apps
        .services
        .engine
        .warm(&user, Priority::Background)
        .await
        .expect("warm");
    assert_eq!(outcome.history_len, 2);
    let request = PageRequest {
        max_results: 50,
        category_id: None,
        include_trending: true,
    };
    let mut categories: HashSet<String> = HashSet::new();
    loop {
        let page = apps
            .services
            .engine
            .take_page(&user, &request)
            .await
            .expect("page");
        if page.videos.is_empty() {
            break;
        }
        categories.extend(page.videos.into_iter().map(|v| v.category_id));
    }
    assert!(
        outcome.pool_size > 50 && categories.len() >= 3,
        "pool of {} from categories {categories:?}",
        outcome.pool_size
    );
}
