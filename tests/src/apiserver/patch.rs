//! JSON merge patch, JSON patch and strategic merge patch of stored objects.
//!
//! How the real kube-apiserver maps failures to HTTP status codes, and so how the server is
//! expected to map [`PatchError`]:
//!
//! * JSON patch (`application/json-patch+json`): a body that does not decode as a list of
//!   operations is `400 BadRequest`; an operation that fails when applied (a failing `test`, a
//!   path that does not exist, ...) is `422 Unprocessable Entity` with the error text.
//! * JSON merge patch (`application/merge-patch+json`): a body that is not a JSON object is
//!   `400 BadRequest`.
//! * Strategic merge patch (`application/strategic-merge-patch+json`): malformed directives
//!   (`$retainKeys`, `$setElementOrder/…`, `$deleteFromPrimitiveList/…`) are `400 BadRequest`;
//!   a list of lists is `422`. Other structural errors (a list element without its merge key, an
//!   unknown `$patch` value) are plain errors in the apiserver; here they are [`PatchError::Invalid`].
//!
//! So [`PatchError::Invalid`] is 400 and [`PatchError::Failed`] is 422 (see
//! [`PatchError::status_code`]). Every function here leaves the target untouched on error.

use serde_json::{Map, Value};

/// Why a patch could not be applied.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PatchError {
    /// The patch body is not valid for its type (HTTP 400 BadRequest in the server).
    #[error("{0}")]
    Invalid(String),
    /// The patch is well formed but cannot be applied to this object: a JSON patch `test` op
    /// failed, a JSON patch path is missing, a list of lists in a strategic merge patch
    /// (HTTP 422 Unprocessable Entity in the server).
    #[error("{0}")]
    Failed(String),
}

impl PatchError {
    /// The HTTP status code the real kube-apiserver answers with for this kind of error.
    pub fn status_code(&self) -> u16 {
        match self {
            PatchError::Invalid(_) => 400,
            PatchError::Failed(_) => 422,
        }
    }
}

/// RFC 7386 JSON merge patch (application/merge-patch+json): null deletes, objects merge,
/// everything else replaces. The patch must be a JSON object (a Kubernetes object cannot be
/// replaced by anything else); otherwise [`PatchError::Invalid`].
pub fn merge_patch(target: &mut Value, patch: &Value) -> Result<(), PatchError> {
    if !patch.is_object() {
        return Err(PatchError::Invalid(
            "Invalid JSON Patch: a merge patch must be a JSON object".to_string(),
        ));
    }
    json_patch::merge(target, patch);
    Ok(())
}

/// RFC 6902 JSON patch (application/json-patch+json) with the json-patch crate. All operations
/// apply or none does.
pub fn json_patch(target: &mut Value, patch: &Value) -> Result<(), PatchError> {
    let ops: json_patch::Patch = serde_json::from_value(patch.clone())
        .map_err(|e| PatchError::Invalid(format!("invalid JSON patch: {e}")))?;
    // Work on a copy so a failing operation leaves `target` as it was.
    let mut work = target.clone();
    json_patch::patch_unsafe(&mut work, &ops).map_err(|e| PatchError::Failed(e.to_string()))?;
    *target = work;
    Ok(())
}

/// How the elements of a list field merge in a strategic merge patch (and, in
/// `super::managed`, how they are keyed in managedFields).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeKey {
    /// A list of objects merged by the value of this field (`patchMergeKey`).
    Field(&'static str),
    /// A list of primitives merged as a set (`patchStrategy: merge` without a key).
    Set,
}

/// The strategic merge patch strategy of a list field, by field name. `None` means the list is
/// atomic and a patch replaces it. This follows the `patchMergeKey` / `patchStrategy` tags of
/// the kinds the test server serves (Pod, Job, ConfigMap, Secret, ServiceAccount, Role,
/// RoleBinding, Namespace, Lease, Event); kubectl computes its patches from the same tags.
/// Known approximation: `imagePullSecrets` is merged by name everywhere (as in PodSpec), while a
/// ServiceAccount's is atomic upstream.
pub fn merge_key(field: &str) -> Option<MergeKey> {
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "secrets"
        | "resourceClaims"
        | "schedulingGates"
        | "resourceClaimStatuses" => Some(MergeKey::Field("name")),
        "hostAliases" | "podIPs" | "hostIPs" => Some(MergeKey::Field("ip")),
        "volumeMounts" => Some(MergeKey::Field("mountPath")),
        "volumeDevices" => Some(MergeKey::Field("devicePath")),
        "ports" => Some(MergeKey::Field("containerPort")),
        "conditions" => Some(MergeKey::Field("type")),
        "ownerReferences" => Some(MergeKey::Field("uid")),
        "topologySpreadConstraints" => Some(MergeKey::Field("topologyKey")),
        "finalizers" => Some(MergeKey::Set),
        // tolerations, args, command, envFrom, rules, subjects, ... are atomic.
        _ => None,
    }
}

const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ORDER: &str = "$setElementOrder";
const DELETE_PRIMITIVE: &str = "$deleteFromPrimitiveList";

const ERR_RETAIN_KEYS: &str = "invalid patch format of retainKeys";
const ERR_SET_ORDER: &str = "invalid patch format of setElementOrder list";
const ERR_PRIMITIVE_LIST: &str = "invalid patch format of primitive list";

/// Strategic merge patch (application/strategic-merge-patch+json) for the built-in kinds, with
/// the server-side semantics of k8s.io/apimachinery `strategicpatch.StrategicMergeMapPatch`:
///
/// * maps merge recursively; `null` deletes a key; other values replace;
/// * lists merge by key where [`merge_key`] declares one, lists of primitives with strategy
///   merge (finalizers) merge as ordered sets, all other lists are replaced;
/// * directives: `$patch: replace` / `$patch: delete` in a map, `{"$patch": "delete", <key>: v}`
///   and `{"$patch": "replace"}` list elements, `$setElementOrder/<field>`,
///   `$deleteFromPrimitiveList/<field>`, `$retainKeys`;
/// * order of merged lists: `$setElementOrder` if given, else patch items in patch order with
///   items only on the server interleaved by their live order (so a new item without
///   `$setElementOrder` lands before the existing ones, as in the apiserver).
///
/// Directive keys never end up in the result.
pub fn strategic_merge_patch(target: &mut Value, patch: &Value) -> Result<(), PatchError> {
    let Value::Object(patch) = patch else {
        return Err(PatchError::Invalid(
            "a strategic merge patch must be a JSON object".to_string(),
        ));
    };
    let original = match target {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    let merged = merge_map(original, patch)?;
    *target = Value::Object(merged);
    Ok(())
}

fn is_directive_key(k: &str) -> bool {
    k == DIRECTIVE
        || k == RETAIN_KEYS
        || k.starts_with(SET_ORDER)
        || k.starts_with(DELETE_PRIMITIVE)
}

/// The field a parallel-list directive (`$setElementOrder/x`, `$deleteFromPrimitiveList/x`)
/// applies to.
fn directive_field<'a>(key: &'a str, prefix: &str, err: &str) -> Result<&'a str, PatchError> {
    key.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('/'))
        .ok_or_else(|| PatchError::Invalid(err.to_string()))
}

fn merge_map(
    mut original: Map<String, Value>,
    patch: &Map<String, Value>,
) -> Result<Map<String, Value>, PatchError> {
    if let Some(directive) = patch.get(DIRECTIVE) {
        return match directive.as_str() {
            Some("replace") => {
                let mut rest = patch.clone();
                rest.remove(DIRECTIVE);
                merge_map(Map::new(), &rest)
            }
            Some("delete") => Ok(Map::new()),
            _ => Err(PatchError::Invalid(format!(
                "unknown patch type: {directive} in map: {}",
                Value::Object(patch.clone())
            ))),
        };
    }

    apply_retain_keys(&mut original, patch)?;

    // $setElementOrder/<field>: merge that list now and order it; the main loop skips it.
    let mut handled: Vec<&str> = Vec::new();
    for (key, order) in patch {
        if !key.starts_with(SET_ORDER) {
            continue;
        }
        let field = directive_field(key, SET_ORDER, ERR_SET_ORDER)?;
        let Value::Array(order) = order else {
            return Err(PatchError::Invalid(ERR_SET_ORDER.to_string()));
        };
        if let Some(list) = merge_with_element_order(&original, patch, field, order)? {
            original.insert(field.to_string(), Value::Array(list));
            handled.push(field);
        }
    }

    // $deleteFromPrimitiveList/<field>: remove those values from the live list.
    for (key, values) in patch {
        if !key.starts_with(DELETE_PRIMITIVE) {
            continue;
        }
        let field = directive_field(key, DELETE_PRIMITIVE, ERR_PRIMITIVE_LIST)?;
        let Value::Array(values) = values else {
            return Err(PatchError::Invalid(ERR_PRIMITIVE_LIST.to_string()));
        };
        if let Some(Value::Array(list)) = original.get_mut(field) {
            list.retain(|v| !values.contains(v));
        }
    }

    for (key, patch_value) in patch {
        if is_directive_key(key) || handled.contains(&key.as_str()) {
            continue;
        }
        if patch_value.is_null() {
            original.remove(key);
            continue;
        }
        match original.get_mut(key) {
            None => {
                if let Some(v) = new_value(key, patch_value)? {
                    original.insert(key.clone(), v);
                }
            }
            Some(slot) => {
                let old = std::mem::take(slot);
                *slot = match (old, patch_value) {
                    (Value::Object(o), Value::Object(p)) => Value::Object(merge_map(o, p)?),
                    (Value::Array(o), Value::Array(p)) => Value::Array(merge_list(key, o, p)?),
                    (_, p) => clean(p),
                };
            }
        }
    }
    Ok(original)
}

/// The value stored for a key the original does not have: the patch value merged into nothing,
/// so that directives are processed and nulls dropped. `None` when nothing is to be stored.
fn new_value(field: &str, patch_value: &Value) -> Result<Option<Value>, PatchError> {
    Ok(match patch_value {
        Value::Object(p) => {
            if p.get(DIRECTIVE).and_then(Value::as_str) == Some("delete") {
                None
            } else {
                Some(Value::Object(merge_map(Map::new(), p)?))
            }
        }
        Value::Array(p) => Some(Value::Array(merge_list(field, Vec::new(), p)?)),
        other => Some(other.clone()),
    })
}

/// `$retainKeys`: keys of the original not in the list are cleared; every non-null key of the
/// patch must be in the list.
fn apply_retain_keys(
    original: &mut Map<String, Value>,
    patch: &Map<String, Value>,
) -> Result<(), PatchError> {
    let Some(retain) = patch.get(RETAIN_KEYS) else {
        return Ok(());
    };
    let Value::Array(retain) = retain else {
        return Err(PatchError::Invalid(ERR_RETAIN_KEYS.to_string()));
    };
    let mut keep: Vec<&str> = Vec::with_capacity(retain.len());
    for k in retain {
        match k.as_str() {
            Some(k) => keep.push(k),
            None => return Err(PatchError::Invalid(ERR_RETAIN_KEYS.to_string())),
        }
    }
    for (k, v) in patch {
        if v.is_null() || is_directive_key(k) {
            continue;
        }
        if !keep.contains(&k.as_str()) {
            return Err(PatchError::Invalid(ERR_RETAIN_KEYS.to_string()));
        }
    }
    original.retain(|k, _| keep.contains(&k.as_str()));
    Ok(())
}

/// Merges `field` of `patch` into `original` and orders the result by `$setElementOrder`.
/// `None` when there is nothing to order (no list on either side, not a merging list, or the
/// patch deletes the list with null).
fn merge_with_element_order(
    original: &Map<String, Value>,
    patch: &Map<String, Value>,
    field: &str,
    order: &[Value],
) -> Result<Option<Vec<Value>>, PatchError> {
    let Some(mk) = merge_key(field) else {
        // Not a merging list: the directive has no meaning; the list itself replaces.
        return Ok(None);
    };
    let patch_list = match patch.get(field) {
        None => None,
        Some(Value::Array(a)) => Some(a),
        Some(Value::Null) => return Ok(None),
        Some(_) => return Err(PatchError::Invalid(ERR_SET_ORDER.to_string())),
    };
    let live = match original.get(field) {
        Some(Value::Array(a)) => Some(a.clone()),
        _ => None,
    };
    let key = match mk {
        MergeKey::Field(k) => Some(k),
        MergeKey::Set => None,
    };
    if let Some(k) = key {
        for item in order {
            if item.as_object().and_then(|m| m.get(k)).is_none() {
                return Err(no_merge_key(item, k));
            }
        }
    }
    if let Some(p) = patch_list {
        validate_element_order(p, order, key)?;
    }
    let merged = match (live.clone(), patch_list) {
        (None, None) => return Ok(None),
        (Some(l), None) => l,
        (None, Some(p)) => merge_list(field, Vec::new(), p)?,
        (Some(l), Some(p)) => merge_list(field, l, p)?,
    };
    let server_order = live.unwrap_or_default();
    Ok(Some(normalize_order(merged, order, &server_order, key)))
}

/// The items of the patch list (deletions and other directive items aside) must appear in the
/// `$setElementOrder` list in the same relative order.
fn validate_element_order(
    patch_list: &[Value],
    order: &[Value],
    key: Option<&str>,
) -> Result<(), PatchError> {
    let items: Vec<&Value> = patch_list
        .iter()
        .filter(|v| v.as_object().is_none_or(|m| !m.contains_key(DIRECTIVE)))
        .collect();
    let (mut pi, mut si) = (0, 0);
    while pi < items.len() && si < order.len() {
        let same = match key {
            Some(k) => {
                let a = items[pi].as_object().and_then(|m| m.get(k));
                let Some(a) = a else {
                    return Err(no_merge_key(items[pi], k));
                };
                order[si].as_object().and_then(|m| m.get(k)) == Some(a)
            }
            None => items[pi] == &order[si],
        };
        if same {
            pi += 1;
        }
        si += 1;
    }
    if pi < items.len() {
        return Err(PatchError::Invalid(format!(
            "The order in patch list:\n{}\n doesn't match {SET_ORDER} list:\n{}\n",
            Value::Array(patch_list.to_vec()),
            Value::Array(order.to_vec())
        )));
    }
    Ok(())
}

fn no_merge_key(item: &Value, key: &str) -> PatchError {
    PatchError::Invalid(format!(
        "map: {item} does not contain declared merge key: {key}"
    ))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ElementKind {
    Object,
    Scalar,
}

/// The common kind of the elements of both lists.
fn element_kind(original: &[Value], patch: &[Value]) -> Result<Option<ElementKind>, PatchError> {
    let mut kind = None;
    for v in original.iter().chain(patch) {
        let k = match v {
            Value::Array(_) => {
                return Err(PatchError::Failed(
                    "lists of lists are not supported".to_string(),
                ));
            }
            Value::Object(_) => ElementKind::Object,
            _ => ElementKind::Scalar,
        };
        match kind {
            None => kind = Some(k),
            Some(prev) if prev != k => {
                return Err(PatchError::Invalid(format!(
                    "list element types are not identical: {} {}",
                    Value::Array(original.to_vec()),
                    Value::Array(patch.to_vec())
                )));
            }
            Some(_) => {}
        }
    }
    Ok(kind)
}

/// Merges the patch list of `field` into the original list.
fn merge_list(
    field: &str,
    original: Vec<Value>,
    patch: &[Value],
) -> Result<Vec<Value>, PatchError> {
    let Some(mk) = merge_key(field) else {
        return Ok(patch.iter().map(clean).collect());
    };
    let Some(kind) = element_kind(&original, patch)? else {
        // Both empty.
        return Ok(original);
    };
    match kind {
        ElementKind::Scalar => {
            let mut merged = original.clone();
            for p in patch {
                if !merged.contains(p) {
                    merged.push(p.clone());
                }
            }
            Ok(normalize_order(merged, patch, &original, None))
        }
        ElementKind::Object => {
            let MergeKey::Field(key) = mk else {
                return Err(PatchError::Invalid(format!(
                    "cannot merge lists without merge key for {field}"
                )));
            };
            let mut live = original;
            let mut plain: Vec<&Map<String, Value>> = Vec::new();
            let mut replace = false;
            for p in patch {
                let Value::Object(pm) = p else { continue };
                let Some(directive) = pm.get(DIRECTIVE) else {
                    plain.push(pm);
                    continue;
                };
                match directive.as_str() {
                    Some("delete") => {
                        let Some(kv) = pm.get(key) else {
                            return Err(no_merge_key(p, key));
                        };
                        live.retain(|o| o.get(key) != Some(kv));
                    }
                    Some("replace") => replace = true,
                    Some("merge") => {
                        return Err(PatchError::Invalid(
                            "merging lists cannot yet be specified in the patch".to_string(),
                        ));
                    }
                    _ => {
                        return Err(PatchError::Invalid(format!(
                            "unknown patch type: {directive} in map: {p}"
                        )));
                    }
                }
            }
            if replace {
                // The list becomes the patch's other elements.
                let mut out = Vec::with_capacity(plain.len());
                for pm in plain {
                    if !pm.contains_key(key) {
                        return Err(no_merge_key(&Value::Object(pm.clone()), key));
                    }
                    out.push(Value::Object(merge_map(Map::new(), pm)?));
                }
                return Ok(out);
            }
            let server_order = live.clone();
            let mut merged = live;
            let mut patch_order = Vec::with_capacity(plain.len());
            for pm in plain {
                let Some(kv) = pm.get(key) else {
                    return Err(no_merge_key(&Value::Object(pm.clone()), key));
                };
                match merged.iter().position(|o| o.get(key) == Some(kv)) {
                    Some(i) => {
                        let old = std::mem::take(&mut merged[i]);
                        let old = match old {
                            Value::Object(m) => m,
                            _ => Map::new(),
                        };
                        merged[i] = Value::Object(merge_map(old, pm)?);
                    }
                    None => merged.push(Value::Object(merge_map(Map::new(), pm)?)),
                }
                patch_order.push(Value::Object(pm.clone()));
            }
            Ok(normalize_order(
                merged,
                &patch_order,
                &server_order,
                Some(key),
            ))
        }
    }
}

/// What identifies a list item: its merge key value, or the item itself for primitives.
fn ident<'a>(v: &'a Value, key: Option<&str>) -> Option<&'a Value> {
    match key {
        Some(k) => v.as_object()?.get(k),
        None => Some(v),
    }
}

fn index_of(list: &[Value], v: &Value, key: Option<&str>) -> Option<usize> {
    let id = ident(v, key)?;
    list.iter().position(|x| ident(x, key) == Some(id))
}

/// apimachinery's `normalizeElementOrder`: items present in `patch_order` follow that order,
/// the others ("server-only") follow `server_order`, and both are interleaved by their
/// positions in `server_order` where both are known.
fn normalize_order(
    items: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    key: Option<&str>,
) -> Vec<Value> {
    let (mut patch_items, mut server_only): (Vec<Value>, Vec<Value>) = items
        .into_iter()
        .partition(|v| index_of(patch_order, v, key).is_some());
    patch_items.sort_by_key(|v| index_of(patch_order, v, key).unwrap_or(usize::MAX));
    server_only.sort_by_key(|v| index_of(server_order, v, key).unwrap_or(usize::MAX));

    // mergeSortedSlice(left = server-only, right = patch items).
    let mut out = Vec::with_capacity(patch_items.len() + server_only.len());
    let mut left = server_only.into_iter().peekable();
    let mut right = patch_items.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => matches!(
                (index_of(server_order, l, key), index_of(server_order, r, key)),
                (Some(a), Some(b)) if a < b
            ),
        };
        let next = if take_left { left.next() } else { right.next() };
        if let Some(v) = next {
            out.push(v);
        }
    }
    out
}

/// A patch value stored as is (replacing a value or an atomic list): directive keys and nulls
/// inside objects are dropped.
fn clean(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, v)| !is_directive_key(k) && !v.is_null())
                .map(|(k, v)| (k.clone(), clean(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(clean).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn smp(target: Value, patch: Value) -> Value {
        let mut t = target;
        strategic_merge_patch(&mut t, &patch).expect("patch applies");
        t
    }

    fn has_directive(v: &Value) -> bool {
        match v {
            Value::Object(m) => m
                .iter()
                .any(|(k, v)| k.starts_with('$') || has_directive(v)),
            Value::Array(a) => a.iter().any(has_directive),
            _ => false,
        }
    }

    fn pod() -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p", "labels": {"app": "x", "tier": "web"}, "finalizers": ["a", "b"]},
            "spec": {
                "containers": [
                    {"name": "main", "image": "img:1", "env": [
                        {"name": "A", "value": "1"},
                        {"name": "B", "value": "2"}
                    ]},
                    {"name": "side", "image": "side:1"}
                ],
                "tolerations": [{"key": "k1", "operator": "Exists"}, {"key": "k2", "operator": "Exists"}],
                "volumes": [{"name": "v", "configMap": {"name": "cm"}}]
            }
        })
    }

    #[test]
    fn merge_patch_null_deletes_scalars_replace_objects_merge() {
        let mut t = json!({"a": 1, "b": {"c": 2, "d": 3}, "l": [1, 2], "gone": true});
        merge_patch(
            &mut t,
            &json!({"a": 5, "b": {"c": null, "e": 4}, "l": [3], "gone": null}),
        )
        .unwrap();
        assert_eq!(t, json!({"a": 5, "b": {"d": 3, "e": 4}, "l": [3]}));
    }

    #[test]
    fn merge_patch_rejects_non_object() {
        let mut t = json!({"a": 1});
        let err = merge_patch(&mut t, &json!([1])).unwrap_err();
        assert!(matches!(err, PatchError::Invalid(_)));
        assert_eq!(err.status_code(), 400);
        assert_eq!(t, json!({"a": 1}));
    }

    #[test]
    fn json_patch_add_replace_remove() {
        let mut t = json!({"metadata": {"labels": {"a": "1"}}, "spec": {"replicas": 1, "x": 1}});
        json_patch(
            &mut t,
            &json!([
                {"op": "add", "path": "/metadata/labels/b", "value": "2"},
                {"op": "replace", "path": "/spec/replicas", "value": 3},
                {"op": "remove", "path": "/spec/x"}
            ]),
        )
        .unwrap();
        assert_eq!(
            t,
            json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"replicas": 3}})
        );
    }

    #[test]
    fn json_patch_failed_test_is_422_and_changes_nothing() {
        let before = json!({"spec": {"replicas": 1}});
        let mut t = before.clone();
        let err = json_patch(
            &mut t,
            &json!([
                {"op": "replace", "path": "/spec/replicas", "value": 9},
                {"op": "test", "path": "/spec/replicas", "value": 2}
            ]),
        )
        .unwrap_err();
        assert!(matches!(err, PatchError::Failed(_)), "{err:?}");
        assert_eq!(err.status_code(), 422);
        assert_eq!(t, before);

        let err =
            json_patch(&mut t, &json!([{"op": "remove", "path": "/spec/missing"}])).unwrap_err();
        assert!(matches!(err, PatchError::Failed(_)));
        assert_eq!(t, before);
    }

    #[test]
    fn json_patch_malformed_is_invalid() {
        let mut t = json!({});
        let err = json_patch(&mut t, &json!({"op": "add"})).unwrap_err();
        assert!(matches!(err, PatchError::Invalid(_)));
        let err = json_patch(&mut t, &json!([{"op": "frobnicate", "path": "/a"}])).unwrap_err();
        assert!(matches!(err, PatchError::Invalid(_)));
    }

    #[test]
    fn smp_merges_containers_and_env_by_name() {
        let out = smp(
            pod(),
            json!({"spec": {"containers": [
                {"name": "main", "image": "img:2", "env": [{"name": "B", "value": "20"}, {"name": "C", "value": "3"}]}
            ]}}),
        );
        let containers = out["spec"]["containers"].as_array().unwrap();
        assert_eq!(containers.len(), 2);
        assert_eq!(containers[0]["name"], "main");
        assert_eq!(containers[0]["image"], "img:2");
        assert_eq!(containers[1], json!({"name": "side", "image": "side:1"}));
        let env = containers[0]["env"].as_array().unwrap();
        let names: Vec<&str> = env.iter().map(|e| e["name"].as_str().unwrap()).collect();
        // Patch items in patch order, the server-only A kept before B as on the server.
        assert_eq!(names, ["A", "B", "C"]);
        assert_eq!(env[1]["value"], "20");
        assert_eq!(env[0]["value"], "1");
    }

    #[test]
    fn smp_new_list_item_without_order_goes_first() {
        // apimachinery's mergeSortedSlice puts patch items not on the server before server-only items.
        let out = smp(
            pod(),
            json!({"spec": {"containers": [{"name": "new", "image": "n:1"}]}}),
        );
        let names: Vec<&str> = out["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["new", "main", "side"]);
    }

    #[test]
    fn smp_delete_list_element() {
        let out = smp(
            pod(),
            json!({"spec": {"containers": [{"$patch": "delete", "name": "side"}]}}),
        );
        let containers = out["spec"]["containers"].as_array().unwrap();
        assert_eq!(containers.len(), 1);
        assert_eq!(containers[0]["name"], "main");
        assert!(!has_directive(&out));
    }

    #[test]
    fn smp_set_element_order() {
        // What kubectl apply/edit sends: the full order plus the changed items.
        let out = smp(
            pod(),
            json!({"spec": {
                "$setElementOrder/containers": [{"name": "side"}, {"name": "extra"}, {"name": "main"}],
                "containers": [{"name": "extra", "image": "e:1"}]
            }}),
        );
        let names: Vec<&str> = out["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["side", "extra", "main"]);
        assert_eq!(out["spec"]["containers"][0]["image"], "side:1");
        assert!(!has_directive(&out));
    }

    #[test]
    fn smp_set_element_order_appends_new_env() {
        let out = smp(
            pod(),
            json!({"spec": {"containers": [{
                "name": "main",
                "$setElementOrder/env": [{"name": "A"}, {"name": "B"}, {"name": "C"}],
                "env": [{"name": "C", "value": "3"}]
            }]}}),
        );
        let names: Vec<&str> = out["spec"]["containers"][0]["env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["A", "B", "C"]);
    }

    #[test]
    fn smp_set_element_order_mismatch_is_invalid() {
        let mut t = pod();
        let err = strategic_merge_patch(
            &mut t,
            &json!({"spec": {
                "$setElementOrder/containers": [{"name": "main"}],
                "containers": [{"name": "other", "image": "o"}]
            }}),
        )
        .unwrap_err();
        assert!(matches!(err, PatchError::Invalid(_)));
        assert_eq!(t, pod());
    }

    #[test]
    fn smp_delete_from_primitive_list() {
        let out = smp(
            pod(),
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}),
        );
        assert_eq!(out["metadata"]["finalizers"], json!(["b"]));
        assert!(!has_directive(&out));
    }

    #[test]
    fn smp_finalizers_as_kubectl_edit_sends_them() {
        let out = smp(
            pod(),
            json!({"metadata": {
                "$setElementOrder/finalizers": ["b", "c"],
                "$deleteFromPrimitiveList/finalizers": ["a"],
                "finalizers": ["c"]
            }}),
        );
        assert_eq!(out["metadata"]["finalizers"], json!(["b", "c"]));
        assert!(!has_directive(&out));
    }

    #[test]
    fn smp_finalizers_merge_as_set() {
        let out = smp(pod(), json!({"metadata": {"finalizers": ["b", "c"]}}));
        let fins: Vec<&str> = out["metadata"]["finalizers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(fins.len(), 3);
        for f in ["a", "b", "c"] {
            assert!(fins.contains(&f), "{fins:?}");
        }
    }

    #[test]
    fn smp_tolerations_replaced() {
        let out = smp(
            pod(),
            json!({"spec": {"tolerations": [{"key": "k3", "operator": "Exists"}]}}),
        );
        assert_eq!(
            out["spec"]["tolerations"],
            json!([{"key": "k3", "operator": "Exists"}])
        );
    }

    #[test]
    fn smp_retain_keys() {
        let out = smp(
            pod(),
            json!({"spec": {"volumes": [
                {"name": "v", "$retainKeys": ["name", "secret"], "secret": {"secretName": "s"}}
            ]}}),
        );
        assert_eq!(
            out["spec"]["volumes"],
            json!([{"name": "v", "secret": {"secretName": "s"}}])
        );
    }

    #[test]
    fn smp_retain_keys_must_cover_patch_keys() {
        let mut t = pod();
        let err = strategic_merge_patch(
            &mut t,
            &json!({"spec": {"volumes": [
                {"name": "v", "$retainKeys": ["name"], "secret": {"secretName": "s"}}
            ]}}),
        )
        .unwrap_err();
        assert_eq!(err, PatchError::Invalid(ERR_RETAIN_KEYS.to_string()));
        assert_eq!(t, pod());
    }

    #[test]
    fn smp_null_deletes_keys() {
        let out = smp(
            pod(),
            json!({"metadata": {"labels": {"tier": null, "new": "y"}}, "spec": {"tolerations": null}}),
        );
        assert_eq!(out["metadata"]["labels"], json!({"app": "x", "new": "y"}));
        assert!(out["spec"].get("tolerations").is_none());
    }

    #[test]
    fn smp_map_directives() {
        let out = smp(
            pod(),
            json!({"metadata": {"labels": {"$patch": "replace", "only": "one"}}}),
        );
        assert_eq!(out["metadata"]["labels"], json!({"only": "one"}));
        let out = smp(pod(), json!({"metadata": {"labels": {"$patch": "delete"}}}));
        assert_eq!(out["metadata"]["labels"], json!({}));
        let out = smp(
            pod(),
            json!({"metadata": {"annotations": {"$patch": "delete"}}}),
        );
        assert!(out["metadata"].get("annotations").is_none());
    }

    #[test]
    fn smp_list_replace_directive() {
        let out = smp(
            pod(),
            json!({"spec": {"containers": [{"$patch": "replace"}, {"name": "solo", "image": "s:1"}]}}),
        );
        assert_eq!(
            out["spec"]["containers"],
            json!([{"name": "solo", "image": "s:1"}])
        );
    }

    #[test]
    fn smp_directives_never_stored_in_new_values() {
        let out = smp(
            json!({"metadata": {"name": "p"}}),
            json!({"spec": {
                "$setElementOrder/containers": [{"name": "a"}],
                "containers": [{"name": "a", "env": [{"$patch": "delete", "name": "gone"}, {"name": "E", "value": null}]}, {"$patch": "delete", "name": "z"}],
                "securityContext": {"$patch": "replace", "runAsUser": 1}
            }}),
        );
        assert!(!has_directive(&out), "{out}");
        assert_eq!(
            out["spec"]["containers"],
            json!([{"name": "a", "env": [{"name": "E"}]}])
        );
        assert_eq!(out["spec"]["securityContext"], json!({"runAsUser": 1}));
    }

    #[test]
    fn smp_missing_merge_key_and_unknown_directive_are_invalid() {
        let mut t = pod();
        let err = strategic_merge_patch(&mut t, &json!({"spec": {"containers": [{"image": "x"}]}}))
            .unwrap_err();
        assert!(matches!(err, PatchError::Invalid(_)));
        let err = strategic_merge_patch(&mut t, &json!({"spec": {"$patch": "frob"}})).unwrap_err();
        assert!(matches!(err, PatchError::Invalid(_)));
        let err = strategic_merge_patch(&mut t, &json!("str")).unwrap_err();
        assert!(matches!(err, PatchError::Invalid(_)));
        assert_eq!(t, pod());
    }

    #[test]
    fn smp_lists_of_lists_fail() {
        let mut t = json!({"metadata": {"finalizers": ["a"]}});
        let err = strategic_merge_patch(&mut t, &json!({"metadata": {"finalizers": [["x"]]}}))
            .unwrap_err();
        assert!(matches!(err, PatchError::Failed(_)));
    }

    #[test]
    fn merge_key_table() {
        assert_eq!(merge_key("containers"), Some(MergeKey::Field("name")));
        assert_eq!(
            merge_key("volumeMounts"),
            Some(MergeKey::Field("mountPath"))
        );
        assert_eq!(merge_key("ports"), Some(MergeKey::Field("containerPort")));
        assert_eq!(merge_key("ownerReferences"), Some(MergeKey::Field("uid")));
        assert_eq!(merge_key("finalizers"), Some(MergeKey::Set));
        assert_eq!(merge_key("tolerations"), None);
        assert_eq!(merge_key("args"), None);
    }
}
