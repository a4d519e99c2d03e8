//! Compiling a CRD's validation rules the way apiextensions-apiserver does at CRD admission:
//! parse (syntax errors from the `cel` crate, whose parser is a port of cel-go's), type check
//! against the schema's declarations, require a bool, and estimate the worst-case cost.

pub mod check;
pub mod cost;
pub mod parse;
pub mod types;

use std::sync::Arc;

use types::{Decl, Type};

/// What compiling one expression gave.
#[derive(Debug, Clone, PartialEq)]
pub struct Compiled {
    /// The error detail as the server prints it (`compilation failed: ERROR: <input>:1:5: ...`),
    /// or `None` when it compiled.
    pub error: Option<String>,
    /// The estimated maximum cost (0 when it did not compile).
    pub max_cost: u64,
    /// Whether it reads `oldSelf`.
    pub uses_old_self: bool,
}

impl Compiled {
    fn failed(error: String) -> Compiled {
        Compiled {
            error: Some(error),
            max_cost: 0,
            uses_old_self: false,
        }
    }
}

/// What an expression must evaluate to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// A rule: bool.
    Bool,
    /// A messageExpression: string.
    String,
}

/// Compiles `source` with `self` (and `oldSelf`) declared as `root`.
pub fn compile(
    source: &str,
    root: &Arc<Decl>,
    optional_old_self: bool,
    expect: Expect,
) -> Compiled {
    let prefix = match expect {
        Expect::Bool => "compilation failed: ",
        Expect::String => "messageExpression compilation failed: ",
    };
    if let Err(errors) = kube_cel::cel::parser::Parser::new()
        .enable_optional_syntax(true)
        .parse(source)
    {
        let shown: Vec<String> = errors
            .errors
            .iter()
            .map(|e| {
                display_error(
                    source,
                    e.pos.0.max(1) as usize,
                    e.pos.1.max(1) as usize,
                    &e.msg,
                )
            })
            .collect();
        return Compiled::failed(format!("{prefix}{}", shown.join("\n")));
    }
    // A construct this parser does not know compiled in the real server's: nothing to report.
    let Ok(expr) = parse::parse(source) else {
        return Compiled {
            error: None,
            max_cost: 0,
            uses_old_self: source.contains("oldSelf"),
        };
    };
    let checked = check::check(&expr, root, optional_old_self);
    if !checked.errors.is_empty() {
        let mut errors = checked.errors.clone();
        errors.sort_by_key(|e| parse::line_column(source, e.offset));
        let shown: Vec<String> = errors
            .iter()
            .map(|e| {
                let (line, column) = parse::line_column(source, e.offset);
                display_error(source, line, column, &e.message)
            })
            .collect();
        return Compiled::failed(format!("{prefix}{}", shown.join("\n")));
    }
    let type_ok = match expect {
        Expect::Bool => matches!(checked.result, Type::Bool),
        Expect::String => matches!(checked.result, Type::String),
    };
    if !type_ok {
        return Compiled::failed(
            match expect {
                Expect::Bool => "cel expression must evaluate to a bool",
                Expect::String => "messageExpression must evaluate to a string",
            }
            .to_string(),
        );
    }
    Compiled {
        error: None,
        max_cost: cost::estimate(&expr, &checked, root),
        uses_old_self: checked.uses_old_self,
    }
}

/// cel-go's `Error.ToDisplayString`: the location, the message, the source line and a caret.
fn display_error(source: &str, line: usize, column: usize, message: &str) -> String {
    let mut shown = format!("ERROR: <input>:{line}:{column}: {message}");
    if let Some(snippet) = source.split('\n').nth(line - 1) {
        let snippet = snippet.replace('\t', " ");
        shown.push_str("\n | ");
        shown.push_str(&snippet);
        shown.push_str("\n | ");
        shown.push_str(&".".repeat(column - 1));
        shown.push('^');
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn step() -> Arc<Decl> {
        let schema = json!({"type": "object", "properties": {
            "request": {"type": "object"},
            "sleep": {"x-kubernetes-preserve-unknown-fields": true},
            "group": {"type": "object"}
        }});
        types::decl_of(&schema, false, "selfType").expect("decl")
    }

    #[test]
    fn a_rule_reading_an_untyped_field_fails_like_in_a_cluster() {
        let rule = "(has(self.request) ? 1 : 0) + (has(self.sleep) ? 1 : 0) + (has(self.group) ? 1 : 0) == 1";
        let compiled = compile(rule, &step(), false, Expect::Bool);
        assert_eq!(
            compiled.error.as_deref(),
            Some(
                "compilation failed: ERROR: <input>:1:35: undefined field 'sleep'\n | (has(self.request) ? 1 : 0) + (has(self.sleep) ? 1 : 0) + (has(self.group) ? 1 : 0) == 1\n | ..................................^"
            )
        );
        let fixed = compile(
            "!has(self.request) || !has(self.group)",
            &step(),
            false,
            Expect::Bool,
        );
        assert_eq!(fixed.error, None);
        assert!(fixed.max_cost > 0);
    }

    #[test]
    fn syntax_errors_and_result_types() {
        let compiled = compile("self.request == ", &step(), false, Expect::Bool);
        let error = compiled.error.expect("a syntax error");
        assert!(
            error.starts_with(
                "compilation failed: ERROR: <input>:1:17: Syntax error: mismatched input '<EOF>'"
            ),
            "{error}"
        );
        assert!(
            error.ends_with("\n | self.request == \n | ................^"),
            "{error}"
        );
        assert_eq!(
            compile("has(self.group) ? 1 : 2", &step(), false, Expect::Bool)
                .error
                .as_deref(),
            Some("cel expression must evaluate to a bool")
        );
    }
}
