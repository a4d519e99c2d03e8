//! JSON body templates: a request's `json` parsed once into a tree whose string leaves and
//! object keys are templates, rendered per request straight into the body buffer.
//!
//! The rendered bytes equal what `serde_json::to_vec` gives for the same value with every
//! template replaced by its text: keys sorted (serde_json's map keeps keys in order unless its
//! `preserve_order` feature is on), a key rendered twice keeping the later value, strings
//! escaped as serde_json escapes them.

use std::fmt::Write as _;
use std::io::Write as _;

use crate::template::{self, Reference, RenderError, Resolve, Segment, Template, TemplateError};

/// Where in a JSON body a template failed to parse: the JSON pointer (RFC 6901) of the leaf
/// or key, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at {pointer}: {error}")]
pub struct JsonTemplateError {
    /// The JSON pointer of the bad leaf or key (`""` for the root).
    pub pointer: String,
    /// The template's parse error.
    pub error: TemplateError,
}

/// A parsed JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonTemplate {
    root: JsonNode,
    /// Bytes a render is expected to take, so one allocation usually holds the body.
    estimated_length: usize,
}

/// One value of a [`JsonTemplate`].
#[derive(Debug, Clone, PartialEq)]
pub enum JsonNode {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number, written as serde_json writes it.
    Number(serde_json::Number),
    /// A string; its text is a template.
    String(Template),
    /// An array.
    Array(Vec<JsonNode>),
    /// An object.
    Object(JsonObject),
}

/// A JSON object whose keys are templates.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonObject {
    /// The members. When every key is literal they are sorted by key text already; otherwise
    /// they are in the manifest's order and sorted after rendering.
    pub members: Vec<(Template, JsonNode)>,
    /// Whether some key is a template (so the key order is known only after rendering).
    pub templated_keys: bool,
}

/// The capacity guess for a rendered reference (as [`Template::render`] guesses).
const TYPICAL_VALUE_LENGTH: usize = 16;

impl JsonTemplate {
    /// Parses every string leaf and object key of `value` as a template.
    pub fn parse(value: &serde_json::Value) -> Result<JsonTemplate, JsonTemplateError> {
        let mut pointer = String::new();
        let root = parse_node(value, &mut pointer)?;
        let estimated_length = root.estimated_length();
        Ok(JsonTemplate {
            root,
            estimated_length,
        })
    }

    /// The root value.
    pub fn root(&self) -> &JsonNode {
        &self.root
    }

    /// Every template reference, keys included, in document order.
    pub fn references(&self) -> Vec<&Reference> {
        let mut references = Vec::new();
        self.root.collect_references(&mut references);
        references
    }

    /// Whether the body has no reference, so it renders to the same bytes every time.
    pub fn is_literal(&self) -> bool {
        self.references().is_empty()
    }

    /// A capacity for the body buffer that most renders fit in.
    pub fn estimated_length(&self) -> usize {
        self.estimated_length
    }

    /// The body's bytes when it has no reference (render it once, send it every time).
    pub fn literal_bytes(&self) -> Option<Vec<u8>> {
        if !self.is_literal() {
            return None;
        }
        let mut output = Vec::with_capacity(self.estimated_length);
        self.render_into(&mut NoValues, &mut output).ok()?;
        Some(output)
    }

    /// Appends the rendered JSON to `output`. On error `output` holds a partial body.
    pub fn render_into(
        &self,
        resolver: &mut impl Resolve,
        output: &mut Vec<u8>,
    ) -> Result<(), RenderError> {
        self.root.render_into(resolver, output)
    }
}

/// The resolver of a body without references: it is never asked.
struct NoValues;

impl Resolve for NoValues {
    fn resolve(&mut self, _: &Reference) -> Option<std::borrow::Cow<'_, str>> {
        None
    }
}

fn parse_node(
    value: &serde_json::Value,
    pointer: &mut String,
) -> Result<JsonNode, JsonTemplateError> {
    let parse_text = |text: &str, pointer: &str| {
        template::parse(text).map_err(|error| JsonTemplateError {
            pointer: pointer.to_string(),
            error,
        })
    };
    Ok(match value {
        serde_json::Value::Null => JsonNode::Null,
        serde_json::Value::Bool(value) => JsonNode::Bool(*value),
        serde_json::Value::Number(number) => JsonNode::Number(number.clone()),
        serde_json::Value::String(text) => JsonNode::String(parse_text(text, pointer)?),
        serde_json::Value::Array(items) => {
            let mut nodes = Vec::with_capacity(items.len());
            for (index, item) in items.iter().enumerate() {
                let parent_length = pointer.len();
                let _ = write!(pointer, "/{index}");
                nodes.push(parse_node(item, pointer)?);
                pointer.truncate(parent_length);
            }
            JsonNode::Array(nodes)
        }
        serde_json::Value::Object(map) => {
            let mut members = Vec::with_capacity(map.len());
            for (key, item) in map {
                let parent_length = pointer.len();
                pointer.push('/');
                pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
                let key = parse_text(key, pointer)?;
                members.push((key, parse_node(item, pointer)?));
                pointer.truncate(parent_length);
            }
            let templated_keys = members.iter().any(|(key, _)| !key.is_literal());
            if !templated_keys {
                // Escapes (`$${`) can change a key's text and so its place in the order.
                members.sort_by(|(a, _), (b, _)| a.as_literal().cmp(&b.as_literal()));
            }
            JsonNode::Object(JsonObject {
                members,
                templated_keys,
            })
        }
    })
}

impl JsonNode {
    fn collect_references<'a>(&'a self, references: &mut Vec<&'a Reference>) {
        match self {
            JsonNode::Null | JsonNode::Bool(_) | JsonNode::Number(_) => {}
            JsonNode::String(text) => references.extend(text.references()),
            JsonNode::Array(items) => {
                for item in items {
                    item.collect_references(references);
                }
            }
            JsonNode::Object(object) => {
                for (key, member) in &object.members {
                    references.extend(key.references());
                    member.collect_references(references);
                }
            }
        }
    }

    fn estimated_length(&self) -> usize {
        let string = |text: &Template| {
            2 + text
                .segments
                .iter()
                .map(|segment| match segment {
                    Segment::Literal(text) => text.len(),
                    Segment::Ref(_) => TYPICAL_VALUE_LENGTH,
                })
                .sum::<usize>()
        };
        match self {
            JsonNode::Null => 4,
            JsonNode::Bool(_) => 5,
            JsonNode::Number(_) => 8,
            JsonNode::String(text) => string(text),
            JsonNode::Array(items) => {
                2 + items.len() + items.iter().map(JsonNode::estimated_length).sum::<usize>()
            }
            JsonNode::Object(object) => {
                2 + object
                    .members
                    .iter()
                    .map(|(key, member)| string(key) + 2 + member.estimated_length())
                    .sum::<usize>()
            }
        }
    }

    fn render_into(
        &self,
        resolver: &mut impl Resolve,
        output: &mut Vec<u8>,
    ) -> Result<(), RenderError> {
        match self {
            JsonNode::Null => output.extend_from_slice(b"null"),
            JsonNode::Bool(true) => output.extend_from_slice(b"true"),
            JsonNode::Bool(false) => output.extend_from_slice(b"false"),
            // Display writes what serde_json's serializer writes; a Vec cannot fail a write.
            JsonNode::Number(number) => {
                let _ = write!(output, "{number}");
            }
            JsonNode::String(text) => write_template_string(text, resolver, output)?,
            JsonNode::Array(items) => {
                output.push(b'[');
                for (index, item) in items.iter().enumerate() {
                    if index > 0 {
                        output.push(b',');
                    }
                    item.render_into(resolver, output)?;
                }
                output.push(b']');
            }
            JsonNode::Object(object) if !object.templated_keys => {
                output.push(b'{');
                for (index, (key, member)) in object.members.iter().enumerate() {
                    if index > 0 {
                        output.push(b',');
                    }
                    write_template_string(key, resolver, output)?;
                    output.push(b':');
                    member.render_into(resolver, output)?;
                }
                output.push(b'}');
            }
            JsonNode::Object(object) => object.render_with_templated_keys(resolver, output)?,
        }
        Ok(())
    }
}

impl JsonObject {
    /// Renders members in the manifest's order (so calls such as `${random(...)}` draw in the
    /// same order whatever the keys render to), then writes them sorted by key, a key that
    /// renders twice keeping its later value — as a map built member by member would.
    fn render_with_templated_keys(
        &self,
        resolver: &mut impl Resolve,
        output: &mut Vec<u8>,
    ) -> Result<(), RenderError> {
        let mut rendered: Vec<(String, Vec<u8>)> = Vec::with_capacity(self.members.len());
        for (key, member) in &self.members {
            let key = key.render(resolver)?;
            let mut value = Vec::with_capacity(member.estimated_length());
            member.render_into(resolver, &mut value)?;
            rendered.push((key, value));
        }
        // Reversed and stably sorted, the first of equal keys is the later one: keep it.
        rendered.reverse();
        rendered.sort_by(|(a, _), (b, _)| a.cmp(b));
        rendered.dedup_by(|(later, _), (kept, _)| later == kept);
        output.push(b'{');
        for (index, (key, value)) in rendered.iter().enumerate() {
            if index > 0 {
                output.push(b',');
            }
            output.push(b'"');
            write_escaped(key, output);
            output.extend_from_slice(b"\":");
            output.extend_from_slice(value);
        }
        output.push(b'}');
        Ok(())
    }
}

/// Writes `text` rendered as a JSON string, each piece escaped as it is written.
fn write_template_string(
    text: &Template,
    resolver: &mut impl Resolve,
    output: &mut Vec<u8>,
) -> Result<(), RenderError> {
    output.push(b'"');
    for segment in &text.segments {
        match segment {
            Segment::Literal(literal) => write_escaped(literal, output),
            Segment::Ref(reference) => match resolver.resolve(reference) {
                Some(value) => write_escaped(&value, output),
                None => {
                    return Err(RenderError::Unresolved {
                        reference: reference.clone(),
                    });
                }
            },
        }
    }
    output.push(b'"');
    Ok(())
}

/// Writes `text` escaped for a JSON string, exactly as serde_json does: `"`, `\` and control
/// characters only, with short forms where JSON has them and lowercase `\u00xx` otherwise.
fn write_escaped(text: &str, output: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = text.as_bytes();
    let mut start = 0;
    for (index, &byte) in bytes.iter().enumerate() {
        let short: &[u8] = match byte {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => &[],
            _ => continue,
        };
        output.extend_from_slice(&bytes[start..index]);
        if short.is_empty() {
            output.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(byte >> 4)],
                HEX[usize::from(byte & 0xf)],
            ]);
        } else {
            output.extend_from_slice(short);
        }
        start = index + 1;
    }
    output.extend_from_slice(&bytes[start..]);
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::collections::HashMap;

    use serde_json::json;

    use super::*;

    /// Resolves VU variables from a map.
    struct Vars(HashMap<&'static str, &'static str>);

    impl Resolve for Vars {
        fn resolve(&mut self, reference: &Reference) -> Option<Cow<'_, str>> {
            match reference {
                Reference::Var(name) => self.0.get(name.as_str()).map(|v| Cow::Borrowed(*v)),
                _ => None,
            }
        }
    }

    fn vars(pairs: &[(&'static str, &'static str)]) -> Vars {
        Vars(pairs.iter().copied().collect())
    }

    fn render(value: serde_json::Value, resolver: &mut Vars) -> String {
        let template = JsonTemplate::parse(&value).unwrap();
        let mut output = Vec::new();
        template.render_into(resolver, &mut output).unwrap();
        String::from_utf8(output).unwrap()
    }

    #[test]
    fn a_literal_body_renders_as_serde_json_writes_it() {
        let value = json!({
            "b": [1, -2, 3.25, 1e300, true, false, null, "x"],
            "a": {"nested": {"deep": []}, "empty": {}},
            "$${escaped}": "$${kept} $5",
            "quote\"d": "tab\tnew\nline\u{1}\u{7f}é😀\\",
        });
        let template = JsonTemplate::parse(&value).unwrap();
        assert!(template.is_literal());
        let bytes = template.literal_bytes().unwrap();
        // serde_json sees the escapes already applied.
        let expected = json!({
            "b": [1, -2, 3.25, 1e300, true, false, null, "x"],
            "a": {"nested": {"deep": []}, "empty": {}},
            "${escaped}": "${kept} $5",
            "quote\"d": "tab\tnew\nline\u{1}\u{7f}é😀\\",
        });
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            serde_json::to_string(&expected).unwrap()
        );
    }

    #[test]
    fn escapes_every_ascii_character_as_serde_json_does() {
        let all: String = (0u8..=0x7f).map(char::from).collect();
        let mut output = Vec::new();
        write_escaped(&all, &mut output);
        let expected = serde_json::to_string(&all).unwrap();
        assert_eq!(
            format!("\"{}\"", String::from_utf8(output).unwrap()),
            expected
        );
    }

    #[test]
    fn renders_references_in_leaves_and_escapes_their_values() {
        let mut resolver = vars(&[("name", "a \"quoted\"\nname"), ("n", "7")]);
        let body = render(
            json!({"user": "${name}", "ids": ["id-${n}", 5], "s": "${n}"}),
            &mut resolver,
        );
        assert_eq!(
            body,
            r#"{"ids":["id-7",5],"s":"7","user":"a \"quoted\"\nname"}"#
        );
        let parsed: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(parsed["user"], "a \"quoted\"\nname");
    }

    #[test]
    fn templated_keys_are_sorted_after_rendering_and_the_later_duplicate_wins() {
        // Manifest order (sorted by source text): "${k}" < "${z}" < "a" < "m".
        let value = json!({"a": 1, "${k}": 2, "m": 3, "${z}": 4});
        let mut resolver = vars(&[("k", "a"), ("z", "b")]);
        // "${k}" renders to "a", and the later literal "a" replaces it, as serde_json's map
        // built member by member would.
        assert_eq!(
            render(value.clone(), &mut resolver),
            r#"{"a":1,"b":4,"m":3}"#
        );
        let mut resolver = vars(&[("k", "z"), ("z", "0")]);
        assert_eq!(render(value, &mut resolver), r#"{"0":4,"a":1,"m":3,"z":2}"#);
    }

    #[test]
    fn a_missing_value_is_an_error_naming_it() {
        let template = JsonTemplate::parse(&json!({"x": ["${missing}"]})).unwrap();
        assert!(!template.is_literal());
        assert!(template.literal_bytes().is_none());
        let error = template
            .render_into(&mut vars(&[]), &mut Vec::new())
            .unwrap_err();
        assert_eq!(
            error,
            RenderError::Unresolved {
                reference: Reference::Var("missing".into())
            }
        );
    }

    #[test]
    fn lists_references_of_keys_and_leaves_in_document_order() {
        let template =
            JsonTemplate::parse(&json!({"${a}": ["${b}", {"c": "${env.D}"}], "z": "${e}"}))
                .unwrap();
        let references: Vec<String> = template
            .references()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(references, ["${a}", "${b}", "${env.D}", "${e}"]);
    }

    #[test]
    fn a_bad_template_names_its_json_pointer() {
        let error = JsonTemplate::parse(&json!({"a/b": [1, {"c~": "${"}]})).unwrap_err();
        assert_eq!(error.pointer, "/a~1b/1/c~0");
        assert!(
            error
                .to_string()
                .starts_with("at /a~1b/1/c~0: unterminated")
        );
    }

    #[test]
    fn the_estimate_covers_a_typical_render() {
        let template = JsonTemplate::parse(&json!({"user": "${name}", "n": [1, 2]})).unwrap();
        let mut output = Vec::new();
        template
            .render_into(&mut vars(&[("name", "alice")]), &mut output)
            .unwrap();
        assert!(template.estimated_length() >= output.len());
    }
}
