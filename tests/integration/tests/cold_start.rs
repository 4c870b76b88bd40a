//! Cold start: a user with no history gets the region's charts at once and a pool of
//! charts after the first warm, never an error; a user who declared interests (topics,
//! categories) but watched nothing gets a feed in those interests.

use std::collections::HashSet;

use reco_core::UserId;
use reco_core::config::AuthMode;
use reco_core::quota::Priority;
use reco_tests::apps::{deliver_once, video_ids};
use reco_tests::{Apps, TestEnv, api_request, response_json};
use serde_json::{Value, json};

async fn feed(apps: &Apps, user: &str, max_results: &str) -> (u16, Value) {
    response_json(
        &apps
            .api
            .handle(api_request(
                "GET",
                &format!("/api/v1/video/recommendations/{user}"),
                &[("max_results", max_results)],
                None,
                None,
            ))
            .await,
    )
}

async fn post_history(apps: &Apps, user: &str, body: &Value) -> (u16, Value) {
    response_json(
        &apps
            .api
            .handle(api_request(
                "POST",
                &format!("/api/v1/video/history/{user}"),
                &[],
                Some(&body.to_string()),
                None,
            ))
            .await,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_with_no_history_gets_charts_at_once_then_ten_new_pages() {
    let env = TestEnv::start().await;
    let apps = Apps::build(&env, None, AuthMode::None).await;
    let sqs = env.sqs.client().await;
    let user = "newcomer-1";

    // First request: no pool, no history. The region's chart, served at once.
    let (status, body) = feed(&apps, user, "20").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["meta"]["cache_status"], "miss", "{body}");
    let first = video_ids(&body);
    assert_eq!(first.len(), 20, "{body}");
    assert!(
        body["videos"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v["trending"] == true),
        "a cold page is the chart: {body}"
    );

    // The warm the miss enqueued, as Lambda would deliver it.
    let warmed = deliver_once(&sqs, &env.queue_url, &apps.warmer, 10, 0).await;
    assert_eq!(warmed.len(), 1, "the miss enqueued one warm");
    let units_after_warm = env.fake.counters().units_used;

    // Ten refreshes of twenty from the pool: full pages, nothing shown twice.
    let mut seen: HashSet<String> = HashSet::new();
    for refresh in 0..10 {
        let (status, body) = feed(&apps, user, "20").await;
        assert_eq!(status, 200, "{body}");
        let page = video_ids(&body);
        assert_eq!(page.len(), 20, "refresh {refresh}: {}", body["meta"]);
        for id in page {
            assert!(seen.insert(id.clone()), "refresh {refresh}: {id} twice");
        }
    }
    let searches = env.fake.counters().searches_used;
    println!(
        "cold start: first page at once (miss), then 10 full pages of new chart videos; \
         {units_after_warm} units, {searches} searches for the warm"
    );
    assert_eq!(
        searches, 0,
        "a user with nothing to search for costs no search"
    );
    assert!(units_after_warm <= 10, "{units_after_warm} units");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declared_interests_shape_a_feed_before_any_watch() {
    let env = TestEnv::start().await;
    let apps = Apps::build(&env, None, AuthMode::None).await;
    let topic = {
        let corpus = env.fake.corpus();
        let mut topics: Vec<_> = corpus.topics().iter().collect();
        topics.sort_by(|a, b| b.video_count.cmp(&a.video_count).then(a.name.cmp(&b.name)));
        topics[2].clone()
    };
    let category_name = reco_core::domain::category_name(&topic.category_id).unwrap();

    // Bad interests are a 400 naming the field, and nothing is written.
    let (status, body) = post_history(
        &apps,
        "declarer",
        &json!({"interests": {"topics": [topic.name], "categories": ["knitting-ish"]}}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["field"], "interests.categories", "{body}");
    let (status, body) = post_history(
        &apps,
        "declarer",
        &json!({"interests": {"topics": "chess"}}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["field"], "interests.topics", "{body}");

    // Interests only, no events: accepted, normalised, echoed.
    let upper = topic.name.to_uppercase();
    let (status, body) = post_history(
        &apps,
        "declarer",
        &json!({"interests": {"topics": [upper], "categories": [category_name.to_lowercase()]}}),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["accepted"], 0);
    assert_eq!(body["interests"]["topics"], json!([topic.name]));
    assert_eq!(body["interests"]["categories"], json!([topic.category_id]));

    let user = UserId::parse("declarer").unwrap();
    let outcome = apps
        .services
        .engine
        .warm(&user, Priority::Background)
        .await
        .expect("warm");
    assert!(outcome.pool_size >= 100, "{outcome:?}");

    let (mut served, mut in_interests) = (0usize, 0usize);
    let mut seen = HashSet::new();
    for refresh in 0..5 {
        let (status, body) = feed(&apps, "declarer", "20").await;
        assert_eq!(status, 200, "{body}");
        let page = video_ids(&body);
        assert_eq!(page.len(), 20, "refresh {refresh}: {}", body["meta"]);
        for id in page {
            assert!(seen.insert(id.clone()), "{id} twice");
            let corpus = env.fake.corpus();
            let video = corpus.video(&id).expect("a corpus video");
            served += 1;
            in_interests +=
                usize::from(video.topic == topic.name || video.category_id == topic.category_id);
        }
    }
    let share = in_interests as f64 / served as f64;
    let counters = env.fake.counters();
    println!(
        "declared interests ({} / {category_name}): {in_interests} of {served} served in them \
         ({:.1}%); warm cost {} units, {} searches",
        topic.name,
        share * 100.0,
        counters.units_used,
        counters.searches_used
    );
    assert!(
        share >= 0.8,
        "only {:.1}% in the declared interests",
        share * 100.0
    );

    // Clearing them: an empty set is stored as none.
    let (status, _) = post_history(
        &apps,
        "declarer",
        &json!({"interests": {"topics": [], "categories": []}}),
    )
    .await;
    assert_eq!(status, 202);
    assert!(
        apps.services
            .engine
            .history
            .interests(&user)
            .await
            .unwrap()
            .is_empty()
    );
}
