//! The fake's responses look like Google's: same keys, types and nesting as
//! the real captures in shared/youtube-samples, same error envelope, Google-
//! shaped paging, deterministic from the seed.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::{assert_conforms, fake, fake_with, get, get_raw, merge_schema, reason, sample};
use fake_youtube::{FakeConfig, FakeYoutube, Fault};
use serde_json::Value;

fn assert_list_envelope(v: &Value, kind: &str) {
    assert_eq!(v["kind"], kind);
    let etag = v["etag"].as_str().expect("etag is a string");
    assert!(etag.len() >= 20, "etag {etag}");
}

#[tokio::test]
async fn success_responses_have_the_samples_structure() {
    let fake = fake(300);
    let (channel, videos) = {
        let corpus = fake.corpus();
        let ch = corpus.channels()[3].clone();
        let ids: Vec<String> = corpus
            .videos()
            .iter()
            .take(40)
            .map(|v| v.id.clone())
            .collect();
        (ch, ids)
    };

    // videos.list by id
    let (status, v) = get(
        &fake,
        "videos",
        &format!(
            "part=snippet,contentDetails,statistics,status,player&id={}",
            videos.join(",")
        ),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_list_envelope(&v, "youtube#videoListResponse");
    let schema = merge_schema(&[
        sample("videos_list_snippet_contentDetails_statistics_2023.json"),
        sample("videos_list_snippet_contentDetails_status_statistics_2019.json"),
        sample("videos_list_chart_mostPopular_page1_2019.json"),
        sample("videos_list_upcoming_liveStreamingDetails_status_2024.json"),
    ]);
    assert_conforms(&v, &schema, "videos.list");
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), 40);
    assert_eq!(v["pageInfo"]["totalResults"], 40);
    for it in items {
        let d = it["contentDetails"]["duration"].as_str().unwrap();
        assert!(d.starts_with("PT") && d.len() > 2, "duration {d}");
        assert!(it["statistics"]["viewCount"].is_string());
        assert!(matches!(
            it["contentDetails"]["caption"].as_str(),
            Some("true" | "false")
        ));
        let published = it["snippet"]["publishedAt"].as_str().unwrap();
        published
            .parse::<jiff::Timestamp>()
            .expect("RFC 3339 publishedAt");
        assert_eq!(it["id"].as_str().unwrap().len(), 11);
    }
    assert!(
        items.iter().any(|it| it["snippet"].get("tags").is_none())
            || items.iter().all(|it| it["snippet"]["tags"].is_array())
    );

    // videos.list chart=mostPopular with a category
    let (status, v) = get(&fake, "videos", "part=snippet,contentDetails,statistics&chart=mostPopular&videoCategoryId=10&regionCode=US&maxResults=7").await;
    assert_eq!(status, 200, "{v}");
    assert_conforms(&v, &schema, "videos.list chart");
    assert_eq!(v["items"].as_array().unwrap().len(), 7);
    assert_eq!(v["nextPageToken"], "CAcQAA");
    assert!(
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|it| it["snippet"]["categoryId"] == "10")
    );

    // search.list
    let (status, v) = get(
        &fake,
        "search",
        "part=snippet&q=jazz+saxophone&type=video&maxResults=25&regionCode=JP",
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_list_envelope(&v, "youtube#searchListResponse");
    let search_schema = merge_schema(&[
        sample("search_list_videos_page1_nextPageToken_2019.json"),
        sample("search_list_videos_page2_prevPageToken_2019.json"),
        sample("search_list_mixed_video_playlist_2019.json"),
        sample("search_list_channels_2020.json"),
        sample("search_list_upcoming_live_publishTime_2024.json"),
        sample("search_list_empty_items_2024.json"),
    ]);
    assert_conforms(&v, &search_schema, "search.list");
    assert_eq!(v["regionCode"], "JP");
    assert_eq!(v["nextPageToken"], "CBkQAA");
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), 25);
    assert!(
        items.iter().all(|it| it["id"]["kind"] == "youtube#video"),
        "type=video returns only videos"
    );
    // Relevance: the top results are about jazz.
    let top = items[0]["id"]["videoId"].as_str().unwrap();
    assert_eq!(fake.corpus().video(top).unwrap().topic, "jazz");

    // search.list for channels
    let (status, v) = get(&fake, "search", "part=snippet&q=chess&type=channel").await;
    assert_eq!(status, 200);
    assert_conforms(&v, &search_schema, "search.list type=channel");
    assert!(
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|it| it["id"]["kind"] == "youtube#channel")
    );

    // channels.list
    let (status, v) = get(
        &fake,
        "channels",
        &format!(
            "part=snippet,contentDetails,statistics,brandingSettings&id={}",
            channel.id
        ),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_list_envelope(&v, "youtube#channelListResponse");
    let ch_schema = merge_schema(&[
        sample("channels_list_contentDetails_statistics_branding_2022.json"),
        sample("channels_list_snippet_prevPageToken_2019.json"),
    ]);
    assert_conforms(&v, &ch_schema, "channels.list");
    let it = &v["items"][0];
    assert_eq!(
        it["contentDetails"]["relatedPlaylists"]["uploads"],
        channel.uploads_playlist_id.as_str()
    );
    assert_eq!(it["contentDetails"]["relatedPlaylists"]["likes"], "");
    assert!(
        it["snippet"]["customUrl"]
            .as_str()
            .unwrap()
            .starts_with('@')
    );
    assert_eq!(it["statistics"]["hiddenSubscriberCount"], false);
    assert_eq!(
        it["statistics"]["videoCount"],
        channel.video_count().to_string().as_str()
    );

    // channels.list with no match: no `items` key at all.
    let (status, v) = get(
        &fake,
        "channels",
        "part=snippet&forUsername=nobody-here-xyz",
    )
    .await;
    assert_eq!(status, 200);
    assert!(v.get("items").is_none(), "{v}");
    assert_eq!(v["pageInfo"]["totalResults"], 0);
    let no_match = sample("channels_list_no_match_items_absent.json");
    let keys = |v: &Value| {
        v.as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect::<HashSet<_>>()
    };
    assert_eq!(keys(&v), keys(&no_match));

    // playlistItems.list
    let (status, v) = get(
        &fake,
        "playlistItems",
        &format!(
            "part=snippet,contentDetails&playlistId={}&maxResults=3",
            channel.uploads_playlist_id
        ),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_list_envelope(&v, "youtube#playlistItemListResponse");
    let pl_schema = merge_schema(&[
        sample("playlistItems_list_uploads_snippet_contentDetails_2023.json"),
        sample("playlistItems_list_page1_nextPageToken_2019.json"),
        sample("playlistItems_list_private_videos_2023.json"),
    ]);
    assert_conforms(&v, &pl_schema, "playlistItems.list");
    assert_eq!(v["items"][0]["snippet"]["position"], 0);
    assert_eq!(
        v["items"][0]["snippet"]["resourceId"]["kind"],
        "youtube#video"
    );

    // videoCategories.list: the real list, no pageInfo.
    let (status, v) = get(&fake, "videoCategories", "part=snippet&regionCode=US").await;
    assert_eq!(status, 200);
    let cats = sample("videoCategories_list_regionCode_2019.json");
    assert_conforms(
        &v,
        &merge_schema(std::slice::from_ref(&cats)),
        "videoCategories.list",
    );
    assert!(v.get("pageInfo").is_none());
    let ids = |v: &Value| {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                (
                    i["id"].clone(),
                    i["snippet"]["title"].clone(),
                    i["snippet"]["assignable"].clone(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&v), ids(&cats));
}

#[tokio::test]
async fn only_requested_parts_appear() {
    let fake = fake(100);
    let id = fake.corpus().videos()[5].id.clone();
    let (_, v) = get(&fake, "videos", &format!("part=statistics&id={id}")).await;
    let item = v["items"][0].as_object().unwrap();
    let mut keys: Vec<&str> = item.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["etag", "id", "kind", "statistics"]);
    let (_, v) = get(&fake, "videos", &format!("part=id&id={id},doesnotexist")).await;
    assert_eq!(
        v["items"].as_array().unwrap().len(),
        1,
        "unknown ids are silently omitted"
    );
}

#[tokio::test]
async fn errors_have_googles_envelope() {
    let fake = fake(100);
    let schema = merge_schema(&[
        sample("error_400_keyInvalid_legacy.json"),
        sample("error_403_quotaExceeded.json"),
        sample("error_404_playlistNotFound.json"),
        sample("error_429_rateLimitExceeded_videoUploadsPerDay.json"),
        sample("error_403_dailyLimitExceeded_legacy.json"),
        sample("error_403_accessNotConfigured_status_details.json"),
    ]);
    let same_item_shape = |fake_body: &Value, sample_name: &str| {
        let s = sample(sample_name);
        let f = fake_body["error"]["errors"][0].as_object().unwrap();
        let s = s["error"]["errors"][0].as_object().unwrap();
        let fk: HashSet<_> = f.keys().collect();
        let sk: HashSet<_> = s.keys().collect();
        assert_eq!(fk, sk, "error.errors[0] keys vs {sample_name}");
        for (k, v) in s {
            assert_eq!(
                std::mem::discriminant(v),
                std::mem::discriminant(&f[k]),
                "{k}"
            );
        }
        assert_eq!(f["reason"], s["reason"]);
        assert_eq!(f["domain"], s["domain"]);
    };

    // Key invalid.
    let resp = reqwest::get(format!("{}/videos?part=id&id=x", fake.base_url()))
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let v: Value = resp.json().await.unwrap();
    assert_conforms(&v, &schema, "keyInvalid");
    same_item_shape(&v, "error_400_keyInvalid_legacy.json");
    assert_eq!(v["error"]["code"], 400);

    // playlistNotFound.
    let (status, v) = get(
        &fake,
        "playlistItems",
        "part=snippet&playlistId=UUnothing0000000000000000",
    )
    .await;
    assert_eq!(status, 404);
    assert_conforms(&v, &schema, "playlistNotFound");
    same_item_shape(&v, "error_404_playlistNotFound.json");
    assert_eq!(
        v["error"]["message"],
        sample("error_404_playlistNotFound.json")["error"]["message"]
    );

    // quotaExceeded, byte-for-byte the message of the capture.
    fake.set_limits(fake_youtube::Limits {
        daily_searches: 0,
        ..fake.limits()
    });
    let (status, v) = get(&fake, "search", "part=id&q=x").await;
    assert_eq!(status, 403);
    same_item_shape(&v, "error_403_quotaExceeded.json");
    assert_eq!(v["error"], sample("error_403_quotaExceeded.json")["error"]);

    // Parameter errors: still the envelope, with location info.
    for (path, query, want) in [
        ("videos", "id=abc", "required"),
        ("videos", "part=snippets&id=abc", "unknownPart"),
        (
            "videos",
            "part=snippet&id=abc&maxResults=51",
            "invalidValue",
        ),
        (
            "playlistItems",
            "part=snippet&playlistId=UUx&pageToken=garbage",
            "invalidPageToken",
        ),
        (
            "videos",
            "part=snippet&chart=mostPopular&videoCategoryId=30",
            "videoChartNotFound",
        ),
        ("nosuchmethod", "part=snippet", "notFound"),
    ] {
        let (status, v) = get(&fake, path, query).await;
        assert!(status == 400 || status == 404, "{path}?{query}: {status}");
        assert_eq!(reason(&v), want, "{path}?{query}: {v}");
        assert_eq!(v["error"]["code"], status);
        assert_conforms(&v, &schema, want);
    }
    let too_many: Vec<String> = (0..51).map(|i| format!("id{i:09}")).collect();
    let (status, v) = get(
        &fake,
        "videos",
        &format!("part=id&id={}", too_many.join(",")),
    )
    .await;
    assert_eq!(status, 400, "{v}");
}

/// As `get_raw`, with the `Host` header the client names.
async fn get_as_host(fake: &FakeYoutube, path: &str, query: &str, host: &str) -> (u16, String) {
    let response = common::client()
        .get(format!("{}/{path}?{query}", fake.base_url()))
        .header("X-Goog-Api-Key", common::KEY)
        .header("Host", host)
        .send()
        .await
        .expect("request reaches the fake");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

#[tokio::test]
async fn same_seed_same_bytes_different_seed_differs() {
    let config = |seed| FakeConfig {
        seed,
        channels: 300,
        start_clock: Some("2026-11-20T00:00:00Z".parse().unwrap()),
        ..FakeConfig::default()
    };
    let a = fake_with(config(1));
    let b = fake_with(config(1));
    let c = fake_with(config(2));
    let first_channel = a.corpus().channels()[0].clone();
    assert_eq!(b.corpus().channels()[0].id, first_channel.id);
    let queries = [
        (
            "search",
            "part=snippet&q=minecraft+redstone&type=video&maxResults=50".to_string(),
        ),
        (
            "videos",
            "part=snippet,contentDetails,statistics&chart=mostPopular&maxResults=50".to_string(),
        ),
        (
            "channels",
            format!(
                "part=snippet,statistics,contentDetails&id={}",
                first_channel.id
            ),
        ),
        (
            "playlistItems",
            format!(
                "part=snippet,contentDetails&playlistId={}&maxResults=50",
                first_channel.uploads_playlist_id
            ),
        ),
    ];
    for (path, q) in &queries {
        // Thumbnail URLs name the host the fake was reached by: the same one for both.
        let (sa, ba) = get_as_host(&a, path, q, "youtube.test").await;
        let (sb, bb) = get_as_host(&b, path, q, "youtube.test").await;
        assert_eq!((sa, sb), (200, 200));
        assert!(
            ba.contains("http://youtube.test/vi/") || *path == "channels",
            "{ba}"
        );
        assert_eq!(ba, bb, "{path}: same seed, same bytes");
    }
    let (_, ba) = get_raw(&a, "search", &queries[0].1).await;
    let (_, bc) = get_raw(&c, "search", &queries[0].1).await;
    assert_ne!(ba, bc, "a different seed gives a different corpus");
    assert_ne!(c.corpus().channels()[0].id, first_channel.id);
}

#[tokio::test]
async fn page_tokens_walk_an_uploads_playlist() {
    let fake = fake(200);
    // A channel with exactly 23 uploads: top one up if none has 23 already.
    let channel = {
        let corpus = fake.corpus();
        corpus
            .channels()
            .iter()
            .filter(|c| c.video_count() <= 23)
            .max_by_key(|c| c.video_count())
            .unwrap()
            .clone()
    };
    for i in channel.video_count()..23 {
        fake.publish_upload(&channel.id, &format!("filler {i}"));
    }
    let expected: Vec<String> = fake
        .corpus()
        .uploads_of(&channel.id)
        .iter()
        .map(|v| v.id.clone())
        .collect();
    assert_eq!(expected.len(), 23);

    let page = |token: Option<String>| {
        let q = format!(
            "part=contentDetails&playlistId={}&maxResults=10{}",
            channel.uploads_playlist_id,
            token.map(|t| format!("&pageToken={t}")).unwrap_or_default()
        );
        let fake = fake.clone();
        async move {
            let (status, v) = get(&fake, "playlistItems", &q).await;
            assert_eq!(status, 200, "{v}");
            v
        }
    };
    let ids = |v: &Value| {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["contentDetails"]["videoId"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let p1 = page(None).await;
    assert_eq!(p1["nextPageToken"], "CAoQAA");
    assert!(p1.get("prevPageToken").is_none());
    assert_eq!(p1["pageInfo"]["totalResults"], 23);
    let p2 = page(Some(p1["nextPageToken"].as_str().unwrap().to_string())).await;
    let p3 = page(Some(p2["nextPageToken"].as_str().unwrap().to_string())).await;
    assert!(p3.get("nextPageToken").is_none());
    let mut all = ids(&p1);
    all.extend(ids(&p2));
    all.extend(ids(&p3));
    assert_eq!(
        all, expected,
        "pages of 10, 10, 3, newest first, no repeats"
    );
    assert_eq!(all.iter().collect::<HashSet<_>>().len(), 23);
    // prevPageToken goes back.
    let back = page(Some(p3["prevPageToken"].as_str().unwrap().to_string())).await;
    assert_eq!(ids(&back), ids(&p2));
    let back = page(Some(p2["prevPageToken"].as_str().unwrap().to_string())).await;
    assert_eq!(ids(&back), ids(&p1));
}

#[tokio::test]
async fn published_upload_comes_first() {
    let fake = fake(100);
    let channel = fake.corpus().channels()[7].clone();
    fake.set_clock("2026-11-24T10:00:00Z".parse().unwrap());
    let id = fake.publish_upload(&channel.id, "Brand new video");
    let (_, v) = get(
        &fake,
        "playlistItems",
        &format!(
            "part=snippet,contentDetails&playlistId={}",
            channel.uploads_playlist_id
        ),
    )
    .await;
    assert_eq!(v["items"][0]["contentDetails"]["videoId"], id.as_str());
    assert!(
        v["items"][0]["snippet"]["publishedAt"]
            .as_str()
            .unwrap()
            .starts_with("2026-11-24T10:00:0")
    );
    let video = fake.corpus().video(&id).unwrap().clone();
    assert_eq!(video.topic, channel.topic);
    // Through the admin endpoint too.
    let resp: Value = reqwest::Client::new()
        .post(format!(
            "{}/channels/{}/uploads",
            fake.admin_url(),
            channel.id
        ))
        .json(&serde_json::json!({"title": "Another one", "tags": ["x"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id2 = resp["video_id"].as_str().unwrap().to_string();
    let (_, v) = get(
        &fake,
        "playlistItems",
        &format!(
            "part=contentDetails&playlistId={}",
            channel.uploads_playlist_id
        ),
    )
    .await;
    assert_eq!(v["items"][0]["contentDetails"]["videoId"], id2.as_str());
    assert_eq!(v["items"][1]["contentDetails"]["videoId"], id.as_str());
    let info: Value = reqwest::get(format!("{}/videos/{id2}", fake.admin_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["channel_id"], channel.id.as_str());
    assert_eq!(info["category_id"], channel.category_id.as_str());
    assert_eq!(
        reqwest::get(format!("{}/videos/nope", fake.admin_url()))
            .await
            .unwrap()
            .status()
            .as_u16(),
        404
    );
}

#[tokio::test]
async fn injected_faults_hit_the_next_calls_and_are_charged() {
    let fake = fake(100);
    let q = "part=snippet&regionCode=US";
    fake.inject_faults(Fault::ServerError, 1);
    fake.inject_faults(Fault::TooManyRequests, 1);
    fake.inject_faults(Fault::MalformedJson, 1);
    fake.inject_faults(Fault::Latency(Duration::from_millis(300)), 1);
    let (status, v) = get(&fake, "videoCategories", q).await;
    assert_eq!((status, reason(&v)), (500, "backendError"));
    let (status, v) = get(&fake, "videoCategories", q).await;
    assert_eq!((status, reason(&v)), (429, "rateLimitExceeded"));
    let (status, body) = get_raw(&fake, "videoCategories", q).await;
    assert_eq!(status, 200);
    assert!(
        serde_json::from_str::<Value>(&body).is_err(),
        "malformed body parses: {body}"
    );
    let t0 = Instant::now();
    let (status, _) = get(&fake, "videoCategories", q).await;
    assert_eq!(status, 200);
    assert!(t0.elapsed() >= Duration::from_millis(300));
    assert_eq!(
        get(&fake, "videoCategories", q).await.0,
        200,
        "faults are used up"
    );
    assert_eq!(
        fake.counters().units_used,
        5,
        "faulted calls are charged like any call"
    );

    // Over HTTP.
    let resp = reqwest::Client::new()
        .post(format!("{}/faults", fake.admin_url()))
        .json(&serde_json::json!({"kind": "server_error", "count": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(get(&fake, "videoCategories", q).await.0, 500);
    assert_eq!(get(&fake, "videoCategories", q).await.0, 500);
    assert_eq!(get(&fake, "videoCategories", q).await.0, 200);
}

#[tokio::test]
async fn chart_moves_with_the_clock() {
    let fake = fake(300);
    let q = "part=id&chart=mostPopular&videoCategoryId=20&maxResults=10";
    fake.set_clock("2025-01-01T00:00:00Z".parse().unwrap());
    let (_, early) = get(&fake, "videos", q).await;
    fake.set_clock("2026-11-20T00:00:00Z".parse().unwrap());
    let (_, late) = get(&fake, "videos", q).await;
    assert_ne!(early["items"], late["items"]);
    for it in early["items"].as_array().unwrap() {
        let v = fake
            .corpus()
            .video(it["id"].as_str().unwrap())
            .unwrap()
            .clone();
        assert!(
            v.published_at <= "2025-01-01T00:00:00Z".parse().unwrap(),
            "no videos from the future in the chart"
        );
        assert_eq!(v.category_id, "20");
    }
}

#[tokio::test]
async fn admin_corpus_summary() {
    let fake = fake(3000);
    let v: Value = reqwest::get(format!("{}/corpus", fake.admin_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["channels"], 3000);
    assert!(v["videos"].as_u64().unwrap() >= 30_000, "{}", v["videos"]);
    assert!(v["topics"].as_array().unwrap().len() >= 40);
    eprintln!(
        "default corpus generated in {} ms (debug build)",
        v["generation_ms"]
    );
}

#[tokio::test]
async fn shutdown_stops_serving() {
    let fake = fake(20);
    assert_eq!(
        get(&fake, "videoCategories", "part=snippet&regionCode=US")
            .await
            .0,
        200
    );
    fake.shutdown();
    let url = format!(
        "{}/videoCategories?part=snippet&regionCode=US",
        fake.base_url()
    );
    let mut refused = false;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if reqwest::Client::new().get(&url).send().await.is_err() {
            refused = true;
            break;
        }
    }
    assert!(refused, "the fake still answers after shutdown");
}

/// Every thumbnail URL a response gives is served by the fake itself: an SVG of the
/// advertised size, the same bytes every time; unknown ids and sizes are 404s.
#[tokio::test]
async fn thumbnails_are_served_at_the_urls_the_responses_give() {
    let fake = fake(300);
    let (status, v) = get(
        &fake,
        "videos",
        "part=snippet&chart=mostPopular&maxResults=5",
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let http = common::client();
    let items = v["items"].as_array().expect("items");
    assert_eq!(items.len(), 5);
    for item in items {
        let id = item["id"].as_str().unwrap();
        for (size, thumb) in item["snippet"]["thumbnails"].as_object().unwrap() {
            let url = thumb["url"].as_str().unwrap();
            let file = match size.as_str() {
                "default" => "default",
                "medium" => "mqdefault",
                "high" => "hqdefault",
                "standard" => "sddefault",
                "maxres" => "maxresdefault",
                other => panic!("unexpected thumbnail size {other}"),
            };
            assert_eq!(url, format!("http://{}/vi/{id}/{file}.svg", fake.addr()));
            let response = http.get(url).send().await.unwrap();
            assert_eq!(response.status().as_u16(), 200, "{url}");
            assert_eq!(
                response.headers()["content-type"].to_str().unwrap(),
                "image/svg+xml"
            );
            let body = response.text().await.unwrap();
            let (w, h) = (
                thumb["width"].as_u64().unwrap(),
                thumb["height"].as_u64().unwrap(),
            );
            assert!(body.starts_with("<svg "), "{body}");
            assert!(
                body.contains(&format!("width=\"{w}\" height=\"{h}\"")),
                "{body}"
            );
            assert_eq!(
                http.get(url).send().await.unwrap().text().await.unwrap(),
                body
            );
        }
    }
    let base = format!("http://{}", fake.addr());
    for path in ["/vi/NoSuchVideo/mqdefault.svg", "/vi/x/mqdefault.svg"] {
        let status = http
            .get(format!("{base}{path}"))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status.as_u16(), 404, "{path}");
    }
    let id = items[0]["id"].as_str().unwrap();
    for file in ["huge.svg", "mqdefault.jpg", "mqdefault"] {
        let status = http
            .get(format!("{base}/vi/{id}/{file}"))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status.as_u16(), 404, "{file}");
    }
}
