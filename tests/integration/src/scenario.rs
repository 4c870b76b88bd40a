//! Realistic users drawn from the fake's corpus, whose topics the fake knows.

use std::collections::HashSet;

use crate::services::Fake;

/// A watch history: video ids, and the topics and channels they belong to.
#[derive(Debug, Clone)]
pub struct History {
    pub video_ids: Vec<String>,
    pub topics: HashSet<String>,
    pub channels: HashSet<String>,
}

impl History {
    /// The `{"events": [...]}` body for `POST /api/v1/video/history/{user}`.
    pub fn body(&self) -> String {
        let events: Vec<serde_json::Value> = self
            .video_ids
            .iter()
            .map(|id| serde_json::json!({"video_id": id, "watch_seconds": 300}))
            .collect();
        serde_json::json!({ "events": events }).to_string()
    }

    /// Whether a served video shares a topic or a channel with the history.
    pub fn relates_to(&self, fake: &Fake, video_id: &str) -> bool {
        let corpus = fake.corpus();
        corpus.video(video_id).is_some_and(|v| {
            self.topics.contains(&v.topic) || self.channels.contains(&v.channel_id)
        })
    }
}

/// `per_channel` videos from each of `channels` channels of the `topic_rank`-th largest
/// topic (by video count), skipping the newest uploads so those stay recommendable.
pub fn history_in_topic(
    fake: &Fake,
    topic_rank: usize,
    channels: usize,
    per_channel: usize,
) -> History {
    let corpus = fake.corpus();
    let mut topics: Vec<_> = corpus.topics().iter().collect();
    topics.sort_by(|a, b| {
        b.video_count
            .cmp(&a.video_count)
            .then_with(|| a.name.cmp(&b.name))
    });
    let topic = topics[topic_rank % topics.len()];
    let mut video_ids = Vec::new();
    let mut channel_ids = HashSet::new();
    for channel in corpus.channels_of_topic(&topic.name) {
        let uploads = corpus.uploads_of(&channel.id);
        if uploads.len() < per_channel + 5 {
            continue;
        }
        video_ids.extend(
            uploads
                .iter()
                .skip(5)
                .take(per_channel)
                .map(|v| v.id.clone()),
        );
        channel_ids.insert(channel.id.clone());
        if channel_ids.len() == channels {
            break;
        }
    }
    assert_eq!(
        channel_ids.len(),
        channels,
        "topic {} has too few large channels",
        topic.name
    );
    History {
        video_ids,
        topics: HashSet::from([topic.name.clone()]),
        channels: channel_ids,
    }
}
