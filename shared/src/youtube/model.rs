//! Response shapes of the Data API, as lenient as the real responses require: `items`
//! may be absent, statistics are strings, most parts and fields are optional.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListResponse<T> {
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub etag: String,
    #[serde(default = "Vec::new")]
    pub items: Vec<T>,
    pub next_page_token: Option<String>,
    pub prev_page_token: Option<String>,
    pub page_info: Option<PageInfo>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PageInfo {
    pub total_results: Option<u64>,
    pub results_per_page: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Thumbnail {
    pub url: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VideoSnippet {
    #[serde(default)]
    pub published_at: String,
    #[serde(default)]
    pub channel_id: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub thumbnails: BTreeMap<String, Thumbnail>,
    #[serde(default)]
    pub channel_title: String,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub category_id: String,
    #[serde(default)]
    pub live_broadcast_content: String,
}

impl VideoSnippet {
    /// The best thumbnail the response offers, preferring a mid-sized one.
    pub fn thumbnail_url(&self) -> String {
        ["medium", "high", "default", "standard", "maxres"]
            .iter()
            .find_map(|k| self.thumbnails.get(*k))
            .map(|t| t.url.clone())
            .unwrap_or_default()
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VideoContentDetails {
    pub duration: Option<String>,
    pub definition: Option<String>,
    /// A string ("true"/"false") in real responses.
    pub caption: Option<String>,
}

/// Counts arrive as strings; absent ones (hidden likes, no `dislikeCount`) read as 0.
fn count<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Count {
        Text(String),
        Number(u64),
    }
    Ok(match Option::<Count>::deserialize(d)? {
        Some(Count::Text(s)) => s.parse().unwrap_or(0),
        Some(Count::Number(n)) => n,
        None => 0,
    })
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VideoStatistics {
    #[serde(default, deserialize_with = "count")]
    pub view_count: u64,
    #[serde(default, deserialize_with = "count")]
    pub like_count: u64,
    #[serde(default, deserialize_with = "count")]
    pub comment_count: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VideoItem {
    pub id: String,
    pub snippet: Option<VideoSnippet>,
    pub content_details: Option<VideoContentDetails>,
    pub statistics: Option<VideoStatistics>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchId {
    #[serde(default)]
    pub kind: String,
    pub video_id: Option<String>,
    pub channel_id: Option<String>,
    pub playlist_id: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchResult {
    pub id: SearchId,
    pub snippet: Option<VideoSnippet>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RelatedPlaylists {
    pub uploads: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelContentDetails {
    pub related_playlists: Option<RelatedPlaylists>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelItem {
    pub id: String,
    pub snippet: Option<VideoSnippet>,
    pub content_details: Option<ChannelContentDetails>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceId {
    pub video_id: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlaylistItemSnippet {
    pub resource_id: Option<ResourceId>,
    #[serde(default)]
    pub title: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlaylistItemContentDetails {
    pub video_id: Option<String>,
    pub video_published_at: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlaylistItem {
    pub snippet: Option<PlaylistItemSnippet>,
    pub content_details: Option<PlaylistItemContentDetails>,
}

impl PlaylistItem {
    /// The video id, skipping private and deleted entries (no publish date, no owner).
    pub fn video_id(&self) -> Option<String> {
        if let Some(details) = &self.content_details {
            if details.video_published_at.is_none() && self.snippet.is_none() {
                // part=contentDetails only: a private video has no publish date.
                return None;
            }
            if let Some(id) = &details.video_id {
                return Some(id.clone());
            }
        }
        self.snippet
            .as_ref()?
            .resource_id
            .as_ref()?
            .video_id
            .clone()
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct CategorySnippet {
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub assignable: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CategoryItem {
    pub id: String,
    pub snippet: CategorySnippet,
}

/// Google's error envelope.
#[derive(Debug, Clone, Deserialize)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ErrorBody {
    pub code: u16,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub errors: Vec<ErrorDetail>,
    pub status: Option<String>,
}

impl ErrorBody {
    pub fn first_reason(&self) -> &str {
        self.errors.first().map(|e| e.reason.as_str()).unwrap_or("")
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct ErrorDetail {
    #[serde(default)]
    pub domain: String,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub message: String,
}
