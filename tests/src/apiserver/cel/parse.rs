//! A CEL parser that keeps each node's source position (the `cel` crate, which reports syntax
//! errors as cel-go does, does not expose them): used on rules that already parsed, to type
//! check them and estimate their cost. Positions follow cel-go: an operator's token, a
//! select's `.`, a call's `(`, an index's `[`; macros are expanded into comprehensions the way
//! cel-go expands them, located at the macro call.

/// A node of the expression tree.
#[derive(Debug, Clone)]
pub struct Expr {
    /// Unique within one parsed rule, in creation order.
    pub id: usize,
    /// Character offset in the rule where cel-go locates the node.
    pub offset: usize,
    /// What it is.
    pub kind: Kind,
}

/// The kinds of nodes.
#[derive(Debug, Clone)]
pub enum Kind {
    /// A constant.
    Literal(Literal),
    /// A variable or type name.
    Ident(String),
    /// `operand.field`, or `has(operand.field)` when `test_only`.
    Select {
        /// The object.
        operand: Box<Expr>,
        /// The field name.
        field: String,
        /// A presence test.
        test_only: bool,
    },
    /// A function or operator call (operators have cel-go's names: `_+_`, `_[_]`, `!_`...).
    Call {
        /// The receiver of a member call.
        target: Option<Box<Expr>>,
        /// The function.
        function: String,
        /// The arguments.
        args: Vec<Expr>,
    },
    /// `[a, b]`
    List(Vec<Expr>),
    /// `{k: v}`
    Map(Vec<(Expr, Expr)>),
    /// `Name{field: v}`
    Struct(String, Vec<(String, Expr)>),
    /// A loop, from a macro.
    Comprehension(Box<Comprehension>),
}

/// A comprehension, as cel-go's macros produce them.
#[derive(Debug, Clone)]
pub struct Comprehension {
    /// The macro that made it: `all`, `exists`, `exists_one`, `map`, `filter`, `bind`...
    pub macro_name: String,
    /// The iteration variable.
    pub iter_var: String,
    /// The second iteration variable of two-variable macros.
    pub iter_var2: Option<String>,
    /// What is iterated over.
    pub range: Expr,
    /// The accumulator's name.
    pub accu_var: String,
    /// Its initial value.
    pub accu_init: Expr,
    /// Evaluated before each step; the loop stops when false.
    pub condition: Expr,
    /// The new accumulator.
    pub step: Expr,
    /// The result.
    pub result: Expr,
}

/// Constants.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// int
    Int(i64),
    /// uint
    Uint(u64),
    /// double
    Double(f64),
    /// string
    String(String),
    /// bytes
    Bytes(Vec<u8>),
    /// bool
    Bool(bool),
    /// null
    Null,
}

/// The accumulator name cel-go's macros use.
pub const ACCUMULATOR: &str = "@result";

/// Why a rule could not be parsed here (it parsed in the `cel` crate, so this means a construct
/// this parser does not know; callers then skip the checks).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("unsupported CEL syntax at offset {offset}: {what}")]
pub struct Unsupported {
    /// Where.
    pub offset: usize,
    /// What.
    pub what: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Int(i64),
    Uint(u64),
    Double(f64),
    Str(String),
    Bytes(Vec<u8>),
    Ident(String),
    Punct(&'static str),
    End,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    offset: usize,
}

const PUNCTS: &[&str] = &[
    "==", "!=", "<=", ">=", "&&", "||", "?.", "[?", "<", ">", "!", "+", "-", "*", "/", "%", "?",
    ":", ".", ",", "[", "]", "(", ")", "{", "}",
];

fn unsupported(offset: usize, what: impl Into<String>) -> Unsupported {
    Unsupported {
        offset,
        what: what.into(),
    }
}

fn lex(source: &str) -> Result<Vec<Token>, Unsupported> {
    let chars: Vec<char> = source.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c == '/' && chars.get(i + 1) == Some(&'/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            continue;
        }
        let start = i;
        let after_operand = matches!(
            tokens.last(),
            Some(Token {
                tok: Tok::Ident(_) | Tok::Punct(")" | "]"),
                ..
            })
        );
        let leading_dot_number =
            c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit) && !after_operand;
        let tok = if c.is_ascii_digit() || leading_dot_number {
            lex_number(&chars, &mut i)?
        } else if let Some((raw, bytes, quote_at)) = string_prefix(&chars, i) {
            i = quote_at;
            lex_string(&chars, &mut i, raw, bytes)?
        } else if c.is_ascii_alphabetic() || c == '_' {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            Tok::Ident(chars[start..i].iter().collect())
        } else {
            let rest: String = chars[i..chars.len().min(i + 2)].iter().collect();
            let punct = PUNCTS
                .iter()
                .find(|p| rest.starts_with(**p))
                .ok_or_else(|| unsupported(i, format!("character {c:?}")))?;
            i += punct.chars().count();
            Tok::Punct(punct)
        };
        tokens.push(Token { tok, offset: start });
    }
    tokens.push(Token {
        tok: Tok::End,
        offset: chars.len(),
    });
    Ok(tokens)
}

/// A string literal's prefix (`r`, `b`, both) ending at a quote: (raw, bytes, quote index).
fn string_prefix(chars: &[char], i: usize) -> Option<(bool, bool, usize)> {
    let mut j = i;
    let mut raw = false;
    let mut bytes = false;
    while j < chars.len() && j < i + 2 {
        match chars[j] {
            'r' | 'R' if !raw => raw = true,
            'b' | 'B' if !bytes => bytes = true,
            _ => break,
        }
        j += 1;
    }
    matches!(chars.get(j), Some('"' | '\'')).then_some((raw, bytes, j))
}

fn lex_number(chars: &[char], i: &mut usize) -> Result<Tok, Unsupported> {
    let start = *i;
    if chars[*i] == '0' && matches!(chars.get(*i + 1), Some('x' | 'X')) {
        *i += 2;
        let digits_start = *i;
        while *i < chars.len() && chars[*i].is_ascii_hexdigit() {
            *i += 1;
        }
        let digits: String = chars[digits_start..*i].iter().collect();
        let value = u64::from_str_radix(&digits, 16).map_err(|_| unsupported(start, "hex"))?;
        if matches!(chars.get(*i), Some('u' | 'U')) {
            *i += 1;
            return Ok(Tok::Uint(value));
        }
        return Ok(Tok::Int(value as i64));
    }
    while *i < chars.len() && chars[*i].is_ascii_digit() {
        *i += 1;
    }
    let mut float = false;
    if chars.get(*i) == Some(&'.') && chars.get(*i + 1).is_some_and(char::is_ascii_digit) {
        float = true;
        *i += 1;
        while *i < chars.len() && chars[*i].is_ascii_digit() {
            *i += 1;
        }
    }
    if matches!(chars.get(*i), Some('e' | 'E')) {
        let mut j = *i + 1;
        if matches!(chars.get(j), Some('+' | '-')) {
            j += 1;
        }
        if chars.get(j).is_some_and(char::is_ascii_digit) {
            float = true;
            *i = j;
            while *i < chars.len() && chars[*i].is_ascii_digit() {
                *i += 1;
            }
        }
    }
    let text: String = chars[start..*i].iter().collect();
    if float {
        return text
            .parse()
            .map(Tok::Double)
            .map_err(|_| unsupported(start, "double"));
    }
    if matches!(chars.get(*i), Some('u' | 'U')) {
        *i += 1;
        return text
            .parse()
            .map(Tok::Uint)
            .map_err(|_| unsupported(start, "uint"));
    }
    // An int literal may be the absolute value of i64::MIN, negated by the parser.
    text.parse::<u64>()
        .map(|v| Tok::Int(v as i64))
        .map_err(|_| unsupported(start, "int"))
}

fn lex_string(chars: &[char], i: &mut usize, raw: bool, bytes: bool) -> Result<Tok, Unsupported> {
    let start = *i;
    let quote = chars[*i];
    let triple = chars.get(*i + 1) == Some(&quote) && chars.get(*i + 2) == Some(&quote);
    *i += if triple { 3 } else { 1 };
    let mut text = String::new();
    loop {
        let Some(&c) = chars.get(*i) else {
            return Err(unsupported(start, "unterminated string"));
        };
        if c == quote
            && (!triple || (chars.get(*i + 1) == Some(&quote) && chars.get(*i + 2) == Some(&quote)))
        {
            *i += if triple { 3 } else { 1 };
            break;
        }
        if c == '\\' && !raw {
            let (decoded, used) =
                unescape(&chars[*i..]).ok_or_else(|| unsupported(*i, "escape"))?;
            text.push_str(&decoded);
            *i += used;
            continue;
        }
        text.push(c);
        *i += 1;
    }
    Ok(if bytes {
        Tok::Bytes(text.into_bytes())
    } else {
        Tok::Str(text)
    })
}

/// One escape sequence starting at a backslash: the text it stands for and its length.
fn unescape(chars: &[char]) -> Option<(String, usize)> {
    let simple = |c: char| -> Option<char> {
        Some(match c {
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'a' => '\u{7}',
            'b' => '\u{8}',
            'f' => '\u{c}',
            'v' => '\u{b}',
            '\\' => '\\',
            '\'' => '\'',
            '"' => '"',
            '`' => '`',
            '?' => '?',
            _ => return None,
        })
    };
    let next = *chars.get(1)?;
    if let Some(c) = simple(next) {
        return Some((c.to_string(), 2));
    }
    let hex = |from: usize, count: usize| -> Option<u32> {
        let digits: String = chars.get(from..from + count)?.iter().collect();
        u32::from_str_radix(&digits, 16).ok()
    };
    let (code, used) = match next {
        'x' | 'X' => (hex(2, 2)?, 4),
        'u' => (hex(2, 4)?, 6),
        'U' => (hex(2, 8)?, 10),
        '0'..='3' => {
            let digits: String = chars.get(1..4)?.iter().collect();
            (u32::from_str_radix(&digits, 8).ok()?, 4)
        }
        _ => return None,
    };
    Some((char::from_u32(code)?.to_string(), used))
}

/// Parses a rule. The caller has already checked it with the `cel` crate's parser.
pub fn parse(source: &str) -> Result<Expr, Unsupported> {
    let mut parser = Parser {
        tokens: lex(source)?,
        at: 0,
        next_id: 1,
    };
    let expr = parser.expr()?;
    match parser.peek() {
        Tok::End => Ok(expr),
        _ => Err(unsupported(parser.offset(), "trailing input")),
    }
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
    next_id: usize,
}

impl Parser {
    fn peek(&self) -> &Tok {
        &self.tokens[self.at.min(self.tokens.len() - 1)].tok
    }

    fn offset(&self) -> usize {
        self.tokens[self.at.min(self.tokens.len() - 1)].offset
    }

    fn bump(&mut self) -> Token {
        let token = self.tokens[self.at.min(self.tokens.len() - 1)].clone();
        if self.at < self.tokens.len() - 1 {
            self.at += 1;
        }
        token
    }

    fn is(&self, punct: &str) -> bool {
        matches!(self.peek(), Tok::Punct(p) if *p == punct)
    }

    fn expect(&mut self, punct: &str) -> Result<Token, Unsupported> {
        if self.is(punct) {
            Ok(self.bump())
        } else {
            Err(unsupported(self.offset(), format!("expected {punct}")))
        }
    }

    fn node(&mut self, offset: usize, kind: Kind) -> Expr {
        let id = self.next_id;
        self.next_id += 1;
        Expr { id, offset, kind }
    }

    fn call(&mut self, offset: usize, function: &str, args: Vec<Expr>) -> Expr {
        self.node(
            offset,
            Kind::Call {
                target: None,
                function: function.into(),
                args,
            },
        )
    }

    fn expr(&mut self) -> Result<Expr, Unsupported> {
        let condition = self.or()?;
        if !self.is("?") {
            return Ok(condition);
        }
        let op = self.bump();
        let if_true = self.or()?;
        self.expect(":")?;
        let if_false = self.expr()?;
        Ok(self.call(op.offset, "_?_:_", vec![condition, if_true, if_false]))
    }

    /// `||` and `&&` chains, built as balanced trees like cel-go's logic manager.
    fn logic(
        &mut self,
        punct: &str,
        function: &str,
        next: fn(&mut Self) -> Result<Expr, Unsupported>,
    ) -> Result<Expr, Unsupported> {
        let mut terms = vec![next(self)?];
        let mut ops = Vec::new();
        while self.is(punct) {
            ops.push(self.bump().offset);
            terms.push(next(self)?);
        }
        Ok(self.balance(function, &mut terms, &ops, 0, ops.len()))
    }

    fn balance(
        &mut self,
        function: &str,
        terms: &mut Vec<Expr>,
        ops: &[usize],
        lo: usize,
        hi: usize,
    ) -> Expr {
        if lo == hi {
            return std::mem::replace(
                &mut terms[lo],
                Expr {
                    id: 0,
                    offset: 0,
                    kind: Kind::Literal(Literal::Null),
                },
            );
        }
        let mid = (lo + hi).div_ceil(2);
        let left = self.balance(function, terms, ops, lo, mid - 1);
        let right = self.balance(function, terms, ops, mid, hi);
        self.call(ops[mid - 1], function, vec![left, right])
    }

    fn or(&mut self) -> Result<Expr, Unsupported> {
        self.logic("||", "_||_", Self::and)
    }

    fn and(&mut self) -> Result<Expr, Unsupported> {
        self.logic("&&", "_&&_", Self::relation)
    }

    fn relation(&mut self) -> Result<Expr, Unsupported> {
        let mut left = self.addition()?;
        loop {
            let function = match self.peek() {
                Tok::Punct("<") => "_<_",
                Tok::Punct("<=") => "_<=_",
                Tok::Punct(">") => "_>_",
                Tok::Punct(">=") => "_>=_",
                Tok::Punct("==") => "_==_",
                Tok::Punct("!=") => "_!=_",
                Tok::Ident(word) if word == "in" => "@in",
                _ => return Ok(left),
            };
            let op = self.bump();
            let right = self.addition()?;
            left = self.call(op.offset, function, vec![left, right]);
        }
    }

    fn addition(&mut self) -> Result<Expr, Unsupported> {
        let mut left = self.multiplication()?;
        loop {
            let function = match self.peek() {
                Tok::Punct("+") => "_+_",
                Tok::Punct("-") => "_-_",
                _ => return Ok(left),
            };
            let op = self.bump();
            let right = self.multiplication()?;
            left = self.call(op.offset, function, vec![left, right]);
        }
    }

    fn multiplication(&mut self) -> Result<Expr, Unsupported> {
        let mut left = self.unary()?;
        loop {
            let function = match self.peek() {
                Tok::Punct("*") => "_*_",
                Tok::Punct("/") => "_/_",
                Tok::Punct("%") => "_%_",
                _ => return Ok(left),
            };
            let op = self.bump();
            let right = self.unary()?;
            left = self.call(op.offset, function, vec![left, right]);
        }
    }

    fn unary(&mut self) -> Result<Expr, Unsupported> {
        if self.is("!") {
            let mut ops = Vec::new();
            while self.is("!") {
                ops.push(self.bump().offset);
            }
            let operand = self.member()?;
            // cel-go drops pairs of negations.
            return Ok(if ops.len() % 2 == 0 {
                operand
            } else {
                self.call(ops[0], "!_", vec![operand])
            });
        }
        if self.is("-") {
            let mut ops = Vec::new();
            while self.is("-") {
                ops.push(self.bump().offset);
            }
            // A single minus before a number is part of the literal.
            if ops.len() == 1
                && let Tok::Int(_) | Tok::Double(_) = self.peek()
            {
                let literal = self.bump();
                let value = match literal.tok {
                    Tok::Int(v) => Literal::Int(v.wrapping_neg()),
                    Tok::Double(v) => Literal::Double(-v),
                    _ => Literal::Null,
                };
                let number = self.node(ops[0], Kind::Literal(value));
                return self.member_suffixes(number);
            }
            let operand = self.member()?;
            return Ok(if ops.len() % 2 == 0 {
                operand
            } else {
                self.call(ops[0], "-_", vec![operand])
            });
        }
        self.member()
    }

    fn member(&mut self) -> Result<Expr, Unsupported> {
        let primary = self.primary()?;
        self.member_suffixes(primary)
    }

    fn member_suffixes(&mut self, mut operand: Expr) -> Result<Expr, Unsupported> {
        loop {
            if self.is(".") || self.is("?.") {
                let optional = self.is("?.");
                let dot = self.bump();
                let Tok::Ident(name) = self.bump().tok else {
                    return Err(unsupported(dot.offset, "member name"));
                };
                if optional {
                    let field = self.node(dot.offset, Kind::Literal(Literal::String(name)));
                    operand = self.call(dot.offset, "_?._", vec![operand, field]);
                } else if self.is("(") {
                    let open = self.bump();
                    let args = self.arguments(")")?;
                    operand = self.member_call(open.offset, operand, name, args)?;
                } else {
                    operand = self.node(
                        dot.offset,
                        Kind::Select {
                            operand: Box::new(operand),
                            field: name,
                            test_only: false,
                        },
                    );
                }
            } else if self.is("[") || self.is("[?") {
                let function = if self.is("[?") { "_[?_]" } else { "_[_]" };
                let open = self.bump();
                let index = self.expr()?;
                self.expect("]")?;
                operand = self.call(open.offset, function, vec![operand, index]);
            } else {
                return Ok(operand);
            }
        }
    }

    /// Comma-separated expressions up to `close` (a trailing comma allowed).
    fn arguments(&mut self, close: &str) -> Result<Vec<Expr>, Unsupported> {
        let mut args = Vec::new();
        while !self.is(close) {
            args.push(self.expr()?);
            if !self.is(",") {
                break;
            }
            self.bump();
        }
        self.expect(close)?;
        Ok(args)
    }

    fn primary(&mut self) -> Result<Expr, Unsupported> {
        let token = self.bump();
        let offset = token.offset;
        match token.tok {
            Tok::Int(v) => Ok(self.node(offset, Kind::Literal(Literal::Int(v)))),
            Tok::Uint(v) => Ok(self.node(offset, Kind::Literal(Literal::Uint(v)))),
            Tok::Double(v) => Ok(self.node(offset, Kind::Literal(Literal::Double(v)))),
            Tok::Str(v) => Ok(self.node(offset, Kind::Literal(Literal::String(v)))),
            Tok::Bytes(v) => Ok(self.node(offset, Kind::Literal(Literal::Bytes(v)))),
            Tok::Punct("(") => {
                let inner = self.expr()?;
                self.expect(")")?;
                Ok(inner)
            }
            Tok::Punct("[") => {
                let items = self.arguments("]")?;
                Ok(self.node(offset, Kind::List(items)))
            }
            Tok::Punct("{") => {
                let mut entries = Vec::new();
                while !self.is("}") {
                    let key = self.expr()?;
                    self.expect(":")?;
                    let value = self.expr()?;
                    entries.push((key, value));
                    if !self.is(",") {
                        break;
                    }
                    self.bump();
                }
                self.expect("}")?;
                Ok(self.node(offset, Kind::Map(entries)))
            }
            Tok::Punct(".") => match self.bump() {
                Token {
                    tok: Tok::Ident(name),
                    offset,
                    ..
                } => self.identifier(name, offset),
                _ => Err(unsupported(offset, "leading dot")),
            },
            Tok::Ident(name) => self.identifier(name, offset),
            other => Err(unsupported(offset, format!("{other:?}"))),
        }
    }

    /// An identifier, keyword, global call, macro or message construction.
    fn identifier(&mut self, name: String, offset: usize) -> Result<Expr, Unsupported> {
        match name.as_str() {
            "true" => return Ok(self.node(offset, Kind::Literal(Literal::Bool(true)))),
            "false" => return Ok(self.node(offset, Kind::Literal(Literal::Bool(false)))),
            "null" => return Ok(self.node(offset, Kind::Literal(Literal::Null))),
            _ => {}
        }
        if self.is("(") {
            let open = self.bump();
            let args = self.arguments(")")?;
            return self.global_call(open.offset, name, args);
        }
        if self.is("{") {
            let open = self.bump();
            let mut fields = Vec::new();
            while !self.is("}") {
                let Tok::Ident(field) = self.bump().tok else {
                    return Err(unsupported(open.offset, "field name"));
                };
                self.expect(":")?;
                fields.push((field, self.expr()?));
                if !self.is(",") {
                    break;
                }
                self.bump();
            }
            self.expect("}")?;
            return Ok(self.node(open.offset, Kind::Struct(name, fields)));
        }
        Ok(self.node(offset, Kind::Ident(name)))
    }

    fn global_call(
        &mut self,
        offset: usize,
        name: String,
        mut args: Vec<Expr>,
    ) -> Result<Expr, Unsupported> {
        if name == "has" && args.len() == 1 {
            let arg = args.remove(0);
            let Kind::Select { operand, field, .. } = arg.kind else {
                return Err(unsupported(offset, "has() without a field selection"));
            };
            return Ok(self.node(
                offset,
                Kind::Select {
                    operand,
                    field,
                    test_only: true,
                },
            ));
        }
        Ok(self.call(offset, &name, args))
    }

    fn member_call(
        &mut self,
        offset: usize,
        target: Expr,
        name: String,
        mut args: Vec<Expr>,
    ) -> Result<Expr, Unsupported> {
        let var_name = |arg: &Expr| match &arg.kind {
            Kind::Ident(v) => Some(v.clone()),
            _ => None,
        };
        let is_cel_bind = name == "bind" && matches!(&target.kind, Kind::Ident(n) if n == "cel");
        if is_cel_bind && args.len() == 3 {
            let var = var_name(&args[0]).ok_or_else(|| unsupported(offset, "bind variable"))?;
            let result = args.remove(2);
            let init = args.remove(1);
            let range = self.node(offset, Kind::List(Vec::new()));
            let condition = self.node(offset, Kind::Literal(Literal::Bool(false)));
            let step = self.node(offset, Kind::Ident(var.clone()));
            return Ok(self.comprehension(
                offset,
                "bind",
                "#unused".into(),
                None,
                range,
                var,
                init,
                condition,
                step,
                result,
            ));
        }
        let quantifier = matches!(
            name.as_str(),
            "all" | "exists" | "exists_one" | "existsOne" | "map" | "filter"
        );
        let two_vars = args.len() == 3 && matches!(name.as_str(), "all" | "exists" | "existsOne");
        if quantifier && (args.len() == 2 || args.len() == 3) && var_name(&args[0]).is_some() {
            let iter_var = var_name(&args[0]).unwrap_or_default();
            let iter_var2 = if two_vars {
                Some(var_name(&args[1]).ok_or_else(|| unsupported(offset, "second variable"))?)
            } else {
                None
            };
            return self.expand(offset, &name, target, iter_var, iter_var2, args);
        }
        Ok(self.node(
            offset,
            Kind::Call {
                target: Some(Box::new(target)),
                function: name,
                args,
            },
        ))
    }

    fn accu(&mut self, offset: usize) -> Expr {
        self.node(offset, Kind::Ident(ACCUMULATOR.into()))
    }

    fn literal(&mut self, offset: usize, value: Literal) -> Expr {
        self.node(offset, Kind::Literal(value))
    }

    /// cel-go's expansions of the quantifier and projection macros.
    fn expand(
        &mut self,
        offset: usize,
        name: &str,
        range: Expr,
        iter_var: String,
        iter_var2: Option<String>,
        mut args: Vec<Expr>,
    ) -> Result<Expr, Unsupported> {
        let body = args
            .pop()
            .ok_or_else(|| unsupported(offset, "macro body"))?;
        let (init, condition, step, result) = match name {
            "all" => {
                let init = self.literal(offset, Literal::Bool(true));
                let accu = self.accu(offset);
                let condition = self.call(offset, "@not_strictly_false", vec![accu]);
                let accu = self.accu(offset);
                let step = self.call(offset, "_&&_", vec![accu, body]);
                (init, condition, step, self.accu(offset))
            }
            "exists" => {
                let init = self.literal(offset, Literal::Bool(false));
                let accu = self.accu(offset);
                let not = self.call(offset, "!_", vec![accu]);
                let condition = self.call(offset, "@not_strictly_false", vec![not]);
                let accu = self.accu(offset);
                let step = self.call(offset, "_||_", vec![accu, body]);
                (init, condition, step, self.accu(offset))
            }
            "exists_one" | "existsOne" => {
                let init = self.literal(offset, Literal::Int(0));
                let condition = self.literal(offset, Literal::Bool(true));
                let accu = self.accu(offset);
                let one = self.literal(offset, Literal::Int(1));
                let plus = self.call(offset, "_+_", vec![accu, one]);
                let accu = self.accu(offset);
                let step = self.call(offset, "_?_:_", vec![body, plus, accu]);
                let accu = self.accu(offset);
                let one = self.literal(offset, Literal::Int(1));
                let result = self.call(offset, "_==_", vec![accu, one]);
                (init, condition, step, result)
            }
            "map" | "filter" => {
                let init = self.node(offset, Kind::List(Vec::new()));
                let condition = self.literal(offset, Literal::Bool(true));
                let (filter, value) = match (name, args.len()) {
                    ("map", 1) => (None, body),
                    ("map", _) => (Some(args.pop().unwrap_or(body.clone())), body),
                    _ => {
                        let item = self.node(offset, Kind::Ident(iter_var.clone()));
                        (Some(body), item)
                    }
                };
                let item_list = self.node(offset, Kind::List(vec![value]));
                let accu = self.accu(offset);
                let append = self.call(offset, "_+_", vec![accu, item_list]);
                let step = match filter {
                    Some(predicate) => {
                        let accu = self.accu(offset);
                        self.call(offset, "_?_:_", vec![predicate, append, accu])
                    }
                    None => append,
                };
                (init, condition, step, self.accu(offset))
            }
            _ => return Err(unsupported(offset, format!("macro {name}"))),
        };
        Ok(self.comprehension(
            offset,
            name,
            iter_var,
            iter_var2,
            range,
            ACCUMULATOR.into(),
            init,
            condition,
            step,
            result,
        ))
    }

    #[allow(clippy::too_many_arguments)]
    fn comprehension(
        &mut self,
        offset: usize,
        macro_name: &str,
        iter_var: String,
        iter_var2: Option<String>,
        range: Expr,
        accu_var: String,
        accu_init: Expr,
        condition: Expr,
        step: Expr,
        result: Expr,
    ) -> Expr {
        self.node(
            offset,
            Kind::Comprehension(Box::new(Comprehension {
                macro_name: macro_name.into(),
                iter_var,
                iter_var2,
                range,
                accu_var,
                accu_init,
                condition,
                step,
                result,
            })),
        )
    }
}

/// The 1-based line and column (in characters) of a character offset, as cel-go reports them.
pub fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let mut line = 1;
    let mut column = 1;
    for c in source.chars().take(offset) {
        if c == '\n' {
            line += 1;
            column = 1;
        } else {
            column += 1;
        }
    }
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offsets(source: &str) -> Expr {
        parse(source).unwrap_or_else(|e| panic!("{source}: {e}"))
    }

    #[test]
    fn positions_follow_cel_go() {
        let expr = offsets("self.a > 5");
        assert_eq!(expr.offset, 7);
        let Kind::Call { args, .. } = &expr.kind else {
            panic!("a call")
        };
        assert_eq!(args[0].offset, 4);
        let rule = "(has(self.request) ? 1 : 0) + (has(self.sleep) ? 1 : 0) + (has(self.group) ? 1 : 0) == 1";
        let expr = offsets(rule);
        let Kind::Call { args, .. } = &expr.kind else {
            panic!("a call")
        };
        let Kind::Call { args, .. } = &args[0].kind else {
            panic!("a sum")
        };
        let Kind::Call { args, .. } = &args[0].kind else {
            panic!("a sum")
        };
        let Kind::Call { args, .. } = &args[1].kind else {
            panic!("a ternary")
        };
        assert!(matches!(
            args[0].kind,
            Kind::Select {
                test_only: true,
                ..
            }
        ));
        assert_eq!(line_column(rule, args[0].offset), (1, 35));
    }

    #[test]
    fn macros_expand_to_comprehensions() {
        let expr = offsets("self.l.all(x, x.size() < 5) && self.m.exists(k, k == 'a')");
        let Kind::Call { function, args, .. } = &expr.kind else {
            panic!("a call")
        };
        assert_eq!(function, "_&&_");
        assert!(matches!(&args[0].kind, Kind::Comprehension(c) if c.macro_name == "all"));
        let expr = offsets("cel.bind(x, self.a, x + 1) > 2");
        let Kind::Call { args, .. } = &expr.kind else {
            panic!("a call")
        };
        assert!(matches!(&args[0].kind, Kind::Comprehension(c) if c.accu_var == "x"));
    }

    #[test]
    fn literals_and_strings() {
        for source in [
            "'a\\'b' == \"c\" && r'\\d' != '''x''' && b'ab' != b'' && 0x1F == 31 && 2u > 1u",
            "1.5e3 > .5 && -3 < 0 && !!true && [1, 2,][0] == 1 && {'a': 1}['a'] == 1",
            "self.x // a comment\n == 1",
        ] {
            offsets(source);
        }
        assert!(parse("self.a ==").is_err());
    }
}
