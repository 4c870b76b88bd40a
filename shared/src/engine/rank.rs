//! Ranking: relevance to the history (channel affinity, TF-IDF similarity of titles and
//! tags, category), freshness and popularity, then MMR-style diversity so a page is not
//! one channel. Each pick carries the reason it was chosen.

use std::collections::{HashMap, HashSet};

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
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() > 1)
        .map(str::to_lowercase)
        .filter(|w| !STOPWORDS.contains(&w.as_str()) && !w.chars().all(|c| c.is_ascii_digit()))
}

fn video_terms(video: &Video) -> HashSet<String> {
    tokens(&video.title)
        .chain(video.tags.iter().flat_map(|t| tokens(t)))
        .collect()
}

/// What the history says about the user's interests.
#[derive(Debug, Default, Clone)]
pub struct Profile {
    pub channel_weight: HashMap<String, f64>,
    pub category_weight: HashMap<String, f64>,
    pub term_weight: HashMap<String, f64>,
    pub watched: Vec<Video>,
}

impl Profile {
    /// Weights each watched video by how long it was watched (capped), so a skim counts
    /// less than a full viewing.
    pub fn from_history(events: &[WatchEvent], watched: &[Video]) -> Self {
        let by_id: HashMap<&str, &Video> =
            watched.iter().map(|v| (v.video_id.as_str(), v)).collect();
        let mut profile = Profile::default();
        let mut term_docs: HashMap<String, f64> = HashMap::new();
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
            for term in video_terms(video) {
                *term_docs.entry(term).or_default() += w;
            }
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

struct Scored {
    video: Video,
    score: f64,
    trending: bool,
    /// What [`reason`] needs, kept so only the picks are explained.
    origin: Origin,
    affinity: f64,
    similarity: f64,
    terms: HashSet<String>,
}

/// Ranks `candidates` and returns at most `limit`, diverse by channel, with at most
/// `trending_share` of them from charts when the user has a history.
pub fn rank(
    profile: &Profile,
    candidates: Vec<(Video, Origin)>,
    now: Timestamp,
    limit: usize,
    trending_share: f64,
) -> Vec<Video> {
    // Inverse document frequency over the candidate set, so common words weigh little.
    let n = candidates.len().max(1) as f64;
    let mut df: HashMap<String, f64> = HashMap::new();
    let terms: Vec<HashSet<String>> = candidates.iter().map(|(v, _)| video_terms(v)).collect();
    for set in &terms {
        for t in set {
            *df.entry(t.clone()).or_default() += 1.0;
        }
    }
    let mut scored: Vec<Scored> = candidates
        .into_iter()
        .zip(terms)
        .map(|((mut video, origin), terms)| {
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
            for t in &terms {
                let idf = (n / (1.0 + df.get(t).copied().unwrap_or(0.0)))
                    .ln()
                    .max(0.0)
                    + 1.0;
                norm += idf * idf;
                similarity += profile.term_weight.get(t).copied().unwrap_or(0.0) * idf;
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
            let score = 3.0 * affinity
                + 2.0 * similarity.min(1.5)
                + 1.0 * category
                + 0.5 * freshness
                + 0.3 * popularity;
            video.trending = trending;
            Scored {
                video,
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
    // The watched videos' terms, once: every "like …" reason compares against them all.
    let mut watched_terms: Option<Vec<HashSet<String>>> = None;
    let mut in_window: HashMap<String, usize> = HashMap::new();
    let mut trending_taken = 0;
    let mut remaining: Vec<Option<Scored>> = scored.into_iter().map(Some).collect();
    while picked.len() < limit {
        let mut best: Option<(usize, f64)> = None;
        for (i, slot) in remaining.iter().enumerate() {
            let Some(s) = slot else { continue };
            if s.trending && trending_taken >= trending_cap {
                continue;
            }
            let repeats = in_window.get(&s.video.channel_id).copied().unwrap_or(0) as f64;
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
        *in_window.entry(s.video.channel_id.clone()).or_default() += 1;
        if picked.len() >= DIVERSITY_WINDOW {
            let leaving = &picked[picked.len() - DIVERSITY_WINDOW].channel_id;
            if let Some(n) = in_window.get_mut(leaving) {
                *n -= 1;
            }
        }
        if s.trending {
            trending_taken += 1;
        }
        let mut video = s.video;
        video.reason = reason(
            profile,
            &video,
            s.origin,
            s.affinity,
            s.similarity,
            &s.terms,
            &mut watched_terms,
        );
        picked.push(video);
    }
    picked
}

fn reason(
    profile: &Profile,
    video: &Video,
    origin: Origin,
    affinity: f64,
    similarity: f64,
    terms: &HashSet<String>,
    watched_terms: &mut Option<Vec<HashSet<String>>>,
) -> String {
    if affinity > 0.0 {
        return format!("from a channel you watch: {}", video.channel_title);
    }
    if similarity > 0.2 {
        let watched_terms =
            watched_terms.get_or_insert_with(|| profile.watched.iter().map(video_terms).collect());
        if let Some((like, _)) = profile
            .watched
            .iter()
            .zip(watched_terms.iter())
            .max_by_key(|(_, w)| w.intersection(terms).count())
        {
            return format!("like \"{}\"", like.title);
        }
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

    #[test]
    fn related_videos_outrank_unrelated_and_channels_are_spread() {
        let watched = vec![video("w1", "chess", "Chess opening traps", "20")];
        let events = vec![WatchEvent {
            video_id: "w1".into(),
            watched_at: None,
            watch_seconds: Some(600),
        }];
        let profile = Profile::from_history(&events, &watched);
        let mut candidates = vec![(video("u1", "cooking", "Pasta recipe", "26"), Origin::Chart)];
        for i in 0..5 {
            candidates.push((
                video(&format!("c{i}"), "chess", "Chess endgame lesson", "20"),
                Origin::Channel,
            ));
        }
        candidates.push((
            video("s1", "other", "Chess opening repertoire", "20"),
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
        // Diversity: the related other-channel video comes before the fifth chess upload.
        let s1 = ranked.iter().position(|v| v.video_id == "s1").unwrap();
        assert!(s1 < 4, "{ranked:?}");
        assert_eq!(ranked.last().unwrap().video_id, "u1");
        assert!(ranked.last().unwrap().trending);
    }
}
