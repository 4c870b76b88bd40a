//! A fake serving the procedural world (`FakeConfig::world_channels`): every method the
//! client calls answers in Google's shapes, ids decode to what the world made, and new
//! uploads appear in playlists, `videos.list`, search and the chart as the clock moves.

mod common;

use common::{assert_conforms, fake_with, get, merge_schema, sample};
use fake_youtube::world::{REALISTIC_CHANNELS, World};
use fake_youtube::{FakeConfig, FakeYoutube};
use jiff::Timestamp;
use serde_json::Value;

/// 25 days after the world's epoch (2026-11-01).
const NOW: &str = "2026-11-26T08:00:00Z";

fn world_fake() -> FakeYoutube {
    fake_with(FakeConfig {
        world_channels: Some(REALISTIC_CHANNELS),
        start_clock: Some(NOW.parse().unwrap()),
        ..FakeConfig::default()
    })
}

fn ids(v: &Value, pointer: &str) -> Vec<String> {
    v["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items: {v}"))
        .iter()
        .map(|it| {
            it.pointer(pointer)
                .and_then(Value::as_str)
                .unwrap()
                .to_owned()
        })
        .collect()
}

/// A channel that uploads at least twice a day, among the popular ones.
fn busy_channel(w: &World) -> u32 {
    (0..1000)
        .find(|&r| w.channel(r).uploads_per_day >= 2.0)
        .expect("a busy channel")
}

#[tokio::test]
async fn a_world_serves_channels_playlists_and_videos_as_google_does() {
    let fake = world_fake();
    let w = fake.world().expect("a world-backed fake").clone();
    let now = fake.now().as_second();
    for rank in [3, REALISTIC_CHANNELS - 1] {
        let spec = w.channel(rank);
        let count = w.uploads_until(&spec, now);
        let (status, v) = get(
            &fake,
            "channels",
            &format!(
                "part=snippet,contentDetails,statistics,brandingSettings&id={}",
                spec.id
            ),
        )
        .await;
        assert_eq!(status, 200, "{v}");
        assert_conforms(
            &v,
            &merge_schema(&[
                sample("channels_list_contentDetails_statistics_branding_2022.json"),
                sample("channels_list_snippet_prevPageToken_2019.json"),
            ]),
            "channels.list",
        );
        let item = &v["items"][0];
        assert_eq!(item["id"], spec.id.as_str());
        assert_eq!(
            item["contentDetails"]["relatedPlaylists"]["uploads"],
            spec.uploads_playlist_id.as_str()
        );
        assert_eq!(item["statistics"]["videoCount"], count.to_string().as_str());
        // The handle finds the same channel.
        let handle = item["snippet"]["customUrl"].as_str().unwrap();
        let (_, by_handle) = get(&fake, "channels", &format!("part=id&forHandle={handle}")).await;
        assert_eq!(ids(&by_handle, "/id"), std::slice::from_ref(&spec.id));

        // The uploads playlist: newest first, paged, each id the world's.
        let (status, page1) = get(
            &fake,
            "playlistItems",
            &format!(
                "part=snippet,contentDetails&playlistId={}&maxResults=3",
                spec.uploads_playlist_id
            ),
        )
        .await;
        assert_eq!(status, 200, "{page1}");
        assert_conforms(
            &page1,
            &merge_schema(&[
                sample("playlistItems_list_uploads_snippet_contentDetails_2023.json"),
                sample("playlistItems_list_page1_nextPageToken_2019.json"),
            ]),
            "playlistItems.list",
        );
        let expected: Vec<String> = (0..3).map(|k| w.video_id(rank, count - 1 - k)).collect();
        assert_eq!(ids(&page1, "/contentDetails/videoId"), expected);
        assert_eq!(page1["pageInfo"]["totalResults"], count);
        let token = page1["nextPageToken"].as_str().unwrap();
        let (_, page2) = get(
            &fake,
            "playlistItems",
            &format!(
                "part=contentDetails&playlistId={}&maxResults=3&pageToken={token}",
                spec.uploads_playlist_id
            ),
        )
        .await;
        assert_eq!(
            ids(&page2, "/contentDetails/videoId")[0],
            w.video_id(rank, count - 4)
        );

        // videos.list: those ids, with counts; an upload not yet published is unknown.
        let future = w.video_id(rank, count);
        let (status, videos) = get(
            &fake,
            "videos",
            &format!(
                "part=snippet,contentDetails,statistics&id={},{future}",
                expected.join(",")
            ),
        )
        .await;
        assert_eq!(status, 200, "{videos}");
        assert_conforms(
            &videos,
            &merge_schema(&[
                sample("videos_list_snippet_contentDetails_statistics_2023.json"),
                sample("videos_list_chart_mostPopular_page1_2019.json"),
            ]),
            "videos.list",
        );
        assert_eq!(ids(&videos, "/id"), expected);
        for it in videos["items"].as_array().unwrap() {
            assert_eq!(it["snippet"]["channelId"], spec.id.as_str());
            let published: Timestamp = it["snippet"]["publishedAt"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!(published.as_second() <= now);
        }
    }
    // Unknown ids: no items, as Google answers.
    let (_, v) = get(&fake, "channels", "part=id&id=UCxxxxxxxxxxxxxxxxxxxxxx").await;
    assert!(v.get("items").is_none(), "{v}");
    let (status, _) = get(
        &fake,
        "playlistItems",
        "part=id&playlistId=UUxxxxxxxxxxxxxxxxxxxxxx",
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn new_uploads_appear_as_the_clock_moves() {
    let fake = world_fake();
    let w = fake.world().unwrap().clone();
    let rank = busy_channel(&w);
    let spec = w.channel(rank);
    let now = fake.now().as_second();
    let next = w.uploads_until(&spec, now);
    let next_id = w.video_id(rank, next);
    let newest = |fake: &FakeYoutube| {
        let fake = fake.clone();
        let playlist = spec.uploads_playlist_id.clone();
        async move {
            let (_, v) = get(
                &fake,
                "playlistItems",
                &format!("part=contentDetails&playlistId={playlist}&maxResults=1"),
            )
            .await;
            ids(&v, "/contentDetails/videoId")[0].clone()
        }
    };
    assert_ne!(newest(&fake).await, next_id);
    let (_, v) = get(&fake, "videos", &format!("part=id&id={next_id}")).await;
    assert_eq!(v["pageInfo"]["totalResults"], 0, "{v}");

    fake.set_clock(Timestamp::from_second(w.upload_time(&spec, next) + 1).unwrap());
    assert_eq!(newest(&fake).await, next_id);
    let (_, v) = get(&fake, "videos", &format!("part=statistics&id={next_id}")).await;
    assert_eq!(ids(&v, "/id"), std::slice::from_ref(&next_id));
    let fresh_views: u64 = v["items"][0]["statistics"]["viewCount"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    // Views grow as the video ages.
    fake.advance_clock(2 * 86_400);
    let (_, v) = get(&fake, "videos", &format!("part=statistics&id={next_id}")).await;
    let later_views: u64 = v["items"][0]["statistics"]["viewCount"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        later_views > fresh_views,
        "{fresh_views} then {later_views} views"
    );
}

#[tokio::test]
async fn search_finds_the_topic_and_the_chart_moves_through_the_day() {
    let fake = world_fake();
    let w = fake.world().unwrap().clone();
    let now = fake.now().as_second();
    // A topic's name finds its videos: every result is of that topic, newest first when
    // asked by date.
    let topic = w.channel(0).topic;
    let name = w.topics()[topic].name.clone();
    let (status, v) = get(
        &fake,
        "search",
        &format!(
            "part=snippet&q={}&type=video&maxResults=50&order=date",
            name.replace(' ', "+")
        ),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_conforms(
        &v,
        &merge_schema(&[
            sample("search_list_videos_page1_nextPageToken_2019.json"),
            sample("search_list_videos_page2_prevPageToken_2019.json"),
            sample("search_list_empty_items_2024.json"),
            sample("search_list_upcoming_live_publishTime_2024.json"),
        ]),
        "search.list",
    );
    let found = ids(&v, "/id/videoId");
    let words: Vec<String> = name
        .split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_lowercase)
        .collect();
    let matching = w.topics_for_query(&words);
    assert_eq!(matching[0], topic, "{name}: its own topic matches best");
    assert_eq!(found.len(), 50, "{v}");
    let mut last = i64::MAX;
    for (id, item) in found.iter().zip(v["items"].as_array().unwrap()) {
        let (rank, n) = w.video(id, now).expect("a published video of the world");
        assert!(
            matching.contains(&w.channel_topic(rank)),
            "{id} is off the query's topics"
        );
        let published = w.upload_time(&w.channel(rank), n);
        assert!(published <= last, "order=date is newest first");
        last = published;
        assert_eq!(
            item["snippet"]["publishedAt"].as_str().unwrap(),
            Timestamp::from_second(published).unwrap().to_string()
        );
    }
    // Searches are metered against the search bucket, as Google's are.
    let counters = fake.counters();
    assert_eq!(counters.per_method["search.list"].calls, 1);
    assert_eq!(counters.searches_used, 1);

    // The chart: at most 200, popular channels' recent uploads, and it changes in hours.
    let chart = |fake: FakeYoutube| async move {
        let mut all = Vec::new();
        let mut token = String::new();
        loop {
            let (status, v) = get(
                &fake,
                "videos",
                &format!("part=id&chart=mostPopular&maxResults=50&pageToken={token}"),
            )
            .await;
            assert_eq!(status, 200, "{v}");
            all.extend(ids(&v, "/id"));
            match v["nextPageToken"].as_str() {
                Some(t) => token = t.to_owned(),
                None => return all,
            }
        }
    };
    let morning = chart(fake.clone()).await;
    assert_eq!(morning.len(), 200);
    for id in &morning {
        let (rank, n) = w.video(id, now).expect("published");
        assert!(rank < fake_youtube::world::CHART_CHANNELS);
        assert!(now - w.upload_time(&w.channel(rank), n) <= 7 * 86_400);
    }
    fake.advance_clock(8 * 3_600);
    let evening = chart(fake.clone()).await;
    assert_ne!(morning, evening, "the chart changes during the day");
}
