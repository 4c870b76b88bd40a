//! Ranking: relevance to the history (channel affinity, TF-IDF similarity of titles and
//! tags, category), freshness and popularity, then MMR-style diversity so a page is not
//! one channel. Each pick carries the reason it was chosen.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use jiff::Timestamp;

use crate::domain::{Video, WatchEvent, category_name};

/// Where a candidate came from; charts are "trending", the rest follow the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Uploads of a channel the user watches.
    Channel,
    /// Uploads of a channel that users strong in the same topic terms watch.
    PeerChannel,
    /// Found by a topic search, or uploads of a channel a search surfaced.
    Search,
    CategoryChart,
    Chart,
}

const STOPWORDS: &[&str] = &[
    "the", "a", "an", "and", "or", "of", "to", "in", "on", "for", "with", "is", "are", "my",
    "your", "how", "what", "this", "that", "it", "at", "by", "from", "vs", "i", "you", "we", "be",
    "new", "best", "part",
];

pub fn tokens(text: &str) -> impl Iterator<Item = String> + '_ {
    words(text).map(Cow::into_owned)
}

/// [`tokens`], borrowed from `text` where a word is lower case already (most are): a
/// warm ranks hundreds of candidates, and their words were an allocation each.
fn words(text: &str) -> impl Iterator<Item = Cow<'_, str>> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() > 1)
        .map(|w| {
            if w.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            {
                Cow::Borrowed(w)
            } else {
                Cow::Owned(w.to_lowercase())
            }
        })
        .filter(|w| !STOPWORDS.contains(&w.as_ref()) && !w.chars().all(|c| c.is_ascii_digit()))
}

/// A video as ranking reads it, with its distinct terms (title and tags, sorted) worked
/// out once, when the instance parsed it: a warm ranks hundreds of candidates, and most
/// were offered to the warms before it too.
#[derive(Debug)]
pub struct Candidate {
    pub video: Video,
    terms: Box<[Box<str>]>,
}

impl Candidate {
    pub fn new(video: Video) -> Self {
        let mut terms: Vec<Cow<'_, str>> = words(&video.title)
            .chain(video.tags.iter().flat_map(|t| words(t)))
            .collect();
        terms.sort_unstable();
        terms.dedup();
        let terms = terms.into_iter().map(|t| t.into()).collect();
        Self { video, terms }
    }

    pub fn terms(&self) -> &[Box<str>] {
        &self.terms
    }

    /// About how much memory it holds.
    pub fn approximate_bytes(&self) -> usize {
        self.video.approximate_bytes() + self.terms.iter().map(|t| t.len() + 16).sum::<usize>()
    }
}

impl std::ops::Deref for Candidate {
    type Target = Video;

    fn deref(&self) -> &Video {
        &self.video
    }
}

/// How many terms two sorted term lists share.
fn shared_terms(a: &[Box<str>], b: &[Box<str>]) -> usize {
    let (mut i, mut j, mut n) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                n += 1;
                i += 1;
                j += 1;
            }
        }
    }
    n
}

/// What the history says about the user's interests.
#[derive(Debug, Default, Clone)]
pub struct Profile {
    pub channel_weight: HashMap<String, f64>,
    pub category_weight: HashMap<String, f64>,
    pub term_weight: HashMap<String, f64>,
    pub watched: Vec<Arc<Candidate>>,
}

impl Profile {
    /// Weights each watched video by how long it was watched (capped), so a skim counts
    /// less than a full viewing.
    pub fn from_history(events: &[WatchEvent], watched: &[Arc<Candidate>]) -> Self {
        let by_id: HashMap<&str, &Candidate> = watched
            .iter()
            .map(|v| (v.video_id.as_str(), v.as_ref()))
            .collect();
        let mut profile = Profile::default();
        // Per (channel, term): the watches of that channel's videos carrying the term.
        let mut channel_terms: HashMap<(&str, &str), f64> = HashMap::new();
        for (i, event) in events.iter().enumerate() {
            let Some(video) = by_id.get(event.video_id.as_str()) else {
                continue;
            };
            let watch = event
                .watch_seconds
                .map_or(1.0, |s| (f64::from(s) / 300.0).clamp(0.2, 1.0));
            let recency = 1.0 / (1.0 + i as f64 / 25.0);
            let w = watch * recency;
            *profile
                .channel_weight
                .entry(video.channel_id.clone())
                .or_default() += w;
            *profile
                .category_weight
                .entry(video.category_id.clone())
                .or_default() += w;
            for term in video.terms() {
                *channel_terms
                    .entry((video.channel_id.as_str(), term.as_ref()))
                    .or_default() += w;
            }
        }
        // A word counts by how many of the user's channels use it, each channel's share
        // growing only as the square root of its watches: a taste is the words several
        // channels share. One channel watched over and over (often one the feed put in
        // front of the user) is served for itself by its channel weight; its words alone
        // would otherwise pull in every stranger of its topic.
        let mut term_docs: HashMap<String, f64> = HashMap::new();
        for ((_, term), w) in channel_terms {
            *term_docs.entry(term.to_owned()).or_default() += w.sqrt();
        }
        normalise(&mut profile.channel_weight);
        normalise(&mut profile.category_weight);
        normalise(&mut term_docs);
        profile.term_weight = term_docs;
        profile.watched = watched.to_vec();
        profile
    }

    /// Folds declared interests in, below anything watched: a cold start ranks by them,
    /// a history still dominates.
    pub fn add_interests(&mut self, interests: &crate::domain::Interests) {
        const DECLARED: f64 = 0.6;
        for category in &interests.categories {
            let w = self.category_weight.entry(category.clone()).or_default();
            *w = w.max(DECLARED);
        }
        for term in interests.topics.iter().flat_map(|t| tokens(t)) {
            let w = self.term_weight.entry(term).or_default();
            *w = w.max(DECLARED);
        }
    }

    /// Weighs each term by how rare it is among all the videos the catalog has seen
    /// (`idf`, from [`SourceCache::term_idf`](super::SourceCache::term_idf)): a word every
    /// topic's titles use ("tips", "beginners") says little about what the user likes,
    /// and chosen as a topic term it finds channels and searches of every topic.
    pub fn weigh_terms(&mut self, idf: &HashMap<String, f64>) {
        for (term, weight) in self.term_weight.iter_mut() {
            *weight *= idf.get(term).copied().unwrap_or(1.0);
        }
        normalise(&mut self.term_weight);
    }

    /// How much of the user's words `video` carries: the sum of the profile's weights
    /// of its terms (the strongest term weighs 1.0).
    pub fn term_overlap(&self, video: &Candidate) -> f64 {
        video
            .terms()
            .iter()
            .filter_map(|t| self.term_weight.get(t.as_ref()))
            .sum()
    }

    /// No watched channel: nothing personal enough to cap chart videos.
    pub fn is_empty(&self) -> bool {
        self.channel_weight.is_empty()
    }

    pub fn top_channels(&self, n: usize) -> Vec<String> {
        top(&self.channel_weight, n)
    }

    pub fn top_categories(&self, n: usize) -> Vec<String> {
        top(&self.category_weight, n)
    }

    /// Search queries from the strongest history terms, two words each.
    /// The user's strongest topic terms, best first.
    pub fn top_terms(&self, n: usize) -> Vec<String> {
        top(&self.term_weight, n)
    }

    pub fn topic_queries(&self, n: usize) -> Vec<String> {
        let terms = top(&self.term_weight, n * 2);
        terms.chunks(2).map(|pair| pair.join(" ")).take(n).collect()
    }
}

fn normalise(map: &mut HashMap<String, f64>) {
    let max = map.values().cloned().fold(0.0, f64::max);
    if max > 0.0 {
        map.values_mut().for_each(|v| *v /= max);
    }
}

fn top(map: &HashMap<String, f64>, n: usize) -> Vec<String> {
    let mut entries: Vec<(&String, &f64)> = map.iter().collect();
    entries.sort_by(|a, b| b.1.total_cmp(a.1).then_with(|| a.0.cmp(b.0)));
    entries
        .into_iter()
        .take(n)
        .map(|(k, _)| k.clone())
        .collect()
}

/// How many consecutive picks a channel repeat is remembered for: about half a page.
const DIVERSITY_WINDOW: usize = 10;
/// Score a pick loses per same-channel pick in the window.
const CHANNEL_REPEAT_PENALTY: f64 = 1.0;
/// What any channel the user watches adds, however little: its uploads are what the user
/// chose, where a stranger's video is only alike in words, which topics share.
const WATCHED_CHANNEL: f64 = 1.5;

struct Scored<'a> {
    video: &'a Candidate,
    score: f64,
    trending: bool,
    /// What [`reason`] needs, kept so only the picks are explained.
    origin: Origin,
    affinity: f64,
    similarity: f64,
    terms: &'a [Box<str>],
}

/// Ranks `candidates` and returns at most `limit`, diverse by channel, with at most
/// `trending_share` of them from charts when the user has a history. Only the picks are
/// copied out of the shared candidates.
pub fn rank(
    profile: &Profile,
    candidates: Vec<(Arc<Candidate>, Origin)>,
    now: Timestamp,
    limit: usize,
    trending_share: f64,
) -> Vec<Video> {
    // Inverse document frequency over the candidate set, so common words weigh little.
    let n = candidates.len().max(1) as f64;
    let mut df: HashMap<&str, f64> = HashMap::new();
    for (c, _) in &candidates {
        for t in c.terms() {
            *df.entry(t.as_ref()).or_default() += 1.0;
        }
    }
    let mut scored: Vec<Scored<'_>> = candidates
        .iter()
        .map(|(video, origin)| {
            let (origin, terms) = (*origin, video.terms());
            let affinity = profile
                .channel_weight
                .get(&video.channel_id)
                .copied()
                .unwrap_or(0.0);
            let category = profile
                .category_weight
                .get(&video.category_id)
                .copied()
                .unwrap_or(0.0);
            let mut similarity = 0.0;
            let mut norm = 0.0;
            for t in terms {
                let idf = (n / (1.0 + df.get(t.as_ref()).copied().unwrap_or(0.0)))
                    .ln()
                    .max(0.0)
                    + 1.0;
                norm += idf * idf;
                similarity += profile.term_weight.get(t.as_ref()).copied().unwrap_or(0.0) * idf;
            }
            let similarity = if norm > 0.0 {
                similarity / norm.sqrt()
            } else {
                0.0
            };
            let age_days = video
                .published_at
                .parse::<Timestamp>()
                .map(|p| (now.as_second() - p.as_second()).max(0) as f64 / 86_400.0)
                .unwrap_or(365.0);
            let freshness = (-age_days / 30.0).exp();
            let popularity = ((video.view_count as f64) + 1.0).log10() / 8.0;
            let trending =
                matches!(origin, Origin::Chart | Origin::CategoryChart) && affinity == 0.0;
            let watched_channel = if affinity > 0.0 { WATCHED_CHANNEL } else { 0.0 };
            let score = 3.0 * affinity
                + watched_channel
                + 2.0 * similarity.min(1.5)
                + 1.0 * category
                + 0.5 * freshness
                + 0.3 * popularity;
            Scored {
                video: video.as_ref(),
                score,
                trending,
                origin,
                affinity,
                similarity,
                terms,
            }
        })
        .collect();
    scored.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.video.video_id.cmp(&b.video.video_id))
    });

    let trending_cap = if profile.is_empty() {
        limit
    } else {
        ((limit as f64) * trending_share).ceil() as usize
    };
    // Greedy MMR over a sliding window: a pick pays for each pick from the same channel among
    // the last `DIVERSITY_WINDOW`, so every page mixes channels while a channel the user
    // loves still fills a good share of the whole pool.
    let mut picked: Vec<Video> = Vec::with_capacity(limit.min(scored.len()));
    let mut in_window: HashMap<&str, usize> = HashMap::new();
    let mut trending_taken = 0;
    let mut remaining: Vec<Option<Scored<'_>>> = scored.into_iter().map(Some).collect();
    while picked.len() < limit {
        let mut best: Option<(usize, f64)> = None;
        for (i, slot) in remaining.iter().enumerate() {
            let Some(s) = slot else { continue };
            if s.trending && trending_taken >= trending_cap {
                continue;
            }
            let repeats = in_window
                .get(s.video.channel_id.as_str())
                .copied()
                .unwrap_or(0) as f64;
            let adjusted = s.score - CHANNEL_REPEAT_PENALTY * repeats;
            if best.is_none_or(|(_, b)| adjusted > b) {
                best = Some((i, adjusted));
            }
            // Candidates are sorted by raw score: once raw < best, none can beat it.
            if let Some((_, b)) = best
                && s.score < b
            {
                break;
            }
        }
        let Some((i, _)) = best else { break };
        let s = remaining[i].take().expect("picked slot is present");
        *in_window.entry(s.video.channel_id.as_str()).or_default() += 1;
        if picked.len() >= DIVERSITY_WINDOW {
            let leaving = picked[picked.len() - DIVERSITY_WINDOW].channel_id.as_str();
            if let Some(n) = in_window.get_mut(leaving) {
                *n -= 1;
            }
        }
        if s.trending {
            trending_taken += 1;
        }
        let mut video = s.video.video.clone();
        video.trending = s.trending;
        video.reason = reason(profile, &video, s.origin, s.affinity, s.similarity, s.terms);
        picked.push(video);
    }
    picked
}

/// The reason shown for an upload of a channel the user watches, wherever it was picked.
pub fn own_channel_reason(video: &Video) -> String {
    format!("from a channel you watch: {}", video.channel_title)
}

/// The reason shown for a stranger's video alike in words: the watched video it shares
/// the most words with. `None` for a profile with no watched video.
pub fn like_watched_reason(profile: &Profile, terms: &[Box<str>]) -> Option<String> {
    profile
        .watched
        .iter()
        .max_by_key(|w| shared_terms(w.terms(), terms))
        .map(|like| format!("like \"{}\"", like.title))
}

fn reason(
    profile: &Profile,
    video: &Video,
    origin: Origin,
    affinity: f64,
    similarity: f64,
    terms: &[Box<str>],
) -> String {
    if affinity > 0.0 {
        return own_channel_reason(video);
    }
    if similarity > 0.2
        && let Some(like) = like_watched_reason(profile, terms)
    {
        return like;
    }
    let category = category_name(&video.category_id).unwrap_or("your region");
    match origin {
        Origin::Chart | Origin::CategoryChart => format!("trending in {category}"),
        _ => format!("popular in {category}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn video(id: &str, channel: &str, title: &str, category: &str) -> Video {
        Video {
            video_id: id.into(),
            title: title.into(),
            channel_id: channel.into(),
            channel_title: format!("{channel} title"),
            category_id: category.into(),
            published_at: "2026-11-20T00:00:00Z".into(),
            thumbnail_url: String::new(),
            duration_secs: 60,
            view_count: 1000,
            tags: vec![],
            reason: String::new(),
            trending: false,
            url: String::new(),
        }
    }

    /// A word every topic's titles use loses to the words of the user's topic, however
    /// often the user's titles use it.
    #[test]
    fn common_words_weigh_less_than_the_topics_own() {
        let mut profile = Profile::default();
        profile.term_weight.insert("tips".into(), 1.0);
        profile.term_weight.insert("chess".into(), 0.6);
        profile.term_weight.insert("opening".into(), 0.5);
        assert_eq!(profile.top_terms(1), ["tips"]);
        let idf: HashMap<String, f64> = [("tips", 1.3), ("chess", 6.0), ("opening", 4.0)]
            .into_iter()
            .map(|(t, w)| (t.to_owned(), w))
            .collect();
        profile.weigh_terms(&idf);
        assert_eq!(profile.top_terms(3), ["chess", "opening", "tips"]);
        assert_eq!(profile.term_weight["chess"], 1.0);
        // No counts yet (a new catalog): the weights stay as they were, normalised.
        let before = profile.term_weight.clone();
        profile.weigh_terms(&HashMap::new());
        assert_eq!(profile.term_weight, before);
    }

    /// The loop this breaks: a stranger's video the user took off a page, its channel
    /// then served and watched again and again, until its topic's words led the profile.
    #[test]
    fn a_channel_watched_over_and_over_does_not_outweigh_words_several_channels_share() {
        let mut watched = Vec::new();
        let mut events = Vec::new();
        let mut watch = |id: String, channel: &str, title: &str| {
            watched.push(Arc::new(Candidate::new(video(&id, channel, title, "20"))));
            events.push(WatchEvent {
                video_id: id,
                watched_at: None,
                watch_seconds: Some(240),
            });
        };
        // The most recent first, as the history store returns them.
        for i in 0..9 {
            watch(format!("f{i}"), "fortnite-chan", "Fortnite royale");
        }
        for c in 0..4 {
            watch(format!("c{c}"), &format!("chess-chan-{c}"), "Chess gambit");
        }
        let profile = Profile::from_history(&events, &watched);
        assert_eq!(profile.top_terms(2), ["chess", "gambit"], "{profile:?}");
        // The channel keeps its own standing: it is the one the user watches most.
        assert_eq!(profile.top_channels(1), ["fortnite-chan"]);
    }

    #[test]
    fn related_videos_outrank_unrelated_and_channels_are_spread() {
        let watched = vec![Arc::new(Candidate::new(video(
            "w1",
            "chess",
            "Chess opening traps",
            "20",
        )))];
        let events = vec![WatchEvent {
            video_id: "w1".into(),
            watched_at: None,
            watch_seconds: Some(600),
        }];
        let profile = Profile::from_history(&events, &watched);
        let mut candidates = vec![(
            Arc::new(Candidate::new(video("u1", "cooking", "Pasta recipe", "26"))),
            Origin::Chart,
        )];
        for i in 0..5 {
            candidates.push((
                Arc::new(Candidate::new(video(
                    &format!("c{i}"),
                    "chess",
                    "Chess endgame lesson",
                    "20",
                ))),
                Origin::Channel,
            ));
        }
        candidates.push((
            Arc::new(Candidate::new(video(
                "s1",
                "other",
                "Chess opening repertoire",
                "20",
            ))),
            Origin::Search,
        ));
        let ranked = rank(
            &profile,
            candidates,
            "2026-11-25T00:00:00Z".parse().unwrap(),
            7,
            0.2,
        );
        assert_eq!(ranked[0].channel_id, "chess");
        assert_eq!(ranked[0].reason, "from a channel you watch: chess title");
        // Diversity: the related other-channel video comes before the fifth chess upload,
        // though any upload of a watched channel counts for more than a lookalike.
        let s1 = ranked.iter().position(|v| v.video_id == "s1").unwrap();
        assert!(s1 < 5, "{ranked:?}");
        assert_eq!(ranked.last().unwrap().video_id, "u1");
        assert!(ranked.last().unwrap().trending);
    }
}
