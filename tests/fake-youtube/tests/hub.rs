//! The fake's WebSub hub against a subscriber double on loopback: subscriptions take
//! effect only once the callback echoes the challenge, notifications are YouTube's Atom
//! payload signed with the subscriber's secret, failed deliveries are retried, and
//! nothing is delivered after the lease ends.

mod common;

use std::sync::{Arc, Mutex};

use aws_lc_rs::hmac;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use fake_youtube::world::REALISTIC_CHANNELS;
use fake_youtube::{FakeConfig, FakeYoutube};
use jiff::Timestamp;

const SECRET: &str = "subscriber-secret";
const NOW: &str = "2026-11-26T08:00:00Z";

/// What the subscriber double saw, and how it answers.
#[derive(Default)]
struct Seen {
    verifications: Vec<Vec<(String, String)>>,
    posts: Vec<(HeaderMap, String)>,
    /// Refuse verifications (404) instead of echoing the challenge.
    refuse: bool,
    /// Answer this many posts 500 before answering 204.
    fail_posts: usize,
}

type Shared = Arc<Mutex<Seen>>;

async fn subscriber() -> (String, Shared) {
    let seen: Shared = Arc::default();
    let app = axum::Router::new()
        .route(
            "/callback",
            axum::routing::get(
                |State(seen): State<Shared>, Query(q): Query<Vec<(String, String)>>| async move {
                    let mut seen = seen.lock().unwrap();
                    seen.verifications.push(q.clone());
                    let challenge = q
                        .iter()
                        .find(|(k, _)| k == "hub.challenge")
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default();
                    if seen.refuse {
                        (StatusCode::NOT_FOUND, String::new())
                    } else {
                        (StatusCode::OK, challenge)
                    }
                },
            )
            .post(
                |State(seen): State<Shared>, headers: HeaderMap, body: Bytes| async move {
                    let mut seen = seen.lock().unwrap();
                    seen.posts
                        .push((headers, String::from_utf8_lossy(&body).into_owned()));
                    if seen.fail_posts > 0 {
                        seen.fail_posts -= 1;
                        StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        StatusCode::NO_CONTENT
                    }
                },
            ),
        )
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/callback", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

fn topic(channel: &str) -> String {
    format!("https://www.youtube.com/xml/feeds/videos.xml?channel_id={channel}")
}

async fn ask(fake: &FakeYoutube, pairs: &[(&str, &str)]) -> (u16, String) {
    let body: String = pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                percent_encoding::utf8_percent_encode(k, percent_encoding::NON_ALPHANUMERIC),
                percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC)
            )
        })
        .collect::<Vec<_>>()
        .join("&");
    let r = reqwest::Client::new()
        .post(fake.hub_url())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

fn signature_of(body: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, SECRET.as_bytes());
    let tag = hmac::sign(&key, body.as_bytes());
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha1={hex}")
}

fn corpus_fake() -> FakeYoutube {
    common::fake_with(FakeConfig {
        channels: 300,
        start_clock: Some(NOW.parse().unwrap()),
        ..FakeConfig::default()
    })
}

#[tokio::test]
async fn a_verified_subscription_gets_signed_uploads_with_retries_until_its_lease_ends() {
    let fake = corpus_fake();
    let channel = fake.corpus().channels()[0].id.clone();
    let (callback, seen) = subscriber().await;
    let (status, _) = ask(
        &fake,
        &[
            ("hub.callback", &callback),
            ("hub.mode", "subscribe"),
            ("hub.topic", &topic(&channel)),
            ("hub.lease_seconds", "3600"),
            ("hub.secret", SECRET),
        ],
    )
    .await;
    assert_eq!(status, 202, "the hub accepts and verifies later");
    fake.hub_idle().await;
    let verification = seen.lock().unwrap().verifications[0].clone();
    let param = |name: &str| {
        verification
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(param("hub.mode").as_deref(), Some("subscribe"));
    assert_eq!(param("hub.topic"), Some(topic(&channel)));
    assert_eq!(param("hub.lease_seconds").as_deref(), Some("3600"));
    assert!(!param("hub.challenge").unwrap().is_empty());
    assert_eq!(fake.hub_stats().verified, 1);
    let (at, until) = fake.hub_subscription(&channel).expect("live");
    assert_eq!(at, callback);
    assert_eq!(
        until,
        NOW.parse::<Timestamp>().unwrap() + jiff::SignedDuration::from_secs(3600)
    );

    // An upload: one notification, YouTube's payload, signed with the secret.
    let video = fake.publish_upload(&channel, "Fish & chips <live>");
    let delivery = fake.hub_deliver().await;
    assert_eq!((delivery.notifications, delivery.delivered), (1, 1));
    {
        let seen = seen.lock().unwrap();
        let (headers, body) = &seen.posts[0];
        assert_eq!(headers["content-type"], "application/atom+xml");
        assert_eq!(headers["x-hub-signature"], signature_of(body).as_str());
        assert!(
            body.contains(&format!("<yt:videoId>{video}</yt:videoId>")),
            "{body}"
        );
        assert!(body.contains(&format!("<yt:channelId>{channel}</yt:channelId>")));
        assert!(
            body.contains("<title>Fish &amp; chips &lt;live&gt;</title>"),
            "{body}"
        );
        assert!(body.contains("xmlns:yt=\"http://www.youtube.com/xml/schemas/2015\""));
    }

    // A subscriber that fails twice gets the notification on the third try.
    seen.lock().unwrap().fail_posts = 2;
    fake.publish_upload(&channel, "Second upload");
    let delivery = fake.hub_deliver().await;
    assert_eq!((delivery.delivered, delivery.failed), (1, 0));
    assert_eq!(fake.hub_stats().retries, 2);
    assert_eq!(seen.lock().unwrap().posts.len(), 4);

    // A title change and a deletion reach the subscriber too; the deleted video is gone
    // from videos.list.
    fake.advance_clock(10);
    assert!(fake.hub_retitle(&video, "Renamed"));
    assert!(fake.hub_delete(&video));
    assert_eq!(fake.hub_deliver().await.delivered, 2);
    {
        let seen = seen.lock().unwrap();
        let n = seen.posts.len();
        assert!(seen.posts[n - 2].1.contains("<title>Renamed</title>"));
        assert!(
            seen.posts[n - 1]
                .1
                .contains(&format!("<at:deleted-entry ref=\"yt:video:{video}\""))
        );
    }
    let (status, body) = common::get_raw(&fake, "videos", &format!("part=id&id={video}")).await;
    assert_eq!(status, 200);
    assert!(!body.contains(&video), "{body}");

    // After the lease: nothing more.
    fake.advance_clock(3600);
    fake.publish_upload(&channel, "After the lease");
    let before = seen.lock().unwrap().posts.len();
    assert_eq!(fake.hub_deliver().await.notifications, 0);
    assert_eq!(seen.lock().unwrap().posts.len(), before);
    assert_eq!(fake.hub_stats().expired, 1);
    assert!(fake.hub_subscription(&channel).is_none());
}

#[tokio::test]
async fn a_callback_that_does_not_echo_the_challenge_is_never_subscribed() {
    let fake = corpus_fake();
    let channel = fake.corpus().channels()[1].id.clone();
    let (callback, seen) = subscriber().await;
    seen.lock().unwrap().refuse = true;
    let (status, _) = ask(
        &fake,
        &[
            ("hub.callback", &callback),
            ("hub.mode", "subscribe"),
            ("hub.topic", &topic(&channel)),
        ],
    )
    .await;
    assert_eq!(status, 202);
    fake.hub_idle().await;
    assert_eq!(fake.hub_stats().verification_failed, 1);
    assert!(fake.hub_subscription(&channel).is_none());
    fake.publish_upload(&channel, "Unheard");
    assert_eq!(fake.hub_deliver().await.notifications, 0);

    // Subscribed, then unsubscribed: the unsubscription is verified too.
    seen.lock().unwrap().refuse = false;
    for mode in ["subscribe", "unsubscribe"] {
        ask(
            &fake,
            &[
                ("hub.callback", &callback),
                ("hub.mode", mode),
                ("hub.topic", &topic(&channel)),
            ],
        )
        .await;
        fake.hub_idle().await;
        assert_eq!(
            fake.hub_subscription(&channel).is_some(),
            mode == "subscribe"
        );
    }
}

#[tokio::test]
async fn bad_requests_are_refused_naming_the_parameter() {
    let fake = corpus_fake();
    let channel = fake.corpus().channels()[0].id.clone();
    let long_secret = "s".repeat(200);
    for (pairs, named) in [
        (
            vec![("hub.mode", "subscribe"), ("hub.topic", "x")],
            "hub.callback",
        ),
        (
            vec![
                ("hub.callback", "ftp://x"),
                ("hub.mode", "subscribe"),
                ("hub.topic", "x"),
            ],
            "hub.callback",
        ),
        (
            vec![
                ("hub.callback", "http://127.0.0.1:9/c"),
                ("hub.mode", "watch"),
                ("hub.topic", "x"),
            ],
            "hub.mode",
        ),
        (
            vec![
                ("hub.callback", "http://127.0.0.1:9/c"),
                ("hub.mode", "subscribe"),
                ("hub.topic", "https://example.com/feed"),
            ],
            "hub.topic",
        ),
    ] {
        let (status, text) = ask(&fake, &pairs).await;
        assert_eq!(status, 400, "{pairs:?}");
        assert!(text.contains(named), "{pairs:?}: {text}");
    }
    let topic = topic(&channel);
    let (status, text) = ask(
        &fake,
        &[
            ("hub.callback", "http://127.0.0.1:9/c"),
            ("hub.mode", "subscribe"),
            ("hub.topic", &topic),
            ("hub.secret", &long_secret),
        ],
    )
    .await;
    assert_eq!(status, 400);
    assert!(text.contains("hub.secret"), "{text}");
}

#[tokio::test]
async fn the_worlds_uploads_are_pushed_as_its_clock_moves() {
    let fake = common::fake_with(FakeConfig {
        world_channels: Some(REALISTIC_CHANNELS),
        start_clock: Some(NOW.parse().unwrap()),
        ..FakeConfig::default()
    });
    let world = fake.world().expect("a world");
    // The most popular channel uploads several times a day.
    let spec = world.channel(0);
    let (callback, seen) = subscriber().await;
    ask(
        &fake,
        &[
            ("hub.callback", &callback),
            ("hub.mode", "subscribe"),
            ("hub.topic", &topic(&spec.id)),
            ("hub.secret", SECRET),
        ],
    )
    .await;
    fake.hub_idle().await;
    let now = fake.now().as_second();
    fake.advance_clock(86_400);
    let expected = world.uploads_until(&spec, now + 86_400) - world.uploads_until(&spec, now);
    assert!(expected > 0, "the channel uploads within a day");
    let delivery = fake.hub_deliver().await;
    assert_eq!(delivery.delivered, expected);
    let seen = seen.lock().unwrap();
    for (headers, body) in &seen.posts {
        assert_eq!(headers["x-hub-signature"], signature_of(body).as_str());
        assert!(body.contains(&spec.id));
    }
}
