//! Server-side apply: field ownership per manager (metadata.managedFields), apply and conflicts.
//!
//! A schema-less port of what kube-apiserver does with sigs.k8s.io/structured-merge-diff:
//!
//! * Ownership is kept per managedFields entry. An entry is identified by (manager, "Apply",
//!   subresource) for appliers and (manager, "Update", apiVersion, subresource) for updaters,
//!   as the apiserver's manager identifier does.
//! * A field set is a set of paths. Path elements are `f:<field>`, `k:{"<key>":<value>}` for an
//!   item of a keyed list, `v:<json>` for an item of a set of primitives and `i:<n>` (read only);
//!   fieldsV1 is the trie of those paths, with `".": {}` marking a node that has children and is
//!   itself in the set.
//! * Lists are keyed by [`super::patch::merge_key`] when every element has that key (and no key
//!   repeats), sets of primitives for `finalizers`; every other list is atomic (one leaf).
//! * Only these fields are tracked: everything but `apiVersion`, `kind`, `metadata` and
//!   `status` for the main resource, and under `metadata` only `labels`, `annotations`,
//!   `finalizers` and `ownerReferences`; only `status` for the `status` subresource. The
//!   nodes `.metadata`, `.spec`, `.status`, `.spec.template`, `.spec.template.metadata`,
//!   `.spec.template.spec` and the `containers` lists of `.spec` and `.spec.template.spec`
//!   exist in every empty object of the served kinds and are never owned as nodes (the
//!   apiserver compares against an empty typed object, which has them).
//!
//! kubectl's own migration of client-side apply entries (a JSON patch of managedFields before
//! `apply --server-side`) works because [`record_update`] keeps managedFields a write sets.
//!
//! Not modelled: the cap of 10 Update managers ("ancient-changes"), version conversion of
//! field sets, unions, and list-type/map-type information beyond the merge key table (maps are
//! always granular, unknown lists atomic).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde_json::{Map, Value};

use super::patch::{MergeKey, merge_key};

/// The manager the apiserver credits with every field of an object that has no managedFields
/// when it is first applied to.
pub const BEFORE_FIRST_APPLY: &str = "before-first-apply";

/// The manager `kubectl apply --server-side` uses by default; the apiserver treats it specially
/// when the object carries a client-side apply annotation.
const KUBECTL: &str = "kubectl";
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

const OP_APPLY: &str = "Apply";
const OP_UPDATE: &str = "Update";

/// A conflict: another manager owns a field the applier sets to a different value.
#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    /// The other manager's name.
    pub manager: String,
    /// The field, as structured-merge-diff prints paths: `.spec.replicas`,
    /// `.spec.containers[name="a"].image`, `.metadata.finalizers[="x"]`.
    pub field: String,
    /// The operation of the other manager's managedFields entry: "Apply" or "Update".
    pub operation: String,
    /// The apiVersion of the other manager's entry ("" = use the one given to
    /// [`conflict_message`]). Printed as `using <apiVersion>` for Update managers only.
    pub api_version: String,
    /// The subresource of the other manager's entry, if any.
    pub subresource: Option<String>,
}

impl Conflict {
    /// A conflict with an Update manager of the main resource, at the object's apiVersion.
    pub fn new(manager: impl Into<String>, field: impl Into<String>) -> Self {
        Conflict {
            manager: manager.into(),
            field: field.into(),
            operation: OP_UPDATE.to_string(),
            api_version: String::new(),
            subresource: None,
        }
    }
}

/// The manager as the apiserver prints it in conflict messages (`printManager`):
/// `"name"`, `"name" with subresource "status"`, then ` using <apiVersion>` for Update managers.
fn print_manager(c: &Conflict, api_version: &str) -> String {
    let mut s = quote(&c.manager);
    if let Some(sub) = c.subresource.as_deref().filter(|s| !s.is_empty()) {
        s.push_str(" with subresource ");
        s.push_str(&quote(sub));
    }
    if c.operation == OP_UPDATE {
        let v = if c.api_version.is_empty() {
            api_version
        } else {
            &c.api_version
        };
        s.push_str(" using ");
        s.push_str(v);
    }
    s
}

fn quote(s: &str) -> String {
    Value::String(s.to_string()).to_string()
}

/// The apiserver's manager identifier (a JSON ManagedFieldsEntry without time and fields, and
/// without apiVersion for appliers); conflicts are grouped and sorted by it.
fn manager_identifier(c: &Conflict) -> String {
    let mut s = format!(
        "{{\"manager\":{},\"operation\":{}",
        quote(&c.manager),
        quote(&c.operation)
    );
    if c.operation != OP_APPLY && !c.api_version.is_empty() {
        s.push_str(&format!(",\"apiVersion\":{}", quote(&c.api_version)));
    }
    if let Some(sub) = c.subresource.as_deref().filter(|s| !s.is_empty()) {
        s.push_str(&format!(",\"subresource\":{}", quote(sub)));
    }
    s.push('}');
    s
}

/// The message of one `FieldManagerConflict` cause of the 409 Status, e.g.
/// `conflict with "kubectl-client-side-apply" using v1` (the cause's `field` is
/// [`Conflict::field`]).
pub fn conflict_cause(conflict: &Conflict, api_version: &str) -> String {
    format!("conflict with {}", print_manager(conflict, api_version))
}

/// The Status message a real kube-apiserver returns for a 409 apply conflict:
/// `Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using v1: .spec.replicas`,
/// and for several, grouped by manager (sorted by the apiserver's manager identifier), in the
/// given order within a manager:
/// `Apply failed with 2 conflicts: conflicts with "mgr" using v1:\n- .spec.a\n- .spec.b`.
/// `api_version` is used for Update managers whose [`Conflict::api_version`] is empty.
pub fn conflict_message(conflicts: &[Conflict], api_version: &str) -> String {
    if let [c] = conflicts {
        return format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            print_manager(c, api_version),
            c.field
        );
    }
    let mut groups: BTreeMap<String, (String, Vec<&str>)> = BTreeMap::new();
    for c in conflicts {
        groups
            .entry(manager_identifier(c))
            .or_insert_with(|| (print_manager(c, api_version), Vec::new()))
            .1
            .push(&c.field);
    }
    let mut lines = Vec::new();
    for (printed, fields) in groups.values() {
        lines.push(format!("conflicts with {printed}:"));
        for f in fields {
            lines.push(format!("- {f}"));
        }
    }
    format!(
        "Apply failed with {} conflicts: {}",
        conflicts.len(),
        lines.join("\n")
    )
}

// ---------------------------------------------------------------------------------------------
// Paths and field sets

/// One step of a field path. The derived order (fields, keys, values, indexes) is
/// structured-merge-diff's.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Pe {
    Field(String),
    /// Key fields sorted by name, values as canonical JSON text.
    Key(Vec<(String, String)>),
    /// Canonical JSON text of the value.
    Value(String),
    Index(usize),
}

type Path = Vec<Pe>;
type FieldSet = BTreeSet<Path>;

impl Pe {
    fn serialize(&self) -> String {
        match self {
            Pe::Field(f) => format!("f:{f}"),
            Pe::Key(fields) => {
                let inner: Vec<String> = fields
                    .iter()
                    .map(|(n, v)| format!("{}:{v}", quote(n)))
                    .collect();
                format!("k:{{{}}}", inner.join(","))
            }
            Pe::Value(v) => format!("v:{v}"),
            Pe::Index(i) => format!("i:{i}"),
        }
    }

    fn parse(s: &str) -> Option<Pe> {
        if let Some(f) = s.strip_prefix("f:") {
            return Some(Pe::Field(f.to_string()));
        }
        if let Some(k) = s.strip_prefix("k:") {
            let Value::Object(m) = serde_json::from_str::<Value>(k).ok()? else {
                return None;
            };
            let mut fields: Vec<(String, String)> =
                m.iter().map(|(n, v)| (n.clone(), canonical(v))).collect();
            fields.sort();
            return Some(Pe::Key(fields));
        }
        if let Some(v) = s.strip_prefix("v:") {
            return Some(Pe::Value(canonical(
                &serde_json::from_str::<Value>(v).ok()?,
            )));
        }
        if let Some(i) = s.strip_prefix("i:") {
            return i.parse().ok().map(Pe::Index);
        }
        None
    }

    /// structured-merge-diff's `PathElement.String()`.
    fn display(&self) -> String {
        match self {
            Pe::Field(f) => format!(".{f}"),
            Pe::Key(fields) => {
                let inner: Vec<String> = fields.iter().map(|(n, v)| format!("{n}={v}")).collect();
                format!("[{}]", inner.join(","))
            }
            Pe::Value(v) => format!("[={v}]"),
            Pe::Index(i) => format!("[{i}]"),
        }
    }

    /// Whether list item `v` is the one this element selects.
    fn selects(&self, index: usize, v: &Value) -> bool {
        match self {
            Pe::Key(fields) => v.as_object().is_some_and(|m| {
                fields
                    .iter()
                    .all(|(n, want)| m.get(n).is_some_and(|got| canonical(got) == *want))
            }),
            Pe::Value(want) => canonical(v) == *want,
            Pe::Index(i) => *i == index,
            Pe::Field(_) => false,
        }
    }
}

fn path_string(path: &[Pe]) -> String {
    path.iter().map(Pe::display).collect()
}

/// JSON text with object keys sorted, so equal values give equal text.
fn canonical(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .into_iter()
                .map(|k| {
                    format!(
                        "{}:{}",
                        quote(k),
                        m.get(k).map(canonical).unwrap_or_default()
                    )
                })
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(canonical).collect::<Vec<_>>().join(",")
        ),
        other => other.to_string(),
    }
}

fn set_to_fields_v1(set: &FieldSet) -> Value {
    #[derive(Default)]
    struct Node {
        member: bool,
        children: BTreeMap<Pe, Node>,
    }
    fn to_value(n: &Node) -> Value {
        let mut m = Map::new();
        if n.member && !n.children.is_empty() {
            m.insert(".".to_string(), Value::Object(Map::new()));
        }
        for (pe, child) in &n.children {
            m.insert(pe.serialize(), to_value(child));
        }
        Value::Object(m)
    }
    let mut root = Node::default();
    for path in set {
        let mut node = &mut root;
        for pe in path {
            node = node.children.entry(pe.clone()).or_default();
        }
        node.member = true;
    }
    to_value(&root)
}

fn fields_v1_to_set(v: &Value) -> FieldSet {
    fn walk(v: &Value, path: &mut Path, set: &mut FieldSet) {
        let Some(m) = v.as_object() else { return };
        for (k, child) in m {
            if k == "." {
                if !path.is_empty() {
                    set.insert(path.clone());
                }
                continue;
            }
            let Some(pe) = Pe::parse(k) else { continue };
            path.push(pe);
            match child.as_object() {
                Some(c) if c.is_empty() => {
                    set.insert(path.clone());
                }
                Some(_) => walk(child, path, set),
                None => {}
            }
            path.pop();
        }
    }
    let mut set = FieldSet::new();
    walk(v, &mut Vec::new(), &mut set);
    set
}

/// Node paths that exist in every empty object of the served kinds; never owned as nodes.
fn is_struct_node(path: &[Pe]) -> bool {
    const NODES: &[&[&str]] = &[
        &["metadata"],
        &["spec"],
        &["status"],
        &["spec", "template"],
        &["spec", "template", "metadata"],
        &["spec", "template", "spec"],
        &["spec", "containers"],
        &["spec", "template", "spec", "containers"],
    ];
    NODES.iter().any(|n| {
        n.len() == path.len()
            && n.iter()
                .zip(path)
                .all(|(want, pe)| matches!(pe, Pe::Field(f) if f == want))
    })
}

fn strip_struct_nodes(set: &mut FieldSet) {
    set.retain(|p| !is_struct_node(p));
}

// ---------------------------------------------------------------------------------------------
// Structure of values

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListKind {
    Keyed(&'static str),
    Set,
    Atomic,
}

fn is_scalar(v: &Value) -> bool {
    !matches!(v, Value::Object(_) | Value::Array(_))
}

/// How the list `field` is treated, given every list value that takes part.
fn list_kind(field: &str, lists: &[&[Value]]) -> ListKind {
    let kind = match merge_key(field) {
        Some(MergeKey::Field(k)) => {
            let keyed = lists.iter().flat_map(|l| l.iter()).all(|item| {
                item.as_object()
                    .and_then(|m| m.get(k))
                    .is_some_and(|v| is_scalar(v) && !v.is_null())
            });
            if keyed {
                ListKind::Keyed(k)
            } else {
                ListKind::Atomic
            }
        }
        Some(MergeKey::Set) => {
            if lists.iter().flat_map(|l| l.iter()).all(is_scalar) {
                ListKind::Set
            } else {
                ListKind::Atomic
            }
        }
        None => ListKind::Atomic,
    };
    if kind == ListKind::Atomic {
        return kind;
    }
    // A keyed list or set with a repeated key cannot be addressed item by item.
    for list in lists {
        let mut seen = BTreeSet::new();
        for item in list.iter() {
            if let Some(pe) = item_pe(item, kind)
                && !seen.insert(pe)
            {
                return ListKind::Atomic;
            }
        }
    }
    kind
}

fn item_pe(item: &Value, kind: ListKind) -> Option<Pe> {
    match kind {
        ListKind::Keyed(k) => item
            .as_object()
            .and_then(|m| m.get(k))
            .map(|v| Pe::Key(vec![(k.to_string(), canonical(v))])),
        ListKind::Set => Some(Pe::Value(canonical(item))),
        ListKind::Atomic => None,
    }
}

/// The items of a keyed list or set with their path elements, first occurrence of each.
fn indexed_items(list: &[Value], kind: ListKind) -> Vec<(Pe, &Value)> {
    let mut out: Vec<(Pe, &Value)> = Vec::with_capacity(list.len());
    for item in list {
        if let Some(pe) = item_pe(item, kind)
            && !out.iter().any(|(p, _)| *p == pe)
        {
            out.push((pe, item));
        }
    }
    out
}

fn find_item<'a>(items: &[(Pe, &'a Value)], pe: &Pe) -> Option<&'a Value> {
    items.iter().find(|(p, _)| p == pe).map(|(_, v)| *v)
}

/// The fields an applied configuration sets (structured-merge-diff's `ToFieldSet`): leaves,
/// empty maps and lists, atomic lists, and keyed list / set items.
fn applied_set(v: &Value, field: &str, path: &mut Path, set: &mut FieldSet) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, child) in m {
                path.push(Pe::Field(k.clone()));
                applied_set(child, k, path, set);
                path.pop();
            }
        }
        Value::Array(a) if !a.is_empty() => match list_kind(field, &[a]) {
            ListKind::Atomic => {
                set.insert(path.clone());
            }
            kind => {
                for (pe, item) in indexed_items(a, kind) {
                    path.push(pe);
                    set.insert(path.clone());
                    if let Value::Object(m) = item {
                        for (k, child) in m {
                            path.push(Pe::Field(k.clone()));
                            applied_set(child, k, path, set);
                            path.pop();
                        }
                    }
                    path.pop();
                }
            }
        },
        _ => {
            set.insert(path.clone());
        }
    }
}

/// The field set of a configuration's tracked part.
fn intent_set(intent: &Map<String, Value>) -> FieldSet {
    let mut set = FieldSet::new();
    for (k, v) in intent {
        let mut path = vec![Pe::Field(k.clone())];
        applied_set(v, k, &mut path, &mut set);
    }
    strip_struct_nodes(&mut set);
    set
}

/// Every path of a value: the node itself and everything below it.
fn all_paths(v: &Value, field: &str, path: &mut Path, set: &mut FieldSet) {
    set.insert(path.clone());
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                path.push(Pe::Field(k.clone()));
                all_paths(child, k, path, set);
                path.pop();
            }
        }
        Value::Array(a) => {
            let kind = list_kind(field, &[a]);
            for (pe, item) in indexed_items(a, kind) {
                path.push(pe);
                all_paths(item, field, path, set);
                path.pop();
            }
        }
        _ => {}
    }
}

/// structured-merge-diff's `Comparison` of two objects.
#[derive(Debug, Default)]
struct Comparison {
    added: FieldSet,
    modified: FieldSet,
    removed: FieldSet,
}

impl Comparison {
    fn is_empty(&self) -> bool {
        self.added.is_empty() && self.modified.is_empty() && self.removed.is_empty()
    }
}

fn compare_maps(
    old: &Map<String, Value>,
    new: &Map<String, Value>,
    path: &mut Path,
    cmp: &mut Comparison,
) {
    let keys: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for k in keys {
        path.push(Pe::Field(k.clone()));
        compare_opt(old.get(k), new.get(k), k, path, cmp);
        path.pop();
    }
}

fn compare_opt(
    old: Option<&Value>,
    new: Option<&Value>,
    field: &str,
    path: &mut Path,
    cmp: &mut Comparison,
) {
    match (old, new) {
        (None, None) => {}
        (Some(o), None) => all_paths(o, field, path, &mut cmp.removed),
        (None, Some(n)) => all_paths(n, field, path, &mut cmp.added),
        (Some(o), Some(n)) => compare_values(o, n, field, path, cmp),
    }
}

fn compare_values(old: &Value, new: &Value, field: &str, path: &mut Path, cmp: &mut Comparison) {
    match (old, new) {
        (Value::Object(o), Value::Object(n)) if !(o.is_empty() && n.is_empty()) => {
            compare_maps(o, n, path, cmp);
        }
        (Value::Array(o), Value::Array(n)) if !(o.is_empty() && n.is_empty()) => {
            let kind = list_kind(field, &[o, n]);
            if kind == ListKind::Atomic {
                if old != new {
                    cmp.modified.insert(path.clone());
                }
                return;
            }
            let old_items = indexed_items(o, kind);
            let new_items = indexed_items(n, kind);
            let pes: BTreeSet<&Pe> = old_items.iter().chain(&new_items).map(|(p, _)| p).collect();
            for pe in pes {
                let (o_item, n_item) = (find_item(&old_items, pe), find_item(&new_items, pe));
                path.push(pe.clone());
                compare_opt(o_item, n_item, field, path, cmp);
                path.pop();
            }
        }
        _ => {
            if old != new {
                cmp.modified.insert(path.clone());
            }
        }
    }
}

fn compare(old: &Map<String, Value>, new: &Map<String, Value>) -> Comparison {
    let mut cmp = Comparison::default();
    compare_maps(old, new, &mut Vec::new(), &mut cmp);
    strip_struct_nodes(&mut cmp.added);
    strip_struct_nodes(&mut cmp.modified);
    strip_struct_nodes(&mut cmp.removed);
    cmp
}

/// A copy of `v` without nulls in objects (a null in an applied configuration or patch means
/// "no value").
fn strip_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), strip_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_nulls).collect()),
        other => other.clone(),
    }
}

/// Merges an applied configuration into the live value (structured-merge-diff's `Merge`):
/// maps merge, keyed lists and sets merge by item, everything else is replaced.
fn merge_into(live: &mut Value, applied: &Value, field: &str) {
    if let (Value::Object(l), Value::Object(a)) = (&mut *live, applied) {
        merge_map_into(l, a);
        return;
    }
    if let (Value::Array(l), Value::Array(a)) = (&mut *live, applied) {
        let kind = list_kind(field, &[l.as_slice(), a.as_slice()]);
        if kind != ListKind::Atomic {
            let merged = merge_lists(l, a, kind, field);
            *l = merged;
            return;
        }
    }
    *live = strip_nulls(applied);
}

fn merge_map_into(live: &mut Map<String, Value>, applied: &Map<String, Value>) {
    for (k, v) in applied {
        if v.is_null() {
            live.remove(k);
            continue;
        }
        match live.get_mut(k) {
            Some(slot) => merge_into(slot, v, k),
            None => {
                live.insert(k.clone(), strip_nulls(v));
            }
        }
    }
}

/// Merges two keyed lists / sets item by item. Items only on the live side keep their place;
/// the items of the applied list come in its order (structured-merge-diff's list merge order).
fn merge_lists(lhs: &[Value], rhs: &[Value], kind: ListKind, field: &str) -> Vec<Value> {
    let l = indexed_items(lhs, kind);
    let r = indexed_items(rhs, kind);
    let in_r = |pe: &Pe| r.iter().any(|(p, _)| p == pe);
    let find_l = |pe: &Pe| find_item(&l, pe);
    let merged = |lv: Option<&Value>, rv: &Value| match lv {
        Some(lv) => {
            let mut v = lv.clone();
            merge_into(&mut v, rv, field);
            v
        }
        None => strip_nulls(rv),
    };
    let mut shared: VecDeque<&Pe> = r
        .iter()
        .map(|(p, _)| p)
        .filter(|p| find_l(p).is_some())
        .collect();
    let mut next_shared = shared.pop_front();
    let mut out = Vec::with_capacity(l.len().max(r.len()));
    let (mut li, mut ri) = (0, 0);
    while li < l.len() || ri < r.len() {
        if li < l.len() && ri < r.len() {
            let pe = &l[li].0;
            if *pe == r[ri].0 {
                out.push(merged(Some(l[li].1), r[ri].1));
                li += 1;
                ri += 1;
                next_shared = shared.pop_front();
                continue;
            }
            if in_r(pe) && next_shared.is_some_and(|n| n != pe) {
                // Shared, but not the one due now: emitted when the applied list reaches it.
                li += 1;
                continue;
            }
        }
        if li < l.len() && !in_r(&l[li].0) {
            out.push(l[li].1.clone());
            li += 1;
            continue;
        }
        if ri < r.len() {
            let (pe, rv) = &r[ri];
            out.push(merged(find_l(pe), rv));
            ri += 1;
            if next_shared == Some(pe) {
                next_shared = shared.pop_front();
            }
            continue;
        }
        // Only already-emitted shared live items remain.
        li += 1;
    }
    out
}

fn get_path<'a>(v: &'a Value, path: &[Pe]) -> Option<&'a Value> {
    let Some((first, rest)) = path.split_first() else {
        return Some(v);
    };
    let child = match (v, first) {
        (Value::Object(m), Pe::Field(k)) => m.get(k)?,
        (Value::Array(a), pe) => {
            a.iter()
                .enumerate()
                .find(|(i, item)| pe.selects(*i, item))?
                .1
        }
        _ => return None,
    };
    get_path(child, rest)
}

/// Removes the value at `path`; false when there is none.
fn remove_path(v: &mut Value, path: &[Pe]) -> bool {
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    match (v, first) {
        (Value::Object(m), Pe::Field(k)) => {
            if rest.is_empty() {
                m.remove(k).is_some()
            } else {
                m.get_mut(k).is_some_and(|c| remove_path(c, rest))
            }
        }
        (Value::Array(a), pe) => {
            let Some(i) = a
                .iter()
                .enumerate()
                .position(|(i, item)| pe.selects(i, item))
            else {
                return false;
            };
            if rest.is_empty() {
                a.remove(i);
                true
            } else {
                a.get_mut(i).is_some_and(|c| remove_path(c, rest))
            }
        }
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------------
// Tracked part of objects

/// The part of an object whose fields are tracked, in the object's own shape.
fn tracked(obj: Option<&Value>, subresource: Option<&str>) -> Map<String, Value> {
    let mut out = Map::new();
    let Some(Value::Object(m)) = obj else {
        return out;
    };
    if subresource == Some("status") {
        if let Some(s) = m.get("status") {
            out.insert("status".to_string(), s.clone());
        }
        return out;
    }
    for (k, v) in m {
        match k.as_str() {
            "apiVersion" | "kind" | "status" => {}
            "metadata" => {
                let mut meta = Map::new();
                if let Value::Object(mm) = v {
                    for key in ["labels", "annotations", "finalizers", "ownerReferences"] {
                        if let Some(x) = mm.get(key) {
                            meta.insert(key.to_string(), x.clone());
                        }
                    }
                }
                if !meta.is_empty() {
                    out.insert(k.clone(), Value::Object(meta));
                }
            }
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    out
}

/// `obj` without its tracked fields (what a create by apply keeps from the configuration as it
/// is: apiVersion, kind, name, namespace, ...).
fn untracked(obj: &Value, subresource: Option<&str>) -> Value {
    let Value::Object(m) = obj else {
        return Value::Object(Map::new());
    };
    let mut out = m.clone();
    if subresource == Some("status") {
        out.remove("status");
    } else {
        out.retain(|k, _| matches!(k.as_str(), "apiVersion" | "kind" | "metadata" | "status"));
        if let Some(Value::Object(meta)) = out.get_mut("metadata") {
            for key in ["labels", "annotations", "finalizers", "ownerReferences"] {
                meta.remove(key);
            }
        }
    }
    if let Some(Value::Object(meta)) = out.get_mut("metadata") {
        meta.remove("managedFields");
    }
    Value::Object(out)
}

// ---------------------------------------------------------------------------------------------
// managedFields entries

#[derive(Debug, Clone, PartialEq)]
struct Entry {
    manager: String,
    operation: String,
    api_version: String,
    time: Option<String>,
    subresource: Option<String>,
    set: FieldSet,
}

impl Entry {
    fn from_json(v: &Value) -> Option<Entry> {
        let m = v.as_object()?;
        let s = |k: &str| m.get(k).and_then(Value::as_str).map(str::to_string);
        let set = match m.get("fieldsV1") {
            Some(f) if s("fieldsType").is_none_or(|t| t == "FieldsV1") => fields_v1_to_set(f),
            _ => FieldSet::new(),
        };
        Some(Entry {
            manager: s("manager").unwrap_or_default(),
            operation: s("operation").unwrap_or_else(|| OP_UPDATE.to_string()),
            api_version: s("apiVersion").unwrap_or_default(),
            time: s("time"),
            subresource: s("subresource").filter(|s| !s.is_empty()),
            set,
        })
    }

    fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("manager".to_string(), Value::String(self.manager.clone()));
        m.insert(
            "operation".to_string(),
            Value::String(self.operation.clone()),
        );
        m.insert(
            "apiVersion".to_string(),
            Value::String(self.api_version.clone()),
        );
        if let Some(t) = &self.time {
            m.insert("time".to_string(), Value::String(t.clone()));
        }
        m.insert(
            "fieldsType".to_string(),
            Value::String("FieldsV1".to_string()),
        );
        m.insert("fieldsV1".to_string(), set_to_fields_v1(&self.set));
        if let Some(s) = &self.subresource {
            m.insert("subresource".to_string(), Value::String(s.clone()));
        }
        Value::Object(m)
    }

    /// Whether this entry is the one identified by (manager, operation, apiVersion for
    /// updaters, subresource).
    fn is(
        &self,
        manager: &str,
        operation: &str,
        api_version: &str,
        subresource: Option<&str>,
    ) -> bool {
        self.manager == manager
            && self.operation == operation
            && (operation == OP_APPLY || self.api_version == api_version)
            && self.subresource.as_deref() == subresource
    }

    fn conflict(&self, path: &[Pe]) -> Conflict {
        Conflict {
            manager: self.manager.clone(),
            field: path_string(path),
            operation: self.operation.clone(),
            api_version: self.api_version.clone(),
            subresource: self.subresource.clone(),
        }
    }
}

/// The entries of an object's metadata.managedFields; `None` when the field is absent or not a
/// list.
fn read_entries(obj: Option<&Value>) -> Option<Vec<Entry>> {
    let list = obj?.get("metadata")?.get("managedFields")?.as_array()?;
    Some(list.iter().filter_map(Entry::from_json).collect())
}

/// Writes the entries, dropping empty ones and sorting them as the apiserver does (operation,
/// then time, manager, apiVersion, subresource).
fn write_entries(obj: &mut Value, mut entries: Vec<Entry>) {
    entries.retain(|e| !e.set.is_empty());
    entries.sort_by(|a, b| {
        (
            &a.operation,
            a.time.as_deref().unwrap_or(""),
            &a.manager,
            &a.api_version,
            &a.subresource,
        )
            .cmp(&(
                &b.operation,
                b.time.as_deref().unwrap_or(""),
                &b.manager,
                &b.api_version,
                &b.subresource,
            ))
    });
    let Value::Object(m) = obj else { return };
    let meta = m
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    if let Value::Object(meta) = meta {
        if entries.is_empty() {
            meta.remove("managedFields");
        } else {
            meta.insert(
                "managedFields".to_string(),
                Value::Array(entries.iter().map(Entry::to_json).collect()),
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Apply and update

/// Server-side apply of `applied` (the full intent of `manager`) onto `live` (None = create).
/// `subresource` is None for the main resource or Some("status"). `api_version` is the
/// object's. `now` is the RFC3339 time to write in managedFields. Semantics:
/// - fields set by `applied` (the tracked ones, see the module doc) become owned by
///   (manager, Apply[, subresource]); the entry's set is exactly what this apply sets;
/// - a field owned by another manager (any operation) whose live value differs from the applied
///   value is a conflict; with `force == false` return Err(conflicts) and change nothing; with
///   force, ownership moves to the applier (removed from the others);
/// - a field the applier owned in its previous apply and no longer sets is removed from the
///   object, unless another manager also owns it (then just ownership is dropped); maps left
///   empty by that removal and owned by no one go too;
/// - the merge of applied into live follows structural rules: maps merge, keyed lists merge by
///   key, other lists replace atomically; a null in `applied` removes the field;
/// - fields equal to live and owned by others become shared (both own);
/// - a live object without managedFields is first credited to [`BEFORE_FIRST_APPLY`] (an Update
///   manager), as the apiserver does;
/// - for the manager `kubectl` (what `kubectl apply --server-side` sends), conflicts on fields
///   listed in the live `kubectl.kubernetes.io/last-applied-configuration` annotation are
///   forced, and an existing annotation is rewritten to the applied configuration (the
///   apiserver's client-side to server-side apply upgrade).
///
/// On create the untracked parts of `applied` (apiVersion, kind, metadata.name, namespace,
/// status, ...) are kept as they are; on update they come from `live`. The result carries
/// managedFields sorted by operation, time, manager, apiVersion, subresource. Conflicts are
/// sorted by manager identifier, then path. An `applied` that is not an object sets nothing.
pub fn apply(
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    subresource: Option<&str>,
    api_version: &str,
    force: bool,
    now: &str,
) -> Result<Value, Vec<Conflict>> {
    let live = live.filter(|v| v.is_object());
    let mut entries = read_entries(live).unwrap_or_default();
    if let Some(live) = live
        && entries.is_empty()
    {
        let object_version = live
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or(api_version);
        let cmp = compare(&Map::new(), &tracked(Some(live), subresource));
        entries.push(Entry {
            manager: BEFORE_FIRST_APPLY.to_string(),
            operation: OP_UPDATE.to_string(),
            api_version: object_version.to_string(),
            time: Some(now.to_string()),
            subresource: subresource.map(str::to_string),
            set: cmp.added,
        });
    }
    let sub = subresource.map(str::to_string);
    let mine = entries
        .iter()
        .position(|e| e.is(manager, OP_APPLY, api_version, subresource));
    let last_set = mine.map(|i| entries[i].set.clone()).unwrap_or_default();

    let intent = tracked(Some(applied), subresource);
    let new_set = intent_set(&intent);

    // Merge the intent into the live object (or into the configuration's own identity).
    let mut merged = match live {
        Some(l) => l.clone(),
        None => untracked(applied, subresource),
    };
    if let Value::Object(m) = &mut merged {
        merge_map_into(m, &intent);
    }

    // Prune what this applier set last time, no longer sets, and nobody else owns.
    let mut owned_now: FieldSet = new_set.clone();
    for (i, e) in entries.iter().enumerate() {
        if Some(i) != mine {
            owned_now.extend(e.set.iter().cloned());
        }
    }
    let has_owned_descendant = |p: &Path| {
        owned_now
            .range::<Path, _>((std::ops::Bound::Excluded(p), std::ops::Bound::Unbounded))
            .take_while(|q| q.starts_with(p))
            .next()
            .is_some()
    };
    let mut to_remove: Vec<&Path> = last_set
        .iter()
        .filter(|p| !owned_now.contains(*p) && !has_owned_descendant(p))
        .collect();
    // Shallow paths first: removing a list item or map takes what is below it along (and a
    // list item stripped of its key field first could no longer be found).
    to_remove.sort_by_key(|p| p.len());
    for path in to_remove {
        if !remove_path(&mut merged, path) {
            continue;
        }
        // Maps and lists this removal left empty go too, unless someone owns them.
        for n in (1..path.len()).rev() {
            let ancestor = &path[..n];
            if !matches!(ancestor.last(), Some(Pe::Field(_))) || owned_now.contains(ancestor) {
                break;
            }
            let empty = match get_path(&merged, ancestor) {
                Some(Value::Object(m)) => m.is_empty(),
                Some(Value::Array(a)) => a.is_empty(),
                _ => false,
            };
            if !empty || (n == 1 && ancestor == [Pe::Field("metadata".to_string())]) {
                break;
            }
            remove_path(&mut merged, ancestor);
        }
    }

    // Conflicts: fields others own that this apply changes (or explicitly unsets).
    let cmp = compare(
        &tracked(live, subresource),
        &tracked(Some(&merged), subresource),
    );
    let changed: FieldSet = cmp
        .modified
        .iter()
        .chain(&cmp.added)
        .chain(cmp.removed.intersection(&new_set))
        .cloned()
        .collect();
    let mut conflicts: Vec<(String, Path, Conflict)> = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        if Some(i) == mine {
            continue;
        }
        for p in e.set.intersection(&changed) {
            let c = e.conflict(p);
            conflicts.push((manager_identifier(&c), p.clone(), c));
        }
    }
    if !conflicts.is_empty() && !force && manager == KUBECTL {
        // The apiserver's client-side to server-side apply upgrade: conflicts on fields of the
        // last-applied-configuration annotation are forced for kubectl.
        if let Some(allowed) = live.and_then(|l| last_applied_set(l, subresource)) {
            conflicts.retain(|(_, p, _)| !allowed.contains(p));
        }
    }
    if !conflicts.is_empty() && !force {
        conflicts.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        return Err(conflicts.into_iter().map(|(_, _, c)| c).collect());
    }

    let object_changed = live.is_none_or(|l| strip_managed(l) != strip_managed(&merged));
    for (i, e) in entries.iter_mut().enumerate() {
        if Some(i) == mine {
            continue;
        }
        e.set
            .retain(|p| !changed.contains(p) && !cmp.removed.contains(p));
    }
    match mine {
        Some(i) => {
            let e = &mut entries[i];
            if object_changed || e.set != new_set {
                e.time = Some(now.to_string());
            }
            e.set = new_set;
            e.api_version = api_version.to_string();
        }
        None => entries.push(Entry {
            manager: manager.to_string(),
            operation: OP_APPLY.to_string(),
            api_version: api_version.to_string(),
            time: Some(now.to_string()),
            subresource: sub,
            set: new_set,
        }),
    }
    write_entries(&mut merged, entries);
    if manager == KUBECTL {
        sync_last_applied(&mut merged, applied);
    }
    Ok(merged)
}

/// The field set of the live object's last-applied-configuration annotation, if any.
fn last_applied_set(live: &Value, subresource: Option<&str>) -> Option<FieldSet> {
    let text = live
        .get("metadata")?
        .get("annotations")?
        .get(LAST_APPLIED)?
        .as_str()?;
    let last: Value = serde_json::from_str(text).ok()?;
    if !last.is_object() {
        return None;
    }
    Some(intent_set(&tracked(Some(&last), subresource)))
}

/// After a server-side apply by kubectl, an existing last-applied-configuration annotation is
/// rewritten to the applied configuration (without that annotation), so a later client-side
/// `kubectl apply` diffs against it (the apiserver's `lastAppliedUpdater`).
fn sync_last_applied(object: &mut Value, applied: &Value) {
    let Some(Value::Object(annotations)) = object
        .get_mut("metadata")
        .and_then(|m| m.get_mut("annotations"))
    else {
        return;
    };
    if !annotations.contains_key(LAST_APPLIED) {
        return;
    }
    let mut config = applied.clone();
    if let Some(Value::Object(a)) = config
        .get_mut("metadata")
        .and_then(|m| m.get_mut("annotations"))
    {
        a.remove(LAST_APPLIED);
    }
    annotations.insert(
        LAST_APPLIED.to_string(),
        Value::String(format!("{config}\n")),
    );
}

fn strip_managed(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(Value::Object(meta)) = v.get_mut("metadata") {
        meta.remove("managedFields");
    }
    v
}

/// Whether a managedFields value sent in an update asks for a reset (`[]` or `[{}]`).
fn is_reset(v: &Value) -> bool {
    match v.get("metadata").and_then(|m| m.get("managedFields")) {
        Some(Value::Array(a)) => {
            a.is_empty() || (a.len() == 1 && a[0].as_object().is_some_and(Map::is_empty))
        }
        _ => false,
    }
}

/// Records ownership after a non-apply write (create/update/patch) by `manager` with operation
/// "Update": fields whose value changed between `old` (None on create) and `new` become owned
/// by (manager, Update, api_version[, subresource]) and are removed from other managers' sets;
/// fields removed from the object are removed from every set. Returns `new` with managedFields
/// updated. As in the apiserver, for the main resource a `new` carrying its own non-empty
/// managedFields keeps them as the base, `[]` or `[{}]` resets them, and otherwise the live
/// object's are kept; a write that changes no tracked field leaves ownership as it was. A
/// manager name default is the caller's job (kubectl sends `fieldManager=kubectl-client-side-apply`,
/// `kubectl-edit`, ...).
pub fn record_update(
    old: Option<&Value>,
    new: Value,
    manager: &str,
    subresource: Option<&str>,
    api_version: &str,
    now: &str,
) -> Value {
    let mut new = new;
    if !new.is_object() {
        return new;
    }
    let old = old.filter(|v| v.is_object());
    let mut entries = if subresource.is_some() {
        read_entries(old).unwrap_or_default()
    } else if is_reset(&new) {
        Vec::new()
    } else {
        match read_entries(Some(&new)) {
            Some(e) if !e.is_empty() => e,
            _ => read_entries(old).unwrap_or_default(),
        }
    };
    let cmp = compare(
        &tracked(old, subresource),
        &tracked(Some(&new), subresource),
    );
    if !cmp.is_empty() {
        let changed: FieldSet = cmp.modified.union(&cmp.added).cloned().collect();
        let mine = entries
            .iter()
            .position(|e| e.is(manager, OP_UPDATE, api_version, subresource));
        for (i, e) in entries.iter_mut().enumerate() {
            e.set.retain(|p| !cmp.removed.contains(p));
            if Some(i) != mine {
                e.set.retain(|p| !changed.contains(p));
            }
        }
        // Only a write that set something credits (and re-times) the updater.
        if !changed.is_empty() {
            match mine {
                Some(i) => {
                    entries[i].set.extend(changed);
                    entries[i].time = Some(now.to_string());
                }
                None => entries.push(Entry {
                    manager: manager.to_string(),
                    operation: OP_UPDATE.to_string(),
                    api_version: api_version.to_string(),
                    time: Some(now.to_string()),
                    subresource: subresource.map(str::to_string),
                    set: changed,
                }),
            }
        }
    }
    write_entries(&mut new, entries);
    new
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const T1: &str = "2025-01-01T00:00:00Z";
    const T2: &str = "2025-01-01T00:01:00Z";
    const T3: &str = "2025-01-01T00:02:00Z";

    fn deploy(replicas: i64) -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "d", "namespace": "ns", "labels": {"app": "x"}},
            "spec": {
                "replicas": replicas,
                "template": {"spec": {"containers": [{"name": "a", "image": "img:1"}]}}
            }
        })
    }

    fn cm(data: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "ns"}, "data": data})
    }

    fn entries(obj: &Value) -> Vec<Value> {
        obj["metadata"]["managedFields"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    fn entry<'a>(obj: &'a Value, manager: &str) -> &'a Value {
        obj["metadata"]["managedFields"]
            .as_array()
            .and_then(|a| a.iter().find(|e| e["manager"] == manager))
            .unwrap_or_else(|| panic!("no entry for {manager} in {obj}"))
    }

    fn owns(obj: &Value, manager: &str, path: &[&str]) -> bool {
        let Some(e) = obj["metadata"]["managedFields"]
            .as_array()
            .and_then(|a| a.iter().find(|e| e["manager"] == manager))
        else {
            return false;
        };
        let mut node = &e["fieldsV1"];
        for p in path {
            match node.get(*p) {
                Some(n) => node = n,
                None => return false,
            }
        }
        node.as_object()
            .is_some_and(|m| m.is_empty() || m.contains_key("."))
    }

    #[test]
    fn create_by_apply_records_fields_v1() {
        let out = apply(None, &deploy(2), "mgr", None, "apps/v1", false, T1).unwrap();
        assert_eq!(out["spec"]["replicas"], 2);
        assert_eq!(out["metadata"]["name"], "d");
        let es = entries(&out);
        assert_eq!(es.len(), 1);
        assert_eq!(
            es[0],
            json!({
                "manager": "mgr",
                "operation": "Apply",
                "apiVersion": "apps/v1",
                "time": T1,
                "fieldsType": "FieldsV1",
                "fieldsV1": {
                    "f:metadata": {"f:labels": {"f:app": {}}},
                    "f:spec": {
                        "f:replicas": {},
                        "f:template": {"f:spec": {"f:containers": {
                            "k:{\"name\":\"a\"}": {".": {}, "f:image": {}, "f:name": {}}
                        }}}
                    }
                }
            })
        );
    }

    #[test]
    fn conflicting_apply_is_rejected_without_force() {
        let live = apply(None, &deploy(2), "first", None, "apps/v1", false, T1).unwrap();
        let err = apply(
            Some(&live),
            &deploy(3),
            "second",
            None,
            "apps/v1",
            false,
            T2,
        )
        .unwrap_err();
        assert_eq!(err.len(), 1);
        assert_eq!(err[0].manager, "first");
        assert_eq!(err[0].field, ".spec.replicas");
        assert_eq!(err[0].operation, "Apply");
        assert_eq!(
            conflict_message(&err, "apps/v1"),
            "Apply failed with 1 conflict: conflict with \"first\": .spec.replicas"
        );
    }

    #[test]
    fn forced_apply_moves_ownership() {
        let live = apply(None, &deploy(2), "first", None, "apps/v1", false, T1).unwrap();
        let out = apply(Some(&live), &deploy(3), "second", None, "apps/v1", true, T2).unwrap();
        assert_eq!(out["spec"]["replicas"], 3);
        assert!(owns(&out, "second", &["f:spec", "f:replicas"]));
        assert!(!owns(&out, "first", &["f:spec", "f:replicas"]));
        // Everything else stays shared.
        assert!(owns(&out, "first", &["f:metadata", "f:labels", "f:app"]));
        assert!(owns(&out, "second", &["f:metadata", "f:labels", "f:app"]));
        // Sorted: both Apply, by time.
        let es = entries(&out);
        let managers: Vec<&str> = es.iter().map(|e| e["manager"].as_str().unwrap()).collect();
        assert_eq!(managers, ["first", "second"]);
    }

    #[test]
    fn same_value_is_shared_without_conflict() {
        let live = apply(None, &deploy(2), "first", None, "apps/v1", false, T1).unwrap();
        let out = apply(
            Some(&live),
            &deploy(2),
            "second",
            None,
            "apps/v1",
            false,
            T2,
        )
        .unwrap();
        assert!(owns(&out, "first", &["f:spec", "f:replicas"]));
        assert!(owns(&out, "second", &["f:spec", "f:replicas"]));
        assert_eq!(entry(&out, "first")["time"], T1);
    }

    #[test]
    fn field_dropped_from_next_apply_is_removed() {
        let live = apply(
            None,
            &cm(json!({"a": "1", "b": "2"})),
            "mgr",
            None,
            "v1",
            false,
            T1,
        )
        .unwrap();
        let out = apply(
            Some(&live),
            &cm(json!({"a": "1"})),
            "mgr",
            None,
            "v1",
            false,
            T2,
        )
        .unwrap();
        assert_eq!(out["data"], json!({"a": "1"}));
        assert!(!owns(&out, "mgr", &["f:data", "f:b"]));
        assert_eq!(entry(&out, "mgr")["time"], T2);
        // Dropping every key removes the emptied map too.
        let out = apply(
            Some(&out),
            &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}),
            "mgr",
            None,
            "v1",
            false,
            T3,
        )
        .unwrap();
        assert!(out.get("data").is_none(), "{out}");
        assert!(out["metadata"].get("managedFields").is_none(), "{out}");
        assert_eq!(out["metadata"]["name"], "c");
    }

    #[test]
    fn field_dropped_but_co_owned_is_kept() {
        let live = apply(
            None,
            &cm(json!({"a": "1", "b": "2"})),
            "one",
            None,
            "v1",
            false,
            T1,
        )
        .unwrap();
        let live = apply(
            Some(&live),
            &cm(json!({"b": "2"})),
            "two",
            None,
            "v1",
            false,
            T2,
        )
        .unwrap();
        let out = apply(
            Some(&live),
            &cm(json!({"a": "1"})),
            "one",
            None,
            "v1",
            false,
            T3,
        )
        .unwrap();
        assert_eq!(out["data"], json!({"a": "1", "b": "2"}));
        assert!(!owns(&out, "one", &["f:data", "f:b"]));
        assert!(owns(&out, "two", &["f:data", "f:b"]));
    }

    #[test]
    fn update_then_apply_conflicts_with_update_manager() {
        let created = record_update(
            None,
            cm(json!({"a": "1"})),
            "kubectl-client-side-apply",
            None,
            "v1",
            T1,
        );
        let e = entry(&created, "kubectl-client-side-apply");
        assert_eq!(e["operation"], "Update");
        assert_eq!(e["fieldsV1"], json!({"f:data": {".": {}, "f:a": {}}}));

        let err = apply(
            Some(&created),
            &cm(json!({"a": "2"})),
            "ssa",
            None,
            "v1",
            false,
            T2,
        )
        .unwrap_err();
        assert_eq!(err.len(), 1);
        assert_eq!(err[0].manager, "kubectl-client-side-apply");
        assert_eq!(err[0].field, ".data.a");
        assert_eq!(
            conflict_message(&err, "v1"),
            "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using v1: .data.a"
        );
        assert_eq!(
            conflict_cause(&err[0], "v1"),
            "conflict with \"kubectl-client-side-apply\" using v1"
        );

        // An update of the field by someone else takes it over.
        let mut edited = created.clone();
        edited["data"]["a"] = json!("3");
        let edited = record_update(Some(&created), edited, "kubectl-edit", None, "v1", T2);
        assert!(owns(&edited, "kubectl-edit", &["f:data", "f:a"]));
        assert!(!owns(
            &edited,
            "kubectl-client-side-apply",
            &["f:data", "f:a"]
        ));
        assert!(owns(&edited, "kubectl-client-side-apply", &["f:data"]));
    }

    #[test]
    fn record_update_without_changes_keeps_entries() {
        let created = record_update(None, cm(json!({"a": "1"})), "creator", None, "v1", T1);
        let mut same = created.clone();
        same["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("managedFields");
        let out = record_update(Some(&created), same, "other", None, "v1", T2);
        assert_eq!(entries(&out), entries(&created));
    }

    #[test]
    fn record_update_removal_strips_every_owner_without_crediting() {
        let live = apply(
            None,
            &cm(json!({"a": "1", "b": "2"})),
            "ssa",
            None,
            "v1",
            false,
            T1,
        )
        .unwrap();
        let mut new = live.clone();
        new["data"].as_object_mut().unwrap().remove("b");
        let out = record_update(Some(&live), new, "remover", None, "v1", T2);
        assert!(!owns(&out, "ssa", &["f:data", "f:b"]));
        assert!(owns(&out, "ssa", &["f:data", "f:a"]));
        assert_eq!(entries(&out).len(), 1, "{out}");
        // A later apply by ssa without b does not resurrect or remove anything else.
        let again = apply(
            Some(&out),
            &cm(json!({"a": "1"})),
            "ssa",
            None,
            "v1",
            false,
            T3,
        )
        .unwrap();
        assert_eq!(again["data"], json!({"a": "1"}));
    }

    #[test]
    fn record_update_reset_managed_fields() {
        let created = record_update(None, cm(json!({"a": "1"})), "creator", None, "v1", T1);
        let mut reset = created.clone();
        reset["metadata"]["managedFields"] = json!([{}]);
        let out = record_update(Some(&created), reset, "resetter", None, "v1", T2);
        assert!(out["metadata"].get("managedFields").is_none(), "{out}");
    }

    #[test]
    fn keyed_list_ownership_and_conflict_path() {
        let live = apply(None, &deploy(1), "first", None, "apps/v1", false, T1).unwrap();
        assert!(owns(
            &live,
            "first",
            &[
                "f:spec",
                "f:template",
                "f:spec",
                "f:containers",
                "k:{\"name\":\"a\"}"
            ]
        ));
        let mut second = deploy(1);
        second["spec"]["template"]["spec"]["containers"] =
            json!([{"name": "a", "image": "img:2"}, {"name": "b", "image": "b:1"}]);
        let err = apply(Some(&live), &second, "second", None, "apps/v1", false, T2).unwrap_err();
        assert_eq!(err.len(), 1);
        assert_eq!(
            err[0].field,
            ".spec.template.spec.containers[name=\"a\"].image"
        );

        // Adding a container that is not the other's does not conflict; both keep theirs.
        second["spec"]["template"]["spec"]["containers"] = json!([{"name": "b", "image": "b:1"}]);
        let out = apply(Some(&live), &second, "second", None, "apps/v1", false, T2).unwrap();
        let names: Vec<&str> = out["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["a", "b"]);
        assert!(owns(
            &out,
            "second",
            &[
                "f:spec",
                "f:template",
                "f:spec",
                "f:containers",
                "k:{\"name\":\"b\"}",
                "f:image"
            ]
        ));
        assert!(!owns(
            &out,
            "second",
            &[
                "f:spec",
                "f:template",
                "f:spec",
                "f:containers",
                "k:{\"name\":\"a\"}"
            ]
        ));

        // The first applier dropping its container removes it, leaving b.
        let mut first = deploy(1);
        first["spec"]["template"]["spec"]["containers"] = json!([]);
        let out = apply(Some(&out), &first, "first", None, "apps/v1", false, T3).unwrap();
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"],
            json!([{"name": "b", "image": "b:1"}])
        );
    }

    #[test]
    fn finalizers_are_a_set_and_atomic_lists_conflict_whole() {
        let mut a = cm(json!({"k": "v"}));
        a["metadata"]["finalizers"] = json!(["x/one"]);
        let live = apply(None, &a, "first", None, "v1", false, T1).unwrap();
        assert!(owns(
            &live,
            "first",
            &["f:metadata", "f:finalizers", "v:\"x/one\""]
        ));
        let b = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "finalizers": ["x/two"]}});
        let out = apply(Some(&live), &b, "second", None, "v1", false, T2).unwrap();
        assert_eq!(out["metadata"]["finalizers"], json!(["x/one", "x/two"]));

        // An atomic list (a pod's tolerations) is one leaf.
        let pod = |t: Value| json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"tolerations": t}});
        let live = apply(
            None,
            &pod(json!([{"key": "a"}])),
            "first",
            None,
            "v1",
            false,
            T1,
        )
        .unwrap();
        assert!(owns(&live, "first", &["f:spec", "f:tolerations"]));
        let err = apply(
            Some(&live),
            &pod(json!([{"key": "a"}, {"key": "b"}])),
            "second",
            None,
            "v1",
            false,
            T2,
        )
        .unwrap_err();
        assert_eq!(err[0].field, ".spec.tolerations");
    }

    #[test]
    fn status_subresource_entries_are_separate() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"nodeName": "n"}, "status": {"phase": "Pending"}});
        let live = apply(None, &pod, "user", None, "v1", false, T1).unwrap();
        assert!(!owns(&live, "user", &["f:status"]));
        let status = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "status": {"phase": "Running"}});
        let out = apply(
            Some(&live),
            &status,
            "kubelet",
            Some("status"),
            "v1",
            false,
            T2,
        )
        .unwrap();
        assert_eq!(out["status"]["phase"], "Running");
        assert_eq!(out["spec"]["nodeName"], "n");
        let e = entry(&out, "kubelet");
        assert_eq!(e["subresource"], "status");
        assert_eq!(e["fieldsV1"], json!({"f:status": {"f:phase": {}}}));
        assert!(owns(&out, "user", &["f:spec", "f:nodeName"]));
    }

    #[test]
    fn object_without_managed_fields_belongs_to_before_first_apply() {
        let live = cm(json!({"a": "1"}));
        let err = apply(
            Some(&live),
            &cm(json!({"a": "2"})),
            "ssa",
            None,
            "v1",
            false,
            T1,
        )
        .unwrap_err();
        assert_eq!(err[0].manager, BEFORE_FIRST_APPLY);
        let out = apply(
            Some(&live),
            &cm(json!({"a": "2"})),
            "ssa",
            None,
            "v1",
            true,
            T1,
        )
        .unwrap();
        assert_eq!(out["data"]["a"], "2");
        assert!(owns(&out, "ssa", &["f:data", "f:a"]));
    }

    #[test]
    fn kubectl_server_side_apply_upgrades_from_client_side_apply() {
        let mut csa = cm(json!({"a": "1"}));
        let last = format!("{}\n", cm(json!({"a": "1"})));
        csa["metadata"]["annotations"] = json!({LAST_APPLIED: last});
        let live = record_update(None, csa, "kubectl-client-side-apply", None, "v1", T1);

        // Another manager conflicts on the client-side applied field.
        let err = apply(
            Some(&live),
            &cm(json!({"a": "2"})),
            "other",
            None,
            "v1",
            false,
            T2,
        )
        .unwrap_err();
        assert_eq!(err[0].manager, "kubectl-client-side-apply");

        // kubectl takes it over without --force-conflicts, and the annotation follows.
        let out = apply(
            Some(&live),
            &cm(json!({"a": "2"})),
            "kubectl",
            None,
            "v1",
            false,
            T2,
        )
        .unwrap();
        assert_eq!(out["data"]["a"], "2");
        assert!(owns(&out, "kubectl", &["f:data", "f:a"]));
        assert!(!owns(&out, "kubectl-client-side-apply", &["f:data", "f:a"]));
        let annotation = out["metadata"]["annotations"][LAST_APPLIED]
            .as_str()
            .unwrap();
        let annotated: Value = serde_json::from_str(annotation).unwrap();
        assert_eq!(annotated["data"], json!({"a": "2"}));
        assert!(annotation.ends_with('\n'));

        // Fields outside the annotation still conflict for kubectl.
        let mut other = live.clone();
        other["data"]["b"] = json!("1");
        let other = record_update(Some(&live), other, "kubectl-edit", None, "v1", T2);
        let err = apply(
            Some(&other),
            &cm(json!({"a": "2", "b": "2"})),
            "kubectl",
            None,
            "v1",
            false,
            T3,
        )
        .unwrap_err();
        assert_eq!(err.len(), 1);
        assert_eq!(err[0].field, ".data.b");
        assert_eq!(err[0].manager, "kubectl-edit");
    }

    #[test]
    fn conflict_message_formats() {
        let one = [Conflict::new("kubectl-client-side-apply", ".spec.replicas")];
        assert_eq!(
            conflict_message(&one, "v1"),
            "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using v1: .spec.replicas"
        );
        let two = [
            Conflict::new("mgr", ".spec.a"),
            Conflict::new("mgr", ".spec.b"),
        ];
        assert_eq!(
            conflict_message(&two, "v1"),
            "Apply failed with 2 conflicts: conflicts with \"mgr\" using v1:\n- .spec.a\n- .spec.b"
        );
        let mixed = [
            Conflict {
                operation: "Apply".to_string(),
                ..Conflict::new("zeta", ".data.x")
            },
            Conflict {
                subresource: Some("status".to_string()),
                ..Conflict::new("alpha", ".status.phase")
            },
            Conflict::new("zeta", ".data.y"),
        ];
        assert_eq!(
            conflict_message(&mixed, "v1"),
            "Apply failed with 3 conflicts: conflicts with \"alpha\" with subresource \"status\" using v1:\n- .status.phase\n\
             conflicts with \"zeta\":\n- .data.x\nconflicts with \"zeta\" using v1:\n- .data.y"
        );
    }

    #[test]
    fn multiple_conflicts_are_sorted_and_reported_together() {
        let created = record_update(
            None,
            cm(json!({"a": "1", "b": "1", "c": "1"})),
            "editor",
            None,
            "v1",
            T1,
        );
        let err = apply(
            Some(&created),
            &cm(json!({"b": "2", "a": "2", "c": "1"})),
            "ssa",
            None,
            "v1",
            false,
            T2,
        )
        .unwrap_err();
        let fields: Vec<&str> = err.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, [".data.a", ".data.b"]);
        assert_eq!(
            conflict_message(&err, "v1"),
            "Apply failed with 2 conflicts: conflicts with \"editor\" using v1:\n- .data.a\n- .data.b"
        );
        // Nothing changed on error: the caller keeps `created`.
    }

    #[test]
    fn fields_v1_round_trip() {
        let f = json!({
            "f:metadata": {"f:labels": {".": {}, "f:app": {}}, "f:finalizers": {"v:\"a\"": {}}},
            "f:spec": {"f:containers": {"k:{\"name\":\"a\"}": {".": {}, "f:ports": {"k:{\"containerPort\":80}": {".": {}, "f:containerPort": {}}}}}}
        });
        let set = fields_v1_to_set(&f);
        assert_eq!(set_to_fields_v1(&set), f);
        assert!(set.contains(&vec![
            Pe::Field("metadata".into()),
            Pe::Field("labels".into())
        ]));
        assert!(!set.contains(&vec![Pe::Field("spec".into())]));
    }

    #[test]
    fn apply_noop_keeps_time_and_object() {
        let live = apply(None, &cm(json!({"a": "1"})), "mgr", None, "v1", false, T1).unwrap();
        let out = apply(
            Some(&live),
            &cm(json!({"a": "1"})),
            "mgr",
            None,
            "v1",
            false,
            T2,
        )
        .unwrap();
        assert_eq!(out, live);
    }
}
