//! The one way a manifest's JSONPath (a capture's `json`, a check's `json("…")`) is parsed:
//! size and nesting limits checked before the parser sees the text.
//!
//! `serde_json_path`'s parser backtracks: nested unclosed filters (`$[?(@[?(@[?(@…`) take time
//! exponential in the depth (24 levels: 40 s) and recurse once per level (1 500 levels overflow
//! the stack). A LoadTest is untrusted input to the operator, so the limits below are checked in
//! one linear pass first; within them the parser answers in milliseconds.

use serde_json_path::JsonPath;

/// Longest JSONPath accepted, in bytes.
pub const MAX_LENGTH: usize = 1024;
/// Deepest nesting of `[` and `(` accepted (outside quoted names). `$.items[?(@.tags[?(@ == 'a')])]`
/// nests 4 deep; at 8 the parser's worst case stays under 5 ms.
pub const MAX_NESTING: usize = 8;

/// Why a JSONPath was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonPathError {
    /// Longer than [`MAX_LENGTH`].
    #[error("is {length} bytes long; a JSONPath may have at most {MAX_LENGTH}")]
    TooLong { length: usize },
    /// Nested deeper than [`MAX_NESTING`].
    #[error(
        "nests brackets and parentheses {depth} deep; at most {MAX_NESTING} are allowed, so flatten the filters"
    )]
    TooDeep { depth: usize },
    /// A `\u` escape in a quoted name without four hex digits after it.
    #[error(
        "has a \\u escape without four hex digits at byte {at}; write it like \\u00e9, or the character itself"
    )]
    BadEscape { at: usize },
    /// Not RFC 9535 syntax.
    #[error("is not an RFC 9535 JSONPath ({message})")]
    Syntax { message: String },
}

/// Parses `text` as an RFC 9535 JSONPath, refusing texts over the size and nesting limits
/// without handing them to the parser.
pub fn parse(text: &str) -> Result<JsonPath, JsonPathError> {
    if text.len() > MAX_LENGTH {
        return Err(JsonPathError::TooLong { length: text.len() });
    }
    let scanned = scan(text);
    if scanned.deepest > MAX_NESTING {
        return Err(JsonPathError::TooDeep {
            depth: scanned.deepest,
        });
    }
    if let Some(at) = scanned.bad_escape {
        return Err(JsonPathError::BadEscape { at });
    }
    // serde_json_path 0.7.2 panics ("unreachable: we do not use streaming parsers") on a
    // truncated `\u` escape, which the scan refuses first; a panic of the same family
    // must still be a refused path, never a crashed validator or operator.
    match std::panic::catch_unwind(|| JsonPath::parse(text)) {
        Ok(parsed) => parsed.map_err(|error| JsonPathError::Syntax {
            message: error.to_string(),
        }),
        Err(_) => Err(JsonPathError::Syntax {
            message: "the JSONPath parser failed on it".to_string(),
        }),
    }
}

impl JsonPathError {
    /// The parser's own words for a syntax error, this error's otherwise.
    pub fn detail(&self) -> String {
        match self {
            JsonPathError::Syntax { message } => message.clone(),
            other => other.to_string(),
        }
    }
}

/// The problem text for a manifest field holding `text`: the path (shortened when it is over
/// the limit, so a megabyte of input is not echoed back), what is wrong and an example.
pub fn problem(text: &str, error: &JsonPathError) -> String {
    format!(
        "{:?} {error}; write e.g. $.session_id or $.items[0].id",
        shown(text)
    )
}

/// `text`, or its first 64 characters and an ellipsis when it is longer than [`MAX_LENGTH`].
pub fn shown(text: &str) -> String {
    if text.len() <= MAX_LENGTH {
        text.to_string()
    } else {
        let head: String = text.chars().take(64).collect();
        format!("{head}…")
    }
}

/// What one linear pass over a JSONPath finds before the parser may see it.
#[derive(Debug, PartialEq, Eq)]
struct Scan {
    /// The deepest nesting of `[` and `(` outside quoted names and string literals (`'a[b'`,
    /// `"x("`, with backslash escapes); unbalanced closers count as nothing.
    deepest: usize,
    /// The byte offset of the first `\u` escape inside quotes not followed by four hex digits
    /// (RFC 9535 requires them).
    bad_escape: Option<usize>,
}

fn scan(text: &str) -> Scan {
    let bytes = text.as_bytes();
    let (mut depth, mut deepest) = (0usize, 0usize);
    let mut bad_escape = None;
    let mut quote: Option<u8> = None;
    let mut index = 0;
    while index < bytes.len() {
        let byte = bytes[index];
        match quote {
            Some(_) if byte == b'\\' => {
                // A valid `\uXXXX` is skipped whole; any other escape is one more byte (the
                // parser judges it).
                let hex = bytes.get(index + 2..index + 6);
                if bytes.get(index + 1) == Some(&b'u')
                    && hex.is_some_and(|d| d.iter().all(u8::is_ascii_hexdigit))
                {
                    index += 6;
                    continue;
                }
                if bytes.get(index + 1) == Some(&b'u') {
                    bad_escape = bad_escape.or(Some(index));
                }
                index += 2;
                continue;
            }
            Some(open) if byte == open => quote = None,
            Some(_) => {}
            None => match byte {
                b'\'' | b'"' => quote = Some(byte),
                b'[' | b'(' => {
                    depth += 1;
                    deepest = deepest.max(depth);
                }
                b']' | b')' => depth = depth.saturating_sub(1),
                _ => {}
            },
        }
        index += 1;
    }
    Scan {
        deepest,
        bad_escape,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn ordinary_paths_parse() {
        for text in [
            "$.session_id",
            "$.items[0].id",
            "$.items[?(@.price < 10)].name",
            "$.items[?(@.tags[?(@ == 'a')])].id",
            "$['a[b(c']",
        ] {
            assert!(parse(text).is_ok(), "{text}");
        }
    }

    #[test]
    fn nesting_skips_quoted_text() {
        let nesting = |text| scan(text).deepest;
        assert_eq!(nesting("$['[[[[[[[[[[']"), 1);
        assert_eq!(nesting(r#"$["\"(((((((((("]"#), 1);
        assert_eq!(nesting("$[?(@.a[?(@.b)])]"), 4);
        assert_eq!(nesting("$]]]]["), 1);
    }

    #[test]
    fn nested_unclosed_filters_are_refused_before_parsing() {
        // 30 levels took hours in the parser and 1 500 overflowed the stack.
        for levels in [9, 30, 1_500] {
            let text = format!("${}", "[?(@".repeat(levels));
            let started = Instant::now();
            let error = parse(&text).unwrap_err();
            assert!(started.elapsed() < Duration::from_millis(100));
            let expected = if text.len() > MAX_LENGTH {
                JsonPathError::TooLong { length: text.len() }
            } else {
                JsonPathError::TooDeep { depth: levels * 2 }
            };
            assert_eq!(error, expected, "{levels} levels");
        }
        let long = "$.a".repeat(400);
        let error = parse(&long).unwrap_err();
        assert!(error.to_string().contains("at most 1024"));
        let message = problem(&long, &error);
        assert!(message.len() < 200, "{message}");
        assert!(message.contains("…"), "{message}");
    }

    /// The fuzzer's find: serde_json_path 0.7.2 panics on `$.s['\u` (a truncated escape).
    #[test]
    fn truncated_unicode_escapes_are_refused_not_a_panic() {
        for (text, at) in [
            (r"$.s['\u", 5),
            (r"$.s['\u12", 5),
            (r"$.s['\u12']", 5),
            (r#"$["a\uZZZZ"]"#, 4),
            (r"$.s['\u00e9\u", 11),
        ] {
            assert_eq!(
                parse(text).unwrap_err(),
                JsonPathError::BadEscape { at },
                "{text}"
            );
        }
        assert!(parse(r"$['caf\u00e9']").is_ok());
        assert!(
            parse(r"$['\\u']").is_ok(),
            "an escaped backslash, then a plain u"
        );
        let message = problem(r"$.s['\u", &parse(r"$.s['\u").unwrap_err());
        assert!(
            message.contains("without four hex digits at byte 5"),
            "{message}"
        );
    }

    #[test]
    fn the_deepest_accepted_nesting_parses_quickly() {
        // Four nested unclosed filters: 8 levels, the worst shape the limit lets through.
        let text = format!("${}", "[?(@".repeat(MAX_NESTING / 2));
        let started = Instant::now();
        assert!(matches!(parse(&text), Err(JsonPathError::Syntax { .. })));
        // Debug builds are slower than the release build's 1 ms; the bound catches a return of
        // the exponential case (9 levels and up), not a slow machine.
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
