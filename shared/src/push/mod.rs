//! Push notifications: YouTube's WebSub (PubSubHubbub) feed of the channels our users
//! watch, so a new upload reaches the shared sources at no quota instead of waiting for
//! a 1-unit poll of the channel's uploads playlist (ARCHITECTURE.md § Push).
//!
//! - Which channels are subscribed, asked for or live, and what a verification request
//!   is answered: [`subscriptions`].
//! - The per-channel secret and the `X-Hub-Signature` check: [`signature`].
//! - The Atom payload (uploads, title changes, deleted entries): [`notification`].
//! - What a verified notification changes in Redis, once, whatever the order: [`apply`].
//! - From a pushed id to the catalog (`videos.list`, 50 per unit) and to its watchers'
//!   pools: [`hydrate`].
//! - The scheduled run that hydrates, subscribes by demand, renews and drops: [`manager`].
//! - Where the master secret comes from (`PUSH_SECRET`, or Secrets Manager): [`secrets`].
//!
//! Signatures and parsing are behind the crate's `push` feature (aws-lc-rs's HMAC,
//! quick-xml), used by the callback and the manager; the subscription records are not,
//! as warms read the live leases.

pub mod subscriptions;

#[cfg(feature = "push")]
pub mod apply;
#[cfg(all(feature = "push", feature = "recommend"))]
pub mod hydrate;
#[cfg(all(feature = "push", feature = "recommend"))]
pub mod manager;
#[cfg(feature = "push")]
pub mod notification;
#[cfg(all(feature = "push", feature = "recommend"))]
pub mod secrets;
#[cfg(feature = "push")]
pub mod signature;

/// Whether `id` looks like a YouTube channel id (`UC` and 22 characters of base64url).
pub fn is_channel_id(id: &str) -> bool {
    id.len() == 24
        && id.starts_with("UC")
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The channel a topic URL is about, when it is a YouTube channel feed
/// (`https://www.youtube.com/xml/feeds/videos.xml?channel_id=…`, or the same without
/// `/xml`, which some of YouTube's own pages give).
pub fn topic_channel(topic: &str) -> Option<&str> {
    let rest = topic
        .strip_prefix("https://www.youtube.com/xml/feeds/videos.xml?channel_id=")
        .or_else(|| topic.strip_prefix("https://www.youtube.com/feeds/videos.xml?channel_id="))?;
    is_channel_id(rest).then_some(rest)
}

/// The topic URL of a channel's uploads, as subscribed to.
pub fn topic_for(channel_id: &str) -> String {
    format!("https://www.youtube.com/xml/feeds/videos.xml?channel_id={channel_id}")
}

/// The uploads playlist of a channel (`UC…` → `UU…`), YouTube's fixed convention: the
/// list under which the channel's latest uploads are cached.
pub fn uploads_playlist_of(channel_id: &str) -> Option<String> {
    channel_id
        .strip_prefix("UC")
        .map(|rest| format!("UU{rest}"))
}

/// The channel of an uploads playlist (`UU…` → `UC…`).
pub fn channel_of_uploads(playlist_id: &str) -> Option<String> {
    let channel = format!("UC{}", playlist_id.strip_prefix("UU")?);
    is_channel_id(&channel).then_some(channel)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_channel_and_its_uploads_playlist_name_each_other() {
        let channel = "UC_x5XG1OV2P6uZZ5FSM9Ttw";
        let playlist = uploads_playlist_of(channel).unwrap();
        assert_eq!(playlist, "UU_x5XG1OV2P6uZZ5FSM9Ttw");
        assert_eq!(channel_of_uploads(&playlist).as_deref(), Some(channel));
        assert_eq!(
            channel_of_uploads("PLrAXtmErZgOeiKm4sgNOknGvNjby9efdf"),
            None
        );
        assert_eq!(channel_of_uploads("UU"), None);
    }
}
