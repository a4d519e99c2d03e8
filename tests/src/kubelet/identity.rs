//! Pod identity: each pod's process gets a kubeconfig that authenticates as the pod's service
//! account (as in-cluster config would), so RBAC applies to it like on a real node.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

/// Writes `<dir>/<namespace>_<pod>.kubeconfig`: `base` with its users' credentials replaced by
/// `token` (or removed, for a pod that mounts no service-account token).
pub fn pod_kubeconfig(
    base: &Path,
    dir: &Path,
    namespace: &str,
    pod: &str,
    token: Option<&str>,
) -> std::io::Result<PathBuf> {
    let text = std::fs::read_to_string(base)?;
    let mut config: Value = serde_yaml_ng::from_str(&text).map_err(std::io::Error::other)?;
    if let Some(users) = config.get_mut("users").and_then(Value::as_array_mut) {
        for user in users {
            user["user"] = match token {
                Some(token) => json!({"token": token}),
                None => json!({}),
            };
        }
    }
    let path = dir.join(format!("{namespace}_{pod}.kubeconfig"));
    let yaml = serde_yaml_ng::to_string(&config).map_err(std::io::Error::other)?;
    std::fs::write(&path, yaml)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pod_kubeconfig_carries_the_service_account_token() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("base");
        std::fs::write(
            &base,
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1:1\n\
             users:\n- name: u\n  user:\n    token: admin\n",
        )
        .unwrap();
        let path = pod_kubeconfig(&base, dir.path(), "ns", "p", Some("sa-token")).unwrap();
        let config: Value =
            serde_yaml_ng::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert_eq!(config["users"][0]["user"], json!({"token": "sa-token"}));
        assert_eq!(
            config["clusters"][0]["cluster"]["server"],
            "http://127.0.0.1:1"
        );
        let anonymous = pod_kubeconfig(&base, dir.path(), "ns", "q", None).unwrap();
        let config: Value =
            serde_yaml_ng::from_str(&std::fs::read_to_string(anonymous).unwrap()).unwrap();
        assert_eq!(config["users"][0]["user"], json!({}));
    }
}
