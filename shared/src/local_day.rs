//! Local days of a location: its IANA time zone (`Asia/Tokyo`), the date an instant falls on
//! there, and when a local day begins and ends.
//!
//! Daily capacity is counted per local day of the location and pickup hold days end at a local
//! midnight of the store, so both need the tz database: [`chrono_tz`] embeds it (the IANA
//! data, compiled in; no system files are read), and this module is the one place that turns a
//! zone name into local days. Days start at local midnight; where a DST change skips midnight
//! (a few zones move their clocks at 00:00), the day starts at the first instant that exists.

use chrono::{DateTime, Days, LocalResult, NaiveDate, NaiveTime, TimeZone, Utc};
pub use chrono_tz::Tz;

/// The zone named `name`, if the embedded tz database knows it (`UTC`, `Asia/Tokyo`,
/// `America/Argentina/Buenos_Aires`). Names are case-sensitive, as in the database.
pub fn time_zone(name: &str) -> Option<Tz> {
    name.parse::<Tz>().ok()
}

/// The local date of `at` in `tz`.
pub fn local_date(tz: Tz, at: DateTime<Utc>) -> NaiveDate {
    at.with_timezone(&tz).date_naive()
}

/// The first instant of local day `date` in `tz`.
pub fn start_of_day(tz: Tz, date: NaiveDate) -> DateTime<Utc> {
    let midnight = date.and_time(NaiveTime::MIN);
    match tz.from_local_datetime(&midnight) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        // Midnight happened twice (clocks went back at 00:00): the day starts at the first.
        LocalResult::Ambiguous(first, _) => first.with_timezone(&Utc),
        // Midnight was skipped (clocks went forward at 00:00): the first minute that exists.
        LocalResult::None => (1..=180)
            .find_map(|m| {
                tz.from_local_datetime(&(midnight + chrono::Duration::minutes(m)))
                    .earliest()
            })
            .map_or_else(|| midnight.and_utc(), |t| t.with_timezone(&Utc)),
    }
}

/// The end of the `n`-th local day after the one `at` falls on (`n = 0`: the end of that same
/// day), as the first instant of the day after it. `None` only past the end of the calendar.
pub fn end_of_nth_day(tz: Tz, at: DateTime<Utc>, n: u32) -> Option<DateTime<Utc>> {
    let date = local_date(tz, at).checked_add_days(Days::new(u64::from(n) + 1))?;
    Some(start_of_day(tz, date))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
    }

    #[test]
    fn known_zones_only() {
        assert!(time_zone("Asia/Tokyo").is_some());
        assert!(time_zone("UTC").is_some());
        assert!(time_zone("America/Argentina/Buenos_Aires").is_some());
        assert!(time_zone("Asia/Tokio").is_none());
        assert!(time_zone("Mars/Olympus_Mons").is_none());
        assert!(time_zone("").is_none());
    }

    #[test]
    fn the_local_date_is_the_zones() {
        let tokyo = time_zone("Asia/Tokyo").unwrap();
        // 15:30 UTC is 00:30 the next day in Tokyo.
        assert_eq!(
            local_date(tokyo, utc(2026, 12, 4, 15, 30)),
            NaiveDate::from_ymd_opt(2026, 12, 5).unwrap()
        );
        assert_eq!(
            start_of_day(tokyo, NaiveDate::from_ymd_opt(2026, 12, 5).unwrap()),
            utc(2026, 12, 4, 15, 0)
        );
    }

    #[test]
    fn the_nth_day_ends_at_local_midnight() {
        let tokyo = time_zone("Asia/Tokyo").unwrap();
        // Ready at 23:50 Tokyo on Dec 4 (14:50 UTC): 3 days end at 00:00 Tokyo on Dec 8.
        assert_eq!(
            end_of_nth_day(tokyo, utc(2026, 12, 4, 14, 50), 3),
            Some(utc(2026, 12, 7, 15, 0))
        );
        // Ready at 00:10 Tokyo on Dec 5: the same day count ends a day later.
        assert_eq!(
            end_of_nth_day(tokyo, utc(2026, 12, 4, 15, 10), 3),
            Some(utc(2026, 12, 8, 15, 0))
        );
        assert_eq!(
            end_of_nth_day(tokyo, utc(2026, 12, 4, 14, 50), 0),
            Some(utc(2026, 12, 4, 15, 0))
        );
    }

    #[test]
    fn days_across_a_dst_change_are_not_24_hours() {
        let berlin = time_zone("Europe/Berlin").unwrap();
        // Clocks go forward on 2026-03-29: that local day has 23 hours.
        let day = NaiveDate::from_ymd_opt(2026, 3, 29).unwrap();
        let next = day.succ_opt().unwrap();
        let hours = (start_of_day(berlin, next) - start_of_day(berlin, day)).num_hours();
        assert_eq!(hours, 23);
        // Havana moved its clocks at midnight (2026-03-08 00:00 → 01:00): the day starts at 01:00.
        let havana = time_zone("America/Havana").unwrap();
        let start = start_of_day(havana, NaiveDate::from_ymd_opt(2026, 3, 8).unwrap());
        assert_eq!(
            local_date(havana, start),
            NaiveDate::from_ymd_opt(2026, 3, 8).unwrap()
        );
    }
}
