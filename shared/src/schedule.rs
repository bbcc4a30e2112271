//! When a frequency's runs are due. Pure arithmetic on instants.
//!
//! Maestro's rule: with a period `p` and an offset `o` (0 ≤ o < p), the instants are
//! `k·p + o` seconds after the Unix epoch (UTC). A run is due at the latest instant not after
//! now; the next tick after that instant creates it.

use jiff::Timestamp;

use crate::catalog::Schedule;

/// The latest scheduled instant at or before `now`.
pub fn latest_instant(schedule: &Schedule, now: Timestamp) -> Timestamp {
    match *schedule {
        Schedule::Period {
            period_seconds,
            offset_seconds,
        } => {
            let now_s = now.as_second();
            let candidate = now_s.div_euclid(period_seconds) * period_seconds + offset_seconds;
            let instant = if candidate > now_s {
                candidate - period_seconds
            } else {
                candidate
            };
            Timestamp::from_second(instant).expect("an instant near now is in jiff's range")
        }
    }
}

/// The instant before `instant` (which must be one of the schedule's).
pub fn previous_instant(schedule: &Schedule, instant: Timestamp) -> Timestamp {
    match *schedule {
        Schedule::Period { period_seconds, .. } => {
            Timestamp::from_second(instant.as_second() - period_seconds)
                .expect("an instant near now is in jiff's range")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn period(p: i64, o: i64) -> Schedule {
        Schedule::Period {
            period_seconds: p,
            offset_seconds: o,
        }
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn daily_with_an_offset_is_due_at_the_offset_each_day() {
        let daily_at_two = period(86_400, 7_200);
        assert_eq!(
            latest_instant(&daily_at_two, ts("2026-11-22T10:00:00Z")),
            ts("2026-11-22T02:00:00Z")
        );
        assert_eq!(
            latest_instant(&daily_at_two, ts("2026-11-22T01:59:59Z")),
            ts("2026-11-21T02:00:00Z"),
            "before today's offset the latest instant is yesterday's"
        );
        assert_eq!(
            latest_instant(&daily_at_two, ts("2026-11-22T02:00:00Z")),
            ts("2026-11-22T02:00:00Z"),
            "an instant is due at that very second"
        );
    }

    #[test]
    fn weeks_are_counted_from_the_epoch_a_thursday() {
        let weekly = period(7 * 86_400, 0);
        let instant = latest_instant(&weekly, ts("2026-11-22T12:00:00Z"));
        assert_eq!(instant, ts("2026-11-19T00:00:00Z"));
        assert_eq!(
            instant.to_zoned(jiff::tz::TimeZone::UTC).weekday(),
            jiff::civil::Weekday::Thursday
        );
    }

    proptest! {
        #[test]
        fn the_latest_instant_is_on_the_grid_not_after_now_and_within_a_period(
            p in 60i64..1_000_000, o_frac in 0.0f64..1.0, now in 0i64..4_000_000_000
        ) {
            let o = ((p as f64) * o_frac) as i64 % p;
            let s = period(p, o);
            let now = Timestamp::from_second(now).unwrap();
            let instant = latest_instant(&s, now);
            prop_assert!(instant <= now);
            prop_assert!(now.as_second() - instant.as_second() < p);
            prop_assert_eq!((instant.as_second() - o).rem_euclid(p), 0);
            prop_assert_eq!(previous_instant(&s, instant).as_second(), instant.as_second() - p);
        }
    }
}
