//! Reports of a run: the summary table for people, the full JSON for tools, and the compact
//! summary that goes into `data.test` of `test.finished` (Keptn ignores the extra fields).

use std::fmt::Write;

use serde_json::{Value, json};

use super::engine::RunResult;
use super::plan::Verdict;
use super::stats::StatsReport;
use crate::keptn::time::format_keptn;

/// Most request names listed in the compact summary (events stay small).
pub const MAX_NAMES_IN_EVENT: usize = 20;

/// A locust-like table: one row per request name and the aggregate, latencies in ms.
pub fn table(r: &RunResult) -> String {
    let d = r.summary.duration_secs;
    let rows: Vec<StatsReport> = r
        .summary
        .by_name
        .iter()
        .map(|s| s.report(d))
        .chain(std::iter::once(r.summary.total.report(d)))
        .collect();
    let w = rows
        .iter()
        .map(|x| x.name.len())
        .max()
        .unwrap_or(4)
        .clamp(4, 48);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<w$} {:>9} {:>8} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "Name", "# reqs", "# fails", "req/s", "p50 ms", "p90 ms", "p95 ms", "p99 ms", "max ms"
    );
    for (i, x) in rows.iter().enumerate() {
        if i + 1 == rows.len() {
            let _ = writeln!(out, "{}", "-".repeat(w + 81));
        }
        let ms = |us: u64| us as f64 / 1000.0;
        let name: String = x.name.chars().take(w).collect();
        let _ = writeln!(
            out,
            "{:<w$} {:>9} {:>8} {:>9.1} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
            name,
            x.requests,
            x.failures,
            x.rps,
            ms(x.p50_us),
            ms(x.p90_us),
            ms(x.p95_us),
            ms(x.p99_us),
            ms(x.max_us)
        );
    }
    if let Some(lag) = &r.summary.start_lag {
        let l = lag.report(d);
        let _ = writeln!(
            out,
            "Open model start lag (generator lateness, included in latency): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            l.p50_us as f64 / 1000.0,
            l.p99_us as f64 / 1000.0,
            l.max_us as f64 / 1000.0
        );
    }
    let fails = &r.summary.total.report(d).failures_by_class;
    if !fails.is_empty() {
        let list: Vec<String> = fails.iter().map(|(c, n)| format!("{c}: {n}")).collect();
        let _ = writeln!(out, "Failures: {}", list.join(", "));
    }
    out
}

/// The full report (CLI `--json`).
pub fn json(r: &RunResult, target: &str, verdict: &Verdict) -> Value {
    let d = r.summary.duration_secs;
    json!({
        "target": target,
        "start": format_keptn(r.start),
        "end": format_keptn(r.end),
        "durationSeconds": d,
        "cancelled": r.cancelled,
        "result": verdict.result.as_str(),
        "breaches": verdict.breaches,
        "total": r.summary.total.report(d),
        "byName": r.summary.by_name.iter().map(|s| s.report(d)).collect::<Vec<_>>(),
        "startLag": r.summary.start_lag.as_ref().map(|s| s.report(d)),
    })
}

/// `data.test` of `test.finished`: `start`/`end` in Keptn's format plus compact statistics.
pub fn compact(r: &RunResult, target: &str, source: &str) -> Value {
    let d = r.summary.duration_secs;
    let by_name: Vec<StatsReport> = r
        .summary
        .by_name
        .iter()
        .take(MAX_NAMES_IN_EVENT)
        .map(|s| s.report(d))
        .collect();
    json!({
        "start": format_keptn(r.start),
        "end": format_keptn(r.end),
        "target": target,
        "source": source,
        "stats": r.summary.total.report(d),
        "byName": by_name,
    })
}

/// One line for `.finished`'s message.
pub fn one_line(r: &RunResult) -> String {
    let t = r.summary.total.report(r.summary.duration_secs);
    let mut s = format!(
        "{} requests, {} failed, {:.1} req/s, p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms",
        t.requests,
        t.failures,
        t.rps,
        t.p50_us as f64 / 1000.0,
        t.p95_us as f64 / 1000.0,
        t.max_us as f64 / 1000.0
    );
    if !t.failures_by_class.is_empty() {
        let list: Vec<String> = t
            .failures_by_class
            .iter()
            .map(|(c, n)| format!("{c}: {n}"))
            .collect();
        let _ = write!(s, " ({})", list.join(", "));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keptn::ResultType;
    use crate::loadtest::stats::{ErrorClass, Recorder};
    use chrono::TimeZone;

    #[test]
    fn reports_carry_times_stats_and_failures() {
        let mut rec = Recorder::default();
        rec.record("home", 2_000, Ok(()));
        rec.record("home", 4_000, Err(ErrorClass::Status(500)));
        let r = RunResult {
            start: chrono::Utc
                .with_ymd_and_hms(2026, 1, 2, 3, 4, 5)
                .single()
                .expect("t"),
            end: chrono::Utc
                .with_ymd_and_hms(2026, 1, 2, 3, 5, 5)
                .single()
                .expect("t"),
            summary: rec.summary(2.0),
            cancelled: false,
        };
        let c = compact(&r, "http://a.b-qa", "locust/basic.py");
        assert_eq!(c["start"], "2026-01-02T03:04:05.000Z");
        assert_eq!(c["end"], "2026-01-02T03:05:05.000Z");
        assert_eq!(c["stats"]["requests"], 2);
        assert_eq!(c["stats"]["failuresByClass"]["http_500"], 1);
        assert_eq!(c["byName"][0]["name"], "home");
        let v = Verdict {
            result: ResultType::Fail,
            breaches: vec!["x".into()],
        };
        assert_eq!(json(&r, "t", &v)["result"], "fail");
        let t = table(&r);
        assert!(
            t.contains("home") && t.contains("Aggregated") && t.contains("http_500: 1"),
            "{t}"
        );
        assert!(
            one_line(&r).starts_with("2 requests, 1 failed, 1.0 req/s"),
            "{}",
            one_line(&r)
        );
    }
}
