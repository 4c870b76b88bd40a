//! The pure parts of the guard: key naming and caps. Everything that touches Redis is
//! tested against a real redis-server in `tests/integration/tests/quota_guard.rs`.

use super::*;

/// Redis Cluster's key slot: CRC16/XMODEM of the hash tag (or the whole key), mod 16384.
fn cluster_slot(key: &str) -> u16 {
    let bytes = key.as_bytes();
    let hashed = match bytes.iter().position(|&b| b == b'{') {
        Some(open) => match bytes[open + 1..].iter().position(|&b| b == b'}') {
            Some(len) if len > 0 => &bytes[open + 1..open + 1 + len],
            _ => bytes,
        },
        None => bytes,
    };
    let mut crc: u16 = 0;
    for &b in hashed {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc % 16384
}

#[test]
fn cluster_slot_matches_the_redis_spec() {
    // Known values from the Redis Cluster specification / CLUSTER KEYSLOT.
    assert_eq!(cluster_slot("123456789"), 0x31C3);
    assert_eq!(cluster_slot("foo"), 12182);
    assert_eq!(
        cluster_slot("{user1000}.following"),
        cluster_slot("{user1000}.followers")
    );
}

#[test]
fn every_quota_key_of_every_day_is_in_one_slot() {
    let slot = cluster_slot(&keys::breaker());
    for day in ["2026-11-25", "2026-11-26", "2027-03-14"] {
        for key in keys::all(day) {
            assert!(key.contains(keys::HASH_TAG), "{key} lacks the hash tag");
            assert_eq!(key.matches('{').count(), 1, "{key} has a second tag");
            assert_eq!(cluster_slot(&key), slot, "{key} hashes elsewhere");
        }
    }
    // Days and buckets get distinct keys.
    let d1 = keys::all("2026-11-25");
    let d2 = keys::all("2026-11-26");
    assert_ne!(d1[0], d2[0]);
    assert_ne!(d1[0], d1[1]);
    let mut all: Vec<_> = d1.to_vec();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 8);
}

#[test]
fn caps_apply_the_margin_then_the_background_share() {
    let l = QuotaLimits::default();
    assert_eq!(l.units_cap(Priority::Interactive), 9_500);
    assert_eq!(l.units_cap(Priority::Background), 7_600);
    assert_eq!(l.searches_cap(Priority::Interactive), 95);
    assert_eq!(l.searches_cap(Priority::Background), 76);
}

#[test]
fn caps_round_down_and_stay_in_range() {
    let l = QuotaLimits {
        margin: 0.05,
        background_share: 0.8,
        ..QuotaLimits::default()
    };
    // 7 × 0.95 = 6.65 → 6; × 0.8 = 5.32 → 5.
    assert_eq!(l.daily_cap(7, Priority::Interactive), 6);
    assert_eq!(l.daily_cap(7, Priority::Background), 5);
    let none = QuotaLimits {
        margin: 0.0,
        background_share: 1.0,
        ..QuotaLimits::default()
    };
    assert_eq!(none.daily_cap(500, Priority::Interactive), 500);
    assert_eq!(none.daily_cap(500, Priority::Background), 500);
    assert_eq!(none.daily_cap(0, Priority::Interactive), 0);
    // Out-of-range fractions are clamped, never overspend.
    let wild = QuotaLimits {
        margin: -1.0,
        background_share: 3.0,
        ..QuotaLimits::default()
    };
    assert_eq!(wild.daily_cap(100, Priority::Background), 100);
    let shut = QuotaLimits {
        margin: 2.0,
        ..QuotaLimits::default()
    };
    assert_eq!(shut.daily_cap(100, Priority::Interactive), 0);
    // Binary fractions do not lose a unit: 0.1, 0.3, 0.7 margins on round numbers.
    for (margin, want) in [(0.1, 9_000), (0.3, 7_000), (0.7, 3_000)] {
        let l = QuotaLimits {
            margin,
            ..QuotaLimits::default()
        };
        assert_eq!(
            l.daily_cap(10_000, Priority::Interactive),
            want,
            "margin {margin}"
        );
    }
}

#[test]
fn background_never_gets_more_than_interactive() {
    for daily in [0u64, 1, 7, 99, 100, 10_000] {
        for share in [0.0, 0.33, 0.8, 1.0] {
            for margin in [0.0, 0.05, 0.5] {
                let l = QuotaLimits {
                    margin,
                    background_share: share,
                    ..QuotaLimits::default()
                };
                assert!(
                    l.daily_cap(daily, Priority::Background)
                        <= l.daily_cap(daily, Priority::Interactive)
                );
                assert!(l.daily_cap(daily, Priority::Interactive) <= daily);
            }
        }
    }
}

#[test]
fn limit_codes_round_trip_the_script() {
    let all = [
        Limit::DailyUnits,
        Limit::DailySearches,
        Limit::PerSecond,
        Limit::PerMinute,
        Limit::DailyBreaker,
        Limit::Backoff,
        Limit::SearchBreaker,
        Limit::UserBudget,
    ];
    for (i, limit) in all.iter().enumerate() {
        assert_eq!(Limit::from_code(i as i64 + 1), Some(*limit));
    }
    assert_eq!(Limit::from_code(0), None);
    assert_eq!(Limit::from_code(9), None);
    assert!(Limit::DailyBreaker.is_daily() && !Limit::Backoff.is_daily());
    assert!(Limit::SearchBreaker.is_daily() && Limit::UserBudget.is_daily());
}

fn state(units_used: u64, breaker: bool, backoff: bool) -> QuotaState {
    let l = QuotaLimits::default();
    QuotaState {
        day: "2026-11-25".into(),
        buckets: vec![
            BucketState {
                name: Bucket::Units,
                used: units_used,
                limit: l.units_cap(Priority::Interactive),
                left: l
                    .units_cap(Priority::Interactive)
                    .saturating_sub(units_used),
                background_limit: l.units_cap(Priority::Background),
                background_now: l.units_cap(Priority::Background),
            },
            BucketState {
                name: Bucket::Search,
                used: 0,
                limit: 95,
                left: 95,
                background_limit: 76,
                background_now: 76,
            },
        ],
        breaker_until_ms: breaker.then_some(1),
        search_breaker_until_ms: None,
        backoff_until_ms: backoff.then_some(1),
        windows: vec![],
    }
}

#[test]
fn level_reads_breaker_caps_and_backoff() {
    assert_eq!(state(0, false, false).level(), QuotaLevel::Ok);
    assert_eq!(state(7_599, false, false).level(), QuotaLevel::Ok);
    assert_eq!(state(7_600, false, false).level(), QuotaLevel::Limited);
    assert_eq!(state(10, false, true).level(), QuotaLevel::Limited);
    assert_eq!(state(9_500, false, false).level(), QuotaLevel::Exhausted);
    assert_eq!(state(10, true, false).level(), QuotaLevel::Exhausted);
    assert_eq!(
        serde_json::to_string(&QuotaLevel::Exhausted).unwrap(),
        "\"exhausted\""
    );
}

#[test]
fn jitter_stays_in_range_and_varies() {
    assert_eq!(jitter_ms(0), 0);
    let draws: Vec<u64> = (0..200).map(|_| jitter_ms(100)).collect();
    assert!(draws.iter().all(|&d| d <= 100));
    let distinct: std::collections::BTreeSet<_> = draws.iter().collect();
    assert!(distinct.len() > 20, "jitter is not random: {distinct:?}");
}

#[test]
fn the_script_names_every_op_the_guard_sends() {
    let lua = GUARD_LUA;
    for op in [
        "'admit'",
        "'state'",
        "'breaker'",
        "'backoff'",
        "'search_breaker'",
    ] {
        assert!(lua.contains(op), "guard.lua lacks {op}");
    }
    assert!(
        !lua.contains("'TIME'"),
        "time must come from ARGV, not Redis TIME"
    );
}

fn at(s: &str) -> jiff::Timestamp {
    s.parse().unwrap()
}

#[test]
fn a_breaker_belongs_to_the_day_its_call_was_charged_to() {
    // Pacific midnight of 2026-11-26 is 08:00 UTC (PST).
    let midnight = at("2026-11-26T08:00:00Z").as_millisecond();
    // Charged mid-day: closed until that day's end.
    assert_eq!(breaker_until(at("2026-11-25T20:00:00Z")), midnight);
    // Charged 0.1 s before midnight (the answer may come after it): that day's end, so a
    // late answer closes nothing of the new day.
    assert_eq!(breaker_until(at("2026-11-26T07:59:59.9Z")), midnight);
    // Charged just after our midnight: Google may still count the old day; only the skew.
    assert_eq!(
        breaker_until(at("2026-11-26T08:00:00.1Z")),
        midnight + MIDNIGHT_SKEW_MS
    );
    assert_eq!(
        breaker_until(at("2026-11-26T08:09:59.999Z")),
        midnight + MIDNIGHT_SKEW_MS
    );
    // Past the skew: the whole new day.
    assert_eq!(
        breaker_until(at("2026-11-26T08:10:00Z")),
        at("2026-11-27T08:00:00Z").as_millisecond()
    );
    // DST: the spring-forward day starts at 08:00 UTC and ends at 07:00 UTC.
    assert_eq!(
        breaker_until(at("2027-03-14T12:00:00Z")),
        at("2027-03-15T07:00:00Z").as_millisecond()
    );
}
