//! Pure container environment resolution as the kubelet does it: `envFrom`, then `env` with
//! `$(VAR)` expansion, downward-API field references, and Secret / ConfigMap keys (the objects
//! are fetched beforehand by the caller and passed in).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{ConfigMap, Container, EnvVar, Pod, Secret};

/// The address pods get for `status.podIP` / `status.hostIP`: every process runs on loopback.
pub const LOOPBACK_IP: &str = "127.0.0.1";

/// The Secrets and ConfigMaps a container references, fetched from its namespace; `None` for
/// one that does not exist.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EnvSources {
    /// Secret name → the object.
    pub secrets: BTreeMap<String, Option<Secret>>,
    /// ConfigMap name → the object.
    pub config_maps: BTreeMap<String, Option<ConfigMap>>,
}

/// The names of the Secrets and ConfigMaps a container's environment references.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct References {
    /// Secret names.
    pub secrets: BTreeSet<String>,
    /// ConfigMap names.
    pub config_maps: BTreeSet<String>,
}

/// Lists what [`resolve_env`] will look up for `container`.
pub fn references(container: &Container) -> References {
    let mut refs = References::default();
    for source in container.env_from.iter().flatten() {
        if let Some(r) = &source.secret_ref {
            refs.secrets.insert(r.name.clone());
        }
        if let Some(r) = &source.config_map_ref {
            refs.config_maps.insert(r.name.clone());
        }
    }
    for var in container.env.iter().flatten() {
        let Some(from) = &var.value_from else {
            continue;
        };
        if let Some(r) = &from.secret_key_ref {
            refs.secrets.insert(r.name.clone());
        }
        if let Some(r) = &from.config_map_key_ref {
            refs.config_maps.insert(r.name.clone());
        }
    }
    refs
}

/// An ordered environment where setting a name again replaces its value in place.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvList(pub Vec<(String, String)>);

impl EnvList {
    /// Sets `name` (replacing an earlier value).
    pub fn set(&mut self, name: &str, value: String) {
        match self.0.iter_mut().find(|(n, _)| n == name) {
            Some(entry) => entry.1 = value,
            None => self.0.push((name.to_string(), value)),
        }
    }

    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Expands `$(VAR)` references like Kubernetes: a defined variable is replaced by its value,
/// an undefined one is left as written, `$$` is an escaped `$`, and any other `$` stays.
pub fn expand(input: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if after.is_empty() {
            // A trailing `$` is kept.
            out.push('$');
            rest = after;
        } else if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('(') {
            match body.find(')') {
                Some(end) => {
                    let name = &body[..end];
                    match lookup(name) {
                        Some(value) => out.push_str(&value),
                        None => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    rest = &body[end + 1..];
                }
                None => {
                    // An unclosed reference is copied as it is.
                    out.push_str("$(");
                    rest = body;
                }
            }
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// Whether `name` can be an environment variable name (Kubernetes allows printable ASCII
/// without `=`).
fn valid_env_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && b != b'=')
}

/// A key's value in a Secret: `data` (already base64-decoded) or `stringData` (for a server
/// that did not fold it into `data`).
fn secret_value(secret: &Secret, key: &str) -> Option<String> {
    if let Some(bytes) = secret.data.as_ref().and_then(|d| d.get(key)) {
        return Some(String::from_utf8_lossy(&bytes.0).into_owned());
    }
    secret
        .string_data
        .as_ref()
        .and_then(|d| d.get(key))
        .cloned()
}

/// All of a Secret's keys and values.
fn secret_entries(secret: &Secret) -> Vec<(String, String)> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in secret.string_data.iter().flatten() {
        out.insert(k.clone(), v.clone());
    }
    for (k, v) in secret.data.iter().flatten() {
        out.insert(k.clone(), String::from_utf8_lossy(&v.0).into_owned());
    }
    out.into_iter().collect()
}

/// A key's value in a ConfigMap (`data`, then `binaryData`).
fn config_map_value(config_map: &ConfigMap, key: &str) -> Option<String> {
    if let Some(value) = config_map.data.as_ref().and_then(|d| d.get(key)) {
        return Some(value.clone());
    }
    config_map
        .binary_data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|b| String::from_utf8_lossy(&b.0).into_owned())
}

/// All of a ConfigMap's keys and values.
fn config_map_entries(config_map: &ConfigMap) -> Vec<(String, String)> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in config_map.binary_data.iter().flatten() {
        out.insert(k.clone(), String::from_utf8_lossy(&v.0).into_owned());
    }
    for (k, v) in config_map.data.iter().flatten() {
        out.insert(k.clone(), v.clone());
    }
    out.into_iter().collect()
}

/// `key` out of a `metadata.labels['key']`-style path.
fn bracket_key<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    let inner = path
        .strip_prefix(prefix)?
        .strip_prefix('[')?
        .strip_suffix(']')?;
    inner
        .strip_prefix('\'')
        .and_then(|s| s.strip_suffix('\''))
        .or_else(|| inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')))
}

/// The value of a downward-API `fieldRef` path for `pod`.
pub fn field_value(pod: &Pod, path: &str) -> Result<String, String> {
    let meta = &pod.metadata;
    let spec = pod.spec.as_ref();
    let text = |v: Option<&String>| v.cloned().unwrap_or_default();
    match path {
        "metadata.name" => Ok(text(meta.name.as_ref())),
        "metadata.namespace" => Ok(text(meta.namespace.as_ref())),
        "metadata.uid" => Ok(text(meta.uid.as_ref())),
        "spec.nodeName" => Ok(text(spec.and_then(|s| s.node_name.as_ref()))),
        "spec.serviceAccountName" => Ok(spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_else(|| "default".to_string())),
        "status.podIP" | "status.hostIP" | "status.podIPs" | "status.hostIPs" => {
            Ok(LOOPBACK_IP.to_string())
        }
        _ => {
            if let Some(key) = bracket_key(path, "metadata.labels") {
                Ok(text(meta.labels.as_ref().and_then(|m| m.get(key))))
            } else if let Some(key) = bracket_key(path, "metadata.annotations") {
                Ok(text(meta.annotations.as_ref().and_then(|m| m.get(key))))
            } else {
                Err(format!("unsupported fieldPath: {path}"))
            }
        }
    }
}

/// The value of one `env` entry: `None` when an optional source is missing (the variable is
/// then not set).
fn env_value(
    pod: &Pod,
    var: &EnvVar,
    sources: &EnvSources,
    env: &EnvList,
) -> Result<Option<String>, String> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
    let Some(from) = &var.value_from else {
        let raw = var.value.as_deref().unwrap_or_default();
        return Ok(Some(expand(raw, |name| env.get(name).map(str::to_string))));
    };
    if let Some(field) = &from.field_ref {
        return field_value(pod, &field.field_path).map(Some);
    }
    if let Some(r) = &from.secret_key_ref {
        let optional = r.optional == Some(true);
        return match sources.secrets.get(&r.name).and_then(Option::as_ref) {
            None if optional => Ok(None),
            None => Err(format!("secret \"{}\" not found", r.name)),
            Some(secret) => match secret_value(secret, &r.key) {
                Some(value) => Ok(Some(value)),
                None if optional => Ok(None),
                None => Err(format!(
                    "couldn't find key {} in Secret {namespace}/{}",
                    r.key, r.name
                )),
            },
        };
    }
    if let Some(r) = &from.config_map_key_ref {
        let optional = r.optional == Some(true);
        return match sources.config_maps.get(&r.name).and_then(Option::as_ref) {
            None if optional => Ok(None),
            None => Err(format!("configmap \"{}\" not found", r.name)),
            Some(config_map) => match config_map_value(config_map, &r.key) {
                Some(value) => Ok(Some(value)),
                None if optional => Ok(None),
                None => Err(format!(
                    "couldn't find key {} in ConfigMap {namespace}/{}",
                    r.key, r.name
                )),
            },
        };
    }
    if from.resource_field_ref.is_some() {
        return Err(format!(
            "env {}: resourceFieldRef is not supported by the process kubelet",
            var.name
        ));
    }
    Ok(Some(String::new()))
}

/// Resolves a container's environment as the kubelet does: `envFrom` sources in order (later
/// ones win, keys that are not valid names are skipped), then `env` entries in order, each
/// `value` expanded against the variables defined before it.
///
/// An `Err` is the message of a `CreateContainerConfigError`.
pub fn resolve_env(
    pod: &Pod,
    container: &Container,
    sources: &EnvSources,
) -> Result<EnvList, String> {
    let mut env = EnvList::default();
    for source in container.env_from.iter().flatten() {
        let prefix = source.prefix.as_deref().unwrap_or_default();
        let entries = if let Some(r) = &source.config_map_ref {
            match sources.config_maps.get(&r.name).and_then(Option::as_ref) {
                Some(config_map) => config_map_entries(config_map),
                None if r.optional == Some(true) => Vec::new(),
                None => return Err(format!("configmap \"{}\" not found", r.name)),
            }
        } else if let Some(r) = &source.secret_ref {
            match sources.secrets.get(&r.name).and_then(Option::as_ref) {
                Some(secret) => secret_entries(secret),
                None if r.optional == Some(true) => Vec::new(),
                None => return Err(format!("secret \"{}\" not found", r.name)),
            }
        } else {
            Vec::new()
        };
        for (key, value) in entries {
            let name = format!("{prefix}{key}");
            if valid_env_name(&name) {
                env.set(&name, value);
            }
        }
    }
    for var in container.env.iter().flatten() {
        if let Some(value) = env_value(pod, var, sources, &env)? {
            env.set(&var.name, value);
        }
    }
    Ok(env)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;
    use k8s_openapi::api::core::v1::{
        ConfigMapEnvSource, ConfigMapKeySelector, EnvFromSource, EnvVarSource, ObjectFieldSelector,
        PodSpec, ResourceFieldSelector, SecretEnvSource, SecretKeySelector,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn pod() -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("load-0-abcde".into()),
                namespace: Some("team".into()),
                uid: Some("pod-uid".into()),
                labels: Some(BTreeMap::from([("app".into(), "stampede".into())])),
                annotations: Some(BTreeMap::from([(
                    "batch.kubernetes.io/job-completion-index".into(),
                    "0".into(),
                )])),
                ..ObjectMeta::default()
            },
            spec: Some(PodSpec {
                node_name: Some("node-1".into()),
                service_account_name: Some("runner".into()),
                ..PodSpec::default()
            }),
            status: None,
        }
    }

    fn value(name: &str, value: &str) -> EnvVar {
        EnvVar {
            name: name.into(),
            value: Some(value.into()),
            value_from: None,
        }
    }

    fn from(name: &str, source: EnvVarSource) -> EnvVar {
        EnvVar {
            name: name.into(),
            value: None,
            value_from: Some(source),
        }
    }

    fn field(name: &str, path: &str) -> EnvVar {
        from(
            name,
            EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    api_version: None,
                    field_path: path.into(),
                }),
                ..EnvVarSource::default()
            },
        )
    }

    fn secret_key(name: &str, secret: &str, key: &str, optional: Option<bool>) -> EnvVar {
        from(
            name,
            EnvVarSource {
                secret_key_ref: Some(SecretKeySelector {
                    name: secret.into(),
                    key: key.into(),
                    optional,
                }),
                ..EnvVarSource::default()
            },
        )
    }

    fn config_key(name: &str, cm: &str, key: &str, optional: Option<bool>) -> EnvVar {
        from(
            name,
            EnvVarSource {
                config_map_key_ref: Some(ConfigMapKeySelector {
                    name: cm.into(),
                    key: key.into(),
                    optional,
                }),
                ..EnvVarSource::default()
            },
        )
    }

    fn container(env: Vec<EnvVar>) -> Container {
        Container {
            name: "runner".into(),
            env: Some(env),
            ..Container::default()
        }
    }

    fn sources() -> EnvSources {
        // The JSON form has base64 data, decoded on deserialization like from the API.
        let secret: Secret = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "creds", "namespace": "team"},
            "data": {"token": "czNjcjN0", "user": "YWRtaW4="},
            "stringData": {"extra": "plain"}
        }))
        .unwrap();
        let config_map = ConfigMap {
            data: Some(BTreeMap::from([
                ("target".into(), "http://127.0.0.1:8080".into()),
                ("rate".into(), "10".into()),
            ])),
            binary_data: Some(BTreeMap::from([(
                "bin".into(),
                ByteString(b"raw".to_vec()),
            )])),
            ..ConfigMap::default()
        };
        EnvSources {
            secrets: BTreeMap::from([("creds".into(), Some(secret)), ("gone".into(), None)]),
            config_maps: BTreeMap::from([("settings".into(), Some(config_map))]),
        }
    }

    fn resolve(env: Vec<EnvVar>) -> Result<Vec<(String, String)>, String> {
        resolve_env(&pod(), &container(env), &sources()).map(|e| e.0)
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn expansion_follows_kubernetes_rules() {
        let vars = |name: &str| match name {
            "A" => Some("x".to_string()),
            "EMPTY" => Some(String::new()),
            _ => None,
        };
        assert_eq!(expand("$(A)-$(A)", vars), "x-x");
        assert_eq!(expand("$(MISSING)", vars), "$(MISSING)");
        assert_eq!(expand("$$(A)", vars), "$(A)");
        assert_eq!(expand("$$$(A)", vars), "$x");
        assert_eq!(expand("a$b$", vars), "a$b$");
        assert_eq!(expand("$(A", vars), "$(A");
        assert_eq!(expand("[$(EMPTY)]", vars), "[]");
        assert_eq!(expand("ü$(A)ü", vars), "üxü");
    }

    #[test]
    fn values_expand_earlier_variables_only() {
        let env = resolve(vec![
            value("HOST", "127.0.0.1"),
            value("URL", "http://$(HOST):$(PORT)/"),
            value("PORT", "80"),
            value("HOST", "override"),
        ])
        .unwrap();
        assert_eq!(
            env,
            pairs(&[
                ("HOST", "override"),
                ("URL", "http://127.0.0.1:$(PORT)/"),
                ("PORT", "80")
            ])
        );
    }

    #[test]
    fn field_refs_read_the_pod() {
        let env = resolve(vec![
            field("NAME", "metadata.name"),
            field("NS", "metadata.namespace"),
            field("UID", "metadata.uid"),
            field("APP", "metadata.labels['app']"),
            field("NONE", "metadata.labels['nope']"),
            field(
                "INDEX",
                "metadata.annotations['batch.kubernetes.io/job-completion-index']",
            ),
            field("NODE", "spec.nodeName"),
            field("SA", "spec.serviceAccountName"),
            field("IP", "status.podIP"),
            field("HOST_IP", "status.hostIP"),
            value("SELF", "$(NAME).$(NS)"),
        ])
        .unwrap();
        assert_eq!(
            env,
            pairs(&[
                ("NAME", "load-0-abcde"),
                ("NS", "team"),
                ("UID", "pod-uid"),
                ("APP", "stampede"),
                ("NONE", ""),
                ("INDEX", "0"),
                ("NODE", "node-1"),
                ("SA", "runner"),
                ("IP", "127.0.0.1"),
                ("HOST_IP", "127.0.0.1"),
                ("SELF", "load-0-abcde.team"),
            ])
        );
        assert_eq!(
            resolve(vec![field("X", "spec.weird")]),
            Err("unsupported fieldPath: spec.weird".into())
        );
    }

    #[test]
    fn secret_keys_are_decoded() {
        let env = resolve(vec![
            secret_key("TOKEN", "creds", "token", None),
            secret_key("USER", "creds", "user", Some(false)),
            secret_key("EXTRA", "creds", "extra", None),
        ])
        .unwrap();
        assert_eq!(
            env,
            pairs(&[("TOKEN", "s3cr3t"), ("USER", "admin"), ("EXTRA", "plain")])
        );
    }

    #[test]
    fn missing_secrets_and_keys_give_kubelet_messages() {
        assert_eq!(
            resolve(vec![secret_key("T", "nope", "token", None)]),
            Err("secret \"nope\" not found".into())
        );
        assert_eq!(
            resolve(vec![secret_key("T", "gone", "token", None)]),
            Err("secret \"gone\" not found".into())
        );
        assert_eq!(
            resolve(vec![secret_key("T", "creds", "k", None)]),
            Err("couldn't find key k in Secret team/creds".into())
        );
        assert_eq!(
            resolve(vec![config_key("T", "nope", "k", None)]),
            Err("configmap \"nope\" not found".into())
        );
        assert_eq!(
            resolve(vec![config_key("T", "settings", "k", None)]),
            Err("couldn't find key k in ConfigMap team/settings".into())
        );
    }

    #[test]
    fn optional_missing_sources_leave_the_variable_unset() {
        let env = resolve(vec![
            secret_key("A", "nope", "token", Some(true)),
            secret_key("B", "creds", "missing", Some(true)),
            config_key("C", "nope", "k", Some(true)),
            config_key("D", "settings", "missing", Some(true)),
            value("E", "$(A)"),
        ])
        .unwrap();
        assert_eq!(env, pairs(&[("E", "$(A)")]));
    }

    #[test]
    fn config_map_keys_are_read() {
        let env = resolve(vec![
            config_key("TARGET", "settings", "target", None),
            config_key("BIN", "settings", "bin", None),
        ])
        .unwrap();
        assert_eq!(
            env,
            pairs(&[("TARGET", "http://127.0.0.1:8080"), ("BIN", "raw")])
        );
    }

    #[test]
    fn env_from_applies_prefixes_and_env_overrides_it() {
        let mut c = container(vec![value("CFG_rate", "99"), value("R", "$(CFG_rate)")]);
        c.env_from = Some(vec![
            EnvFromSource {
                config_map_ref: Some(ConfigMapEnvSource {
                    name: "settings".into(),
                    optional: None,
                }),
                prefix: Some("CFG_".into()),
                secret_ref: None,
            },
            EnvFromSource {
                config_map_ref: None,
                prefix: None,
                secret_ref: Some(SecretEnvSource {
                    name: "creds".into(),
                    optional: None,
                }),
            },
            EnvFromSource {
                config_map_ref: None,
                prefix: None,
                secret_ref: Some(SecretEnvSource {
                    name: "nope".into(),
                    optional: Some(true),
                }),
            },
        ]);
        let env = resolve_env(&pod(), &c, &sources()).unwrap();
        assert_eq!(
            env.0,
            pairs(&[
                ("CFG_bin", "raw"),
                ("CFG_rate", "99"),
                ("CFG_target", "http://127.0.0.1:8080"),
                ("extra", "plain"),
                ("token", "s3cr3t"),
                ("user", "admin"),
                ("R", "99"),
            ])
        );
        let refs = references(&c);
        assert_eq!(
            refs.secrets.into_iter().collect::<Vec<_>>(),
            ["creds", "nope"]
        );
        assert_eq!(
            refs.config_maps.into_iter().collect::<Vec<_>>(),
            ["settings"]
        );
        c.env_from.as_mut().unwrap()[2]
            .secret_ref
            .as_mut()
            .unwrap()
            .optional = None;
        assert_eq!(
            resolve_env(&pod(), &c, &sources()),
            Err("secret \"nope\" not found".into())
        );
    }

    #[test]
    fn resource_field_refs_are_refused_clearly() {
        let err = resolve(vec![from(
            "CPU",
            EnvVarSource {
                resource_field_ref: Some(ResourceFieldSelector {
                    resource: "limits.cpu".into(),
                    ..ResourceFieldSelector::default()
                }),
                ..EnvVarSource::default()
            },
        )])
        .unwrap_err();
        assert!(err.contains("resourceFieldRef"), "{err}");
    }
}
