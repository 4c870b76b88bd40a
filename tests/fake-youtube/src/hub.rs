//! A faithful double of Google's PubSubHubbub hub for YouTube's channel feeds.
//!
//! - `POST /hub` takes a form-encoded subscribe or unsubscribe request (`hub.callback`,
//!   `hub.mode`, `hub.topic`, `hub.lease_seconds`, `hub.secret`), answers 202, and
//!   verifies the intent asynchronously with a GET carrying `hub.challenge`: the request
//!   takes effect only when the callback echoes it.
//! - Leases expire on the fake's clock; an expired subscription gets nothing.
//! - [`Hub::deliver`] posts what happened since the last delivery to each live
//!   subscriber, as YouTube's Atom payload, signed `X-Hub-Signature: sha1=…` with the
//!   subscriber's secret: the world's uploads as its clock moves, a corpus's published
//!   uploads, and title changes and deletions a test makes. A non-2xx answer is retried;
//!   a 410 ends the subscription.
//! - [`HubChaos`] duplicates and reorders deliveries, as a real hub may.
//! - [`Hub::impostor`] posts notifications a forger could make: unsigned, signed with a
//!   guessed secret, tampered after signing, or a replay of a genuine one.

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use aws_lc_rs::hmac;
use jiff::Timestamp;

use crate::Shared;
use crate::catalog::Catalog;

/// The lease granted when a request names none (Google's hub: 5 days).
pub const DEFAULT_LEASE_SECS: i64 = 432_000;
/// The longest lease granted, whatever is asked.
pub const MAX_LEASE_SECS: i64 = 10 * 86_400;
/// Deliveries of one notification tried at most (the first and two retries).
pub const DEFAULT_ATTEMPTS: u32 = 3;

/// How the hub misbehaves, within what WebSub allows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HubChaos {
    /// Every n-th notification is delivered twice (0: never).
    pub duplicate_every: u32,
    /// Notifications of one delivery go out newest first.
    pub reorder: bool,
}

/// What the hub has done, for tests and the simulation.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct HubStats {
    pub requests: u64,
    pub verified: u64,
    pub verification_failed: u64,
    pub live: u64,
    pub expired: u64,
    pub notifications: u64,
    pub delivered: u64,
    pub retries: u64,
    pub failed: u64,
    pub gone: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Subscription {
    callback: String,
    channel_id: String,
    secret: Option<String>,
    lease_until: i64,
    /// World mode: uploads published at or before this second were delivered.
    delivered_until: i64,
}

/// The hub's subscriptions, for [`crate::FakeYoutube::restore_hub`] on another fake: a
/// resumed simulation's hub goes on pushing to the channels subscribed before it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HubState {
    /// (topic, subscription); callbacks without their origin (scheme and host), which
    /// a resumed run's callback server changes.
    subscriptions: Vec<(String, Subscription)>,
}

impl HubState {
    pub fn len(&self) -> usize {
        self.subscriptions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.subscriptions.is_empty()
    }
}

/// `http://host:port/path?query` → `/path?query`.
fn without_origin(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.find('/').map_or("", |i| &rest[i..])
}

#[derive(Debug, Clone)]
enum HubEvent {
    Upload {
        channel_id: String,
        video_id: String,
        title: String,
        published: i64,
    },
    Update {
        channel_id: String,
        video_id: String,
        title: String,
        published: i64,
        updated: i64,
    },
    Delete {
        channel_id: String,
        video_id: String,
        when: i64,
    },
}

impl HubEvent {
    fn channel_id(&self) -> &str {
        match self {
            HubEvent::Upload { channel_id, .. }
            | HubEvent::Update { channel_id, .. }
            | HubEvent::Delete { channel_id, .. } => channel_id,
        }
    }
}

/// A forgery [`Hub::impostor`] can post.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forgery {
    Unsigned,
    WrongSecret,
    /// Signed correctly, then one byte of the body changed.
    Tampered,
    /// The last genuine notification to the callback, posted again as it was.
    Replay,
}

/// The outcome of one [`Hub::deliver`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Delivery {
    pub notifications: u64,
    pub delivered: u64,
    pub failed: u64,
}

pub(crate) struct Hub {
    subscriptions: Mutex<BTreeMap<(String, String), Subscription>>,
    outbox: Mutex<Vec<HubEvent>>,
    deleted: Mutex<HashSet<String>>,
    chaos: Mutex<HubChaos>,
    stats: Mutex<HubStats>,
    pending: AtomicUsize,
    challenges: AtomicU64,
    last_genuine: Mutex<BTreeMap<String, (String, Option<String>)>>,
    http: reqwest::Client,
}

fn ts(secs: i64) -> String {
    Timestamp::from_second(secs)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%S+00:00").to_string())
        .unwrap_or_default()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn topic_channel(topic: &str) -> Option<&str> {
    topic
        .strip_prefix("https://www.youtube.com/xml/feeds/videos.xml?channel_id=")
        .or_else(|| topic.strip_prefix("https://www.youtube.com/feeds/videos.xml?channel_id="))
}

fn topic_of(channel_id: &str) -> String {
    format!("https://www.youtube.com/xml/feeds/videos.xml?channel_id={channel_id}")
}

/// YouTube's payload for one event.
fn atom(event: &HubEvent) -> String {
    let head = "<?xml version='1.0' encoding='UTF-8'?>\n";
    match event {
        HubEvent::Upload {
            channel_id,
            video_id,
            title,
            published,
        } => entry(head, channel_id, video_id, title, *published, *published),
        HubEvent::Update {
            channel_id,
            video_id,
            title,
            published,
            updated,
        } => entry(head, channel_id, video_id, title, *published, *updated),
        HubEvent::Delete {
            channel_id,
            video_id,
            when,
        } => format!(
            "{head}<feed xmlns:at=\"http://purl.org/atompub/tombstones/1.0\" xmlns=\"http://www.w3.org/2005/Atom\"><at:deleted-entry ref=\"yt:video:{video_id}\" when=\"{}\">\n  <link href=\"https://www.youtube.com/watch?v={video_id}\"/>\n  <at:by>\n   <name>{channel_id}</name>\n   <uri>https://www.youtube.com/channel/{channel_id}</uri>\n  </at:by>\n </at:deleted-entry></feed>\n",
            ts(*when)
        ),
    }
}

fn entry(
    head: &str,
    channel_id: &str,
    video_id: &str,
    title: &str,
    published: i64,
    updated: i64,
) -> String {
    let topic = topic_of(channel_id);
    format!(
        "{head}<feed xmlns:yt=\"http://www.youtube.com/xml/schemas/2015\" xmlns=\"http://www.w3.org/2005/Atom\">\n  <link rel=\"hub\" href=\"https://pubsubhubbub.appspot.com\"/>\n  <link rel=\"self\" href=\"{topic}\"/>\n  <title>YouTube video feed</title>\n  <updated>{}</updated>\n  <entry>\n    <id>yt:video:{video_id}</id>\n    <yt:videoId>{video_id}</yt:videoId>\n    <yt:channelId>{channel_id}</yt:channelId>\n    <title>{}</title>\n    <link rel=\"alternate\" href=\"https://www.youtube.com/watch?v={video_id}\"/>\n    <author>\n     <name>{channel_id}</name>\n     <uri>https://www.youtube.com/channel/{channel_id}</uri>\n    </author>\n    <published>{}</published>\n    <updated>{}</updated>\n  </entry>\n</feed>\n",
        ts(updated),
        escape(title),
        ts(published),
        ts(updated),
    )
}

fn sign(secret: &str, body: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret.as_bytes());
    let tag = hmac::sign(&key, body.as_bytes());
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha1={hex}")
}

/// `application/x-www-form-urlencoded` pairs.
fn form(body: &str) -> BTreeMap<String, String> {
    body.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(&s.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (decode(k), decode(v))
        })
        .collect()
}

impl Hub {
    pub(crate) fn new() -> Self {
        Self {
            subscriptions: Mutex::default(),
            outbox: Mutex::default(),
            deleted: Mutex::default(),
            chaos: Mutex::default(),
            stats: Mutex::default(),
            pending: AtomicUsize::new(0),
            challenges: AtomicU64::new(0x5eed),
            last_genuine: Mutex::default(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("an HTTP client"),
        }
    }

    pub(crate) fn state(&self) -> HubState {
        HubState {
            subscriptions: self
                .subscriptions
                .lock()
                .expect("hub lock")
                .iter()
                .map(|((callback, topic), sub)| {
                    let path = without_origin(callback).to_owned();
                    (
                        topic.clone(),
                        Subscription {
                            callback: path,
                            ..sub.clone()
                        },
                    )
                })
                .collect(),
        }
    }

    /// Takes over `state`'s subscriptions, their callbacks now at `callback_origin`.
    pub(crate) fn restore(&self, state: HubState, callback_origin: &str) {
        let mut subs = self.subscriptions.lock().expect("hub lock");
        for (topic, mut sub) in state.subscriptions {
            sub.callback = format!("{}{}", callback_origin.trim_end_matches('/'), sub.callback);
            subs.insert((sub.callback.clone(), topic), sub);
        }
    }

    pub(crate) fn is_deleted(&self, video_id: &str) -> bool {
        self.deleted.lock().expect("hub lock").contains(video_id)
    }

    pub(crate) fn stats(&self, now: i64) -> HubStats {
        let mut stats = self.stats.lock().expect("hub lock").clone();
        stats.live = self
            .subscriptions
            .lock()
            .expect("hub lock")
            .values()
            .filter(|s| s.lease_until > now)
            .count() as u64;
        stats
    }

    pub(crate) fn set_chaos(&self, chaos: HubChaos) {
        *self.chaos.lock().expect("hub lock") = chaos;
    }

    pub(crate) fn pending(&self) -> usize {
        self.pending.load(Ordering::SeqCst)
    }

    /// The live subscription of `channel_id`: its callback and lease end.
    pub(crate) fn subscription_of(&self, channel_id: &str, now: i64) -> Option<(String, i64)> {
        self.subscriptions
            .lock()
            .expect("hub lock")
            .values()
            .find(|s| s.channel_id == channel_id && s.lease_until > now)
            .map(|s| (s.callback.clone(), s.lease_until))
    }

    pub(crate) fn queue(&self, event: HubEventKind) {
        self.outbox.lock().expect("hub lock").push(event.0);
    }

    /// A subscribe or unsubscribe request: checked as the hub checks it, then verified
    /// in the background. Returns the status and the body of the hub's answer.
    pub(crate) fn request(shared: &std::sync::Arc<Shared>, body: &str) -> (u16, String) {
        let hub = &shared.hub;
        hub.stats.lock().expect("hub lock").requests += 1;
        let f = form(body);
        let field = |name: &str| f.get(name).filter(|v| !v.is_empty()).cloned();
        let Some(callback) = field("hub.callback") else {
            return (400, "hub.callback is required".into());
        };
        if !(callback.starts_with("http://") || callback.starts_with("https://")) {
            return (400, "hub.callback must be an http(s) URL".into());
        }
        let Some(mode) = field("hub.mode").filter(|m| m == "subscribe" || m == "unsubscribe")
        else {
            return (400, "hub.mode must be subscribe or unsubscribe".into());
        };
        let Some(topic) = field("hub.topic") else {
            return (400, "hub.topic is required".into());
        };
        let Some(channel_id) = topic_channel(&topic).map(str::to_owned) else {
            return (400, "hub.topic is not a YouTube channel feed".into());
        };
        let secret = field("hub.secret");
        if secret.as_ref().is_some_and(|s| s.len() >= 200) {
            return (400, "hub.secret must be less than 200 bytes".into());
        }
        let lease = match field("hub.lease_seconds") {
            None => DEFAULT_LEASE_SECS,
            Some(raw) => match raw.parse::<i64>() {
                Ok(secs) if secs > 0 => secs.min(MAX_LEASE_SECS),
                _ => return (400, "hub.lease_seconds must be a positive number".into()),
            },
        };
        let challenge = format!(
            "{}",
            hub.challenges
                .fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed)
                .wrapping_mul(0xbf58_476d_1ce4_e5b9)
        );
        hub.pending.fetch_add(1, Ordering::SeqCst);
        let shared = shared.clone();
        tokio::spawn(async move {
            let hub = &shared.hub;
            let mut query = vec![
                ("hub.mode", mode.clone()),
                ("hub.topic", topic.clone()),
                ("hub.challenge", challenge.clone()),
            ];
            if mode == "subscribe" {
                query.push(("hub.lease_seconds", lease.to_string()));
            }
            let answer = hub.http.get(&callback).query(&query).send().await;
            let confirmed = match answer {
                Ok(r) if r.status().is_success() => {
                    r.text().await.is_ok_and(|body| body == challenge)
                }
                _ => false,
            };
            if confirmed {
                let now = shared.now().as_second();
                let mut subs = hub.subscriptions.lock().expect("hub lock");
                let key = (callback.clone(), topic.clone());
                if mode == "subscribe" {
                    let delivered_until = subs.get(&key).map_or(now, |s| s.delivered_until);
                    subs.insert(
                        key,
                        Subscription {
                            callback,
                            channel_id,
                            secret,
                            lease_until: now + lease,
                            delivered_until,
                        },
                    );
                } else {
                    subs.remove(&key);
                }
                hub.stats.lock().expect("hub lock").verified += 1;
            } else {
                hub.stats.lock().expect("hub lock").verification_failed += 1;
            }
            hub.pending.fetch_sub(1, Ordering::SeqCst);
        });
        (202, String::new())
    }

    /// Posts everything that happened since the last delivery to the live subscribers.
    pub(crate) async fn deliver(shared: &Shared) -> Delivery {
        let hub = &shared.hub;
        let now = shared.now().as_second();
        let chaos = hub.chaos.lock().expect("hub lock").clone();
        let mut posts: Vec<(String, Option<String>, String)> = Vec::new();
        {
            let mut subs = hub.subscriptions.lock().expect("hub lock");
            let before = subs.len();
            subs.retain(|_, s| s.lease_until > now);
            hub.stats.lock().expect("hub lock").expired += (before - subs.len()) as u64;
            if let Catalog::World(world) = &shared.catalog {
                for s in subs.values_mut() {
                    let Some(rank) = world.channel_rank(&s.channel_id) else {
                        continue;
                    };
                    let spec = world.channel(rank);
                    let from = world.uploads_until(&spec, s.delivered_until);
                    let to = world.uploads_until(&spec, now);
                    for n in from..to {
                        let video = world.video_details(rank, n, now);
                        let event = HubEvent::Upload {
                            channel_id: s.channel_id.clone(),
                            video_id: video.id.clone(),
                            title: video.title.clone(),
                            published: video.published_at.as_second(),
                        };
                        posts.push((s.callback.clone(), s.secret.clone(), atom(&event)));
                    }
                    s.delivered_until = now;
                }
            }
            let events: Vec<HubEvent> = std::mem::take(&mut *hub.outbox.lock().expect("hub lock"));
            for event in &events {
                for s in subs.values().filter(|s| s.channel_id == event.channel_id()) {
                    posts.push((s.callback.clone(), s.secret.clone(), atom(event)));
                }
            }
        }
        if chaos.reorder {
            posts.reverse();
        }
        if chaos.duplicate_every > 0 {
            let mut doubled = Vec::with_capacity(posts.len() * 2);
            for (i, post) in posts.into_iter().enumerate() {
                if (i as u32 + 1).is_multiple_of(chaos.duplicate_every) {
                    doubled.push(post.clone());
                }
                doubled.push(post);
            }
            posts = doubled;
        }
        let mut out = Delivery::default();
        for (callback, secret, body) in posts {
            out.notifications += 1;
            let signature = secret.as_deref().map(|s| sign(s, &body));
            match hub.post(&callback, &body, signature.as_deref()).await {
                Some(status) if (200..300).contains(&status) => {
                    out.delivered += 1;
                    hub.last_genuine
                        .lock()
                        .expect("hub lock")
                        .insert(callback, (body, signature));
                }
                Some(410) => {
                    hub.subscriptions
                        .lock()
                        .expect("hub lock")
                        .retain(|_, s| s.callback != callback);
                    hub.stats.lock().expect("hub lock").gone += 1;
                }
                _ => out.failed += 1,
            }
        }
        let mut stats = hub.stats.lock().expect("hub lock");
        stats.notifications += out.notifications;
        stats.delivered += out.delivered;
        stats.failed += out.failed;
        out
    }

    /// One notification, retried on a non-2xx answer (but 410) or a transport error.
    async fn post(&self, callback: &str, body: &str, signature: Option<&str>) -> Option<u16> {
        let mut last = None;
        for attempt in 0..DEFAULT_ATTEMPTS {
            if attempt > 0 {
                self.stats.lock().expect("hub lock").retries += 1;
            }
            let mut request = self
                .http
                .post(callback)
                .header("content-type", "application/atom+xml")
                .header(
                    "link",
                    "<https://pubsubhubbub.appspot.com/>; rel=hub, <https://www.youtube.com/xml/feeds/videos.xml>; rel=self",
                )
                .body(body.to_owned());
            if let Some(signature) = signature {
                request = request.header("x-hub-signature", signature);
            }
            if let Ok(r) = request.send().await {
                let status = r.status().as_u16();
                last = Some(status);
                if (200..300).contains(&status) || status == 410 {
                    return last;
                }
            }
        }
        last
    }

    /// Posts a forgery to `channel_id`'s live subscriber; the callback's status.
    pub(crate) async fn impostor(
        shared: &Shared,
        channel_id: &str,
        video_id: &str,
        forgery: Forgery,
    ) -> Option<u16> {
        let hub = &shared.hub;
        let now = shared.now().as_second();
        let (callback, _) = hub.subscription_of(channel_id, now)?;
        let event = HubEvent::Upload {
            channel_id: channel_id.to_owned(),
            video_id: video_id.to_owned(),
            title: "Forged upload".to_owned(),
            published: now,
        };
        let (body, signature) = match forgery {
            Forgery::Unsigned => (atom(&event), None),
            Forgery::WrongSecret => {
                let body = atom(&event);
                let signature = sign("a-guessed-secret", &body);
                (body, Some(signature))
            }
            Forgery::Tampered => {
                let secret = hub
                    .subscriptions
                    .lock()
                    .expect("hub lock")
                    .values()
                    .find(|s| s.channel_id == channel_id)
                    .and_then(|s| s.secret.clone())?;
                let body = atom(&event);
                let signature = sign(&secret, &body);
                (
                    body.replace("Forged upload", "Forged uploaD"),
                    Some(signature),
                )
            }
            Forgery::Replay => hub
                .last_genuine
                .lock()
                .expect("hub lock")
                .get(&callback)?
                .clone(),
        };
        let mut request = hub
            .http
            .post(&callback)
            .header("content-type", "application/atom+xml")
            .body(body);
        if let Some(signature) = signature {
            request = request.header("x-hub-signature", signature);
        }
        request.send().await.ok().map(|r| r.status().as_u16())
    }
}

/// An event a test or the corpus adds to the next delivery.
pub(crate) struct HubEventKind(HubEvent);

impl HubEventKind {
    pub(crate) fn upload(channel_id: &str, video_id: &str, title: &str, published: i64) -> Self {
        Self(HubEvent::Upload {
            channel_id: channel_id.to_owned(),
            video_id: video_id.to_owned(),
            title: title.to_owned(),
            published,
        })
    }

    pub(crate) fn update(
        channel_id: &str,
        video_id: &str,
        title: &str,
        published: i64,
        updated: i64,
    ) -> Self {
        Self(HubEvent::Update {
            channel_id: channel_id.to_owned(),
            video_id: video_id.to_owned(),
            title: title.to_owned(),
            published,
            updated,
        })
    }

    pub(crate) fn delete(hub: &Hub, channel_id: &str, video_id: &str, when: i64) -> Self {
        hub.deleted
            .lock()
            .expect("hub lock")
            .insert(video_id.to_owned());
        Self(HubEvent::Delete {
            channel_id: channel_id.to_owned(),
            video_id: video_id.to_owned(),
            when,
        })
    }
}
