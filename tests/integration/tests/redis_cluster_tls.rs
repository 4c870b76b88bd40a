//! The production shape of Redis: ElastiCache Serverless is cluster mode behind TLS.
//! The whole flow — history → sign-in → warm → three refreshes → quota guard — runs
//! unchanged against a local 3-primary Redis Cluster (`REDIS_CLUSTER=true`), a TLS-only
//! server with a CA the test generates (`rediss://`, `REDIS_TLS_CA_FILE`), and a TLS
//! cluster; on the cluster every script's keys stay in one slot (checked on every node's
//! MONITOR, commands run inside scripts included).
//!
//! Run: `cargo nextest run -p reco-tests --test redis_cluster_tls --no-capture`.

use std::collections::{BTreeMap, HashSet};

use reco_core::config::{AuthMode, Config};
use reco_core::quota::{Admission, Charge, Cost, Limit, Priority};
use reco_core::store::{RedisConn, RedisOptions};
use reco_tests::apps::{config_with, deliver_once, queue_depth, video_ids};
use reco_tests::cluster::{RedisCluster, TlsRedis, key_slot, monitor_args};
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

/// What one run of the flow did.
#[derive(Debug)]
struct Figures {
    pool_size: usize,
    served: usize,
    units_charged: u64,
    youtube_units: u64,
}

/// History → sign-in → warm → 3 refreshes of 20 new videos → the guard's accounting
/// matches what YouTube metered, and a tripped breaker refuses the next call.
async fn whole_flow(env: &TestEnv, config: Config) -> Figures {
    let apps = Apps::build_with(env, config, None, AuthMode::None).await;
    let history = history_in_topic(&env.fake, 0, 3, 4);
    apps.record_history(USER, &history.body()).await;

    let event = cognito_event();
    assert_eq!(apps.login.handle(event.clone()).await, event);
    let sqs = env.sqs.client().await;
    assert_eq!(queue_depth(&sqs, &env.queue_url).await, 1);

    let outcomes = deliver_once(&sqs, &env.queue_url, &apps.warmer, 10, 5).await;
    assert_eq!(outcomes.len(), 1, "{outcomes:?}");
    let pool_size = match &outcomes[0].1 {
        reco_warmer::ItemOutcome::Warmed(w) => w.pool_size,
        other => panic!("warm did not build a pool: {other:?}"),
    };
    assert!(pool_size >= 200, "pool too small: {pool_size}");

    let watched: HashSet<&String> = history.video_ids.iter().collect();
    let mut seen = HashSet::new();
    for refresh in 0..3 {
        let path = format!("/api/v1/video/recommendations/{USER}");
        let response = apps
            .api
            .handle(api_request(
                "GET",
                &path,
                &[("max_results", "20")],
                None,
                None,
            ))
            .await;
        let (status, body) = response_json(&response);
        assert_eq!(status, 200, "refresh {refresh}: {body}");
        assert_eq!(body["count"], 20, "refresh {refresh}: {body}");
        assert_eq!(body["meta"]["cache_status"], "hit", "refresh {refresh}");
        for id in video_ids(&body) {
            assert!(!watched.contains(&id), "watched video {id} recommended");
            assert!(seen.insert(id.clone()), "video {id} shown twice");
        }
        // Every card whole: its details came from the catalog, whose keys for one page
        // span many slots (one MGET, split by slot on a cluster).
        for video in body["videos"].as_array().unwrap() {
            assert!(
                !video["title"].as_str().unwrap_or("").is_empty()
                    && !video["channel_id"].as_str().unwrap_or("").is_empty(),
                "refresh {refresh}: a card without details: {video}"
            );
        }
        let slots: HashSet<u16> = video_ids(&body)
            .iter()
            .map(|id| key_slot(&reco_core::store::keys::video(id)))
            .collect();
        assert!(
            slots.len() > 10,
            "a page's catalog keys in {} slots",
            slots.len()
        );
    }
    let catalog = apps.services.engine.catalog.stats();
    assert!(
        catalog
            .catalog_reads
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 60,
        "the pages were read from the catalog"
    );

    // The guard charged every call before it was made, so its day total is what the fake
    // YouTube metered.
    let guard = &apps.services.guard;
    let state = guard.state().await.expect("quota state");
    let units_charged = state
        .bucket(reco_core::quota::Bucket::Units)
        .expect("units bucket")
        .used;
    let youtube_units = env.fake.counters().units_used;
    assert!(youtube_units > 0, "the warm must have called YouTube");
    assert_eq!(
        units_charged, youtube_units,
        "guard charged {units_charged} units, YouTube metered {youtube_units}"
    );
    // A quotaExceeded trips the shared breaker: the next call is refused.
    guard
        .trip_daily_breaker(Charge {
            at: guard.clock().now(),
            cost: Cost::ONE_UNIT,
        })
        .await
        .expect("trip breaker");
    match guard
        .admit(Cost::ONE_UNIT, Priority::Interactive)
        .await
        .expect("admit answers")
    {
        Admission::Denied { limit, .. } => assert_eq!(limit, Limit::DailyBreaker),
        Admission::Allowed => panic!("the breaker must refuse"),
    }
    Figures {
        pool_size,
        served: seen.len(),
        units_charged,
        youtube_units,
    }
}

/// Checks every script run on every node: the keys an EVAL/EVALSHA declares hash to one
/// slot, and every command the script ran (`lua]` lines, which follow their EVALSHA on
/// the node that ran it) touches a key of that same slot. Returns the scripts checked.
fn assert_scripts_single_slot(lines: &[(u16, String)]) -> usize {
    let mut by_node: BTreeMap<u16, Vec<&str>> = BTreeMap::new();
    for (port, line) in lines {
        by_node.entry(*port).or_default().push(line);
    }
    let keyless: HashSet<&str> = ["TIME", "PING", "ECHO"].into_iter().collect();
    let mut scripts = 0;
    for (port, lines) in by_node {
        let mut current: Option<u16> = None;
        for line in lines {
            let args = monitor_args(line);
            let Some(name) = args.first().map(|a| a.to_ascii_uppercase()) else {
                continue;
            };
            if line.contains(" lua]") {
                if keyless.contains(name.as_str()) || args.len() < 2 {
                    continue;
                }
                let slot =
                    current.unwrap_or_else(|| panic!("lua command outside a script: {line}"));
                assert_eq!(
                    key_slot(&args[1]),
                    slot,
                    "node {port}: a script touched {} outside its slot: {line}",
                    args[1]
                );
            } else if name == "EVALSHA" || name == "EVAL" {
                let numkeys: usize = args[2].parse().expect("numkeys");
                let keys = &args[3..3 + numkeys];
                assert!(!keys.is_empty(), "a script without keys: {line}");
                let slot = key_slot(&keys[0]);
                for key in keys {
                    assert_eq!(key_slot(key), slot, "cross-slot script keys: {line}");
                }
                current = Some(slot);
                scripts += 1;
            } else {
                current = None;
            }
        }
    }
    scripts
}

/// Keys per node, and the checks that user keys and quota keys each sit in one slot.
fn key_layout(keys: &[(u16, String)]) -> BTreeMap<u16, usize> {
    let user_slots: HashSet<u16> = keys
        .iter()
        .filter(|(_, k)| k.contains(&format!("{{u:{USER}}}")))
        .map(|(_, k)| key_slot(k))
        .collect();
    assert_eq!(user_slots.len(), 1, "the user's keys span slots");
    let quota_slots: HashSet<u16> = keys
        .iter()
        .filter(|(_, k)| k.contains("{quota}"))
        .map(|(_, k)| key_slot(k))
        .collect();
    assert_eq!(quota_slots.len(), 1, "the quota keys span slots");
    let mut per_node = BTreeMap::new();
    for (port, _) in keys {
        *per_node.entry(*port).or_insert(0) += 1;
    }
    per_node
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_flow_on_a_three_primary_cluster() {
    let cluster = RedisCluster::start(3);
    let env = TestEnv::start().await;
    let config = config_with(
        &env,
        &[("REDIS_URL", &cluster.url()), ("REDIS_CLUSTER", "true")],
    );
    let monitor = cluster.monitor();
    let figures = whole_flow(&env, config).await;
    let lines = monitor.stop();
    let scripts = assert_scripts_single_slot(&lines);
    assert!(scripts >= 5, "only {scripts} scripts seen");
    let per_node = key_layout(&cluster.all_keys());
    assert!(
        per_node.len() >= 2,
        "the shared caches should spread over the primaries: {per_node:?}"
    );
    // The test's own redis-server was never used: everything went to the cluster.
    let mut plain = env.redis.client().get_connection().unwrap();
    let dbsize: u64 = redis::cmd("DBSIZE").query(&mut plain).unwrap();
    assert_eq!(dbsize, 0);
    println!(
        "cluster: 3 primaries, pool {} videos, {} served in 3 refreshes, {} units charged = {} metered, {} scripts checked single-slot over {} MONITOR lines, keys per node {:?}",
        figures.pool_size,
        figures.served,
        figures.units_charged,
        figures.youtube_units,
        scripts,
        lines.len(),
        per_node
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_flow_over_tls_with_a_private_ca() {
    let tls = TlsRedis::start();
    let env = TestEnv::start().await;
    let ca = tls.ca.ca_file();

    // Without the CA the certificate is not trusted: the TLS is really verified.
    let untrusted = RedisConn::connect_with(&tls.url(), &RedisOptions::default()).await;
    assert!(untrusted.is_err(), "an unknown CA must be refused");
    // Plain TCP to the TLS port does not answer Redis.
    let plain = RedisConn::connect(&format!("redis://127.0.0.1:{}", tls.port())).await;
    assert!(plain.is_err(), "plain redis:// to a TLS port must fail");

    let config = config_with(
        &env,
        &[("REDIS_URL", &tls.url()), ("REDIS_TLS_CA_FILE", &ca)],
    );
    let figures = whole_flow(&env, config).await;
    let dbsize = tls.cli(&["dbsize"]);
    assert!(dbsize.trim().parse::<u64>().unwrap_or(0) > 0, "{dbsize:?}");
    println!(
        "tls: rediss:// with a generated CA, pool {} videos, {} served in 3 refreshes, {} units charged = {} metered, {} keys on the TLS server",
        figures.pool_size,
        figures.served,
        figures.units_charged,
        figures.youtube_units,
        dbsize.trim()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_flow_on_a_tls_cluster() {
    let cluster = RedisCluster::start_tls(3);
    let env = TestEnv::start().await;
    let ca = cluster.ca_file().unwrap();
    let config = config_with(
        &env,
        &[
            ("REDIS_URL", &cluster.url()),
            ("REDIS_CLUSTER", "true"),
            ("REDIS_TLS_CA_FILE", &ca),
        ],
    );
    let figures = whole_flow(&env, config).await;
    let per_node = key_layout(&cluster.all_keys());
    println!(
        "tls cluster: 3 primaries over rediss://, pool {} videos, {} served in 3 refreshes, {} units charged = {} metered, keys per node {:?}",
        figures.pool_size, figures.served, figures.units_charged, figures.youtube_units, per_node
    );
}
