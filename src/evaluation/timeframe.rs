//! The evaluation window (§6.2): `evaluation.start`/`end`/`timeframe` with go-utils'
//! `GetStartEndTime` rules, else `test.start`/`test.end` verbatim.

use chrono::{DateTime, Duration, Utc};

use crate::keptn::payload::EvaluationTriggered;
use crate::keptn::time::{format_keptn, parse_keptn};

/// A resolved window, in Keptn's format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub start: String,
    pub end: String,
}

/// Why no window could be resolved; the texts are go-utils'.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeframeError {
    #[error("no timeframe or end date provided")]
    NoEnd,
    #[error("'end' and 'timeframe' are mutually exclusive")]
    EndAndTimeframe,
    #[error("start date is required when using an end date")]
    NoStart,
    #[error("could not parse provided timeframe: {0}")]
    Timeframe(String),
    #[error("could not parse timestamp {0:?}")]
    Timestamp(String),
    #[error("end date must be at least 1 minute after start date")]
    TooShort,
    #[error("evaluation.triggered event does not contain evaluation timeframe")]
    Missing,
}

fn opt(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or_default()
}

/// `getEvaluationTimestamps`: the evaluation block first, then the test window.
pub fn resolve(data: &EvaluationTriggered, now: DateTime<Utc>) -> Result<Window, TimeframeError> {
    let (start, end, timeframe) = (
        opt(&data.evaluation.start),
        opt(&data.evaluation.end),
        opt(&data.evaluation.timeframe),
    );
    if (!start.is_empty() && !end.is_empty()) || !timeframe.is_empty() {
        return start_end(start, end, timeframe, now);
    }
    match (opt(&data.test.start), opt(&data.test.end)) {
        (s, e) if !s.is_empty() && !e.is_empty() => Ok(Window {
            start: s.to_string(),
            end: e.to_string(),
        }),
        _ => Err(TimeframeError::Missing),
    }
}

/// go-utils `GetStartEndTime` (empty string = absent).
pub fn start_end(
    start: &str,
    end: &str,
    timeframe: &str,
    now: DateTime<Utc>,
) -> Result<Window, TimeframeError> {
    if !start.is_empty() && end.is_empty() && timeframe.is_empty() {
        return Err(TimeframeError::NoEnd);
    }
    if !end.is_empty() && !timeframe.is_empty() {
        return Err(TimeframeError::EndAndTimeframe);
    }
    if !end.is_empty() && start.is_empty() {
        return Err(TimeframeError::NoStart);
    }
    let tf = parse_go_duration(if timeframe.is_empty() {
        "5m"
    } else {
        timeframe
    })
    .map_err(TimeframeError::Timeframe)?;
    let parse = |s: &str| parse_keptn(s).ok_or_else(|| TimeframeError::Timestamp(s.to_string()));
    let mut s = now - tf;
    let mut e = now;
    if !start.is_empty() {
        s = parse(start)?;
    }
    if !end.is_empty() {
        e = parse(end)?;
    }
    if !start.is_empty() && end.is_empty() && !timeframe.is_empty() {
        e = s + tf;
    }
    if (e - s) < Duration::minutes(1) {
        return Err(TimeframeError::TooShort);
    }
    Ok(Window {
        start: format_keptn(s),
        end: format_keptn(e),
    })
}

/// Go's `time.ParseDuration` (`300ms`, `-1.5h`, `2h45m`; units ns, us, µs, ms, s, m, h).
pub fn parse_go_duration(s: &str) -> Result<Duration, String> {
    let err = || format!("time: invalid duration {s:?}");
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(Duration::zero());
    }
    if rest.is_empty() {
        return Err(err());
    }
    let mut nanos: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num = &rest[..num_len];
        if num.is_empty() || num == "." {
            return Err(err());
        }
        let n: f64 = num.parse().map_err(|_| err())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let scale = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => return Err(format!("time: missing unit in duration {s:?}")),
            _ => return Err(format!("time: unknown unit {unit:?} in duration {s:?}")),
        };
        nanos += n * scale;
    }
    if nanos > i64::MAX as f64 {
        return Err(err());
    }
    let d = Duration::nanoseconds(nanos.round() as i64);
    Ok(if neg { -d } else { d })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keptn::payload::{EvaluationTriggeredDetails, TestDetails};

    fn now() -> DateTime<Utc> {
        parse_keptn("2023-12-01T10:00:00.000Z").expect("now")
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("5m"), Ok(Duration::minutes(5)));
        assert_eq!(parse_go_duration("1h30m"), Ok(Duration::minutes(90)));
        assert_eq!(parse_go_duration("1.5h"), Ok(Duration::minutes(90)));
        assert_eq!(parse_go_duration("300ms"), Ok(Duration::milliseconds(300)));
        assert!(parse_go_duration("1d").is_err());
        assert!(parse_go_duration("xyz").is_err());
        assert!(parse_go_duration("5").is_err());
        assert!(parse_go_duration("").is_err());
    }

    #[test]
    fn evaluation_block_wins_then_test_window() {
        let mut d = EvaluationTriggered {
            test: TestDetails {
                start: Some("2023-12-01T09:00:00.000Z".into()),
                end: Some("2023-12-01T09:00:30.000Z".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        // the test window is used verbatim, without the 1-minute rule
        assert_eq!(
            resolve(&d, now()),
            Ok(Window {
                start: "2023-12-01T09:00:00.000Z".into(),
                end: "2023-12-01T09:00:30.000Z".into()
            })
        );
        d.evaluation = EvaluationTriggeredDetails {
            timeframe: Some("2m".into()),
            ..Default::default()
        };
        assert_eq!(
            resolve(&d, now()).expect("ok").start,
            "2023-12-01T09:58:00.000Z"
        );
        // only a start: not the evaluation path, falls back to the test window
        d.evaluation = EvaluationTriggeredDetails {
            start: Some("2023-12-01T09:00:00.000Z".into()),
            ..Default::default()
        };
        assert_eq!(
            resolve(&d, now()).expect("ok").end,
            "2023-12-01T09:00:30.000Z"
        );
        d.test = TestDetails::default();
        assert_eq!(resolve(&d, now()), Err(TimeframeError::Missing));
        assert_eq!(
            TimeframeError::Missing.to_string(),
            "evaluation.triggered event does not contain evaluation timeframe"
        );
    }
}
