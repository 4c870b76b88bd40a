//! A world as large as the real one, generated on demand from the seed.
//!
//! The materialised [`crate::Corpus`] builds every channel and video at start, which
//! bounds it to a few thousand channels: in such a world ten times the users watch the
//! same channels, and our cost (paid per distinct source) does not grow with them as a
//! real app's does. Here a channel is a number: its rank in popularity. Everything else
//! about it — its id, topic, upload cadence, when each of its uploads is published, and
//! each video's id — is a pure function of the seed and that number, so the world can
//! hold hundreds of thousands of channels in constant memory, and an id decodes back to
//! its channel (and upload) without a table.
//!
//! - **Popularity** is Zipf-like with exponent 1: channel `r` (from 0) is watched in
//!   proportion to `1 / (r + 1)`. [`World::sample_channel`] draws from it.
//! - **Topics** have Zipf-distributed sizes (exponent 0.9, the big topics chosen by the
//!   seed); a channel's topic is drawn from them by its hash.
//! - **Cadence**: a channel uploads every `interval` seconds with a jitter below one
//!   interval, from several a day to monthly (log-uniform), so its uploads up to any
//!   instant are known without listing them ([`World::uploads_until`]): time moves in
//!   the world by asking about a later instant.
//! - **Ids**: a video id's 64 bits are a keyed permutation (a Feistel network) of
//!   `(channel, upload number)`; a channel id carries its permuted rank and a tag from
//!   the seed, so a foreign id is recognised as such.
//! - **Details**: a channel's title, handle and counts, and each upload's title,
//!   description, tags, duration and counts, are made from its topic's words by the same
//!   generator as the materialised corpus's (`corpus::gen_video`), on a random stream of
//!   their own ([`World::channel_details`], [`World::video_details`]).

use crate::corpus::{
    Channel, Rng, Topic, Video, Vocab, draw3, gen_video, round_3_significant, topics_and_vocab, ts,
    zipf_topic_weights,
};
use crate::topics::{COUNTRIES, FIRST_NAMES, TOPICS};

/// The fewest channels a world should have to stand in for a real app's (the scale
/// simulation's floor).
pub const REALISTIC_CHANNELS: u32 = 300_000;
/// Fewest and most uploads per day of a channel: monthly to several a day.
pub const MIN_UPLOADS_PER_DAY: f64 = 1.0 / 30.0;
pub const MAX_UPLOADS_PER_DAY: f64 = 4.0;
/// The first uploads of the oldest channels are this long before the world's epoch.
const MAX_CHANNEL_AGE_SECS: i64 = 6 * 365 * 86_400;
/// Video numbers are 40 bits: a channel uploading four times a day would need 750
/// million years to run out.
const SEQ_BITS: u32 = 40;
/// Ranks drawn exactly from a table; beyond them the draw inverts the integral.
const ZIPF_HEAD: u32 = 1024;
/// Channel ranks are 24 bits: up to 16.7 million channels.
pub const MAX_CHANNELS: u32 = 1 << 24;
/// Channels per topic that search looks at.
const TOPIC_HEAD: usize = 256;

const ID_ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
/// The last character of a video id carries 4 bits (as in real ids, which are 8 bytes
/// in base64), a channel id's 2 bits.
const VIDEO_LAST: &[u8; 16] = b"AEIMQUYcgkosw048";
const CHANNEL_LAST: &[u8; 4] = b"AQgw";

/// splitmix64's finaliser: a well-mixed hash of one word.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A uniform number in [0, 1) from a hash.
fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// The procedural world: a seed, a size, and the topics' shares.
#[derive(Debug, Clone)]
pub struct World {
    seed: u64,
    channels: u32,
    /// Cumulative share of channels per topic (index into `TOPICS`), ending at 1.
    topic_cdf: Vec<f64>,
    /// Cumulative weights `1/(r+1)` of the head ranks (exact draws where they matter).
    head_cdf: Vec<f64>,
    /// The sum of every rank's weight (the harmonic number of `channels`).
    total_weight: f64,
    /// The instant channel ages count back from (seconds since the Unix epoch).
    epoch_secs: i64,
    /// The topics' words, shared with the materialised corpus (text is made from them).
    topics: Vec<Topic>,
    vocab: Vocab,
    /// Per topic, its most popular channels (ranks, most watched first): where search
    /// looks, as YouTube's ranking favours the channels people watch.
    topic_heads: Vec<Vec<u32>>,
}

/// What a channel is, derived from its rank.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelSpec {
    pub rank: u32,
    pub id: String,
    pub uploads_playlist_id: String,
    /// Index into the fake's topic list.
    pub topic: usize,
    pub uploads_per_day: f64,
    /// Its first upload's base time; upload `n` is at `first + n * interval + jitter`.
    pub first_upload_secs: i64,
    pub interval_secs: i64,
}

impl World {
    /// A world of `channels` channels (at most [`MAX_CHANNELS`]) whose channel ages count
    /// back from `epoch_secs`.
    pub fn new(seed: u64, channels: u32, epoch_secs: i64) -> World {
        assert!(
            (1..=MAX_CHANNELS).contains(&channels),
            "a world has 1 to {MAX_CHANNELS} channels, not {channels}"
        );
        // Zipf-like topic sizes; which topics are big is the seed's choice.
        let weights = zipf_topic_weights(&mut Rng::new(mix(seed ^ 0x7091_C5EE_D000)), TOPICS.len());
        let total: f64 = weights.iter().sum();
        let mut acc = 0.0;
        let mut topic_cdf: Vec<f64> = weights
            .iter()
            .map(|w| {
                acc += w / total;
                acc
            })
            .collect();
        *topic_cdf.last_mut().expect("there are topics") = 1.0;
        let head = channels.min(ZIPF_HEAD);
        let mut acc = 0.0;
        let head_cdf: Vec<f64> = (0..head)
            .map(|r| {
                acc += 1.0 / (f64::from(r) + 1.0);
                acc
            })
            .collect();
        // The tail's weights summed as an integral: sum_{r=K}^{N-1} 1/(r+1) ≈ ln((N+0.5)/(K+0.5)).
        let tail = (f64::from(channels) + 0.5).ln() - (f64::from(head) + 0.5).ln();
        let (topics, vocab) = topics_and_vocab();
        let mut world = World {
            seed,
            channels,
            topics,
            vocab,
            topic_cdf,
            total_weight: acc + tail.max(0.0),
            head_cdf,
            epoch_secs,
            topic_heads: Vec::new(),
        };
        // The smallest topic has a share of about 0.3%: a few hundred thousand ranks fill
        // every topic's head; the scan stops there, so a huge world starts as fast.
        let mut heads = vec![Vec::with_capacity(TOPIC_HEAD); TOPICS.len()];
        let mut short = heads.len();
        for rank in 0..channels {
            let head = &mut heads[world.channel_topic(rank)];
            if head.len() < TOPIC_HEAD {
                head.push(rank);
                if head.len() == TOPIC_HEAD {
                    short -= 1;
                    if short == 0 {
                        break;
                    }
                }
            }
        }
        world.topic_heads = heads;
        world
    }

    /// The topics' names and words (index = a channel's `topic`).
    pub fn topics(&self) -> &[Topic] {
        &self.topics
    }

    pub fn channel_count(&self) -> u32 {
        self.channels
    }

    fn hash(&self, salt: u64, a: u64, b: u64) -> u64 {
        mix(self.seed ^ mix(salt ^ mix(a ^ mix(b))))
    }

    /// A keyed permutation of 64 bits (four Feistel rounds on 32-bit halves).
    fn permute(&self, x: u64) -> u64 {
        let (mut l, mut r) = ((x >> 32) as u32, x as u32);
        for round in 0..4u64 {
            let f = self.hash(0x0FE1_57E1, round, u64::from(r)) as u32;
            (l, r) = (r, l ^ f);
        }
        (u64::from(l) << 32) | u64::from(r)
    }

    fn unpermute(&self, y: u64) -> u64 {
        let (mut l, mut r) = ((y >> 32) as u32, y as u32);
        for round in (0..4u64).rev() {
            let f = self.hash(0x0FE1_57E1, round, u64::from(l)) as u32;
            (l, r) = (r ^ f, l);
        }
        (u64::from(l) << 32) | u64::from(r)
    }

    /// The channel of popularity rank `rank` (0 is the most watched).
    pub fn channel(&self, rank: u32) -> ChannelSpec {
        let suffix = self.channel_suffix(rank);
        let topic = self.channel_topic(rank);
        let (uploads_per_day, first_upload_secs, interval_secs) = self.cadence(rank);
        ChannelSpec {
            rank,
            id: format!("UC{suffix}"),
            uploads_playlist_id: format!("UU{suffix}"),
            topic,
            uploads_per_day,
            first_upload_secs,
            interval_secs,
        }
    }

    /// A channel's uploads per day, first upload (seconds) and slot length (seconds).
    fn cadence(&self, rank: u32) -> (f64, i64, i64) {
        let (lo, hi) = (MIN_UPLOADS_PER_DAY.ln(), MAX_UPLOADS_PER_DAY.ln());
        let uploads_per_day = (lo + (hi - lo) * unit(self.hash(0xCADE, u64::from(rank), 0))).exp();
        let interval_secs = ((86_400.0 / uploads_per_day) as i64).max(60);
        let age = (unit(self.hash(0xA6E, u64::from(rank), 0)) * MAX_CHANNEL_AGE_SECS as f64) as i64;
        (
            uploads_per_day,
            self.epoch_secs - age - 86_400,
            interval_secs,
        )
    }

    /// [`World::upload_time`] of upload `n` of the channel of rank `rank`, without
    /// making the channel's ids (a simulation asks it for every video it serves).
    pub fn upload_time_of(&self, rank: u32, n: u64) -> i64 {
        let (_, first_upload_secs, interval_secs) = self.cadence(rank);
        let jitter = unit(self.hash(0x717, u64::from(rank), n)) * 0.8 * interval_secs as f64;
        first_upload_secs + n as i64 * interval_secs + jitter as i64
    }

    /// The 22 characters after `UC` / `UU`: the permuted rank (64 bits, 11 characters)
    /// and a tag of the seed (the rest).
    fn channel_suffix(&self, rank: u32) -> String {
        let mut s = String::with_capacity(22);
        push_bits(&mut s, self.permute(u64::from(rank)), 11);
        let tag = self.hash(0x7A6, 0, 0);
        push_bits(&mut s, tag, 10);
        s.push(CHANNEL_LAST[(tag >> 60) as usize & 3] as char);
        s
    }

    /// The rank of a channel id (`UC…`) or uploads playlist id (`UU…`) of this world.
    pub fn channel_rank(&self, id: &str) -> Option<u32> {
        let suffix = id.strip_prefix("UC").or_else(|| id.strip_prefix("UU"))?;
        if suffix.len() != 22 {
            return None;
        }
        let rank = self.unpermute(read_bits(&suffix[..11])?);
        let rank = u32::try_from(rank).ok().filter(|&r| r < self.channels)?;
        (self.channel_suffix(rank) == suffix).then_some(rank)
    }

    /// When upload `n` of a channel is published (seconds since the Unix epoch): its
    /// slot plus a jitter below one interval, so uploads are in order.
    pub fn upload_time(&self, channel: &ChannelSpec, n: u64) -> i64 {
        let jitter =
            unit(self.hash(0x717, u64::from(channel.rank), n)) * 0.8 * channel.interval_secs as f64;
        channel.first_upload_secs + n as i64 * channel.interval_secs + jitter as i64
    }

    /// How many uploads the channel has published by `now_secs` (uploads `0..count`).
    pub fn uploads_until(&self, channel: &ChannelSpec, now_secs: i64) -> u64 {
        if now_secs < channel.first_upload_secs {
            return 0;
        }
        let slots = ((now_secs - channel.first_upload_secs) / channel.interval_secs) as u64;
        // Slot `slots` may have begun with its upload not yet out.
        if self.upload_time(channel, slots) <= now_secs {
            slots + 1
        } else {
            slots
        }
    }

    /// The id of upload `n` of the channel of rank `rank`.
    pub fn video_id(&self, rank: u32, n: u64) -> String {
        assert!(n < 1 << SEQ_BITS, "upload number {n} is out of range");
        let bits = self.permute((u64::from(rank) << SEQ_BITS) | n);
        let mut s = String::with_capacity(11);
        push_bits(&mut s, bits >> 4, 10);
        s.push(VIDEO_LAST[(bits & 15) as usize] as char);
        s
    }

    /// The channel rank and upload number of a video id of this world, if it was
    /// published by `now_secs`.
    pub fn video(&self, id: &str, now_secs: i64) -> Option<(u32, u64)> {
        let (rank, n) = self.decode_video(id)?;
        let channel = self.channel(rank);
        (n < self.uploads_until(&channel, now_secs)).then_some((rank, n))
    }

    /// The channel rank and upload number a video id of this world encodes, published
    /// or not.
    pub fn decode_video(&self, id: &str) -> Option<(u32, u64)> {
        if id.len() != 11 {
            return None;
        }
        let last = VIDEO_LAST.iter().position(|&c| c == id.as_bytes()[10])? as u64;
        let bits = (read_bits(&id[..10])? << 4) | last;
        let plain = self.unpermute(bits);
        let (rank, n) = ((plain >> SEQ_BITS) as u32, plain & ((1 << SEQ_BITS) - 1));
        (rank < self.channels).then_some((rank, n))
    }

    /// A channel drawn by popularity (Zipf, exponent 1) from `u` in [0, 1): rank `r` with
    /// probability about `1 / ((r + 1) H)`.
    pub fn sample_channel(&self, u: f64) -> u32 {
        let x = u * self.total_weight;
        let head_total = self.head_cdf.last().copied().unwrap_or(0.0);
        if x < head_total {
            return self.head_cdf.partition_point(|&c| c <= x) as u32;
        }
        // In the tail: ln((r+1.5)/(K+0.5)) = x - head_total, solved for r.
        let k = self.head_cdf.len() as f64;
        let rank = (k + 0.5) * (x - head_total).exp() - 0.5;
        (rank as u32).clamp(self.head_cdf.len() as u32, self.channels - 1)
    }

    /// A channel of `topic` drawn by popularity: draws from the whole world until one is
    /// of the topic (a topic of share p takes about 1/p draws of a hash each).
    pub fn sample_channel_in_topic(&self, topic: usize, stream: u64) -> Option<u32> {
        (0..20_000u64)
            .map(|i| self.sample_channel(unit(self.hash(0x5A3, stream, i))))
            .find(|&rank| self.channel_topic(rank) == topic)
    }

    /// The topic of a channel without the rest of it.
    pub fn channel_topic(&self, rank: u32) -> usize {
        self.sample_topic(unit(self.hash(0xC4A7, u64::from(rank), 0)))
    }

    /// A topic drawn by its share of channels.
    pub fn sample_topic(&self, u: f64) -> usize {
        self.topic_cdf
            .partition_point(|&c| c <= u)
            .min(self.topic_cdf.len() - 1)
    }
}

/// Channels whose uploads can make the `mostPopular` chart, and how far back it looks.
pub const CHART_CHANNELS: u32 = 2_000;
const CHART_WINDOW_SECS: i64 = 7 * 86_400;
/// A video has half its lifetime views this long after its upload.
const VIEWS_HALF_LIFE_SECS: f64 = 2.0 * 86_400.0;

/// How popular the most watched channel is (the scale of view and subscriber counts);
/// rank `r` gets this over `(r + 1)^0.6`.
const TOP_CHANNEL_POPULARITY: f64 = 3.0e5;

impl World {
    fn popularity(&self, rank: u32) -> f64 {
        TOP_CHANNEL_POPULARITY / (f64::from(rank) + 1.0).powf(0.6)
    }

    /// The channel of `rank` as the fake serves it: title, handle, description and
    /// counts made from its topic's words by its own random stream. Its upload count is
    /// [`World::uploads_until`], not the returned channel's (empty) upload list.
    pub fn channel_details(&self, rank: u32, now_secs: i64) -> Channel {
        let spec = self.channel(rank);
        let topic = &self.topics[spec.topic];
        let (title, words, mut rng) = self.channel_name(rank);
        // Titles repeat in a large world; the handle carries the rank to stay unique.
        let handle: String = title
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect::<String>()
            .to_lowercase();
        let popularity = self.popularity(rank);
        let uploads = self.uploads_until(&spec, now_secs);
        Channel {
            id: spec.id,
            uploads_playlist_id: spec.uploads_playlist_id,
            description: format!(
                "Welcome to {title}! New {} videos: {}, {} and more.",
                topic.name,
                self.vocab.word(words[0]),
                self.vocab.word(words[1]),
            ),
            custom_url: format!("@{handle}{rank}"),
            title,
            topic: topic.name.clone(),
            category_id: topic.category_id.clone(),
            published_at: ts(spec.first_upload_secs - 86_400),
            country: rng.chance(0.75).then(|| rng.pick(COUNTRIES).to_string()),
            subscriber_count: round_3_significant((popularity * (5.0 + 40.0 * rng.unit())) as u64),
            view_count: (popularity * 20.0 * uploads as f64) as u64,
            keywords: format!(
                "{} {}",
                self.vocab.word(words[0]),
                self.vocab.word(words[1])
            ),
            uploads: Vec::new(),
            topic_idx: spec.topic,
        }
    }

    /// Upload `n` of the channel of `rank` as it is at `now_secs` (its id from
    /// [`World::video_id`], its time from [`World::upload_time`]); its counts grow with
    /// its age ([`World::views_at`]).
    pub fn video_details(&self, rank: u32, n: u64, now_secs: i64) -> Video {
        let spec = self.channel(rank);
        let topic = &self.topics[spec.topic];
        let (channel_title, _, _) = self.channel_name(rank);
        let mut rng = Rng::new(self.hash(0x71DE0, u64::from(rank), n));
        let mut video = gen_video(
            &mut rng,
            &self.vocab,
            topic,
            &spec.id,
            &channel_title,
            self.upload_time(&spec, n),
            self.popularity(rank),
            |_, _| {},
        );
        video.id = self.video_id(rank, n);
        let views = self.views_at(&spec, n, now_secs);
        let scale = |count: u64| {
            (count as f64 * views as f64 / video.view_count.max(1) as f64).round() as u64
        };
        video.like_count = scale(video.like_count);
        video.comment_count = scale(video.comment_count);
        video.view_count = views;
        video
    }

    /// A video's views at `now_secs`: its lifetime views (heavy-tailed around its
    /// channel's popularity), most of them in its first days, so statistics and charts
    /// move as time does.
    pub fn views_at(&self, channel: &ChannelSpec, n: u64, now_secs: i64) -> u64 {
        let age = (now_secs - self.upload_time(channel, n)).max(0) as f64;
        let u = unit(self.hash(0x7135, u64::from(channel.rank), n)).max(1e-6);
        let lifetime = (self.popularity(channel.rank) * (1.0 / u).powf(0.9)).min(3.0e9);
        (lifetime * (1.0 - (-age / VIEWS_HALF_LIFE_SECS).exp2())) as u64
    }

    /// The `size` most popular uploads of the last week at `now_secs` (YouTube's
    /// `mostPopular` chart), among the [`CHART_CHANNELS`] most watched channels: views so
    /// far damped by age, so the chart changes through the day. `category` keeps one
    /// category's (a topic's category id).
    pub fn chart(&self, category: Option<&str>, now_secs: i64, size: usize) -> Vec<(u32, u64)> {
        let mut ranked: Vec<(f64, u32, u64)> = Vec::new();
        for rank in 0..self.channels.min(CHART_CHANNELS) {
            if category.is_some_and(|c| self.topics[self.channel_topic(rank)].category_id != c) {
                continue;
            }
            let spec = self.channel(rank);
            let count = self.uploads_until(&spec, now_secs);
            let first = self.uploads_until(&spec, now_secs - CHART_WINDOW_SECS);
            for n in first..count {
                let age_days = (now_secs - self.upload_time(&spec, n)) as f64 / 86_400.0;
                let score =
                    self.views_at(&spec, n, now_secs) as f64 / (1.0 + age_days / 7.0).powf(1.5);
                ranked.push((score, rank, n));
            }
        }
        let by_score = |a: &(f64, u32, u64), b: &(f64, u32, u64)| {
            b.0.total_cmp(&a.0)
                .then_with(|| (a.1, a.2).cmp(&(b.1, b.2)))
        };
        if ranked.len() > size {
            ranked.select_nth_unstable_by(size, by_score);
            ranked.truncate(size);
        }
        ranked.sort_by(by_score);
        ranked.into_iter().map(|(_, rank, n)| (rank, n)).collect()
    }

    /// The topics a query's words belong to, most words matched first (ties by topic
    /// index): a topic matches a word of its name or of its vocabulary.
    pub fn topics_for_query(&self, terms: &[String]) -> Vec<usize> {
        let ids: Vec<u32> = terms.iter().filter_map(|t| self.vocab.get(t)).collect();
        let mut matched: Vec<(usize, usize)> = self
            .topics
            .iter()
            .enumerate()
            .map(|(i, t)| (ids.iter().filter(|w| t.words.contains(w)).count(), i))
            .filter(|(hits, _)| *hits > 0)
            .collect();
        matched.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        matched.into_iter().map(|(_, i)| i).collect()
    }

    /// A topic's most watched channels (at most 256), most watched first.
    pub fn topic_channels(&self, topic: usize) -> &[u32] {
        &self.topic_heads[topic]
    }

    /// The channel whose handle (`@…`, as [`World::channel_details`] makes it) this is.
    pub fn channel_by_handle(&self, handle: &str, now_secs: i64) -> Option<u32> {
        let h = handle.trim_start_matches('@').to_lowercase();
        let digits = h.len() - h.trim_end_matches(|c: char| c.is_ascii_digit()).len();
        let rank: u32 = h[h.len() - digits..].parse().ok()?;
        (rank < self.channels
            && self
                .channel_details(rank, now_secs)
                .custom_url
                .to_lowercase()
                == format!("@{h}"))
        .then_some(rank)
    }

    /// A channel's title, the topic words it was made from, and its random stream after
    /// them (the rest of the channel is drawn from it).
    fn channel_name(&self, rank: u32) -> (String, [u32; 3], Rng) {
        let topic = &self.topics[self.channel_topic(rank)];
        let mut rng = Rng::new(self.hash(0xD37A, u64::from(rank), 0));
        let words = draw3(&mut rng, &topic.words);
        let (a, b) = (self.vocab.titled(words[0]), self.vocab.titled(words[1]));
        let person = *rng.pick(FIRST_NAMES);
        let title = match rng.below(6) {
            0 => format!("{person}'s {a} Corner"),
            1 => format!("{a} {b} TV"),
            2 => format!("The {a} Lab"),
            3 => format!("{person} {}", topic.title),
            4 => format!("{a} Academy"),
            _ => format!("{person} Does {a}"),
        };
        (title, words, rng)
    }
}

/// The most channels a user's history covers.
pub const MAX_USER_CHANNELS: usize = 200;
/// Median channels in a user's history; the spread is log-normal (σ = 1), so a few
/// users watch tens of channels and most a handful.
const MEDIAN_USER_CHANNELS: f64 = 6.0;
/// The share of a user's channels drawn from their own topics (the rest from anywhere).
const IN_TOPIC_SHARE: f64 = 0.7;

/// A user of the world: the topics they follow and the channels they watch, drawn from
/// the same long tail as everyone's, so distinct channels grow with the number of users
/// as they would for a real app.
#[derive(Debug, Clone, PartialEq)]
pub struct UserSpec {
    pub topics: Vec<usize>,
    /// Distinct channel ranks, most watched first.
    pub channels: Vec<u32>,
}

impl World {
    /// User number `index` (deterministic for the seed).
    pub fn user(&self, index: u64) -> UserSpec {
        let h = |salt: u64, i: u64| self.hash(0x05E7 ^ salt, index, i);
        let topic_count = 1 + (h(1, 0) % 3) as usize;
        let mut topics = Vec::with_capacity(topic_count);
        for i in 0..topic_count as u64 * 4 {
            let t = self.sample_topic(unit(h(2, i)));
            if !topics.contains(&t) {
                topics.push(t);
            }
            if topics.len() == topic_count {
                break;
            }
        }
        // Log-normal history size (Box-Muller from two hashes).
        let (u1, u2) = (unit(h(3, 0)).max(1e-12), unit(h(3, 1)));
        let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        let wanted = ((MEDIAN_USER_CHANNELS.ln() + z).exp().round() as usize)
            .clamp(1, MAX_USER_CHANNELS)
            .min(self.channels as usize);
        let mut channels: Vec<u32> = Vec::with_capacity(wanted);
        let mut draw = 0u64;
        while channels.len() < wanted && draw < wanted as u64 * 50 {
            let pick = if unit(h(4, draw)) < IN_TOPIC_SHARE {
                let topic = topics[(h(5, draw) % topics.len() as u64) as usize];
                self.sample_channel_in_topic(topic, h(6, draw))
            } else {
                Some(self.sample_channel(unit(h(7, draw))))
            };
            draw += 1;
            if let Some(rank) = pick
                && !channels.contains(&rank)
            {
                channels.push(rank);
            }
        }
        UserSpec { topics, channels }
    }
}

/// Appends `chars` base64 characters of `bits`, most significant first.
fn push_bits(s: &mut String, bits: u64, chars: u32) {
    for i in (0..chars).rev() {
        let shift = i * 6;
        let v = if shift >= 64 { 0 } else { (bits >> shift) & 63 };
        s.push(ID_ALPHABET[v as usize] as char);
    }
}

/// The bits of base64 characters, most significant first (at most 64 bits' worth).
fn read_bits(s: &str) -> Option<u64> {
    s.bytes().try_fold(0u64, |acc, c| {
        let v = ID_ALPHABET.iter().position(|&a| a == c)? as u64;
        Some(acc.checked_mul(64)? | v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    const EPOCH: i64 = 1_793_491_200; // 2026-11-01T00:00:00Z

    fn world() -> World {
        World::new(7, REALISTIC_CHANNELS, EPOCH)
    }

    #[test]
    fn ids_decode_to_what_made_them_and_foreign_ids_do_not() {
        let w = world();
        let other = World::new(8, REALISTIC_CHANNELS, EPOCH);
        let mut seen = HashSet::new();
        for rank in (0..REALISTIC_CHANNELS)
            .step_by(997)
            .chain([REALISTIC_CHANNELS - 1])
        {
            let c = w.channel(rank);
            assert_eq!(c.id.len(), 24);
            assert!(seen.insert(c.id.clone()), "two channels share {}", c.id);
            assert_eq!(w.channel_rank(&c.id), Some(rank));
            assert_eq!(w.channel_rank(&c.uploads_playlist_id), Some(rank));
            assert_eq!(
                other.channel_rank(&c.id),
                None,
                "another seed's world took {}",
                c.id
            );
            let n = w.uploads_until(&c, EPOCH);
            assert!(n > 0, "channel {rank} has no uploads by the epoch");
            let id = w.video_id(rank, n - 1);
            assert_eq!(id.len(), 11);
            assert!(id.bytes().all(|b| ID_ALPHABET.contains(&b)));
            assert_eq!(w.video(&id, EPOCH), Some((rank, n - 1)));
            assert_eq!(w.upload_time_of(rank, n - 1), w.upload_time(&c, n - 1));
            // Not yet published: unknown, as on YouTube.
            assert_eq!(w.video(&w.video_id(rank, n), EPOCH), None);
        }
        assert_eq!(w.channel_rank("UCxxxxxxxxxxxxxxxxxxxxxx"), None);
        assert_eq!(w.video("short", EPOCH), None);
    }

    #[test]
    fn the_same_seed_makes_the_same_world() {
        let (a, b) = (world(), world());
        for rank in [0, 1, 12_345, REALISTIC_CHANNELS - 1] {
            assert_eq!(a.channel(rank), b.channel(rank));
            assert_eq!(a.video_id(rank, 3), b.video_id(rank, 3));
        }
    }

    #[test]
    fn uploads_come_in_order_at_each_channels_cadence_as_time_moves() {
        let w = world();
        let mut rates = Vec::new();
        for rank in (0..REALISTIC_CHANNELS).step_by(3001) {
            let c = w.channel(rank);
            assert!(
                (MIN_UPLOADS_PER_DAY..=MAX_UPLOADS_PER_DAY * 1.001).contains(&c.uploads_per_day)
            );
            rates.push(c.uploads_per_day);
            let n = w.uploads_until(&c, EPOCH);
            for k in n.saturating_sub(5)..n + 5 {
                assert!(w.upload_time(&c, k) < w.upload_time(&c, k + 1));
            }
            // Exactly the uploads published by an instant are counted.
            for now in [EPOCH, EPOCH + 3_600, EPOCH + 7 * 86_400] {
                let count = w.uploads_until(&c, now);
                assert!(w.upload_time(&c, count - 1) <= now);
                assert!(w.upload_time(&c, count) > now);
            }
            // A week later the channel has about a week of uploads more.
            let week = w.uploads_until(&c, EPOCH + 7 * 86_400) - n;
            let expected = 7.0 * c.uploads_per_day;
            assert!(
                (week as f64 - expected).abs() <= 2.0,
                "{week} uploads in a week at {} a day",
                c.uploads_per_day
            );
        }
        rates.sort_by(f64::total_cmp);
        // Several a day to monthly.
        assert!(rates[rates.len() / 20] < 0.1 && rates[rates.len() * 19 / 20] > 2.0);
    }

    #[test]
    fn popularity_is_zipf_and_distinct_channels_grow_with_users() {
        let w = world();
        let draws = 1_000_000u64;
        let mut top = [0u64; 4];
        let mut seen = HashSet::new();
        let mut beyond_10k = 0u64;
        for i in 0..draws {
            let r = w.sample_channel(unit(mix(i ^ 0xD1CE)));
            if (r as usize) < top.len() {
                top[r as usize] += 1;
            }
            beyond_10k += u64::from(r >= 10_000);
            seen.insert(r);
        }
        // The tail's share is the harmonic tail's: (H(300,000) - H(10,000)) / H(300,000).
        let h = |n: f64| n.ln() + 0.577_215_664_9 + 1.0 / (2.0 * n);
        let expected = (h(300_000.0) - h(10_000.0)) / h(300_000.0);
        let share = beyond_10k as f64 / draws as f64;
        assert!(
            (share - expected).abs() < 0.01,
            "{share} beyond rank 10,000, expected {expected}"
        );
        // Rank 0 about twice rank 1, three times rank 2 (exponent 1).
        let ratio = |a: usize, b: usize| top[a] as f64 / top[b] as f64;
        assert!((ratio(0, 1) - 2.0).abs() < 0.2, "{top:?}");
        assert!((ratio(0, 2) - 3.0).abs() < 0.3, "{top:?}");
        // A long tail: a million draws reach a large part of 300,000 channels.
        assert!(seen.len() > 100_000, "{} distinct", seen.len());
    }

    #[test]
    fn topics_have_zipf_sizes_and_topic_draws_stay_in_their_topic() {
        let w = world();
        let mut counts = vec![0u32; TOPICS.len()];
        for rank in 0..100_000 {
            counts[w.channel_topic(rank)] += 1;
        }
        let mut sorted = counts.clone();
        sorted.sort_unstable_by(|a, b| b.cmp(a));
        assert!(sorted[0] > 4 * sorted[sorted.len() / 2], "{sorted:?}");
        assert!(sorted.iter().all(|&c| c > 0), "an empty topic: {sorted:?}");
        let smallest = counts
            .iter()
            .enumerate()
            .min_by_key(|(_, c)| **c)
            .unwrap()
            .0;
        for stream in 0..50 {
            let rank = w
                .sample_channel_in_topic(smallest, stream)
                .expect("a channel");
            assert_eq!(w.channel_topic(rank), smallest);
            assert_eq!(w.channel(rank).topic, smallest);
        }
    }

    #[test]
    fn users_follow_their_topics_and_their_histories_are_heavy_tailed() {
        let w = world();
        let users: Vec<UserSpec> = (0..2_000).map(|i| w.user(i)).collect();
        assert_eq!(w.user(17), users[17], "a user is the same every time");
        let mut sizes: Vec<usize> = users.iter().map(|u| u.channels.len()).collect();
        sizes.sort_unstable();
        let (p50, p99) = (sizes[sizes.len() / 2], sizes[sizes.len() * 99 / 100]);
        assert!((4..=8).contains(&p50), "median history {p50} channels");
        assert!(
            p99 >= 40,
            "the heaviest users watch tens of channels: p99 {p99}"
        );
        let mut in_topic = 0usize;
        let mut total = 0usize;
        for u in &users {
            assert!((1..=3).contains(&u.topics.len()));
            let distinct: HashSet<_> = u.channels.iter().collect();
            assert_eq!(
                distinct.len(),
                u.channels.len(),
                "a channel twice in a history"
            );
            in_topic += u
                .channels
                .iter()
                .filter(|&&c| u.topics.contains(&w.channel_topic(c)))
                .count();
            total += u.channels.len();
        }
        let share = in_topic as f64 / total as f64;
        assert!(share > 0.7, "{share} of channels in the user's topics");
    }

    #[test]
    fn channels_and_videos_have_details_made_from_their_topic_and_are_stable() {
        let w = world();
        let mut handles = HashSet::new();
        let (mut top_subs, mut tail_subs) = (0u64, 0u64);
        for rank in (0..REALISTIC_CHANNELS).step_by(2_999) {
            let c = w.channel_details(rank, EPOCH);
            let spec = w.channel(rank);
            assert_eq!((c.id.as_str(), c.topic_idx), (spec.id.as_str(), spec.topic));
            assert_eq!(c.topic, w.topics[spec.topic].name);
            assert!(!c.title.is_empty() && c.custom_url.starts_with('@'));
            assert!(
                handles.insert(c.custom_url.clone()),
                "two channels are {}",
                c.custom_url
            );
            let again = w.channel_details(rank, EPOCH);
            assert_eq!(
                (
                    &again.title,
                    &again.custom_url,
                    again.subscriber_count,
                    &again.country
                ),
                (&c.title, &c.custom_url, c.subscriber_count, &c.country),
                "a channel is the same every time"
            );
            if rank < 30_000 {
                top_subs += c.subscriber_count;
            } else if rank >= 270_000 {
                tail_subs += c.subscriber_count;
            }
            let n = w.uploads_until(&spec, EPOCH) - 1;
            let v = w.video_details(rank, n, EPOCH);
            assert_eq!(v.id, w.video_id(rank, n));
            assert_eq!(v.channel_id, c.id);
            assert_eq!(v.channel_title, c.title);
            assert_eq!(v.topic, c.topic);
            assert_eq!(v.published_at.as_second(), w.upload_time(&spec, n));
            assert!(!v.title.is_empty() && v.duration_secs > 0);
            let again = w.video_details(rank, n, EPOCH);
            assert_eq!((again.title, again.view_count), (v.title, v.view_count));
        }
        // Popular channels have more subscribers (a tenth of the ranks each).
        assert!(top_subs > 3 * tail_subs, "{top_subs} against {tail_subs}");
    }
}
