//! The Supabase watch-history source (`HISTORY_SOURCE=supabase`) against the local
//! PostgREST double: the query it sends, what it reads back, its errors (which name
//! Supabase and never hold the service key), and a warm through the real engine and
//! warmer, including a failing Supabase whose warm SQS retries until it succeeds.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reco_core::UserId;
use reco_core::config::Config;
use reco_core::engine::supabase::{SupabaseConfig, SupabaseError, SupabaseHistory};
use reco_core::engine::{EngineError, HistorySource, PageRequest};
use reco_core::messages::{WarmReason, WarmRequest};
use reco_core::quota::Priority;
use reco_core::wiring::Services;
use reco_tests::TestEnv;
use reco_tests::apps::{queue_depth, sqs_event_from_messages};
use reco_tests::postgrest::{PostgrestDouble, TEST_SERVICE_KEY};
use reco_tests::scenario::history_in_topic;
use reco_tests::services::free_port;
use reco_warmer::{ItemOutcome, Warmer};
use serde_json::{Value, json};

fn config(url: &str) -> SupabaseConfig {
    SupabaseConfig {
        url: url.to_owned(),
        service_key: TEST_SERVICE_KEY.to_owned(),
        table: "watch_history".into(),
        user_column: "user_id".into(),
        video_column: "video_id".into(),
        watched_at_column: "watched_at".into(),
        watch_seconds_column: Some("watch_seconds".into()),
        interests_table: None,
    }
}

fn user(id: &str) -> UserId {
    UserId::parse(id).unwrap()
}

/// An 11-character video id from a number.
fn vid(n: usize) -> String {
    format!("vid{n:08}")
}

/// `2026-11-25T10:mm:00Z` in Postgres' `timestamptz` text form.
fn pg_time(minute: usize) -> String {
    format!("2026-11-25 10:{minute:02}:00+00")
}

fn ids(events: &[reco_core::WatchEvent]) -> Vec<String> {
    events.iter().map(|e| e.video_id.clone()).collect()
}

fn assert_no_key(text: &str) {
    assert!(
        !text.contains(TEST_SERVICE_KEY) && !text.contains("TEST-secret"),
        "the service key leaked into {text:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_double_speaks_postgrest() {
    let db = PostgrestDouble::spawn(TEST_SERVICE_KEY);
    db.insert(
        "watch_history",
        [
            json!({"user_id": "a", "video_id": "v1", "watched_at": "2026-11-25 10:00:00+00", "watch_seconds": 10}),
            json!({"user_id": "a", "video_id": "v2", "watched_at": "2026-11-25T10:05:00Z", "watch_seconds": null}),
            json!({"user_id": "a", "video_id": "v3", "watched_at": null, "watch_seconds": 30}),
            json!({"user_id": "b", "video_id": "v4", "watched_at": "2026-11-25 10:03:00+00", "watch_seconds": 40}),
        ],
    );
    let http = reqwest::Client::new();
    let get = |query: &'static [(&'static str, &'static str)], key: Option<&'static str>| {
        let mut request = http
            .get(format!("{}/rest/v1/watch_history", db.url()))
            .query(query);
        if let Some(key) = key {
            request = request.header("apikey", key);
        }
        async move {
            let response = request.send().await.expect("double answers");
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.expect("JSON body"))
        }
    };
    let key = Some(TEST_SERVICE_KEY);
    let videos = |body: &Value| -> Vec<String> {
        body.as_array()
            .unwrap()
            .iter()
            .map(|r| r["video_id"].as_str().unwrap().to_owned())
            .collect()
    };

    // select returns only those keys; eq filters; timestamps compare as instants
    // whatever their text form; Postgres' default DESC puts NULLs first.
    let (status, body) = get(
        &[
            ("select", "video_id,watched_at"),
            ("user_id", "eq.a"),
            ("order", "watched_at.desc"),
        ],
        key,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(videos(&body), ["v3", "v2", "v1"]);
    assert_eq!(
        body[1],
        json!({"video_id": "v2", "watched_at": "2026-11-25T10:05:00Z"})
    );
    let (_, body) = get(
        &[
            ("user_id", "eq.a"),
            ("order", "watched_at.desc.nullslast"),
            ("limit", "2"),
        ],
        key,
    )
    .await;
    assert_eq!(videos(&body), ["v2", "v1"]);
    assert_eq!(
        body[0].as_object().unwrap().len(),
        4,
        "no select: every column"
    );
    let (_, body) = get(&[("user_id", "neq.a"), ("order", "watched_at.asc")], key).await;
    assert_eq!(videos(&body), ["v4"]);
    let (_, body) = get(
        &[
            ("watch_seconds", "gt.10"),
            ("watch_seconds", "lt.40"),
            ("order", "video_id"),
        ],
        key,
    )
    .await;
    assert_eq!(videos(&body), ["v3"]);
    let (_, body) = get(
        &[
            ("watched_at", "gt.2026-11-25T10:01:00Z"),
            ("order", "video_id.desc"),
        ],
        key,
    )
    .await;
    assert_eq!(videos(&body), ["v4", "v2"]);

    // Errors, in PostgREST's shapes.
    let (status, body) = get(&[("select", "video_id")], None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("PGRST301")),
        "{body}"
    );
    let (status, body) = get(&[("select", "video_id")], Some("wrong-key")).await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = get(&[("select", "video_id,nope")], key).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("42703")),
        "{body}"
    );
    let (status, body) = get(&[("nope", "eq.1")], key).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("42703")),
        "{body}"
    );
    let (status, body) = get(&[("user_id", "resembles.a")], key).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("PGRST100")),
        "{body}"
    );
    let response = http
        .get(format!("{}/rest/v1/missing", db.url()))
        .header("apikey", TEST_SERVICE_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "42P01");
    assert_eq!(
        body["message"],
        "relation \"public.missing\" does not exist"
    );

    // Injected failures come first, then it recovers; every request was recorded.
    db.fail_next(2, 503);
    assert_eq!(get(&[], key).await.0, 503);
    assert_eq!(get(&[], key).await.0, 503);
    assert_eq!(get(&[], key).await.0, 200);
    let requests = db.requests();
    assert_eq!(requests.len(), 14);
    assert_eq!(requests[0].path, "/rest/v1/watch_history");
    assert_eq!(
        requests[0].param("order").as_deref(),
        Some("watched_at.desc")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recent_reads_only_the_users_rows_newest_first_up_to_the_limit() {
    let db = PostgrestDouble::spawn(TEST_SERVICE_KEY);
    // Inserted oldest first for alice, interleaved with bob's, so the order must come
    // from `order=`, not from insertion.
    let mut rows = Vec::new();
    for minute in 0..10 {
        rows.push(json!({"user_id": "alice", "video_id": vid(minute), "watched_at": pg_time(minute), "watch_seconds": 60 + minute}));
        rows.push(json!({"user_id": "bob", "video_id": vid(100 + minute), "watched_at": pg_time(minute + 30), "watch_seconds": 5}));
    }
    db.insert("watch_history", rows);
    let history = SupabaseHistory::new(config(&db.url()));

    let events = history
        .recent(&user("alice"), 4)
        .await
        .expect("alice's history");
    assert_eq!(ids(&events), [vid(9), vid(8), vid(7), vid(6)]);
    assert_eq!(events[0].watch_seconds, Some(69));
    assert_eq!(
        events[0].watched_at,
        Some("2026-11-25T10:09:00Z".parse().unwrap())
    );
    let all = history.recent(&user("alice"), 50).await.unwrap();
    assert_eq!(
        ids(&all),
        (0..10).rev().map(vid).collect::<Vec<_>>(),
        "alice's rows only"
    );
    assert!(
        all.windows(2).all(|w| w[0].watched_at > w[1].watched_at),
        "newest first"
    );
    let bob = history.recent(&user("bob"), 50).await.unwrap();
    assert_eq!(bob.len(), 10);
    assert_eq!(bob[0].video_id, vid(109));
    assert!(history.recent(&user("carol"), 50).await.unwrap().is_empty());

    // The request, as PostgREST sees it.
    let request = &db.requests()[0];
    assert_eq!(request.path, "/rest/v1/watch_history");
    assert_eq!(
        request.pairs(),
        [
            (
                "select".to_owned(),
                "video_id,watched_at,watch_seconds".to_owned()
            ),
            ("user_id".to_owned(), "eq.alice".to_owned()),
            ("order".to_owned(), "watched_at.desc.nullslast".to_owned()),
            ("limit".to_owned(), "4".to_owned()),
        ]
    );
    assert_eq!(request.apikey.as_deref(), Some(TEST_SERVICE_KEY));
    assert_eq!(
        request.authorization.as_deref(),
        Some(format!("Bearer {TEST_SERVICE_KEY}").as_str())
    );
    assert_eq!(request.accept.as_deref(), Some("application/json"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declared_interests_come_from_the_interests_table_when_configured() {
    let db = PostgrestDouble::spawn(TEST_SERVICE_KEY);
    db.insert(
        "user_interests",
        [
            // Arrays (Postgres text[]), with an entry that does not validate.
            json!({"user_id": "alice", "topics": ["Jazz  Piano", "a{b}"], "categories": ["music", "knitting", "20"]}),
            // Comma-separated text.
            json!({"user_id": "bob", "topics": "chess, minecraft", "categories": "Gaming"}),
        ],
    );
    // Not configured: no request, no interests.
    let plain = SupabaseHistory::new(config(&db.url()));
    assert!(plain.interests(&user("alice")).await.unwrap().is_empty());
    assert!(db.requests().is_empty());

    let history = SupabaseHistory::new(SupabaseConfig {
        interests_table: Some("user_interests".into()),
        ..config(&db.url())
    });
    let alice = history.interests(&user("alice")).await.unwrap();
    assert_eq!(alice.topics, ["jazz piano"]);
    assert_eq!(alice.categories, ["10", "20"]);
    let bob = history.interests(&user("bob")).await.unwrap();
    assert_eq!(bob.topics, ["chess", "minecraft"]);
    assert_eq!(bob.categories, ["20"]);
    assert!(history.interests(&user("carol")).await.unwrap().is_empty());
    let request = &db.requests()[0];
    assert_eq!(request.path, "/rest/v1/user_interests");
    assert_eq!(
        request.pairs(),
        [
            ("select".to_owned(), "topics,categories".to_owned()),
            ("user_id".to_owned(), "eq.alice".to_owned()),
            ("limit".to_owned(), "1".to_owned()),
        ]
    );
    // A failing Supabase is a clear error without the key, as for the history.
    db.fail_next(1, 503);
    let err = history.interests(&user("alice")).await.unwrap_err();
    assert!(
        matches!(err, SupabaseError::Http { status: 503, .. }),
        "{err}"
    );
    assert_no_key(&err.to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_table_and_column_names_and_lenient_rows() {
    let db = PostgrestDouble::spawn(TEST_SERVICE_KEY);
    // A default-named table exists too, with other data: it must not be read.
    db.insert(
        "watch_history",
        [json!({"user_id": "u+1@example.com", "video_id": vid(999), "watched_at": pg_time(59)})],
    );
    db.create_table("yt_views", &["id", "uid", "yt_video", "seen_at", "secs"]);
    db.insert(
        "yt_views",
        [
            json!({"id": 1, "uid": "u+1@example.com", "yt_video": vid(1), "seen_at": "2026-11-25T10:01:00Z", "secs": 12.4}),
            json!({"id": 2, "uid": "u+1@example.com", "yt_video": "https://youtu.be/x", "seen_at": pg_time(9), "secs": 3}),
            json!({"id": 3, "uid": "u+1@example.com", "yt_video": vid(3), "seen_at": "2026-11-25 10:03:00.250+00", "secs": null}),
            json!({"id": 4, "uid": "u 1@example.com", "yt_video": vid(4), "seen_at": pg_time(8), "secs": 1}),
            json!({"id": 5, "uid": "u+1@example.com", "yt_video": vid(5), "seen_at": null, "secs": 7}),
        ],
    );
    let history = SupabaseHistory::new(SupabaseConfig {
        table: "yt_views".into(),
        user_column: "uid".into(),
        video_column: "yt_video".into(),
        watched_at_column: "seen_at".into(),
        watch_seconds_column: Some("secs".into()),
        interests_table: None,
        ..config(&format!("{}/", db.url()))
    });
    let events = history
        .recent(&user("u+1@example.com"), 10)
        .await
        .expect("history from a custom table");
    // The row with a URL for a video id is skipped; NULL times come last; the `+` of
    // the user id survived the query string (the user with a space is someone else).
    assert_eq!(ids(&events), [vid(3), vid(1), vid(5)]);
    assert_eq!(events[0].watch_seconds, None);
    assert_eq!(
        events[0].watched_at,
        Some("2026-11-25T10:03:00.25Z".parse().unwrap())
    );
    assert_eq!(events[1].watch_seconds, Some(12));
    assert_eq!(events[2].watched_at, None);
    let request = &db.requests()[0];
    assert_eq!(request.path, "/rest/v1/yt_views");
    assert_eq!(request.param("uid").as_deref(), Some("eq.u+1@example.com"));
    assert!(
        request.query.contains("u%2B1%40example.com"),
        "{}",
        request.query
    );
    assert_eq!(
        request.param("select").as_deref(),
        Some("yt_video,seen_at,secs")
    );

    // Without a seconds column it is not selected at all.
    let history = SupabaseHistory::new(SupabaseConfig {
        watch_seconds_column: None,
        interests_table: None,
        ..history.config().clone()
    });
    let events = history.recent(&user("u+1@example.com"), 10).await.unwrap();
    assert_eq!(events.len(), 3);
    assert!(events.iter().all(|e| e.watch_seconds.is_none()));
    assert_eq!(
        db.requests()[1].param("select").as_deref(),
        Some("yt_video,seen_at")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_failure_is_a_clear_error_without_the_key() {
    let db = PostgrestDouble::spawn(TEST_SERVICE_KEY);
    db.insert(
        "watch_history",
        [json!({"user_id": "alice", "video_id": vid(1), "watched_at": pg_time(1), "watch_seconds": 1})],
    );
    let alice = user("alice");
    let good = SupabaseHistory::new(config(&db.url()));

    // A wrong key: 401, and neither the wrong nor the right key in the text.
    let wrong = SupabaseHistory::new(SupabaseConfig {
        service_key: "sb-wrong-TEST-secret-key".into(),
        ..config(&db.url())
    });
    let err = wrong.recent(&alice, 10).await.unwrap_err();
    assert!(
        matches!(err, SupabaseError::Http { status: 401, .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains("supabase") && text.contains("401"), "{text}");
    assert!(!text.contains("sb-wrong"), "{text}");
    assert_no_key(&text);

    // Unknown table or column: PostgREST's message is passed on.
    let err = SupabaseHistory::new(SupabaseConfig {
        table: "no_such_table".into(),
        ..config(&db.url())
    })
    .recent(&alice, 10)
    .await
    .unwrap_err();
    match &err {
        SupabaseError::Http { status, message } => {
            assert_eq!(*status, 404);
            assert!(
                message.contains("relation \"public.no_such_table\" does not exist"),
                "{message}"
            );
        }
        other => panic!("expected HTTP 404, got {other:?}"),
    }
    let err = SupabaseHistory::new(SupabaseConfig {
        watched_at_column: "created_at".into(),
        ..config(&db.url())
    })
    .recent(&alice, 10)
    .await
    .unwrap_err();
    assert!(
        matches!(err, SupabaseError::Http { status: 400, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("created_at does not exist"),
        "{err}"
    );

    // An erroring Supabase, then recovered.
    db.fail_next(1, 500);
    let err = good.recent(&alice, 10).await.unwrap_err();
    assert!(
        matches!(err, SupabaseError::Http { status: 500, .. }),
        "{err:?}"
    );
    assert_no_key(&err.to_string());
    assert_eq!(good.recent(&alice, 10).await.unwrap().len(), 1);

    // Nobody listening.
    let dead = SupabaseHistory::new(config(&format!("http://127.0.0.1:{}", free_port())));
    let started = Instant::now();
    let err = dead.recent(&alice, 10).await.unwrap_err();
    assert!(matches!(err, SupabaseError::Unreachable(_)), "{err:?}");
    assert!(err.to_string().starts_with("supabase unreachable"), "{err}");
    assert_no_key(&err.to_string());
    assert_no_key(&format!("{err:?}"));
    assert!(started.elapsed() < Duration::from_secs(2));

    // Too slow: the 3 s budget ends the request.
    db.set_delay(Some(Duration::from_secs(6)));
    let started = Instant::now();
    let err = good.recent(&alice, 10).await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(matches!(err, SupabaseError::Unreachable(_)), "{err:?}");
    assert!(err.to_string().contains("timed out"), "{err}");
    assert!(
        elapsed >= Duration::from_millis(2500) && elapsed < Duration::from_secs(5),
        "{elapsed:?}"
    );
    assert_no_key(&err.to_string());
    db.set_delay(None);
    assert_eq!(good.recent(&alice, 10).await.unwrap().len(), 1);
    assert_no_key(&format!("{good:?}"));
}

/// The functions' config for `env`, with the history in Supabase at `url`.
fn supabase_config(env: &TestEnv, url: &str) -> Config {
    let mut vars = env.env();
    vars.extend([
        ("HISTORY_SOURCE".to_owned(), "supabase".to_owned()),
        ("SUPABASE_URL".to_owned(), url.to_owned()),
        (
            "SUPABASE_SERVICE_KEY".to_owned(),
            TEST_SERVICE_KEY.to_owned(),
        ),
        ("SUPABASE_HISTORY_TABLE".to_owned(), "views".to_owned()),
        ("SUPABASE_USER_COLUMN".to_owned(), "profile_id".to_owned()),
        (
            "SUPABASE_WATCH_SECONDS_COLUMN".to_owned(),
            "seconds".to_owned(),
        ),
    ]);
    Config::from_lookup(|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
        .expect("config with HISTORY_SOURCE=supabase")
}

fn history_rows(profile: &str, video_ids: &[String]) -> Vec<Value> {
    video_ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            json!({"profile_id": profile, "video_id": id, "watched_at": pg_time(i), "seconds": 300})
        })
        .collect()
}

async fn warmer_for(env: &TestEnv, services: &Services) -> Arc<Warmer> {
    let endpoint = env.sqs.endpoint();
    let client =
        reco_core::queue::sqs_client_with(Some(&endpoint), Some(Duration::from_secs(1))).await;
    let queue =
        reco_core::queue::WarmQueue::new(client, env.queue_url.clone(), Duration::from_secs(1));
    Arc::new(Warmer::new(services, queue))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warm_reads_the_history_from_supabase() {
    let env = TestEnv::start().await;
    let db = PostgrestDouble::spawn(TEST_SERVICE_KEY);
    let history = history_in_topic(&env.fake, 0, 3, 4);
    let other = history_in_topic(&env.fake, 1, 3, 4);
    assert!(history.topics.is_disjoint(&other.topics));
    db.insert("views", history_rows("alice", &history.video_ids));
    db.insert("views", history_rows("bob", &other.video_ids));

    let services = Services::build(supabase_config(&env, &db.url()), None).expect("services");
    assert!(matches!(
        services.engine.history_source,
        HistorySource::Supabase(_)
    ));
    let alice = user("alice");
    let outcome = services
        .engine
        .warm(&alice, Priority::Background)
        .await
        .expect("warm with the history in Supabase");
    assert_eq!(outcome.history_len, history.video_ids.len(), "{outcome:?}");
    assert!(outcome.pool_size > 0, "{outcome:?}");

    let request = &db.requests()[0];
    assert_eq!(request.path, "/rest/v1/views");
    assert_eq!(request.param("profile_id").as_deref(), Some("eq.alice"));
    assert_eq!(
        request.param("select").as_deref(),
        Some("video_id,watched_at,seconds")
    );

    let page = services
        .engine
        .take_page(
            &alice,
            &PageRequest {
                max_results: 20,
                category_id: None,
                include_trending: false,
            },
        )
        .await
        .expect("a page");
    assert_eq!(page.videos.len(), 20, "{page:?}");
    let watched: HashSet<&String> = history.video_ids.iter().collect();
    assert!(
        page.videos.iter().all(|v| !watched.contains(&v.video_id)),
        "a watched video was served"
    );
    let related = page
        .videos
        .iter()
        .filter(|v| history.relates_to(&env.fake, &v.video_id))
        .count();
    assert!(
        related * 10 >= page.videos.len() * 8,
        "only {related} of {} served videos relate to alice's Supabase history",
        page.videos.len()
    );
    let related_to_bob = page
        .videos
        .iter()
        .filter(|v| other.relates_to(&env.fake, &v.video_id))
        .count();
    assert!(
        related_to_bob < related,
        "bob's rows leaked into alice's warm"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_supabase_fails_the_warm_and_sqs_retries_it() {
    let env = TestEnv::start().await;
    let alice = user("alice");

    // Unreachable: the warm fails with a History error naming Supabase, and the warmer
    // reports the message as a transient failure, so SQS keeps it.
    let dead_url = format!("http://127.0.0.1:{}", free_port());
    let dead = Services::build(supabase_config(&env, &dead_url), None).unwrap();
    let err = dead
        .engine
        .warm(&alice, Priority::Background)
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::History(_)), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("supabase unreachable"), "{text}");
    assert_no_key(&text);
    let request = WarmRequest::new(alice.clone(), WarmReason::SignIn, jiff::Timestamp::now());
    let mut message = aws_sdk_sqs::types::Message::builder()
        .message_id("m-dead")
        .receipt_handle("r-dead")
        .body(request.to_json())
        .build();
    let outcomes = warmer_for(&env, &dead)
        .await
        .run_batch(sqs_event_from_messages(
            std::slice::from_ref(&message),
            "arn:aws:sqs:us-east-1:123456789012:reco-warm",
        ))
        .await;
    match &outcomes[..] {
        [(id, ItemOutcome::Transient(why))] => {
            assert_eq!(id, "m-dead");
            assert!(why.contains("supabase"), "{why}");
            assert_no_key(why);
        }
        other => panic!("expected one transient failure, got {other:?}"),
    }

    // Erroring (HTTP 500) through real SQS: the message stays, and once Supabase is back
    // the redelivered message warms the pool.
    let db = PostgrestDouble::spawn(TEST_SERVICE_KEY);
    let history = history_in_topic(&env.fake, 0, 3, 4);
    db.insert("views", history_rows("alice", &history.video_ids));
    let services = Services::build(supabase_config(&env, &db.url()), None).unwrap();
    let warmer = warmer_for(&env, &services).await;
    let sqs = env.sqs.client().await;
    sqs.send_message()
        .queue_url(&env.queue_url)
        .message_body(request.to_json())
        .send()
        .await
        .expect("enqueue a warm");
    db.fail_next(1, 500);

    let receive = || async {
        sqs.receive_message()
            .queue_url(&env.queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(2)
            .send()
            .await
            .expect("receive")
            .messages
            .unwrap_or_default()
    };
    let received = receive().await;
    assert_eq!(received.len(), 1);
    message = received[0].clone();
    let outcomes = warmer
        .run_batch(sqs_event_from_messages(
            &received,
            "arn:aws:sqs:us-east-1:123456789012:reco-warm",
        ))
        .await;
    match &outcomes[..] {
        [(_, outcome @ ItemOutcome::Transient(why))] => {
            assert!(outcome.is_failure());
            assert!(why.contains("supabase answered HTTP 500"), "{why}");
            assert_no_key(why);
        }
        other => panic!("expected one transient failure, got {other:?}"),
    }
    // Reported as a failure, the message is not deleted: nothing is lost.
    assert_eq!(queue_depth(&sqs, &env.queue_url).await, 1);
    assert!(
        services
            .engine
            .take_page(
                &alice,
                &PageRequest {
                    max_results: 5,
                    category_id: None,
                    include_trending: false
                }
            )
            .await
            .unwrap()
            .videos
            .is_empty(),
        "no pool was built from a failed history read"
    );

    // The visibility timeout ends (made immediate here) and SQS redelivers it.
    sqs.change_message_visibility()
        .queue_url(&env.queue_url)
        .receipt_handle(message.receipt_handle.clone().unwrap())
        .visibility_timeout(0)
        .send()
        .await
        .expect("end the visibility timeout");
    let received = receive().await;
    assert_eq!(received.len(), 1, "the failed warm is redelivered");
    assert_eq!(received[0].body, message.body);
    let outcomes = warmer
        .run_batch(sqs_event_from_messages(
            &received,
            "arn:aws:sqs:us-east-1:123456789012:reco-warm",
        ))
        .await;
    match &outcomes[..] {
        [(_, ItemOutcome::Warmed(outcome))] => {
            assert_eq!(outcome.history_len, history.video_ids.len());
            assert!(outcome.pool_size > 0, "{outcome:?}");
        }
        other => panic!("expected the retry to warm, got {other:?}"),
    }
    sqs.delete_message()
        .queue_url(&env.queue_url)
        .receipt_handle(received[0].receipt_handle.clone().unwrap())
        .send()
        .await
        .expect("delete the processed message");
    assert_eq!(queue_depth(&sqs, &env.queue_url).await, 0);
    let page = services
        .engine
        .take_page(
            &alice,
            &PageRequest {
                max_results: 20,
                category_id: None,
                include_trending: false,
            },
        )
        .await
        .unwrap();
    assert_eq!(page.videos.len(), 20);
    assert_eq!(db.requests().len(), 2, "one failed read, one good one");
}
