//! How background spend is spread over the Pacific day, and which stale sources get the
//! units when they run short. Quota policy, beside the guard that enforces the limits:
//! the guard says what may be spent at all; this says what the warmer should spend now.
//!
//! The refresh allocator: while at least half of today's background units are left (on
//! pace), every stale source may refresh. Below that, only the most-demanded share of
//! sources may (the share shrinking with the budget), so the units go to what most users
//! need and the long tail is served from its stale copy instead of starving the rest.

use jiff::Timestamp;

use super::{Bucket, QuotaState};
use crate::clock::pacific_day_fraction;

/// Share of the day's background units refreshes may have spent by a point of the Pacific
/// day: a head start for the caches that all go stale in the first hours, then evenly to
/// midnight, so the evening peak still finds units to refresh with.
pub const PACE_HEAD_START: f64 = 0.25;
/// How far behind that pace the allocator narrows from every stale source to none.
pub const PACE_BAND: f64 = 0.1;

/// The day pace as the allocator's `budget_left`: 0.5 (everything may refresh) when
/// spending is on pace, more when behind it, 0 when `PACE_BAND` of the day's units ahead.
pub fn pace_left(used_share: f64, day_fraction: f64) -> f64 {
    let paced = (PACE_HEAD_START + day_fraction * (1.0 - PACE_HEAD_START)).min(1.0);
    (0.5 + (paced - used_share) / (2.0 * PACE_BAND)).clamp(0.0, 1.0)
}

/// Whether the source ranked `rank` (0 = most demanded) of `total` may refresh when
/// `budget_left` of the day's background units remain.
pub fn allocate(rank: u64, total: u64, budget_left: f64) -> bool {
    if budget_left >= 0.5 {
        return true;
    }
    let share = budget_left * 2.0;
    (rank as f64) < (total as f64 * share).ceil()
}

/// The allocator's `budget_left` from the guard's state at `now`: the background units
/// left, held to the day's pace ([`pace_left`]). 1.0 when the state has no units bucket.
pub fn background_budget_left(state: &QuotaState, now: Timestamp) -> f64 {
    state
        .bucket(Bucket::Units)
        .map(|b| {
            let cap = b.background_limit.max(1) as f64;
            let used = b.used as f64 / cap;
            (1.0 - used)
                .clamp(0.0, 1.0)
                .min(pace_left(used, pacific_day_fraction(now)))
        })
        .unwrap_or(1.0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn refreshes_are_paced_over_the_pacific_day() {
        use super::{allocate, pace_left};
        // At 01:00 (1/24 of the day) the pace allows about 28% of the units.
        assert!(pace_left(0.20, 1.0 / 24.0) >= 0.5);
        assert!(allocate(99, 100, pace_left(0.20, 1.0 / 24.0)));
        // Ahead of it by half the band: only the most-demanded half refreshes.
        let left = pace_left(0.28 + 0.05, 1.0 / 24.0);
        assert!(allocate(0, 100, left) && !allocate(60, 100, left), "{left}");
        // Ahead by the whole band: nothing stale refreshes.
        assert_eq!(pace_left(0.40, 1.0 / 24.0), 0.0);
        // In the evening most of the day is allowed.
        assert!(pace_left(0.80, 20.0 / 24.0) >= 0.5);
    }

    #[test]
    fn the_allocator_narrows_to_the_most_demanded_as_the_budget_shrinks() {
        use super::allocate;
        assert!(allocate(99, 100, 0.6));
        assert!(allocate(0, 100, 0.1) && allocate(19, 100, 0.1) && !allocate(20, 100, 0.1));
        assert!(!allocate(0, 100, 0.0));
        assert!(allocate(49, 100, 0.25) && !allocate(50, 100, 0.25));
    }
}
