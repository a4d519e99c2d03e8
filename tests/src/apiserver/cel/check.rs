//! A CEL type checker in the manner of cel-go's, for the variables Kubernetes declares for a
//! validation rule (`self`, `oldSelf`): undeclared identifiers, fields CEL cannot see, and
//! operators and functions applied to the wrong types, with cel-go's messages. Functions it
//! does not know are taken to return `dyn` (the stand-in then accepts what the real server may
//! refuse, never the other way round).

use std::collections::HashMap;
use std::sync::Arc;

use super::parse::{Comprehension, Expr, Kind, Literal};
use super::types::{Decl, Shape, Type};

/// One type error.
#[derive(Debug, Clone, PartialEq)]
pub struct TypeError {
    /// Character offset in the rule.
    pub offset: usize,
    /// cel-go's message, e.g. `undefined field 'sleep'`.
    pub message: String,
}

/// The checked rule.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The type of every node, by id.
    pub types: HashMap<usize, Type>,
    /// The errors, in the order found.
    pub errors: Vec<TypeError>,
    /// The rule's type.
    pub result: Type,
    /// Whether the rule reads `oldSelf`.
    pub uses_old_self: bool,
}

/// Checks `expr` with `self` (and `oldSelf`, optional when `optional_old_self`) of `root`.
pub fn check(expr: &Expr, root: &Arc<Decl>, optional_old_self: bool) -> Checked {
    let self_type = root.cel_type();
    let old_self_type = if optional_old_self {
        Type::Optional(Box::new(self_type.clone()))
    } else {
        self_type.clone()
    };
    let mut checker = Checker {
        types: HashMap::new(),
        errors: Vec::new(),
        scopes: vec![
            ("self".to_string(), self_type),
            ("oldSelf".to_string(), old_self_type),
        ],
        uses_old_self: false,
    };
    let result = checker.expr(expr);
    Checked {
        types: checker.types,
        errors: checker.errors,
        result,
        uses_old_self: checker.uses_old_self,
    }
}

struct Checker {
    types: HashMap<usize, Type>,
    errors: Vec<TypeError>,
    /// Variables, innermost last.
    scopes: Vec<(String, Type)>,
    uses_old_self: bool,
}

impl Checker {
    fn error(&mut self, offset: usize, message: String) -> Type {
        self.errors.push(TypeError { offset, message });
        Type::Error
    }

    fn expr(&mut self, expr: &Expr) -> Type {
        let t = self.infer(expr);
        self.types.insert(expr.id, t.clone());
        t
    }

    fn infer(&mut self, expr: &Expr) -> Type {
        match &expr.kind {
            Kind::Literal(literal) => literal_type(literal),
            Kind::Ident(name) => self.ident(expr.offset, name),
            Kind::Select {
                operand,
                field,
                test_only,
            } => {
                let operand_type = self.expr(operand);
                let field_type = self.select(expr.offset, &operand_type, field);
                if *test_only { Type::Bool } else { field_type }
            }
            Kind::Call {
                target,
                function,
                args,
            } => {
                let target_type = target.as_deref().map(|t| self.expr(t));
                let arg_types: Vec<Type> = args.iter().map(|a| self.expr(a)).collect();
                self.call(expr.offset, function, target_type, &arg_types)
            }
            Kind::List(items) => {
                let mut elem = Type::Dyn;
                for (index, item) in items.iter().enumerate() {
                    let t = self.expr(item);
                    if index == 0 {
                        elem = t;
                    } else if !t.assignable(&elem) {
                        elem = Type::Dyn;
                    }
                }
                Type::List(Box::new(elem))
            }
            Kind::Map(entries) => {
                let mut key = Type::Dyn;
                let mut value = Type::Dyn;
                for (index, (k, v)) in entries.iter().enumerate() {
                    let (kt, vt) = (self.expr(k), self.expr(v));
                    if index == 0 {
                        key = kt;
                        value = vt;
                    }
                }
                Type::Map(Box::new(key), Box::new(value))
            }
            Kind::Struct(_, fields) => {
                for (_, value) in fields {
                    self.expr(value);
                }
                Type::Dyn
            }
            Kind::Comprehension(comprehension) => self.comprehension(comprehension),
        }
    }

    fn ident(&mut self, offset: usize, name: &str) -> Type {
        if let Some((_, t)) = self.scopes.iter().rev().find(|(n, _)| n == name) {
            if name == "oldSelf" && self.scopes.iter().filter(|(n, _)| n == name).count() == 1 {
                self.uses_old_self = true;
            }
            return t.clone();
        }
        let type_name = match name {
            "bool" => Type::Bool,
            "int" => Type::Int,
            "uint" => Type::Uint,
            "double" => Type::Double,
            "string" => Type::String,
            "bytes" => Type::Bytes,
            "null_type" => Type::Null,
            "list" => Type::List(Box::new(Type::Dyn)),
            "map" => Type::Map(Box::new(Type::Dyn), Box::new(Type::Dyn)),
            "type" | "dyn" => Type::Dyn,
            // Namespaces of functions (`cel.bind` is a macro; others are calls).
            "cel" | "optional" | "strings" | "math" | "sets" | "lists" | "base64" => {
                return Type::Dyn;
            }
            _ => {
                return self.error(
                    offset,
                    format!("undeclared reference to '{name}' (in container '')"),
                );
            }
        };
        Type::TypeOf(Box::new(type_name))
    }

    fn select(&mut self, offset: usize, operand: &Type, field: &str) -> Type {
        match operand {
            Type::Object(decl) => match &decl.shape {
                Shape::Object(fields) => match fields.get(field) {
                    Some(field_decl) => field_decl.cel_type(),
                    None => self.error(offset, format!("undefined field '{field}'")),
                },
                _ => Type::Dyn,
            },
            Type::Map(_, value) => (**value).clone(),
            Type::Dyn | Type::Error => Type::Dyn,
            Type::Optional(inner) => Type::Optional(Box::new(self.select(offset, inner, field))),
            other => self.error(
                offset,
                format!("type '{other}' does not support field selection"),
            ),
        }
    }

    fn comprehension(&mut self, c: &Comprehension) -> Type {
        let range = self.expr(&c.range);
        let (first, second) = match &range {
            Type::List(elem) => match &c.iter_var2 {
                Some(_) => (Type::Int, (**elem).clone()),
                None => ((**elem).clone(), Type::Dyn),
            },
            Type::Map(key, value) => ((**key).clone(), (**value).clone()),
            t if t.is_dyn() => (Type::Dyn, Type::Dyn),
            other => {
                let other = other.clone();
                self.error(
                    c.range.offset,
                    format!(
                        "expression of type '{other}' cannot be range of a comprehension \
                         (must be list, map, or dynamic)"
                    ),
                );
                (Type::Error, Type::Error)
            }
        };
        let init = self.expr(&c.accu_init);
        let depth = self.scopes.len();
        self.scopes.push((c.accu_var.clone(), init.clone()));
        self.scopes.push((c.iter_var.clone(), first));
        if let Some(second_var) = &c.iter_var2 {
            self.scopes.push((second_var.clone(), second));
        }
        self.expr(&c.condition);
        let step = self.expr(&c.step);
        self.scopes.truncate(depth + 1);
        let accu = match (&init, &step) {
            (Type::List(_), Type::List(_)) => step.clone(),
            _ => init.clone(),
        };
        self.scopes[depth].1 = accu;
        let result = self.expr(&c.result);
        self.scopes.truncate(depth);
        match c.macro_name.as_str() {
            "all" | "exists" | "exists_one" | "existsOne" => Type::Bool,
            _ => result,
        }
    }

    fn call(&mut self, offset: usize, function: &str, target: Option<Type>, args: &[Type]) -> Type {
        if args
            .iter()
            .chain(target.iter())
            .any(|t| matches!(t, Type::Error))
        {
            return Type::Error;
        }
        let Some(overloads) = overloads(function, target.is_some()) else {
            return Type::Dyn;
        };
        let mut all: Vec<Type> = target.iter().cloned().collect();
        all.extend(args.iter().cloned());
        for (params, result) in &overloads {
            if let Some(result) = resolve(params, result, &all) {
                return result;
            }
        }
        let shown: Vec<String> = args.iter().map(Type::to_string).collect();
        let applied = match &target {
            Some(target) => format!("{target}.({})", shown.join(", ")),
            None => format!("({})", shown.join(", ")),
        };
        self.error(
            offset,
            format!("found no matching overload for '{function}' applied to '{applied}'"),
        )
    }
}

fn literal_type(literal: &Literal) -> Type {
    match literal {
        Literal::Int(_) => Type::Int,
        Literal::Uint(_) => Type::Uint,
        Literal::Double(_) => Type::Double,
        Literal::String(_) => Type::String,
        Literal::Bytes(_) => Type::Bytes,
        Literal::Bool(_) => Type::Bool,
        Literal::Null => Type::Null,
    }
}

/// A parameter or result of an overload: a concrete type or a type parameter.
#[derive(Debug, Clone)]
enum P {
    T(Type),
    A,
    B,
    ListA,
    MapAB,
    TypeA,
}

fn t(t: Type) -> P {
    P::T(t)
}

type Overload = (Vec<P>, P);

/// The overloads of `function` (receiver first for member calls), or `None` when it is unknown.
fn overloads(function: &str, member: bool) -> Option<Vec<Overload>> {
    use Type::*;
    let same = |types: &[Type], result: &dyn Fn(&Type) -> Type| -> Vec<Overload> {
        types
            .iter()
            .map(|x| (vec![t(x.clone()), t(x.clone())], t(result(x))))
            .collect()
    };
    let list_str = || Type::List(Box::new(String));
    let found: Vec<Overload> = match (function, member) {
        ("_==_" | "_!=_", false) => vec![(vec![P::A, P::A], t(Bool))],
        ("_<_" | "_<=_" | "_>_" | "_>=_", false) => {
            let mut all = same(
                &[Bool, Int, Uint, Double, String, Bytes, Timestamp, Duration],
                &|_| Bool,
            );
            for (a, b) in [
                (Int, Uint),
                (Int, Double),
                (Uint, Int),
                (Uint, Double),
                (Double, Int),
                (Double, Uint),
            ] {
                all.push((vec![t(a), t(b)], t(Bool)));
            }
            all
        }
        ("_+_", false) => {
            let mut all = same(&[Int, Uint, Double, String, Bytes, Duration], &|x| {
                x.clone()
            });
            all.push((vec![P::ListA, P::ListA], P::ListA));
            all.push((vec![t(Timestamp), t(Duration)], t(Timestamp)));
            all.push((vec![t(Duration), t(Timestamp)], t(Timestamp)));
            all
        }
        ("_-_", false) => {
            let mut all = same(&[Int, Uint, Double, Duration], &|x| x.clone());
            all.push((vec![t(Timestamp), t(Timestamp)], t(Duration)));
            all.push((vec![t(Timestamp), t(Duration)], t(Timestamp)));
            all
        }
        ("_*_" | "_/_", false) => same(&[Int, Uint, Double], &|x| x.clone()),
        ("_%_", false) => same(&[Int, Uint], &|x| x.clone()),
        ("-_", false) => vec![(vec![t(Int)], t(Int)), (vec![t(Double)], t(Double))],
        ("!_" | "@not_strictly_false", false) => vec![(vec![t(Bool)], t(Bool))],
        ("_&&_" | "_||_", false) => vec![(vec![t(Bool), t(Bool)], t(Bool))],
        ("_?_:_", false) => vec![(vec![t(Bool), P::A, P::A], P::A)],
        ("@in", false) => vec![
            (vec![P::A, P::ListA], t(Bool)),
            (vec![P::A, P::MapAB], t(Bool)),
        ],
        ("_[_]", false) => vec![(vec![P::ListA, t(Int)], P::A), (vec![P::MapAB, P::A], P::B)],
        ("size", _) => vec![
            (vec![t(String)], t(Int)),
            (vec![t(Bytes)], t(Int)),
            (vec![P::ListA], t(Int)),
            (vec![P::MapAB], t(Int)),
        ],
        ("contains" | "startsWith" | "endsWith" | "matches", true) => {
            vec![(vec![t(String), t(String)], t(Bool))]
        }
        ("matches", false) => vec![(vec![t(String), t(String)], t(Bool))],
        ("charAt", true) => vec![(vec![t(String), t(Int)], t(String))],
        ("indexOf" | "lastIndexOf", true) => vec![
            (vec![t(String), t(String)], t(Int)),
            (vec![t(String), t(String), t(Int)], t(Int)),
            (vec![P::ListA, P::A], t(Int)),
        ],
        ("lowerAscii" | "upperAscii" | "trim" | "reverse", true) => {
            vec![(vec![t(String)], t(String))]
        }
        ("replace", true) => vec![
            (vec![t(String), t(String), t(String)], t(String)),
            (vec![t(String), t(String), t(String), t(Int)], t(String)),
        ],
        ("split", true) => vec![
            (vec![t(String), t(String)], t(list_str())),
            (vec![t(String), t(String), t(Int)], t(list_str())),
        ],
        ("substring", true) => vec![
            (vec![t(String), t(Int)], t(String)),
            (vec![t(String), t(Int), t(Int)], t(String)),
        ],
        ("join", true) => vec![
            (vec![t(list_str())], t(String)),
            (vec![t(list_str()), t(String)], t(String)),
        ],
        ("isSorted", true) => vec![(vec![P::ListA], t(Bool))],
        ("sum" | "min" | "max", true) => vec![(vec![P::ListA], P::A)],
        ("find", true) => vec![(vec![t(String), t(String)], t(String))],
        ("findAll", true) => vec![
            (vec![t(String), t(String)], t(list_str())),
            (vec![t(String), t(String), t(Int)], t(list_str())),
        ],
        ("int", false) => [Int, Uint, Double, String, Timestamp]
            .into_iter()
            .map(|x| (vec![t(x)], t(Int)))
            .collect(),
        ("uint", false) => [Int, Uint, Double, String]
            .into_iter()
            .map(|x| (vec![t(x)], t(Uint)))
            .collect(),
        ("double", false) => [Int, Uint, Double, String]
            .into_iter()
            .map(|x| (vec![t(x)], t(Double)))
            .collect(),
        ("string", false) => [Int, Uint, Double, String, Bytes, Bool, Timestamp, Duration]
            .into_iter()
            .map(|x| (vec![t(x)], t(String)))
            .collect(),
        ("bytes", false) => vec![(vec![t(String)], t(Bytes)), (vec![t(Bytes)], t(Bytes))],
        ("bool", false) => vec![(vec![t(Bool)], t(Bool)), (vec![t(String)], t(Bool))],
        ("duration", false) => vec![
            (vec![t(String)], t(Duration)),
            (vec![t(Duration)], t(Duration)),
        ],
        ("timestamp", false) => vec![
            (vec![t(String)], t(Timestamp)),
            (vec![t(Timestamp)], t(Timestamp)),
            (vec![t(Int)], t(Timestamp)),
        ],
        ("dyn", false) => vec![(vec![P::A], t(Dyn))],
        ("type", false) => vec![(vec![P::A], P::TypeA)],
        _ => return None,
    };
    Some(found)
}

/// Matches `args` against one overload, binding the type parameters; the result type.
fn resolve(params: &[P], result: &P, args: &[Type]) -> Option<Type> {
    if params.len() != args.len() {
        return None;
    }
    let mut a: Option<Type> = None;
    let mut b: Option<Type> = None;
    let bind = |slot: &mut Option<Type>, actual: &Type| -> bool {
        match slot {
            None => {
                *slot = Some(actual.clone());
                true
            }
            Some(bound) if actual.assignable(bound) => {
                *slot = Some(bound.join(actual));
                true
            }
            Some(_) => false,
        }
    };
    for (param, actual) in params.iter().zip(args) {
        let ok = match (param, actual) {
            (_, actual) if actual.is_dyn() => true,
            (P::T(expected), actual) => actual.assignable(expected),
            (P::A, actual) => bind(&mut a, actual),
            (P::B, actual) => bind(&mut b, actual),
            (P::ListA, Type::List(elem)) => bind(&mut a, elem),
            (P::MapAB, Type::Map(key, value)) => bind(&mut a, key) && bind(&mut b, value),
            (P::TypeA, _) => true,
            _ => false,
        };
        if !ok {
            return None;
        }
    }
    let a = a.unwrap_or(Type::Dyn);
    let b = b.unwrap_or(Type::Dyn);
    Some(match result {
        P::T(t) => t.clone(),
        P::A => a,
        P::B => b,
        P::ListA => Type::List(Box::new(a)),
        P::MapAB => Type::Map(Box::new(a), Box::new(b)),
        P::TypeA => Type::TypeOf(Box::new(a)),
    })
}

#[cfg(test)]
mod tests {
    use super::super::parse::parse;
    use super::super::types::decl_of;
    use super::*;
    use serde_json::json;

    fn errors(rule: &str) -> Vec<TypeError> {
        let schema = json!({"type": "object", "properties": {
            "a": {"type": "string"},
            "n": {"type": "integer"},
            "free": {"x-kubernetes-preserve-unknown-fields": true},
            "l": {"type": "array", "items": {"type": "string"}},
            "m": {"type": "object", "additionalProperties": {"type": "integer"}}
        }});
        let root = decl_of(&schema, false, "selfType").expect("decl");
        let expr = parse(rule).expect("parses");
        check(&expr, &root, false).errors
    }

    #[test]
    fn well_typed_rules_pass() {
        for rule in [
            "self.a == 'x' && self.n > 1.5",
            "has(self.a) ? self.a.startsWith('x') : true",
            "self.l.all(x, x.size() < 5) && self.m.exists(k, self.m[k] > 0)",
            "size(self.l) <= 3 && 'a' in self.l && self.m.b == 2",
            "type(self.n) == int && self.l.map(x, x + '!').size() == 1",
            "!has(self.a) || !has(self.n)",
        ] {
            assert_eq!(errors(rule), vec![], "{rule}");
        }
    }

    #[test]
    fn errors_read_like_cel_go() {
        assert_eq!(
            errors("self.free == 1"),
            vec![TypeError {
                offset: 4,
                message: "undefined field 'free'".into()
            }]
        );
        assert_eq!(
            errors("self.a > 5")[0].message,
            "found no matching overload for '_>_' applied to '(string, int)'"
        );
        assert_eq!(
            errors("foo.a == 1")[0].message,
            "undeclared reference to 'foo' (in container '')"
        );
        assert_eq!(
            errors("self.a.startsWith(1)")[0].message,
            "found no matching overload for 'startsWith' applied to 'string.(int)'"
        );
        assert_eq!(
            errors("self.n.x == 1")[0].message,
            "type 'int' does not support field selection"
        );
    }
}
