//! What the fake serves: the materialised [`Corpus`] (a few thousand channels, uploads
//! published by tests) or the procedural [`World`] (hundreds of thousands, uploads
//! published by the clock). The endpoints ask a [`View`] and render what it gives the
//! same way, so Google's shapes, paging and errors are one code path for both.

use std::borrow::Cow;
use std::sync::{RwLock, RwLockReadGuard};

use jiff::Timestamp;

use crate::corpus::{Channel, Corpus, Video, tokenize};
use crate::world::World;

pub(crate) enum Catalog {
    Corpus(RwLock<Corpus>),
    World(World),
}

impl Catalog {
    pub(crate) fn view(&self) -> View<'_> {
        match self {
            Catalog::Corpus(c) => View::Corpus(c.read().expect("corpus lock")),
            Catalog::World(w) => View::World(w),
        }
    }
}

/// One request's read access.
pub(crate) enum View<'a> {
    Corpus(RwLockReadGuard<'a, Corpus>),
    World(&'a World),
}

/// A search hit: a video or a channel, with its upload count for channels.
pub(crate) enum Hit<'a> {
    Video(Cow<'a, Video>),
    Channel(Cow<'a, Channel>),
}

/// How many uploads of a channel search looks at in the world (newest first).
const SEARCH_UPLOADS_PER_CHANNEL: u64 = 6;
/// How many of a query's matching topics search looks at in the world.
const SEARCH_TOPICS: usize = 3;

impl View<'_> {
    pub(crate) fn video(&self, id: &str, now: Timestamp) -> Option<Cow<'_, Video>> {
        match self {
            View::Corpus(c) => c.video(id).map(Cow::Borrowed),
            View::World(w) => {
                let (rank, n) = w.video(id, now.as_second())?;
                Some(Cow::Owned(w.video_details(rank, n, now.as_second())))
            }
        }
    }

    /// A channel by id and its upload count.
    pub(crate) fn channel(&self, id: &str, now: Timestamp) -> Option<(Cow<'_, Channel>, usize)> {
        match self {
            View::Corpus(c) => c
                .channel(id)
                .map(|ch| (Cow::Borrowed(ch), ch.video_count())),
            View::World(w) => w
                .channel_rank(id)
                .filter(|_| id.starts_with("UC"))
                .map(|rank| self.world_channel(w, rank, now)),
        }
    }

    pub(crate) fn channel_by_handle(
        &self,
        handle: &str,
        now: Timestamp,
    ) -> Option<(Cow<'_, Channel>, usize)> {
        match self {
            View::Corpus(c) => c.channel_by_handle(handle).map(|i| {
                let ch = &c.channels[i];
                (Cow::Borrowed(ch), ch.video_count())
            }),
            View::World(w) => w
                .channel_by_handle(handle, now.as_second())
                .map(|rank| self.world_channel(w, rank, now)),
        }
    }

    fn world_channel(
        &self,
        w: &World,
        rank: u32,
        now: Timestamp,
    ) -> (Cow<'static, Channel>, usize) {
        let count = w.uploads_until(&w.channel(rank), now.as_second()) as usize;
        (Cow::Owned(w.channel_details(rank, now.as_second())), count)
    }

    /// The channel of an uploads playlist, its upload count, and the positions
    /// (0 = newest) of its items: all of them, or the one of `video_filter`.
    pub(crate) fn uploads(
        &self,
        playlist_id: &str,
        video_filter: Option<&str>,
        now: Timestamp,
    ) -> Option<(Cow<'_, Channel>, usize, Vec<usize>)> {
        match self {
            View::Corpus(c) => {
                let ch = &c.channels[c.channel_by_uploads(playlist_id)?];
                let positions = ch
                    .uploads
                    .iter()
                    .enumerate()
                    .filter(|(_, vi)| video_filter.is_none_or(|id| c.videos[**vi].id == id))
                    .map(|(pos, _)| pos)
                    .collect();
                Some((Cow::Borrowed(ch), ch.video_count(), positions))
            }
            View::World(w) => {
                let rank = w
                    .channel_rank(playlist_id)
                    .filter(|_| playlist_id.starts_with("UU"))?;
                let (ch, count) = self.world_channel(w, rank, now);
                let positions = match video_filter {
                    None => (0..count).collect(),
                    Some(id) => w
                        .video(id, now.as_second())
                        .filter(|(r, _)| *r == rank)
                        .map(|(_, n)| count - 1 - n as usize)
                        .into_iter()
                        .collect(),
                };
                Some((ch, count, positions))
            }
        }
    }

    /// Item `position` (0 = newest) of a channel's uploads playlist.
    pub(crate) fn upload_at(
        &self,
        channel: &Channel,
        count: usize,
        position: usize,
        now: Timestamp,
    ) -> Cow<'_, Video> {
        match self {
            View::Corpus(c) => Cow::Borrowed(&c.videos[channel.uploads[position]]),
            View::World(w) => {
                let rank = w
                    .channel_rank(&channel.id)
                    .expect("a channel of this world");
                Cow::Owned(w.video_details(rank, (count - 1 - position) as u64, now.as_second()))
            }
        }
    }

    /// The `mostPopular` chart, best first; `size` at most.
    pub(crate) fn chart(
        &self,
        category: Option<&str>,
        now: Timestamp,
        size: usize,
    ) -> Vec<Cow<'_, Video>> {
        match self {
            View::Corpus(c) => {
                let mut ranked: Vec<(f64, usize)> = c
                    .videos
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| {
                        category.is_none_or(|id| v.category_id == id) && v.published_at <= now
                    })
                    .map(|(i, v)| (chart_score(v, now), i))
                    .collect();
                let by_score = |a: &(f64, usize), b: &(f64, usize)| {
                    b.0.total_cmp(&a.0)
                        .then_with(|| c.videos[a.1].id.cmp(&c.videos[b.1].id))
                };
                if ranked.len() > size {
                    ranked.select_nth_unstable_by(size, by_score);
                    ranked.truncate(size);
                }
                ranked.sort_by(by_score);
                ranked
                    .into_iter()
                    .map(|(_, i)| Cow::Borrowed(&c.videos[i]))
                    .collect()
            }
            View::World(w) => w
                .chart(category, now.as_second(), size)
                .into_iter()
                .map(|(rank, n)| Cow::Owned(w.video_details(rank, n, now.as_second())))
                .collect(),
        }
    }

    /// Search hits with (distinct query terms matched, field weight), unsorted. The
    /// corpus looks in its inverted index; the world in the newest uploads of the most
    /// watched channels of the topics the query's words belong to (all topics for no
    /// words), scoring their text the same way.
    pub(crate) fn search_hits(
        &self,
        query: &SearchQuery<'_>,
        now: Timestamp,
    ) -> Vec<(Hit<'_>, u32, u32)> {
        match self {
            View::Corpus(c) => corpus_search(c, query),
            View::World(w) => world_search(w, query, now),
        }
    }
}

/// What search filters by; `terms` are the query's lower-cased words.
pub(crate) struct SearchQuery<'a> {
    pub(crate) terms: Vec<String>,
    pub(crate) videos: bool,
    pub(crate) channels: bool,
    pub(crate) category: Option<&'a str>,
    pub(crate) channel_id: Option<&'a str>,
    pub(crate) after: Option<Timestamp>,
    pub(crate) before: Option<Timestamp>,
}

impl SearchQuery<'_> {
    fn keeps_video(&self, v: &Video) -> bool {
        self.category.is_none_or(|c| v.category_id == c)
            && self.channel_id.is_none_or(|c| v.channel_id == c)
            && self.after.is_none_or(|a| v.published_at > a)
            && self.before.is_none_or(|b| v.published_at < b)
    }

    fn keeps_channel(&self, c: &Channel) -> bool {
        self.channel_id.is_none_or(|id| c.id == id)
            && self.after.is_none_or(|a| c.published_at > a)
            && self.before.is_none_or(|b| c.published_at < b)
    }
}

/// mostPopular ranking: views damped by age, so the chart moves with the clock.
fn chart_score(v: &Video, now: Timestamp) -> f64 {
    let age_days = (now.as_second() - v.published_at.as_second()).max(0) as f64 / 86_400.0;
    v.view_count as f64 / (1.0 + age_days / 7.0).powf(1.5)
}

fn corpus_search<'a>(corpus: &'a Corpus, query: &SearchQuery<'_>) -> Vec<(Hit<'a>, u32, u32)> {
    use std::collections::HashMap;
    let mut terms: Vec<u32> = Vec::new();
    for t in &query.terms {
        if let Some(id) = corpus.vocab.get(t)
            && !terms.contains(&id)
        {
            terms.push(id);
        }
    }
    let any_term = !query.terms.is_empty();
    let mut hits = Vec::new();
    if query.videos {
        if !any_term {
            hits.extend(
                corpus
                    .videos
                    .iter()
                    .filter(|v| query.keeps_video(v))
                    .map(|v| (Hit::Video(Cow::Borrowed(v)), 0, 0)),
            );
        } else {
            let mut scores: HashMap<u32, (u32, u32, usize)> = HashMap::new();
            for (ti, term) in terms.iter().enumerate() {
                for &(vi, w) in corpus
                    .video_postings
                    .get(*term as usize)
                    .map_or(&[][..], Vec::as_slice)
                {
                    let e = scores.entry(vi).or_insert((0, 0, usize::MAX));
                    if e.2 != ti {
                        e.0 += 1;
                        e.2 = ti;
                    }
                    e.1 += u32::from(w);
                }
            }
            hits.extend(
                scores
                    .into_iter()
                    .map(|(vi, (d, w, _))| (&corpus.videos[vi as usize], d, w))
                    .filter(|(v, _, _)| query.keeps_video(v))
                    .map(|(v, d, w)| (Hit::Video(Cow::Borrowed(v)), d, w)),
            );
        }
    }
    if query.channels {
        if !any_term {
            hits.extend(
                corpus
                    .channels
                    .iter()
                    .filter(|c| query.keeps_channel(c))
                    .map(|c| (Hit::Channel(Cow::Borrowed(c)), 0, 0)),
            );
        } else {
            let mut scores: HashMap<u32, u32> = HashMap::new();
            for term in &terms {
                for &ci in corpus
                    .channel_postings
                    .get(*term as usize)
                    .map_or(&[][..], Vec::as_slice)
                {
                    *scores.entry(ci).or_default() += 1;
                }
            }
            hits.extend(
                scores
                    .into_iter()
                    .map(|(ci, d)| (&corpus.channels[ci as usize], d))
                    .filter(|(c, _)| query.keeps_channel(c))
                    .map(|(c, d)| (Hit::Channel(Cow::Borrowed(c)), d, d)),
            );
        }
    }
    hits
}

/// Field weights, as the corpus's index has them: title, tag, description.
const W_TITLE: u32 = 3;
const W_TAG: u32 = 2;
const W_DESC: u32 = 1;

fn world_search<'a>(
    w: &World,
    query: &SearchQuery<'_>,
    now: Timestamp,
) -> Vec<(Hit<'a>, u32, u32)> {
    let now_secs = now.as_second();
    let topics: Vec<usize> = if query.terms.is_empty() {
        (0..w.topics().len()).collect()
    } else {
        w.topics_for_query(&query.terms)
            .into_iter()
            .take(SEARCH_TOPICS)
            .collect()
    };
    let ranks: Vec<u32> = match query.channel_id.and_then(|id| w.channel_rank(id)) {
        Some(rank) => vec![rank],
        None if query.channel_id.is_some() => Vec::new(),
        None => topics
            .iter()
            .flat_map(|&t| w.topic_channels(t).iter().copied())
            .collect(),
    };
    // A video's topic name counts as a description word, as the corpus's index has it.
    let score = |topic: usize, title: &str, tags: &[String], description: &str| -> (u32, u32) {
        let mut matched = vec![false; query.terms.len()];
        let mut weight = 0;
        for word in tokenize(&w.topics()[topic].name) {
            if let Some(i) = query.terms.iter().position(|t| *t == word) {
                matched[i] = true;
                weight += W_DESC;
            }
        }
        let fields = std::iter::once((title, W_TITLE))
            .chain(tags.iter().map(|t| (t.as_str(), W_TAG)))
            .chain(std::iter::once((description, W_DESC)));
        for (text, field_weight) in fields {
            for word in tokenize(text) {
                if let Some(i) = query.terms.iter().position(|t| *t == word) {
                    matched[i] = true;
                    weight += field_weight;
                }
            }
        }
        (matched.iter().filter(|m| **m).count() as u32, weight)
    };
    let mut hits = Vec::new();
    for &rank in &ranks {
        let spec = w.channel(rank);
        if query.videos {
            let newest = match query.before {
                Some(b) => w.uploads_until(&spec, (b.as_second() - 1).min(now_secs)),
                None => w.uploads_until(&spec, now_secs),
            };
            let oldest = query
                .after
                .map_or(0, |a| w.uploads_until(&spec, a.as_second()))
                .max(newest.saturating_sub(SEARCH_UPLOADS_PER_CHANNEL));
            for n in (oldest..newest).rev() {
                let v = w.video_details(rank, n, now_secs);
                if !query.keeps_video(&v) {
                    continue;
                }
                let (d, weight) = score(spec.topic, &v.title, &v.tags, &v.description);
                if d > 0 || query.terms.is_empty() {
                    hits.push((Hit::Video(Cow::Owned(v)), d, weight));
                }
            }
        }
        if query.channels {
            let c = w.channel_details(rank, now_secs);
            if query.keeps_channel(&c) {
                let (d, weight) = score(spec.topic, &c.title, &[], &c.keywords);
                if d > 0 || query.terms.is_empty() {
                    hits.push((Hit::Channel(Cow::Owned(c)), d, weight));
                }
            }
        }
    }
    hits
}
