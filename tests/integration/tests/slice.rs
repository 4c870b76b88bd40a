//! The first vertical slice, end to end through the real handler functions, real Redis,
//! real SQS (moto) and the fake YouTube: Cognito event in, SQS message, warmer, pool in
//! Redis, then refreshes with no video in common.

use std::collections::HashSet;

use reco_core::config::AuthMode;
use reco_tests::apps::{deliver_once, queue_depth};
use reco_tests::scenario::history_in_topic;
use reco_tests::{Apps, TestEnv, api_request, response_json};
use serde_json::Value;

const USER: &str = "8f1e2d3c-0000-4000-8000-123456789abc";

fn cognito_event() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../events/cognito-post-authentication.json"
    ))
    .expect("events/cognito-post-authentication.json");
    serde_json::from_str(&text).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_warms_and_every_refresh_shows_new_videos() {
    let env = TestEnv::start().await;
    let apps = Apps::build(&env, None, AuthMode::Jwt).await;
    let history = history_in_topic(&env.fake, 0, 3, 4);

    // The user's watch history, through the API with their own JWT.
    let response = apps
        .api
        .handle(api_request(
            "POST",
            &format!("/api/v1/video/history/{USER}"),
            &[],
            Some(&history.body()),
            Some(USER),
        ))
        .await;
    let (status, body) = response_json(&response);
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["accepted"], 12);

    // Sign-in: the Cognito event comes back unchanged and one warm request is queued.
    let event = cognito_event();
    let returned = apps.login.handle(event.clone()).await;
    assert_eq!(returned, event);
    let sqs = env.sqs.client().await;
    assert_eq!(queue_depth(&sqs, &env.queue_url).await, 1);

    // The event source mapping hands it to the warmer, which builds the pool.
    let units_before = env.fake.counters().units_used;
    let outcomes = deliver_once(&sqs, &env.queue_url, &apps.warmer, 10, 2).await;
    assert_eq!(outcomes.len(), 1);
    match &outcomes[0].1 {
        reco_warmer::ItemOutcome::Warmed(w) => assert!(w.pool_size >= 200, "pool too small: {w:?}"),
        other => panic!("warm did not build a pool: {other:?}"),
    }
    assert!(
        env.fake.counters().units_used > units_before,
        "the warm must have called YouTube"
    );
    let mut redis = env.redis.client().get_connection().unwrap();
    // The pool's pages: a header line each, then one entry per line.
    let pages: Vec<String> = redis::cmd("LRANGE")
        .arg(format!("reco:{{u:{USER}}}:feed"))
        .arg(0)
        .arg(-1)
        .query(&mut redis)
        .unwrap();
    let pool_size: usize = pages.iter().map(|p| p.lines().count() - 1).sum();
    assert!(pool_size >= 200);

    // Refreshes: full pages, nothing repeated, nothing watched, related to the history.
    let watched: HashSet<&String> = history.video_ids.iter().collect();
    let mut seen = HashSet::new();
    let mut related = 0;
    for refresh in 0..3 {
        let path = format!("/api/v1/video/recommendations/{USER}");
        let response = apps
            .api
            .handle(api_request(
                "GET",
                &path,
                &[("max_results", "20")],
                None,
                Some(USER),
            ))
            .await;
        let (status, body) = response_json(&response);
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["success"], true);
        assert_eq!(body["count"], 20, "refresh {refresh}: {body}");
        assert_eq!(body["meta"]["cache_status"], "hit", "refresh {refresh}");
        for id in reco_tests::apps::video_ids(&body) {
            assert!(!watched.contains(&id), "watched video {id} recommended");
            assert!(seen.insert(id.clone()), "video {id} shown twice");
            if history.relates_to(&env.fake, &id) {
                related += 1;
            }
        }
    }
    assert!(
        related * 100 >= seen.len() * 80,
        "only {related} of {} related",
        seen.len()
    );
}
