//! Which channels we asked the hub about, which subscriptions are live and until when:
//! what decides the answer to the hub's verification requests, and what the subscription
//! manager renews or drops.
//!
//! WebSub's hub confirms every subscribe and unsubscribe with a GET to the callback, and
//! anyone can send such a GET. So an intent is written *before* the hub is asked, and a
//! verification is confirmed only for a channel whose intent matches its mode and is
//! recent: nobody can subscribe us to a topic we never asked for, or unsubscribe us from
//! one we want.

use redis::AsyncCommands;

use crate::UserId;
use crate::store::{RedisConn, StoreError, keys};

/// A watcher who has not been warmed for this long is no longer told of uploads.
pub const WATCHER_TTL_MS: i64 = 7 * 86_400_000;
/// How long an intent waits for the hub's verification. Google's hub verifies within
/// seconds; a retry of a lost request asks again.
pub const INTENT_MS: i64 = 6 * 3_600_000;
/// The lease assumed when the hub's subscribe verification names none (WebSub says it
/// must): short, so the manager renews early rather than late.
pub const DEFAULT_LEASE_SECS: u64 = 86_400;
/// The longest lease recorded, whatever the hub says (Google's hub grants 5 days).
pub const MAX_LEASE_SECS: u64 = 30 * 86_400;
/// How long a subscription's record outlives its lease, so a late notification is still
/// recognised as ours.
const RECORD_GRACE_SECS: u64 = 86_400;

/// What the hub asks us to confirm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HubMode {
    Subscribe,
    Unsubscribe,
}

impl HubMode {
    pub fn as_str(self) -> &'static str {
        match self {
            HubMode::Subscribe => "subscribe",
            HubMode::Unsubscribe => "unsubscribe",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "subscribe" => Some(HubMode::Subscribe),
            "unsubscribe" => Some(HubMode::Unsubscribe),
            _ => None,
        }
    }
}

/// The answer to a verification request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Echo the challenge: the subscription (or its end) is what we asked for.
    Confirm,
    /// 404: we did not ask for this (WebSub's answer when the subscriber disagrees).
    Refuse(&'static str),
}

/// Makes a cached id list (`{"at":…,"ids":[…]}`) stale (its `at` 0) without touching its
/// ids or TTL, unless it was polled at or after ARGV[1]. KEYS: list. ARGV: oldest `at`
/// kept.
static STALE_AT: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r#"
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local at = tonumber(string.match(raw, '^{"at":(%-?%d+)'))
if not at or at >= tonumber(ARGV[1]) then return 0 end
local stale = string.gsub(raw, '^{"at":%-?%d+', '{"at":0', 1)
redis.call('SET', KEYS[1], stale, 'KEEPTTL')
return 1
"#,
    )
});

/// One channel's subscription record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Subscription {
    /// The last mode we asked the hub for.
    pub want: Option<HubMode>,
    pub asked_at_ms: i64,
    /// End of the lease the hub last confirmed (0: none yet).
    pub lease_until_ms: i64,
    pub verified_at_ms: i64,
    /// Why the hub denied the subscription, if it did.
    pub denied: Option<String>,
    /// The lease we asked for (0: not recorded).
    pub lease_asked_secs: u64,
}

impl Subscription {
    pub fn is_live(&self, now_ms: i64) -> bool {
        self.want == Some(HubMode::Subscribe) && self.lease_until_ms > now_ms
    }
}

/// Subscription state in Redis: a hash per channel ([`keys::push_subscription`]), and
/// two sorted sets, the channels we want ([`keys::push_wanted`], by when we asked) and
/// the live leases ([`keys::push_leases`], by when they end), which the warms read to
/// trust a pushed channel's uploads and the manager reads to renew them.
#[derive(Clone, Debug)]
pub struct Subscriptions {
    redis: RedisConn,
}

impl Subscriptions {
    pub fn new(redis: RedisConn) -> Self {
        Self { redis }
    }

    /// Records that we are about to ask the hub for `mode` on `channel_id`, with a lease
    /// of `lease_secs` (the most a verification may record).
    pub async fn intend(
        &self,
        channel_id: &str,
        mode: HubMode,
        lease_secs: u64,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let key = keys::push_subscription(channel_id);
        let mut pipe = redis::pipe();
        pipe.hset_multiple(
            &key,
            &[
                ("want", mode.as_str()),
                ("asked_at", &now_ms.to_string()),
                ("lease_asked", &lease_secs.to_string()),
            ],
        )
        .ignore()
        .hdel(&key, "denied")
        .ignore();
        match mode {
            HubMode::Subscribe => {
                pipe.zadd(keys::push_wanted(), channel_id, now_ms).ignore();
            }
            // From now on the channel's pushes are not trusted: polling takes it back.
            HubMode::Unsubscribe => {
                pipe.zrem(keys::push_wanted(), channel_id)
                    .ignore()
                    .zrem(keys::push_leases(), channel_id)
                    .ignore();
            }
        }
        // The record lives at least as long as an intent and any lease it may get.
        pipe.expire(&key, (MAX_LEASE_SECS + RECORD_GRACE_SECS) as i64)
            .ignore();
        let mut conn = self.redis.clone();
        pipe.query_async::<()>(&mut conn).await?;
        Ok(())
    }

    pub async fn get(&self, channel_id: &str) -> Result<Subscription, StoreError> {
        let mut conn = self.redis.clone();
        let fields: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(keys::push_subscription(channel_id))
            .arg(&[
                "want",
                "asked_at",
                "lease_until",
                "verified_at",
                "denied",
                "lease_asked",
            ])
            .query_async(&mut conn)
            .await?;
        let number = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.as_deref())
                .and_then(|f| f.parse::<i64>().ok())
                .unwrap_or(0)
        };
        Ok(Subscription {
            want: fields
                .first()
                .and_then(|f| f.as_deref())
                .and_then(HubMode::parse),
            asked_at_ms: number(1),
            lease_until_ms: number(2),
            verified_at_ms: number(3),
            denied: fields.get(4).cloned().flatten(),
            lease_asked_secs: number(5).max(0) as u64,
        })
    }

    /// Decides a verification request for `channel_id`, and records what it confirms:
    /// a lease (live from now until `lease_seconds` from now), or the end of a
    /// subscription.
    pub async fn verify(
        &self,
        channel_id: &str,
        mode: HubMode,
        lease_seconds: Option<u64>,
        now_ms: i64,
    ) -> Result<Verdict, StoreError> {
        let current = self.get(channel_id).await?;
        if current.want != Some(mode) {
            return Ok(Verdict::Refuse("not the mode we asked for"));
        }
        if now_ms - current.asked_at_ms > INTENT_MS {
            return Ok(Verdict::Refuse("no recent request of ours"));
        }
        let key = keys::push_subscription(channel_id);
        let mut pipe = redis::pipe();
        match mode {
            HubMode::Subscribe => {
                // Never longer than we asked for: a lease we think longer than the hub's
                // would go unrenewed.
                let asked = match current.lease_asked_secs {
                    0 => MAX_LEASE_SECS,
                    asked => asked.min(MAX_LEASE_SECS),
                };
                let lease_secs = lease_seconds
                    .filter(|&s| s > 0)
                    .unwrap_or(DEFAULT_LEASE_SECS)
                    .min(asked);
                let until = now_ms + lease_secs as i64 * 1000;
                pipe.hset_multiple(
                    &key,
                    &[
                        ("lease_until", until.to_string()),
                        ("verified_at", now_ms.to_string()),
                    ],
                )
                .ignore()
                .zadd(keys::push_leases(), channel_id, until)
                .ignore();
            }
            HubMode::Unsubscribe => {
                pipe.del(&key)
                    .ignore()
                    .zrem(keys::push_leases(), channel_id)
                    .ignore()
                    .zrem(keys::push_wanted(), channel_id)
                    .ignore();
            }
        }
        let mut conn = self.redis.clone();
        pipe.query_async::<()>(&mut conn).await?;
        // A new subscription (or one that had lapsed) trusts the channel's cached uploads
        // only if they are as fresh as polling keeps them: uploads before it were not
        // pushed. Most subscriptions follow, within minutes, the warm whose poll made the
        // demand, so this costs no second poll; an older list is polled once.
        if mode == HubMode::Subscribe
            && !current.is_live(now_ms)
            && let Some(playlist) = super::uploads_playlist_of(channel_id)
        {
            let _: i64 = STALE_AT
                .key(keys::playlist_latest(&playlist))
                .arg(now_ms - crate::engine::PLAYLIST_FRESH_MS)
                .invoke_async(&mut conn)
                .await?;
        }
        Ok(Verdict::Confirm)
    }

    /// The hub refused (or later cancelled) a subscription: it is no longer live, and
    /// polling takes the channel back. Only for a channel we subscribe to; returns
    /// whether it was one.
    pub async fn denied(
        &self,
        channel_id: &str,
        reason: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let current = self.get(channel_id).await?;
        if current.want != Some(HubMode::Subscribe) {
            return Ok(false);
        }
        let reason: String = reason.chars().take(200).collect();
        let key = keys::push_subscription(channel_id);
        let mut pipe = redis::pipe();
        pipe.hset_multiple(
            &key,
            &[
                ("denied", reason),
                ("lease_until", "0".to_owned()),
                ("verified_at", now_ms.to_string()),
            ],
        )
        .ignore()
        .zrem(keys::push_leases(), channel_id)
        .ignore();
        let mut conn = self.redis.clone();
        pipe.query_async::<()>(&mut conn).await?;
        Ok(true)
    }

    /// Whether a notification for `channel_id` is one we want: a subscription we asked
    /// for (live, or verified and not yet ended). Anything else is ignored.
    pub async fn accepts_notifications(
        &self,
        channel_id: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let s = self.get(channel_id).await?;
        Ok(s.want == Some(HubMode::Subscribe)
            && s.lease_until_ms + RECORD_GRACE_SECS as i64 * 1000 > now_ms)
    }

    /// Live subscriptions now.
    pub async fn live_count(&self, now_ms: i64) -> Result<u64, StoreError> {
        let mut conn = self.redis.clone();
        Ok(conn
            .zcount(keys::push_leases(), format!("({now_ms}"), "+inf")
            .await?)
    }

    /// How many live leases end before `before_ms`.
    pub async fn expiring_count(&self, now_ms: i64, before_ms: i64) -> Result<u64, StoreError> {
        let mut conn = self.redis.clone();
        Ok(conn
            .zcount(keys::push_leases(), format!("({now_ms}"), before_ms)
            .await?)
    }

    /// Live leases that end before `before_ms`, soonest first, up to `limit`.
    pub async fn expiring(
        &self,
        now_ms: i64,
        before_ms: i64,
        limit: usize,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let mut conn = self.redis.clone();
        let rows: Vec<(String, i64)> = redis::cmd("ZRANGEBYSCORE")
            .arg(keys::push_leases())
            .arg(format!("({now_ms}"))
            .arg(before_ms)
            .arg("WITHSCORES")
            .arg("LIMIT")
            .arg(0)
            .arg(limit)
            .query_async(&mut conn)
            .await?;
        Ok(rows)
    }

    /// Every channel we want subscribed, with when we last asked.
    pub async fn wanted(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let mut conn = self.redis.clone();
        let rows: Vec<(String, i64)> = redis::cmd("ZRANGE")
            .arg(keys::push_wanted())
            .arg(0)
            .arg(-1)
            .arg("WITHSCORES")
            .query_async(&mut conn)
            .await?;
        Ok(rows)
    }

    /// Which of `channel_ids` have a live lease: one round trip for a warm's channels.
    pub async fn live_among(
        &self,
        channel_ids: &[String],
        now_ms: i64,
    ) -> Result<Vec<bool>, StoreError> {
        live_among(&self.redis, channel_ids, now_ms).await
    }
}

/// Which of `channel_ids` have a live lease (one `ZMSCORE`).
pub async fn live_among(
    redis: &RedisConn,
    channel_ids: &[String],
    now_ms: i64,
) -> Result<Vec<bool>, StoreError> {
    if channel_ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut conn = redis.clone();
    let scores: Vec<Option<f64>> = redis::cmd("ZMSCORE")
        .arg(keys::push_leases())
        .arg(channel_ids)
        .query_async(&mut conn)
        .await?;
    Ok(scores
        .into_iter()
        .map(|s| s.is_some_and(|until| until > now_ms as f64))
        .collect())
}

/// Records `user` as a watcher of `channel_ids` (those with a live subscription), so
/// their uploads warm the user's pool.
pub async fn note_watchers(
    redis: &RedisConn,
    user: &UserId,
    channel_ids: &[&str],
    now_ms: i64,
) -> Result<(), StoreError> {
    if channel_ids.is_empty() {
        return Ok(());
    }
    let mut pipe = redis::pipe();
    for channel in channel_ids {
        let key = keys::push_watchers(channel);
        pipe.zadd(&key, user.as_str(), now_ms)
            .ignore()
            .pexpire(&key, WATCHER_TTL_MS)
            .ignore();
    }
    let mut conn = redis.clone();
    pipe.query_async::<()>(&mut conn).await?;
    Ok(())
}
