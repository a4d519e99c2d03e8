//! The static cost estimate of a rule, modelled on cel-go's `checker.Cost` with the size
//! estimator Kubernetes plugs in (sizes from the schema's maxItems / maxProperties / maxLength,
//! or from the request size limit) and presence tests free, as Kubernetes configures it. Only
//! the maximum is estimated; it decides whether a rule is over budget.

use std::collections::HashMap;
use std::sync::Arc;

use super::check::Checked;
use super::parse::{Comprehension, Expr, Kind, Literal};
use super::types::{Decl, Type};

const SELECT_AND_IDENT_COST: u64 = 1;
const CREATE_LIST_BASE_COST: u64 = 10;
const CREATE_MAP_BASE_COST: u64 = 30;
const CREATE_MESSAGE_BASE_COST: u64 = 40;
const STRING_TRAVERSAL_COST_FACTOR: f64 = 0.1;
const REGEX_STRING_LENGTH_COST_FACTOR: f64 = 0.25;
/// A size nothing bounds.
const UNKNOWN: u64 = u64::MAX;

/// The largest cost `expr` can have.
pub fn estimate(expr: &Expr, checked: &Checked, root: &Arc<Decl>) -> u64 {
    let mut coster = Coster {
        types: &checked.types,
        root,
        paths: HashMap::new(),
        sizes: HashMap::new(),
        locals: Vec::new(),
    };
    coster.cost(expr)
}

struct Local {
    name: String,
    path: Vec<String>,
    size: Option<u64>,
}

struct Coster<'a> {
    types: &'a HashMap<usize, Type>,
    root: &'a Arc<Decl>,
    /// Field paths from a variable (`self`, then fields, `@items`, `@values`, `@keys`).
    paths: HashMap<usize, Vec<String>>,
    /// Sizes of call results.
    sizes: HashMap<usize, u64>,
    locals: Vec<Local>,
}

fn factor(size: u64, cost_per_unit: f64) -> u64 {
    let product = (size as f64) * cost_per_unit;
    if product >= u64::MAX as f64 {
        return u64::MAX;
    }
    product.ceil() as u64
}

impl Coster<'_> {
    fn type_of(&self, expr: &Expr) -> Type {
        self.types.get(&expr.id).cloned().unwrap_or(Type::Dyn)
    }

    fn local(&self, name: &str) -> Option<&Local> {
        self.locals.iter().rev().find(|l| l.name == name)
    }

    fn path(&self, expr: &Expr) -> Vec<String> {
        if let Kind::Ident(name) = &expr.kind
            && let Some(local) = self.local(name)
        {
            return local.path.clone();
        }
        self.paths.get(&expr.id).cloned().unwrap_or_default()
    }

    /// cel-go's `computeSize`: a call's result size, a literal's size, the schema's bound for
    /// the node's path, one for scalars, or a local variable's size.
    fn size(&self, expr: &Expr) -> Option<u64> {
        if let Some(size) = self.sizes.get(&expr.id) {
            return Some(*size);
        }
        if let Kind::Literal(literal) = &expr.kind {
            return Some(match literal {
                Literal::String(s) => s.chars().count() as u64,
                Literal::Bytes(b) => b.len() as u64,
                _ => 1,
            });
        }
        let path = self.path(expr);
        if let Some(size) = self.schema_size(&path) {
            return Some(size);
        }
        if self.type_of(expr).is_scalar() {
            return Some(1);
        }
        if let Kind::Ident(name) = &expr.kind {
            return self.local(name).and_then(|l| l.size);
        }
        None
    }

    fn size_or_unknown(&self, expr: &Expr) -> u64 {
        self.size(expr).unwrap_or(UNKNOWN)
    }

    /// Kubernetes' size estimator: the declaration reached by the path's fields, items and
    /// values, and its maximum number of elements. Like Kubernetes', it skips the path's first
    /// element whatever it names (a type name or an accumulator sizes as `self`).
    fn schema_size(&self, path: &[String]) -> Option<u64> {
        let (_, rest) = path.split_first()?;
        let mut node = Arc::clone(self.root);
        for step in rest {
            node = match step.as_str() {
                "@items" | "@values" => Arc::clone(node.element()?),
                "@keys" => return Some(0),
                field => Arc::clone(node.field(field)?),
            };
        }
        Some(node.max_elements)
    }

    fn cost(&mut self, expr: &Expr) -> u64 {
        match &expr.kind {
            Kind::Literal(_) => 0,
            Kind::Ident(name) => {
                let path = match self.local(name) {
                    Some(local) => local.path.clone(),
                    None => vec![name.clone()],
                };
                self.paths.insert(expr.id, path);
                SELECT_AND_IDENT_COST
            }
            Kind::Select {
                operand,
                field,
                test_only,
            } => {
                let mut sum = self.cost(operand);
                if !test_only
                    && matches!(
                        self.type_of(operand),
                        Type::Map(..) | Type::Object(_) | Type::Optional(_)
                    )
                {
                    sum = sum.saturating_add(SELECT_AND_IDENT_COST);
                }
                let mut path = self.path(operand);
                path.push(field.clone());
                self.paths.insert(expr.id, path);
                sum
            }
            Kind::Call {
                target,
                function,
                args,
            } => self.call(expr, target.as_deref(), function, args),
            Kind::List(items) => {
                let sum = items
                    .iter()
                    .fold(0u64, |s, i| s.saturating_add(self.cost(i)));
                sum.saturating_add(CREATE_LIST_BASE_COST)
            }
            Kind::Map(entries) => {
                let sum = entries.iter().fold(0u64, |s, (k, v)| {
                    s.saturating_add(self.cost(k)).saturating_add(self.cost(v))
                });
                sum.saturating_add(CREATE_MAP_BASE_COST)
            }
            Kind::Struct(_, fields) => {
                let sum = fields
                    .iter()
                    .fold(0u64, |s, (_, v)| s.saturating_add(self.cost(v)));
                sum.saturating_add(CREATE_MESSAGE_BASE_COST)
            }
            Kind::Comprehension(c) => self.comprehension(expr, c),
        }
    }

    fn comprehension(&mut self, expr: &Expr, c: &Comprehension) -> u64 {
        if c.macro_name == "bind" {
            let mut sum = self.cost(&c.range).saturating_add(self.cost(&c.accu_init));
            let local = Local {
                name: c.accu_var.clone(),
                path: self.path(&c.accu_init),
                size: self.size(&c.accu_init),
            };
            self.locals.push(local);
            sum = sum.saturating_add(self.cost(&c.result));
            self.locals.pop();
            if let Some(size) = self.size(&c.result) {
                self.sizes.insert(expr.id, size);
            }
            return sum;
        }
        let mut sum = self.cost(&c.range).saturating_add(self.cost(&c.accu_init));
        let accu = Local {
            name: c.accu_var.clone(),
            path: self.path(&c.accu_init),
            size: self.size(&c.accu_init),
        };
        self.locals.push(accu);
        let range_path = self.path(&c.range);
        let is_list = matches!(self.type_of(&c.range), Type::List(_));
        let push_var = |coster: &mut Self, name: &str, sub: &str| {
            let mut path = range_path.clone();
            path.push(sub.into());
            coster.locals.push(Local {
                name: name.into(),
                path,
                size: None,
            });
        };
        match &c.iter_var2 {
            Some(second) => {
                push_var(
                    self,
                    &c.iter_var,
                    if is_list { "@indices" } else { "@keys" },
                );
                push_var(self, second, if is_list { "@items" } else { "@values" });
            }
            None => push_var(self, &c.iter_var, if is_list { "@items" } else { "@keys" }),
        }
        let loop_cost = self.cost(&c.condition);
        let step_cost = self.cost(&c.step);
        self.locals.pop();
        if c.iter_var2.is_some() {
            self.locals.pop();
        }
        sum = sum.saturating_add(self.cost(&c.result));
        self.locals.pop();
        let range_count = self.size_or_unknown(&c.range);
        sum = sum.saturating_add(range_count.saturating_mul(step_cost.saturating_add(loop_cost)));
        match &c.accu_init.kind {
            Kind::Literal(_) => {
                if let Some(size) = self.size(&c.accu_init) {
                    self.sizes.insert(expr.id, size);
                }
            }
            Kind::List(_) | Kind::Map(_) => {
                self.sizes.insert(expr.id, range_count);
            }
            _ => {}
        }
        sum
    }

    fn call(&mut self, expr: &Expr, target: Option<&Expr>, function: &str, args: &[Expr]) -> u64 {
        if function == "dyn" && target.is_none() && args.len() == 1 {
            let cost = self.cost(&args[0]);
            if let Some(size) = self.size(&args[0]) {
                self.sizes.insert(expr.id, size);
            }
            return cost.saturating_add(1);
        }
        let arg_costs: Vec<u64> = args.iter().map(|a| self.cost(a)).collect();
        let arg_sum = arg_costs.iter().fold(0u64, |s, c| s.saturating_add(*c));
        let target_cost = target.map(|t| self.cost(t)).unwrap_or(0);
        let size = |coster: &Self, e: &Expr| coster.size_or_unknown(e);
        let function_cost = match (function, target) {
            ("_&&_" | "_||_", None) => arg_sum,
            ("_?_:_", None) if args.len() == 3 => {
                let result = size(self, &args[1]).max(size(self, &args[2]));
                self.sizes.insert(expr.id, result);
                arg_costs[0].saturating_add(arg_costs[1].max(arg_costs[2]))
            }
            ("_==_" | "_!=_", None) if args.len() == 2 => {
                let smallest = size(self, &args[0]).min(size(self, &args[1]));
                factor(smallest, STRING_TRAVERSAL_COST_FACTOR).saturating_add(arg_sum)
            }
            ("_<_" | "_<=_" | "_>_" | "_>=_", None)
                if args.len() == 2
                    && matches!(self.type_of(&args[0]), Type::String | Type::Bytes) =>
            {
                let smallest = size(self, &args[0]).min(size(self, &args[1]));
                factor(smallest, STRING_TRAVERSAL_COST_FACTOR).saturating_add(arg_sum)
            }
            ("_+_", None)
                if args.len() == 2
                    && matches!(
                        self.type_of(expr),
                        Type::String | Type::Bytes | Type::List(_)
                    ) =>
            {
                let total = size(self, &args[0]).saturating_add(size(self, &args[1]));
                self.sizes.insert(expr.id, total);
                match self.type_of(expr) {
                    Type::List(_) => arg_sum.saturating_add(1),
                    _ => factor(total, STRING_TRAVERSAL_COST_FACTOR).saturating_add(arg_sum),
                }
            }
            ("@in", None) if args.len() == 2 && matches!(self.type_of(&args[1]), Type::List(_)) => {
                size(self, &args[1]).saturating_add(arg_sum)
            }
            ("_[_]", None) if args.len() == 2 => {
                let sub = match self.type_of(&args[0]) {
                    Type::List(_) => "@items",
                    _ => "@values",
                };
                let mut path = self.path(&args[0]);
                path.push(sub.into());
                self.paths.insert(expr.id, path);
                arg_sum.saturating_add(1)
            }
            ("startsWith" | "endsWith", Some(_)) if args.len() == 1 => {
                factor(size(self, &args[0]), STRING_TRAVERSAL_COST_FACTOR).saturating_add(arg_sum)
            }
            ("matches", Some(t)) if args.len() == 1 => {
                let text = factor(
                    size(self, t).saturating_add(1),
                    STRING_TRAVERSAL_COST_FACTOR,
                );
                let regex = factor(size(self, &args[0]), REGEX_STRING_LENGTH_COST_FACTOR);
                text.saturating_mul(regex).saturating_add(arg_sum)
            }
            ("matches", None) if args.len() == 2 => {
                let text = factor(
                    size(self, &args[0]).saturating_add(1),
                    STRING_TRAVERSAL_COST_FACTOR,
                );
                let regex = factor(size(self, &args[1]), REGEX_STRING_LENGTH_COST_FACTOR);
                text.saturating_mul(regex).saturating_add(arg_sum)
            }
            ("contains", Some(t)) if args.len() == 1 => {
                let text = factor(size(self, t), STRING_TRAVERSAL_COST_FACTOR);
                let sub = factor(size(self, &args[0]), STRING_TRAVERSAL_COST_FACTOR);
                text.saturating_mul(sub).saturating_add(arg_sum)
            }
            ("lowerAscii" | "upperAscii" | "substring" | "trim", Some(t)) => {
                let text = size(self, t);
                self.sizes.insert(expr.id, text);
                factor(text, STRING_TRAVERSAL_COST_FACTOR).saturating_add(arg_sum)
            }
            ("isSorted" | "sum" | "min" | "max" | "indexOf" | "lastIndexOf", Some(t))
                if matches!(self.type_of(t), Type::List(_)) =>
            {
                size(self, t).saturating_add(arg_sum)
            }
            _ => arg_sum.saturating_add(1),
        };
        target_cost.saturating_add(function_cost)
    }
}

#[cfg(test)]
mod tests {
    use super::super::check::check;
    use super::super::parse::parse;
    use super::super::types::decl_of;
    use super::*;
    use serde_json::json;

    fn cost(rule: &str, schema: serde_json::Value) -> u64 {
        let root = decl_of(&schema, false, "selfType").expect("decl");
        let expr = parse(rule).expect("parses");
        let checked = check(&expr, &root, false);
        assert!(checked.errors.is_empty(), "{:?}", checked.errors);
        estimate(&expr, &checked, &root)
    }

    #[test]
    fn simple_rules_cost_what_kubernetes_estimates() {
        let schema = json!({"type": "object", "properties": {"a": {"type": "integer"}}});
        // has() is free, a select costs one, `!=` on integers nothing more.
        assert_eq!(cost("!has(self.a) || self.a != 0", schema.clone()), 4);
        assert_eq!(cost("self.a < 5", schema), 3);
    }

    #[test]
    fn nested_loops_over_unbounded_lists_are_huge() {
        let schema = json!({"type": "object", "properties": {
            "l": {"type": "array", "items": {"type": "string"}},
            "b": {"type": "array", "maxItems": 10, "items": {"type": "string", "maxLength": 5}}
        }});
        assert!(cost("self.l.all(x, self.l.all(y, x == y))", schema.clone()) > 1_000_000_000);
        assert!(cost("self.b.all(x, self.b.all(y, x == y))", schema) < 10_000);
    }
}
