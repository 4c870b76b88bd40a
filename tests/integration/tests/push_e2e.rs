//! Push end to end on loopback: the real manager binary subscribes through the fake hub,
//! the hub verifies the real callback binary through the API Gateway event path, an
//! upload in the fake reaches a watcher's feed with no poll of its channel, and forged,
//! replayed, duplicated and reordered notifications change nothing twice.

use std::time::Duration;

use fake_youtube::{Forgery, HubChaos};
use reco_core::UserId;
use reco_core::config::AuthMode;
use reco_core::push::subscriptions::Subscriptions;
use reco_core::push::uploads_playlist_of;
use reco_core::quota::Priority;
use reco_core::store::keys;
use reco_tests::apigw::ApiGateway;
use reco_tests::apps::{Apps, deliver_once};
use reco_tests::runtime_api::{Answer, RuntimeApi, workspace_binary};
use reco_tests::scenario::history_in_topic;
use reco_tests::services::TestEnv;
use redis::AsyncCommands;
use serde_json::Value;

const MASTER: &str = "push-e2e-master-secret-0123456789";

fn push_env(env: &TestEnv, callback_base: Option<&str>) -> Vec<(String, String)> {
    let mut vars = env.env();
    vars.push(("PUSH_SECRET".into(), MASTER.into()));
    vars.push(("PUSH_HUB_URL".into(), env.fake.hub_url()));
    vars.push(("PUSH_HYDRATE_MAX_WAIT_SECS".into(), "0".into()));
    if let Some(base) = callback_base {
        vars.push(("PUSH_CALLBACK_URL".into(), base.into()));
    }
    vars
}

fn playlist_calls(env: &TestEnv) -> u64 {
    env.fake
        .counters()
        .per_method
        .get("playlistItems.list")
        .map_or(0, |m| m.calls)
}

async fn run_manager(manager: &mut RuntimeApi) -> Value {
    match manager
        .invoke("{}", Duration::from_secs(30), Duration::from_secs(60))
        .await
    {
        Ok((Answer::Response(text), _)) => serde_json::from_str(&text).expect("a JSON summary"),
        other => panic!("the manager failed: {other:?}\n{}", manager.log_tail()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_reaches_a_watchers_feed_by_push_and_forgeries_change_nothing() {
    let env = TestEnv::start().await;
    let apps = Apps::build(&env, None, AuthMode::None).await;
    let redis = apps.services.redis.clone();
    let mut conn = redis.clone();
    let history = history_in_topic(&env.fake, 0, 1, 4);
    let channel = history.channels.iter().next().unwrap().clone();
    let playlist = uploads_playlist_of(&channel).unwrap();
    let user = UserId::parse("push-watcher").unwrap();
    apps.record_history(user.as_str(), &history.body()).await;
    // A first warm polls the channel once and records the demand for it.
    apps.services
        .engine
        .warm(&user, Priority::Background)
        .await
        .expect("first warm");

    // The callback behind a local HTTP API; the manager as the scheduled binary.
    let callback = RuntimeApi::start(&workspace_binary("reco-push"), &push_env(&env, None)).await;
    let gateway = ApiGateway::start(callback).await;
    let base = gateway.url("/push/v1/youtube");
    let mut manager = RuntimeApi::start(
        &workspace_binary("reco-push-manager"),
        &push_env(&env, Some(&base)),
    )
    .await;
    // Every channel the warm read is in demand (its own, and those of related users and
    // searches); all are subscribed, the user's own among them.
    let run = run_manager(&mut manager).await;
    let subscribed = run["subscribed"].as_u64().unwrap();
    assert!(subscribed >= 1, "{run}");
    env.fake.hub_idle().await;
    let stats = env.fake.hub_stats();
    assert_eq!(
        stats.verified,
        subscribed,
        "{stats:?}\n{}",
        gateway.function_log().await
    );
    assert_eq!(stats.live, subscribed);
    let (at_hub, _) = env
        .fake
        .hub_subscription(&channel)
        .expect("live at the hub");
    let token = reco_core::push::signature::PushSecrets::new(MASTER)
        .unwrap()
        .callback_token(&channel);
    assert_eq!(at_hub, format!("{base}/{channel}?t={token}"));
    let now_ms = apps.services.clock.now_ms();
    let sub = Subscriptions::new(redis.clone())
        .get(&channel)
        .await
        .unwrap();
    assert!(sub.is_live(now_ms), "{sub:?}");

    // The subscriptions came minutes after the warm that polled the channels: their
    // cached uploads are as fresh as polling keeps them, so they are kept, and the next
    // warm polls none of them again.
    let raw: String = conn.get(keys::playlist_latest(&playlist)).await.unwrap();
    let polled_at = serde_json::from_str::<Value>(&raw).unwrap()["at"]
        .as_i64()
        .unwrap();
    assert!(now_ms - polled_at < 30 * 60_000, "{raw}");
    let polls_before = playlist_calls(&env);
    apps.services
        .engine
        .warm(&user, Priority::Background)
        .await
        .expect("second warm");
    assert_eq!(playlist_calls(&env), polls_before, "a second poll");
    // From then on its list is trusted: aged past polling's 30 minutes, the next warm
    // still does not poll it (1 unit without push), and records the user as a watcher.
    let raw: String = conn.get(keys::playlist_latest(&playlist)).await.unwrap();
    let mut list: Value = serde_json::from_str(&raw).unwrap();
    list["at"] = (now_ms - 40 * 60_000).into();
    let _: () = conn
        .set_ex(keys::playlist_latest(&playlist), list.to_string(), 3600)
        .await
        .unwrap();
    let polls_before = playlist_calls(&env);
    apps.services
        .engine
        .warm(&user, Priority::Background)
        .await
        .expect("third warm");
    assert_eq!(
        playlist_calls(&env),
        polls_before,
        "a pushed channel is not polled"
    );
    let watchers: Vec<String> = conn
        .zrange(keys::push_watchers(&channel), 0, -1)
        .await
        .unwrap();
    assert_eq!(watchers, vec![user.as_str().to_owned()]);

    // The channel uploads; the hub notifies the callback, signed.
    let video = env.fake.publish_upload(&channel, "A pushed upload");
    let delivery = env.fake.hub_deliver().await;
    assert_eq!(
        (delivery.notifications, delivery.delivered),
        (1, 1),
        "{delivery:?}"
    );
    let queued: Vec<String> = conn.zrange(keys::push_hydrate(), 0, -1).await.unwrap();
    assert_eq!(queued, vec![video.clone()]);

    // The manager hydrates it (one unit) and warms its watcher; the warm puts it in the
    // pool without a poll.
    let units_before = env.fake.counters().units_used;
    let run = run_manager(&mut manager).await;
    assert_eq!(run["hydrated"], 1, "{run}");
    assert_eq!(run["warms_sent"], 1, "{run}");
    assert_eq!(env.fake.counters().units_used - units_before, 1);
    let outcomes = deliver_once(&env.sqs.client().await, &env.queue_url, &apps.warmer, 10, 2).await;
    assert_eq!(outcomes.len(), 1, "{outcomes:?}");
    let pooled: Vec<String> = apps
        .services
        .engine
        .pool
        .entries(&user)
        .await
        .unwrap()
        .iter()
        .map(|e| e.video_id().to_owned())
        .collect();
    assert!(
        pooled.contains(&video),
        "the pushed upload is in the watcher's pool"
    );
    assert_eq!(
        playlist_calls(&env),
        polls_before,
        "still no poll of the pushed channel"
    );
    // The push moved the list's time on: a channel that keeps pushing is trusted for a
    // week from its last push, not from its last poll.
    let raw: String = conn.get(keys::playlist_latest(&playlist)).await.unwrap();
    let list: Value = serde_json::from_str(&raw).unwrap();
    assert!(list["at"].as_i64().unwrap() >= now_ms, "{raw}");
    assert_eq!(list["ids"][0], video.as_str(), "{raw}");

    // Forgeries, and a replay of the genuine notification: answered 204, acted on never.
    for (forgery, id) in [
        (Forgery::Unsigned, "forgedVid01"),
        (Forgery::WrongSecret, "forgedVid02"),
        (Forgery::Tampered, "forgedVid03"),
        (Forgery::Replay, "forgedVid04"),
    ] {
        let status = env.fake.hub_impostor(&channel, id, forgery).await;
        assert_eq!(status, Some(204), "{forgery:?}");
        let seen: Option<String> = conn.get(keys::push_seen(id)).await.unwrap();
        assert_eq!(seen, None, "{forgery:?} was acted on");
    }
    let queued: Vec<String> = conn.zrange(keys::push_hydrate(), 0, -1).await.unwrap();
    assert!(queued.is_empty(), "{queued:?}");
    let log = gateway.function_log().await;
    assert_eq!(log.matches("\"outcome\":\"rejected\"").count(), 3, "{log}");

    // A title change patches the catalog; a deletion removes the video.
    env.fake.advance_clock(1);
    assert!(env.fake.hub_retitle(&video, "A renamed upload"));
    assert!(env.fake.hub_deliver().await.delivered >= 1);
    let item: String = conn.get(keys::video(&video)).await.unwrap();
    assert!(item.contains("A renamed upload"), "{item}");
    env.fake.advance_clock(1);
    assert!(env.fake.hub_delete(&video));
    env.fake.hub_deliver().await;
    let item: Option<String> = conn.get(keys::video(&video)).await.unwrap();
    assert_eq!(item, None);
    let list: String = conn.get(keys::playlist_latest(&playlist)).await.unwrap();
    assert!(!list.contains(&video), "{list}");

    // A push for a channel whose uploads nobody has polled (its list expired) keeps the
    // list stale: its back catalogue still needs one poll, which the next warm makes.
    let _: () = conn.del(keys::playlist_latest(&playlist)).await.unwrap();
    let fresh_upload = env.fake.publish_upload(&channel, "After the list expired");
    assert_eq!(env.fake.hub_deliver().await.delivered, 1);
    let run = run_manager(&mut manager).await;
    assert_eq!(run["hydrated"], 1, "{run}");
    let raw: String = conn.get(keys::playlist_latest(&playlist)).await.unwrap();
    assert_eq!(raw, format!(r#"{{"at":0,"ids":["{fresh_upload}"]}}"#));
    let polls_before = playlist_calls(&env);
    deliver_once(&env.sqs.client().await, &env.queue_url, &apps.warmer, 10, 2).await;
    apps.services
        .engine
        .warm(&user, Priority::Background)
        .await
        .expect("a warm after the list expired");
    assert_eq!(
        playlist_calls(&env) - polls_before,
        1,
        "one poll, by either warm"
    );

    // A hub that duplicates and reorders: each upload is queued once.
    env.fake.set_hub_chaos(HubChaos {
        duplicate_every: 1,
        reorder: true,
    });
    let a = env.fake.publish_upload(&channel, "Upload A");
    let b = env.fake.publish_upload(&channel, "Upload B");
    let delivery = env.fake.hub_deliver().await;
    assert_eq!(delivery.delivered, 4, "{delivery:?}");
    let mut queued: Vec<String> = conn.zrange(keys::push_hydrate(), 0, -1).await.unwrap();
    queued.sort();
    let mut expected = vec![a, b];
    expected.sort();
    assert_eq!(queued, expected);

    // No secret reaches a log: neither the master secret nor a channel's.
    let secret = reco_core::push::signature::PushSecrets::new(MASTER)
        .unwrap()
        .secret_for(&channel);
    for log in [gateway.function_log().await, manager.log()] {
        assert!(!log.contains(MASTER));
        assert!(!log.contains(secret.expose()));
    }
}
