//! Evaluation: the quality gate Keptn's lighthouse-service and prometheus-service ran together
//! (§6, §7). Pure parts: the SLO model ([`slo`]), criteria ([`criteria`]), scoring
//! ([`scoring`]), the timeframe ([`timeframe`]). I/O parts used by the handler and the CLI:
//! previous results ([`history`]) and the Prometheus SLI provider ([`prometheus`]); the steps
//! both run, in [`pipeline`].

pub mod criteria;
pub mod history;
pub mod pipeline;
pub mod prometheus;
pub mod scoring;
pub mod slo;
pub mod timeframe;

pub use prometheus::EvaluationConfig;
pub use scoring::{
    Evaluated, EvaluationDetails, EvaluationInput, IndicatorResult, PreviousEvaluation,
    SliRetrieval, SliTarget, evaluate, summary,
};
pub use slo::{Slo, SloError};
