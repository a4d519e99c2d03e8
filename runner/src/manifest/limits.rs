//! Size and nesting limits a manifest is checked against before the YAML parser sees it.
//!
//! The YAML parser's work grows with the square of flow nesting (`[[[[…`: 40 KB took 6 s, 100 KB
//! 23 s) before its own recursion limit answers, so nesting is measured here in one linear pass.

/// The largest manifest file read, in bytes (a Kubernetes object is at most ~1.5 MiB; a file may
/// hold several).
pub const MAX_BYTES: usize = 8 * 1024 * 1024;

/// The deepest `[` / `{` nesting accepted. A LoadTest needs a handful of levels (a JSON body
/// written in flow style a few more); the parser's own recursion limit is 128.
pub const MAX_FLOW_NESTING: usize = 64;

/// A limit the text is over.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OverLimit {
    /// Longer than [`MAX_BYTES`].
    #[error("is over {} MiB; a manifest may have at most that (split it into files)", MAX_BYTES / (1024 * 1024))]
    TooLarge,
    /// Nested deeper than [`MAX_FLOW_NESTING`], at `line`.
    #[error(
        "nests [ and {{ more than {MAX_FLOW_NESTING} deep; write the value in block style or flatten it"
    )]
    TooDeep {
        /// The 1-based line where the limit was passed.
        line: usize,
    },
}

/// Checks `text` against the limits in one pass over its bytes.
pub fn check(text: &str) -> Result<(), OverLimit> {
    if text.len() > MAX_BYTES {
        return Err(OverLimit::TooLarge);
    }
    let mut depth = 0usize;
    let mut line = 1usize;
    let mut quote: Option<u8> = None;
    let mut comment = false;
    let mut previous = b'\n';
    let bytes = text.as_bytes();
    let mut index = 0;
    while index < bytes.len() {
        let byte = bytes[index];
        index += 1;
        if byte == b'\n' {
            line += 1;
            comment = false;
            previous = byte;
            continue;
        }
        if comment {
            continue;
        }
        match quote {
            // YAML escapes ' as '' and " with a backslash; either way skipping the next byte is
            // right, and a quoted scalar may span lines.
            Some(b'"') if byte == b'\\' => index += 1,
            Some(open) if byte == open => quote = None,
            Some(_) => {}
            None => match byte {
                b'"' | b'\'' => quote = Some(byte),
                b'#' if previous.is_ascii_whitespace() => comment = true,
                b'[' | b'{' => {
                    depth += 1;
                    if depth > MAX_FLOW_NESTING {
                        return Err(OverLimit::TooDeep { line });
                    }
                }
                b']' | b'}' => depth = depth.saturating_sub(1),
                _ => {}
            },
        }
        previous = byte;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_manifests_pass() {
        for text in [
            "spec: {flows: {default: [{request: {url: /a}}]}}",
            "json: '{\"a\": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1'",
            "url: \"/[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\\"\"",
            "# [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\nk: v",
        ] {
            assert_eq!(check(text), Ok(()), "{text}");
        }
        assert_eq!(check(&format!("k: {}", "[".repeat(64))), Ok(()));
    }

    #[test]
    fn deep_flow_nesting_is_refused_with_its_line() {
        let text = format!(
            "a: 1\nb: 2\nenv: {}{}",
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        assert_eq!(check(&text), Err(OverLimit::TooDeep { line: 3 }));
        assert!(
            OverLimit::TooDeep { line: 3 }
                .to_string()
                .contains("more than 64 deep")
        );
        let mixed = format!("k: {}", "{a: [".repeat(40));
        assert_eq!(check(&mixed), Err(OverLimit::TooDeep { line: 1 }));
    }

    #[test]
    fn a_manifest_over_a_limit_gets_one_problem_naming_the_line() {
        // 100 KB of nesting took the YAML parser 23 s before this check.
        let text = format!(
            "apiVersion: stampede.dev/v1alpha1\nkind: LoadTest\nmetadata: {{name: x}}\nspec:\n  env: {}",
            "[".repeat(100_000)
        );
        let report = super::super::check_str("deep.yaml", &text, &Default::default());
        let problems: Vec<String> = report.diagnostics.iter().map(ToString::to_string).collect();
        assert_eq!(
            problems,
            [
                "deep.yaml:5: nests [ and { more than 64 deep; write the value in block style or flatten it"
            ]
        );
    }

    #[test]
    fn an_alias_fan_out_is_refused_with_one_problem_before_it_expands() {
        // "Billion laughs": 10 levels of 9 aliases each expand to 9^10 strings. A 139 KB
        // variant took 47 s and 6.5 GB before the YAML parser's repetition limit caught it.
        let mut text =
            "apiVersion: stampede.dev/v1alpha1\nkind: LoadTest\nmetadata: {name: x}\nspec:\n  x0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n".to_string();
        for level in 1..10 {
            let refs = vec![format!("*a{}", level - 1); 9].join(", ");
            text.push_str(&format!("  x{level}: &a{level} [{refs}]\n"));
        }
        let report = super::super::check_str("laughs.yaml", &text, &Default::default());
        let problems: Vec<String> = report.diagnostics.iter().map(ToString::to_string).collect();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("repetition limit exceeded"),
            "{problems:?}"
        );
        assert!(report.tests.is_empty());
    }

    #[test]
    fn oversized_text_is_refused() {
        assert_eq!(check(&" ".repeat(MAX_BYTES + 1)), Err(OverLimit::TooLarge));
    }
}
