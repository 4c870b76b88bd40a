//! The fake's world: topics, channels and videos, drawn from the seed.
//!
//! Everything is derived from the seed and a fixed epoch (never the clock),
//! so two fakes with the same seed serve byte-identical responses and a test
//! can name a channel it saw yesterday. Text is built from per-topic word
//! lists and the word ids are recorded while generating, which gives search
//! an inverted index for free (no tokenizing 40,000 descriptions at start).

use std::collections::{HashMap, HashSet};

use jiff::Timestamp;

use crate::topics::{COUNTRIES, FIRST_NAMES, TOPICS};

/// Publish dates are spread over the three years before this instant.
pub const CORPUS_EPOCH_SECS: i64 = 1_793_491_200; // 2026-11-01T00:00:00Z
const SPAN_SECS: i64 = 3 * 365 * 86_400;

/// splitmix64: tiny, fast, and stable across platforms and crate versions.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }
    pub(crate) fn range(&mut self, lo: u64, hi_inclusive: u64) -> u64 {
        lo + self.below(hi_inclusive - lo + 1)
    }
    /// Uniform in [0, 1).
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

const ID_ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Real ids encode whole bytes in base64, so their last character only takes
/// a few values (4 for channel ids' 22 chars, 16 for video ids' 11); clients
/// that validate ids with Google's patterns accept the fake's too.
fn random_video_id(rng: &mut Rng) -> String {
    let mut id = random_id(rng, 10);
    id.push(*rng.pick(b"AEIMQUYcgkosw048") as char);
    id
}

fn random_channel_suffix(rng: &mut Rng) -> String {
    let mut id = random_id(rng, 21);
    id.push(*rng.pick(b"AQgw") as char);
    id
}

fn random_id(rng: &mut Rng, len: usize) -> String {
    let mut s = String::with_capacity(len);
    let mut bits = 0u64;
    let mut left = 0;
    for _ in 0..len {
        if left == 0 {
            bits = rng.next_u64();
            left = 10;
        }
        s.push(ID_ALPHABET[(bits & 63) as usize] as char);
        bits >>= 6;
        left -= 1;
    }
    s
}

/// FNV-1a: the id maps are filled 40,000 times at start in an unoptimized
/// build, where SipHash is the slow part; ids are random, so no flooding risk.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Fnv(u64);

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for b in bytes {
            h = (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        self.0 = h;
    }
}

pub(crate) type FastMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<Fnv>>;

fn fast_map<K, V>(capacity: usize) -> FastMap<K, V> {
    FastMap::with_capacity_and_hasher(capacity, Default::default())
}

/// A topic and the share of the corpus it got.
#[derive(Debug, Clone)]
pub struct Topic {
    pub name: String,
    pub category_id: String,
    pub channel_count: usize,
    pub video_count: usize,
    /// The name in Title Case, as it appears in titles.
    pub(crate) title: String,
    pub(crate) words: Vec<u32>,
    pub(crate) name_words: Vec<u32>,
    pub(crate) channels: Vec<usize>,
    pub(crate) videos: Vec<usize>,
}

#[derive(Debug, Clone)]
pub struct Channel {
    pub id: String,
    pub uploads_playlist_id: String,
    pub title: String,
    pub description: String,
    /// `@handle`, as Google returns in `snippet.customUrl`.
    pub custom_url: String,
    pub topic: String,
    pub category_id: String,
    pub published_at: Timestamp,
    pub country: Option<String>,
    pub subscriber_count: u64,
    pub view_count: u64,
    pub keywords: String,
    /// Indices into the corpus's videos, newest first (the uploads playlist order).
    pub(crate) uploads: Vec<usize>,
    pub(crate) topic_idx: usize,
}

impl Channel {
    pub fn video_count(&self) -> usize {
        self.uploads.len()
    }
}

#[derive(Debug, Clone)]
pub struct Video {
    pub id: String,
    pub channel_id: String,
    pub channel_title: String,
    pub topic: String,
    pub category_id: String,
    pub title: String,
    pub description: String,
    pub tags: Vec<String>,
    pub duration_secs: u32,
    pub published_at: Timestamp,
    pub view_count: u64,
    pub like_count: u64,
    pub comment_count: u64,
    /// "hd" or "sd".
    pub definition: &'static str,
    pub caption: bool,
    pub licensed_content: bool,
    pub has_maxres: bool,
    pub default_audio_language: Option<&'static str>,
}

/// Lower-cased alphanumeric tokens: the fake's notion of a "term".
pub(crate) fn tokenize(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(|t| t.to_lowercase())
}

fn title_case(word: &str) -> String {
    let mut c = word.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

#[derive(Debug, Default, Clone)]
pub(crate) struct Vocab {
    words: Vec<String>,
    titled: Vec<String>,
    by_word: HashMap<String, u32>,
}

impl Vocab {
    pub(crate) fn intern(&mut self, word: &str) -> u32 {
        if let Some(&id) = self.by_word.get(word) {
            return id;
        }
        let id = self.words.len() as u32;
        self.words.push(word.to_string());
        self.titled.push(title_case(word));
        self.by_word.insert(word.to_string(), id);
        id
    }
    pub(crate) fn get(&self, word: &str) -> Option<u32> {
        self.by_word.get(word).copied()
    }
    pub(crate) fn word(&self, id: u32) -> &str {
        &self.words[id as usize]
    }
    pub(crate) fn titled(&self, id: u32) -> &str {
        &self.titled[id as usize]
    }
}

/// The topic list with each topic's words interned: what every world shares.
pub(crate) fn topics_and_vocab() -> (Vec<Topic>, Vocab) {
    let mut vocab = Vocab::default();
    let topics: Vec<Topic> = TOPICS
        .iter()
        .map(|t| {
            let name_words: Vec<u32> = tokenize(t.name).map(|w| vocab.intern(&w)).collect();
            let mut words: Vec<u32> = t
                .words
                .iter()
                .flat_map(|w| tokenize(w).collect::<Vec<_>>())
                .map(|w| vocab.intern(&w))
                .collect();
            for w in &name_words {
                if !words.contains(w) {
                    words.push(*w);
                }
            }
            Topic {
                name: t.name.to_string(),
                category_id: t.category.to_string(),
                channel_count: 0,
                video_count: 0,
                title: t
                    .name
                    .split([' ', '-'])
                    .map(title_case)
                    .collect::<Vec<_>>()
                    .join(" "),
                words,
                name_words,
                channels: Vec::new(),
                videos: Vec::new(),
            }
        })
        .collect();
    (topics, vocab)
}

/// Zipf-like weights (exponent 0.9) of `topics` topics, the big ones chosen by `rng`.
pub(crate) fn zipf_topic_weights(rng: &mut Rng, topics: usize) -> Vec<f64> {
    let mut ranks: Vec<usize> = (0..topics).collect();
    for i in (1..ranks.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        ranks.swap(i, j);
    }
    ranks
        .iter()
        .map(|&r| 1.0 / ((r + 1) as f64).powf(0.9))
        .collect()
}

/// Field weights in the search index: a title hit beats a tag hit beats a description hit.
const W_TITLE: u8 = 3;
const W_TAG: u8 = 2;
const W_DESC: u8 = 1;

/// The whole generated world.
#[derive(Debug)]
pub struct Corpus {
    pub(crate) topics: Vec<Topic>,
    pub(crate) channels: Vec<Channel>,
    pub(crate) videos: Vec<Video>,
    video_by_id: FastMap<String, usize>,
    channel_by_id: FastMap<String, usize>,
    channel_by_uploads: FastMap<String, usize>,
    channel_by_handle: FastMap<String, usize>,
    topic_by_name: HashMap<String, usize>,
    pub(crate) vocab: Vocab,
    /// word id -> (video index, field weight)
    pub(crate) video_postings: Vec<Vec<(u32, u8)>>,
    /// word id -> channel indices
    pub(crate) channel_postings: Vec<Vec<u32>>,
    upload_rng: Rng,
}

impl Corpus {
    /// Generates the corpus for `seed` with `channel_count` channels.
    pub fn generate(seed: u64, channel_count: usize) -> Corpus {
        let mut rng = Rng::new(seed ^ 0x5EED_F00D_FA4E_0000);
        let (mut topics, vocab) = topics_and_vocab();
        let weights = zipf_topic_weights(&mut rng, topics.len());
        let total_weight: f64 = weights.iter().sum();

        let mut corpus = Corpus {
            topics: Vec::new(),
            channels: Vec::with_capacity(channel_count),
            videos: Vec::with_capacity(channel_count * 13),
            video_by_id: fast_map(channel_count * 13),
            channel_by_id: fast_map(channel_count),
            channel_by_uploads: fast_map(channel_count),
            channel_by_handle: fast_map(channel_count),
            topic_by_name: HashMap::new(),
            vocab: Vocab::default(),
            video_postings: Vec::new(),
            channel_postings: Vec::new(),
            upload_rng: Rng::new(seed ^ 0xABCD_EF01_2345_6789),
        };
        let mut postings: Vec<Vec<(u32, u8)>> = vec![Vec::new(); vocab.words.len()];
        let mut channel_postings: Vec<Vec<u32>> = vec![Vec::new(); vocab.words.len()];
        let mut handles: HashSet<String, std::hash::BuildHasherDefault<Fnv>> =
            HashSet::with_capacity_and_hasher(channel_count, Default::default());

        for c in 0..channel_count {
            let t = if c < topics.len() {
                c
            } else {
                let mut x = rng.unit() * total_weight;
                let mut chosen = weights.len() - 1;
                for (i, w) in weights.iter().enumerate() {
                    if x < *w {
                        chosen = i;
                        break;
                    }
                    x -= w;
                }
                chosen
            };
            let ci = corpus.channels.len();
            let topic = &topics[t];
            let cw = draw3(&mut rng, &topic.words);
            let (a, b) = (vocab.titled(cw[0]), vocab.titled(cw[1]));
            let person = *rng.pick(FIRST_NAMES);
            let topic_title = &topic.title;
            let title = match rng.below(9) {
                0 => format!("{person}'s {a} Corner"),
                1 => format!("{a} {b} TV"),
                2 => format!("The {a} Lab"),
                3 => format!("{person} {topic_title}"),
                4 => format!("{a} Academy"),
                5 => format!("Daily {a}"),
                6 => format!("{a} & {b} with {person}"),
                7 => format!("{topic_title} Central"),
                _ => format!("{person} Does {a}"),
            };
            let mut handle: String = title
                .chars()
                .filter(|c| c.is_ascii_alphanumeric())
                .collect::<String>()
                .to_lowercase();
            if handles.contains(&handle) {
                let base = handle.clone();
                let mut n = 2;
                while handles.contains(&handle) {
                    handle = format!("{base}{n}");
                    n += 1;
                }
            }
            handles.insert(handle.clone());
            let description = format!(
                "Welcome to {title}! New {} videos every week: {}, {} and more. Subscribe and join the community.",
                topic.name,
                vocab.word(cw[0]),
                vocab.word(cw[1]),
            );
            let mut ch_words = cw[..2].to_vec();
            ch_words.extend_from_slice(&topic.name_words);
            ch_words.sort_unstable();
            ch_words.dedup();
            for w in &ch_words {
                channel_postings[*w as usize].push(ci as u32);
            }
            let mut id22 = random_channel_suffix(&mut rng);
            while corpus.channel_by_id.contains_key(&format!("UC{id22}")) {
                id22 = random_channel_suffix(&mut rng);
            }
            let country = rng.chance(0.75).then(|| rng.pick(COUNTRIES).to_string());
            let keywords = ch_words
                .iter()
                .map(|w| vocab.word(*w))
                .collect::<Vec<_>>()
                .join(" ");

            // Popularity: most channels are small, a few are huge.
            let popularity = 10f64.powf(1.5 + 3.5 * rng.unit().powf(2.0));
            // 5..=25 videos, most channels nearer 5 (mean about 12).
            let nvid = 5 + (21.0 * rng.unit().powf(1.7)) as usize;
            let mut times: Vec<i64> = (0..nvid)
                .map(|_| CORPUS_EPOCH_SECS - 1 - rng.below(SPAN_SECS as u64) as i64)
                .collect();
            times.sort_unstable_by(|x, y| y.cmp(x));
            let channel_id = format!("UC{id22}");
            let mut uploads = Vec::with_capacity(nvid);
            let mut channel_views = 0u64;
            for secs in times {
                let vi = corpus.videos.len();
                let mut v = gen_video(
                    &mut rng,
                    &vocab,
                    topic,
                    &channel_id,
                    &title,
                    secs,
                    popularity,
                    |w, weight| postings[w as usize].push((vi as u32, weight)),
                );
                while let Some(other) = corpus.video_by_id.insert(v.id.clone(), vi) {
                    // Astronomically rare; keep the first owner of the id.
                    corpus.video_by_id.insert(v.id.clone(), other);
                    v.id = random_video_id(&mut rng);
                }
                channel_views += v.view_count;
                corpus.videos.push(v);
                uploads.push(vi);
            }
            let oldest = corpus.videos[*uploads.last().expect("channels have videos")]
                .published_at
                .as_second();
            let published = oldest - rng.below(4 * 365 * 86_400) as i64 - 86_400;
            let subs = round_3_significant((popularity * (5.0 + 40.0 * rng.unit())) as u64);
            let channel = Channel {
                id: channel_id.clone(),
                uploads_playlist_id: format!("UU{id22}"),
                title,
                description,
                custom_url: format!("@{handle}"),
                topic: topic.name.clone(),
                category_id: topic.category_id.clone(),
                published_at: ts(published),
                country,
                subscriber_count: subs,
                view_count: channel_views,
                keywords,
                uploads,
                topic_idx: t,
            };
            corpus.channel_by_id.insert(channel.id.clone(), ci);
            corpus
                .channel_by_uploads
                .insert(channel.uploads_playlist_id.clone(), ci);
            corpus.channel_by_handle.insert(handle, ci);
            let topic = &mut topics[t];
            topic.channels.push(ci);
            topic.videos.extend_from_slice(&channel.uploads);
            corpus.channels.push(channel);
        }
        for (i, t) in topics.iter_mut().enumerate() {
            t.channel_count = t.channels.len();
            t.video_count = t.videos.len();
            corpus.topic_by_name.insert(t.name.clone(), i);
        }
        corpus.topics = topics;
        corpus.vocab = vocab;
        corpus.video_postings = postings;
        corpus.channel_postings = channel_postings;
        corpus
    }

    pub fn video(&self, id: &str) -> Option<&Video> {
        self.video_by_id.get(id).map(|&i| &self.videos[i])
    }

    pub fn channel(&self, id: &str) -> Option<&Channel> {
        self.channel_by_id.get(id).map(|&i| &self.channels[i])
    }

    pub fn topics(&self) -> &[Topic] {
        &self.topics
    }

    pub fn channels(&self) -> &[Channel] {
        &self.channels
    }

    pub fn videos(&self) -> &[Video] {
        &self.videos
    }

    pub fn videos_of_topic<'a>(&'a self, topic: &str) -> impl Iterator<Item = &'a Video> + 'a {
        let idx = self.topic_by_name.get(topic).copied();
        idx.into_iter()
            .flat_map(move |t| self.topics[t].videos.iter().map(move |&i| &self.videos[i]))
    }

    pub fn channels_of_topic<'a>(&'a self, topic: &str) -> impl Iterator<Item = &'a Channel> + 'a {
        let idx = self.topic_by_name.get(topic).copied();
        idx.into_iter().flat_map(move |t| {
            self.topics[t]
                .channels
                .iter()
                .map(move |&i| &self.channels[i])
        })
    }

    /// A channel's uploads, newest first (the uploads playlist order).
    pub fn uploads_of<'a>(&'a self, channel_id: &str) -> Vec<&'a Video> {
        self.channel(channel_id)
            .map(|c| c.uploads.iter().map(|&i| &self.videos[i]).collect())
            .unwrap_or_default()
    }

    pub(crate) fn channel_index(&self, id: &str) -> Option<usize> {
        self.channel_by_id.get(id).copied()
    }

    pub(crate) fn channel_by_uploads(&self, playlist_id: &str) -> Option<usize> {
        self.channel_by_uploads.get(playlist_id).copied()
    }

    pub(crate) fn channel_by_handle(&self, handle: &str) -> Option<usize> {
        let h = handle.trim_start_matches('@').to_lowercase();
        self.channel_by_handle.get(&h).copied()
    }

    /// Adds a video to a channel, published at `at`, first in its uploads.
    /// Ids come from a seed-derived stream, so the same sequence of uploads
    /// gets the same ids on every run.
    pub fn publish_upload(
        &mut self,
        channel_id: &str,
        title: &str,
        tags: &[String],
        at: Timestamp,
    ) -> Option<String> {
        let ci = self.channel_index(channel_id)?;
        let mut id = random_video_id(&mut self.upload_rng);
        while self.video_by_id.contains_key(&id) {
            id = random_video_id(&mut self.upload_rng);
        }
        let vi = self.videos.len();
        let ch = &self.channels[ci];
        let topic_idx = ch.topic_idx;
        let description = format!("New upload from {}: {title}", ch.title);
        let v = Video {
            id: id.clone(),
            channel_id: ch.id.clone(),
            channel_title: ch.title.clone(),
            topic: ch.topic.clone(),
            category_id: ch.category_id.clone(),
            title: title.to_string(),
            description: description.clone(),
            tags: tags.to_vec(),
            duration_secs: 600,
            published_at: ts(at.as_second()),
            view_count: 0,
            like_count: 0,
            comment_count: 0,
            definition: "hd",
            caption: false,
            licensed_content: false,
            has_maxres: false,
            default_audio_language: Some("en"),
        };
        let index_words = |text: &str, weight: u8, corpus: &mut Corpus| {
            for w in tokenize(text) {
                let wid = corpus.vocab.intern(&w) as usize;
                if corpus.video_postings.len() <= wid {
                    corpus.video_postings.resize(wid + 1, Vec::new());
                    corpus.channel_postings.resize(wid + 1, Vec::new());
                }
                corpus.video_postings[wid].push((vi as u32, weight));
            }
        };
        index_words(title, W_TITLE, self);
        for t in tags {
            index_words(t, W_TAG, self);
        }
        index_words(&description, W_DESC, self);
        self.video_by_id.insert(id.clone(), vi);
        self.videos.push(v);
        self.channels[ci].uploads.insert(0, vi);
        let topic = &mut self.topics[topic_idx];
        topic.videos.push(vi);
        topic.video_count += 1;
        Some(id)
    }
}

pub(crate) fn ts(secs: i64) -> Timestamp {
    Timestamp::from_second(secs).expect("timestamp in range")
}

pub(crate) fn round_3_significant(n: u64) -> u64 {
    if n < 1000 {
        return n;
    }
    let mut scale = 1;
    while n / scale >= 1000 {
        scale *= 10;
    }
    n / scale * scale
}

/// Three distinct-ish words of a topic, without allocating (generation runs
/// 40,000+ times in an unoptimized test build).
pub(crate) fn draw3(rng: &mut Rng, pool: &[u32]) -> [u32; 3] {
    let n = pool.len() as u64;
    let a = rng.below(n) as usize;
    let b = (a + 1 + rng.below(n - 1) as usize) % pool.len();
    let mut c = rng.below(n) as usize;
    if c == a || c == b {
        c = (c + 2) % pool.len();
    }
    [pool[a], pool[b], pool[c]]
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn gen_video(
    rng: &mut Rng,
    vocab: &Vocab,
    topic: &Topic,
    channel_id: &str,
    channel_title: &str,
    published_secs: i64,
    popularity: f64,
    mut post: impl FnMut(u32, u8),
) -> Video {
    use std::fmt::Write as _;
    let id = random_video_id(rng);
    let tw = draw3(rng, &topic.words);
    let (a, b, c) = (
        vocab.titled(tw[0]),
        vocab.titled(tw[1]),
        vocab.titled(tw[2]),
    );
    let tt = topic.title.as_str();
    let n = rng.range(1, 250);
    let pick = rng.below(15);
    let title = match pick {
        0 => format!("{a} {b} for Beginners"),
        1 => format!("Top 10 {a} {b} Tips"),
        2 => format!("{a} vs {b}: Which Is Better?"),
        3 => format!("I Tried {a} {b} for 30 Days"),
        4 => format!("The Ultimate {a} Guide ({b} and {c})"),
        5 => format!("{tt}: {a} {b} Explained"),
        6 => format!("Why {a} Matters More Than {b}"),
        7 => format!("{a} {b} {c} | {tt} #{n}"),
        8 => format!("How to Master {a} and {b}"),
        9 => format!("{a} {b} Challenge!"),
        10 => format!("My {a} {b} Setup in 2026"),
        11 => format!("{a}, {b} and {c} - Full {tt} Session"),
        12 => format!("Everything Wrong With {a} {b}"),
        13 => format!("{a} {b} in {n} Minutes"),
        _ => format!("{tt} Live: {a} {b}"),
    };
    let uses_c = matches!(pick, 4 | 7 | 11);
    for w in &tw[..if uses_c { 3 } else { 2 }] {
        post(*w, W_TITLE);
    }
    if matches!(pick, 5 | 7 | 11 | 14) {
        for w in &topic.name_words {
            post(*w, W_TITLE);
        }
    }

    // Description: 2-5 sentences sharing the topic's vocabulary.
    let sentences = rng.range(2, 5);
    let sep = if rng.chance(0.5) { " " } else { "\n\n" };
    let mut desc = String::with_capacity(400);
    let tname = topic.name.as_str();
    for s in 0..sentences {
        let dw = draw3(rng, &topic.words);
        let (x, y, z) = (vocab.word(dw[0]), vocab.word(dw[1]), vocab.word(dw[2]));
        if s > 0 {
            desc.push_str(sep);
        }
        let _ = match rng.below(8) {
            0 => write!(desc, "In this video we dig into {x} and {y}."),
            1 => write!(
                desc,
                "Today's {tname} session covers {x}, {y} and a little {z}."
            ),
            2 => write!(
                desc,
                "If you love {tname}, you will enjoy this look at {x}."
            ),
            3 => write!(
                desc,
                "We go step by step through {x} {y}, with tips you can use right away."
            ),
            4 => write!(
                desc,
                "Let me know in the comments what you think about {z}!"
            ),
            5 => write!(
                desc,
                "Subscribe to {channel_title} for more {tname} every week."
            ),
            6 => write!(
                desc,
                "Chapters: 0:00 intro, 1:{:02} {x}, {}:{:02} {y}, outro.",
                rng.below(60),
                rng.range(3, 9),
                rng.below(60)
            ),
            _ => write!(
                desc,
                "This {tname} episode was a long time coming: {x}, {y}, {z} and more."
            ),
        };
        for w in &dw {
            post(*w, W_DESC);
        }
    }
    for w in &topic.name_words {
        post(*w, W_DESC);
    }

    // Tags: some videos have none, as in the samples.
    let mut tags = Vec::new();
    if !rng.chance(0.15) {
        let k = rng.range(1, 2) as usize;
        tags.reserve(k * 3 + 2);
        tags.push(topic.name.clone());
        let mut prev: Option<u32> = None;
        for _ in 0..k {
            let tw = draw3(rng, &topic.words);
            for (i, w) in tw.iter().enumerate() {
                match prev {
                    Some(p) if i == 2 && p != *w => {
                        tags.push(format!("{} {}", vocab.word(p), vocab.word(*w)))
                    }
                    _ => tags.push(vocab.word(*w).to_string()),
                }
                prev = Some(*w);
                post(*w, W_TAG);
            }
        }
        for w in &topic.name_words {
            post(*w, W_TAG);
        }
        if rng.chance(0.3) {
            tags.push(channel_title.to_lowercase());
        }
    }

    let duration_secs = match rng.below(100) {
        0..15 => rng.range(15, 60),
        15..60 => rng.range(180, 900),
        60..90 => rng.range(900, 3600),
        _ => rng.range(3600, 3 * 3600),
    } as u32;
    let u = rng.unit().max(1e-6);
    let views = ((popularity * (1.0 / u).powf(0.9)) as u64).min(3_000_000_000);
    let likes = (views as f64 * (0.005 + 0.05 * rng.unit())) as u64;
    let comments = (likes as f64 * (0.01 + 0.15 * rng.unit())) as u64;
    let lang = if rng.chance(0.6) {
        Some(*rng.pick(&["en", "en", "en", "es", "fr", "de", "ja"]))
    } else {
        None
    };
    Video {
        id,
        channel_id: channel_id.to_string(),
        channel_title: channel_title.to_string(),
        topic: topic.name.clone(),
        category_id: topic.category_id.clone(),
        title,
        description: desc,
        tags,
        duration_secs,
        published_at: ts(published_secs),
        view_count: views,
        like_count: likes,
        comment_count: comments,
        definition: if rng.chance(0.85) { "hd" } else { "sd" },
        caption: rng.chance(0.3),
        licensed_content: rng.chance(0.5),
        has_maxres: rng.chance(0.4),
        default_audio_language: lang,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_is_november_first() {
        assert_eq!(ts(CORPUS_EPOCH_SECS).to_string(), "2026-11-01T00:00:00Z");
    }

    #[test]
    fn default_corpus_is_big_fast_and_well_formed() {
        // Best of three: the machine is shared, and the claim is about our code.
        let mut took = std::time::Duration::MAX;
        let mut c = None;
        for _ in 0..3 {
            let t0 = std::time::Instant::now();
            let g = Corpus::generate(42, 3000);
            took = took.min(t0.elapsed());
            c = Some(g);
        }
        let c = c.expect("generated");
        eprintln!(
            "generated {} channels, {} videos in {:?}",
            c.channels.len(),
            c.videos.len(),
            took
        );
        assert!(c.videos.len() >= 30_000);
        assert!(c.topics.len() >= 40);
        for v in c.videos.iter().take(2000) {
            assert_eq!(v.id.len(), 11);
            assert!(v.id.bytes().all(|b| ID_ALPHABET.contains(&b)));
            assert!(b"AEIMQUYcgkosw048".contains(&v.id.as_bytes()[10]));
        }
        for ch in &c.channels {
            assert_eq!(ch.id.len(), 24);
            assert!(b"AQgw".contains(&ch.id.as_bytes()[23]));
            assert_eq!(&ch.uploads_playlist_id[2..], &ch.id[2..]);
            assert!((5..=25).contains(&ch.uploads.len()));
        }
        assert!(c.videos.iter().any(|v| v.tags.is_empty()));
        assert!(c.videos.iter().any(|v| v.duration_secs > 3600));
        assert!(c.topics.iter().all(|t| t.channel_count > 0));
    }
}
