//! Domain types shared by every function.

use serde::{Deserialize, Serialize};

/// Longest user id accepted. Cognito `sub`s are 36 characters; other providers' ids are
/// longer but never need 128.
pub const MAX_USER_ID_LEN: usize = 128;

/// A user id that is safe to put in a Redis key: validated once at the edge so no
/// hash tag, separator, wildcard or huge string can reach a key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct UserId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidUserId {
    #[error("user_id is empty")]
    Empty,
    #[error("user_id is longer than {MAX_USER_ID_LEN} characters")]
    TooLong,
    #[error("user_id may contain only letters, digits, '-', '_', '.', '@' and '+'")]
    BadCharacter,
}

impl UserId {
    pub fn parse(raw: &str) -> Result<Self, InvalidUserId> {
        if raw.is_empty() {
            return Err(InvalidUserId::Empty);
        }
        if raw.len() > MAX_USER_ID_LEN {
            return Err(InvalidUserId::TooLong);
        }
        if !raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@' | b'+'))
        {
            return Err(InvalidUserId::BadCharacter);
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for UserId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for UserId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        UserId::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// Whether a string looks like a YouTube video id (11 characters of base64url).
pub fn is_video_id(id: &str) -> bool {
    id.len() == 11
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// One thing the user watched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WatchEvent {
    pub video_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watched_at: Option<jiff::Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch_seconds: Option<u32>,
}

/// What a user said they like, for a cold start before any history (and as a nudge
/// after): free-text topics, searched and shared by normalised query, and YouTube
/// categories, whose charts cost one unit shared by every user.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interests {
    #[serde(default)]
    pub topics: Vec<String>,
    /// Category ids (names are resolved on the way in).
    #[serde(default)]
    pub categories: Vec<String>,
}

/// The most topics or categories one user may declare.
pub const MAX_INTERESTS: usize = 10;
/// The longest declared topic, in characters.
pub const MAX_TOPIC_CHARS: usize = 60;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidInterests {
    #[error("at most {MAX_INTERESTS} topics")]
    TooManyTopics,
    #[error("each topic is 1 to {MAX_TOPIC_CHARS} characters of letters, digits and spaces")]
    BadTopic,
    #[error("at most {MAX_INTERESTS} categories")]
    TooManyCategories,
    #[error("unknown category {0:?}; valid names: {names}", names = category_names())]
    UnknownCategory(String),
}

impl InvalidInterests {
    /// The request field the error is about.
    pub fn field(&self) -> &'static str {
        match self {
            InvalidInterests::TooManyTopics | InvalidInterests::BadTopic => "interests.topics",
            _ => "interests.categories",
        }
    }
}

fn category_names() -> String {
    CATEGORIES
        .iter()
        .map(|(_, n)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

impl Interests {
    /// Validates and normalises: topics lower-cased with single spaces, categories
    /// resolved to ids (by id or by name in any case), duplicates dropped.
    pub fn new(topics: &[String], categories: &[String]) -> Result<Self, InvalidInterests> {
        if topics.len() > MAX_INTERESTS {
            return Err(InvalidInterests::TooManyTopics);
        }
        if categories.len() > MAX_INTERESTS {
            return Err(InvalidInterests::TooManyCategories);
        }
        let mut out = Interests::default();
        for topic in topics {
            let words: Vec<String> = topic.split_whitespace().map(|w| w.to_lowercase()).collect();
            let normalised = words.join(" ");
            if normalised.is_empty()
                || normalised.chars().count() > MAX_TOPIC_CHARS
                || !normalised
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == ' ' || c == '-' || c == '\'')
            {
                return Err(InvalidInterests::BadTopic);
            }
            if !out.topics.contains(&normalised) {
                out.topics.push(normalised);
            }
        }
        for category in categories {
            let id = resolve_category(category)
                .ok_or_else(|| InvalidInterests::UnknownCategory(category.clone()))?;
            if !out.categories.iter().any(|c| c == id) {
                out.categories.push(id.to_owned());
            }
        }
        Ok(out)
    }

    pub fn is_empty(&self) -> bool {
        self.topics.is_empty() && self.categories.is_empty()
    }
}

/// A video as the feed shows it, with the reason it was picked.
///
/// The fields are declared in key order: the API writes the feed's body straight from
/// this struct, and its bytes stay those of the sorted `serde_json::Value` form clients
/// have always had (checked by the API's `feed_body_matches_the_value_form`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Video {
    pub category_id: String,
    pub channel_id: String,
    pub channel_title: String,
    #[serde(default)]
    pub duration_secs: u32,
    pub published_at: String,
    /// Why this video is in the feed ("from a channel you watch", "trending in Gaming").
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub tags: Vec<String>,
    pub thumbnail_url: String,
    pub title: String,
    /// True when the video came from a chart rather than the user's interests.
    #[serde(default)]
    pub trending: bool,
    pub url: String,
    pub video_id: String,
    #[serde(default)]
    pub view_count: u64,
}

/// YouTube's video categories (ids are strings, not contiguous), as `videoCategories.list`
/// returns them. Used to validate `category_filter` and to name charts in reasons.
impl Video {
    /// About how much memory this video holds, for caches bounded by bytes.
    pub fn approximate_bytes(&self) -> usize {
        std::mem::size_of::<Video>()
            + self.category_id.len()
            + self.channel_id.len()
            + self.channel_title.len()
            + self.published_at.len()
            + self.reason.len()
            + self.tags.iter().map(|t| t.len() + 24).sum::<usize>()
            + self.thumbnail_url.len()
            + self.title.len()
            + self.url.len()
            + self.video_id.len()
    }
}

pub const CATEGORIES: &[(&str, &str)] = &[
    ("1", "Film & Animation"),
    ("2", "Autos & Vehicles"),
    ("10", "Music"),
    ("15", "Pets & Animals"),
    ("17", "Sports"),
    ("18", "Short Movies"),
    ("19", "Travel & Events"),
    ("20", "Gaming"),
    ("21", "Videoblogging"),
    ("22", "People & Blogs"),
    ("23", "Comedy"),
    ("24", "Entertainment"),
    ("25", "News & Politics"),
    ("26", "Howto & Style"),
    ("27", "Education"),
    ("28", "Science & Technology"),
    ("29", "Nonprofits & Activism"),
    ("30", "Movies"),
    ("31", "Anime/Animation"),
    ("32", "Action/Adventure"),
    ("33", "Classics"),
    ("35", "Documentary"),
    ("36", "Drama"),
    ("37", "Family"),
    ("38", "Foreign"),
    ("39", "Horror"),
    ("40", "Sci-Fi/Fantasy"),
    ("41", "Thriller"),
    ("42", "Shorts"),
    ("43", "Shows"),
    ("44", "Trailers"),
];

pub fn category_name(id: &str) -> Option<&'static str> {
    CATEGORIES.iter().find(|(i, _)| *i == id).map(|(_, n)| *n)
}

/// A category id from an id or a name in any case (`gaming`, `Science & Technology`,
/// `science-technology`).
pub fn resolve_category(input: &str) -> Option<&'static str> {
    let input = input.trim();
    // Names may be written with any case, spaces, '&', '-', '_' or '/'; anything else
    // (wildcards, braces, control characters) is not a category.
    if input.is_empty()
        || !input
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || " &-_/".contains(c))
    {
        return None;
    }
    let squash = |s: &str| {
        s.chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase()
    };
    let wanted = squash(input);
    CATEGORIES
        .iter()
        .find(|(id, name)| *id == input || squash(name) == wanted)
        .map(|(id, _)| *id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_that_could_break_a_key_are_refused() {
        assert!(UserId::parse("8f1e2d3c-0000-4000-8000-123456789abc").is_ok());
        assert!(UserId::parse("alice@example.com").is_ok());
        for bad in ["", "a{b", "a}b", "a:b", "a*b", "a b", "a\nb", "a?b", "a[b"] {
            assert!(UserId::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(UserId::parse(&"x".repeat(129)), Err(InvalidUserId::TooLong));
    }

    #[test]
    fn categories_resolve_by_id_or_name_in_any_case() {
        assert_eq!(resolve_category("20"), Some("20"));
        assert_eq!(resolve_category("GAMING"), Some("20"));
        assert_eq!(resolve_category("science & technology"), Some("28"));
        assert_eq!(resolve_category("Science-Technology"), Some("28"));
        for bad in ["gaming*", "0", "999", "knitting", "", "{u:x}", "\0"] {
            assert_eq!(resolve_category(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn interests_normalise_and_name_the_bad_field() {
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let ok = Interests::new(
            &strings(&["  Jazz   Piano ", "jazz piano", "Minecraft"]),
            &strings(&["gaming", "20", "Music"]),
        )
        .unwrap();
        assert_eq!(ok.topics, ["jazz piano", "minecraft"]);
        assert_eq!(ok.categories, ["20", "10"]);
        let err = Interests::new(&strings(&["a{b}"]), &[]).unwrap_err();
        assert_eq!(err.field(), "interests.topics");
        let err = Interests::new(&[], &strings(&["knitting"])).unwrap_err();
        assert_eq!(err.field(), "interests.categories");
        assert!(err.to_string().contains("Gaming"), "{err}");
        let many = strings(&["x"; 11]);
        assert_eq!(
            Interests::new(&many, &[]),
            Err(InvalidInterests::TooManyTopics)
        );
        assert!(Interests::new(&strings(&[&"y".repeat(61)]), &[]).is_err());
    }
}
