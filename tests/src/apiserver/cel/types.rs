//! CEL types and the declarations Kubernetes derives from a structural schema
//! (`SchemaDeclType`): what `self` looks like to a rule, with each node's size bounds for the
//! cost estimate (lists, maps and strings without a maximum are sized from the 3 MiB request
//! limit).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde_json::Value;

/// The largest request the API server accepts, which bounds unbounded data.
pub const MAX_REQUEST_SIZE_BYTES: u64 = 3 * 1024 * 1024;

/// A CEL type as the checker sees it.
#[derive(Debug, Clone)]
pub enum Type {
    /// bool
    Bool,
    /// int
    Int,
    /// uint
    Uint,
    /// double
    Double,
    /// string
    String,
    /// bytes
    Bytes,
    /// null_type
    Null,
    /// google.protobuf.Timestamp
    Timestamp,
    /// google.protobuf.Duration
    Duration,
    /// dyn: anything, checked at run time.
    Dyn,
    /// list(T)
    List(Box<Type>),
    /// map(K, V)
    Map(Box<Type>, Box<Type>),
    /// An object declared by the schema.
    Object(Arc<Decl>),
    /// optional_type(T)
    Optional(Box<Type>),
    /// type(T): the value of a type name such as `int`.
    TypeOf(Box<Type>),
    /// The type of an expression that already has an error (no further errors about it).
    Error,
}

impl PartialEq for Type {
    fn eq(&self, other: &Type) -> bool {
        use Type::*;
        match (self, other) {
            (List(a), List(b)) | (Optional(a), Optional(b)) | (TypeOf(a), TypeOf(b)) => a == b,
            (Map(ka, va), Map(kb, vb)) => ka == kb && va == vb,
            (Object(a), Object(b)) => Arc::ptr_eq(a, b) || a.name == b.name,
            (a, b) => std::mem::discriminant(a) == std::mem::discriminant(b),
        }
    }
}

impl fmt::Display for Type {
    /// cel-go's `FormatCELType`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Bool => f.write_str("bool"),
            Type::Int => f.write_str("int"),
            Type::Uint => f.write_str("uint"),
            Type::Double => f.write_str("double"),
            Type::String => f.write_str("string"),
            Type::Bytes => f.write_str("bytes"),
            Type::Null => f.write_str("null_type"),
            Type::Timestamp => f.write_str("google.protobuf.Timestamp"),
            Type::Duration => f.write_str("google.protobuf.Duration"),
            Type::Dyn => f.write_str("dyn"),
            Type::List(elem) => write!(f, "list({elem})"),
            Type::Map(key, value) => write!(f, "map({key}, {value})"),
            Type::Object(decl) => f.write_str(&decl.name),
            Type::Optional(inner) => write!(f, "optional_type({inner})"),
            Type::TypeOf(inner) => write!(f, "type({inner})"),
            Type::Error => f.write_str("*error*"),
        }
    }
}

impl Type {
    /// Whether this is dyn (or an error), which matches anything.
    pub fn is_dyn(&self) -> bool {
        matches!(self, Type::Dyn | Type::Error)
    }

    /// Whether cel-go's cost model treats the type as a scalar of size one.
    pub fn is_scalar(&self) -> bool {
        matches!(
            self,
            Type::Bool | Type::Int | Type::Uint | Type::Double | Type::Timestamp | Type::Duration
        )
    }

    /// Whether `self` can stand where `other` is expected (dyn matches either way; element
    /// types compare the same way).
    pub fn assignable(&self, other: &Type) -> bool {
        match (self, other) {
            (a, b) if a.is_dyn() || b.is_dyn() => true,
            (Type::List(a), Type::List(b)) | (Type::Optional(a), Type::Optional(b)) => {
                a.assignable(b)
            }
            (Type::Map(ka, va), Type::Map(kb, vb)) => ka.assignable(kb) && va.assignable(vb),
            (Type::TypeOf(_), Type::TypeOf(_)) => true,
            (Type::Null, Type::Object(_) | Type::Optional(_)) => true,
            (a, b) => a == b,
        }
    }

    /// The more specific of two types that are assignable to each other.
    pub fn join(&self, other: &Type) -> Type {
        if self.is_dyn() {
            return other.clone();
        }
        self.clone()
    }
}

/// A declaration derived from a schema node: its CEL shape and its size bounds.
#[derive(Debug)]
pub struct Decl {
    /// The type name of an object (`selfType.spec.x` style), or the scalar's CEL name.
    pub name: String,
    /// What it is.
    pub shape: Shape,
    /// The most elements (characters, bytes, items, entries) it can have.
    pub max_elements: u64,
    /// The fewest bytes it takes serialized as JSON.
    pub min_size: u64,
}

/// The shape of a declaration.
#[derive(Debug)]
pub enum Shape {
    /// A scalar of the given type (or dyn for int-or-string).
    Scalar(Type),
    /// A list of items.
    List(Arc<Decl>),
    /// A map of string keys to values.
    Map(Arc<Decl>),
    /// An object with declared fields (escaped names).
    Object(BTreeMap<String, Arc<Decl>>),
}

impl Decl {
    /// The CEL type of values of this declaration.
    pub fn cel_type(self: &Arc<Self>) -> Type {
        match &self.shape {
            Shape::Scalar(t) => t.clone(),
            Shape::List(items) => Type::List(Box::new(items.cel_type())),
            Shape::Map(values) => Type::Map(Box::new(Type::String), Box::new(values.cel_type())),
            Shape::Object(_) => Type::Object(Arc::clone(self)),
        }
    }

    /// A declared field of an object.
    pub fn field(&self, name: &str) -> Option<&Arc<Decl>> {
        match &self.shape {
            Shape::Object(fields) => fields.get(name),
            _ => None,
        }
    }

    /// The items of a list or values of a map.
    pub fn element(&self) -> Option<&Arc<Decl>> {
        match &self.shape {
            Shape::List(items) => Some(items),
            Shape::Map(values) => Some(values),
            _ => None,
        }
    }

    /// `maxCardinality` of compilation.go: how often data of this declaration's minimum size
    /// fits into one request.
    pub fn max_cardinality(&self) -> u64 {
        MAX_REQUEST_SIZE_BYTES / (self.min_size + 1)
    }
}

fn scalar(name: &str, t: Type, min_size: u64, max_elements: u64) -> Arc<Decl> {
    Arc::new(Decl {
        name: name.into(),
        shape: Shape::Scalar(t),
        max_elements,
        min_size,
    })
}

fn str_field<'a>(schema: &'a Value, name: &str) -> &'a str {
    schema.get(name).and_then(Value::as_str).unwrap_or("")
}

fn flag(schema: &Value, name: &str) -> bool {
    schema.get(name).and_then(Value::as_bool) == Some(true)
}

fn non_negative(schema: &Value, name: &str) -> Option<u64> {
    schema
        .get(name)
        .and_then(Value::as_i64)
        .map(|v| v.max(0) as u64)
}

/// Strings without a maximum are as long as a request minus the quotes.
const MAX_STRING: u64 = MAX_REQUEST_SIZE_BYTES - 2;

/// `SchemaDeclType`: the declaration of a schema node, or `None` for a node CEL cannot see (no
/// type, or a list or map of such nodes). `is_root` marks the root of a resource (or an
/// embedded resource), which always has apiVersion, kind and metadata.name/generateName.
pub fn decl_of(schema: &Value, is_root: bool, name: &str) -> Option<Arc<Decl>> {
    if flag(schema, "x-kubernetes-int-or-string") {
        let max = match non_negative(schema, "maxLength") {
            Some(max) => max * 4,
            None => MAX_STRING,
        };
        return Some(scalar("dyn", Type::Dyn, 1, max));
    }
    match str_field(schema, "type") {
        "array" => {
            let items = schema.get("items").filter(|i| i.is_object())?;
            let item = decl_of(
                items,
                flag(items, "x-kubernetes-embedded-resource"),
                &format!("{name}.@idx"),
            )?;
            let max = match non_negative(schema, "maxItems") {
                Some(max) => max,
                None => (MAX_STRING) / (item.min_size + 1),
            };
            Some(Arc::new(Decl {
                name: "list".into(),
                shape: Shape::List(item),
                max_elements: max,
                min_size: 2,
            }))
        }
        "object" => {
            if let Some(values) = schema.get("additionalProperties").filter(|v| v.is_object()) {
                let value = decl_of(
                    values,
                    flag(values, "x-kubernetes-embedded-resource"),
                    &format!("{name}.@elem"),
                )?;
                let max = match non_negative(schema, "maxProperties") {
                    Some(max) => max,
                    None => MAX_STRING / (value.min_size + 6),
                };
                return Some(Arc::new(Decl {
                    name: "map".into(),
                    shape: Shape::Map(value),
                    max_elements: max,
                    min_size: 2,
                }));
            }
            Some(object_decl(schema, is_root, name))
        }
        "string" => Some(string_decl(schema)),
        "boolean" => Some(scalar("bool", Type::Bool, 4, 0)),
        "number" => Some(scalar("double", Type::Double, 1, 0)),
        "integer" => Some(scalar("int", Type::Int, 1, 0)),
        _ if is_root => Some(object_decl(schema, is_root, name)),
        _ => None,
    }
}

fn object_decl(schema: &Value, is_root: bool, name: &str) -> Arc<Decl> {
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|list| list.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut fields = BTreeMap::new();
    let mut min_size = 2;
    let properties = schema.get("properties").and_then(Value::as_object);
    for (property, prop_schema) in properties.into_iter().flatten() {
        if is_root && ["apiVersion", "kind", "metadata"].contains(&property.as_str()) {
            continue;
        }
        let embedded = flag(prop_schema, "x-kubernetes-embedded-resource");
        let Some(decl) = decl_of(prop_schema, embedded, &format!("{name}.{property}")) else {
            continue;
        };
        if required.contains(&property.as_str()) && prop_schema.get("default").is_none() {
            min_size += property.len() as u64 + decl.min_size + 4;
        }
        if let Some(escaped) = escape(property) {
            fields.insert(escaped, decl);
        }
    }
    if is_root {
        // WithTypeAndObjectMeta: what every resource has, whatever the schema says.
        fields.insert(
            "apiVersion".into(),
            scalar("string", Type::String, 2, MAX_STRING),
        );
        fields.insert("kind".into(), scalar("string", Type::String, 2, MAX_STRING));
        let mut meta = BTreeMap::new();
        meta.insert("name".into(), scalar("string", Type::String, 2, MAX_STRING));
        meta.insert(
            "generateName".into(),
            scalar("string", Type::String, 2, MAX_STRING),
        );
        fields.insert(
            "metadata".into(),
            Arc::new(Decl {
                name: format!("{name}.metadata"),
                shape: Shape::Object(meta),
                max_elements: 0,
                min_size: 2,
            }),
        );
    }
    Arc::new(Decl {
        name: name.to_string(),
        shape: Shape::Object(fields),
        max_elements: 0,
        min_size,
    })
}

fn string_decl(schema: &Value) -> Arc<Decl> {
    let max_length = non_negative(schema, "maxLength");
    match str_field(schema, "format") {
        "byte" => scalar("bytes", Type::Bytes, 2, max_length.unwrap_or(MAX_STRING)),
        "duration" => scalar("duration", Type::Duration, 4, 32),
        "date" => scalar("timestamp", Type::Timestamp, 12, 12),
        "date-time" => scalar("timestamp", Type::Timestamp, 21, 37),
        _ => {
            let enum_max = schema
                .get("enum")
                .and_then(Value::as_array)
                .filter(|values| !values.is_empty())
                .map(|values| {
                    values
                        .iter()
                        .filter_map(Value::as_str)
                        .map(|v| v.len() as u64)
                        .max()
                        .unwrap_or(0)
                });
            let max = match (max_length, enum_max) {
                (Some(max), _) => max * 4,
                (None, Some(longest)) => longest,
                (None, None) => MAX_STRING,
            };
            scalar("string", Type::String, 2, max)
        }
    }
}

/// CEL's escaping of property names (`apiservercel.Escape`): reserved words get `__x__`,
/// `_ . - /` are spelled out; names that still are no identifiers are not visible to CEL.
pub fn escape(name: &str) -> Option<String> {
    const RESERVED: &[&str] = &[
        "true",
        "false",
        "null",
        "in",
        "as",
        "break",
        "const",
        "continue",
        "else",
        "for",
        "function",
        "if",
        "import",
        "let",
        "loop",
        "package",
        "namespace",
        "return",
        "var",
        "void",
        "while",
    ];
    if RESERVED.contains(&name) {
        return Some(format!("__{name}__"));
    }
    let mut escaped = String::new();
    let chars: Vec<char> = name.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '_' && chars.get(i + 1) == Some(&'_') {
            escaped.push_str("__underscores__");
            i += 2;
            continue;
        }
        match c {
            '.' => escaped.push_str("__dot__"),
            '-' => escaped.push_str("__dash__"),
            '/' => escaped.push_str("__slash__"),
            c if c.is_ascii_alphanumeric() || c == '_' => escaped.push(c),
            _ => return None,
        }
        i += 1;
    }
    let first = escaped.chars().next()?;
    (first.is_ascii_alphabetic() || first == '_').then_some(escaped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn untyped_properties_are_invisible() {
        let schema = json!({"type": "object", "properties": {
            "a": {"type": "string"},
            "free": {"x-kubernetes-preserve-unknown-fields": true},
            "l": {"type": "array", "items": {"type": "string", "maxLength": 10}}
        }});
        let decl = decl_of(&schema, false, "self").expect("an object");
        assert!(decl.field("a").is_some());
        assert!(decl.field("free").is_none());
        let list = decl.field("l").expect("a list");
        assert_eq!(list.max_elements, MAX_STRING / 3);
        assert_eq!(list.element().map(|e| e.max_elements), Some(40));
        let root = decl_of(&json!({"type": "object"}), true, "self").expect("root");
        assert!(
            root.field("metadata")
                .and_then(|m| m.field("name"))
                .is_some()
        );
    }

    #[test]
    fn names_are_escaped() {
        assert_eq!(escape("in").as_deref(), Some("__in__"));
        assert_eq!(escape("a-b.c").as_deref(), Some("a__dash__b__dot__c"));
        assert_eq!(escape("a b"), None);
        assert_eq!(escape("1a"), None);
    }

    #[test]
    fn types_print_like_cel_go() {
        let t = Type::Map(
            Box::new(Type::String),
            Box::new(Type::List(Box::new(Type::Int))),
        );
        assert_eq!(t.to_string(), "map(string, list(int))");
        assert!(Type::Dyn.assignable(&Type::Int));
        assert!(!Type::String.assignable(&Type::Int));
    }
}
