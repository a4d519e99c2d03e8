//! Check and condition expressions (`status == 200`, `json("$.ok")`, `${balance} < 10000`):
//! parsed and validated once, then evaluated against each response or before each step.
//!
//! ```text
//! expr       := or
//! or         := and ( "||" and )*
//! and        := unary ( "&&" unary )*
//! unary      := "!" unary | comparison
//! comparison := operand ( op operand )?
//! op         := "==" | "!=" | "<" | "<=" | ">" | ">=" | "contains" | "matches" | "in"
//! operand    := number | string | true | false | null | "[" operands "]"
//!             | status | duration | body | header("name") | json("$.path") | cookie("name")
//!             | ${reference} | "(" expr ")"
//! ```
//!
//! Strings take `\"`, `\'` and `\\` escapes; any other backslash is kept as written, so
//! regexes such as `"\d+"` need no doubling. Strings may contain `${...}` references, rendered
//! at evaluation (`"Bearer ${token}"`), except the arguments of `header`, `json`, `cookie` and
//! the pattern of `matches`, which are compiled once.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;

use regex::Regex;
use serde_json_path::JsonPath;
use thiserror::Error;

use crate::suggest::did_you_mean;
use crate::template::{self, Reference, Segment, TemplateError, column_at};

/// How deeply parentheses, lists and `!` may nest; bounds the parser's and evaluator's
/// recursion so a hostile manifest cannot overflow the stack.
const MAX_NESTING: usize = 64;

/// The names an operand may start with, for did-you-mean suggestions.
const OPERAND_NAMES: &[&str] = &[
    "status", "duration", "body", "header", "json", "cookie", "true", "false", "null",
];

/// The operators written as words, for did-you-mean suggestions.
const WORD_OPERATORS: &[&str] = &["contains", "matches", "in"];

const OPERAND_FORMS: &str = "operands are status, duration, body, header(\"name\"), json(\"$.path\"), cookie(\"name\"), numbers, quoted strings, true, false, null, [lists] and ${references}";

const OPERATOR_FORMS: &str =
    "compare with ==, !=, <, <=, >, >=, contains, matches or in, and join conditions with && or ||";

/// A parsed expression. Regexes and JSONPaths are compiled at parse time, so evaluating it
/// parses nothing.
#[derive(Debug, Clone)]
pub struct Expr {
    source: String,
    root: Node,
    /// The template references, in order; `Operand::Ref` and template strings index into it.
    references: Vec<Reference>,
    reads_response: bool,
    reads_body: bool,
}

#[derive(Debug, Clone)]
enum Node {
    Or(Vec<Node>),
    And(Vec<Node>),
    Not(Box<Node>),
    Compare {
        left: Operand,
        operator: Operator,
        right: Operand,
    },
    Matches {
        subject: Operand,
        pattern: Regex,
    },
    Truthy(Operand),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operator {
    Equal,
    NotEqual,
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
    Contains,
    Matches,
    In,
}

#[derive(Debug, Clone)]
enum Operand {
    Number(f64),
    Text(String),
    /// A string with `${...}` references, rendered at evaluation.
    TextTemplate(Vec<TextPart>),
    Bool(bool),
    Null,
    List(Vec<Operand>),
    Status,
    Duration,
    Body,
    /// Lowercased header name.
    Header(String),
    Cookie(String),
    Json(Box<JsonPath>),
    /// Index into `Expr::references`.
    Ref(usize),
    Group(Box<Node>),
}

#[derive(Debug, Clone)]
enum TextPart {
    Literal(String),
    /// Index into `Expr::references`.
    Ref(usize),
}

/// Why an expression did not parse. Columns are 1-based and count characters.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ExprError {
    /// A malformed expression: a missing operand, a stray token, a misused operator.
    #[error("{problem} at column {column} ({fix})")]
    Syntax {
        /// Column of the offending token.
        column: usize,
        /// What is wrong.
        problem: String,
        /// How to fix it.
        fix: String,
    },
    /// A bare word that is not an operand or operator name.
    #[error("unknown name \"{name}\" at column {column} ({fix})")]
    UnknownName {
        /// The word as written.
        name: String,
        /// Its column.
        column: usize,
        /// A did-you-mean suggestion or the list of valid forms.
        fix: String,
    },
    /// A string without its closing quote.
    #[error("unterminated string at column {column} (close it with {quote})")]
    UnterminatedString {
        /// Column of the opening quote.
        column: usize,
        /// The opening quote.
        quote: char,
    },
    /// The pattern of `matches` is not a valid regex.
    #[error(
        "invalid regex \"{pattern}\" at column {column}: {message} (fix the pattern; escape a literal special character with a backslash, e.g. \"\\(\")"
    )]
    InvalidRegex {
        /// The pattern as given.
        pattern: String,
        /// Column of the pattern's string.
        column: usize,
        /// The regex compiler's complaint.
        message: String,
    },
    /// The argument of `json(...)` is not an RFC 9535 JSONPath.
    #[error(
        "invalid JSONPath \"{path}\" at column {column}: {message} (write an RFC 9535 path such as \"$.items[0].id\")"
    )]
    InvalidJsonPath {
        /// The path as given.
        path: String,
        /// Column of the path's string.
        column: usize,
        /// The JSONPath parser's complaint.
        message: String,
    },
    /// A malformed `${...}` reference.
    #[error(transparent)]
    Template(#[from] TemplateError),
}

impl ExprError {
    /// The 1-based character column the error points at.
    pub fn column(&self) -> usize {
        match self {
            ExprError::Syntax { column, .. }
            | ExprError::UnknownName { column, .. }
            | ExprError::UnterminatedString { column, .. }
            | ExprError::InvalidRegex { column, .. }
            | ExprError::InvalidJsonPath { column, .. } => *column,
            ExprError::Template(error) => error.column(),
        }
    }
}

/// Why an expression could not be evaluated. A check whose expression fails to evaluate
/// should count as failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EvalError {
    /// `status` or `duration` was read where there is no response.
    #[error(
        "\"{operand}\" needs a response, but there is none here (an `if` condition runs before its step's request: capture the value in an earlier step and test ${{name}} instead)"
    )]
    NoResponse {
        /// `status` or `duration`.
        operand: &'static str,
    },
    /// The right side of `in` is not a list.
    #[error(
        "the right side of \"in\" is {found}, not a list (point json(...) at an array, or write a list such as [200, 201])"
    )]
    NotAList {
        /// What it was instead, e.g. `a string`.
        found: &'static str,
    },
}

/// What an expression reads: the response (for checks) and template values.
pub trait ExprContext {
    /// The response status; `None` when there is no response (an `if` condition).
    fn status(&self) -> Option<u16>;
    /// The request duration in milliseconds; `None` when there is no response.
    fn duration_ms(&self) -> Option<f64>;
    /// The response body as text, if there is one.
    fn body(&self) -> Option<&str>;
    /// A response header. `name` is always lowercase (header names are case-insensitive), so
    /// contexts should look headers up case-insensitively or store them lowercased.
    fn header(&self, name: &str) -> Option<&str>;
    /// A cookie set by the response, by exact name.
    fn cookie(&self, name: &str) -> Option<&str>;
    /// The body parsed as JSON, if it is JSON (the context parses lazily and caches).
    fn json(&self) -> Option<&serde_json::Value>;
    /// The value of a template reference, or `None` when it has none (it then reads as
    /// missing, which is falsy and equal only to `null`).
    fn resolve(&mut self, reference: &Reference) -> Option<String>;
}

/// Parses an expression.
pub fn parse(text: &str) -> Result<Expr, ExprError> {
    let tokens = lex(text)?;
    let mut parser = Parser {
        text,
        tokens,
        next: 0,
        depth: 0,
        references: Vec::new(),
        reads_response: false,
        reads_body: false,
    };
    if parser.peek().kind == TokenKind::End {
        return Err(ExprError::Syntax {
            column: 1,
            problem: "empty expression".to_string(),
            fix: "write a condition such as status == 200".to_string(),
        });
    }
    let root = parser.parse_or()?;
    let trailing = parser.peek();
    if trailing.kind != TokenKind::End {
        return Err(parser.unexpected_after_operand(trailing));
    }
    Ok(Expr {
        source: text.to_string(),
        root,
        references: parser.references,
        reads_response: parser.reads_response,
        reads_body: parser.reads_body,
    })
}

impl Expr {
    /// The template references the expression reads, in order.
    pub fn references(&self) -> Vec<&Reference> {
        self.references.iter().collect()
    }

    /// Whether the expression reads the response (`status`, `duration`, `body`, `header`,
    /// `json` or `cookie`), so it cannot be an `if` condition.
    pub fn reads_response(&self) -> bool {
        self.reads_response
    }

    /// Whether the expression reads the response body (`body` or `json(...)`), so the body
    /// must be kept (and parsed as JSON) for it.
    pub fn reads_body(&self) -> bool {
        self.reads_body
    }

    /// The expression as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Evaluates the expression. Every template reference is resolved once up front (a
    /// reference without a value reads as missing), then the response is read.
    pub fn evaluate(&self, context: &mut impl ExprContext) -> Result<bool, EvalError> {
        // Resolving needs `&mut`, reading the response borrows it; resolving first lets
        // response values be compared without copying them.
        let values: Vec<Option<String>> = self
            .references
            .iter()
            .map(|reference| context.resolve(reference))
            .collect();
        let evaluator = Evaluator {
            context: &*context,
            values: &values,
        };
        evaluator.node(&self.root)
    }
}

/// Writes the expression as written.
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

// ---------------------------------------------------------------------------------------------
// Lexing

#[derive(Debug, Clone, PartialEq)]
enum TokenKind {
    Number(f64),
    Text { value: String },
    Name(String),
    Ref(Reference),
    OpenParen,
    CloseParen,
    OpenBracket,
    CloseBracket,
    Comma,
    Not,
    And,
    Or,
    Equal,
    NotEqual,
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
    End,
}

#[derive(Debug, Clone)]
struct Token {
    kind: TokenKind,
    /// Byte offsets of the token in the source.
    start: usize,
    end: usize,
}

fn lex(text: &str) -> Result<Vec<Token>, ExprError> {
    let mut tokens = Vec::new();
    let mut position = 0;
    while let Some(c) = text[position..].chars().next() {
        let start = position;
        let rest = &text[start..];
        if c.is_whitespace() {
            position += c.len_utf8();
            continue;
        }
        let symbol = [
            ("===", None),
            ("==", Some(TokenKind::Equal)),
            ("!=", Some(TokenKind::NotEqual)),
            ("<=", Some(TokenKind::LessOrEqual)),
            (">=", Some(TokenKind::GreaterOrEqual)),
            ("&&", Some(TokenKind::And)),
            ("||", Some(TokenKind::Or)),
            ("<", Some(TokenKind::Less)),
            (">", Some(TokenKind::Greater)),
            ("!", Some(TokenKind::Not)),
            ("(", Some(TokenKind::OpenParen)),
            (")", Some(TokenKind::CloseParen)),
            ("[", Some(TokenKind::OpenBracket)),
            ("]", Some(TokenKind::CloseBracket)),
            (",", Some(TokenKind::Comma)),
        ]
        .into_iter()
        .find(|(spelling, _)| rest.starts_with(spelling));
        let (kind, end) = if let Some((spelling, kind)) = symbol {
            let Some(kind) = kind else {
                return Err(syntax(
                    text,
                    start,
                    "\"===\" is not an operator",
                    "compare with ==",
                ));
            };
            (kind, start + spelling.len())
        } else if rest.starts_with("${") {
            let (reference, end) = template::parse_reference(text, start)?;
            (TokenKind::Ref(reference), end)
        } else if c == '"' || c == '\'' {
            lex_string(text, start, c)?
        } else if c.is_ascii_digit()
            || (c == '-' && rest[1..].starts_with(|d: char| d.is_ascii_digit()))
        {
            lex_number(text, start)?
        } else if c.is_ascii_alphabetic() || c == '_' {
            let end = word_end(text, start);
            (TokenKind::Name(text[start..end].to_string()), end)
        } else {
            let fix = match c {
                '=' => "compare with ==".to_string(),
                '&' => "join conditions with &&".to_string(),
                '|' => "join alternatives with ||".to_string(),
                '$' => {
                    "quote JSONPaths, e.g. json(\"$.items[0].id\"), and write references as ${name}"
                        .to_string()
                }
                _ => format!("{OPERAND_FORMS}; {OPERATOR_FORMS}"),
            };
            return Err(ExprError::Syntax {
                column: column_at(text, start),
                problem: format!("unexpected \"{c}\""),
                fix,
            });
        };
        tokens.push(Token { kind, start, end });
        position = end;
    }
    tokens.push(Token {
        kind: TokenKind::End,
        start: text.len(),
        end: text.len(),
    });
    Ok(tokens)
}

/// The end of the run of `[A-Za-z0-9_]` starting at `start`.
fn word_end(text: &str, start: usize) -> usize {
    text[start..]
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .map_or(text.len(), |offset| start + offset)
}

fn lex_string(text: &str, start: usize, quote: char) -> Result<(TokenKind, usize), ExprError> {
    let mut value = String::new();
    let mut chars = text[start + 1..].char_indices();
    while let Some((offset, c)) = chars.next() {
        if c == quote {
            return Ok((TokenKind::Text { value }, start + 1 + offset + 1));
        }
        if c == '\\' {
            match chars.next() {
                Some((_, escaped @ ('"' | '\'' | '\\'))) => value.push(escaped),
                // Kept as written so regexes like "\d+" work without doubling.
                Some((_, other)) => {
                    value.push('\\');
                    value.push(other);
                }
                None => break,
            }
        } else {
            value.push(c);
        }
    }
    Err(ExprError::UnterminatedString {
        column: column_at(text, start),
        quote,
    })
}

fn lex_number(text: &str, start: usize) -> Result<(TokenKind, usize), ExprError> {
    let bytes = text.as_bytes();
    let digits_from = |mut at: usize| {
        while bytes.get(at).is_some_and(u8::is_ascii_digit) {
            at += 1;
        }
        at
    };
    let mut end = digits_from(start + 1);
    if bytes.get(end) == Some(&b'.') && bytes.get(end + 1).is_some_and(u8::is_ascii_digit) {
        end = digits_from(end + 1);
    }
    if matches!(bytes.get(end), Some(b'e' | b'E')) {
        let sign = usize::from(matches!(bytes.get(end + 1), Some(b'+' | b'-')));
        if bytes.get(end + 1 + sign).is_some_and(u8::is_ascii_digit) {
            end = digits_from(end + 1 + sign);
        }
    }
    let word = word_end(text, end);
    if word > end || bytes.get(end) == Some(&b'.') {
        let bad_end = text[end..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
            .map_or(text.len(), |offset| end + offset);
        return Err(syntax(
            text,
            start,
            &format!("\"{}\" is not a number", &text[start..bad_end]),
            "write a number like 200, -1 or 0.5; to read a variable write ${name}",
        ));
    }
    match text[start..end].parse::<f64>() {
        Ok(number) if number.is_finite() => Ok((TokenKind::Number(number), end)),
        _ => Err(syntax(
            text,
            start,
            &format!("{} is too large", &text[start..end]),
            "write a smaller number",
        )),
    }
}

fn syntax(text: &str, at: usize, problem: &str, fix: &str) -> ExprError {
    ExprError::Syntax {
        column: column_at(text, at),
        problem: problem.to_string(),
        fix: fix.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing

struct Parser<'a> {
    text: &'a str,
    tokens: Vec<Token>,
    next: usize,
    depth: usize,
    references: Vec<Reference>,
    reads_response: bool,
    reads_body: bool,
}

impl Parser<'_> {
    fn peek(&self) -> Token {
        self.tokens
            .get(self.next)
            .or(self.tokens.last())
            .cloned()
            .unwrap_or(Token {
                kind: TokenKind::End,
                start: self.text.len(),
                end: self.text.len(),
            })
    }

    fn advance(&mut self) -> Token {
        let token = self.peek();
        if token.kind != TokenKind::End {
            self.next += 1;
        }
        token
    }

    /// The source text of a token, for messages.
    fn spelling(&self, token: &Token) -> String {
        match token.kind {
            TokenKind::End => "the end".to_string(),
            _ => format!("\"{}\"", &self.text[token.start..token.end]),
        }
    }

    /// The token before the next one, for "after X" messages.
    fn previous_spelling(&self) -> String {
        self.next
            .checked_sub(1)
            .and_then(|index| self.tokens.get(index))
            .map_or_else(|| "the start".to_string(), |token| self.spelling(token))
    }

    fn enter(&mut self, at: &Token) -> Result<(), ExprError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(syntax(
                self.text,
                at.start,
                &format!("the expression nests deeper than {MAX_NESTING} levels"),
                "simplify it",
            ));
        }
        Ok(())
    }

    fn parse_or(&mut self) -> Result<Node, ExprError> {
        let first = self.parse_and()?;
        if self.peek().kind != TokenKind::Or {
            return Ok(first);
        }
        let mut alternatives = vec![first];
        while self.peek().kind == TokenKind::Or {
            self.advance();
            alternatives.push(self.parse_and()?);
        }
        Ok(Node::Or(alternatives))
    }

    fn parse_and(&mut self) -> Result<Node, ExprError> {
        let first = self.parse_unary()?;
        if self.peek().kind != TokenKind::And {
            return Ok(first);
        }
        let mut conditions = vec![first];
        while self.peek().kind == TokenKind::And {
            self.advance();
            conditions.push(self.parse_unary()?);
        }
        Ok(Node::And(conditions))
    }

    fn parse_unary(&mut self) -> Result<Node, ExprError> {
        let token = self.peek();
        if token.kind != TokenKind::Not {
            return self.parse_comparison();
        }
        self.advance();
        self.enter(&token)?;
        let inner = self.parse_unary()?;
        self.depth -= 1;
        Ok(Node::Not(Box::new(inner)))
    }

    fn parse_comparison(&mut self) -> Result<Node, ExprError> {
        let left = self.parse_operand()?;
        let operator_token = self.peek();
        let Some(operator) = self.operator(&operator_token)? else {
            return Ok(Node::Truthy(left));
        };
        self.advance();
        let node = match operator {
            Operator::Matches => {
                let pattern_token = self.advance();
                let TokenKind::Text { value } = &pattern_token.kind else {
                    return Err(syntax(
                        self.text,
                        pattern_token.start,
                        &format!(
                            "\"matches\" needs a quoted regex but found {}",
                            self.spelling(&pattern_token)
                        ),
                        "write e.g. header(\"content-type\") matches \"json\"",
                    ));
                };
                let pattern = self.static_text(value, &pattern_token, "the regex of matches")?;
                let regex = Regex::new(&pattern).map_err(|error| ExprError::InvalidRegex {
                    column: column_at(self.text, pattern_token.start),
                    message: regex_complaint(&error),
                    pattern,
                })?;
                Node::Matches {
                    subject: left,
                    pattern: regex,
                }
            }
            Operator::In => {
                let list_token = self.peek();
                let right = self.parse_operand()?;
                if !matches!(right, Operand::List(_) | Operand::Json(_)) {
                    return Err(syntax(
                        self.text,
                        list_token.start,
                        &format!(
                            "\"in\" needs a list on the right but found {}",
                            self.spelling(&list_token)
                        ),
                        "write a list such as status in [200, 201], or json(\"$.path\") of an array",
                    ));
                }
                Node::Compare {
                    left,
                    operator,
                    right,
                }
            }
            _ => Node::Compare {
                left,
                operator,
                right: self.parse_operand()?,
            },
        };
        let after = self.peek();
        if self.operator(&after)?.is_some() {
            return Err(syntax(
                self.text,
                after.start,
                &format!(
                    "comparisons cannot be chained ({} follows a comparison)",
                    self.spelling(&after)
                ),
                "join them with &&, e.g. a < b && b < c, or group with parentheses",
            ));
        }
        Ok(node)
    }

    /// The comparison operator `token` spells, `None` if it is not one. A bare word in
    /// operator position is an error (a likely misspelled operator).
    fn operator(&self, token: &Token) -> Result<Option<Operator>, ExprError> {
        Ok(Some(match &token.kind {
            TokenKind::Equal => Operator::Equal,
            TokenKind::NotEqual => Operator::NotEqual,
            TokenKind::Less => Operator::Less,
            TokenKind::LessOrEqual => Operator::LessOrEqual,
            TokenKind::Greater => Operator::Greater,
            TokenKind::GreaterOrEqual => Operator::GreaterOrEqual,
            TokenKind::Name(name) if name == "contains" => Operator::Contains,
            TokenKind::Name(name) if name == "matches" => Operator::Matches,
            TokenKind::Name(name) if name == "in" => Operator::In,
            TokenKind::Name(_) => return Err(self.unexpected_after_operand(token.clone())),
            _ => return Ok(None),
        }))
    }

    /// The error for `token` where an operator, `&&`, `||`, `)` or the end was expected.
    fn unexpected_after_operand(&self, token: Token) -> ExprError {
        if let TokenKind::Name(name) = &token.kind {
            let fix = match name.as_str() {
                "and" | "AND" => "join conditions with &&".to_string(),
                "or" | "OR" => "join alternatives with ||".to_string(),
                _ => match did_you_mean(name, WORD_OPERATORS.iter().copied()) {
                    Some(operator) => format!("did you mean \"{operator}\"?"),
                    None => OPERATOR_FORMS.to_string(),
                },
            };
            return ExprError::UnknownName {
                name: name.clone(),
                column: column_at(self.text, token.start),
                fix,
            };
        }
        let fix = match token.kind {
            TokenKind::CloseParen | TokenKind::CloseBracket => {
                "remove it or add the matching opening bracket".to_string()
            }
            _ => OPERATOR_FORMS.to_string(),
        };
        syntax(
            self.text,
            token.start,
            &format!(
                "unexpected {} after {}",
                self.spelling(&token),
                self.previous_spelling()
            ),
            &fix,
        )
    }

    fn parse_operand(&mut self) -> Result<Operand, ExprError> {
        let token = self.advance();
        match token.kind {
            TokenKind::Number(number) => Ok(Operand::Number(number)),
            TokenKind::Text { ref value } => self.text_operand(value, &token),
            TokenKind::Ref(reference) => Ok(Operand::Ref(self.add_reference(reference))),
            TokenKind::OpenBracket => {
                self.enter(&token)?;
                let mut items = Vec::new();
                if self.peek().kind == TokenKind::CloseBracket {
                    self.advance();
                } else {
                    loop {
                        items.push(self.parse_operand()?);
                        let separator = self.advance();
                        match separator.kind {
                            TokenKind::Comma => {}
                            TokenKind::CloseBracket => break,
                            _ => {
                                return Err(syntax(
                                    self.text,
                                    separator.start,
                                    &format!(
                                        "expected \",\" or \"]\" in the list opened at column {} but found {}",
                                        column_at(self.text, token.start),
                                        self.spelling(&separator)
                                    ),
                                    "separate list items with commas and close the list with ]",
                                ));
                            }
                        }
                    }
                }
                self.depth -= 1;
                Ok(Operand::List(items))
            }
            TokenKind::OpenParen => {
                self.enter(&token)?;
                let inner = self.parse_or()?;
                let close = self.peek();
                if close.kind != TokenKind::CloseParen {
                    let mut error = self.unexpected_after_operand(close.clone());
                    if close.kind == TokenKind::End {
                        error = syntax(
                            self.text,
                            token.start,
                            "\"(\" is not closed",
                            "add the matching \")\"",
                        );
                    }
                    return Err(error);
                }
                self.advance();
                self.depth -= 1;
                Ok(Operand::Group(Box::new(inner)))
            }
            TokenKind::Name(ref name) => self.named_operand(name, &token),
            TokenKind::End => Err(syntax(
                self.text,
                token.start,
                &format!(
                    "expected an operand after {} but the expression ends",
                    self.previous_spelling()
                ),
                &format!("add one, e.g. status == 200; {OPERAND_FORMS}"),
            )),
            _ => Err(syntax(
                self.text,
                token.start,
                &format!("expected an operand but found {}", self.spelling(&token)),
                OPERAND_FORMS,
            )),
        }
    }

    fn named_operand(&mut self, name: &str, token: &Token) -> Result<Operand, ExprError> {
        let operand = match name {
            "true" => Operand::Bool(true),
            "false" => Operand::Bool(false),
            "null" => Operand::Null,
            "status" => Operand::Status,
            "duration" => Operand::Duration,
            "body" => Operand::Body,
            "header" => Operand::Header(self.call_argument(name, token)?.to_ascii_lowercase()),
            "cookie" => Operand::Cookie(self.call_argument(name, token)?),
            "json" => {
                let argument_token = self.tokens.get(self.next + 1).cloned();
                let path = self.call_argument(name, token)?;
                let column = argument_token.map_or(column_at(self.text, token.start), |token| {
                    column_at(self.text, token.start)
                });
                let compiled =
                    crate::jsonpath::parse(&path).map_err(|error| ExprError::InvalidJsonPath {
                        path: crate::jsonpath::shown(&path),
                        column,
                        message: error.detail(),
                    })?;
                Operand::Json(Box::new(compiled))
            }
            _ => {
                let fix = if name == "not" {
                    "negate with !, e.g. !(status == 500)".to_string()
                } else if let Some(suggestion) = did_you_mean(name, OPERAND_NAMES.iter().copied()) {
                    format!("did you mean \"{suggestion}\"?")
                } else if let Some(suggestion) = did_you_mean(name, WORD_OPERATORS.iter().copied())
                {
                    format!("\"{suggestion}\" is an operator and goes between two operands")
                } else {
                    format!("to read a variable write ${{{name}}}; {OPERAND_FORMS}")
                };
                return Err(ExprError::UnknownName {
                    name: name.to_string(),
                    column: column_at(self.text, token.start),
                    fix,
                });
            }
        };
        if !matches!(operand, Operand::Bool(_) | Operand::Null) {
            self.reads_response = true;
        }
        if matches!(operand, Operand::Body | Operand::Json(_)) {
            self.reads_body = true;
        }
        Ok(operand)
    }

    /// Parses `("argument")` after `function`, returning the argument.
    fn call_argument(
        &mut self,
        function: &str,
        function_token: &Token,
    ) -> Result<String, ExprError> {
        let example = match function {
            "header" => "header(\"content-type\")",
            "cookie" => "cookie(\"session\")",
            _ => "json(\"$.items[0].id\")",
        };
        let open = self.advance();
        let argument = self.advance();
        let close = self.advance();
        let well_formed = open.kind == TokenKind::OpenParen && close.kind == TokenKind::CloseParen;
        match (&argument.kind, well_formed) {
            (TokenKind::Text { value }, true) => {
                self.static_text(value, &argument, &format!("the argument of {function}()"))
            }
            _ => Err(syntax(
                self.text,
                function_token.start,
                &format!("{function} needs one quoted argument in parentheses"),
                &format!("write e.g. {example}"),
            )),
        }
    }

    /// A string operand: plain text, or a template rendered at evaluation.
    fn text_operand(&mut self, value: &str, token: &Token) -> Result<Operand, ExprError> {
        let parsed = self.string_template(value, token)?;
        if let Some(literal) = parsed.as_literal() {
            return Ok(Operand::Text(literal.to_string()));
        }
        let parts = parsed
            .segments
            .into_iter()
            .map(|segment| match segment {
                Segment::Literal(text) => TextPart::Literal(text),
                Segment::Ref(reference) => TextPart::Ref(self.add_reference(reference)),
            })
            .collect();
        Ok(Operand::TextTemplate(parts))
    }

    /// The text of a string that is compiled at parse time, so it may not use `${...}`.
    fn static_text(&self, value: &str, token: &Token, role: &str) -> Result<String, ExprError> {
        let parsed = self.string_template(value, token)?;
        parsed.as_literal().map(str::to_string).ok_or_else(|| {
            syntax(
                self.text,
                token.start,
                &format!("{role} cannot use ${{...}} (it is compiled once, when the test loads)"),
                "write it out, or write \"$${\" for a literal \"${\"",
            )
        })
    }

    fn string_template(&self, value: &str, token: &Token) -> Result<template::Template, ExprError> {
        // Template columns count within the string's content, which starts after the quote.
        template::parse(value).map_err(|error| {
            ExprError::Template(error.shift_columns(column_at(self.text, token.start)))
        })
    }

    fn add_reference(&mut self, reference: Reference) -> usize {
        self.references.push(reference);
        self.references.len() - 1
    }
}

/// The one-line complaint of a regex error (its `Display` draws the pattern with a caret).
fn regex_complaint(error: &regex::Error) -> String {
    let full = error.to_string();
    full.lines()
        .rev()
        .find_map(|line| line.strip_prefix("error: "))
        .map_or_else(|| full.trim().to_string(), str::to_string)
}

// ---------------------------------------------------------------------------------------------
// Evaluation

/// A value during evaluation, borrowing from the response or the resolved references.
#[derive(Debug, Clone)]
enum Value<'a> {
    Missing,
    Null,
    Bool(bool),
    Number(f64),
    Text(Cow<'a, str>),
    List(Vec<Value<'a>>),
    JsonArray(&'a [serde_json::Value]),
    JsonObject(&'a serde_json::Map<String, serde_json::Value>),
}

impl<'a> Value<'a> {
    fn from_json(value: &'a serde_json::Value) -> Value<'a> {
        match value {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(flag) => Value::Bool(*flag),
            serde_json::Value::Number(number) => {
                number.as_f64().map_or(Value::Missing, Value::Number)
            }
            serde_json::Value::String(text) => Value::Text(Cow::Borrowed(text)),
            serde_json::Value::Array(items) => Value::JsonArray(items),
            serde_json::Value::Object(members) => Value::JsonObject(members),
        }
    }

    fn is_nullish(&self) -> bool {
        matches!(self, Value::Missing | Value::Null)
    }

    /// The number this value denotes: a number, or a string that is entirely a number.
    fn as_number(&self) -> Option<f64> {
        match self {
            Value::Number(number) => Some(*number),
            Value::Text(text) => numeric_text(text),
            _ => None,
        }
    }

    /// The string form of a scalar (`true`, `200`, the text itself).
    fn as_text(&self) -> Option<Cow<'_, str>> {
        match self {
            Value::Text(text) => Some(Cow::Borrowed(text)),
            Value::Number(number) => Some(Cow::Owned(number.to_string())),
            Value::Bool(flag) => Some(Cow::Borrowed(if *flag { "true" } else { "false" })),
            _ => None,
        }
    }

    /// The elements of a list or JSON array, `None` for anything else.
    fn elements(&self) -> Option<Vec<Value<'a>>> {
        match self {
            Value::List(items) => Some(items.clone()),
            Value::JsonArray(items) => Some(items.iter().map(Value::from_json).collect()),
            _ => None,
        }
    }

    /// Whether any element of a list or JSON array satisfies `predicate`; `None` when this
    /// is not a list.
    fn any_element(&self, mut predicate: impl FnMut(&Value<'_>) -> bool) -> Option<bool> {
        match self {
            Value::List(items) => Some(items.iter().any(predicate)),
            Value::JsonArray(items) => {
                Some(items.iter().any(|item| predicate(&Value::from_json(item))))
            }
            _ => None,
        }
    }

    /// JS-like truthiness: missing, null, false, 0, NaN and "" are false.
    fn is_truthy(&self) -> bool {
        match self {
            Value::Missing | Value::Null => false,
            Value::Bool(flag) => *flag,
            Value::Number(number) => *number != 0.0 && !number.is_nan(),
            Value::Text(text) => !text.is_empty(),
            Value::List(_) | Value::JsonArray(_) | Value::JsonObject(_) => true,
        }
    }

    /// A description for type errors, e.g. `a string`.
    fn kind(&self) -> &'static str {
        match self {
            Value::Missing => "missing",
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::Text(_) => "a string",
            Value::List(_) | Value::JsonArray(_) => "a list",
            Value::JsonObject(_) => "an object",
        }
    }
}

/// The number a string spells, if it is one (surrounding whitespace allowed; `inf`, `NaN`
/// and the like are not numbers here).
fn numeric_text(text: &str) -> Option<f64> {
    let trimmed = text.trim();
    let looks_numeric = !trimmed.is_empty()
        && trimmed
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'))
        && trimmed.bytes().any(|b| b.is_ascii_digit());
    if !looks_numeric {
        return None;
    }
    trimmed
        .parse::<f64>()
        .ok()
        .filter(|number| number.is_finite())
}

/// Equality: numerically when both sides are numbers or numeric strings; missing equals
/// null; a boolean equals the strings "true"/"false" (template values are always strings);
/// lists element by element; otherwise the strings must match.
fn equals(left: &Value<'_>, right: &Value<'_>) -> bool {
    if left.is_nullish() || right.is_nullish() {
        return left.is_nullish() && right.is_nullish();
    }
    if let (Some(a), Some(b)) = (left.as_number(), right.as_number()) {
        return a == b;
    }
    match (left, right) {
        (Value::Bool(a), Value::Bool(b)) => a == b,
        (Value::Bool(flag), Value::Text(text)) | (Value::Text(text), Value::Bool(flag)) => {
            text.as_ref() == if *flag { "true" } else { "false" }
        }
        (Value::Text(a), Value::Text(b)) => a == b,
        (Value::JsonObject(a), Value::JsonObject(b)) => a == b,
        _ => match (left.elements(), right.elements()) {
            (Some(a), Some(b)) => a.len() == b.len() && a.iter().zip(&b).all(|(x, y)| equals(x, y)),
            _ => false,
        },
    }
}

/// Ordering: numerically when both sides are numbers or numeric strings, else as strings;
/// `None` (every ordering comparison false) for missing, null, lists and objects.
fn order(left: &Value<'_>, right: &Value<'_>) -> Option<Ordering> {
    if let (Some(a), Some(b)) = (left.as_number(), right.as_number()) {
        return a.partial_cmp(&b);
    }
    match (left.as_text(), right.as_text()) {
        (Some(a), Some(b)) => Some(a.cmp(&b)),
        _ => None,
    }
}

/// `contains`: membership for lists, key presence for objects, substring for scalars.
fn contains(container: &Value<'_>, item: &Value<'_>) -> bool {
    if let Some(found) = container.any_element(|element| equals(element, item)) {
        return found;
    }
    match (container, item.as_text()) {
        (Value::JsonObject(members), Some(key)) => members.contains_key(key.as_ref()),
        (Value::JsonObject(_), None) => false,
        (_, Some(needle)) => container
            .as_text()
            .is_some_and(|haystack| haystack.contains(needle.as_ref())),
        (_, None) => false,
    }
}

struct Evaluator<'a, C> {
    context: &'a C,
    /// Resolved references, by index into `Expr::references`.
    values: &'a [Option<String>],
}

impl<'a, C: ExprContext> Evaluator<'a, C> {
    fn node(&self, node: &'a Node) -> Result<bool, EvalError> {
        match node {
            Node::Or(alternatives) => {
                for alternative in alternatives {
                    if self.node(alternative)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Node::And(conditions) => {
                for condition in conditions {
                    if !self.node(condition)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Node::Not(inner) => Ok(!self.node(inner)?),
            Node::Truthy(operand) => Ok(self.operand(operand)?.is_truthy()),
            Node::Matches { subject, pattern } => {
                let value = self.operand(subject)?;
                Ok(value.as_text().is_some_and(|text| pattern.is_match(&text)))
            }
            Node::Compare {
                left,
                operator,
                right,
            } => {
                let left = self.operand(left)?;
                let right = self.operand(right)?;
                Ok(match operator {
                    Operator::Equal => equals(&left, &right),
                    Operator::NotEqual => !equals(&left, &right),
                    Operator::Less => order(&left, &right) == Some(Ordering::Less),
                    Operator::LessOrEqual => {
                        matches!(order(&left, &right), Some(Ordering::Less | Ordering::Equal))
                    }
                    Operator::Greater => order(&left, &right) == Some(Ordering::Greater),
                    Operator::GreaterOrEqual => matches!(
                        order(&left, &right),
                        Some(Ordering::Greater | Ordering::Equal)
                    ),
                    Operator::Contains => contains(&left, &right),
                    Operator::In => {
                        if right.is_nullish() {
                            return Ok(false);
                        }
                        right.any_element(|element| equals(&left, element)).ok_or(
                            EvalError::NotAList {
                                found: right.kind(),
                            },
                        )?
                    }
                    // Parsed into `Node::Matches`; never a `Compare` operator.
                    Operator::Matches => false,
                })
            }
        }
    }

    fn operand(&self, operand: &'a Operand) -> Result<Value<'a>, EvalError> {
        Ok(match operand {
            Operand::Number(number) => Value::Number(*number),
            Operand::Text(text) => Value::Text(Cow::Borrowed(text)),
            Operand::TextTemplate(parts) => {
                let mut rendered = String::new();
                for part in parts {
                    match part {
                        TextPart::Literal(text) => rendered.push_str(text),
                        TextPart::Ref(index) => match self.reference(*index) {
                            Some(value) => rendered.push_str(value),
                            None => return Ok(Value::Missing),
                        },
                    }
                }
                Value::Text(Cow::Owned(rendered))
            }
            Operand::Bool(flag) => Value::Bool(*flag),
            Operand::Null => Value::Null,
            Operand::List(items) => Value::List(
                items
                    .iter()
                    .map(|item| self.operand(item))
                    .collect::<Result<_, _>>()?,
            ),
            Operand::Status => Value::Number(f64::from(
                self.context
                    .status()
                    .ok_or(EvalError::NoResponse { operand: "status" })?,
            )),
            Operand::Duration => {
                Value::Number(self.context.duration_ms().ok_or(EvalError::NoResponse {
                    operand: "duration",
                })?)
            }
            Operand::Body => text_or_missing(self.context.body()),
            Operand::Header(name) => text_or_missing(self.context.header(name)),
            Operand::Cookie(name) => text_or_missing(self.context.cookie(name)),
            Operand::Json(path) => self
                .context
                .json()
                .and_then(|document| path.query(document).first())
                .map_or(Value::Missing, Value::from_json),
            Operand::Ref(index) => text_or_missing(self.reference(*index)),
            Operand::Group(inner) => Value::Bool(self.node(inner)?),
        })
    }

    fn reference(&self, index: usize) -> Option<&'a str> {
        self.values.get(index).and_then(Option::as_deref)
    }
}

fn text_or_missing(text: Option<&str>) -> Value<'_> {
    text.map_or(Value::Missing, |text| Value::Text(Cow::Borrowed(text)))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// A response (or none) and VU variables, for evaluating expressions in tests.
    #[derive(Default)]
    struct TestContext {
        status: Option<u16>,
        duration_ms: Option<f64>,
        body: Option<String>,
        headers: Vec<(String, String)>,
        cookies: HashMap<String, String>,
        json: Option<serde_json::Value>,
        variables: HashMap<String, String>,
        resolved: Vec<String>,
    }

    impl TestContext {
        fn response(status: u16, body: &str) -> TestContext {
            TestContext {
                status: Some(status),
                duration_ms: Some(123.5),
                body: Some(body.to_string()),
                json: serde_json::from_str(body).ok(),
                headers: vec![(
                    "Content-Type".into(),
                    "application/json; charset=utf-8".into(),
                )],
                ..TestContext::default()
            }
        }

        fn with_variable(mut self, name: &str, value: &str) -> TestContext {
            self.variables.insert(name.to_string(), value.to_string());
            self
        }
    }

    impl ExprContext for TestContext {
        fn status(&self) -> Option<u16> {
            self.status
        }
        fn duration_ms(&self) -> Option<f64> {
            self.duration_ms
        }
        fn body(&self) -> Option<&str> {
            self.body.as_deref()
        }
        fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(name))
                .map(|(_, value)| value.as_str())
        }
        fn cookie(&self, name: &str) -> Option<&str> {
            self.cookies.get(name).map(String::as_str)
        }
        fn json(&self) -> Option<&serde_json::Value> {
            self.json.as_ref()
        }
        fn resolve(&mut self, reference: &Reference) -> Option<String> {
            self.resolved.push(reference.to_string());
            match reference {
                Reference::Var(name) => self.variables.get(name).cloned(),
                _ => None,
            }
        }
    }

    const BODY: &str = r#"{"ok": true, "token": "abc", "items": [{"id": 7}, {"id": 8}],
        "tags": ["a", "b"], "count": 0, "name": null, "price": "12.50"}"#;

    fn holds(text: &str, context: &mut TestContext) -> bool {
        let expr = parse(text).unwrap_or_else(|error| panic!("{text}: {error}"));
        expr.evaluate(context)
            .unwrap_or_else(|error| panic!("{text}: {error}"))
    }

    fn check(text: &str) -> bool {
        holds(text, &mut TestContext::response(200, BODY))
    }

    fn parse_error(text: &str) -> ExprError {
        match parse(text) {
            Ok(expr) => panic!("{text}: expected an error, parsed {expr:?}"),
            Err(error) => error,
        }
    }

    #[test]
    fn compares_status() {
        assert!(check("status == 200"));
        assert!(!check("status != 200"));
        assert!(check("status in [200, 201]"));
        assert!(!check("status in [201, 204]"));
        assert!(check("status >= 200 && status < 300"));
        assert!(!check("status >= 300 || status < 200"));
        assert!(!holds("status == 200", &mut TestContext::response(404, "")));
        assert!(check("duration < 500"));
        assert!(check("duration > 123.4 && duration <= 123.5"));
    }

    #[test]
    fn reads_body_json_headers_and_cookies() {
        assert!(check(r#"body contains "token""#));
        assert!(!check(r#"body contains "secret""#));
        assert!(check(r#"json("$.items[0].id") == 7"#));
        assert!(check(r#"json("$.items[1].id") == "8""#));
        assert!(check(r#"json("$.ok")"#));
        assert!(check(r#"json("$.ok") == true"#));
        assert!(!check(r#"json("$.missing")"#));
        assert!(!check(r#"json("$.count")"#));
        assert!(check(r#"json("$.name") == null"#));
        assert!(check(r#"json("$.missing") == null"#));
        assert!(check(r#"json("$.tags") contains "b""#));
        assert!(!check(r#"json("$.tags") contains "c""#));
        assert!(check(r#""a" in json("$.tags")"#));
        assert!(check(r#"json("$") contains "token""#));
        assert!(check(r#"json("$.price") < 13"#));
        assert!(check(r#"json("$.items[*].id") == 7"#), "first match");
        assert!(check(r#"header("content-type") matches "json""#));
        assert!(check(r#"header("CONTENT-TYPE") contains "utf-8""#));
        assert!(!check(r#"header("x-missing") matches ".*""#));
        let mut context = TestContext::response(200, "plain text");
        context.cookies.insert("session".into(), "s1".into());
        assert!(holds(r#"cookie("session") == "s1""#, &mut context));
        assert!(!holds(r#"cookie("Session")"#, &mut context));
        assert!(
            !holds(r#"json("$.ok")"#, &mut context),
            "non-JSON body reads as missing"
        );
        assert!(holds(r#"body matches "^plain\s+text$""#, &mut context));
    }

    #[test]
    fn compares_references_as_numbers_or_strings() {
        let mut context = TestContext::default()
            .with_variable("balance", "9500")
            .with_variable("name", "ann")
            .with_variable("flag", "true")
            .with_variable("zero", "0");
        assert!(holds("${balance} < 10000", &mut context));
        assert!(
            !holds("${balance} < 900", &mut context),
            "numeric, not lexicographic"
        );
        assert!(holds("${balance} == 9500.0", &mut context));
        assert!(holds(r#"${name} == "ann""#, &mut context));
        assert!(holds(r#"${name} < "bob""#, &mut context));
        assert!(holds("${flag} == true", &mut context));
        assert!(
            holds("${zero}", &mut context),
            "the string \"0\" is truthy, as in JS"
        );
        assert!(holds("${zero} == 0", &mut context));
        assert!(!holds("${unset}", &mut context));
        assert!(holds("${unset} == null", &mut context));
        assert!(!holds("${unset} < 5", &mut context));
        assert!(holds(r#""x-${name}-y" == "x-ann-y""#, &mut context));
        assert!(!holds(r#""x-${unset}" == "x-""#, &mut context));
        assert!(holds(r#""literal $${name}" contains "$${""#, &mut context));
        assert!(
            parse(r#"body contains "${""#).is_err(),
            "strings are templates"
        );
    }

    #[test]
    fn negation_and_precedence() {
        assert!(check("!(status == 500)"));
        assert!(check("!status == 500"), "! applies to the whole comparison");
        assert!(!check("!!(status == 500)"));
        // && binds tighter than ||: true || (false && false).
        assert!(check(
            "status == 200 || status == 500 && body contains \"nope\""
        ));
        // Parentheses override it: (true || false) && false.
        assert!(!check(
            "(status == 200 || status == 500) && body contains \"nope\""
        ));
        assert!(check("(status == 200) == true"));
        assert!(check("[1, 2] == [1, \"2\"]"));
        assert!(!check("[1, 2] == [1]"));
    }

    #[test]
    fn literals_and_truthiness() {
        assert!(check("true"));
        assert!(!check("false"));
        assert!(!check("null"));
        assert!(!check("0"));
        assert!(check("-1 < 0"));
        assert!(check("1e3 == 1000"));
        assert!(!check("\"\""));
        assert!(check("'it\\'s' == \"it's\""));
        assert!(check(r#""a\\b" contains "\\""#));
        assert!(check("[]"), "an empty list is truthy, as in JS");
    }

    #[test]
    fn records_references_and_response_use() {
        let expr = parse(r#"${a} > 1 && "${env.B}" == ${data.t.c} || !${vu}"#).unwrap();
        let references: Vec<String> = expr.references().iter().map(ToString::to_string).collect();
        assert_eq!(references, ["${a}", "${env.B}", "${data.t.c}", "${vu}"]);
        assert!(!expr.reads_response());
        assert!(parse("true && json(\"$.x\")").unwrap().reads_response());
        assert!(parse("[1, status]").unwrap().reads_response());
        assert!(parse("body contains \"x\"").unwrap().reads_body());
        assert!(parse("!(json(\"$.ok\") == true)").unwrap().reads_body());
        // Reading headers, or a variable whose name mentions a body, keeps no body.
        assert!(
            !parse("header(\"x-body\") == \"${somebody}\"")
                .unwrap()
                .reads_body()
        );
        assert!(!parse("status == 200").unwrap().reads_body());
        let source = "  status == 200 ";
        assert_eq!(parse(source).unwrap().source(), source);
        assert_eq!(parse(source).unwrap().to_string(), source);
    }

    #[test]
    fn resolves_each_reference_once_before_reading_the_response() {
        let mut context = TestContext::response(200, BODY).with_variable("id", "7");
        assert!(holds(
            r#"json("$.items[0].id") == ${id} || ${id} == 0"#,
            &mut context
        ));
        assert_eq!(context.resolved, ["${id}", "${id}"]);
    }

    #[test]
    fn conditions_without_a_response() {
        let mut context = TestContext::default().with_variable("token", "t");
        assert!(holds("${token}", &mut context));
        let error = parse("status == 200")
            .unwrap()
            .evaluate(&mut context)
            .unwrap_err();
        assert_eq!(error, EvalError::NoResponse { operand: "status" });
        assert!(
            error
                .to_string()
                .contains("capture the value in an earlier step")
        );
        assert!(
            !holds("body contains \"x\"", &mut context),
            "no body reads as missing"
        );
    }

    #[test]
    fn in_needs_a_list() {
        let error = parse(r#"1 in json("$.token")"#)
            .unwrap()
            .evaluate(&mut TestContext::response(200, BODY))
            .unwrap_err();
        assert_eq!(error, EvalError::NotAList { found: "a string" });
        assert!(!check(r#"1 in json("$.missing")"#));
        let error = parse_error("status in 200");
        assert!(error.to_string().contains("needs a list"), "{error}");
        assert_eq!(error.column(), 11);
    }

    #[test]
    fn error_for_a_missing_operand() {
        let error = parse_error("status ==");
        assert!(
            matches!(error, ExprError::Syntax { column: 10, .. }),
            "{error:?}"
        );
        assert!(
            error.to_string().starts_with(
                "expected an operand after \"==\" but the expression ends at column 10 (add one"
            ),
            "{error}"
        );
        assert!(parse_error("").to_string().contains("empty expression"));
        assert!(
            parse_error("status == 200 &&")
                .to_string()
                .contains("after \"&&\"")
        );
        assert!(
            parse_error("== 200")
                .to_string()
                .contains("expected an operand but found \"==\"")
        );
    }

    #[test]
    fn error_for_a_misspelled_name_suggests_the_right_one() {
        let error = parse_error("stauts == 200");
        assert_eq!(
            error,
            ExprError::UnknownName {
                name: "stauts".into(),
                column: 1,
                fix: "did you mean \"status\"?".into()
            }
        );
        assert_eq!(
            error.to_string(),
            "unknown name \"stauts\" at column 1 (did you mean \"status\"?)"
        );
        let error = parse_error("body contain \"x\"");
        assert!(
            error.to_string().contains("did you mean \"contains\"?"),
            "{error}"
        );
        assert_eq!(error.column(), 6);
        assert!(
            parse_error("token == 1")
                .to_string()
                .contains("write ${token}")
        );
        assert!(
            parse_error("status == 200 and body")
                .to_string()
                .contains("&&")
        );
        assert!(
            parse_error("not status")
                .to_string()
                .contains("negate with !")
        );
    }

    #[test]
    fn error_for_a_bad_json_path() {
        let error = parse_error(r#"json("$[") == 1"#);
        assert!(
            matches!(&error, ExprError::InvalidJsonPath { path, column: 6, .. } if path == "$["),
            "{error:?}"
        );
        assert!(error.to_string().contains("RFC 9535"), "{error}");
        assert!(
            parse_error("json(\"items\")")
                .to_string()
                .contains("invalid JSONPath")
        );
        assert!(
            parse_error("json($.x)")
                .to_string()
                .contains("json(\"$.items[0].id\")")
        );
        assert!(
            parse_error("header(\"${h}\")")
                .to_string()
                .contains("cannot use ${...}")
        );
    }

    #[test]
    fn error_for_a_bad_regex() {
        let error = parse_error(r#"body matches "(""#);
        assert!(
            matches!(&error, ExprError::InvalidRegex { pattern, column: 14, message } if pattern == "(" && message.contains("unclosed group")),
            "{error:?}"
        );
        assert!(!error.to_string().contains('\n'), "{error}");
        assert!(
            parse_error("body matches 1")
                .to_string()
                .contains("quoted regex")
        );
        assert!(
            parse_error("body matches \"${re}\"")
                .to_string()
                .contains("compiled once")
        );
    }

    #[test]
    fn error_for_an_unterminated_string() {
        assert_eq!(
            parse_error(r#"body contains "tok"#),
            ExprError::UnterminatedString {
                column: 15,
                quote: '"'
            }
        );
        assert_eq!(
            parse_error(r#"body contains 'it\'s"#),
            ExprError::UnterminatedString {
                column: 15,
                quote: '\''
            }
        );
    }

    #[test]
    fn error_for_operator_mistakes() {
        assert!(
            parse_error("status = 200")
                .to_string()
                .contains("compare with ==")
        );
        assert!(
            parse_error("status === 200")
                .to_string()
                .contains("compare with ==")
        );
        assert!(parse_error("a & b").to_string().contains("&&"));
        let error = parse_error("1 < 2 < 3");
        assert!(error.to_string().contains("cannot be chained"), "{error}");
        assert_eq!(error.column(), 7);
        assert!(
            parse_error("(status == 200")
                .to_string()
                .contains("not closed")
        );
        assert!(
            parse_error("status == 200)")
                .to_string()
                .contains("unexpected \")\"")
        );
        assert!(
            parse_error("[1, 2")
                .to_string()
                .contains("expected \",\" or \"]\"")
        );
        assert!(
            parse_error("status 200")
                .to_string()
                .contains("unexpected \"200\"")
        );
        assert!(
            parse_error("12abc == 1")
                .to_string()
                .contains("not a number")
        );
        assert!(
            parse_error("1.2.3 == 1")
                .to_string()
                .contains("not a number")
        );
    }

    #[test]
    fn template_errors_point_into_the_expression() {
        let error = parse_error("${balance < 10");
        assert_eq!(
            error,
            ExprError::Template(TemplateError::Unterminated { column: 1 })
        );
        let error = parse_error("status == 200 && ${stauts.x}");
        assert_eq!(error.column(), 20);
        let error = parse_error(r#"body == "ab${}""#);
        assert_eq!(
            error,
            ExprError::Template(TemplateError::Empty { column: 12 })
        );
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = format!("{}true{}", "(".repeat(10_000), ")".repeat(10_000));
        assert!(parse_error(&deep).to_string().contains("nests deeper"));
        let negations = format!("{}true", "!".repeat(10_000));
        assert!(parse_error(&negations).to_string().contains("nests deeper"));
        let fine = format!("{}true{}", "(".repeat(30), ")".repeat(30));
        assert!(check(&fine));
    }

    #[test]
    fn numeric_strings() {
        assert_eq!(numeric_text(" 12.5 "), Some(12.5));
        assert_eq!(numeric_text("-3e2"), Some(-300.0));
        assert_eq!(numeric_text("inf"), None);
        assert_eq!(numeric_text("NaN"), None);
        assert_eq!(numeric_text("1e999"), None);
        assert_eq!(numeric_text("e"), None);
        assert_eq!(numeric_text("12px"), None);
        assert_eq!(numeric_text(""), None);
    }
}
