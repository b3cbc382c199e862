//! The shipyard parser (the local delivery runner's input).

use keptn_native::runner::shipyard::Shipyard;

pub const SEEDS: &[&[u8]] = &[
    include_bytes!("../../../assets/tutorial/shipyard.yaml"),
    b"apiVersion: spec.keptn.sh/0.2.4\nkind: Shipyard\nmetadata:\n  name: s\nspec:\n  stages:\n    - name: dev\n      sequences:\n        - name: delivery\n          tasks:\n            - name: deployment\n              properties: {deploymentstrategy: direct}\n            - name: test\n    - name: prod\n      sequences:\n        - name: delivery\n          triggeredOn:\n            - event: dev.delivery.finished\n              selector:\n                match:\n                  result: pass\n          tasks:\n            - name: approval\n              properties:\n                pass: automatic\n                warning: manual\n",
];

pub const DICTIONARY: &[&str] = super::YAML_TOKENS;

pub fn check(bytes: &[u8]) -> Result<(), String> {
    let text = String::from_utf8_lossy(bytes);
    if let Err(e) = Shipyard::parse(&text) {
        super::printable("shipyard refusal", &e.to_string())?;
    }
    Ok(())
}
