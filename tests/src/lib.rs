//! Test support shared by the integration and end-to-end tests: repository paths and the
//! `stampede` binary cargo built.

pub mod apiextensions;
pub mod apiserver;
pub mod argocd;
pub mod chart;
pub mod cluster;
pub mod demo_target;
pub mod kubelet;
pub mod operator;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(".."))
}

/// The `stampede` binary of this build (`target/<profile>/stampede`), built on demand when a
/// test runs without it (e.g. `cargo test -p stampede-tests` alone).
pub fn stampede_bin() -> PathBuf {
    workspace_bin("stampede-runner", "stampede")
}

/// The `stampede-operator` binary of this build, built on demand like [`stampede_bin`].
pub fn operator_bin() -> PathBuf {
    workspace_bin("stampede-operator", "stampede-operator")
}

fn workspace_bin(package: &str, name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // Test binaries live in target/<profile>/deps; the binaries are one directory up.
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile> directory");
    let bin = profile_dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    if !bin.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-q", "-p", package, "--bin", name])
            .current_dir(repo_root())
            .status()
            .expect("run cargo build");
        assert!(status.success(), "cargo build -p {package} failed");
    }
    bin
}

/// Runs `stampede ARGS...` in the repository root and returns its output.
pub fn stampede(args: &[&str]) -> Output {
    Command::new(stampede_bin())
        .args(args)
        .current_dir(repo_root())
        .output()
        .expect("run stampede")
}

/// Sorted files with extension `ext` directly in `dir` (relative to the repository root).
pub fn files_in(dir: &str, ext: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo_root().join(dir))
        .unwrap_or_else(|error| panic!("read {dir}: {error}"))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|e| e == ext))
        .collect();
    files.sort();
    files
}
