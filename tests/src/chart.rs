//! The Helm chart as the tests see it: rendered by Helm's own engine through the PyPI package
//! `helm-python-sdk` (`tests/chart/render.py`), no cluster and no helm binary.

use std::process::Command;
use std::sync::OnceLock;

use serde::Deserialize as _;

use crate::repo_root;

/// The release namespace `render.py` renders into by default.
pub const RELEASE_NAMESPACE: &str = "stampede-system";

/// The interpreter that runs render.py: `$STAMPEDE_CHART_PYTHON`, else `python3` from PATH.
pub fn python() -> String {
    std::env::var("STAMPEDE_CHART_PYTHON")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "python3".into())
}

/// Panics with the install command when the SDK is missing (checked once per test binary).
pub fn require_helm_sdk() {
    static CHECKED: OnceLock<Result<(), String>> = OnceLock::new();
    let checked = CHECKED.get_or_init(|| {
        let python = python();
        let output = Command::new(&python)
            .args(["-c", "import helm_python"])
            .output()
            .map_err(|error| format!("cannot run {python}: {error}"))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{python} cannot import helm_python (the PyPI package helm-python-sdk): run \
                 `pip install helm-python-sdk==0.2.2` (python3 -m pip install \
                 helm-python-sdk==0.2.2; .ci/run installs it)\n{}",
                String::from_utf8_lossy(&output.stderr).trim()
            ))
        }
    });
    if let Err(message) = checked {
        panic!("{message}");
    }
}

/// Renders charts/stampede with `tests/chart/render.py ARGS...` (e.g. `["--mode",
/// "namespaced", "--set", "replicas=2"]`; release `stampede` in namespace `stampede-system`
/// unless `--name` / `--namespace` say otherwise) and returns its documents: the CRDs first,
/// then the templates' objects in Helm's install order (ServiceAccount, ClusterRole, ...,
/// Service, Deployment; ServiceMonitor last). Panics with render.py's message when it fails.
pub fn render_chart(args: &[&str]) -> Vec<serde_yaml_ng::Value> {
    require_helm_sdk();
    let script = repo_root().join("tests/chart/render.py");
    let output = Command::new(python())
        .arg(&script)
        .args(args)
        .current_dir(repo_root())
        .output()
        .unwrap_or_else(|error| panic!("run {}: {error}", script.display()));
    assert!(
        output.status.success(),
        "render.py {args:?} failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).expect("render.py prints UTF-8");
    parse_documents(&text)
}

/// The non-empty documents of a YAML stream.
pub fn parse_documents(text: &str) -> Vec<serde_yaml_ng::Value> {
    serde_yaml_ng::Deserializer::from_str(text)
        .map(|document| {
            serde_yaml_ng::Value::deserialize(document)
                .unwrap_or_else(|error| panic!("a rendered document is not YAML: {error}\n{text}"))
        })
        .filter(|value| !value.is_null())
        .collect()
}
