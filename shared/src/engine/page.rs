//! A refresh's page: entries taken from the user's pool, made into cards from the
//! catalog ([`Engine::take_page`]).

use crate::domain::UserId;
use crate::store::StoreError;

use super::catalog::Card;
use super::pool::{LOW_WATERMARK, Page, PageRequest, PageResult};
use super::warm::Engine;

/// How many times a page short of cards (its videos gone from the catalog) is topped up
/// from the pool before it is served short.
const TOP_UPS: usize = 2;

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
