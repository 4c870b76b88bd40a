//! Quota runs out half-way through a batch: the rest are deferred (re-sent with an SQS
//! delay, which moto honours), come back while the day is still spent and are deferred
//! again without rebuilding anything, and once the fake's and the guard's clocks pass
//! Pacific midnight they are all warmed. None lost, none in the DLQ, no quota violation
//! at the fake.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fake_youtube::Limits;
use jiff::{SignedDuration, Timestamp};
use reco_core::UserId;
use reco_core::clock::{Clock, OffsetClock, next_pacific_midnight};
use reco_core::config::AuthMode;
use reco_core::engine::PageRequest;
use reco_core::messages::{WarmReason, WarmRequest};
use reco_core::queue::{WarmQueue, sqs_client_with};
use reco_tests::apps::{config_with, deliver_once, queue_depth};
use reco_tests::scenario::history_in_topic;
use reco_tests::{Apps, TestEnv, api_request, response_json};
use reco_warmer::{ItemOutcome, SHORT_POOL, Warmer};

/// Units per day at the fake and the guard. The warmer may spend the background share
/// after the margin: floor(DAILY_UNITS × 0.95 × 0.8). Sized so that roughly half of the
/// eight users fit in a day.
const DAILY_UNITS: u64 = 200;
const USERS: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_exhausted_mid_batch_defers_the_rest_until_pacific_midnight() {
    let env = TestEnv::start().await;
    // Ten to midnight in Los Angeles, on both clocks: the shared source caches built on
    // day 1 are still fresh after midnight, so day 2 pays only for what day 1 skipped.
    let late_evening: Timestamp = "2026-11-26T07:50:00Z".parse().unwrap();
    let clock = Arc::new(OffsetClock::new());
    clock.set(late_evening);
    env.fake.set_clock(late_evening);
    env.fake.set_limits(Limits {
        daily_units: DAILY_UNITS,
        daily_searches: 100,
        max_calls_per_second: None,
        max_units_per_minute: None,
    });
    let config = config_with(
        &env,
        &[
            ("YOUTUBE_DAILY_UNITS", &DAILY_UNITS.to_string()),
            ("YOUTUBE_MAX_CALLS_PER_SECOND", "100"),
            ("YOUTUBE_MAX_UNITS_PER_MINUTE", "3000"),
            // The day's cap and midnight are the subject; the day's pace would spread a
            // 200-unit day at one unit every seven minutes (its own tests are in
            // quota_guard.rs and quota::pacing).
            ("YOUTUBE_DAY_PACING", "off"),
        ],
    );
    let apps = Apps::build_with(&env, config, Some(clock.clone()), AuthMode::None).await;
    // A queue with a 1 s visibility timeout, so an item that fails transiently (the
    // guard fails closed when Redis is slow on a loaded machine) is redelivered quickly.
    let (queue_url, dlq_url) = env.sqs.create_queue_with_dlq("reco-warm-quota", 3, 1).await;
    let endpoint = env.sqs.endpoint();
    let queue = WarmQueue::new(
        sqs_client_with(Some(&endpoint), Some(Duration::from_secs(5))).await,
        queue_url.clone(),
        Duration::from_secs(5),
    );
    // One link of the deferral chain is 2 s instead of SQS's 15 minutes, so a deferred
    // message notices the moved clocks within seconds of real time.
    let mut warmer = Warmer::new(&apps.services, queue.clone());
    warmer.max_defer = Duration::from_secs(2);
    let warmer = Arc::new(warmer);
    let sqs = env.sqs.client().await;

    let users: Vec<String> = (0..USERS).map(|i| format!("quota-user-{i}")).collect();
    let mut originals = HashSet::new();
    for (i, user) in users.iter().enumerate() {
        let history = history_in_topic(&env.fake, i, 3, 4);
        let response = apps
            .api
            .handle(api_request(
                "POST",
                &format!("/api/v1/video/history/{user}"),
                &[],
                Some(&history.body()),
                None,
            ))
            .await;
        assert_eq!(response_json(&response).0, 202);
        let request = WarmRequest::new(
            UserId::parse(user).unwrap(),
            WarmReason::SignIn,
            clock.now(),
        );
        originals.insert(queue.send(&request, Duration::ZERO).await.unwrap());
    }

    // Day 1: the batch of eight (and SQS's redelivery of any transient failure).
    let mut first: HashMap<String, ItemOutcome> = HashMap::new();
    let mut transient = 0;
    let started = Instant::now();
    while first.len() < USERS {
        assert!(started.elapsed() < Duration::from_secs(30), "{first:?}");
        for (id, outcome) in deliver_once(&sqs, &queue_url, &warmer, 10, 1).await {
            if outcome.is_failure() {
                transient += 1;
                assert!(matches!(outcome, ItemOutcome::Transient(_)), "{outcome:?}");
            } else if originals.contains(&id) {
                first.insert(id, outcome);
            } else {
                // A deferral that came back while day 1 is still spent.
                assert!(
                    matches!(
                        outcome,
                        ItemOutcome::Deferred {
                            partial_pool: 0,
                            ..
                        }
                    ),
                    "{outcome:?}"
                );
            }
        }
    }
    let warmed_day1 = first
        .values()
        .filter(|o| matches!(o, ItemOutcome::Warmed(_)))
        .count();
    let deferred: Vec<&ItemOutcome> = first
        .values()
        .filter(|o| matches!(o, ItemOutcome::Deferred { .. }))
        .collect();
    let day1 = env.fake.counters();
    println!(
        "day 1: {warmed_day1} warmed, {} deferred {deferred:?} ({transient} transient failures retried); fake units {} of {DAILY_UNITS}",
        deferred.len(),
        day1.units_used
    );
    assert!(warmed_day1 >= 1, "quota should last for some: {first:?}");
    assert!(!deferred.is_empty(), "quota should run out: {first:?}");
    assert_eq!(warmed_day1 + deferred.len(), USERS, "{first:?}");
    for o in &deferred {
        let ItemOutcome::Deferred { delay_secs, .. } = o else {
            unreachable!()
        };
        assert_eq!(*delay_secs, 2, "capped at the warmer's max_defer");
    }

    // The deferrals are on the queue, delayed: counted, but not receivable at once.
    assert_eq!(queue_depth(&sqs, &queue_url).await, deferred.len());
    let early = sqs
        .receive_message()
        .queue_url(&queue_url)
        .max_number_of_messages(10)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default();
    assert!(early.is_empty(), "moto delivered a delayed message early");

    // Still day 1 when they come back: deferred again, nothing rebuilt, nothing spent.
    tokio::time::sleep(Duration::from_millis(2300)).await;
    let mut hops = Vec::new();
    let started = Instant::now();
    while hops.len() < deferred.len() && started.elapsed() < Duration::from_secs(10) {
        for (_, outcome) in deliver_once(&sqs, &queue_url, &warmer, 10, 1).await {
            if !outcome.is_failure() {
                hops.push(outcome);
            }
        }
    }
    assert_eq!(
        hops.len(),
        deferred.len(),
        "every deferral came back: {hops:?}"
    );
    for o in &hops {
        assert!(
            matches!(
                o,
                ItemOutcome::Deferred {
                    partial_pool: 0,
                    ..
                }
            ),
            "a deferral that comes back on a spent day is deferred again untouched: {o:?}"
        );
    }
    assert_eq!(env.fake.counters().requests, day1.requests);

    // Both clocks pass Pacific midnight (and the fake's day turns with them).
    let after_midnight = next_pacific_midnight(clock.now())
        .checked_add(SignedDuration::from_secs(60))
        .unwrap();
    clock.set(after_midnight);
    env.fake.set_clock(after_midnight);

    let started = Instant::now();
    let mut later = Vec::new();
    while queue_depth(&sqs, &queue_url).await > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "deferred warms not processed after midnight: {later:?}"
        );
        later.extend(deliver_once(&sqs, &queue_url, &warmer, 10, 1).await);
    }
    let pool_sizes: Vec<usize> = later
        .iter()
        .filter_map(|(_, o)| match o {
            ItemOutcome::Warmed(w) => Some(w.pool_size),
            _ => None,
        })
        .collect();
    let day2 = env.fake.counters();
    println!(
        "day 2: {} warmed (pool sizes {pool_sizes:?}) in {:?}; fake units today {}, quota violations {}",
        pool_sizes.len(),
        started.elapsed(),
        day2.units_used,
        day2.quota_violations
    );
    assert_eq!(
        pool_sizes.len(),
        deferred.len(),
        "every deferred user warmed once after midnight: {later:?}"
    );
    assert!(
        later
            .iter()
            .all(|(_, o)| !matches!(o, ItemOutcome::Poison(_))),
        "{later:?}"
    );
    // Every user now has a full pool; nothing is left anywhere.
    for user in &users {
        let page = apps
            .services
            .engine
            .take_page(
                &UserId::parse(user).unwrap(),
                &PageRequest {
                    max_results: 0,
                    category_id: None,
                    include_trending: true,
                },
            )
            .await
            .unwrap();
        println!("{user}: pool of {}", page.pool_remaining);
        assert!(
            page.pool_remaining >= SHORT_POOL,
            "{user}: pool of {}",
            page.pool_remaining
        );
    }
    assert_eq!(queue_depth(&sqs, &queue_url).await, 0);
    assert_eq!(queue_depth(&sqs, &dlq_url).await, 0, "nothing in the DLQ");
    assert_eq!(day2.quota_violations, 0);
    assert!(day2.units_used <= DAILY_UNITS);
}
