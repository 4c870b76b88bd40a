//! YouTube Data API response bodies (seeded with the captured real responses): every
//! shape the client deserialises, and the conversions the engine applies, take any
//! bytes without a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reco_core::engine::sources::video_from_item;
use reco_core::youtube::{
    CategoryItem, ChannelItem, ErrorEnvelope, ListResponse, PlaylistItem, SearchResult, VideoItem,
    parse_iso8601_duration,
};

fuzz_target!(|data: &[u8]| {
    if let Ok(list) = serde_json::from_slice::<ListResponse<VideoItem>>(data) {
        for item in &list.items {
            if let Some(video) = video_from_item(item) {
                assert_eq!(video.video_id, item.id);
            }
            if let Some(details) = &item.content_details {
                if let Some(d) = &details.duration {
                    let _ = parse_iso8601_duration(d);
                }
            }
        }
    }
    if let Ok(list) = serde_json::from_slice::<ListResponse<PlaylistItem>>(data) {
        for item in &list.items {
            let _ = item.video_id();
        }
    }
    let _ = serde_json::from_slice::<ListResponse<ChannelItem>>(data);
    let _ = serde_json::from_slice::<ListResponse<SearchResult>>(data);
    let _ = serde_json::from_slice::<ListResponse<CategoryItem>>(data);
    if let Ok(envelope) = serde_json::from_slice::<ErrorEnvelope>(data) {
        let _ = envelope.error.first_reason();
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_iso8601_duration(text);
    }
});
