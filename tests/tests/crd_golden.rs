//! Golden test: the checked-in CRD YAML (crds/ and the chart's copy) equals what the types generate.

use stampede_crds::crd;
use stampede_tests::{repo_root, stampede};

fn assert_fresh(relative: &str) {
    let generated = crd::yaml();
    let checked_in = std::fs::read_to_string(repo_root().join(relative)).unwrap_or_else(|error| {
        panic!(
            "{relative} is missing ({error}); regenerate it with:\n  {}",
            crd::REGENERATE
        )
    });
    assert!(
        checked_in == generated,
        "{relative} is stale: the LoadTest types changed. Regenerate it with:\n  {}",
        crd::REGENERATE
    );
}

#[test]
fn crds_yaml_is_fresh() {
    assert_fresh(crd::CRD_PATH);
}

#[test]
fn chart_crd_is_fresh() {
    assert_fresh(crd::CHART_CRD_PATH);
}

#[test]
fn stampede_crd_prints_the_checked_in_yaml() {
    let output = stampede(&["crd"]);
    assert!(output.status.success());
    let printed = String::from_utf8(output.stdout).expect("utf-8");
    assert_eq!(printed, crd::yaml());
    // The printed CRD parses back as a CustomResourceDefinition with our group.
    let parsed: serde_yaml_ng::Value = serde_yaml_ng::from_str(&printed).expect("CRD YAML parses");
    assert_eq!(parsed["spec"]["group"].as_str(), Some("stampede.dev"));
    assert_eq!(
        parsed["spec"]["names"]["shortNames"][0].as_str(),
        Some("lt")
    );
}
