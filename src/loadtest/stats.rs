//! Load-test statistics: latency in HDR histograms (microseconds, 1 µs to 60 s, 3 significant
//! digits), counts and failures by class, per request name and in total.

use std::collections::BTreeMap;
use std::fmt;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::plan::Metric;

/// Why a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ErrorClass {
    /// The TCP connection (or HTTP handshake) could not be made.
    Connect,
    /// No complete response within the request timeout.
    Timeout,
    /// The response status was 4xx or 5xx.
    Status(u16),
    /// The connection broke while sending the request or reading the response head.
    Request,
    /// The response body could not be read to the end.
    BodyRead,
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorClass::Connect => f.write_str("connect"),
            ErrorClass::Timeout => f.write_str("timeout"),
            ErrorClass::Status(s) => write!(f, "http_{s}"),
            ErrorClass::Request => f.write_str("request"),
            ErrorClass::BodyRead => f.write_str("body_read"),
        }
    }
}

const MAX_US: u64 = 60_000_000;

fn new_histogram() -> Histogram<u64> {
    // Bounds are constants that hdrhistogram accepts (1 <= low, high >= 2 * low, sigfig <= 5).
    #[allow(clippy::expect_used)]
    Histogram::new_with_bounds(1, MAX_US, 3).expect("valid histogram bounds")
}

/// Statistics for one request name (or the total).
#[derive(Debug, Clone)]
pub struct NameStats {
    pub name: String,
    pub requests: u64,
    pub failures: BTreeMap<ErrorClass, u64>,
    /// Latency of every request, successful or not, in µs.
    pub latency: Histogram<u64>,
}

impl NameStats {
    pub fn new(name: &str) -> Self {
        NameStats {
            name: name.into(),
            requests: 0,
            failures: BTreeMap::new(),
            latency: new_histogram(),
        }
    }

    pub fn record_ok(&mut self, us: u64) {
        self.requests += 1;
        self.latency.saturating_record(us.clamp(1, MAX_US));
    }

    pub fn record_failure(&mut self, class: ErrorClass, us: u64) {
        self.record_ok(us);
        *self.failures.entry(class).or_default() += 1;
    }

    pub fn failure_count(&self) -> u64 {
        self.failures.values().sum()
    }

    pub fn merge(&mut self, other: &NameStats) {
        self.requests += other.requests;
        for (c, n) in &other.failures {
            *self.failures.entry(*c).or_default() += n;
        }
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.latency.add(&other.latency);
    }

    fn pct_ms(&self, q: f64) -> f64 {
        if self.requests == 0 {
            return f64::NAN;
        }
        self.latency.value_at_quantile(q) as f64 / 1000.0
    }

    /// The value of a threshold metric; NaN when there is no data for it.
    pub fn metric(&self, m: Metric, duration_secs: f64) -> f64 {
        match m {
            Metric::ErrorRatio if self.requests == 0 => f64::NAN,
            Metric::ErrorRatio => self.failure_count() as f64 / self.requests as f64,
            Metric::Failures => self.failure_count() as f64,
            Metric::Requests => self.requests as f64,
            Metric::Rps if duration_secs <= 0.0 => f64::NAN,
            Metric::Rps => self.requests as f64 / duration_secs,
            Metric::P50Ms => self.pct_ms(0.50),
            Metric::P90Ms => self.pct_ms(0.90),
            Metric::P95Ms => self.pct_ms(0.95),
            Metric::P99Ms => self.pct_ms(0.99),
            Metric::MaxMs if self.requests == 0 => f64::NAN,
            Metric::MaxMs => self.latency.max() as f64 / 1000.0,
        }
    }

    /// The compact, serialisable form.
    pub fn report(&self, duration_secs: f64) -> StatsReport {
        let q = |x: f64| {
            if self.requests == 0 {
                0
            } else {
                self.latency.value_at_quantile(x)
            }
        };
        StatsReport {
            name: self.name.clone(),
            requests: self.requests,
            failures: self.failure_count(),
            failures_by_class: self
                .failures
                .iter()
                .map(|(c, n)| (c.to_string(), *n))
                .collect(),
            rps: if duration_secs > 0.0 {
                (self.requests as f64 / duration_secs * 100.0).round() / 100.0
            } else {
                0.0
            },
            p50_us: q(0.5),
            p90_us: q(0.9),
            p95_us: q(0.95),
            p99_us: q(0.99),
            max_us: if self.requests == 0 {
                0
            } else {
                self.latency.max()
            },
        }
    }
}

/// Serialisable statistics of one name (or the total).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatsReport {
    pub name: String,
    pub requests: u64,
    pub failures: u64,
    #[serde(rename = "failuresByClass", skip_serializing_if = "BTreeMap::is_empty")]
    pub failures_by_class: BTreeMap<String, u64>,
    pub rps: f64,
    #[serde(rename = "p50Us")]
    pub p50_us: u64,
    #[serde(rename = "p90Us")]
    pub p90_us: u64,
    #[serde(rename = "p95Us")]
    pub p95_us: u64,
    #[serde(rename = "p99Us")]
    pub p99_us: u64,
    #[serde(rename = "maxUs")]
    pub max_us: u64,
}

/// Per-worker recorder: one per user (closed model) or shared behind a lock (open model).
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    by_name: Vec<NameStats>,
    /// Open model: how late each task started against its schedule (the generator's own lag).
    lag: Option<NameStats>,
}

impl Recorder {
    /// Index of a name, created on first use (few names, so a linear scan is fastest).
    fn slot(&mut self, name: &str) -> &mut NameStats {
        let i = match self.by_name.iter().position(|s| s.name == name) {
            Some(i) => i,
            None => {
                self.by_name.push(NameStats::new(name));
                self.by_name.len() - 1
            }
        };
        &mut self.by_name[i]
    }

    pub fn record(&mut self, name: &str, us: u64, outcome: Result<(), ErrorClass>) {
        let s = self.slot(name);
        match outcome {
            Ok(()) => s.record_ok(us),
            Err(c) => s.record_failure(c, us),
        }
    }

    /// Records how late (µs) a task started against its intended start.
    pub fn record_lag(&mut self, us: u64) {
        self.lag
            .get_or_insert_with(|| NameStats::new("start lag"))
            .record_ok(us);
    }

    pub fn merge_into(self, acc: &mut Recorder) {
        for s in self.by_name {
            acc.slot(&s.name.clone()).merge(&s);
        }
        if let Some(l) = self.lag {
            acc.lag
                .get_or_insert_with(|| NameStats::new("start lag"))
                .merge(&l);
        }
    }

    pub fn summary(mut self, duration_secs: f64) -> Summary {
        self.by_name.sort_by(|a, b| a.name.cmp(&b.name));
        let mut total = NameStats::new("Aggregated");
        for s in &self.by_name {
            total.merge(s);
        }
        Summary {
            duration_secs,
            total,
            by_name: self.by_name,
            start_lag: self.lag,
        }
    }
}

/// The statistics of a finished run.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Wall time from the first start to the last response, in seconds.
    pub duration_secs: f64,
    pub total: NameStats,
    pub by_name: Vec<NameStats>,
    /// Open model only: lateness of task starts against the schedule.
    pub start_lag: Option<NameStats>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorder_groups_by_name_and_merges() {
        let mut a = Recorder::default();
        let mut b = Recorder::default();
        for i in 1..=100 {
            a.record("home", i * 1000, Ok(()));
        }
        b.record("home", 500_000, Err(ErrorClass::Status(503)));
        b.record("api", 2000, Err(ErrorClass::Timeout));
        let mut acc = Recorder::default();
        a.merge_into(&mut acc);
        b.merge_into(&mut acc);
        let s = acc.summary(2.0);
        assert_eq!(s.total.requests, 102);
        assert_eq!(s.total.failure_count(), 2);
        assert_eq!(
            s.by_name
                .iter()
                .map(|n| n.name.as_str())
                .collect::<Vec<_>>(),
            ["api", "home"]
        );
        let home = s.by_name[1].report(2.0);
        assert_eq!(home.requests, 101);
        assert_eq!(home.failures_by_class.get("http_503"), Some(&1));
        assert_eq!(home.rps, 50.5);
        // p50 of 1..100 ms plus one 500 ms outlier: ~51 ms, within HDR precision.
        assert!((home.p50_us as i64 - 51_000).abs() < 100, "{}", home.p50_us);
        assert!(
            (home.max_us as i64 - 500_000).abs() < 500,
            "{}",
            home.max_us
        );
        assert!((s.total.metric(Metric::ErrorRatio, 2.0) - 2.0 / 102.0).abs() < 1e-9);
        assert!(NameStats::new("x").metric(Metric::P95Ms, 1.0).is_nan());
    }
}
