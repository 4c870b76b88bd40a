//! The body of a YouTube push notification: an Atom feed of one channel's entries.
//!
//! YouTube's payload is not a full feed: an `entry` carries a video's id, its channel,
//! its title and two dates (an upload, or a change of title or description), never its
//! duration, statistics or thumbnails, which `videos.list` adds later. A deleted (or
//! newly private) video arrives as a tombstone, `at:deleted-entry ref="yt:video:ID"`,
//! whose channel is named only in `at:by/uri`.
//!
//! Parsed with quick-xml, which never reads a DTD: a body with a `DOCTYPE` is refused
//! outright, and only the five predefined entities and character references are
//! resolved, so no entity trick (external entities, expansion bombs) has anything to
//! work with. Elements are matched by namespace, not by prefix.

use jiff::Timestamp;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;
use thiserror::Error;

use super::is_channel_id;
use crate::domain::is_video_id;

/// The largest body the callback reads. A notification is one entry of about 1 KB;
/// the hub may batch a few.
pub const MAX_NOTIFICATION_BYTES: usize = 64 * 1024;
/// Entries and tombstones one notification may carry.
pub const MAX_ENTRIES: usize = 50;
/// Longest text kept from one element (a title is at most 100 characters on YouTube).
const MAX_TEXT_CHARS: usize = 500;
/// Deepest nesting accepted (the payload is four levels deep).
const MAX_DEPTH: usize = 16;

const ATOM: &str = "http://www.w3.org/2005/Atom";
const YT: &str = "http://www.youtube.com/xml/schemas/2015";
const TOMBSTONES: &str = "http://purl.org/atompub/tombstones/1.0";

/// An upload, or a change to a video's title or description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedVideo {
    pub video_id: String,
    pub channel_id: String,
    pub title: String,
    /// When the video was published (ms since the epoch).
    pub published_ms: i64,
    /// When the entry last changed: orders notifications of one video.
    pub updated_ms: i64,
}

/// A video that was deleted or made private.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletedVideo {
    pub video_id: String,
    /// From `at:by/uri`, when the tombstone names it.
    pub channel_id: Option<String>,
    pub deleted_ms: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Notification {
    pub videos: Vec<PushedVideo>,
    pub deleted: Vec<DeletedVideo>,
}

/// Why a body is not a notification. Names the part that is wrong.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum NotificationError {
    #[error("the body is larger than {MAX_NOTIFICATION_BYTES} bytes")]
    TooLarge,
    #[error("the body is not UTF-8")]
    NotUtf8,
    #[error("a DOCTYPE is not accepted")]
    DocType,
    #[error("the entity `&{0};` is not one XML predefines")]
    UnknownEntity(String),
    #[error("the body is not well-formed XML: {0}")]
    Xml(String),
    #[error("the body is not an Atom feed")]
    NotAFeed,
    #[error("more than {MAX_ENTRIES} entries")]
    TooManyEntries,
    #[error("the XML is nested more than {MAX_DEPTH} levels deep")]
    TooDeep,
    #[error("an entry's `{0}` is missing or invalid")]
    Entry(&'static str),
    #[error("a deleted-entry's `{0}` is missing or invalid")]
    Deleted(&'static str),
}

fn timestamp_ms(raw: &str) -> Option<i64> {
    raw.trim()
        .parse::<Timestamp>()
        .ok()
        .map(|t| t.as_millisecond())
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Field {
    VideoId,
    ChannelId,
    Title,
    Published,
    Updated,
    AuthorUri,
}

/// What the parser is inside of.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Node {
    Feed,
    Entry,
    Deleted,
    Author,
    Field(Field),
    Other,
}

#[derive(Default)]
struct EntryParts {
    video_id: Option<String>,
    channel_id: Option<String>,
    title: Option<String>,
    published: Option<String>,
    updated: Option<String>,
    author_uri: Option<String>,
    /// For a tombstone: `ref` and `when`.
    reference: Option<String>,
    when: Option<String>,
}

impl EntryParts {
    fn set(&mut self, field: Field, text: String) {
        let slot = match field {
            Field::VideoId => &mut self.video_id,
            Field::ChannelId => &mut self.channel_id,
            Field::Title => &mut self.title,
            Field::Published => &mut self.published,
            Field::Updated => &mut self.updated,
            Field::AuthorUri => &mut self.author_uri,
        };
        *slot = Some(text);
    }

    fn channel_from_author(&self) -> Option<String> {
        let uri = self.author_uri.as_deref()?.trim();
        let id = uri.rsplit('/').next()?;
        is_channel_id(id).then(|| id.to_owned())
    }

    fn into_video(self) -> Result<PushedVideo, NotificationError> {
        let video_id = self
            .video_id
            .as_deref()
            .map(str::trim)
            .filter(|id| is_video_id(id))
            .ok_or(NotificationError::Entry("yt:videoId"))?
            .to_owned();
        let channel_id = match self.channel_id.as_deref().map(str::trim) {
            Some(id) if is_channel_id(id) => id.to_owned(),
            Some(_) => return Err(NotificationError::Entry("yt:channelId")),
            None => self
                .channel_from_author()
                .ok_or(NotificationError::Entry("yt:channelId"))?,
        };
        let updated_ms = self
            .updated
            .as_deref()
            .and_then(timestamp_ms)
            .ok_or(NotificationError::Entry("updated"))?;
        let published_ms = match self.published.as_deref() {
            Some(raw) => timestamp_ms(raw).ok_or(NotificationError::Entry("published"))?,
            None => updated_ms,
        };
        Ok(PushedVideo {
            video_id,
            channel_id,
            title: self.title.unwrap_or_default().trim().to_owned(),
            published_ms,
            updated_ms,
        })
    }

    fn into_deleted(self) -> Result<DeletedVideo, NotificationError> {
        let channel_id = self.channel_from_author();
        let video_id = self
            .reference
            .as_deref()
            .and_then(|r| r.trim().strip_prefix("yt:video:"))
            .filter(|id| is_video_id(id))
            .ok_or(NotificationError::Deleted("ref"))?
            .to_owned();
        let deleted_ms = self
            .when
            .as_deref()
            .and_then(timestamp_ms)
            .ok_or(NotificationError::Deleted("when"))?;
        Ok(DeletedVideo {
            video_id,
            channel_id,
            deleted_ms,
        })
    }
}

fn xml_error(e: impl std::fmt::Display) -> NotificationError {
    NotificationError::Xml(e.to_string())
}

/// What element `start` is, given where the parser is (`parent`).
fn classify(ns: &ResolveResult, start: &BytesStart, parent: Option<Node>) -> Node {
    let ns = match ns {
        ResolveResult::Bound(ns) => ns.as_ref(),
        _ => "",
    };
    let local = start.local_name();
    let local = local.as_ref();
    match (parent, ns, local) {
        (None, ATOM, "feed") => Node::Feed,
        (Some(Node::Feed), ATOM, "entry") => Node::Entry,
        (Some(Node::Feed), TOMBSTONES, "deleted-entry") => Node::Deleted,
        (Some(Node::Entry), YT, "videoId") => Node::Field(Field::VideoId),
        (Some(Node::Entry), YT, "channelId") => Node::Field(Field::ChannelId),
        (Some(Node::Entry), ATOM, "title") => Node::Field(Field::Title),
        (Some(Node::Entry), ATOM, "published") => Node::Field(Field::Published),
        (Some(Node::Entry), ATOM, "updated") => Node::Field(Field::Updated),
        (Some(Node::Entry), ATOM, "author") => Node::Author,
        (Some(Node::Deleted), TOMBSTONES, "by") => Node::Author,
        (Some(Node::Author), ATOM, "uri") => Node::Field(Field::AuthorUri),
        _ => Node::Other,
    }
}

fn attribute(start: &BytesStart, name: &str) -> Result<Option<String>, NotificationError> {
    match start.try_get_attribute(name).map_err(xml_error)? {
        Some(a) => Ok(Some(
            a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .map_err(xml_error)?
                .into_owned(),
        )),
        None => Ok(None),
    }
}

/// Parses a notification body. Entries in it that are not well-formed make the whole
/// body an error: a hub never sends half a notification.
pub fn parse(body: &[u8]) -> Result<Notification, NotificationError> {
    if body.len() > MAX_NOTIFICATION_BYTES {
        return Err(NotificationError::TooLarge);
    }
    let text = std::str::from_utf8(body).map_err(|_| NotificationError::NotUtf8)?;
    let mut reader = NsReader::from_str(text);
    let mut stack: Vec<Node> = Vec::new();
    let mut parts: Option<EntryParts> = None;
    let mut buffer = String::new();
    let mut out = Notification::default();
    let mut saw_feed = false;
    loop {
        let (ns, event) = reader.read_resolved_event().map_err(xml_error)?;
        match event {
            Event::DocType(_) => return Err(NotificationError::DocType),
            Event::Start(start) => {
                let node = classify(&ns, &start, stack.last().copied());
                if stack.len() >= MAX_DEPTH {
                    return Err(NotificationError::TooDeep);
                }
                match node {
                    Node::Feed => saw_feed = true,
                    Node::Entry | Node::Deleted => {
                        if out.videos.len() + out.deleted.len() >= MAX_ENTRIES {
                            return Err(NotificationError::TooManyEntries);
                        }
                        let mut p = EntryParts::default();
                        if node == Node::Deleted {
                            p.reference = attribute(&start, "ref")?;
                            p.when = attribute(&start, "when")?;
                        }
                        parts = Some(p);
                    }
                    Node::Field(_) => buffer.clear(),
                    _ => {}
                }
                stack.push(node);
            }
            Event::Empty(start) => {
                let node = classify(&ns, &start, stack.last().copied());
                match node {
                    Node::Feed => saw_feed = true,
                    Node::Deleted => {
                        if out.videos.len() + out.deleted.len() >= MAX_ENTRIES {
                            return Err(NotificationError::TooManyEntries);
                        }
                        let p = EntryParts {
                            reference: attribute(&start, "ref")?,
                            when: attribute(&start, "when")?,
                            ..Default::default()
                        };
                        out.deleted.push(p.into_deleted()?);
                    }
                    Node::Entry => return Err(NotificationError::Entry("yt:videoId")),
                    _ => {}
                }
            }
            Event::Text(t) => {
                if let Some(Node::Field(_)) = stack.last() {
                    push_text(&mut buffer, &t.xml10_content())?;
                }
            }
            Event::CData(c) => {
                if let Some(Node::Field(_)) = stack.last() {
                    push_text(&mut buffer, &c.into_inner())?;
                }
            }
            Event::GeneralRef(r) => {
                if let Some(Node::Field(_)) = stack.last() {
                    let resolved = match r.resolve_char_ref().map_err(xml_error)? {
                        Some(c) => c.to_string(),
                        None => {
                            let name = r.xml10_content();
                            quick_xml::escape::resolve_predefined_entity(&name)
                                .ok_or_else(|| NotificationError::UnknownEntity(name.to_string()))?
                                .to_owned()
                        }
                    };
                    push_text(&mut buffer, &resolved)?;
                } else if r.resolve_char_ref().map_err(xml_error)?.is_none() {
                    // Outside the fields we read, an unknown entity is still refused.
                    let name = r.xml10_content();
                    if quick_xml::escape::resolve_predefined_entity(&name).is_none() {
                        return Err(NotificationError::UnknownEntity(name.to_string()));
                    }
                }
            }
            Event::End(_) => {
                let Some(node) = stack.pop() else {
                    return Err(xml_error("an end tag without a start"));
                };
                match node {
                    Node::Field(field) => {
                        if let Some(p) = parts.as_mut() {
                            p.set(field, std::mem::take(&mut buffer));
                        }
                    }
                    Node::Entry => {
                        let p = parts.take().expect("an entry's parts");
                        out.videos.push(p.into_video()?);
                    }
                    Node::Deleted => {
                        let p = parts.take().expect("a tombstone's parts");
                        out.deleted.push(p.into_deleted()?);
                    }
                    _ => {}
                }
            }
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
        }
    }
    if !stack.is_empty() {
        return Err(xml_error("the document ends inside an element"));
    }
    if !saw_feed {
        return Err(NotificationError::NotAFeed);
    }
    Ok(out)
}

fn push_text(buffer: &mut String, text: &str) -> Result<(), NotificationError> {
    if buffer.chars().count() + text.chars().count() > MAX_TEXT_CHARS {
        return Err(xml_error("an element's text is too long"));
    }
    buffer.push_str(text);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::push::{topic_channel, topic_for};

    /// YouTube's own sample (the push notifications guide), with real ids.
    const UPLOAD: &str = r#"<?xml version='1.0' encoding='UTF-8'?>
<feed xmlns:yt="http://www.youtube.com/xml/schemas/2015"
         xmlns="http://www.w3.org/2005/Atom">
  <link rel="hub" href="https://pubsubhubbub.appspot.com"/>
  <link rel="self" href="https://www.youtube.com/xml/feeds/videos.xml?channel_id=UC_x5XG1OV2P6uZZ5FSM9Ttw"/>
  <title>YouTube video feed</title>
  <updated>2015-04-01T19:05:24.552394234+00:00</updated>
  <entry>
    <id>yt:video:dQw4w9WgXcQ</id>
    <yt:videoId>dQw4w9WgXcQ</yt:videoId>
    <yt:channelId>UC_x5XG1OV2P6uZZ5FSM9Ttw</yt:channelId>
    <title>Rock &amp; roll &#8212; &lt;live&gt;</title>
    <link rel="alternate" href="http://www.youtube.com/watch?v=dQw4w9WgXcQ"/>
    <author>
     <name>Google for Developers</name>
     <uri>http://www.youtube.com/channel/UC_x5XG1OV2P6uZZ5FSM9Ttw</uri>
    </author>
    <published>2015-03-06T21:40:57+00:00</published>
    <updated>2015-03-09T19:05:24.552394234+00:00</updated>
  </entry>
</feed>"#;

    /// A tombstone as YouTube sends it (captured from a real subscriber).
    const DELETED: &str = r#"<?xml version='1.0' encoding='UTF-8'?>
<feed xmlns:at="http://purl.org/atompub/tombstones/1.0" xmlns="http://www.w3.org/2005/Atom"><at:deleted-entry ref="yt:video:xScSTh-gHpQ" when="2018-07-26T17:43:36.123456+00:00">
  <link href="https://www.youtube.com/watch?v=xScSTh-gHpQ"/>
  <at:by>
   <name>TelePatriot-Dev</name>
   <uri>https://www.youtube.com/channel/UCiC2Q-noJ-2uxQeDKC6IHKg</uri>
  </at:by>
 </at:deleted-entry></feed>"#;

    #[test]
    fn youtubes_sample_upload_parses() {
        let n = parse(UPLOAD.as_bytes()).unwrap();
        assert!(n.deleted.is_empty());
        assert_eq!(n.videos.len(), 1);
        let v = &n.videos[0];
        assert_eq!(v.video_id, "dQw4w9WgXcQ");
        assert_eq!(v.channel_id, "UC_x5XG1OV2P6uZZ5FSM9Ttw");
        assert_eq!(v.title, "Rock & roll \u{2014} <live>");
        assert_eq!(
            v.published_ms,
            "2015-03-06T21:40:57Z"
                .parse::<Timestamp>()
                .unwrap()
                .as_millisecond()
        );
        // Nine fractional digits are read (and cut to milliseconds).
        assert_eq!(
            v.updated_ms,
            "2015-03-09T19:05:24.552Z"
                .parse::<Timestamp>()
                .unwrap()
                .as_millisecond()
        );
    }

    #[test]
    fn a_tombstone_names_its_video_and_channel() {
        let n = parse(DELETED.as_bytes()).unwrap();
        assert!(n.videos.is_empty());
        assert_eq!(
            n.deleted,
            vec![DeletedVideo {
                video_id: "xScSTh-gHpQ".into(),
                channel_id: Some("UCiC2Q-noJ-2uxQeDKC6IHKg".into()),
                deleted_ms: "2018-07-26T17:43:36.123Z"
                    .parse::<Timestamp>()
                    .unwrap()
                    .as_millisecond(),
            }]
        );
    }

    #[test]
    fn elements_are_matched_by_namespace_not_prefix() {
        let other_prefixes = UPLOAD
            .replace("xmlns:yt=", "xmlns:y=")
            .replace("<yt:", "<y:")
            .replace("</yt:", "</y:")
            .replace(
                "xmlns=\"http://www.w3.org/2005/Atom\"",
                "xmlns:a=\"http://www.w3.org/2005/Atom\"",
            )
            .replace("<feed", "<a:feed")
            .replace("</feed>", "</a:feed>")
            .replace("<entry>", "<a:entry>")
            .replace("</entry>", "</a:entry>")
            .replace("<title>", "<a:title>")
            .replace("</title>", "</a:title>")
            .replace("<published>", "<a:published>")
            .replace("</published>", "</a:published>")
            .replace("<updated>", "<a:updated>")
            .replace("</updated>", "</a:updated>");
        assert_eq!(parse(other_prefixes.as_bytes()), parse(UPLOAD.as_bytes()));
        // The right names in the wrong namespace are not YouTube's.
        let wrong_ns = UPLOAD.replace(YT, "http://example.com/not-youtube");
        assert_eq!(
            parse(wrong_ns.as_bytes()),
            Err(NotificationError::Entry("yt:videoId"))
        );
    }

    #[test]
    fn entity_tricks_are_refused() {
        let xxe = r#"<?xml version="1.0"?><!DOCTYPE feed [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<feed xmlns="http://www.w3.org/2005/Atom"><title>&xxe;</title></feed>"#;
        assert_eq!(parse(xxe.as_bytes()), Err(NotificationError::DocType));
        let bomb = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>
<feed xmlns="http://www.w3.org/2005/Atom"/>"#;
        assert_eq!(parse(bomb.as_bytes()), Err(NotificationError::DocType));
        // An entity nobody defined, inside a field or outside.
        let undefined = UPLOAD.replace("Rock &amp; roll", "Rock &xxe; roll");
        assert_eq!(
            parse(undefined.as_bytes()),
            Err(NotificationError::UnknownEntity("xxe".into()))
        );
        let outside = UPLOAD.replace("<title>YouTube video feed</title>", "<title>&xxe;</title>");
        assert_eq!(
            parse(outside.as_bytes()),
            Err(NotificationError::UnknownEntity("xxe".into()))
        );
    }

    #[test]
    fn malformed_and_oversized_bodies_are_refused_by_name() {
        assert_eq!(
            parse(&vec![b' '; MAX_NOTIFICATION_BYTES + 1]),
            Err(NotificationError::TooLarge)
        );
        assert_eq!(parse(&[0xff, 0xfe, b'<']), Err(NotificationError::NotUtf8));
        assert!(matches!(
            parse(b"<feed xmlns=\"http://www.w3.org/2005/Atom\"><entry>"),
            Err(NotificationError::Xml(_))
        ));
        assert!(matches!(
            parse(b"<feed xmlns=\"http://www.w3.org/2005/Atom\"></fed>"),
            Err(NotificationError::Xml(_))
        ));
        assert_eq!(
            parse(b"<rss><channel/></rss>"),
            Err(NotificationError::NotAFeed)
        );
        assert_eq!(parse(b""), Err(NotificationError::NotAFeed));
        let no_date = UPLOAD.replace(
            "<updated>2015-03-09T19:05:24.552394234+00:00</updated>\n  </entry>",
            "</entry>",
        );
        assert_eq!(
            parse(no_date.as_bytes()),
            Err(NotificationError::Entry("updated"))
        );
        let bad_id = UPLOAD.replace("<yt:videoId>dQw4w9WgXcQ", "<yt:videoId>not an id");
        assert_eq!(
            parse(bad_id.as_bytes()),
            Err(NotificationError::Entry("yt:videoId"))
        );
        let bad_ref = DELETED.replace("yt:video:xScSTh-gHpQ\"", "yt:playlist:x\"");
        assert_eq!(
            parse(bad_ref.as_bytes()),
            Err(NotificationError::Deleted("ref"))
        );
        let deep = format!(
            "<feed xmlns=\"http://www.w3.org/2005/Atom\">{}{}</feed>",
            "<x>".repeat(40),
            "</x>".repeat(40)
        );
        assert_eq!(parse(deep.as_bytes()), Err(NotificationError::TooDeep));
        let long_title = UPLOAD.replace("Rock &amp; roll", &"a".repeat(MAX_TEXT_CHARS + 1));
        assert!(matches!(
            parse(long_title.as_bytes()),
            Err(NotificationError::Xml(_))
        ));
    }

    #[test]
    fn a_feed_may_carry_several_entries_up_to_a_limit() {
        let entry = UPLOAD
            .split_once("<entry>")
            .unwrap()
            .1
            .split_once("</entry>")
            .unwrap()
            .0;
        let feed = |n: usize| {
            format!(
                "<feed xmlns:yt=\"{YT}\" xmlns=\"{ATOM}\">{}</feed>",
                format!("<entry>{entry}</entry>").repeat(n)
            )
        };
        assert_eq!(parse(feed(3).as_bytes()).unwrap().videos.len(), 3);
        assert_eq!(
            parse(feed(MAX_ENTRIES + 1).as_bytes()),
            Err(NotificationError::TooManyEntries)
        );
    }

    #[test]
    fn topics_name_their_channel() {
        let channel = "UC_x5XG1OV2P6uZZ5FSM9Ttw";
        assert_eq!(topic_channel(&topic_for(channel)), Some(channel));
        assert_eq!(
            topic_channel(&format!(
                "https://www.youtube.com/feeds/videos.xml?channel_id={channel}"
            )),
            Some(channel)
        );
        for other in [
            "https://www.youtube.com/xml/feeds/videos.xml?playlist_id=PL123",
            "https://evil.example/xml/feeds/videos.xml?channel_id=UC_x5XG1OV2P6uZZ5FSM9Ttw",
            "https://www.youtube.com/xml/feeds/videos.xml?channel_id=UC_x5XG1OV2P6uZZ5FSM9Ttw&x=1",
            "",
        ] {
            assert_eq!(topic_channel(other), None, "{other}");
        }
        assert!(is_channel_id(channel));
        assert!(!is_channel_id("UU_x5XG1OV2P6uZZ5FSM9Ttw"));
        assert!(!is_channel_id("UC_x5XG1OV2P6uZZ5FSM9Tt"));
    }
}
