//! Quota metering as Google does it: per-method costs, the separate search
//! bucket, charging invalid calls, refusing (without charging) over-quota
//! calls, and the day boundary at Pacific midnight across DST changes.

mod common;

use common::{KEY, fake, fake_with, get, reason};
use fake_youtube::{FakeConfig, Limits};
use jiff::Timestamp;

fn ts(s: &str) -> Timestamp {
    s.parse().expect("timestamp")
}

#[tokio::test]
async fn each_method_costs_what_google_charges() {
    let fake = fake(200);
    let channel = fake.corpus().channels()[0].clone();
    let video = fake.corpus().videos()[0].id.clone();
    let calls = [
        ("videos.list", "videos", format!("part=snippet&id={video}")),
        (
            "channels.list",
            "channels",
            format!("part=contentDetails&id={}", channel.id),
        ),
        (
            "playlistItems.list",
            "playlistItems",
            format!("part=snippet&playlistId={}", channel.uploads_playlist_id),
        ),
        (
            "videoCategories.list",
            "videoCategories",
            "part=snippet&regionCode=US".to_string(),
        ),
    ];
    for (method, path, query) in &calls {
        let before = fake.counters();
        let (status, body) = get(&fake, path, query).await;
        assert_eq!(status, 200, "{path}: {body}");
        let after = fake.counters();
        assert_eq!(
            after.units_used - before.units_used,
            1,
            "{method} costs 1 unit"
        );
        assert_eq!(
            after.searches_used, before.searches_used,
            "{method} does not touch the search bucket"
        );
        let m = &after.per_method[*method];
        assert_eq!((m.calls, m.units), (1, 1), "{method}");
    }
    let before = fake.counters();
    let (status, _) = get(&fake, "search", "part=snippet&q=jazz&type=video").await;
    assert_eq!(status, 200);
    let after = fake.counters();
    assert_eq!(
        after.units_used, before.units_used,
        "search.list costs no units"
    );
    assert_eq!(
        after.searches_used,
        before.searches_used + 1,
        "search.list takes one search"
    );
    let m = &after.per_method["search.list"];
    assert_eq!((m.calls, m.units), (1, 0));
    // Counters are also served over HTTP for out-of-process harnesses.
    let http: fake_youtube::Counters = reqwest::get(format!("{}/counters", fake.admin_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(http.units_used, 4);
    assert_eq!(http.searches_used, 1);
}

#[tokio::test]
async fn the_101st_search_is_refused_and_invalid_calls_are_charged() {
    let fake = fake(100);
    // An invalid request still costs: maxResults=500 is a 400, charged.
    let (status, body) = get(&fake, "search", "part=snippet&q=chess&maxResults=500").await;
    assert_eq!(status, 400);
    assert_eq!(reason(&body), "invalidValue");
    assert_eq!(fake.counters().searches_used, 1);
    let (status, body) = get(&fake, "videos", "part=snippet&id=abc&maxResults=500").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(fake.counters().units_used, 1);

    for i in 2..=100 {
        let (status, body) = get(&fake, "search", "part=id&q=chess&type=video").await;
        assert_eq!(status, 200, "search #{i}: {body}");
    }
    let (status, body) = get(&fake, "search", "part=id&q=chess&type=video").await;
    assert_eq!(status, 403);
    assert_eq!(reason(&body), "quotaExceeded");
    assert_eq!(body["error"]["errors"][0]["domain"], "youtube.quota");
    let c = fake.counters();
    assert_eq!(c.searches_used, 100, "a refused call is not charged");
    assert_eq!(c.quota_violations, 1);
    // The units bucket is independent of the search bucket.
    let (status, _) = get(&fake, "videoCategories", "part=snippet&regionCode=US").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn units_bucket_runs_out_too() {
    let fake = fake_with(FakeConfig {
        channels: 50,
        daily_units: 3,
        ..FakeConfig::default()
    });
    for _ in 0..3 {
        assert_eq!(
            get(&fake, "videoCategories", "part=snippet&regionCode=US")
                .await
                .0,
            200
        );
    }
    let (status, body) = get(&fake, "videoCategories", "part=snippet&regionCode=US").await;
    assert_eq!((status, reason(&body)), (403, "quotaExceeded"));
    assert_eq!(fake.counters().units_used, 3);
    // Raising the limit at run time lets calls through again.
    fake.set_limits(Limits {
        daily_units: 4,
        ..fake.limits()
    });
    assert_eq!(
        get(&fake, "videoCategories", "part=snippet&regionCode=US")
            .await
            .0,
        200
    );
}

async fn exhaust_and_roll(
    last_second: &str,
    midnight: &str,
    expect_day_before: &str,
    expect_day_after: &str,
) {
    let fake = fake_with(FakeConfig {
        channels: 50,
        daily_searches: 2,
        start_clock: Some(ts(last_second)),
        ..FakeConfig::default()
    });
    assert_eq!(get(&fake, "search", "part=id&q=x").await.0, 200);
    assert_eq!(get(&fake, "search", "part=id&q=x").await.0, 200);
    // Pin the clock to the last second of the Pacific day before each call:
    // real time keeps flowing under the offset.
    fake.set_clock(ts(last_second));
    let (status, body) = get(&fake, "search", "part=id&q=x").await;
    assert_eq!(
        (status, reason(&body)),
        (403, "quotaExceeded"),
        "still {expect_day_before}"
    );
    assert_eq!(fake.counters().day, expect_day_before);
    fake.set_clock(ts(midnight));
    let (status, body) = get(&fake, "search", "part=id&q=x").await;
    assert_eq!(status, 200, "new Pacific day at {midnight}: {body}");
    let c = fake.counters();
    assert_eq!(c.day, expect_day_after);
    assert_eq!(c.searches_used, 1);
    assert_eq!(c.days[expect_day_before].searches, 2);
}

#[tokio::test]
async fn day_rolls_over_at_pacific_midnight_in_winter() {
    exhaust_and_roll(
        "2026-11-25T07:59:59Z",
        "2026-11-25T08:00:00Z",
        "2026-11-24",
        "2026-11-25",
    )
    .await;
}

#[tokio::test]
async fn day_rolls_over_at_pacific_midnight_in_summer() {
    exhaust_and_roll(
        "2026-07-15T06:59:59Z",
        "2026-07-15T07:00:00Z",
        "2026-07-14",
        "2026-07-15",
    )
    .await;
}

#[tokio::test]
async fn day_boundaries_around_the_dst_switches() {
    // March 8, 2026 starts in PST (midnight = 08:00Z) and the next midnight is PDT (07:00Z).
    exhaust_and_roll(
        "2026-03-08T07:59:59Z",
        "2026-03-08T08:00:00Z",
        "2026-03-07",
        "2026-03-08",
    )
    .await;
    exhaust_and_roll(
        "2026-03-09T06:59:59Z",
        "2026-03-09T07:00:00Z",
        "2026-03-08",
        "2026-03-09",
    )
    .await;
    // November 1, 2026 starts in PDT (07:00Z) and ends in PST (next midnight 08:00Z).
    exhaust_and_roll(
        "2026-11-01T06:59:59Z",
        "2026-11-01T07:00:00Z",
        "2026-10-31",
        "2026-11-01",
    )
    .await;
    exhaust_and_roll(
        "2026-11-02T07:59:59Z",
        "2026-11-02T08:00:00Z",
        "2026-11-01",
        "2026-11-02",
    )
    .await;
}

#[tokio::test]
async fn clock_moves_through_admin_endpoint() {
    let fake = fake(50);
    let http = reqwest::Client::new();
    let v: serde_json::Value = http
        .post(format!("{}/clock", fake.admin_url()))
        .json(&serde_json::json!({"set": "2026-11-01T07:59:59Z"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        v["now"]
            .as_str()
            .unwrap()
            .starts_with("2026-11-01T07:59:59"),
        "{v}"
    );
    assert_eq!(v["pacific_date"], "2026-11-01");
    let v: serde_json::Value = http
        .post(format!("{}/clock", fake.admin_url()))
        .json(&serde_json::json!({"advance_secs": 3600}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        v["now"]
            .as_str()
            .unwrap()
            .starts_with("2026-11-01T08:59:59"),
        "{v}"
    );
}

#[tokio::test]
async fn missing_or_wrong_key_is_400_key_invalid_and_free() {
    let fake = fake(50);
    let url = format!(
        "{}/videoCategories?part=snippet&regionCode=US",
        fake.base_url()
    );
    let http = reqwest::Client::new();
    for req in [
        http.get(&url),
        http.get(&url).header("X-Goog-Api-Key", "wrong"),
        http.get(format!("{url}&key=wrong")),
    ] {
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 400);
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(reason(&body), "keyInvalid");
        assert_eq!(body["error"]["errors"][0]["domain"], "usageLimits");
    }
    // The key in the query string works too (Google accepts both).
    let resp = http.get(format!("{url}&key={KEY}")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let c = fake.counters();
    assert_eq!(c.invalid_key, 3);
    assert_eq!(c.units_used, 1, "only the valid call is charged");
    assert_eq!(c.requests, 4);
}

#[tokio::test]
async fn short_window_limits_refuse_with_rate_limit_exceeded() {
    let fake = fake_with(FakeConfig {
        channels: 50,
        max_units_per_minute: Some(3),
        ..FakeConfig::default()
    });
    // Stand at the start of a minute so the window cannot roll mid-test.
    fake.set_clock(ts("2026-11-20T12:00:00Z"));
    for _ in 0..3 {
        assert_eq!(
            get(&fake, "videoCategories", "part=snippet&regionCode=US")
                .await
                .0,
            200
        );
    }
    let (status, body) = get(&fake, "videoCategories", "part=snippet&regionCode=US").await;
    assert_eq!((status, reason(&body)), (403, "rateLimitExceeded"));
    assert_eq!(body["error"]["errors"][0]["domain"], "usageLimits");
    let c = fake.counters();
    assert_eq!(
        (c.units_used, c.rate_violations),
        (3, 1),
        "refused calls are not charged"
    );
    // A minute later on the fake clock, the window is fresh.
    fake.advance_clock(60);
    assert_eq!(
        get(&fake, "videoCategories", "part=snippet&regionCode=US")
            .await
            .0,
        200
    );

    let fake = fake_with(FakeConfig {
        channels: 50,
        max_calls_per_second: Some(2),
        ..FakeConfig::default()
    });
    fake.set_clock(ts("2026-11-20T12:00:00Z"));
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(
            get(&fake, "videoCategories", "part=snippet&regionCode=US")
                .await
                .0,
        );
    }
    assert_eq!(statuses, [200, 200, 403]);
    fake.advance_clock(1);
    assert_eq!(
        get(&fake, "videoCategories", "part=snippet&regionCode=US")
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn admin_limits_and_reset() {
    let fake = fake(50);
    let http = reqwest::Client::new();
    let resp = http
        .post(format!("{}/limits", fake.admin_url()))
        .json(&serde_json::json!({"daily_searches": 1, "max_calls_per_second": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(get(&fake, "search", "part=id&q=a").await.0, 200);
    assert_eq!(get(&fake, "search", "part=id&q=a").await.0, 403);
    let resp = http
        .post(format!("{}/reset", fake.admin_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let c = fake.counters();
    assert_eq!((c.searches_used, c.quota_violations, c.requests), (0, 0, 0));
    assert_eq!(get(&fake, "search", "part=id&q=a").await.0, 200);
}
