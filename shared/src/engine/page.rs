//! A refresh's page: entries taken from the user's pool, made into cards from the
//! catalog ([`Engine::take_page`]).

use std::collections::HashSet;

use crate::domain::{UserId, Video};
use crate::store::StoreError;

use super::catalog::Card;
use super::pool::{LOW_WATERMARK, Page, PageRequest, PageResult};
use super::warm::Engine;
use super::{COLD_START_CATEGORIES, KNOWN_OWN_CHANNELS, KNOWN_PER_CHANNEL, TOP_CATEGORIES};

/// How many times a page short of cards (its videos gone from the catalog) is topped up
/// from the pool before it is served short.
const TOP_UPS: usize = 2;
/// The most of the user's channels' unserved uploads one such page is chosen from,
/// before the region's chart (the serving script looks at 200 at most).
const UNPOOLED_OWN_MAX: usize = 150;
/// Fewer unserved uploads of the user's channels than this, and a page outside the pool
/// reads on into channels alike in words ([`Engine::alike_strangers`]).
const UNPOOLED_DEEPER_BELOW: usize = 50;
/// The user's strongest words, and how many channels of users strong in them, that
/// deeper read looks at: wider than a warm's free step (3 words, 64 channels), which
/// the refill that left the user short had read already.
const UNPOOLED_PEER_TERMS: usize = 8;
const UNPOOLED_PEER_CHANNELS: usize = 128;
/// The newest uploads of each such channel it takes.
const UNPOOLED_PER_PEER: usize = 10;

impl Engine {
    /// The next page of never-served videos for `user`. The common request is one round
    /// trip (one `LPOP`) when the instance's item cache holds the page's videos, two when
    /// it reads the catalog; a claim of a needed refill adds one on the requests that need
    /// it. Entries
    /// whose videos the catalog lost are skipped, the page topped up from the pool, and a
    /// refill asked for.
    pub async fn take_page(
        &self,
        user: &UserId,
        request: &PageRequest,
    ) -> Result<PageResult, StoreError> {
        let page = self.take_cards(user, request).await?;
        Ok(Page {
            videos: page.videos.iter().map(Card::to_video).collect(),
            generated_at_ms: page.generated_at_ms,
            pool_remaining: page.pool_remaining,
            should_enqueue_warm: page.should_enqueue_warm,
            stale: page.stale,
            needs_refill: page.needs_refill,
            missing_items: page.missing_items,
        })
    }

    /// What a page outside the pool (none built yet, or one read to the end before its
    /// refill landed) is chosen from, best first: the unserved uploads of the user's
    /// channels (the [`KNOWN_OWN_CHANNELS`] most watched, the newest
    /// [`KNOWN_PER_CHANNEL`] of each) that the catalog already holds, then, when those
    /// run short, the cached uploads of channels alike in words, then the cached charts
    /// of the user's categories, then `chart`. No
    /// YouTube call, and no Redis cost on a pool hit: five round trips on this path only
    /// (the history, its videos, the channels' lists, their videos, their served marks),
    /// six more for a user with too few of those unserved ([`Engine::alike_strangers`]),
    /// three more when those run short too (the category charts).
    /// Serving the chart alone gave an empty page to a user who had seen the chart while
    /// unseen uploads of their channels sat in the catalog.
    pub async fn unpooled_candidates(
        &self,
        user: &UserId,
        chart: Vec<Video>,
    ) -> Result<Vec<Video>, StoreError> {
        let events = self
            .history
            .recent(user, super::history::HISTORY_USED_FOR_RANKING)
            .await?;
        if events.is_empty() {
            return Ok(chart);
        }
        let watched_ids: Vec<String> = events.iter().map(|e| e.video_id.clone()).collect();
        let watched = self.sources.cached_videos(&watched_ids).await?;
        // The last cut's ids no longer waiting in the pool were shown, and the serving
        // script counts them as served: set aside here as well, or they would fill the
        // candidates, keep the deeper steps from running, and leave the page empty.
        let shown = self.pool.shown_from_cut(user).await?;
        // The user's channels as a warm weighs them (watch time and recency).
        let mut profile = super::rank::Profile::from_history(&events, &watched);
        let channels = profile.top_channels(KNOWN_OWN_CHANNELS);
        let uploads = self
            .sources
            .cached_uploads(&channels, KNOWN_PER_CHANNEL)
            .await?;
        let watched_ids: HashSet<&str> = watched_ids.iter().map(String::as_str).collect();
        // One of each channel in turn, newest first within a channel: a page mixes them.
        let mut by_channel: Vec<Vec<Video>> = vec![Vec::new(); channels.len()];
        for upload in uploads {
            if watched_ids.contains(upload.video_id.as_str()) {
                continue;
            }
            if let Some(slot) = channels.iter().position(|c| *c == upload.channel_id) {
                let mut video = upload.video.clone();
                video.reason = super::rank::own_channel_reason(&video);
                by_channel[slot].push(video);
            }
        }
        let mut out = Vec::new();
        let longest = by_channel.iter().map(Vec::len).max().unwrap_or(0);
        for i in 0..longest {
            out.extend(by_channel.iter().filter_map(|list| list.get(i).cloned()));
        }
        self.drop_served(user, &shown, &mut out).await?;
        out.truncate(UNPOOLED_OWN_MAX);
        if out.len() < UNPOOLED_DEEPER_BELOW {
            let terms: Vec<String> = profile.term_weight.keys().cloned().collect();
            profile.weigh_terms(&self.sources.term_idf(&terms).await?);
            out.extend(
                self.alike_strangers(user, &profile, &channels, &watched_ids, &shown)
                    .await?,
            );
        }
        if out.len() < UNPOOLED_DEEPER_BELOW {
            // The charts of the user's categories; for a user whose watched videos the
            // catalog does not hold yet (their warm was refused the unit that fetches
            // them), those a warm reads for a user it knows nothing about.
            let categories = if profile.is_empty() {
                COLD_START_CATEGORIES
                    .iter()
                    .map(|c| c.to_string())
                    .collect()
            } else {
                profile.top_categories(TOP_CATEGORIES)
            };
            let mut charts = self
                .sources
                .cached_category_charts(&self.region, &categories)
                .await?;
            charts.retain(|v| !watched_ids.contains(v.video_id.as_str()));
            self.drop_served(user, &shown, &mut charts).await?;
            charts.truncate(UNPOOLED_OWN_MAX);
            out.extend(charts);
        }
        out.extend(chart);
        Ok(out)
    }

    /// The deeper step of [`Engine::unpooled_candidates`], for a user who has read all
    /// their channels hold: the cached uploads of the channels that users strong in more
    /// of the same words watch ([`UNPOOLED_PEER_TERMS`] terms, [`UNPOOLED_PEER_CHANNELS`]
    /// channels, wider than a warm's free step reads), most alike first, unserved ones
    /// only. Such a user's refill, built moments before, had found little new; without
    /// this their page was the chart, which they had also read: an empty page while the
    /// catalog held related videos they had never seen.
    async fn alike_strangers(
        &self,
        user: &UserId,
        profile: &super::rank::Profile,
        own: &[String],
        watched_ids: &HashSet<&str>,
        shown: &HashSet<String>,
    ) -> Result<Vec<Video>, StoreError> {
        let terms = profile.top_terms(UNPOOLED_PEER_TERMS);
        let peers = self
            .sources
            .term_channels(&terms, UNPOOLED_PEER_CHANNELS, own)
            .await?;
        let mut alike: Vec<(f64, Video)> = self
            .sources
            .cached_uploads(&peers, UNPOOLED_PER_PEER)
            .await?
            .into_iter()
            .filter(|c| !watched_ids.contains(c.video_id.as_str()))
            .map(|c| {
                let mut video = c.video.clone();
                video.reason =
                    super::rank::like_watched_reason(profile, c.terms()).unwrap_or_else(|| {
                        let category = crate::domain::category_name(&video.category_id);
                        format!("popular in {}", category.unwrap_or("your region"))
                    });
                (profile.term_overlap(&c), video)
            })
            .collect();
        alike.sort_by(|a, b| {
            b.0.total_cmp(&a.0)
                .then_with(|| a.1.video_id.cmp(&b.1.video_id))
        });
        let mut out: Vec<Video> = alike.into_iter().map(|(_, v)| v).collect();
        self.drop_served(user, shown, &mut out).await?;
        out.truncate(UNPOOLED_OWN_MAX);
        Ok(out)
    }

    /// Sets aside the videos `user` was served already (`shown`, the last cut's, then the
    /// served set in one round trip), so a user who has read much of a list still finds
    /// the rest within what the serving script looks at.
    async fn drop_served(
        &self,
        user: &UserId,
        shown: &HashSet<String>,
        videos: &mut Vec<Video>,
    ) -> Result<(), StoreError> {
        videos.retain(|v| !shown.contains(&v.video_id));
        if videos.is_empty() {
            return Ok(());
        }
        let ids: Vec<&str> = videos.iter().map(|v| v.video_id.as_str()).collect();
        let served: HashSet<String> = self
            .pool
            .served_among(user, &ids)
            .await?
            .into_iter()
            .collect();
        videos.retain(|v| !served.contains(&v.video_id));
        Ok(())
    }

    /// [`Engine::take_page`] as cards: what the API writes its body from, without a copy
    /// of each video.
    pub async fn take_cards(
        &self,
        user: &UserId,
        request: &PageRequest,
    ) -> Result<Page<Card>, StoreError> {
        let taken = self.pool.take_page_entries(user, request).await?;
        let mut remaining = taken.remaining;
        let legacy = taken.legacy_videos.is_some();
        let (videos, missing) = match taken.legacy_videos {
            Some(videos) => (videos.into_iter().map(Card::from_video).collect(), 0),
            None => {
                let hydrated = self.catalog.hydrate(taken.entries).await?;
                let (mut videos, mut missing, mut short) =
                    (hydrated.cards, hydrated.missing, hydrated.missing);
                for _ in 0..TOP_UPS {
                    if short == 0 || remaining == 0 || !request.is_unfiltered() {
                        break;
                    }
                    let (more, left) = self.pool.take_more(user, short).await?;
                    remaining = left;
                    let taken_more = more.len();
                    let topped = self.catalog.hydrate(more).await?;
                    short = topped.missing + short.saturating_sub(taken_more);
                    missing += topped.missing;
                    videos.extend(topped.cards);
                }
                (videos, missing)
            }
        };
        let needs_refill = taken.needs_refill || missing > 0 || remaining < LOW_WATERMARK;
        let claimed = if legacy {
            taken.claimed
        } else if needs_refill {
            self.pool.claim_refill(user).await?
        } else {
            false
        };
        Ok(Page {
            videos,
            generated_at_ms: taken.generated_at_ms,
            pool_remaining: remaining,
            should_enqueue_warm: claimed,
            stale: taken.stale,
            needs_refill,
            missing_items: missing,
        })
    }
}
