//! The /youtube/v3 endpoints.
//!
//! Order of business for every request mirrors Google's front end: count the
//! request, check the key (a bad key is never charged), pick the method,
//! apply an injected fault, meter (charge *before* serving, so invalid calls
//! cost too), then validate parameters and answer.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use jiff::Timestamp;
use serde::Serialize;

use crate::catalog::{Hit, SearchQuery, View};
use crate::corpus::{Video, tokenize};
use crate::google_error::GoogleError;
use crate::page_token::{self, Direction};
use crate::quota::{Bucket, Refusal};
use crate::topics::CATEGORIES;
use crate::{Fault, Shared};

pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/youtube/v3/{*path}", get(handle))
        .route("/youtube/v3", get(handle_root))
}

/// Query parameters in order; the first occurrence wins, as for Google's
/// single-valued parameters.
pub(crate) struct Params(Vec<(String, String)>);

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Params {
    pub(crate) fn parse(query: &str) -> Params {
        Params(
            query
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (percent_decode(k), percent_decode(v))
                })
                .collect(),
        )
    }

    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A non-empty value, or None.
    fn value(&self, key: &str) -> Option<&str> {
        self.get(key).map(str::trim).filter(|v| !v.is_empty())
    }
}

#[derive(Clone, Copy)]
enum Method {
    Search,
    Videos,
    Channels,
    PlaylistItems,
    VideoCategories,
}

impl Method {
    fn name(self) -> &'static str {
        match self {
            Method::Search => "search.list",
            Method::Videos => "videos.list",
            Method::Channels => "channels.list",
            Method::PlaylistItems => "playlistItems.list",
            Method::VideoCategories => "videoCategories.list",
        }
    }
    fn bucket(self) -> Bucket {
        match self {
            Method::Search => Bucket::Search,
            _ => Bucket::Units,
        }
    }
}

async fn handle_root(state: State<Arc<Shared>>, headers: HeaderMap, query: RawQuery) -> Response {
    handle(state, Path(String::new()), headers, query).await
}

async fn handle(
    State(s): State<Arc<Shared>>,
    Path(path): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    s.meter.lock().expect("meter lock").note_request();
    let params = Params::parse(query.as_deref().unwrap_or(""));
    let key = headers
        .get("x-goog-api-key")
        .and_then(|v| v.to_str().ok())
        .or_else(|| params.get("key"));
    if key != Some(s.api_key.as_str()) {
        s.meter.lock().expect("meter lock").note_invalid_key();
        return GoogleError::key_invalid().into_response();
    }
    let method = match path.trim_end_matches('/') {
        "search" => Method::Search,
        "videos" => Method::Videos,
        "channels" => Method::Channels,
        "playlistItems" => Method::PlaylistItems,
        "videoCategories" => Method::VideoCategories,
        _ => return GoogleError::not_found().into_response(),
    };
    let fault = s.take_fault();
    if let Some(Fault::Latency(d)) = &fault {
        tokio::time::sleep(*d).await;
    }
    let now = s.now();
    let charged = s
        .meter
        .lock()
        .expect("meter lock")
        .charge(method.name(), method.bucket(), now);
    match charged {
        Err(Refusal::Quota) => return GoogleError::quota_exceeded().into_response(),
        Err(Refusal::Rate) => return GoogleError::rate_limit_exceeded().into_response(),
        Ok(()) => {}
    }
    match fault {
        Some(Fault::ServerError) => return GoogleError::backend_error().into_response(),
        Some(Fault::TooManyRequests) => return GoogleError::too_many_requests().into_response(),
        _ => {}
    }
    let origin = thumbnail_origin(&headers);
    let result = {
        let view = s.catalog.view();
        match method {
            Method::Search => search(&params, &view, now, &origin),
            Method::Videos => videos(&params, &view, now, &origin, &|id| s.hub.is_deleted(id)),
            Method::Channels => channels(&params, &view, now),
            Method::PlaylistItems => playlist_items(&params, &view, now, &origin, &s.meter, &s.hub),
            Method::VideoCategories => video_categories(&params),
        }
    };
    match result {
        Ok(mut body) => {
            if fault == Some(Fault::MalformedJson) {
                let mut cut = body.len() / 2;
                while !body.is_char_boundary(cut) {
                    cut -= 1;
                }
                body.truncate(cut);
            }
            json_ok(body)
        }
        Err(e) => e.into_response(),
    }
}

fn json_ok(body: String) -> Response {
    let mut resp = (StatusCode::OK, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    resp
}

// ---------------------------------------------------------------- helpers

/// 27 characters of base64url, like Google's current etags (a SHA-1's worth).
pub(crate) fn etag(parts: &[&str]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain(std::iter::once(0xff)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    let mut rng = crate::corpus::Rng::new(h);
    let mut bytes = Vec::with_capacity(24);
    for _ in 0..3 {
        bytes.extend_from_slice(&rng.next_u64().to_le_bytes());
    }
    crate::page_token::base64url(&bytes[..20])
}

fn parts<'a>(params: &'a Params, allowed: &[&str]) -> Result<Vec<&'a str>, GoogleError> {
    let raw = params
        .value("part")
        .ok_or_else(|| GoogleError::required("part"))?;
    let mut out = Vec::new();
    for p in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if !allowed.contains(&p) {
            return Err(GoogleError::unknown_part(p));
        }
        if !out.contains(&p) {
            out.push(p);
        }
    }
    if out.is_empty() {
        return Err(GoogleError::required("part"));
    }
    Ok(out)
}

fn max_results(params: &Params) -> Result<usize, GoogleError> {
    match params.get("maxResults") {
        None => Ok(5),
        Some(v) => match v.trim().parse::<i64>() {
            Ok(n) if (0..=50).contains(&n) => Ok(n as usize),
            _ => Err(GoogleError::max_results_out_of_range(v)),
        },
    }
}

fn page_token(params: &Params) -> Result<Option<(usize, Direction)>, GoogleError> {
    match params.value("pageToken") {
        None => Ok(None),
        Some(t) => page_token::decode(t)
            .map(Some)
            .ok_or_else(GoogleError::invalid_page_token),
    }
}

fn id_list<'a>(params: &'a Params, key: &str) -> Result<Option<Vec<&'a str>>, GoogleError> {
    let Some(raw) = params.value(key) else {
        return Ok(None);
    };
    let ids: Vec<&str> = raw
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if ids.len() > 50 {
        return Err(GoogleError::too_many_ids(key));
    }
    Ok(Some(ids))
}

fn parse_time(params: &Params, key: &str) -> Result<Option<Timestamp>, GoogleError> {
    match params.value(key) {
        None => Ok(None),
        Some(v) => v.parse::<Timestamp>().map(Some).map_err(|_| {
            GoogleError::invalid_value(
                key,
                format!("Invalid value '{v}'. Expected an RFC 3339 date-time."),
            )
        }),
    }
}

fn rfc3339(t: Timestamp) -> String {
    t.to_string()
}

/// ISO 8601 duration as YouTube writes it: PT1H2M3S, PT4M, P0D.
pub(crate) fn iso_duration(secs: u32) -> String {
    if secs == 0 {
        return "P0D".to_string();
    }
    let (d, h, m, s) = (
        secs / 86_400,
        secs % 86_400 / 3600,
        secs % 3600 / 60,
        secs % 60,
    );
    let mut out = String::from("P");
    if d > 0 {
        out.push_str(&format!("{d}D"));
    }
    if h + m + s > 0 {
        out.push('T');
        if h > 0 {
            out.push_str(&format!("{h}H"));
        }
        if m > 0 {
            out.push_str(&format!("{m}M"));
        }
        if s > 0 {
            out.push_str(&format!("{s}S"));
        }
    }
    out
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ListResponse<T> {
    kind: &'static str,
    etag: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_page_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    prev_page_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    region_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    page_info: Option<PageInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    items: Option<Vec<T>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PageInfo {
    total_results: usize,
    results_per_page: usize,
}

impl<T: Serialize> ListResponse<T> {
    fn new(kind: &'static str, items: Option<Vec<T>>) -> Self {
        ListResponse {
            kind,
            etag: String::new(),
            next_page_token: None,
            prev_page_token: None,
            region_code: None,
            page_info: None,
            items,
        }
    }
    fn page(mut self, p: &page_token::Page) -> Self {
        self.next_page_token = p.next.clone();
        self.prev_page_token = p.prev.clone();
        self
    }
    fn info(mut self, total: usize, per_page: usize) -> Self {
        self.page_info = Some(PageInfo {
            total_results: total,
            results_per_page: per_page,
        });
        self
    }
    fn render(mut self) -> Result<String, GoogleError> {
        let items = serde_json::to_string(&self.items).map_err(|_| GoogleError::backend_error())?;
        self.etag = etag(&[
            self.kind,
            &items,
            self.next_page_token.as_deref().unwrap_or(""),
            self.prev_page_token.as_deref().unwrap_or(""),
        ]);
        serde_json::to_string_pretty(&self).map_err(|_| GoogleError::backend_error())
    }
}

#[derive(Serialize)]
struct Thumb {
    url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    width: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    height: Option<u32>,
}

#[derive(Serialize)]
struct Thumbnails {
    default: Thumb,
    medium: Thumb,
    high: Thumb,
    #[serde(skip_serializing_if = "Option::is_none")]
    standard: Option<Thumb>,
    #[serde(skip_serializing_if = "Option::is_none")]
    maxres: Option<Thumb>,
}

fn thumb(url: String, w: u32, h: u32) -> Thumb {
    Thumb {
        url,
        width: Some(w),
        height: Some(h),
    }
}

/// Where the thumbnails of a response live: this fake itself, at the address the client
/// reached it by (its `Host` header), so a page shows them with no network; Google's
/// `https://i.ytimg.com` when the header is missing or not a plain `host:port`.
fn thumbnail_origin(headers: &HeaderMap) -> String {
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .map_or_else(
            || "https://i.ytimg.com".to_owned(),
            |host| format!("http://{host}"),
        )
}

/// A video's thumbnails at `origin`: `{origin}/vi/{id}/{size}.jpg` from Google, or the
/// fake's generated images (`crate::thumbnail`) at `{origin}/vi/{id}/{size}.svg`.
fn video_thumbnails(v: &Video, full: bool, origin: &str) -> Thumbnails {
    let ext = if origin == "https://i.ytimg.com" {
        "jpg"
    } else {
        "svg"
    };
    let u = |name: &str| format!("{origin}/vi/{}/{name}.{ext}", v.id);
    Thumbnails {
        default: thumb(u("default"), 120, 90),
        medium: thumb(u("mqdefault"), 320, 180),
        high: thumb(u("hqdefault"), 480, 360),
        standard: full.then(|| thumb(u("sddefault"), 640, 480)),
        maxres: (full && v.has_maxres).then(|| thumb(u("maxresdefault"), 1280, 720)),
    }
}

fn channel_thumbnails(channel_id: &str, sized: bool) -> Thumbnails {
    let key = etag(&["avatar", channel_id]);
    let u = |s: u32| format!("https://yt3.ggpht.com/ytc/{key}=s{s}-c-k-c0x00ffffff-no-rj");
    let t = |s: u32| Thumb {
        url: u(s),
        width: sized.then_some(s),
        height: sized.then_some(s),
    };
    Thumbnails {
        default: t(88),
        medium: t(240),
        high: t(800),
        standard: None,
        maxres: None,
    }
}

#[derive(Serialize)]
struct Localized<'a> {
    title: &'a str,
    description: &'a str,
}

#[derive(Serialize)]
struct Empty {}

// ---------------------------------------------------------------- search.list

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SearchResult<'a> {
    kind: &'static str,
    etag: String,
    id: ResourceId<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    snippet: Option<SearchSnippet<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResourceId<'a> {
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    video_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    channel_id: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SearchSnippet<'a> {
    published_at: String,
    channel_id: &'a str,
    title: &'a str,
    description: String,
    thumbnails: Thumbnails,
    channel_title: &'a str,
    live_broadcast_content: &'static str,
    publish_time: String,
}

/// Search snippets carry a one-line, cut description, as Google's do.
fn short_description(d: &str) -> String {
    let flat: String = d.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= 160 {
        return flat;
    }
    let mut cut: String = flat.chars().take(157).collect();
    if let Some(i) = cut.rfind(' ') {
        cut.truncate(i);
    }
    cut.push_str(" ...");
    cut
}

fn search(
    params: &Params,
    view: &View<'_>,
    now: Timestamp,
    origin: &str,
) -> Result<String, GoogleError> {
    let parts = parts(params, &["id", "snippet"])?;
    let max = max_results(params)?;
    let token = page_token(params)?;
    let types: Vec<&str> = match params.value("type") {
        None => vec!["video", "channel", "playlist"],
        Some(t) => t
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect(),
    };
    for t in &types {
        if !["video", "channel", "playlist"].contains(t) {
            return Err(GoogleError::invalid_value(
                "type",
                format!("Invalid value '{t}' for parameter type."),
            ));
        }
    }
    let order = params.value("order").unwrap_or("relevance");
    if ![
        "relevance",
        "date",
        "viewCount",
        "rating",
        "title",
        "videoCount",
    ]
    .contains(&order)
    {
        return Err(GoogleError::invalid_value(
            "order",
            format!("Invalid value '{order}' for parameter order."),
        ));
    }
    let category = params.value("videoCategoryId");
    let only_videos = types == ["video"];
    if category.is_some() && !only_videos {
        return Err(GoogleError::invalid_search_filter(
            "Request contains an invalid argument: videoCategoryId requires type=video.",
        ));
    }
    let region = params.value("regionCode").unwrap_or("US").to_string();
    let mut terms: Vec<String> = Vec::new();
    for t in tokenize(params.value("q").unwrap_or("")) {
        if !terms.contains(&t) {
            terms.push(t);
        }
    }
    let query = SearchQuery {
        terms,
        videos: types.contains(&"video"),
        channels: types.contains(&"channel"),
        category,
        channel_id: params.value("channelId"),
        after: parse_time(params, "publishedAfter")?,
        before: parse_time(params, "publishedBefore")?,
    };
    let mut hits = view.search_hits(&query, now);

    let published = |h: &Hit| match h {
        Hit::Video(v) => v.published_at,
        Hit::Channel(c) => c.published_at,
    };
    let views = |h: &Hit| match h {
        Hit::Video(v) => v.view_count,
        Hit::Channel(c) => c.view_count,
    };
    let likes = |h: &Hit| match h {
        Hit::Video(v) => v.like_count,
        Hit::Channel(c) => c.subscriber_count,
    };
    fn title<'h>(h: &'h Hit) -> &'h str {
        match h {
            Hit::Video(v) => &v.title,
            Hit::Channel(c) => &c.title,
        }
    }
    fn id<'h>(h: &'h Hit) -> &'h str {
        match h {
            Hit::Video(v) => &v.id,
            Hit::Channel(c) => &c.id,
        }
    }
    hits.sort_by(|a, b| {
        let primary = match order {
            "date" => published(&b.0).cmp(&published(&a.0)),
            "viewCount" | "videoCount" => views(&b.0).cmp(&views(&a.0)),
            "rating" => likes(&b.0).cmp(&likes(&a.0)),
            "title" => title(&a.0).cmp(title(&b.0)),
            _ => (b.1, b.2)
                .cmp(&(a.1, a.2))
                .then_with(|| views(&b.0).cmp(&views(&a.0))),
        };
        primary.then_with(|| id(&a.0).cmp(id(&b.0)))
    });

    // Google lets you page through about 500 results however many match.
    let total = hits.len();
    let reachable = total.min(500);
    let page = page_token::page(reachable, max, token);
    let with_snippet = parts.contains(&"snippet");
    let items: Vec<SearchResult> = hits[page.start..page.end]
        .iter()
        .map(|(h, _, _)| match h {
            Hit::Video(v) => SearchResult {
                kind: "youtube#searchResult",
                etag: etag(&["searchResult", &v.id, &parts.join(",")]),
                id: ResourceId {
                    kind: "youtube#video",
                    video_id: Some(&v.id),
                    channel_id: None,
                },
                snippet: with_snippet.then(|| SearchSnippet {
                    published_at: rfc3339(v.published_at),
                    channel_id: &v.channel_id,
                    title: &v.title,
                    description: short_description(&v.description),
                    thumbnails: video_thumbnails(v, false, origin),
                    channel_title: &v.channel_title,
                    live_broadcast_content: "none",
                    publish_time: rfc3339(v.published_at),
                }),
            },
            Hit::Channel(c) => SearchResult {
                kind: "youtube#searchResult",
                etag: etag(&["searchResult", &c.id, &parts.join(",")]),
                id: ResourceId {
                    kind: "youtube#channel",
                    video_id: None,
                    channel_id: Some(&c.id),
                },
                snippet: with_snippet.then(|| SearchSnippet {
                    published_at: rfc3339(c.published_at),
                    channel_id: &c.id,
                    title: &c.title,
                    description: short_description(&c.description),
                    thumbnails: channel_thumbnails(&c.id, false),
                    channel_title: &c.title,
                    live_broadcast_content: "none",
                    publish_time: rfc3339(c.published_at),
                }),
            },
        })
        .collect();
    let per_page = if items.is_empty() { 0 } else { max };
    let mut resp = ListResponse::new("youtube#searchListResponse", Some(items))
        .page(&page)
        .info(total.min(1_000_000), per_page);
    resp.region_code = Some(region);
    resp.render()
}

// ---------------------------------------------------------------- videos.list

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct VideoItem<'a> {
    kind: &'static str,
    etag: String,
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    snippet: Option<VideoSnippet<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_details: Option<VideoContentDetails>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<VideoStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    statistics: Option<VideoStatistics>,
    #[serde(skip_serializing_if = "Option::is_none")]
    player: Option<Player>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct VideoSnippet<'a> {
    published_at: String,
    channel_id: &'a str,
    title: &'a str,
    description: &'a str,
    thumbnails: Thumbnails,
    channel_title: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    tags: Option<&'a [String]>,
    category_id: &'a str,
    live_broadcast_content: &'static str,
    localized: Localized<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    default_audio_language: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct VideoContentDetails {
    duration: String,
    dimension: &'static str,
    definition: &'static str,
    caption: &'static str,
    licensed_content: bool,
    content_rating: Empty,
    projection: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct VideoStatus {
    upload_status: &'static str,
    privacy_status: &'static str,
    license: &'static str,
    embeddable: bool,
    public_stats_viewable: bool,
    made_for_kids: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct VideoStatistics {
    view_count: String,
    like_count: String,
    favorite_count: String,
    comment_count: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Player {
    embed_html: String,
}

fn video_item<'a>(v: &'a Video, parts: &[&str], origin: &str) -> VideoItem<'a> {
    VideoItem {
        kind: "youtube#video",
        etag: etag(&["video", &v.id, &parts.join(",")]),
        id: &v.id,
        snippet: parts.contains(&"snippet").then(|| VideoSnippet {
            published_at: rfc3339(v.published_at),
            channel_id: &v.channel_id,
            title: &v.title,
            description: &v.description,
            thumbnails: video_thumbnails(v, true, origin),
            channel_title: &v.channel_title,
            tags: (!v.tags.is_empty()).then_some(v.tags.as_slice()),
            category_id: &v.category_id,
            live_broadcast_content: "none",
            localized: Localized { title: &v.title, description: &v.description },
            default_audio_language: v.default_audio_language,
        }),
        content_details: parts.contains(&"contentDetails").then(|| VideoContentDetails {
            duration: iso_duration(v.duration_secs),
            dimension: "2d",
            definition: v.definition,
            caption: if v.caption { "true" } else { "false" },
            licensed_content: v.licensed_content,
            content_rating: Empty {},
            projection: "rectangular",
        }),
        status: parts.contains(&"status").then_some(VideoStatus {
            upload_status: "processed",
            privacy_status: "public",
            license: if v.licensed_content { "youtube" } else { "creativeCommon" },
            embeddable: true,
            public_stats_viewable: true,
            made_for_kids: false,
        }),
        statistics: parts.contains(&"statistics").then(|| VideoStatistics {
            view_count: v.view_count.to_string(),
            like_count: v.like_count.to_string(),
            favorite_count: "0".to_string(),
            comment_count: v.comment_count.to_string(),
        }),
        player: parts.contains(&"player").then(|| Player {
            embed_html: format!(
                "<iframe width=\"480\" height=\"270\" src=\"//www.youtube.com/embed/{}\" frameborder=\"0\" allow=\"accelerometer; autoplay; encrypted-media; gyroscope; picture-in-picture\" allowfullscreen></iframe>",
                v.id
            ),
        }),
    }
}

const CHART_SIZE: usize = 200;

fn videos(
    params: &Params,
    view: &View<'_>,
    now: Timestamp,
    origin: &str,
    deleted: &dyn Fn(&str) -> bool,
) -> Result<String, GoogleError> {
    let parts = parts(
        params,
        &[
            "contentDetails",
            "id",
            "snippet",
            "statistics",
            "status",
            "player",
            "topicDetails",
            "recordingDetails",
            "liveStreamingDetails",
            "localizations",
            "paidProductPlacementDetails",
        ],
    )?;
    let max = max_results(params)?;
    let token = page_token(params)?;
    if let Some(ids) = id_list(params, "id")? {
        let found: Vec<_> = ids
            .iter()
            .filter(|id| !deleted(id))
            .filter_map(|id| view.video(id, now))
            .collect();
        let items: Vec<VideoItem> = found
            .iter()
            .map(|v| video_item(v, &parts, origin))
            .collect();
        let found = items.len();
        return ListResponse::new("youtube#videoListResponse", Some(items))
            .info(found, ids.len())
            .render();
    }
    let Some(chart) = params.value("chart") else {
        return Err(GoogleError::missing_filter("chart, id, myRating"));
    };
    if chart != "mostPopular" {
        return Err(GoogleError::invalid_value(
            "chart",
            format!("Invalid value '{chart}' for parameter chart."),
        ));
    }
    let category = params.value("videoCategoryId");
    // The chart is "popular now": videos published after the fake's now are not in it yet.
    let ranked = view.chart(category, now, CHART_SIZE);
    if ranked.is_empty() {
        return Err(GoogleError::video_chart_not_found());
    }
    let page = page_token::page(ranked.len(), max, token);
    let items: Vec<VideoItem> = ranked[page.start..page.end]
        .iter()
        .map(|v| video_item(v, &parts, origin))
        .collect();
    ListResponse::new("youtube#videoListResponse", Some(items))
        .page(&page)
        .info(ranked.len(), max)
        .render()
}

// ---------------------------------------------------------------- channels.list

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ChannelItem<'a> {
    kind: &'static str,
    etag: String,
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    snippet: Option<ChannelSnippet<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_details: Option<ChannelContentDetails<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    statistics: Option<ChannelStatistics>,
    #[serde(skip_serializing_if = "Option::is_none")]
    branding_settings: Option<Branding<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ChannelSnippet<'a> {
    title: &'a str,
    description: &'a str,
    custom_url: &'a str,
    published_at: String,
    thumbnails: Thumbnails,
    localized: Localized<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    country: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ChannelContentDetails<'a> {
    related_playlists: RelatedPlaylists<'a>,
}

#[derive(Serialize)]
struct RelatedPlaylists<'a> {
    likes: &'static str,
    uploads: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ChannelStatistics {
    view_count: String,
    subscriber_count: String,
    hidden_subscriber_count: bool,
    video_count: String,
}

#[derive(Serialize)]
struct Branding<'a> {
    channel: BrandingChannel<'a>,
}

#[derive(Serialize)]
struct BrandingChannel<'a> {
    title: &'a str,
    description: &'a str,
    keywords: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    country: Option<&'a str>,
}

fn channels(params: &Params, view: &View<'_>, now: Timestamp) -> Result<String, GoogleError> {
    let parts = parts(
        params,
        &[
            "auditDetails",
            "brandingSettings",
            "contentDetails",
            "contentOwnerDetails",
            "id",
            "localizations",
            "snippet",
            "statistics",
            "status",
            "topicDetails",
        ],
    )?;
    let max = max_results(params)?;
    page_token(params)?;
    let found: Vec<_> = if let Some(ids) = id_list(params, "id")? {
        ids.iter().filter_map(|id| view.channel(id, now)).collect()
    } else if let Some(name) = params.value("forUsername") {
        view.channel_by_handle(name, now).into_iter().collect()
    } else if let Some(handle) = params.value("forHandle") {
        view.channel_by_handle(handle, now).into_iter().collect()
    } else if params.value("mine").is_some() || params.value("managedByMe").is_some() {
        // Without OAuth there is no "mine": Google answers with no items.
        Vec::new()
    } else {
        return Err(GoogleError::missing_filter(
            "categoryId, forHandle, forUsername, id, managedByMe, mine, mySubscribers",
        ));
    };
    let items: Vec<ChannelItem> = found
        .iter()
        .map(|(c, video_count)| ChannelItem {
            kind: "youtube#channel",
            etag: etag(&["channel", &c.id, &parts.join(","), &video_count.to_string()]),
            id: &c.id,
            snippet: parts.contains(&"snippet").then(|| ChannelSnippet {
                title: &c.title,
                description: &c.description,
                custom_url: &c.custom_url,
                published_at: rfc3339(c.published_at),
                thumbnails: channel_thumbnails(&c.id, true),
                localized: Localized {
                    title: &c.title,
                    description: &c.description,
                },
                country: c.country.as_deref(),
            }),
            content_details: parts
                .contains(&"contentDetails")
                .then(|| ChannelContentDetails {
                    related_playlists: RelatedPlaylists {
                        likes: "",
                        uploads: &c.uploads_playlist_id,
                    },
                }),
            statistics: parts.contains(&"statistics").then(|| ChannelStatistics {
                view_count: c.view_count.to_string(),
                subscriber_count: c.subscriber_count.to_string(),
                hidden_subscriber_count: false,
                video_count: video_count.to_string(),
            }),
            branding_settings: parts.contains(&"brandingSettings").then(|| Branding {
                channel: BrandingChannel {
                    title: &c.title,
                    description: &c.description,
                    keywords: &c.keywords,
                    country: c.country.as_deref(),
                },
            }),
        })
        .collect();
    let total = items.len();
    // As in channels_list_no_match_items_absent.json: no match, no `items` key.
    let items = (!items.is_empty()).then_some(items);
    ListResponse::new("youtube#channelListResponse", items)
        .info(total, max)
        .render()
}

// ---------------------------------------------------------------- playlistItems.list

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PlaylistItem<'a> {
    kind: &'static str,
    etag: String,
    id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    snippet: Option<PlaylistItemSnippet<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_details: Option<PlaylistItemContentDetails<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<PlaylistItemStatus>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PlaylistItemSnippet<'a> {
    published_at: String,
    channel_id: &'a str,
    title: &'a str,
    description: &'a str,
    thumbnails: Thumbnails,
    channel_title: &'a str,
    playlist_id: &'a str,
    position: usize,
    resource_id: ResourceId<'a>,
    video_owner_channel_title: &'a str,
    video_owner_channel_id: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PlaylistItemContentDetails<'a> {
    video_id: &'a str,
    video_published_at: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PlaylistItemStatus {
    privacy_status: &'static str,
}

fn playlist_items(
    params: &Params,
    view: &View<'_>,
    now: Timestamp,
    origin: &str,
    meter: &std::sync::Mutex<crate::quota::Meter>,
    hub: &crate::hub::Hub,
) -> Result<String, GoogleError> {
    let parts = parts(params, &["contentDetails", "id", "snippet", "status"])?;
    let max = max_results(params)?;
    let token = page_token(params)?;
    let Some(playlist_id) = params.value("playlistId") else {
        return Err(GoogleError::missing_filter("id, playlistId"));
    };
    let video_filter = params.value("videoId");
    let (channel, count, entries) = view
        .uploads(playlist_id, video_filter, now)
        .ok_or_else(GoogleError::playlist_not_found)?;
    // A poll of a channel the hub pushes to the caller: what push was meant to save.
    let subscribed = playlist_id.strip_prefix("UU").is_some_and(|rest| {
        hub.subscription_of(&format!("UC{rest}"), now.as_second())
            .is_some()
    });
    meter
        .lock()
        .expect("meter lock")
        .note_playlist(playlist_id, subscribed, now);
    let page = page_token::page(entries.len(), max, token);
    let videos: Vec<(usize, _)> = entries[page.start..page.end]
        .iter()
        .map(|&position| (position, view.upload_at(&channel, count, position, now)))
        .collect();
    let items: Vec<PlaylistItem> = videos
        .iter()
        .map(|(position, v)| {
            let position = *position;
            let id = crate::page_token::base64_standard(
                format!("{}.{}", channel.uploads_playlist_id, v.id).as_bytes(),
            );
            PlaylistItem {
                kind: "youtube#playlistItem",
                etag: etag(&["playlistItem", &id, &parts.join(","), &position.to_string()]),
                id,
                snippet: parts.contains(&"snippet").then(|| PlaylistItemSnippet {
                    published_at: rfc3339(v.published_at),
                    channel_id: &channel.id,
                    title: &v.title,
                    description: &v.description,
                    thumbnails: video_thumbnails(v, true, origin),
                    channel_title: &channel.title,
                    playlist_id: &channel.uploads_playlist_id,
                    position,
                    resource_id: ResourceId {
                        kind: "youtube#video",
                        video_id: Some(&v.id),
                        channel_id: None,
                    },
                    video_owner_channel_title: &channel.title,
                    video_owner_channel_id: &channel.id,
                }),
                content_details: parts.contains(&"contentDetails").then(|| {
                    PlaylistItemContentDetails {
                        video_id: &v.id,
                        video_published_at: rfc3339(v.published_at),
                    }
                }),
                status: parts.contains(&"status").then_some(PlaylistItemStatus {
                    privacy_status: "public",
                }),
            }
        })
        .collect();
    ListResponse::new("youtube#playlistItemListResponse", Some(items))
        .page(&page)
        .info(entries.len(), max)
        .render()
}

// ---------------------------------------------------------------- videoCategories.list

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CategoryItem {
    kind: &'static str,
    etag: String,
    id: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    snippet: Option<CategorySnippet>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CategorySnippet {
    channel_id: &'static str,
    title: &'static str,
    assignable: bool,
}

fn video_categories(params: &Params) -> Result<String, GoogleError> {
    let parts = parts(params, &["snippet", "id"])?;
    let ids = id_list(params, "id")?;
    if ids.is_none() && params.value("regionCode").is_none() {
        return Err(GoogleError::missing_filter("id, regionCode"));
    }
    let items: Vec<CategoryItem> = CATEGORIES
        .iter()
        .filter(|(id, _, _)| ids.as_ref().is_none_or(|ids| ids.contains(id)))
        .map(|&(id, title, assignable)| CategoryItem {
            kind: "youtube#videoCategory",
            etag: etag(&["videoCategory", id, title]),
            id,
            snippet: parts.contains(&"snippet").then_some(CategorySnippet {
                channel_id: "UCBR8-60-B28hp2BmDPdntcQ",
                title,
                assignable,
            }),
        })
        .collect();
    // videoCategories responses carry no pageInfo.
    ListResponse::new("youtube#videoCategoryListResponse", Some(items)).render()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_look_like_youtubes() {
        assert_eq!(iso_duration(159), "PT2M39S");
        assert_eq!(iso_duration(1267), "PT21M7S");
        assert_eq!(iso_duration(3723), "PT1H2M3S");
        assert_eq!(iso_duration(3600), "PT1H");
        assert_eq!(iso_duration(45), "PT45S");
        assert_eq!(iso_duration(0), "P0D");
    }

    #[test]
    fn etags_are_27_chars() {
        assert_eq!(etag(&["x"]).len(), 27);
        assert_ne!(etag(&["x"]), etag(&["y"]));
    }

    #[test]
    fn query_decoding() {
        let p = Params::parse("q=rust+async%20tokio&part=snippet%2Cid&bad=%zz");
        assert_eq!(p.get("q"), Some("rust async tokio"));
        assert_eq!(p.get("part"), Some("snippet,id"));
        assert_eq!(p.get("bad"), Some("%zz"));
    }
}
