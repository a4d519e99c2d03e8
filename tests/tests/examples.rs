//! Every manifest in examples/ validates, through the real `stampede validate` command.

use stampede_tests::{files_in, stampede};

#[test]
fn every_example_validates() {
    let examples = files_in("examples", "yaml");
    assert!(
        examples.len() >= 10,
        "expected the seed examples in examples/, found {}",
        examples.len()
    );
    for example in &examples {
        let path = example.to_string_lossy();
        let output = stampede(&["validate", &path]);
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{path} is invalid:\n{text}");
        assert!(text.contains("is valid"), "{path}: {text}");
    }
}
