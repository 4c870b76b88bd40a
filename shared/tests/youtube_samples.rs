//! Every real YouTube response captured in `tests/fixtures/youtube-samples` (a copy of the
//! kit's `youtube-samples`, with its PROVENANCE.md) must parse.

use std::path::PathBuf;

use reco_core::youtube::*;

fn samples() -> Vec<(String, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/youtube-samples");
    let mut out: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {dir:?}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    assert!(
        out.len() >= 25,
        "expected the 25 captured samples, found {}",
        out.len()
    );
    out
}

#[test]
fn every_captured_response_parses() {
    for (name, body) in samples() {
        let result: Result<usize, serde_json::Error> = match name.split('_').next().unwrap() {
            "search" => {
                serde_json::from_str::<ListResponse<SearchResult>>(&body).map(|r| r.items.len())
            }
            "videos" => {
                serde_json::from_str::<ListResponse<VideoItem>>(&body).map(|r| r.items.len())
            }
            "channels" => {
                serde_json::from_str::<ListResponse<ChannelItem>>(&body).map(|r| r.items.len())
            }
            "playlistItems" => {
                serde_json::from_str::<ListResponse<PlaylistItem>>(&body).map(|r| r.items.len())
            }
            "videoCategories" => {
                serde_json::from_str::<ListResponse<CategoryItem>>(&body).map(|r| r.items.len())
            }
            "error" => serde_json::from_str::<ErrorEnvelope>(&body).map(|e| e.error.errors.len()),
            other => panic!("unclassified sample {name} ({other})"),
        };
        let n = result.unwrap_or_else(|e| panic!("{name} does not parse: {e}"));
        if !name.contains("empty") && !name.contains("no_match") {
            assert!(n > 0, "{name} parsed to nothing");
        }
    }
}

#[test]
fn sample_details_come_through() {
    let all = samples();
    let get = |n: &str| &all.iter().find(|(name, _)| name.starts_with(n)).unwrap().1;

    let videos: ListResponse<VideoItem> =
        serde_json::from_str(get("videos_list_snippet_contentDetails_statistics_2023")).unwrap();
    let v = &videos.items[0];
    let duration = v
        .content_details
        .as_ref()
        .unwrap()
        .duration
        .as_deref()
        .unwrap();
    assert_eq!(parse_iso8601_duration(duration), Some(159));
    assert!(v.statistics.as_ref().unwrap().view_count > 0);

    let channels: ListResponse<ChannelItem> =
        serde_json::from_str(get("channels_list_contentDetails")).unwrap();
    let uploads = channels.items[0]
        .content_details
        .as_ref()
        .unwrap()
        .related_playlists
        .as_ref()
        .unwrap()
        .uploads
        .clone();
    assert!(uploads.unwrap().starts_with("UU"));

    let none: ListResponse<ChannelItem> =
        serde_json::from_str(get("channels_list_no_match")).unwrap();
    assert!(none.items.is_empty());

    let private: ListResponse<PlaylistItem> =
        serde_json::from_str(get("playlistItems_list_private_videos")).unwrap();
    let ids: Vec<_> = private.items.iter().filter_map(|i| i.video_id()).collect();
    assert!(!ids.is_empty() && ids.len() <= private.items.len());

    let quota: ErrorEnvelope = serde_json::from_str(get("error_403_quotaExceeded")).unwrap();
    assert_eq!(
        (quota.error.code, quota.error.first_reason()),
        (403, "quotaExceeded")
    );
    let legacy: ErrorEnvelope = serde_json::from_str(get("error_400_keyInvalid_legacy")).unwrap();
    assert_eq!(legacy.error.first_reason(), "keyInvalid");
}
