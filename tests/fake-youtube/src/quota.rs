//! Quota metering the way Google does it.
//!
//! Daily buckets are fixed windows keyed by the Pacific date of the fake's
//! clock (reset at America/Los_Angeles midnight, DST-aware), because that is
//! what the project's quota guard has to predict. Every call with a valid key
//! is charged before it is served, invalid ones included; a refused call is
//! not charged. Short windows (per second, per minute) are fixed windows of
//! the fake clock too, so a test that moves time moves them as well.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

/// The two daily buckets of the YouTube Data API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    /// The shared 10,000 units/day pool.
    Units,
    /// search.list's own 100 calls/day.
    Search,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    pub daily_units: u64,
    pub daily_searches: u64,
    pub max_calls_per_second: Option<u64>,
    /// Cost-weighted: a unit call counts its units, a search counts 1.
    pub max_units_per_minute: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MethodCounters {
    pub calls: u64,
    pub units: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayUsage {
    pub units: u64,
    pub searches: u64,
    /// The day's charged calls by Google's method name.
    #[serde(default)]
    pub per_method: BTreeMap<String, MethodCounters>,
    /// Distinct uploads playlists served that day: how many sources were polled.
    #[serde(default)]
    pub distinct_playlists: u64,
    /// Uploads playlists served that day (every call) whose channel had a live push
    /// subscription at the fake's hub when polled.
    #[serde(default)]
    pub polls_of_subscribed: u64,
}

/// A snapshot of what the fake metered.
///
/// `units_used`/`searches_used` are for `day` (the Pacific date of the fake's
/// now) and drop to zero at Pacific midnight; `days` keeps every day's usage
/// so a test can check no day went over. Everything else counts since start
/// (or the last `/admin/reset`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    pub day: String,
    pub units_used: u64,
    pub searches_used: u64,
    /// Keyed by Google's method name: "search.list", "videos.list", ...
    /// Only calls that were charged appear here.
    pub per_method: BTreeMap<String, MethodCounters>,
    pub quota_violations: u64,
    pub rate_violations: u64,
    pub invalid_key: u64,
    /// Every request under /youtube/v3, whatever its outcome.
    pub requests: u64,
    #[serde(default)]
    pub days: BTreeMap<String, DayUsage>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Quota,
    Rate,
}

/// Pacific date (YYYY-MM-DD) of an instant.
pub fn pacific_date(t: Timestamp) -> String {
    static TZ: std::sync::OnceLock<TimeZone> = std::sync::OnceLock::new();
    let tz = TZ.get_or_init(|| {
        TimeZone::get("America/Los_Angeles").expect("bundled tzdb has America/Los_Angeles")
    });
    t.to_zoned_datetime(tz.clone()).date().to_string()
}

#[derive(Debug)]
pub(crate) struct Meter {
    pub(crate) limits: Limits,
    counters: Counters,
    second: (i64, u64),
    minute: (i64, u64),
    /// The uploads playlists served on the current day (`counters.day`).
    playlists_today: BTreeSet<String>,
}

/// Everything the meter has counted, to carry it over to another fake (a simulation
/// resumed from a checkpoint).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeterState {
    pub counters: Counters,
    pub playlists_today: BTreeSet<String>,
}

impl Meter {
    pub(crate) fn new(limits: Limits, now: Timestamp) -> Self {
        let mut m = Meter {
            limits,
            counters: Counters::default(),
            second: (i64::MIN, 0),
            minute: (i64::MIN, 0),
            playlists_today: BTreeSet::new(),
        };
        m.roll(now);
        m
    }

    pub(crate) fn state(&self) -> MeterState {
        MeterState {
            counters: self.counters.clone(),
            playlists_today: self.playlists_today.clone(),
        }
    }

    pub(crate) fn restore(&mut self, state: MeterState) {
        self.counters = state.counters;
        self.playlists_today = state.playlists_today;
    }

    /// Counts an uploads playlist served now (once a day each), and every poll of a
    /// channel the hub was pushing (`subscribed`).
    pub(crate) fn note_playlist(&mut self, playlist_id: &str, subscribed: bool, now: Timestamp) {
        self.roll(now);
        let day = self
            .counters
            .days
            .entry(self.counters.day.clone())
            .or_default();
        if self.playlists_today.insert(playlist_id.to_owned()) {
            day.distinct_playlists += 1;
        }
        day.polls_of_subscribed += u64::from(subscribed);
    }

    fn roll(&mut self, now: Timestamp) {
        let day = pacific_date(now);
        if day != self.counters.day {
            let usage = self.counters.days.get(&day).cloned().unwrap_or_default();
            self.counters.units_used = usage.units;
            self.counters.searches_used = usage.searches;
            self.counters.day = day;
            self.playlists_today.clear();
        }
    }

    pub(crate) fn note_request(&mut self) {
        self.counters.requests += 1;
    }

    pub(crate) fn note_invalid_key(&mut self) {
        self.counters.invalid_key += 1;
    }

    /// Charges one call of `method`, or says why it is refused (uncharged).
    pub(crate) fn charge(
        &mut self,
        method: &str,
        bucket: Bucket,
        now: Timestamp,
    ) -> Result<(), Refusal> {
        self.roll(now);
        let secs = now.as_second();
        let minute = secs.div_euclid(60);
        if self.second.0 != secs {
            self.second = (secs, 0);
        }
        if self.minute.0 != minute {
            self.minute = (minute, 0);
        }
        let weight = 1;
        if self
            .limits
            .max_calls_per_second
            .is_some_and(|max| self.second.1 + 1 > max)
            || self
                .limits
                .max_units_per_minute
                .is_some_and(|max| self.minute.1 + weight > max)
        {
            self.counters.rate_violations += 1;
            return Err(Refusal::Rate);
        }
        let (used, limit) = match bucket {
            Bucket::Units => (self.counters.units_used, self.limits.daily_units),
            Bucket::Search => (self.counters.searches_used, self.limits.daily_searches),
        };
        if used + 1 > limit {
            self.counters.quota_violations += 1;
            return Err(Refusal::Quota);
        }
        self.second.1 += 1;
        self.minute.1 += weight;
        let day = self
            .counters
            .days
            .entry(self.counters.day.clone())
            .or_default();
        let m = self
            .counters
            .per_method
            .entry(method.to_string())
            .or_default();
        m.calls += 1;
        let dm = day.per_method.entry(method.to_string()).or_default();
        dm.calls += 1;
        match bucket {
            Bucket::Units => {
                self.counters.units_used += 1;
                day.units += 1;
                m.units += 1;
                dm.units += 1;
            }
            Bucket::Search => {
                self.counters.searches_used += 1;
                day.searches += 1;
            }
        }
        Ok(())
    }

    pub(crate) fn snapshot(&mut self, now: Timestamp) -> Counters {
        self.roll(now);
        self.counters.clone()
    }

    pub(crate) fn reset(&mut self, now: Timestamp) {
        self.counters = Counters::default();
        self.playlists_today.clear();
        self.second = (i64::MIN, 0);
        self.minute = (i64::MIN, 0);
        self.roll(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn pacific_midnight_follows_dst() {
        assert_eq!(pacific_date(t("2026-11-25T07:59:59Z")), "2026-11-24");
        assert_eq!(pacific_date(t("2026-11-25T08:00:00Z")), "2026-11-25");
        assert_eq!(pacific_date(t("2026-07-01T06:59:59Z")), "2026-06-30");
        assert_eq!(pacific_date(t("2026-07-01T07:00:00Z")), "2026-07-01");
        // 2026-03-08: PST until 10:00Z; that day's midnight was 08:00Z, the next is 07:00Z.
        assert_eq!(pacific_date(t("2026-03-08T07:59:59Z")), "2026-03-07");
        assert_eq!(pacific_date(t("2026-03-08T08:00:00Z")), "2026-03-08");
        assert_eq!(pacific_date(t("2026-03-09T06:59:59Z")), "2026-03-08");
        assert_eq!(pacific_date(t("2026-03-09T07:00:00Z")), "2026-03-09");
        // 2026-11-01: PDT until 09:00Z; midnight was 07:00Z, the next is 08:00Z.
        assert_eq!(pacific_date(t("2026-11-01T06:59:59Z")), "2026-10-31");
        assert_eq!(pacific_date(t("2026-11-01T07:00:00Z")), "2026-11-01");
        assert_eq!(pacific_date(t("2026-11-02T07:59:59Z")), "2026-11-01");
        assert_eq!(pacific_date(t("2026-11-02T08:00:00Z")), "2026-11-02");
    }

    #[test]
    fn refusals_are_not_charged() {
        let now = t("2026-11-25T12:00:00Z");
        let limits = Limits {
            daily_units: 2,
            daily_searches: 1,
            max_calls_per_second: None,
            max_units_per_minute: None,
        };
        let mut m = Meter::new(limits, now);
        assert_eq!(m.charge("videos.list", Bucket::Units, now), Ok(()));
        assert_eq!(m.charge("videos.list", Bucket::Units, now), Ok(()));
        assert_eq!(
            m.charge("videos.list", Bucket::Units, now),
            Err(Refusal::Quota)
        );
        assert_eq!(m.charge("search.list", Bucket::Search, now), Ok(()));
        assert_eq!(
            m.charge("search.list", Bucket::Search, now),
            Err(Refusal::Quota)
        );
        let c = m.snapshot(now);
        assert_eq!(
            (c.units_used, c.searches_used, c.quota_violations),
            (2, 1, 2)
        );
        assert_eq!(
            c.per_method["search.list"],
            MethodCounters { calls: 1, units: 0 }
        );
    }

    #[test]
    fn days_keep_their_methods_and_polled_playlists_and_carry_over() {
        let limits = Limits {
            daily_units: 100,
            daily_searches: 10,
            max_calls_per_second: None,
            max_units_per_minute: None,
        };
        let day1 = t("2026-11-25T12:00:00Z");
        let day2 = t("2026-11-26T12:00:00Z");
        let mut m = Meter::new(limits.clone(), day1);
        for id in ["UUa", "UUb", "UUa"] {
            m.charge("playlistItems.list", Bucket::Units, day1).unwrap();
            m.note_playlist(id, false, day1);
        }
        m.charge("search.list", Bucket::Search, day1).unwrap();
        m.charge("playlistItems.list", Bucket::Units, day2).unwrap();
        m.note_playlist("UUa", true, day2);
        let c = m.snapshot(day2);
        let d1 = &c.days["2026-11-25"];
        assert_eq!((d1.units, d1.searches, d1.distinct_playlists), (3, 1, 2));
        assert_eq!(
            d1.per_method["playlistItems.list"],
            MethodCounters { calls: 3, units: 3 }
        );
        assert_eq!(
            d1.per_method["search.list"],
            MethodCounters { calls: 1, units: 0 }
        );
        assert_eq!(c.days["2026-11-26"].distinct_playlists, 1);
        assert_eq!(d1.polls_of_subscribed, 0);
        assert_eq!(c.days["2026-11-26"].polls_of_subscribed, 1);

        // Another meter given this one's state goes on counting where it stopped.
        let mut resumed = Meter::new(limits, day2);
        resumed.restore(m.state());
        resumed.note_playlist("UUa", false, day2);
        resumed.note_playlist("UUc", false, day2);
        resumed.charge("videos.list", Bucket::Units, day2).unwrap();
        let c = resumed.snapshot(day2);
        assert_eq!(c.days["2026-11-26"].distinct_playlists, 2);
        assert_eq!(c.days["2026-11-26"].polls_of_subscribed, 1);
        assert_eq!((c.units_used, c.days["2026-11-26"].units), (2, 2));
    }
}
