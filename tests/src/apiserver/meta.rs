//! Object metadata helpers: timestamps, uids, names and field access on JSON objects.

use serde_json::{Map, Value};

/// Now as the API server writes timestamps (RFC 3339, whole seconds, UTC).
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Now plus `seconds`, formatted like [`now`].
pub fn now_plus(seconds: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::seconds(seconds))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A random RFC 4122 version-4 UUID, as the API server gives `metadata.uid`.
pub fn new_uid() -> String {
    let mut bytes = [0u8; 16];
    for byte in &mut bytes {
        *byte = fastrand::u8(..);
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// The five random characters `generateName` gets (the API server's alphabet has no vowels).
pub fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..5)
        .map(|_| ALPHABET[fastrand::usize(..ALPHABET.len())] as char)
        .collect()
}

/// `object.metadata`, created if missing.
pub fn metadata_mut(object: &mut Value) -> &mut Map<String, Value> {
    if !object.is_object() {
        *object = Value::Object(Map::new());
    }
    let Some(map) = object.as_object_mut() else {
        unreachable!("made an object above")
    };
    let metadata = map
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !metadata.is_object() {
        *metadata = Value::Object(Map::new());
    }
    match metadata.as_object_mut() {
        Some(metadata) => metadata,
        None => unreachable!("made an object above"),
    }
}

/// A string field of `object.metadata` ("" when missing).
pub fn meta_str<'a>(object: &'a Value, field: &str) -> &'a str {
    object
        .get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// `metadata.labels` as pairs.
pub fn labels(object: &Value) -> Vec<(String, String)> {
    string_map(object.get("metadata").and_then(|m| m.get("labels")))
}

/// A JSON object of strings as pairs (non-strings skipped).
pub fn string_map(value: Option<&Value>) -> Vec<(String, String)> {
    value
        .and_then(Value::as_object)
        .map(|map| {
            map.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// `metadata.finalizers`.
pub fn finalizers(object: &Value) -> Vec<String> {
    object
        .get("metadata")
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|f| f.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Sets `metadata.finalizers` (removing the field when empty, as the server does).
pub fn set_finalizers(object: &mut Value, finalizers: &[String]) {
    let metadata = metadata_mut(object);
    if finalizers.is_empty() {
        metadata.remove("finalizers");
    } else {
        metadata.insert("finalizers".into(), Value::from(finalizers.to_vec()));
    }
}

/// Whether `metadata.deletionTimestamp` is set.
pub fn is_deleting(object: &Value) -> bool {
    !meta_str(object, "deletionTimestamp").is_empty()
}

/// The uids of `metadata.ownerReferences`, with whether each blocks owner deletion.
pub fn owner_uids(object: &Value) -> Vec<(String, bool)> {
    object
        .get("metadata")
        .and_then(|m| m.get("ownerReferences"))
        .and_then(Value::as_array)
        .map(|refs| {
            refs.iter()
                .filter_map(|r| {
                    let uid = r.get("uid")?.as_str()?.to_string();
                    let blocks = r
                        .get("blockOwnerDeletion")
                        .and_then(Value::as_bool)
                        .unwrap_or(false);
                    Some((uid, blocks))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The value at a dotted path of plain field names (`spec.nodeName`).
pub fn path<'a>(object: &'a Value, dotted: &str) -> Option<&'a Value> {
    dotted
        .split('.')
        .try_fold(object, |value, field| value.get(field))
}

/// A human duration like `kubectl` prints ages: `45s`, `3m20s`, `5h`, `2d3h`
/// (k8s.io/apimachinery `duration.HumanDuration`).
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    }
    let seconds = seconds.max(0);
    let minutes = seconds / 60;
    let hours = seconds / 3600;
    if seconds < 120 {
        return format!("{seconds}s");
    }
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    let years = hours / 24 / 365;
    if years < 8 {
        format!("{years}y{}d", (hours / 24) % 365)
    } else {
        format!("{years}y")
    }
}

/// Seconds since an RFC 3339 timestamp (None when unparsable).
pub fn seconds_since(timestamp: &str) -> Option<i64> {
    let then = chrono::DateTime::parse_from_rfc3339(timestamp).ok()?;
    Some((chrono::Utc::now() - then.with_timezone(&chrono::Utc)).num_seconds())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations_match_kubectl() {
        assert_eq!(human_duration(0), "0s");
        assert_eq!(human_duration(119), "119s");
        assert_eq!(human_duration(120), "2m");
        assert_eq!(human_duration(200), "3m20s");
        assert_eq!(human_duration(11 * 60), "11m");
        assert_eq!(human_duration(5 * 3600 + 60), "5h1m");
        assert_eq!(human_duration(20 * 3600), "20h");
        assert_eq!(human_duration(3 * 86400 + 3600), "3d1h");
        assert_eq!(human_duration(30 * 86400), "30d");
        assert_eq!(human_duration(-5), "<invalid>");
    }

    #[test]
    fn uids_are_version_4() {
        let uid = new_uid();
        assert_eq!(uid.len(), 36);
        assert_eq!(&uid[14..15], "4");
        assert_ne!(uid, new_uid());
    }
}

/// Numbers as a Go server keeps a custom resource: JSON decodes into int64 where it can, else
/// float64, and a float64 with a whole value encodes without a fraction, so `570.0` comes back
/// as `570` (kubectl's table and every client then read `570`).
pub fn go_numbers(value: &mut Value) {
    match value {
        Value::Number(number) => {
            if let Some(float) = number.as_f64()
                && number.is_f64()
                && float.fract() == 0.0
                && float.abs() < 1e21
            {
                // Whole values below 1e21 print as integers in Go; i64 holds those up to 2^63.
                if let Some(whole) = whole_number(float) {
                    *value = whole;
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(go_numbers),
        Value::Object(fields) => fields.values_mut().for_each(go_numbers),
        _ => {}
    }
}

fn whole_number(float: f64) -> Option<Value> {
    if float >= i64::MIN as f64 && float < i64::MAX as f64 {
        // The range check makes the conversion exact for whole values.
        Some(Value::from(float as i64))
    } else {
        None
    }
}

/// Whether `new` equals `old` but for its resourceVersion and the `time` of its managedFields
/// entries (what apiserver's IgnoreManagedFieldsTimestampsTransformer ignores).
pub fn same_but_timestamps(old: &Value, new: &Value) -> bool {
    fn normalised(object: &Value) -> Value {
        let mut copy = object.clone();
        if let Some(metadata) = copy.get_mut("metadata").and_then(Value::as_object_mut) {
            metadata.remove("resourceVersion");
            if let Some(entries) = metadata
                .get_mut("managedFields")
                .and_then(Value::as_array_mut)
            {
                for entry in entries.iter_mut().filter_map(Value::as_object_mut) {
                    entry.remove("time");
                }
            }
        }
        copy
    }
    normalised(old) == normalised(new)
}

#[cfg(test)]
mod go_number_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn whole_floats_read_back_as_integers_like_a_go_server_keeps_them() {
        let mut value = json!({"rps": 570.0, "p95": 5.73, "count": 3, "list": [2.0, -1.0, 0.5],
                               "huge": 1e300});
        go_numbers(&mut value);
        assert_eq!(
            value.to_string(),
            r#"{"count":3,"huge":1e+300,"list":[2,-1,0.5],"p95":5.73,"rps":570}"#
        );
    }

    #[test]
    fn only_managed_fields_timestamps_and_the_resource_version_may_differ_in_a_no_op() {
        let old = json!({"metadata": {"name": "a", "resourceVersion": "5",
                          "managedFields": [{"manager": "op", "time": "2026-01-01T00:00:00Z"}]},
                         "data": {"k": "v"}});
        let mut new = old.clone();
        new["metadata"]["resourceVersion"] = json!("6");
        new["metadata"]["managedFields"][0]["time"] = json!("2026-01-01T00:00:09Z");
        assert!(same_but_timestamps(&old, &new));
        new["data"]["k"] = json!("w");
        assert!(!same_but_timestamps(&old, &new));
    }
}
