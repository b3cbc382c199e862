//! SLO criteria strings (`<600`, `<=+10%`, `>-5%`, `=0`) parsed as lighthouse's
//! `parseCriteriaString` does, and the comparison of a value against them.

use std::sync::LazyLock;

use regex::Regex;

/// A comparison operator of a criterion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Eq => "=",
            Op::Ge => ">=",
            Op::Gt => ">",
        }
    }

    /// `measured <op> target` on f64 (`=` is exact equality, as in Go).
    pub fn holds(self, measured: f64, target: f64) -> bool {
        match self {
            Op::Lt => measured < target,
            Op::Le => measured <= target,
            Op::Eq => measured == target,
            Op::Ge => measured >= target,
            Op::Gt => measured > target,
        }
    }

    /// The operator that describes a violation (`<=` violated means `>`).
    pub fn negated(self) -> &'static str {
        match self {
            Op::Lt => ">=",
            Op::Le => ">",
            Op::Eq => "!=",
            Op::Ge => "<",
            Op::Gt => "<=",
        }
    }
}

/// A parsed criterion (`criteriaObject`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Criterion {
    pub op: Op,
    pub value: f64,
    /// `%` suffix: the value is a percentage of the aggregated previous value.
    pub percentage: bool,
    /// Relative to previous results (a sign or a `%`).
    pub relative: bool,
    /// `+` (or a `%` without sign): the target is above the aggregate; `-`: below.
    pub increase: bool,
}

/// Why a criterion string cannot be used; the texts are Keptn's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CriteriaError {
    #[error("invalid criteria string")]
    Invalid,
    #[error("could not parse criteria target value")]
    Value,
}

static SHAPE: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"^([<|<=|=|>|>=]{1,2})([+|-]{0,1}\d*\.?\d*)([%]{0,1})").ok());

impl Criterion {
    /// Parses a criterion the way Keptn does (spaces removed; no end anchor, so `<600ms`
    /// matches the shape but fails on the value).
    pub fn parse(s: &str) -> Result<Criterion, CriteriaError> {
        let s: String = s.chars().filter(|c| *c != ' ').collect();
        let shaped = SHAPE.as_ref().is_some_and(|re| re.is_match(&s));
        if !shaped {
            return Err(CriteriaError::Invalid);
        }
        let mut rest = s.as_str();
        let mut op = None;
        for (p, o) in [
            ("<=", Op::Le),
            ("<", Op::Lt),
            ("=", Op::Eq),
            (">=", Op::Ge),
            (">", Op::Gt),
        ] {
            if let Some(r) = rest.strip_prefix(p) {
                op = Some(o);
                rest = r;
                break;
            }
        }
        // Only `|` (allowed by Keptn's character class) leaves no operator; Go then fails on
        // the value, so this is a value error too.
        let op = op.ok_or(CriteriaError::Value)?;
        let (mut percentage, mut relative, mut increase) = (false, false, false);
        if let Some(r) = rest.strip_suffix('%') {
            percentage = true;
            relative = true;
            increase = true;
            rest = r;
        }
        if let Some(r) = rest.strip_prefix('-') {
            relative = true;
            increase = false;
            rest = r;
        } else if let Some(r) = rest.strip_prefix('+') {
            relative = true;
            increase = true;
            rest = r;
        }
        let value = parse_go_float(rest).ok_or(CriteriaError::Value)?;
        Ok(Criterion {
            op,
            value,
            percentage,
            relative,
            increase,
        })
    }

    /// The target a value is compared with, given the aggregate of previous results.
    pub fn target(&self, aggregate: f64) -> f64 {
        if !self.relative {
            return self.value;
        }
        match (self.percentage, self.increase) {
            (true, true) => (aggregate * (100.0 + self.value)) / 100.0,
            (true, false) => (aggregate * (100.0 - self.value)) / 100.0,
            (false, true) => aggregate + self.value,
            (false, false) => aggregate - self.value,
        }
    }
}

/// `strconv.ParseFloat(s, 64)`: Rust's parser accepts the same decimal, exponent and
/// `inf`/`nan` forms (Go's hexadecimal floats are not supported; nobody writes them in an SLO).
fn parse_go_float(s: &str) -> Option<f64> {
    s.parse::<f64>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Criterion {
        Criterion::parse(s).expect("parses")
    }

    #[test]
    fn parses_keptn_examples() {
        // The parses asserted by lighthouse's TestParseCriteriaString.
        let c = p(">-10%");
        assert_eq!(
            (c.op, c.value, c.percentage, c.relative, c.increase),
            (Op::Gt, 10.0, true, true, false)
        );
        let c = p("<=+10.5%");
        assert_eq!(
            (c.op, c.value, c.percentage, c.relative, c.increase),
            (Op::Le, 10.5, true, true, true)
        );
        let c = p("<=+10");
        assert_eq!(
            (c.op, c.value, c.percentage, c.relative, c.increase),
            (Op::Le, 10.0, false, true, true)
        );
        let c = p("  <=+10   %");
        assert_eq!(
            (c.op, c.value, c.percentage, c.relative, c.increase),
            (Op::Le, 10.0, true, true, true)
        );
        let c = p("  <=10%");
        assert_eq!(
            (c.op, c.value, c.percentage, c.relative, c.increase),
            (Op::Le, 10.0, true, true, true)
        );
        let c = p("<600");
        assert_eq!((c.op, c.value, c.relative), (Op::Lt, 600.0, false));
        assert_eq!(p("=0").op, Op::Eq);
        assert_eq!(p(">=5").op, Op::Ge);
    }

    #[test]
    fn rejects_what_keptn_rejects() {
        assert_eq!(Criterion::parse("invalid"), Err(CriteriaError::Invalid));
        assert_eq!(Criterion::parse("?10"), Err(CriteriaError::Invalid));
        assert_eq!(Criterion::parse("<600ms"), Err(CriteriaError::Value));
        assert_eq!(Criterion::parse("<<='"), Err(CriteriaError::Value));
        assert_eq!(Criterion::parse("<"), Err(CriteriaError::Value));
        assert_eq!(Criterion::parse("|5"), Err(CriteriaError::Value));
        assert_eq!(Criterion::parse("=>5"), Err(CriteriaError::Value));
        assert_eq!(p("<inf").value, f64::INFINITY);
    }

    #[test]
    fn targets_relative_to_aggregate() {
        assert_eq!(p("<=+10%").target(200.0), 220.0);
        assert_eq!(p(">-5%").target(200.0), 190.0);
        assert_eq!(p("<+50").target(200.0), 250.0);
        assert_eq!(p("<-50").target(200.0), 150.0);
        assert_eq!(p("<600").target(200.0), 600.0);
    }

    #[test]
    fn operators_compare() {
        assert!(Op::Le.holds(10.0, 10.0));
        assert!(!Op::Lt.holds(10.0, 10.0));
        assert!(Op::Eq.holds(0.0, 0.0));
        assert!(!Op::Gt.holds(10.0, 10.0));
        assert!(Op::Ge.holds(10.0, 10.0));
    }
}
