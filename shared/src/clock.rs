//! Time for quota windows and freshness.
//!
//! Time is injected rather than read from Redis `TIME`: ElastiCache Serverless may refuse
//! `TIME` inside scripts, and tests and the day simulator must be able to move time.
//! The Pacific day comes from the tz database compiled into the binary (jiff's bundled
//! tzdb), because the Lambda OS image is not a place to count on `/usr/share/zoneinfo`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use jiff::Timestamp;
use jiff::tz::TimeZone;

/// The time zone YouTube's daily quota resets in.
pub const QUOTA_TIME_ZONE: &str = "America/Los_Angeles";

pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> Timestamp;

    fn now_ms(&self) -> i64 {
        self.now().as_millisecond()
    }

    /// Waits `duration` of this clock's time. The YouTube client paces short quota windows
    /// with it, so a simulated clock can let the window pass without the real wait.
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        Box::pin(tokio::time::sleep(duration))
    }
}

pub type SharedClock = Arc<dyn Clock>;

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that runs with real time from an adjustable offset, so tests can jump across
/// Pacific midnight while short windows still see time pass.
#[derive(Debug, Default)]
pub struct OffsetClock {
    offset_ms: AtomicI64,
}

impl OffsetClock {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn set(&self, at: Timestamp) {
        let offset = at.as_millisecond() - Timestamp::now().as_millisecond();
        self.offset_ms.store(offset, Ordering::SeqCst);
    }

    pub fn advance_ms(&self, ms: i64) {
        self.offset_ms.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> Timestamp {
        let ms = Timestamp::now().as_millisecond() + self.offset_ms.load(Ordering::SeqCst);
        Timestamp::from_millisecond(ms).unwrap_or(Timestamp::MAX)
    }
}

/// A clock that only moves when told to: the day simulator's clock.
#[derive(Debug)]
pub struct ManualClock {
    now_ms: AtomicI64,
}

impl ManualClock {
    pub fn new(at: Timestamp) -> Self {
        Self {
            now_ms: AtomicI64::new(at.as_millisecond()),
        }
    }

    pub fn set(&self, at: Timestamp) {
        self.now_ms.store(at.as_millisecond(), Ordering::SeqCst);
    }

    pub fn advance_ms(&self, ms: i64) {
        self.now_ms.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_millisecond(self.now_ms.load(Ordering::SeqCst)).unwrap_or(Timestamp::MAX)
    }
}

fn pacific() -> TimeZone {
    // The bundled tzdb always has this zone; failing here would be a build defect.
    TimeZone::get(QUOTA_TIME_ZONE).expect("bundled tzdb has America/Los_Angeles")
}

/// The quota day (`YYYY-MM-DD` in Pacific time) that `at` falls in.
pub fn pacific_date(at: Timestamp) -> String {
    at.to_zoned_datetime(pacific()).date().to_string()
}

/// How far into its Pacific quota day `at` is, from 0.0 at midnight to 1.0 at the next
/// (DST days are 23 or 25 hours long, so this is not the hour over 24).
pub fn pacific_day_fraction(at: Timestamp) -> f64 {
    let zoned = at.to_zoned_datetime(pacific());
    let (Ok(start), Ok(end)) = (
        zoned.start_of_day(),
        zoned.tomorrow().and_then(|t| t.start_of_day()),
    ) else {
        return 0.0;
    };
    let (start, end) = (
        start.timestamp().as_millisecond(),
        end.timestamp().as_millisecond(),
    );
    ((at.as_millisecond() - start) as f64 / (end - start).max(1) as f64).clamp(0.0, 1.0)
}

/// The instant the quota day containing `at` began (the Pacific midnight before it).
pub fn pacific_day_start(at: Timestamp) -> Timestamp {
    at.to_zoned_datetime(pacific())
        .start_of_day()
        .map(|t| t.timestamp())
        .unwrap_or(Timestamp::MIN)
}

/// The instant the quota day containing `at` ends (the next Pacific midnight, DST-aware).
pub fn next_pacific_midnight(at: Timestamp) -> Timestamp {
    let zoned = at.to_zoned_datetime(pacific());
    zoned
        .tomorrow()
        .and_then(|t| t.start_of_day())
        .map(|t| t.timestamp())
        .unwrap_or(Timestamp::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn pacific_day_boundaries_follow_daylight_saving() {
        // November, PST (UTC-8): the day turns at 08:00Z.
        assert_eq!(pacific_date(ts("2026-11-25T07:59:59Z")), "2026-11-24");
        assert_eq!(pacific_date(ts("2026-11-25T08:00:00Z")), "2026-11-25");
        // July, PDT (UTC-7): the day turns at 07:00Z.
        assert_eq!(pacific_date(ts("2026-07-01T06:59:59Z")), "2026-06-30");
        assert_eq!(pacific_date(ts("2026-07-01T07:00:00Z")), "2026-07-01");
        // The day of the March switch ends at 07:00Z (already PDT); the day of the
        // November switch ends at 08:00Z (already PST).
        assert_eq!(
            next_pacific_midnight(ts("2026-03-08T12:00:00Z")),
            ts("2026-03-09T07:00:00Z")
        );
        assert_eq!(
            next_pacific_midnight(ts("2026-11-01T12:00:00Z")),
            ts("2026-11-02T08:00:00Z")
        );
        // 23:59 PST on 7 March: the 8th starts at 08:00Z, still in PST.
        assert_eq!(
            next_pacific_midnight(ts("2026-03-08T07:59:00Z")),
            ts("2026-03-08T08:00:00Z")
        );
    }

    #[test]
    fn day_fraction_runs_from_pacific_midnight_to_the_next() {
        assert_eq!(pacific_day_fraction(ts("2026-11-25T08:00:00Z")), 0.0);
        assert_eq!(pacific_day_fraction(ts("2026-11-25T20:00:00Z")), 0.5);
        // The November switch day is 25 hours long: noon is 12/25 of it.
        let f = pacific_day_fraction(ts("2026-11-01T20:00:00Z"));
        assert!((f - 13.0 / 25.0).abs() < 1e-9, "{f}");
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(ts("2026-01-01T00:00:00Z"));
        assert_eq!(clock.now(), ts("2026-01-01T00:00:00Z"));
        clock.advance_ms(1500);
        assert_eq!(
            clock.now_ms(),
            ts("2026-01-01T00:00:01.5Z").as_millisecond()
        );
    }
}
