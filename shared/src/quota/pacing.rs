//! How background spend is spread over the Pacific day, and which stale sources get the
//! units when they run short. Quota policy, beside the guard that enforces the limits:
//! the guard says what may be spent at all; this says what the warmer may spend by now.
//!
//! * **The day's pace.** Background calls may bring the day's spend only to a share of
//!   the day's background units that grows with the Pacific day ([`paced_share`]): a head
//!   start for the caches that all go stale in the first hours, then evenly to midnight.
//!   The guard enforces it ([`background_cap_at`]), so the warms deferred overnight cannot
//!   spend the whole day's units in its first hour, and the evening peak, when most users
//!   refresh, still finds units. The pace is a ceiling, not a schedule: units the quiet
//!   night leaves unspent wait for the busy hours.
//! * **The late release.** The interactive reserve exists for users who force a refresh;
//!   what of it is unused by the evening is worth more to the warmer than to no one. From
//!   [`RELEASE_FROM`] to [`RELEASE_FULL`] of the Pacific day the background share rises
//!   to all but [`INTERACTIVE_FLOOR`] of each bucket, so no units are left unspent while
//!   users see short pools ([`background_share_at`]).
//! * **The refresh allocator.** While the paced allowance has room, every stale source
//!   may refresh. As the spend nears it, only the most-demanded share of sources may (the
//!   share shrinking with the room), so the last units go to what most users need and the
//!   long tail is served from its stale copy.

use jiff::Timestamp;

use super::{Bucket, QuotaLimits, QuotaState};
use crate::clock::pacific_day_fraction;

/// Share of the day's background units refreshes may have spent by a point of the Pacific
/// day: a head start for the caches that all go stale in the first hours, then evenly to
/// midnight, so the evening peak still finds units to refresh with.
pub const PACE_HEAD_START: f64 = 0.25;
/// How much room under the paced allowance (a share of the day's background units) the
/// allocator narrows over, from every stale source to none.
pub const PACE_BAND: f64 = 0.05;
/// Where in the Pacific day (17:00) the unused interactive reserve starts to be released
/// to background warming, ahead of the evening peak.
pub const RELEASE_FROM: f64 = 17.0 / 24.0;
/// Where (21:00) it is released in full.
pub const RELEASE_FULL: f64 = 21.0 / 24.0;
/// Share of each daily bucket (after the margin) never released: a forced refresh late in
/// the day still finds units.
pub const INTERACTIVE_FLOOR: f64 = 0.05;

/// The share of the day's background units that may have been spent by `day_fraction`.
pub fn paced_share(day_fraction: f64) -> f64 {
    (PACE_HEAD_START + day_fraction.clamp(0.0, 1.0) * (1.0 - PACE_HEAD_START)).min(1.0)
}

/// The share of each daily bucket (after the margin) background calls may spend by the end
/// of the day, as seen at `day_fraction`: `background_share` until [`RELEASE_FROM`], then
/// rising to all but [`INTERACTIVE_FLOOR`] at [`RELEASE_FULL`]. Never below the configured
/// share.
pub fn background_share_at(background_share: f64, day_fraction: f64) -> f64 {
    let base = background_share.clamp(0.0, 1.0);
    let released = (1.0 - INTERACTIVE_FLOOR).max(base);
    let t = ((day_fraction - RELEASE_FROM) / (RELEASE_FULL - RELEASE_FROM)).clamp(0.0, 1.0);
    base + (released - base) * t
}

/// What background calls may bring the day's spend of a bucket of `daily` to by `now`:
/// the day's background share (with the late release) times the day's pace. Without
/// pacing (`limits.day_pacing` off), the configured background cap.
pub fn background_cap_at(limits: &QuotaLimits, daily: u64, now: Timestamp) -> u64 {
    if !limits.day_pacing {
        return limits.daily_cap(daily, super::Priority::Background);
    }
    let f = pacific_day_fraction(now);
    let keep = 1.0 - limits.margin.clamp(0.0, 1.0);
    let share = background_share_at(limits.background_share, f) * paced_share(f);
    // The epsilon absorbs binary fractions, as in `QuotaLimits::daily_cap`.
    ((daily as f64 * keep * share + 1e-6).floor().max(0.0) as u64).min(daily)
}

/// What background calls may bring the day's spend of a bucket of `daily` to by the end
/// of the day (the late release included).
pub fn background_day_cap(limits: &QuotaLimits, daily: u64) -> u64 {
    if !limits.day_pacing {
        return limits.daily_cap(daily, super::Priority::Background);
    }
    let keep = 1.0 - limits.margin.clamp(0.0, 1.0);
    let share = background_share_at(limits.background_share, 1.0);
    ((daily as f64 * keep * share + 1e-6).floor().max(0.0) as u64).min(daily)
}

/// How long until the paced allowance of a bucket of `daily` has grown by `need`: its
/// slowest growth (the pace alone, before the release) gives an upper bound.
pub fn ms_until_paced(limits: &QuotaLimits, daily: u64, need: u64) -> u64 {
    let keep = 1.0 - limits.margin.clamp(0.0, 1.0);
    let per_day =
        daily as f64 * keep * limits.background_share.clamp(0.0, 1.0) * (1.0 - PACE_HEAD_START);
    if per_day <= 0.0 {
        return 86_400_000;
    }
    ((need.max(1) as f64 / per_day) * 86_400_000.0).ceil() as u64
}

/// The allocator's `budget_left` for a bucket that has spent `used` of a paced allowance
/// of `paced_cap`, out of a day's background cap of `day_cap`: 0.5 (everything may
/// refresh) while the room under the allowance is at least [`PACE_BAND`] of the day's
/// cap, falling to 0 as the room closes.
pub fn pace_left(used: u64, paced_cap: u64, day_cap: u64) -> f64 {
    let room = paced_cap.saturating_sub(used) as f64;
    let band = (day_cap as f64 * PACE_BAND).max(1.0);
    (room / (2.0 * band)).clamp(0.0, 1.0)
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

/// The allocator's `budget_left` from the guard's state: the room left under the paced
/// allowance ([`pace_left`]). 1.0 when the state has no units bucket.
pub fn background_budget_left(state: &QuotaState) -> f64 {
    state
        .bucket(Bucket::Units)
        .map(|b| pace_left(b.used, b.background_now, b.background_limit))
        .unwrap_or(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn background_spend_is_paced_over_the_pacific_day() {
        let l = QuotaLimits::default();
        let at = |h: &str| {
            format!("2026-11-25T{h}:00-08:00")
                .parse::<Timestamp>()
                .unwrap()
        };
        // Midnight: the head start only, a quarter of the 7,600 background units.
        assert_eq!(background_cap_at(&l, 10_000, at("00:00")), 1_900);
        // 12:00: a quarter plus half of the rest.
        assert_eq!(background_cap_at(&l, 10_000, at("12:00")), 4_750);
        // 17:00, the release begins: no more than the configured share yet.
        let five = background_cap_at(&l, 10_000, at("17:00"));
        assert!(five <= 7_600 && five > 5_900, "{five}");
        // 23:00: the reserve is released down to its floor (9,025 of 9,500 by midnight).
        let eleven = background_cap_at(&l, 10_000, at("23:00"));
        assert!(eleven > 7_600 && eleven < 9_025, "{eleven}");
        assert_eq!(background_day_cap(&l, 10_000), 9_025);
        // Searches are paced the same way.
        assert_eq!(background_cap_at(&l, 100, at("00:00")), 19);
        // Off: the configured cap at any hour.
        let flat = QuotaLimits {
            day_pacing: false,
            ..QuotaLimits::default()
        };
        assert_eq!(background_cap_at(&flat, 10_000, at("00:00")), 7_600);
        assert_eq!(background_day_cap(&flat, 10_000), 7_600);
    }

    #[test]
    fn the_release_never_lowers_a_larger_configured_share() {
        assert_eq!(background_share_at(0.8, 0.0), 0.8);
        assert_eq!(background_share_at(0.8, RELEASE_FROM), 0.8);
        assert!((background_share_at(0.8, RELEASE_FULL) - 0.95).abs() < 1e-9);
        assert_eq!(background_share_at(1.0, 1.0), 1.0);
    }

    #[test]
    fn a_paced_denial_waits_for_the_units_it_needs() {
        let l = QuotaLimits::default();
        // 5,700 units over the day after the head start: one every ~15 s.
        let one = ms_until_paced(&l, 10_000, 1);
        assert!((15_000..15_300).contains(&one), "{one}");
        let four = ms_until_paced(&l, 10_000, 4);
        assert!(four >= 4 * one - 4 && four <= 4 * one, "{four}");
    }

    #[test]
    fn the_allocator_narrows_to_the_most_demanded_as_the_room_closes() {
        // Room of a whole band or more: everything refreshes.
        assert!(pace_left(1_000, 2_000, 9_000) >= 0.5);
        assert!(allocate(99, 100, pace_left(1_000, 2_000, 9_000)));
        // Half a band of room: only the most-demanded half.
        let left = pace_left(1_775, 2_000, 9_000);
        assert!(allocate(0, 100, left) && !allocate(60, 100, left), "{left}");
        // No room: nothing stale refreshes.
        assert_eq!(pace_left(2_000, 2_000, 9_000), 0.0);
        assert!(allocate(0, 100, 0.1) && allocate(19, 100, 0.1) && !allocate(20, 100, 0.1));
        assert!(!allocate(0, 100, 0.0));
    }
}
