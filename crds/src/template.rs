//! `${...}` templates in manifest strings: parsed once at load time, rendered per request.
//!
//! A template is literal text with references: `${user_id}` (a VU variable), `${env.HOST}`,
//! `${data.users.username}`, `${setup.token}`, builtins such as `${vu}` and `${iter}`, and
//! calls such as `${random(1, 10)}` or `${uuid()}`. `$${` renders a literal `${`, so manifests
//! can be passed through Helm and other tools that treat `{{ }}` or `${ }` specially.
//!
//! A literal `$` directly followed by a reference cannot be written (`$${x}` is the escape);
//! put the `$` in the variable's value instead.
//!
//! Calls are parsed and checked here but evaluated by the [`Resolve`] a template renders with:
//! this crate has no clock or random source (the runner's engine evaluates them).

use std::borrow::Cow;
use std::fmt::{self, Write as _};

use thiserror::Error;

use crate::suggest::did_you_mean;

/// Names of the builtin references (`${vu}`, `${iter}`, ...). A capture may not use them.
pub const BUILTINS: &[&str] = &["vu", "iter", "iterationInTest", "scenario", "runner"];

/// Names of the template functions (`${random(1, 10)}`, `${uuid()}`, ...). `${uuid}` without
/// parentheses is a parse error, so a capture with one of these names could never be read.
pub const FUNCTIONS: &[&str] = &["random", "randomString", "uuid", "now", "timestamp", "pick"];

/// The namespaces before a dot (`${env.NAME}`, `${data.TABLE.COLUMN}`, `${setup.NAME}`).
pub const NAMESPACES: &[&str] = &["env", "data", "setup"];

/// The longest string `${randomString(n)}` may produce.
pub const MAX_RANDOM_STRING_LENGTH: usize = 4096;

/// A parsed template: literal text and references, in order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Template {
    /// The parts of the template. Adjacent literal text is merged into one segment, and a
    /// template parsed from `""` has no segments.
    pub segments: Vec<Segment>,
}

/// One part of a [`Template`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Segment {
    /// Text copied as is (escapes already applied: `$${` is stored as `${`).
    Literal(String),
    /// A `${...}` reference, replaced by its value when rendering.
    Ref(Reference),
}

/// What a `${...}` refers to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Reference {
    /// `${name}`: a VU variable captured by an earlier step.
    Var(String),
    /// `${env.NAME}`: an environment variable from `spec.env`.
    Env(String),
    /// `${data.TABLE.COLUMN}`: a column of the current row of a data table.
    Data {
        /// The data table (a key of `spec.data`).
        table: String,
        /// The column of that table.
        column: String,
    },
    /// `${setup.NAME}`: a value captured by the test's setup steps.
    Setup(String),
    /// `${vu}`, `${iter}`, ...: a value the runner knows.
    Builtin(Builtin),
    /// `${random(1, 10)}`, `${uuid()}`, ...: a function call, evaluated on every render.
    Call(Call),
}

/// The builtin references.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Builtin {
    /// `${vu}`: the VU number, 1-based.
    Vu,
    /// `${iter}`: this VU's iteration, 0-based.
    Iter,
    /// `${iterationInTest}`: the iteration number across the whole test, 0-based.
    IterationInTest,
    /// `${scenario}`: the scenario name.
    Scenario,
    /// `${runner}`: the runner index.
    Runner,
}

impl Builtin {
    /// Every builtin, in the order of [`BUILTINS`].
    pub const ALL: [Builtin; 5] = [
        Builtin::Vu,
        Builtin::Iter,
        Builtin::IterationInTest,
        Builtin::Scenario,
        Builtin::Runner,
    ];

    /// The name written in templates, e.g. `iterationInTest`.
    pub fn name(self) -> &'static str {
        match self {
            Builtin::Vu => "vu",
            Builtin::Iter => "iter",
            Builtin::IterationInTest => "iterationInTest",
            Builtin::Scenario => "scenario",
            Builtin::Runner => "runner",
        }
    }

    /// The builtin with this exact name, if any.
    pub fn from_name(name: &str) -> Option<Builtin> {
        Builtin::ALL
            .into_iter()
            .find(|builtin| builtin.name() == name)
    }
}

/// A template function call; arguments were checked when the template was parsed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Call {
    /// `random(min, max)`: a uniformly random integer in `min..=max` (`min <= max`).
    Random {
        /// Smallest value.
        min: i64,
        /// Largest value.
        max: i64,
    },
    /// `randomString(n)`: `n` random ASCII letters and digits (`1..=4096`).
    RandomString(usize),
    /// `uuid()`: a random version 4 UUID.
    Uuid,
    /// `now()`: milliseconds since the Unix epoch.
    Now,
    /// `timestamp()`: the current time in RFC 3339, UTC, with milliseconds.
    Timestamp,
    /// `pick(a, b, ...)`: one of the arguments, uniformly (numbers kept as written).
    Pick(Vec<String>),
}

impl Call {
    /// The function name as written in templates.
    pub fn name(&self) -> &'static str {
        match self {
            Call::Random { .. } => "random",
            Call::RandomString(_) => "randomString",
            Call::Uuid => "uuid",
            Call::Now => "now",
            Call::Timestamp => "timestamp",
            Call::Pick(_) => "pick",
        }
    }
}

/// Why a template did not parse. Columns are 1-based and count characters.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TemplateError {
    /// A `${` has no closing `}`.
    #[error(
        "unterminated \"${{\" at column {column} (close it with \"}}\" or write \"$${{\" for a literal \"${{\")"
    )]
    Unterminated {
        /// Column of the `$`.
        column: usize,
    },
    /// A quoted argument has no closing quote.
    #[error("unterminated string at column {column} (close it with {quote})")]
    UnterminatedString {
        /// Column of the opening quote.
        column: usize,
        /// The quote character that opened it.
        quote: char,
    },
    /// `${}` with nothing inside.
    #[error(
        "empty reference \"${{}}\" at column {column} (put a name inside, e.g. ${{user_id}}, or write \"$${{\" for a literal \"${{\")"
    )]
    Empty {
        /// Column of the `$`.
        column: usize,
    },
    /// `${foo.bar}` where `foo` is not `env`, `data` or `setup`.
    #[error("unknown namespace \"{namespace}\" at column {column} ({fix})")]
    UnknownNamespace {
        /// The name before the dot.
        namespace: String,
        /// Column of that name.
        column: usize,
        /// How to fix it.
        fix: String,
    },
    /// `${foo(...)}` where `foo` is not a template function.
    #[error("unknown function \"{name}\" at column {column} ({fix})")]
    UnknownFunction {
        /// The name before the parenthesis.
        name: String,
        /// Column of that name.
        column: usize,
        /// How to fix it.
        fix: String,
    },
    /// A known function with the wrong number or kind of arguments.
    #[error("invalid arguments to {function}() at column {column}: {problem} ({fix})")]
    BadArguments {
        /// The function name.
        function: &'static str,
        /// Column of the offending argument, or of the function name.
        column: usize,
        /// What is wrong.
        problem: String,
        /// How to fix it.
        fix: String,
    },
    /// Any other malformed reference (bad name, missing part, unexpected character).
    #[error("{problem} at column {column} ({fix})")]
    Syntax {
        /// Column of the offending character or token.
        column: usize,
        /// What is wrong.
        problem: String,
        /// How to fix it.
        fix: String,
    },
}

impl TemplateError {
    /// The 1-based character column the error points at.
    pub fn column(&self) -> usize {
        match self {
            TemplateError::Unterminated { column }
            | TemplateError::UnterminatedString { column, .. }
            | TemplateError::Empty { column }
            | TemplateError::UnknownNamespace { column, .. }
            | TemplateError::UnknownFunction { column, .. }
            | TemplateError::BadArguments { column, .. }
            | TemplateError::Syntax { column, .. } => *column,
        }
    }

    /// The same error with its column moved right by `by` characters, for a template that
    /// was cut out of a longer text (e.g. a string literal inside an expression).
    pub fn shift_columns(mut self, by: usize) -> TemplateError {
        match &mut self {
            TemplateError::Unterminated { column }
            | TemplateError::UnterminatedString { column, .. }
            | TemplateError::Empty { column }
            | TemplateError::UnknownNamespace { column, .. }
            | TemplateError::UnknownFunction { column, .. }
            | TemplateError::BadArguments { column, .. }
            | TemplateError::Syntax { column, .. } => *column += by,
        }
        self
    }
}

/// Why a template did not render.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RenderError {
    /// The resolver had no value for a reference.
    #[error("no value for {reference} ({})", reference.missing_value_fix())]
    Unresolved {
        /// The reference without a value.
        reference: Reference,
    },
}

/// Supplies the values of references when a template renders.
pub trait Resolve {
    /// The value of `reference`, or `None` when it has none (rendering then fails with
    /// [`RenderError::Unresolved`]). Called for every reference, function calls included:
    /// this crate has no clock or random source, so the resolver evaluates [`Call`]s (the
    /// runner's does, with the VU's random source and the system clock).
    fn resolve(&mut self, reference: &Reference) -> Option<Cow<'_, str>>;
}

impl<R: Resolve + ?Sized> Resolve for &mut R {
    fn resolve(&mut self, reference: &Reference) -> Option<Cow<'_, str>> {
        (**self).resolve(reference)
    }
}

impl Template {
    /// A template that renders to `text` as is (no `${` is interpreted), e.g. a header value
    /// the runner adds itself.
    pub fn literal(text: impl Into<String>) -> Template {
        let text = text.into();
        if text.is_empty() {
            return Template::default();
        }
        Template {
            segments: vec![Segment::Literal(text)],
        }
    }

    /// Every reference of the template, in order (repeats included).
    pub fn references(&self) -> impl Iterator<Item = &Reference> {
        self.segments.iter().filter_map(|segment| match segment {
            Segment::Ref(reference) => Some(reference),
            Segment::Literal(_) => None,
        })
    }

    /// Whether the template has no references, so it always renders to the same text.
    pub fn is_literal(&self) -> bool {
        self.references().next().is_none()
    }

    /// The text of a template without references (escapes applied), else `None`. Lets
    /// callers skip rendering for the common case of a plain string.
    pub fn as_literal(&self) -> Option<&str> {
        match self.segments.as_slice() {
            [] => Some(""),
            [Segment::Literal(text)] => Some(text),
            _ => None,
        }
    }

    /// Renders with values supplied by the caller; a reference the resolver cannot resolve
    /// is an error naming it.
    pub fn render(&self, resolver: &mut impl Resolve) -> Result<String, RenderError> {
        let mut output = String::with_capacity(self.estimated_length());
        self.render_into(resolver, &mut output)?;
        Ok(output)
    }

    /// Like [`Template::render`], appending to `output` so a caller can reuse one buffer.
    /// On error `output` holds the text rendered before the failing reference.
    pub fn render_into(
        &self,
        resolver: &mut impl Resolve,
        output: &mut String,
    ) -> Result<(), RenderError> {
        for segment in &self.segments {
            match segment {
                Segment::Literal(text) => output.push_str(text),
                Segment::Ref(reference) => match resolver.resolve(reference) {
                    Some(value) => output.push_str(&value),
                    None => {
                        return Err(RenderError::Unresolved {
                            reference: reference.clone(),
                        });
                    }
                },
            }
        }
        Ok(())
    }

    /// A capacity guess for the rendered text: the literal text plus a typical value length
    /// per reference, so most renders allocate once.
    fn estimated_length(&self) -> usize {
        const TYPICAL_VALUE_LENGTH: usize = 16;
        self.segments
            .iter()
            .map(|segment| match segment {
                Segment::Literal(text) => text.len(),
                Segment::Ref(_) => TYPICAL_VALUE_LENGTH,
            })
            .sum()
    }
}

/// Writes the template back in source form (`${` in literal text as `$${`); parsing the
/// output gives an equal template.
impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for segment in &self.segments {
            match segment {
                Segment::Literal(text) => f.write_str(&text.replace("${", "$${"))?,
                Segment::Ref(reference) => write!(f, "{reference}")?,
            }
        }
        Ok(())
    }
}

/// Writes the reference as written in a template, e.g. `${data.users.username}`.
impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Var(name) => write!(f, "${{{name}}}"),
            Reference::Env(name) => write!(f, "${{env.{name}}}"),
            Reference::Data { table, column } => write!(f, "${{data.{table}.{column}}}"),
            Reference::Setup(name) => write!(f, "${{setup.{name}}}"),
            Reference::Builtin(builtin) => write!(f, "${{{}}}", builtin.name()),
            Reference::Call(call) => write!(f, "${{{call}}}"),
        }
    }
}

/// Writes the call as written inside `${ }`, e.g. `random(1, 10)` or `pick("a", 2)`.
impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Call::Random { min, max } => write!(f, "random({min}, {max})"),
            Call::RandomString(length) => write!(f, "randomString({length})"),
            Call::Uuid | Call::Now | Call::Timestamp => write!(f, "{}()", self.name()),
            Call::Pick(choices) => {
                f.write_str("pick(")?;
                for (index, choice) in choices.iter().enumerate() {
                    if index > 0 {
                        f.write_str(", ")?;
                    }
                    if is_number_literal(choice) {
                        f.write_str(choice)?;
                    } else {
                        f.write_char('"')?;
                        for c in choice.chars() {
                            if c == '"' || c == '\\' {
                                f.write_char('\\')?;
                            }
                            f.write_char(c)?;
                        }
                        f.write_char('"')?;
                    }
                }
                f.write_str(")")
            }
        }
    }
}

impl Reference {
    /// How to give this reference a value, for "no value" errors.
    fn missing_value_fix(&self) -> String {
        match self {
            Reference::Var(name) => format!(
                "capture \"{name}\" in an earlier step, or make that capture optional with a default"
            ),
            Reference::Env(name) => format!("set {name} in spec.env"),
            Reference::Data { table, column } => {
                format!("add a \"{column}\" column to data table \"{table}\" in spec.data")
            }
            Reference::Setup(name) => format!("capture \"{name}\" in a spec.setup step"),
            Reference::Builtin(_) => {
                "builtins are supplied by the runner; this is a Stampede bug, please report it"
                    .to_string()
            }
            Reference::Call(_) => {
                "function calls are evaluated by the runner; this is a Stampede bug, please report it"
                    .to_string()
            }
        }
    }
}

/// Parses a template string.
pub fn parse(text: &str) -> Result<Template, TemplateError> {
    let mut segments = Vec::new();
    let mut literal = String::new();
    let mut position = 0;
    while let Some(offset) = text[position..].find('$') {
        let dollar = position + offset;
        let rest = &text[dollar..];
        if rest.starts_with("$${") {
            literal.push_str(&text[position..dollar]);
            literal.push_str("${");
            position = dollar + 3;
        } else if rest.starts_with("${") {
            literal.push_str(&text[position..dollar]);
            if !literal.is_empty() {
                segments.push(Segment::Literal(std::mem::take(&mut literal)));
            }
            let (reference, end) = parse_reference(text, dollar)?;
            segments.push(Segment::Ref(reference));
            position = end;
        } else {
            literal.push_str(&text[position..=dollar]);
            position = dollar + 1;
        }
    }
    literal.push_str(&text[position..]);
    if !literal.is_empty() {
        segments.push(Segment::Literal(literal));
    }
    Ok(Template { segments })
}

/// Every template reference in a JSON value's string leaves (object keys too); errors carry
/// the JSON pointer (RFC 6901) of the bad leaf or key.
pub fn references_in_json(
    value: &serde_json::Value,
) -> Result<Vec<Reference>, (String, TemplateError)> {
    let mut references = Vec::new();
    let mut pointer = String::new();
    collect_json_references(value, &mut pointer, &mut references)?;
    Ok(references)
}

fn collect_json_references(
    value: &serde_json::Value,
    pointer: &mut String,
    references: &mut Vec<Reference>,
) -> Result<(), (String, TemplateError)> {
    match value {
        serde_json::Value::String(text) => {
            let template = parse(text).map_err(|error| (pointer.clone(), error))?;
            references.extend(template.references().cloned());
        }
        serde_json::Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                let parent_length = pointer.len();
                let _ = write!(pointer, "/{index}");
                collect_json_references(item, pointer, references)?;
                pointer.truncate(parent_length);
            }
        }
        serde_json::Value::Object(members) => {
            for (key, member) in members {
                let parent_length = pointer.len();
                pointer.push('/');
                pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
                let key_template = parse(key).map_err(|error| (pointer.clone(), error))?;
                references.extend(key_template.references().cloned());
                collect_json_references(member, pointer, references)?;
                pointer.truncate(parent_length);
            }
        }
        serde_json::Value::Null | serde_json::Value::Bool(_) | serde_json::Value::Number(_) => {}
    }
    Ok(())
}

/// Whether `name` is a valid VU variable, env or setup name: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Whether `name` is a valid data table or column name: `[A-Za-z_][A-Za-z0-9_-]*`.
pub fn is_valid_data_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Whether a capture may not use `name` because `${name}` would not read a variable: a
/// builtin, a function or a namespace.
pub fn is_reserved(name: &str) -> bool {
    BUILTINS.contains(&name) || FUNCTIONS.contains(&name) || NAMESPACES.contains(&name)
}

/// Parses the one reference starting at byte `start` of `text` (which must be at `${`),
/// returning it and the byte offset just after its `}`. Columns in errors count from the
/// start of `text`, so callers embedding references in a longer syntax (expressions) report
/// positions in their own text.
pub fn parse_reference(text: &str, start: usize) -> Result<(Reference, usize), TemplateError> {
    if !text.get(start..).is_some_and(|rest| rest.starts_with("${")) {
        return Err(TemplateError::Syntax {
            column: column_at(text, start),
            problem: "expected \"${\"".to_string(),
            fix: "start a reference with \"${\"".to_string(),
        });
    }
    let body_start = start + 2;
    let body_end = find_reference_end(text, start)?;
    let tokens = lex_reference(text, body_start, body_end)?;
    let reference = ReferenceParser {
        text,
        tokens: &tokens,
        next: 0,
        dollar: start,
        close: body_end,
    }
    .parse()?;
    Ok((reference, body_end + 1))
}

/// The byte offset of the `}` closing the reference at `start`, skipping quoted arguments.
fn find_reference_end(text: &str, start: usize) -> Result<usize, TemplateError> {
    let body_start = start + 2;
    let mut chars = text[body_start..].char_indices();
    while let Some((offset, c)) = chars.next() {
        match c {
            '}' => return Ok(body_start + offset),
            '\'' | '"' => {
                let mut closed = false;
                while let Some((_, inner)) = chars.next() {
                    if inner == '\\' {
                        chars.next();
                    } else if inner == c {
                        closed = true;
                        break;
                    }
                }
                if !closed {
                    return Err(TemplateError::UnterminatedString {
                        column: column_at(text, body_start + offset),
                        quote: c,
                    });
                }
            }
            _ => {}
        }
    }
    Err(TemplateError::Unterminated {
        column: column_at(text, start),
    })
}

/// A token inside `${ }`, with the byte offset where it starts.
#[derive(Debug)]
struct Token<'a> {
    kind: TokenKind<'a>,
    start: usize,
}

#[derive(Debug)]
enum TokenKind<'a> {
    /// `[A-Za-z_][A-Za-z0-9_-]*`; whether `-` is allowed depends on where the name is used.
    Name(&'a str),
    /// `-?[0-9]+(\.[0-9]+)?`, kept as written.
    Number(&'a str),
    /// A quoted string, escapes applied.
    Text(String),
    Dot,
    Comma,
    OpenParen,
    CloseParen,
}

impl TokenKind<'_> {
    fn describe(&self) -> String {
        match self {
            TokenKind::Name(name) => format!("\"{name}\""),
            TokenKind::Number(number) => number.to_string(),
            TokenKind::Text(_) => "a string".to_string(),
            TokenKind::Dot => "\".\"".to_string(),
            TokenKind::Comma => "\",\"".to_string(),
            TokenKind::OpenParen => "\"(\"".to_string(),
            TokenKind::CloseParen => "\")\"".to_string(),
        }
    }
}

const REFERENCE_FORMS: &str = "a reference is a name like ${user_id}, env.NAME, data.TABLE.COLUMN, setup.NAME, a builtin like ${vu}, or a call like ${random(1, 10)}";

fn lex_reference(text: &str, start: usize, end: usize) -> Result<Vec<Token<'_>>, TemplateError> {
    let body = &text[start..end];
    let mut tokens = Vec::new();
    let mut chars = body.char_indices().peekable();
    while let Some(&(offset, c)) = chars.peek() {
        let token_start = start + offset;
        let simple = match c {
            '.' => Some(TokenKind::Dot),
            ',' => Some(TokenKind::Comma),
            '(' => Some(TokenKind::OpenParen),
            ')' => Some(TokenKind::CloseParen),
            _ => None,
        };
        if let Some(kind) = simple {
            chars.next();
            tokens.push(Token {
                kind,
                start: token_start,
            });
        } else if c.is_whitespace() {
            chars.next();
        } else if c.is_ascii_alphabetic() || c == '_' {
            let run_end = run_end(body, offset, |c| {
                c.is_ascii_alphanumeric() || c == '_' || c == '-'
            });
            tokens.push(Token {
                kind: TokenKind::Name(&body[offset..run_end]),
                start: token_start,
            });
            skip_to(&mut chars, run_end);
        } else if c.is_ascii_digit() || (c == '-' && next_is_digit(body, offset)) {
            let run_end = run_end(body, offset + 1, |c| {
                c.is_ascii_alphanumeric() || c == '_' || c == '.'
            });
            let number = &body[offset..run_end];
            if !is_number_literal(number) {
                return Err(TemplateError::Syntax {
                    column: column_at(text, token_start),
                    problem: format!("\"{number}\" is not a number"),
                    fix: "write an integer like 10 or a decimal like 2.5; names cannot start with a digit".to_string(),
                });
            }
            tokens.push(Token {
                kind: TokenKind::Number(number),
                start: token_start,
            });
            skip_to(&mut chars, run_end);
        } else if c == '\'' || c == '"' {
            chars.next();
            let mut value = String::new();
            while let Some((_, inner)) = chars.next() {
                if inner == '\\' {
                    if let Some((_, escaped)) = chars.next() {
                        value.push(escaped);
                    }
                } else if inner == c {
                    break;
                } else {
                    value.push(inner);
                }
            }
            tokens.push(Token {
                kind: TokenKind::Text(value),
                start: token_start,
            });
        } else {
            let fix = if c == '$' {
                "references cannot be nested; capture the combined value in a step instead"
                    .to_string()
            } else {
                format!("{REFERENCE_FORMS}; write \"$${{\" for a literal \"${{\"")
            };
            return Err(TemplateError::Syntax {
                column: column_at(text, token_start),
                problem: format!("unexpected \"{c}\" in a \"${{...}}\" reference"),
                fix,
            });
        }
    }
    Ok(tokens)
}

/// The byte offset where the run of characters matching `accept` from `from` ends.
fn run_end(body: &str, from: usize, accept: impl Fn(char) -> bool) -> usize {
    body[from..]
        .char_indices()
        .find(|&(_, c)| !accept(c))
        .map_or(body.len(), |(offset, _)| from + offset)
}

fn skip_to(chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>, end: usize) {
    while chars.next_if(|&(offset, _)| offset < end).is_some() {}
}

fn next_is_digit(body: &str, offset: usize) -> bool {
    body[offset + 1..]
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_digit())
}

/// Whether `text` is `-?[0-9]+(\.[0-9]+)?`.
fn is_number_literal(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let (whole, fraction) = match digits.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (digits, None),
    };
    let all_digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    all_digits(whole) && fraction.is_none_or(all_digits)
}

/// The 1-based character column of byte offset `offset` in `text`.
pub(crate) fn column_at(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .map_or(offset, |before| before.chars().count())
        + 1
}

struct ReferenceParser<'t, 'a> {
    text: &'a str,
    tokens: &'t [Token<'a>],
    next: usize,
    /// Byte offset of the `$` of `${`.
    dollar: usize,
    /// Byte offset of the closing `}`.
    close: usize,
}

impl<'a> ReferenceParser<'_, 'a> {
    fn parse(mut self) -> Result<Reference, TemplateError> {
        let Some(first) = self.tokens.first() else {
            return Err(TemplateError::Empty {
                column: column_at(self.text, self.dollar),
            });
        };
        self.next = 1;
        let TokenKind::Name(name) = first.kind else {
            return Err(self.syntax(
                first.start,
                format!("expected a name but found {}", first.kind.describe()),
                REFERENCE_FORMS.to_string(),
            ));
        };
        let reference = match self.tokens.get(1).map(|token| &token.kind) {
            Some(TokenKind::OpenParen) => Reference::Call(self.parse_call(name, first.start)?),
            Some(TokenKind::Dot) => self.parse_namespaced(name, first.start)?,
            _ => self.parse_bare_name(name, first.start)?,
        };
        if let Some(extra) = self.tokens.get(self.next) {
            return Err(self.syntax(
                extra.start,
                format!(
                    "unexpected {} after {}",
                    extra.kind.describe(),
                    reference_inside(&reference)
                ),
                format!("end the reference with \"}}\"; {REFERENCE_FORMS}"),
            ));
        }
        Ok(reference)
    }

    fn parse_bare_name(&self, name: &'a str, start: usize) -> Result<Reference, TemplateError> {
        if let Some(builtin) = Builtin::from_name(name) {
            return Ok(Reference::Builtin(builtin));
        }
        if let Some(function) = FUNCTIONS.iter().find(|function| **function == name) {
            let example = match *function {
                "random" => "${random(1, 100)}",
                "randomString" => "${randomString(16)}",
                "pick" => "${pick(\"a\", \"b\")}",
                "uuid" => "${uuid()}",
                "now" => "${now()}",
                _ => "${timestamp()}",
            };
            return Err(self.syntax(
                start,
                format!("\"{name}\" is a function"),
                format!("call it with parentheses: {example}"),
            ));
        }
        if NAMESPACES.contains(&name) {
            return Err(self.syntax(
                start,
                format!("\"${{{name}}}\" names no value"),
                format!("write {}", namespace_usage(name)),
            ));
        }
        if !is_valid_name(name) {
            return Err(self.syntax(
                start,
                format!("\"{name}\" is not a valid variable name"),
                "variable names use letters, digits and _ (no -), starting with a letter or _"
                    .to_string(),
            ));
        }
        Ok(Reference::Var(name.to_string()))
    }

    fn parse_namespaced(
        &mut self,
        namespace: &'a str,
        start: usize,
    ) -> Result<Reference, TemplateError> {
        match namespace {
            "env" | "setup" => {
                let (name, name_start) = self.expect_field(namespace, "NAME", 1)?;
                if !is_valid_name(name) {
                    return Err(self.syntax(
                        name_start,
                        format!("\"{name}\" is not a valid {namespace} name"),
                        "names use letters, digits and _ (no -), starting with a letter or _"
                            .to_string(),
                    ));
                }
                Ok(if namespace == "env" {
                    Reference::Env(name.to_string())
                } else {
                    Reference::Setup(name.to_string())
                })
            }
            "data" => {
                let (table, _) = self.expect_field(namespace, "TABLE", 1)?;
                let (column, _) = self.expect_field(namespace, "COLUMN", 3)?;
                Ok(Reference::Data {
                    table: table.to_string(),
                    column: column.to_string(),
                })
            }
            _ => {
                let fix = if let Some(builtin) = Builtin::from_name(namespace) {
                    format!(
                        "${{{}}} has no fields; write ${{{}}}",
                        builtin.name(),
                        builtin.name()
                    )
                } else if let Some(suggestion) = did_you_mean(namespace, NAMESPACES.iter().copied())
                {
                    format!(
                        "did you mean \"{suggestion}\"? write {}",
                        namespace_usage(suggestion)
                    )
                } else {
                    format!(
                        "namespaces are env.NAME, data.TABLE.COLUMN and setup.NAME; variables have no fields, write ${{{namespace}}} for variable \"{namespace}\""
                    )
                };
                Err(TemplateError::UnknownNamespace {
                    namespace: namespace.to_string(),
                    column: column_at(self.text, start),
                    fix,
                })
            }
        }
    }

    /// Expects `.` then a name at token `dot_index`, for the `placeholder` part of `namespace`.
    fn expect_field(
        &mut self,
        namespace: &str,
        placeholder: &str,
        dot_index: usize,
    ) -> Result<(&'a str, usize), TemplateError> {
        let usage = namespace_usage(namespace);
        let missing_field = |parser: &Self, at: usize| {
            parser.syntax(
                at,
                format!("{} needs a {placeholder}", reference_source(parser)),
                format!("write {usage}"),
            )
        };
        match self.tokens.get(dot_index).map(|token| &token.kind) {
            Some(TokenKind::Dot) => {}
            Some(_) | None => return Err(missing_field(self, self.token_start(dot_index))),
        }
        match self.tokens.get(dot_index + 1) {
            Some(Token {
                kind: TokenKind::Name(name),
                start,
            }) => {
                if !is_valid_data_name(name) {
                    return Err(self.syntax(
                        *start,
                        format!("\"{name}\" is not a valid name"),
                        "names use letters, digits, _ and -, starting with a letter or _"
                            .to_string(),
                    ));
                }
                self.next = dot_index + 2;
                Ok((name, *start))
            }
            Some(other) => Err(self.syntax(
                other.start,
                format!(
                    "expected a {placeholder} name after \".\" but found {}",
                    other.kind.describe()
                ),
                format!("write {usage}; names start with a letter or _"),
            )),
            None => Err(missing_field(self, self.token_start(dot_index + 1))),
        }
    }

    fn parse_call(&mut self, name: &'a str, start: usize) -> Result<Call, TemplateError> {
        let Some(function) = FUNCTIONS.iter().copied().find(|function| *function == name) else {
            let fix = if let Some(builtin) = Builtin::from_name(name) {
                format!(
                    "{name} is a builtin, not a function: write ${{{}}}",
                    builtin.name()
                )
            } else if let Some(suggestion) = did_you_mean(name, FUNCTIONS.iter().copied()) {
                format!("did you mean \"{suggestion}\"?")
            } else {
                format!("the functions are {}", FUNCTIONS.join(", "))
            };
            return Err(TemplateError::UnknownFunction {
                name: name.to_string(),
                column: column_at(self.text, start),
                fix,
            });
        };
        let arguments = self.parse_arguments(function)?;
        let arity_error = |expected: &str, example: &str| TemplateError::BadArguments {
            function,
            column: column_at(self.text, start),
            problem: format!("takes {expected}, found {}", arguments.len()),
            fix: format!("write e.g. {example}"),
        };
        match function {
            "random" => {
                let [min, max] = arguments.as_slice() else {
                    return Err(arity_error(
                        "2 arguments (min and max)",
                        "${random(1, 100)}",
                    ));
                };
                let min = self.integer_argument(function, min, "${random(1, 100)}")?;
                let max_value = self.integer_argument(function, max, "${random(1, 100)}")?;
                if min > max_value {
                    return Err(TemplateError::BadArguments {
                        function,
                        column: column_at(self.text, max.start),
                        problem: format!("min {min} is greater than max {max_value}"),
                        fix: format!("swap them: ${{random({max_value}, {min})}}"),
                    });
                }
                Ok(Call::Random {
                    min,
                    max: max_value,
                })
            }
            "randomString" => {
                let [length] = arguments.as_slice() else {
                    return Err(arity_error(
                        "1 argument (the length)",
                        "${randomString(16)}",
                    ));
                };
                let value = self.integer_argument(function, length, "${randomString(16)}")?;
                match usize::try_from(value) {
                    Ok(n) if (1..=MAX_RANDOM_STRING_LENGTH).contains(&n) => {
                        Ok(Call::RandomString(n))
                    }
                    _ => Err(TemplateError::BadArguments {
                        function,
                        column: column_at(self.text, length.start),
                        problem: format!("length {value} is out of range"),
                        fix: format!("use a length from 1 to {MAX_RANDOM_STRING_LENGTH}"),
                    }),
                }
            }
            "pick" => {
                if arguments.is_empty() {
                    return Err(arity_error(
                        "at least 1 argument",
                        "${pick(\"red\", \"green\", \"blue\")}",
                    ));
                }
                Ok(Call::Pick(
                    arguments
                        .into_iter()
                        .map(|argument| argument.value)
                        .collect(),
                ))
            }
            _ => {
                if !arguments.is_empty() {
                    return Err(arity_error("no arguments", &format!("${{{function}()}}")));
                }
                Ok(match function {
                    "uuid" => Call::Uuid,
                    "now" => Call::Now,
                    _ => Call::Timestamp,
                })
            }
        }
    }

    /// Parses `( literal (, literal)* )` starting at the `(` (token `next` + 1).
    fn parse_arguments(&mut self, function: &'static str) -> Result<Vec<Argument>, TemplateError> {
        self.next = 2;
        let mut arguments = Vec::new();
        let usage = "arguments are integers, decimals or quoted strings, separated by commas";
        loop {
            let Some(token) = self.tokens.get(self.next) else {
                return Err(self.syntax(
                    self.close,
                    format!("{function}( is not closed"),
                    format!("close the argument list with \")\" before \"}}\"; {usage}"),
                ));
            };
            self.next += 1;
            if matches!(token.kind, TokenKind::CloseParen) && arguments.is_empty() {
                return Ok(arguments);
            }
            let (value, is_integer) = match &token.kind {
                TokenKind::Number(number) => (number.to_string(), !number.contains('.')),
                TokenKind::Text(text) => (text.clone(), false),
                other => {
                    return Err(TemplateError::BadArguments {
                        function,
                        column: column_at(self.text, token.start),
                        problem: format!("expected an argument but found {}", other.describe()),
                        fix: format!("{usage}; quote text like \"abc\""),
                    });
                }
            };
            arguments.push(Argument {
                value,
                is_integer,
                start: token.start,
            });
            match self.tokens.get(self.next) {
                Some(Token {
                    kind: TokenKind::Comma,
                    ..
                }) => self.next += 1,
                Some(Token {
                    kind: TokenKind::CloseParen,
                    ..
                }) => {
                    self.next += 1;
                    return Ok(arguments);
                }
                Some(other) => {
                    return Err(self.syntax(
                        other.start,
                        format!(
                            "expected \",\" or \")\" but found {}",
                            other.kind.describe()
                        ),
                        usage.to_string(),
                    ));
                }
                None => {
                    return Err(self.syntax(
                        self.close,
                        format!("{function}( is not closed"),
                        "close the argument list with \")\" before \"}\"".to_string(),
                    ));
                }
            }
        }
    }

    fn integer_argument(
        &self,
        function: &'static str,
        argument: &Argument,
        example: &str,
    ) -> Result<i64, TemplateError> {
        let problem = if argument.is_integer {
            match argument.value.parse::<i64>() {
                Ok(value) => return Ok(value),
                Err(_) => format!("{} is too large", argument.value),
            }
        } else {
            format!("{:?} is not an integer", argument.value)
        };
        Err(TemplateError::BadArguments {
            function,
            column: column_at(self.text, argument.start),
            problem,
            fix: format!("write an unquoted integer literal, e.g. {example}"),
        })
    }

    fn token_start(&self, index: usize) -> usize {
        self.tokens
            .get(index)
            .map_or(self.close, |token| token.start)
    }

    fn syntax(&self, at: usize, problem: String, fix: String) -> TemplateError {
        TemplateError::Syntax {
            column: column_at(self.text, at),
            problem,
            fix,
        }
    }
}

/// A function argument as written, before its type is checked.
struct Argument {
    value: String,
    is_integer: bool,
    start: usize,
}

fn namespace_usage(namespace: &str) -> &'static str {
    match namespace {
        "env" => "${env.NAME}",
        "data" => "${data.TABLE.COLUMN}",
        _ => "${setup.NAME}",
    }
}

/// The source of the reference being parsed, e.g. `${data.users}`, for messages.
fn reference_source(parser: &ReferenceParser<'_, '_>) -> String {
    let body = parser
        .text
        .get(parser.dollar + 2..parser.close)
        .unwrap_or_default()
        .trim();
    format!("\"${{{body}}}\"")
}

/// How to name a parsed reference in messages, e.g. `"${env.HOST}"`.
fn reference_inside(reference: &Reference) -> String {
    format!("\"{reference}\"")
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// A resolver over a fixed map, keyed by the reference's source form.
    struct MapResolver(HashMap<String, String>);

    impl MapResolver {
        fn new(pairs: &[(&str, &str)]) -> MapResolver {
            MapResolver(
                pairs
                    .iter()
                    .map(|(key, value)| (key.to_string(), value.to_string()))
                    .collect(),
            )
        }
    }

    impl Resolve for MapResolver {
        fn resolve(&mut self, reference: &Reference) -> Option<Cow<'_, str>> {
            self.0
                .get(&reference.to_string())
                .map(|value| Cow::Borrowed(value.as_str()))
        }
    }

    fn single_reference(text: &str) -> Reference {
        let template = parse(text).unwrap_or_else(|error| panic!("{text}: {error}"));
        match template.segments.as_slice() {
            [Segment::Ref(reference)] => reference.clone(),
            other => panic!("{text}: expected one reference, got {other:?}"),
        }
    }

    fn parse_error(text: &str) -> TemplateError {
        match parse(text) {
            Ok(template) => panic!("{text}: expected an error, parsed {template:?}"),
            Err(error) => error,
        }
    }

    #[test]
    fn parses_every_reference_kind() {
        assert_eq!(
            single_reference("${user_id}"),
            Reference::Var("user_id".into())
        );
        assert_eq!(
            single_reference("${env.HOST}"),
            Reference::Env("HOST".into())
        );
        assert_eq!(
            single_reference("${data.users.user-name}"),
            Reference::Data {
                table: "users".into(),
                column: "user-name".into()
            }
        );
        assert_eq!(
            single_reference("${setup.token}"),
            Reference::Setup("token".into())
        );
        assert_eq!(
            single_reference("${iterationInTest}"),
            Reference::Builtin(Builtin::IterationInTest)
        );
        assert_eq!(
            single_reference("${random(-5, 5)}"),
            Reference::Call(Call::Random { min: -5, max: 5 })
        );
        assert_eq!(
            single_reference("${randomString(12)}"),
            Reference::Call(Call::RandomString(12))
        );
        assert_eq!(single_reference("${uuid()}"), Reference::Call(Call::Uuid));
        assert_eq!(single_reference("${now()}"), Reference::Call(Call::Now));
        assert_eq!(
            single_reference("${timestamp()}"),
            Reference::Call(Call::Timestamp)
        );
        assert_eq!(
            single_reference(r#"${pick('a}', "b\"c", 1, 2.50)}"#),
            Reference::Call(Call::Pick(vec![
                "a}".into(),
                "b\"c".into(),
                "1".into(),
                "2.50".into()
            ]))
        );
    }

    #[test]
    fn allows_whitespace_around_tokens() {
        assert_eq!(
            single_reference("${ data . users . name }"),
            Reference::Data {
                table: "users".into(),
                column: "name".into()
            }
        );
        assert_eq!(
            single_reference("${ random( 1 ,2 ) }"),
            Reference::Call(Call::Random { min: 1, max: 2 })
        );
    }

    #[test]
    fn splits_literals_and_references_and_applies_escapes() {
        let template = parse("/users/${id}?a=$${b}&c=$5$").unwrap();
        assert_eq!(
            template.segments,
            vec![
                Segment::Literal("/users/".into()),
                Segment::Ref(Reference::Var("id".into())),
                Segment::Literal("?a=${b}&c=$5$".into()),
            ]
        );
        assert!(!template.is_literal());
        assert_eq!(template.as_literal(), None);
        let literal = parse("price: $${total} {{ .Values.x }}").unwrap();
        assert!(literal.is_literal());
        assert_eq!(
            literal.as_literal(),
            Some("price: ${total} {{ .Values.x }}")
        );
        assert_eq!(parse("").unwrap().as_literal(), Some(""));
        // Only the last "$$" before "{" is the escape; the "$"s before it stay literal.
        assert_eq!(parse("$$$${x}").unwrap().as_literal(), Some("$$${x}"));
    }

    #[test]
    fn a_literal_template_interprets_nothing_and_equals_its_parsed_form() {
        let literal = Template::literal("${x}");
        assert_eq!(literal.as_literal(), Some("${x}"));
        assert_eq!(literal.to_string(), "$${x}");
        assert_eq!(
            Template::literal("application/json"),
            parse("application/json").unwrap()
        );
        assert_eq!(Template::literal(""), parse("").unwrap());
    }

    #[test]
    fn display_round_trips() {
        for text in [
            "a ${x} b $${y} ${env.HOST}${data.t.c-1}${setup.s}${vu}",
            "${random(-3, 9)}${randomString(4)}${uuid()}${now()}${timestamp()}",
            r#"${pick("a\"b", 'c\\d', 3, -4.5, "7x")}"#,
        ] {
            let template = parse(text).unwrap();
            let again = parse(&template.to_string()).unwrap();
            assert_eq!(template, again, "{text} -> {template}");
        }
        assert_eq!(
            single_reference("${ data.users.name }").to_string(),
            "${data.users.name}"
        );
    }

    #[test]
    fn references_lists_in_order() {
        let template = parse("${a}-${env.B}-${a}").unwrap();
        let references: Vec<String> = template.references().map(ToString::to_string).collect();
        assert_eq!(references, ["${a}", "${env.B}", "${a}"]);
    }

    #[test]
    fn unterminated_reference_points_at_the_dollar() {
        let error = parse_error("/users/${id");
        assert_eq!(error, TemplateError::Unterminated { column: 8 });
        assert_eq!(
            error.to_string(),
            "unterminated \"${\" at column 8 (close it with \"}\" or write \"$${\" for a literal \"${\")"
        );
        assert_eq!(
            parse_error("${pick('a)}"),
            TemplateError::UnterminatedString {
                column: 8,
                quote: '\''
            }
        );
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        assert_eq!(parse_error("héllo ${").column(), 7);
    }

    #[test]
    fn rejects_empty_and_incomplete_references() {
        assert_eq!(parse_error("x${ }"), TemplateError::Empty { column: 2 });
        let error = parse_error("${data.users}");
        assert!(matches!(error, TemplateError::Syntax { .. }), "{error:?}");
        assert!(error.to_string().contains("needs a COLUMN"), "{error}");
        assert!(
            error.to_string().contains("${data.TABLE.COLUMN}"),
            "{error}"
        );
        assert!(parse_error("${env}").to_string().contains("${env.NAME}"));
        assert!(parse_error("${env.}").to_string().contains("needs a NAME"));
        assert!(
            parse_error("${data.a.b.c}")
                .to_string()
                .contains("unexpected \".\"")
        );
    }

    #[test]
    fn rejects_unknown_namespaces_with_a_suggestion() {
        let error = parse_error("${foo.bar}");
        assert!(
            matches!(&error, TemplateError::UnknownNamespace { namespace, column: 3, .. } if namespace == "foo"),
            "{error:?}"
        );
        assert!(error.to_string().contains("${foo}"), "{error}");
        let error = parse_error("${evn.HOST}");
        assert!(
            error.to_string().contains("did you mean \"env\"?"),
            "{error}"
        );
        assert!(parse_error("${vu.x}").to_string().contains("has no fields"));
    }

    #[test]
    fn rejects_unknown_functions_with_a_suggestion() {
        let error = parse_error("${randomstring(3)}");
        assert!(
            matches!(&error, TemplateError::UnknownFunction { name, .. } if name == "randomstring"),
            "{error:?}"
        );
        assert!(
            error.to_string().contains("did you mean \"randomString\"?"),
            "{error}"
        );
        assert!(parse_error("${vu()}").to_string().contains("write ${vu}"));
        assert!(parse_error("${uuid}").to_string().contains("${uuid()}"));
    }

    #[test]
    fn checks_arity_and_argument_types() {
        let error = parse_error("${random(1)}");
        assert!(
            matches!(
                error,
                TemplateError::BadArguments {
                    function: "random",
                    ..
                }
            ),
            "{error:?}"
        );
        assert!(error.to_string().contains("takes 2 arguments"), "{error}");
        assert!(
            parse_error("${random(1.5, 3)}")
                .to_string()
                .contains("not an integer")
        );
        assert!(
            parse_error("${random('1', 3)}")
                .to_string()
                .contains("not an integer")
        );
        let error = parse_error("${random(9, 1)}");
        assert!(error.to_string().contains("random(1, 9)"), "{error}");
        assert_eq!(error.column(), 13);
        assert!(
            parse_error("${randomString(0)}")
                .to_string()
                .contains("out of range")
        );
        assert!(
            parse_error("${randomString(4097)}")
                .to_string()
                .contains("out of range")
        );
        assert!(parse_error("${pick()}").to_string().contains("at least 1"));
        assert!(
            parse_error("${uuid(1)}")
                .to_string()
                .contains("no arguments")
        );
        assert!(
            parse_error("${pick(a)}")
                .to_string()
                .contains("expected an argument")
        );
        assert!(
            parse_error("${pick(1 2)}")
                .to_string()
                .contains("expected \",\"")
        );
        assert!(parse_error("${pick(1,}").to_string().contains("not closed"));
        assert!(
            parse_error("${random(1, 99999999999999999999)}")
                .to_string()
                .contains("too large")
        );
    }

    #[test]
    fn rejects_bad_names_and_characters() {
        assert!(
            parse_error("${my-var}")
                .to_string()
                .contains("not a valid variable name")
        );
        assert!(
            parse_error("${env.MY-VAR}")
                .to_string()
                .contains("not a valid env name")
        );
        assert!(parse_error("${1abc}").to_string().contains("not a number"));
        let error = parse_error("${a+b}");
        assert_eq!(error.column(), 4);
        assert!(error.to_string().contains("unexpected \"+\""), "{error}");
        assert!(
            parse_error("${a${b}}")
                .to_string()
                .contains("cannot be nested")
        );
        assert!(
            parse_error("${a b}")
                .to_string()
                .contains("unexpected \"b\"")
        );
    }

    #[test]
    fn parse_reference_reports_columns_in_the_outer_text() {
        let text = "status == ${balance} && x";
        let (reference, end) = parse_reference(text, 10).unwrap();
        assert_eq!(reference, Reference::Var("balance".into()));
        assert_eq!(&text[end..], " && x");
        let error = parse_reference("abc ${env.}", 4).unwrap_err();
        assert_eq!(error.column(), 11);
        assert!(parse_reference("abc", 0).is_err());
    }

    #[test]
    fn renders_with_a_resolver() {
        let template = parse("Bearer ${setup.token} for ${data.users.name}").unwrap();
        let mut resolver =
            MapResolver::new(&[("${setup.token}", "t0k"), ("${data.users.name}", "ann")]);
        assert_eq!(
            template.render(&mut resolver).unwrap(),
            "Bearer t0k for ann"
        );
        let mut buffer = String::from(">");
        template.render_into(&mut resolver, &mut buffer).unwrap();
        assert_eq!(buffer, ">Bearer t0k for ann");
    }

    #[test]
    fn render_names_the_missing_reference_and_the_fix() {
        let template = parse("/u/${user_id}").unwrap();
        let error = template.render(&mut MapResolver::new(&[])).unwrap_err();
        assert_eq!(
            error,
            RenderError::Unresolved {
                reference: Reference::Var("user_id".into())
            }
        );
        assert_eq!(
            error.to_string(),
            "no value for ${user_id} (capture \"user_id\" in an earlier step, or make that capture optional with a default)"
        );
        let error = parse("${env.HOST}")
            .unwrap()
            .render(&mut MapResolver::new(&[]));
        assert!(
            error
                .unwrap_err()
                .to_string()
                .contains("set HOST in spec.env")
        );
        let error = parse("${uuid()}")
            .unwrap()
            .render(&mut MapResolver::new(&[]))
            .unwrap_err();
        assert!(
            error.to_string().contains("evaluated by the runner"),
            "{error}"
        );
    }

    #[test]
    fn finds_references_in_json_leaves_and_keys() {
        let body = serde_json::json!({
            "user": "${data.users.name}",
            "${key}": [1, true, null, {"nested": "id-${uuid()}"}],
        });
        let references = references_in_json(&body).unwrap();
        assert_eq!(references.len(), 3);
        assert!(references.contains(&Reference::Var("key".into())));
        assert!(references.contains(&Reference::Call(Call::Uuid)));
        let bad = serde_json::json!({"a/b": [0, {"c~d": "${oops"}]});
        let (pointer, error) = references_in_json(&bad).unwrap_err();
        assert_eq!(pointer, "/a~1b/1/c~0d");
        assert_eq!(error, TemplateError::Unterminated { column: 1 });
        let (pointer, _) = references_in_json(&serde_json::json!({"${}": 1})).unwrap_err();
        assert_eq!(pointer, "/${}");
        let (pointer, _) = references_in_json(&serde_json::json!("${}")).unwrap_err();
        assert_eq!(pointer, "");
    }

    #[test]
    fn reserved_and_valid_names() {
        assert_eq!(BUILTINS.len(), Builtin::ALL.len());
        for (name, builtin) in BUILTINS.iter().zip(Builtin::ALL) {
            assert_eq!(builtin.name(), *name);
            assert_eq!(
                single_reference(&format!("${{{name}}}")),
                Reference::Builtin(builtin)
            );
        }
        assert!(is_reserved("vu") && is_reserved("uuid") && is_reserved("env"));
        assert!(!is_reserved("token"));
        assert!(is_valid_name("_a1") && !is_valid_name("1a") && !is_valid_name("a-b"));
        assert!(is_valid_data_name("a-b") && !is_valid_data_name("") && !is_valid_data_name("-a"));
    }
}
