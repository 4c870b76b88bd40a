//! The Redis connection and every key name the project writes.
//!
//! Per-user keys share the hash tag `{u:<id>}` so one script may touch them all on a
//! cluster; shared source caches are keyed by source. The quota guard's keys, which
//! share `{quota}`, are named in `quota::keys`, next to the script that uses them.

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClientBuilder, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::Slot;
use redis::{Cmd, Pipeline, RedisFuture, TlsCertificates, Value};

use crate::domain::UserId;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
    #[error("corrupt value in redis at {key}: {reason}")]
    Corrupt { key: String, reason: String },
    #[error("REDIS_TLS_CA_FILE {path}: {reason}")]
    TlsCa { path: String, reason: String },
}

/// How to reach Redis, beyond its URL (`REDIS_URL`).
///
/// ElastiCache Serverless, the production shape, is cluster mode behind TLS: `rediss://`
/// with `cluster: true`. The URL's scheme alone selects TLS; the server certificate is
/// checked against the system roots unless `tls_ca_file` names a PEM bundle to trust
/// instead (a private CA; the tests generate one).
#[derive(Debug, Clone)]
pub struct RedisOptions {
    /// `REDIS_CLUSTER`: speak the cluster protocol (slot map, MOVED/ASK redirects).
    pub cluster: bool,
    /// `REDIS_TLS_CA_FILE`: PEM file of the CA(s) that sign the server certificate.
    pub tls_ca_file: Option<String>,
    /// How long one command may take before the caller treats Redis as unavailable.
    pub response_timeout: Duration,
}

impl Default for RedisOptions {
    fn default() -> Self {
        Self {
            cluster: false,
            tls_ca_file: None,
            response_timeout: DEFAULT_RESPONSE_TIMEOUT,
        }
    }
}

/// A cheap-to-clone handle on Redis (one server or a cluster) that reconnects by itself.
///
/// Built lazily: a Lambda cold start does not wait for a TCP and TLS handshake it may not
/// need, and a Redis outage at start-up does not stop the function from answering 503s.
#[derive(Clone)]
pub struct RedisConn {
    inner: Inner,
}

#[derive(Clone)]
enum Inner {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl std::fmt::Debug for RedisConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.inner {
            Inner::Single(_) => f.write_str("RedisConn"),
            Inner::Cluster(_) => f.write_str("RedisConn(cluster)"),
        }
    }
}

/// How long one command may take before the caller treats Redis as unavailable.
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_millis(500);

impl RedisConn {
    /// One server (no cluster, system TLS roots for `rediss://`).
    pub fn connect_lazy(url: &str, response_timeout: Duration) -> Result<Self, StoreError> {
        Self::connect_lazy_with(
            url,
            &RedisOptions {
                response_timeout,
                ..RedisOptions::default()
            },
        )
    }

    /// A server or a cluster, as `options` say. Nothing is connected until the first
    /// command; only a malformed URL or an unreadable CA file fails here.
    pub fn connect_lazy_with(url: &str, options: &RedisOptions) -> Result<Self, StoreError> {
        let certs = match &options.tls_ca_file {
            None => None,
            Some(path) => Some(TlsCertificates {
                client_tls: None,
                root_cert: Some(read_ca(path)?),
            }),
        };
        let timeout = options.response_timeout;
        if options.cluster {
            let mut builder = ClusterClientBuilder::new(vec![url])
                .connection_timeout(timeout)
                .response_timeout(timeout)
                // One redirect or reconnect fits in the budget; beyond it the caller
                // treats Redis as away (503, last good page, guard closed).
                .overall_response_timeout(Some(timeout * 2))
                .retries(2)
                .min_retry_wait(10)
                .max_retry_wait(200);
            if let Some(certs) = certs {
                builder = builder.certs(certs);
            }
            let client = builder.build()?;
            let config = ClusterConfig::new()
                .set_connection_timeout(timeout)
                .set_response_timeout(timeout);
            let inner = client.get_pending_async_connection_with_config(config);
            return Ok(Self {
                inner: Inner::Cluster(inner),
            });
        }
        let client = match certs {
            None => redis::Client::open(url)?,
            Some(certs) => redis::Client::build_with_tls(url, certs)?,
        };
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(200));
        let inner = ConnectionManager::new_lazy_with_config(client, config)?;
        Ok(Self {
            inner: Inner::Single(inner),
        })
    }

    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let conn = Self::connect_lazy(url, DEFAULT_RESPONSE_TIMEOUT)?;
        conn.ping().await?;
        Ok(conn)
    }

    /// As [`RedisConn::connect`], with options; answers once Redis answered a PING.
    pub async fn connect_with(url: &str, options: &RedisOptions) -> Result<Self, StoreError> {
        let conn = Self::connect_lazy_with(url, options)?;
        conn.ping().await?;
        Ok(conn)
    }

    pub fn is_cluster(&self) -> bool {
        matches!(self.inner, Inner::Cluster(_))
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.clone();
        redis::cmd("PING").query_async::<()>(&mut conn).await?;
        Ok(())
    }
}

fn read_ca(path: &str) -> Result<Vec<u8>, StoreError> {
    let pem = std::fs::read(path).map_err(|e| StoreError::TlsCa {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    if !pem
        .windows(b"-----BEGIN CERTIFICATE-----".len())
        .any(|w| w == b"-----BEGIN CERTIFICATE-----")
    {
        return Err(StoreError::TlsCa {
            path: path.to_owned(),
            reason: "no PEM certificate in the file".into(),
        });
    }
    Ok(pem)
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match &mut self.inner {
            Inner::Single(c) => c.req_packed_command(cmd),
            Inner::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match &mut self.inner {
            Inner::Single(c) => c.req_packed_commands(pipeline, offset, count),
            // A transaction must stay on one slot, and the server says so if it does not;
            // a plain pipeline over several slots (the shared source caches write many
            // videos at once) is split by slot and sent concurrently.
            Inner::Cluster(c) => {
                if pipeline.is_transaction() || single_slot(pipeline) {
                    c.req_packed_commands(pipeline, offset, count)
                } else {
                    Box::pin(split_by_slot(c.clone(), pipeline))
                }
            }
        }
    }

    fn get_db(&self) -> i64 {
        match &self.inner {
            Inner::Single(c) => c.get_db(),
            Inner::Cluster(c) => c.get_db(),
        }
    }
}

/// The key a command routes by, for the commands the project pipelines: the first
/// argument, or EVAL/EVALSHA's first key. `None` for commands without a key.
fn routing_key(cmd: &Cmd) -> Option<Vec<u8>> {
    let args: Vec<&[u8]> = cmd
        .args_iter()
        .filter_map(|a| match a {
            redis::Arg::Simple(bytes) => Some(bytes),
            _ => None,
        })
        .collect();
    let name = args.first()?.to_ascii_uppercase();
    match name.as_slice() {
        b"EVAL" | b"EVALSHA" | b"EVAL_RO" | b"EVALSHA_RO" | b"FCALL" | b"FCALL_RO" => {
            let numkeys: usize = std::str::from_utf8(args.get(2)?).ok()?.parse().ok()?;
            if numkeys == 0 {
                None
            } else {
                args.get(3).map(|k| k.to_vec())
            }
        }
        b"PING" | b"ECHO" | b"INFO" | b"SCRIPT" | b"TIME" | b"DBSIZE" | b"CLUSTER" | b"CONFIG"
        | b"CLIENT" | b"FLUSHALL" | b"FLUSHDB" | b"MULTI" | b"EXEC" => None,
        _ => args.get(1).map(|k| k.to_vec()),
    }
}

fn single_slot(pipeline: &Pipeline) -> bool {
    let mut slots = pipeline
        .cmd_iter()
        .filter_map(routing_key)
        .map(Slot::for_key);
    match slots.next() {
        None => true,
        Some(first) => slots.all(|s| s == first),
    }
}

/// Runs a non-transactional pipeline whose keys span several slots as one sub-pipeline
/// per slot, concurrently, and puts the replies back in the pipeline's order.
async fn split_by_slot(
    conn: ClusterConnection,
    pipeline: &Pipeline,
) -> redis::RedisResult<Vec<Value>> {
    let mut groups: Vec<(Option<Slot>, Vec<usize>, Pipeline)> = Vec::new();
    for (index, cmd) in pipeline.cmd_iter().enumerate() {
        let slot = routing_key(cmd).map(Slot::for_key);
        let group = match groups.iter_mut().position(|(s, _, _)| *s == slot) {
            Some(g) => g,
            None => {
                groups.push((slot, Vec::new(), redis::pipe()));
                groups.len() - 1
            }
        };
        groups[group].1.push(index);
        groups[group].2.add_command(cmd.clone());
    }
    let mut tasks = tokio::task::JoinSet::new();
    for (_, indices, sub) in groups {
        let mut conn = conn.clone();
        tasks.spawn(async move {
            let count = indices.len();
            conn.req_packed_commands(&sub, 0, count)
                .await
                .map(|values| (indices, values))
        });
    }
    let mut replies = vec![Value::Nil; pipeline.len()];
    while let Some(joined) = tasks.join_next().await {
        let (indices, values) = joined.map_err(|e| {
            redis::RedisError::from((redis::ErrorKind::Io, "pipeline task failed", e.to_string()))
        })??;
        for (index, value) in indices.into_iter().zip(values) {
            replies[index] = value;
        }
    }
    Ok(replies)
}

/// Key names. Every key the project writes is built here, but for the quota guard's, which
/// live beside its script (`quota::keys`).
pub mod keys {
    use super::UserId;

    /// The user's pool: LIST of pre-cut pages of entries `video_id|category_id|kind|reason`,
    /// best first, each page under a header line (`engine::pool`).
    pub fn feed(user: &UserId) -> String {
        format!("reco:{{u:{user}}}:feed")
    }
    /// The ids of the pool's last cut, space-separated: those no longer waiting in
    /// `feed` were shown, and the next warm makes their served marks. Outlives the pool
    /// (the served marks' lifetime), so a pool that expired unread still counts as shown.
    pub fn cut(user: &UserId) -> String {
        format!("reco:{{u:{user}}}:cut")
    }
    /// The first layout's ranked pool: ZSET of `video_id|category_id|t` members scored by
    /// rank. Still read (and replaced by the next warm) while such pools live
    /// (`engine::pool_v1`); no longer written.
    pub fn pool(user: &UserId) -> String {
        format!("reco:{{u:{user}}}:pool")
    }
    /// The first layout's copy of each pooled video: HASH video_id → JSON. Read while such
    /// pools live; no longer written.
    pub fn pool_items(user: &UserId) -> String {
        format!("reco:{{u:{user}}}:items")
    }
    /// Pool metadata: HASH with generated_at, built_from, size and layout (2 for a feed
    /// list; absent in the first layout).
    pub fn pool_meta(user: &UserId) -> String {
        format!("reco:{{u:{user}}}:meta")
    }
    /// Everything already shown to the user: ZSET video_id → served-at ms.
    pub fn served(user: &UserId) -> String {
        format!("reco:{{u:{user}}}:served")
    }
    /// Watch history: LIST of JSON watch events, newest first, capped, no TTL.
    pub fn history(user: &UserId) -> String {
        format!("reco:{{u:{user}}}:history")
    }
    /// Declared interests: JSON `{topics, categories}`, replaced on each write, no TTL.
    pub fn interests(user: &UserId) -> String {
        format!("reco:{{u:{user}}}:interests")
    }
    /// The warm claim: set while a warm request is queued or running, so bursts enqueue
    /// once (`engine::pool`). (The key kept its first name.)
    pub fn warm_claim(user: &UserId) -> String {
        format!("reco:{{u:{user}}}:warm-pending")
    }
    /// The build lock, held by the warmer instance building the pool
    /// (`engine::build_lock`). (The key kept its first name.)
    pub fn build_lock(user: &UserId) -> String {
        format!("reco:{{u:{user}}}:warm-lock")
    }
    /// One `force_refresh` per user per cooldown (the API).
    pub fn refresh_cooldown(user: &UserId) -> String {
        format!("reco:{{u:{user}}}:refresh-cooldown")
    }
    /// The shared catalog: one video's details (JSON of `Video`), written by whichever
    /// source fetched it, read by every warm and by the API to hydrate a page of ids.
    pub fn video(video_id: &str) -> String {
        format!("reco:src:video:{video_id}")
    }
    /// Shared cache of a channel's uploads playlist id.
    pub fn channel_uploads_playlist(channel_id: &str) -> String {
        format!("reco:src:channel:{channel_id}")
    }
    /// Shared cache of a playlist's latest video ids.
    pub fn playlist_latest(playlist_id: &str) -> String {
        format!("reco:src:playlist:{playlist_id}")
    }
    /// Shared cache of a region's chart for a category ("0" = all).
    pub fn chart(region: &str, category_id: &str) -> String {
        format!("reco:src:chart:{region}:{category_id}")
    }
    /// How many warms wanted each shared source on a Pacific day: ZSET source key → count,
    /// read by the refresh allocator.
    pub fn source_demand(day: &str) -> String {
        format!("reco:alloc:demand:{day}")
    }
    /// Shared cache of a normalised topic search.
    pub fn search(query: &str) -> String {
        format!("reco:src:search:{query}")
    }
    /// One channel's push subscription (`push::subscriptions`): HASH want (the mode we
    /// last asked the hub for), asked_at, lease_until, verified_at, denied.
    pub fn push_subscription(channel_id: &str) -> String {
        format!("reco:push:sub:{channel_id}")
    }
    /// The channels we want subscribed: ZSET channel id → when we last asked the hub.
    pub fn push_wanted() -> String {
        "reco:push:wanted".to_owned()
    }
    /// Live push subscriptions: ZSET channel id → end of the lease (ms). A warm trusts a
    /// channel's cached uploads while it is here; the manager renews what ends soon.
    pub fn push_leases() -> String {
        "reco:push:leases".to_owned()
    }
    /// The last notification seen of a video: `e:<updated ms>` or `d:<deleted ms>`, kept
    /// for the catalog's lifetime, so duplicates, replays and older entries change nothing.
    pub fn push_seen(video_id: &str) -> String {
        format!("reco:push:seen:{video_id}")
    }
    /// Pushed videos waiting for `videos.list`: ZSET video id → when it arrived (ms).
    pub fn push_hydrate() -> String {
        "reco:push:hydrate".to_owned()
    }
    /// Who watches a subscribed channel: ZSET user id → their last warm (ms), written by
    /// warms for the channels they take uploads from; a pushed upload's watchers are warmed.
    pub fn push_watchers(channel_id: &str) -> String {
        format!("reco:push:watchers:{channel_id}")
    }
    /// Channels the users interested in a term watch: ZSET channel id → how many warms
    /// of such users named it. Related channels found without spending a search.
    pub fn term_channels(term: &str) -> String {
        format!("reco:src:term-channels:{term}")
    }
    /// How many of the catalog's titles use each word: HASH word → titles (for the
    /// ranking's term weights, `SourceCache::term_idf`).
    pub fn term_df() -> String {
        "reco:src:term-df".to_owned()
    }
    /// How many titles `term_df` has counted.
    pub fn term_docs() -> String {
        "reco:src:term-docs".to_owned()
    }
}
