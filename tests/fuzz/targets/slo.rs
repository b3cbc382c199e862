//! The SLO parser.

use keptn_native::evaluation::slo::Slo;

pub const SEEDS: &[&[u8]] = &[
    include_bytes!("../../../assets/tutorial/slo.yaml"),
    b"spec_version: \"1.0\"\nfilter:\n  handler: ItemsController\ncomparison:\n  aggregate_function: avg\n  compare_with: several_results\n  include_result_with_score: pass_or_warn\n  number_of_comparison_results: 3\nobjectives:\n  - sli: response_time_p95\n    key_sli: false\n    pass:\n      - criteria:\n          - \"<=+10%\"\n          - \"<600\"\n    warning:\n      - criteria:\n          - \"<=800\"\n    weight: 2\n  - sli: error_rate\ntotal_score:\n  pass: \"90%\"\n  warning: \"75%\"\n",
];

pub const DICTIONARY: &[&str] = super::YAML_TOKENS;

pub fn check(bytes: &[u8]) -> Result<(), String> {
    if let Err(e) = Slo::parse(bytes) {
        super::printable("SLO refusal", &e.to_string())?;
    }
    Ok(())
}
