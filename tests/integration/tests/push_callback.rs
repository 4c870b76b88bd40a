//! The push callback's answers to every kind of request, against a real redis-server:
//! what WebSub requires, and that nothing a forger, a replay or a malformed body sends
//! changes anything.

use std::sync::Arc;

use axum::http::{HeaderMap, HeaderValue, Method, Uri};
use lambda_http::{Body, Response};
use reco_core::clock::{SharedClock, SystemClock};
use reco_core::push::notification::MAX_NOTIFICATION_BYTES;
use reco_core::push::secrets::PushSecretSource;
use reco_core::push::signature::PushSecrets;
use reco_core::push::subscriptions::{HubMode, Subscriptions};
use reco_core::push::topic_for;
use reco_core::store::{RedisConn, keys};
use reco_push::Callback;
use reco_tests::apigw::http_api_event;
use reco_tests::services::RedisServer;
use redis::AsyncCommands;

const MASTER: &str = "push-callback-test-master-0123456789";
const CHANNEL: &str = "UC_x5XG1OV2P6uZZ5FSM9Ttw";
const OTHER: &str = "UCBR8-60-B28hp2BmDPdntcQ";

fn metrics() -> &'static std::sync::Arc<std::sync::Mutex<Vec<String>>> {
    static LINES: std::sync::OnceLock<std::sync::Arc<std::sync::Mutex<Vec<String>>>> =
        std::sync::OnceLock::new();
    LINES.get_or_init(|| reco_core::metrics::capture().expect("the first metrics sink"))
}

struct Setup {
    _server: RedisServer,
    redis: RedisConn,
    callback: Callback,
    secrets: PushSecrets,
    clock: SharedClock,
}

async fn setup() -> Setup {
    // The callback's EMF lines, kept for the counts below instead of printed.
    let _ = metrics();
    let server = RedisServer::start();
    let redis = RedisConn::connect(&server.url()).await.expect("redis");
    let clock: SharedClock = Arc::new(SystemClock);
    Setup {
        callback: Callback {
            redis: redis.clone(),
            secrets: PushSecretSource::Plain(PushSecrets::new(MASTER).unwrap()),
            clock: clock.clone(),
        },
        secrets: PushSecrets::new(MASTER).unwrap(),
        _server: server,
        redis,
        clock,
    }
}

fn request(
    method: &str,
    path_and_query: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> lambda_http::Request {
    let uri: Uri = path_and_query.parse().unwrap();
    let mut map = HeaderMap::new();
    map.insert("host", HeaderValue::from_static("push.test"));
    for (k, v) in headers {
        map.insert(
            axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    let event = http_api_event(
        &Method::from_bytes(method.as_bytes()).unwrap(),
        &uri,
        &map,
        body,
    );
    reco_api::event::request_from_str(&event.to_string()).expect("a valid event")
}

fn text(response: &Response<Body>) -> String {
    match response.body() {
        Body::Text(t) => t.clone(),
        Body::Binary(b) => String::from_utf8_lossy(b).into_owned(),
        _ => String::new(),
    }
}

/// A verification GET on `channel`'s callback URL (its token included).
fn verification(channel: &str, mode: &str, topic_channel: &str, challenge: &str) -> String {
    let token = PushSecrets::new(MASTER).unwrap().callback_token(channel);
    format!(
        "{}&t={token}",
        untokened(channel, mode, topic_channel, challenge)
    )
}

/// The same GET without the callback's token: what a stranger could send.
fn untokened(channel: &str, mode: &str, topic_channel: &str, challenge: &str) -> String {
    let topic = url::form_urlencoded::byte_serialize(topic_for(topic_channel).as_bytes())
        .collect::<String>();
    format!(
        "/push/v1/youtube/{channel}?hub.mode={mode}&hub.topic={topic}&hub.challenge={challenge}&hub.lease_seconds=432000"
    )
}

fn upload(channel: &str, video: &str, title: &str, updated: &str) -> String {
    format!(
        r#"<?xml version='1.0' encoding='UTF-8'?>
<feed xmlns:yt="http://www.youtube.com/xml/schemas/2015" xmlns="http://www.w3.org/2005/Atom">
  <entry>
    <id>yt:video:{video}</id>
    <yt:videoId>{video}</yt:videoId>
    <yt:channelId>{channel}</yt:channelId>
    <title>{title}</title>
    <published>2026-12-07T10:00:00+00:00</published>
    <updated>{updated}</updated>
  </entry>
</feed>"#
    )
}

impl Setup {
    async fn subscribe(&self, channel: &str) {
        let subs = Subscriptions::new(self.redis.clone());
        subs.intend(channel, HubMode::Subscribe, 432_000, self.clock.now_ms())
            .await
            .unwrap();
        let r = self
            .callback
            .handle(request(
                "GET",
                &verification(channel, "subscribe", channel, "c1"),
                &[],
                b"",
            ))
            .await;
        assert_eq!(r.status(), 200);
    }

    async fn post(&self, channel: &str, body: &str, signature: Option<&str>) -> Response<Body> {
        let headers: Vec<(&str, &str)> = signature
            .map(|s| {
                vec![
                    ("x-hub-signature", s),
                    ("content-type", "application/atom+xml"),
                ]
            })
            .unwrap_or_default();
        self.callback
            .handle(request(
                "POST",
                &format!("/push/v1/youtube/{channel}"),
                &headers,
                body.as_bytes(),
            ))
            .await
    }

    fn sign(&self, channel: &str, body: &str) -> String {
        self.secrets
            .secret_for(channel)
            .sign("sha1", body.as_bytes())
            .unwrap()
    }

    async fn queued(&self) -> Vec<String> {
        let mut conn = self.redis.clone();
        conn.zrange(keys::push_hydrate(), 0, -1).await.unwrap()
    }

    async fn seen(&self, video: &str) -> Option<String> {
        let mut conn = self.redis.clone();
        conn.get(keys::push_seen(video)).await.unwrap()
    }
}

#[tokio::test]
async fn verifications_are_confirmed_only_for_what_we_asked() {
    let s = setup().await;
    let subs = Subscriptions::new(s.redis.clone());
    // Nobody asked: WebSub's "we do not agree" is a 404, and nothing is recorded.
    let r = s
        .callback
        .handle(request(
            "GET",
            &verification(CHANNEL, "subscribe", CHANNEL, "abc"),
            &[],
            b"",
        ))
        .await;
    assert_eq!(r.status(), 404);
    assert!(!subs.get(CHANNEL).await.unwrap().is_live(s.clock.now_ms()));

    subs.intend(CHANNEL, HubMode::Subscribe, 432_000, s.clock.now_ms())
        .await
        .unwrap();
    // Without the callback's token, or with another channel's: not the hub, refused,
    // whatever it asks, denials included.
    let other_token = PushSecrets::new(MASTER).unwrap().callback_token(OTHER);
    for query in [
        untokened(CHANNEL, "subscribe", CHANNEL, "abc"),
        format!(
            "{}&t=0123456789abcdef0123456789abcdef",
            untokened(CHANNEL, "subscribe", CHANNEL, "abc")
        ),
        format!(
            "{}&t={other_token}",
            untokened(CHANNEL, "subscribe", CHANNEL, "abc")
        ),
        untokened(CHANNEL, "denied", CHANNEL, "abc"),
    ] {
        let r = s.callback.handle(request("GET", &query, &[], b"")).await;
        assert_eq!(r.status(), 404, "{query}");
    }
    assert_eq!(subs.get(CHANNEL).await.unwrap().lease_until_ms, 0);
    // A topic of another channel on this channel's callback: refused.
    let r = s
        .callback
        .handle(request(
            "GET",
            &verification(CHANNEL, "subscribe", OTHER, "abc"),
            &[],
            b"",
        ))
        .await;
    assert_eq!(r.status(), 404);
    // An unsubscribe we did not ask for: refused, the subscription stays wanted.
    let r = s
        .callback
        .handle(request(
            "GET",
            &verification(CHANNEL, "unsubscribe", CHANNEL, "abc"),
            &[],
            b"",
        ))
        .await;
    assert_eq!(r.status(), 404);
    // The hub's verification of our request: the challenge echoed, safely typed.
    let r = s
        .callback
        .handle(request(
            "GET",
            &verification(CHANNEL, "subscribe", CHANNEL, "16832595826105906514"),
            &[],
            b"",
        ))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(text(&r), "16832595826105906514");
    assert_eq!(r.headers()["content-type"], "application/octet-stream");
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    let sub = subs.get(CHANNEL).await.unwrap();
    assert!(sub.is_live(s.clock.now_ms()));
    let lease_ms = sub.lease_until_ms - s.clock.now_ms();
    assert!(
        (431_000_000..=432_000_000).contains(&lease_ms),
        "{lease_ms}"
    );
    assert_eq!(subs.live_count(s.clock.now_ms()).await.unwrap(), 1);
    // A lease longer than we asked for is recorded as the one we asked for.
    let long = verification(CHANNEL, "subscribe", CHANNEL, "again")
        .replace("hub.lease_seconds=432000", "hub.lease_seconds=2592000");
    let r = s.callback.handle(request("GET", &long, &[], b"")).await;
    assert_eq!(r.status(), 200);
    let lease_ms = subs.get(CHANNEL).await.unwrap().lease_until_ms - s.clock.now_ms();
    assert!(lease_ms <= 432_000_000, "{lease_ms}");

    // Requests that are wrong get a 400 naming the parameter.
    for (query, field) in [
        (
            format!("/push/v1/youtube/{CHANNEL}?hub.topic=x"),
            "hub.mode",
        ),
        (
            format!("/push/v1/youtube/{CHANNEL}?hub.mode=subscribe"),
            "hub.topic",
        ),
        (
            verification(CHANNEL, "subscribe", CHANNEL, "%3Cscript%3E"),
            "hub.challenge",
        ),
        (
            verification(CHANNEL, "resubscribe", CHANNEL, "abc"),
            "hub.mode",
        ),
    ] {
        let r = s.callback.handle(request("GET", &query, &[], b"")).await;
        assert_eq!(r.status(), 400, "{query}");
        assert!(text(&r).contains(field), "{query}: {}", text(&r));
    }
    // A path that is no channel's callback.
    let r = s
        .callback
        .handle(request("GET", "/push/v1/youtube/nope", &[], b""))
        .await;
    assert_eq!(r.status(), 404);

    // The hub's denial ends the lease; polling takes the channel back.
    let denied = format!(
        "/push/v1/youtube/{CHANNEL}?hub.mode=denied&hub.topic={}&hub.reason=blocked&t={}",
        url::form_urlencoded::byte_serialize(topic_for(CHANNEL).as_bytes()).collect::<String>(),
        PushSecrets::new(MASTER).unwrap().callback_token(CHANNEL)
    );
    let r = s.callback.handle(request("GET", &denied, &[], b"")).await;
    assert_eq!(r.status(), 200);
    let sub = subs.get(CHANNEL).await.unwrap();
    assert!(!sub.is_live(s.clock.now_ms()));
    assert_eq!(sub.denied.as_deref(), Some("blocked"));

    // Our own unsubscription is confirmed, and the record goes.
    subs.intend(CHANNEL, HubMode::Unsubscribe, 432_000, s.clock.now_ms())
        .await
        .unwrap();
    let r = s
        .callback
        .handle(request(
            "GET",
            &verification(CHANNEL, "unsubscribe", CHANNEL, "bye"),
            &[],
            b"",
        ))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(text(&r), "bye");
    assert_eq!(subs.get(CHANNEL).await.unwrap().want, None);
}

#[tokio::test]
async fn only_a_correctly_signed_notification_changes_anything() {
    let s = setup().await;
    s.subscribe(CHANNEL).await;
    let body = upload(
        CHANNEL,
        "dQw4w9WgXcQ",
        "New upload",
        "2026-12-07T10:00:00+00:00",
    );

    // Forgeries: answered exactly like a genuine post, and nothing changes.
    let wrong_secret = PushSecrets::new("not-the-master-secret-at-all").unwrap();
    let forged = [
        None,
        Some("sha1=0000000000000000000000000000000000000000".to_owned()),
        Some("garbage".to_owned()),
        Some("md5=abcd".to_owned()),
        Some(
            wrong_secret
                .secret_for(CHANNEL)
                .sign("sha1", body.as_bytes())
                .unwrap(),
        ),
        // Another channel's valid signature of the same body.
        Some(s.sign(OTHER, &body)),
        // A valid signature of a different body.
        Some(s.sign(CHANNEL, &body.replace("New upload", "Old upload"))),
    ];
    for signature in &forged {
        let r = s.post(CHANNEL, &body, signature.as_deref()).await;
        assert_eq!(r.status(), 204, "{signature:?}");
        assert_eq!(text(&r), "");
    }
    assert!(s.queued().await.is_empty(), "a forgery was acted on");
    // Each was counted (no other test in this file sends one).
    let lines = metrics().lock().unwrap().clone();
    assert_eq!(
        reco_core::metrics::sum(
            &lines,
            reco_core::metrics::Metric::PushNotificationsRejected
        ),
        forged.len() as f64
    );
    assert_eq!(s.seen("dQw4w9WgXcQ").await, None);

    // The genuine one: queued for hydration.
    let r = s.post(CHANNEL, &body, Some(&s.sign(CHANNEL, &body))).await;
    assert_eq!(r.status(), 204);
    assert_eq!(s.queued().await, vec!["dQw4w9WgXcQ".to_owned()]);
    // A replay, a duplicate and an older entry change nothing.
    let r = s.post(CHANNEL, &body, Some(&s.sign(CHANNEL, &body))).await;
    assert_eq!(r.status(), 204);
    let older = upload(
        CHANNEL,
        "dQw4w9WgXcQ",
        "Older title",
        "2026-12-07T09:00:00+00:00",
    );
    s.post(CHANNEL, &older, Some(&s.sign(CHANNEL, &older)))
        .await;
    assert_eq!(s.queued().await, vec!["dQw4w9WgXcQ".to_owned()]);
    assert_eq!(
        s.seen("dQw4w9WgXcQ").await.as_deref(),
        Some("e:1796637600000")
    );

    // An entry about another channel on this channel's subscription is ignored.
    let foreign = upload(OTHER, "aaaaaaaaaaa", "Foreign", "2026-12-07T10:00:00+00:00");
    s.post(CHANNEL, &foreign, Some(&s.sign(CHANNEL, &foreign)))
        .await;
    assert_eq!(s.seen("aaaaaaaaaaa").await, None);

    // Oversized: 413 before any signature is computed.
    let huge = "x".repeat(MAX_NOTIFICATION_BYTES + 1);
    let r = s.post(CHANNEL, &huge, Some(&s.sign(CHANNEL, &huge))).await;
    assert_eq!(r.status(), 413);
    // Signed but malformed, or with entity tricks: 400 naming the body, nothing changes.
    for bad in [
        "<feed xmlns=\"http://www.w3.org/2005/Atom\"><entry>".to_owned(),
        r#"<?xml version="1.0"?><!DOCTYPE feed [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><feed xmlns="http://www.w3.org/2005/Atom"><title>&xxe;</title></feed>"#.to_owned(),
        upload(CHANNEL, "bbbbbbbbbbb", "&xxe;", "2026-12-07T10:00:00+00:00"),
    ] {
        let r = s.post(CHANNEL, &bad, Some(&s.sign(CHANNEL, &bad))).await;
        assert_eq!(r.status(), 400, "{bad}");
        assert!(text(&r).contains("\"field\":\"body\""), "{}", text(&r));
    }
    assert_eq!(s.seen("bbbbbbbbbbb").await, None);
    assert_eq!(s.queued().await.len(), 1);

    // After we decide to unsubscribe, even signed posts are not acted on: 410 tells the
    // hub to stop.
    Subscriptions::new(s.redis.clone())
        .intend(CHANNEL, HubMode::Unsubscribe, 432_000, s.clock.now_ms())
        .await
        .unwrap();
    let later = upload(CHANNEL, "ccccccccccc", "Later", "2026-12-07T11:00:00+00:00");
    let r = s
        .post(CHANNEL, &later, Some(&s.sign(CHANNEL, &later)))
        .await;
    assert_eq!(r.status(), 410);
    assert_eq!(s.seen("ccccccccccc").await, None);
}

#[tokio::test]
async fn updates_retitle_and_tombstones_remove_whatever_the_order() {
    let s = setup().await;
    s.subscribe(CHANNEL).await;
    let mut conn = s.redis.clone();
    // A video already in the catalog, and its channel's cached uploads.
    let item = serde_json::json!({
        "video_id": "dQw4w9WgXcQ", "title": "First title", "channel_id": CHANNEL,
        "channel_title": "C", "category_id": "10", "published_at": "2026-12-07T10:00:00Z",
        "thumbnail_url": "", "duration_secs": 212, "view_count": 5, "tags": [],
        "reason": "", "trending": false, "url": "https://www.youtube.com/watch?v=dQw4w9WgXcQ"
    });
    let _: () = conn
        .set_ex(keys::video("dQw4w9WgXcQ"), item.to_string(), 3600)
        .await
        .unwrap();
    let playlist = reco_core::push::uploads_playlist_of(CHANNEL).unwrap();
    let _: () = conn
        .set_ex(
            keys::playlist_latest(&playlist),
            r#"{"at":1796637600000,"ids":["dQw4w9WgXcQ","eeeeeeeeeee"]}"#,
            3600,
        )
        .await
        .unwrap();

    let renamed = upload(
        CHANNEL,
        "dQw4w9WgXcQ",
        "Second title",
        "2026-12-07T12:00:00+00:00",
    );
    s.post(CHANNEL, &renamed, Some(&s.sign(CHANNEL, &renamed)))
        .await;
    let raw: String = conn.get(keys::video("dQw4w9WgXcQ")).await.unwrap();
    let v: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(v["title"], "Second title");
    assert!(
        serde_json::from_str::<reco_core::Video>(&raw).is_ok(),
        "the retitled item still parses (its empty tags stay an array): {raw}"
    );
    assert_eq!(v["duration_secs"], 212, "the rest of the item is kept");
    let ttl: i64 = conn.ttl(keys::video("dQw4w9WgXcQ")).await.unwrap();
    assert!(ttl > 3000, "the item keeps its TTL: {ttl}");
    assert!(
        s.queued().await.is_empty(),
        "a known video costs no hydration"
    );

    let tombstone = format!(
        r#"<feed xmlns:at="http://purl.org/atompub/tombstones/1.0" xmlns="http://www.w3.org/2005/Atom"><at:deleted-entry ref="yt:video:dQw4w9WgXcQ" when="2026-12-07T13:00:00+00:00"><at:by><name>C</name><uri>https://www.youtube.com/channel/{CHANNEL}</uri></at:by></at:deleted-entry></feed>"#
    );
    let r = s
        .post(CHANNEL, &tombstone, Some(&s.sign(CHANNEL, &tombstone)))
        .await;
    assert_eq!(r.status(), 204);
    let gone: Option<String> = conn.get(keys::video("dQw4w9WgXcQ")).await.unwrap();
    assert_eq!(gone, None);
    let list: String = conn.get(keys::playlist_latest(&playlist)).await.unwrap();
    assert_eq!(list, r#"{"at":1796637600000,"ids":["eeeeeeeeeee"]}"#);
    // A late, reordered entry from before the deletion does not bring it back.
    let late = upload(
        CHANNEL,
        "dQw4w9WgXcQ",
        "Third title",
        "2026-12-07T12:30:00+00:00",
    );
    s.post(CHANNEL, &late, Some(&s.sign(CHANNEL, &late))).await;
    assert!(s.queued().await.is_empty());
    let still_gone: Option<String> = conn.get(keys::video("dQw4w9WgXcQ")).await.unwrap();
    assert_eq!(still_gone, None);
}

#[tokio::test]
async fn a_new_subscription_trusts_cached_uploads_only_as_fresh_as_polling_keeps_them() {
    let s = setup().await;
    let mut conn = s.redis.clone();
    let now_ms = s.clock.now_ms();
    let list_of = |channel: &str| {
        keys::playlist_latest(&reco_core::push::uploads_playlist_of(channel).unwrap())
    };
    let polled = |at: i64| format!(r#"{{"at":{at},"ids":["eeeeeeeeeee"]}}"#);
    // Polled 45 minutes ago, older than polling's 30: uploads since were never pushed, so
    // the list is stale, its ids and TTL kept for a warm to stand in with until its poll.
    let old = now_ms - 45 * 60_000;
    let _: () = conn
        .set_ex(list_of(CHANNEL), polled(old), 3600)
        .await
        .unwrap();
    s.subscribe(CHANNEL).await;
    let list: String = conn.get(list_of(CHANNEL)).await.unwrap();
    assert_eq!(list, polled(0));
    let ttl: i64 = conn.ttl(list_of(CHANNEL)).await.unwrap();
    assert!(ttl > 3000, "{ttl}");
    // A renewal of a live subscription leaves a polled list alone, however old.
    let _: () = conn
        .set_ex(list_of(CHANNEL), polled(old), 3600)
        .await
        .unwrap();
    s.subscribe(CHANNEL).await;
    let list: String = conn.get(list_of(CHANNEL)).await.unwrap();
    assert_eq!(list, polled(old));
    // Polled 5 minutes before the subscription (the warm that made the demand): kept.
    const OTHER: &str = "UC_x5XG1OV2P6uZZ5FSM9Ttx";
    let recent = now_ms - 5 * 60_000;
    let _: () = conn
        .set_ex(list_of(OTHER), polled(recent), 3600)
        .await
        .unwrap();
    s.subscribe(OTHER).await;
    let list: String = conn.get(list_of(OTHER)).await.unwrap();
    assert_eq!(list, polled(recent));
}
