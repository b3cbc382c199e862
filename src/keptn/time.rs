//! Keptn's timestamp format (`2006-01-02T15:04:05.000Z`, used for `test.start`, evaluation
//! timeframes and `get-sli` windows) and its lenient parser.

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};

/// Formats a time the way Keptn writes timeframes: milliseconds, `Z`.
pub fn format_keptn(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Parses `2006-01-02T15:04:05.000Z`, then RFC 3339, then `2006-01-02T15:04:05` (as UTC),
/// the order of go-utils `timeutils.ParseTimestamp`.
pub fn parse_keptn(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S")
        .ok()
        .map(|n| n.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_millis_and_z() {
        let t = parse_keptn("2024-01-02T03:04:05.678Z").expect("parses");
        assert_eq!(format_keptn(t), "2024-01-02T03:04:05.678Z");
    }

    #[test]
    fn accepts_offsets_and_naive() {
        let t = parse_keptn("2024-01-02T04:04:05+01:00").expect("parses");
        assert_eq!(format_keptn(t), "2024-01-02T03:04:05.000Z");
        let t = parse_keptn("2024-01-02T03:04:05").expect("parses");
        assert_eq!(format_keptn(t), "2024-01-02T03:04:05.000Z");
        assert!(parse_keptn("yesterday").is_none());
    }
}
