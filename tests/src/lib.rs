//! Test support shared by the integration and end-to-end tests: repository paths and the
//! `stampede` binary cargo built.

pub mod apiextensions;
pub mod apiserver;
pub mod argocd;
pub mod browser;
pub mod chart;
pub mod cluster;
pub mod demo_target;
pub mod kubelet;
pub mod operator;
pub mod world;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(".."))
}

/// The `stampede` binary of this build (`target/<profile>/stampede`), built on demand when a
/// test runs without it or with sources newer than it (e.g. `cargo test -p stampede-tests`
/// alone after an edit), so a test never drives a stale binary.
pub fn stampede_bin() -> PathBuf {
    workspace_bin("stampede-runner", "stampede")
}

/// The `stampede-operator` binary of this build, built on demand like [`stampede_bin`].
pub fn operator_bin() -> PathBuf {
    workspace_bin("stampede-operator", "stampede-operator")
}

/// The workspace's own sources the binaries are built from (their path dependencies included).
const BINARY_SOURCES: &[&str] = &["crds", "runner", "operator", "Cargo.toml", "Cargo.lock"];

fn workspace_bin(package: &str, name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // Test binaries live in target/<profile>/deps; the binaries are one directory up.
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile> directory");
    let bin = profile_dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    let built = std::fs::metadata(&bin).and_then(|m| m.modified()).ok();
    let root = repo_root();
    let stale = built.is_none_or(|built| {
        BINARY_SOURCES
            .iter()
            .any(|source| newer_than(&root.join(source), built))
    });
    if stale {
        let mut build = Command::new(env!("CARGO"));
        build.args(["build", "-q", "-p", package, "--bin", name]);
        if profile_dir.file_name().is_some_and(|p| p == "release") {
            build.arg("--release");
        }
        let status = build.current_dir(&root).status().expect("run cargo build");
        assert!(status.success(), "cargo build -p {package} failed");
    }
    bin
}

/// Whether `path`, or any file under it (`target` directories aside), changed after `time`.
fn newer_than(path: &Path, time: std::time::SystemTime) -> bool {
    let Ok(metadata) = std::fs::metadata(path) else {
        return false;
    };
    if !metadata.is_dir() {
        return metadata.modified().is_ok_and(|modified| modified > time);
    }
    std::fs::read_dir(path)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name() != "target")
        .any(|entry| newer_than(&entry.path(), time))
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

/// The first `http://` address a started child prints on its stdout (a server's "listening
/// on" line, `stampede dashboard`'s page), with the whole line.
pub fn first_url(child: &mut Child) -> (String, String) {
    let stdout = child.stdout.take().expect("the child's stdout is piped");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read the child's first line");
    let url = line
        .split_whitespace()
        .find(|word| word.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    (url, line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_edited_after_the_build_makes_the_binary_stale() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("src").join("lib.rs");
        std::fs::create_dir_all(source.parent().unwrap()).unwrap();
        std::fs::write(&source, "//! a").unwrap();
        let written = std::fs::metadata(&source).unwrap().modified().unwrap();
        let before = written - std::time::Duration::from_secs(10);
        let after = written + std::time::Duration::from_secs(10);
        assert!(newer_than(dir.path(), before));
        assert!(!newer_than(dir.path(), after));
        assert!(!newer_than(&dir.path().join("missing"), before));
    }
}
