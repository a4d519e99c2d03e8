//! Every manifest in tests/invalid/ is rejected with exit 104 and a message naming the field.
//!
//! Each file starts with `# expect: TEXT` lines; `stampede validate FILE` must print every TEXT.

use stampede_tests::{files_in, stampede};

#[test]
fn every_invalid_manifest_is_rejected_with_the_field_named() {
    let files = files_in("tests/invalid", "yaml");
    assert!(
        files.len() >= 30,
        "want at least 30 invalid manifests, found {}",
        files.len()
    );
    let mut failures = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read manifest");
        let expectations: Vec<&str> = text
            .lines()
            .filter_map(|line| line.strip_prefix("# expect:"))
            .map(str::trim)
            .collect();
        let path = file.to_string_lossy();
        if expectations.is_empty() {
            failures.push(format!("{path}: has no `# expect:` line"));
            continue;
        }
        let output = stampede(&["validate", &path]);
        let printed = String::from_utf8_lossy(&output.stdout);
        if output.status.code() != Some(104) {
            failures.push(format!(
                "{path}: exit {:?}, want 104\n{printed}",
                output.status.code()
            ));
            continue;
        }
        for expected in expectations {
            if !printed.contains(expected) {
                failures.push(format!("{path}: output lacks {expected:?}:\n{printed}"));
            }
        }
        // Every problem line names the file and a line number.
        for line in printed.lines().filter(|l| !l.contains("problem")) {
            let rest = line.strip_prefix(path.as_ref()).unwrap_or("");
            if !rest.starts_with(':') || !rest[1..].starts_with(|c: char| c.is_ascii_digit()) {
                failures.push(format!("{path}: line without file:line prefix: {line}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failure(s):\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
