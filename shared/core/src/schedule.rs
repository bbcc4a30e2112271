//! When a frequency's runs are due, and whether a table runs at an instant. Pure arithmetic on
//! instants.
//!
//! Two kinds of schedule:
//! - a period and an offset (Maestro's rule): the instants are `k·period + offset` seconds
//!   after the Unix epoch, UTC, with 0 ≤ offset < period;
//! - a cron expression (five fields: minute hour day-of-month month day-of-week) in a time
//!   zone, which follows that zone's daylight-saving changes.
//!
//! A run is due at the latest instant not after now. Calendar conditions on a table (months,
//! weekdays, days of the month, hours) say at which instants it takes part: fields within one
//! condition must all match, any one condition suffices, none means always.

use croner::Cron;
use croner::parser::{CronParser, Seconds};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

/// How far apart two instants of one schedule may be for `between` and gaps to be counted:
/// the search for an instant stops after this many.
pub const MAX_INSTANTS: usize = 100_000;

#[derive(Clone, Debug)]
pub enum Schedule {
    Period {
        period_seconds: i64,
        offset_seconds: i64,
    },
    Cron {
        cron: Box<Cron>,
        text: String,
        zone: TimeZone,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ScheduleError(pub String);

impl Schedule {
    pub fn period(period_seconds: i64, offset_seconds: i64) -> Result<Self, ScheduleError> {
        if period_seconds < 60 {
            return Err(ScheduleError(format!(
                "the period must be at least 60 seconds, not {period_seconds}"
            )));
        }
        if !(0..period_seconds).contains(&offset_seconds) {
            return Err(ScheduleError(format!(
                "the offset must be at least 0 and less than the period ({period_seconds} s), not {offset_seconds}"
            )));
        }
        Ok(Schedule::Period {
            period_seconds,
            offset_seconds,
        })
    }

    /// A five-field cron expression in a time zone (IANA name; UTC when none).
    pub fn cron(text: &str, time_zone: Option<&str>) -> Result<Self, ScheduleError> {
        let cron = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .build()
            .parse(text)
            .map_err(|e| ScheduleError(format!("cron `{text}`: {e}")))?;
        let zone = zone(time_zone)?;
        let schedule = Schedule::Cron {
            cron: Box::new(cron),
            text: text.to_string(),
            zone,
        };
        // A pattern that never matches (`0 0 30 2 *`) is refused now, not at the first tick.
        if schedule.latest(Timestamp::now()).is_none() {
            return Err(ScheduleError(format!("cron `{text}` never matches")));
        }
        Ok(schedule)
    }

    /// The zone that calendar conditions are read in.
    pub fn zone(&self) -> TimeZone {
        match self {
            Schedule::Period { .. } => TimeZone::UTC,
            Schedule::Cron { zone, .. } => zone.clone(),
        }
    }

    /// The latest scheduled instant at or before `now`.
    pub fn latest(&self, now: Timestamp) -> Option<Timestamp> {
        match self {
            Schedule::Period {
                period_seconds,
                offset_seconds,
            } => {
                let now_s = now.as_second();
                let candidate = now_s.div_euclid(*period_seconds) * period_seconds + offset_seconds;
                let instant = if candidate > now_s {
                    candidate - period_seconds
                } else {
                    candidate
                };
                Timestamp::from_second(instant).ok()
            }
            Schedule::Cron { cron, zone, .. } => cron
                .find_previous_occurrence(&now.to_zoned(zone.clone()), true)
                .ok()
                .map(|z| z.timestamp()),
        }
    }

    /// The instant before `instant`.
    pub fn previous(&self, instant: Timestamp) -> Option<Timestamp> {
        match self {
            Schedule::Period { period_seconds, .. } => {
                Timestamp::from_second(instant.as_second() - period_seconds).ok()
            }
            Schedule::Cron { cron, zone, .. } => cron
                .find_previous_occurrence(&instant.to_zoned(zone.clone()), false)
                .ok()
                .map(|z| z.timestamp()),
        }
    }

    /// The instants after `after` up to and including `up_to`, at most `limit` of them (the
    /// earliest).
    pub fn between(&self, after: Timestamp, up_to: Timestamp, limit: usize) -> Vec<Timestamp> {
        let mut out = Vec::new();
        match self {
            Schedule::Period {
                period_seconds,
                offset_seconds,
            } => {
                let first = after.as_second()
                    - (after.as_second() - offset_seconds).rem_euclid(*period_seconds)
                    + period_seconds;
                let mut s = first;
                while s <= up_to.as_second() && out.len() < limit {
                    if let Ok(t) = Timestamp::from_second(s) {
                        out.push(t);
                    }
                    s += period_seconds;
                }
            }
            Schedule::Cron { cron, zone, .. } => {
                let start = after.to_zoned(zone.clone());
                for next in cron.iter_after(start).take(limit) {
                    if next.timestamp() > up_to {
                        break;
                    }
                    out.push(next.timestamp());
                }
            }
        }
        out
    }

    /// How many instants lie strictly between `last` and `instant` (a gap of missed runs),
    /// counting at most `MAX_INSTANTS`.
    pub fn missed_between(&self, last: Timestamp, instant: Timestamp) -> usize {
        match self {
            Schedule::Period { period_seconds, .. } => {
                let gap = (instant.as_second() - last.as_second()) / period_seconds - 1;
                usize::try_from(gap.max(0)).unwrap_or(0).min(MAX_INSTANTS)
            }
            Schedule::Cron { .. } => {
                let Some(before) = self.previous(instant) else {
                    return 0;
                };
                if before <= last {
                    return 0;
                }
                self.between(last, before, MAX_INSTANTS).len()
            }
        }
    }
}

fn zone(name: Option<&str>) -> Result<TimeZone, ScheduleError> {
    match name {
        None => Ok(TimeZone::UTC),
        Some(name) => TimeZone::get(name).map_err(|_| {
            ScheduleError(format!(
                "`{name}` is not a time zone (write an IANA name such as Europe/Paris)"
            ))
        }),
    }
}

/// A calendar condition on a table: every field given must match.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Condition {
    /// 1 (January) to 12.
    #[serde(default)]
    pub months: Vec<u8>,
    /// 1 (Monday) to 7 (Sunday).
    #[serde(default)]
    pub weekdays: Vec<u8>,
    /// 1 to 31.
    #[serde(default)]
    pub days: Vec<u8>,
    /// 0 to 23.
    #[serde(default)]
    pub hours: Vec<u8>,
}

impl Condition {
    pub fn validate(&self) -> Result<(), ScheduleError> {
        let check = |name: &str, values: &[u8], range: std::ops::RangeInclusive<u8>| match values
            .iter()
            .find(|v| !range.contains(v))
        {
            Some(v) => Err(ScheduleError(format!(
                "condition {name}: {v} is not in {}..={}",
                range.start(),
                range.end()
            ))),
            None => Ok(()),
        };
        check("months", &self.months, 1..=12)?;
        check("weekdays", &self.weekdays, 1..=7)?;
        check("days", &self.days, 1..=31)?;
        check("hours", &self.hours, 0..=23)
    }

    fn holds(&self, at: &jiff::Zoned) -> bool {
        let matches = |values: &[u8], value: i8| {
            values.is_empty() || values.iter().any(|&v| i16::from(v) == i16::from(value))
        };
        matches(&self.months, at.month())
            && matches(&self.weekdays, at.weekday().to_monday_one_offset())
            && matches(&self.days, at.day())
            && matches(&self.hours, at.hour())
    }
}

/// Whether a table with these conditions takes part in the run of `instant`, read in `zone`.
pub fn conditions_hold(conditions: &[Condition], instant: Timestamp, zone: &TimeZone) -> bool {
    if conditions.is_empty() {
        return true;
    }
    let at = instant.to_zoned(zone.clone());
    conditions.iter().any(|c| c.holds(&at))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn period(p: i64, o: i64) -> Schedule {
        Schedule::period(p, o).unwrap()
    }

    #[test]
    fn daily_with_an_offset_is_due_at_the_offset_each_day() {
        let daily_at_two = period(86_400, 7_200);
        assert_eq!(
            daily_at_two.latest(ts("2026-11-22T10:00:00Z")),
            Some(ts("2026-11-22T02:00:00Z"))
        );
        assert_eq!(
            daily_at_two.latest(ts("2026-11-22T01:59:59Z")),
            Some(ts("2026-11-21T02:00:00Z")),
            "before today's offset the latest instant is yesterday's"
        );
        assert_eq!(
            daily_at_two.latest(ts("2026-11-22T02:00:00Z")),
            Some(ts("2026-11-22T02:00:00Z")),
            "an instant is due at that very second"
        );
    }

    #[test]
    fn weeks_are_counted_from_the_epoch_a_thursday() {
        let instant = period(7 * 86_400, 0)
            .latest(ts("2026-11-22T12:00:00Z"))
            .unwrap();
        assert_eq!(instant, ts("2026-11-19T00:00:00Z"));
        assert_eq!(
            instant.to_zoned(TimeZone::UTC).weekday(),
            jiff::civil::Weekday::Thursday
        );
    }

    #[test]
    fn periods_must_be_sane() {
        assert!(
            Schedule::period(10, 0)
                .unwrap_err()
                .0
                .contains("at least 60")
        );
        assert!(
            Schedule::period(3600, 3600)
                .unwrap_err()
                .0
                .contains("offset")
        );
        assert!(Schedule::period(3600, -1).is_err());
    }

    #[test]
    fn cron_follows_its_time_zone_through_daylight_saving() {
        let paris = Schedule::cron("0 6 * * *", Some("Europe/Paris")).unwrap();
        // Winter: 06:00 in Paris is 05:00 UTC; summer: 04:00 UTC.
        assert_eq!(
            paris.latest(ts("2026-01-15T12:00:00Z")),
            Some(ts("2026-01-15T05:00:00Z"))
        );
        assert_eq!(
            paris.latest(ts("2026-07-15T12:00:00Z")),
            Some(ts("2026-07-15T04:00:00Z"))
        );
        // Across the March change the previous instant is 23 hours earlier.
        let after_change = ts("2026-03-29T04:00:00Z");
        assert_eq!(
            paris.previous(after_change),
            Some(ts("2026-03-28T05:00:00Z"))
        );
        assert_eq!(paris.zone(), TimeZone::get("Europe/Paris").unwrap());
    }

    #[test]
    fn cron_rejects_what_it_cannot_mean() {
        assert!(
            Schedule::cron("0 6 * *", None)
                .unwrap_err()
                .0
                .contains("cron")
        );
        assert!(
            Schedule::cron("0 0 6 * * *", None).is_err(),
            "seconds are not allowed"
        );
        assert!(
            Schedule::cron("0 6 * * *", Some("Mars/Olympus"))
                .unwrap_err()
                .0
                .contains("time zone")
        );
        assert!(
            Schedule::cron("0 0 30 2 *", None)
                .unwrap_err()
                .0
                .contains("never matches")
        );
        assert!(Schedule::cron("30 */4 * * mon-fri", None).is_ok());
    }

    #[test]
    fn instants_between_and_gaps() {
        let hourly = period(3600, 0);
        let got = hourly.between(ts("2026-01-01T00:00:00Z"), ts("2026-01-01T03:00:00Z"), 100);
        assert_eq!(
            got,
            vec![
                ts("2026-01-01T01:00:00Z"),
                ts("2026-01-01T02:00:00Z"),
                ts("2026-01-01T03:00:00Z")
            ]
        );
        assert_eq!(
            hourly
                .between(ts("2026-01-01T00:30:00Z"), ts("2026-01-01T02:00:00Z"), 100)
                .len(),
            2
        );
        assert_eq!(
            hourly
                .between(ts("2026-01-01T00:00:00Z"), ts("2026-01-02T00:00:00Z"), 5)
                .len(),
            5
        );
        assert_eq!(
            hourly.missed_between(ts("2026-01-01T00:00:00Z"), ts("2026-01-01T05:00:00Z")),
            4
        );
        assert_eq!(
            hourly.missed_between(ts("2026-01-01T04:00:00Z"), ts("2026-01-01T05:00:00Z")),
            0
        );
        let weekdays = Schedule::cron("0 9 * * 1-5", None).unwrap();
        let week = weekdays.between(ts("2026-11-20T09:00:00Z"), ts("2026-11-27T09:00:00Z"), 100);
        assert_eq!(week.len(), 5, "{week:?}");
        assert_eq!(
            weekdays.missed_between(ts("2026-11-20T09:00:00Z"), ts("2026-11-27T09:00:00Z")),
            4
        );
    }

    #[test]
    fn conditions_or_between_and_within() {
        let first_of_quarter = Condition {
            months: vec![1, 4, 7, 10],
            days: vec![1],
            ..Condition::default()
        };
        let mondays = Condition {
            weekdays: vec![1],
            ..Condition::default()
        };
        let both = [first_of_quarter, mondays];
        let utc = TimeZone::UTC;
        assert!(
            conditions_hold(&both, ts("2026-04-01T00:00:00Z"), &utc),
            "first of a quarter"
        );
        assert!(
            conditions_hold(&both, ts("2026-11-23T00:00:00Z"), &utc),
            "a Monday"
        );
        assert!(
            !conditions_hold(&both, ts("2026-11-24T00:00:00Z"), &utc),
            "neither"
        );
        assert!(
            !conditions_hold(&both[..1], ts("2026-05-01T00:00:00Z"), &utc),
            "May is not a quarter month"
        );
        assert!(
            conditions_hold(&[], ts("2026-05-01T00:00:00Z"), &utc),
            "no condition: always"
        );
        // 23:30 UTC on Sunday is Monday in Tokyo.
        let tokyo = TimeZone::get("Asia/Tokyo").unwrap();
        assert!(conditions_hold(
            &both[1..],
            ts("2026-11-22T23:30:00Z"),
            &tokyo
        ));
        assert!(
            Condition {
                hours: vec![24],
                ..Condition::default()
            }
            .validate()
            .is_err()
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
            let instant = s.latest(now).unwrap();
            prop_assert!(instant <= now);
            prop_assert!(now.as_second() - instant.as_second() < p);
            prop_assert_eq!((instant.as_second() - o).rem_euclid(p), 0);
            prop_assert_eq!(s.previous(instant).unwrap().as_second(), instant.as_second() - p);
            let next = s.between(instant, Timestamp::from_second(instant.as_second() + p).unwrap(), 3);
            prop_assert_eq!(next.len(), 1);
            prop_assert_eq!(next[0].as_second(), instant.as_second() + p);
        }
    }
}
