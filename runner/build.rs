//! Installs the HTML report's charting library (uPlot, pinned with its integrity hash in
//! `ui/package-lock.json`) with `npm ci` into the build's output directory, so the binary can
//! embed it and a report opens offline. Nothing of it is kept in the repository.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The files the report embeds, under `node_modules/`.
const ASSETS: [&str; 2] = ["uplot/dist/uPlot.iife.min.js", "uplot/dist/uPlot.min.css"];

fn main() {
    let manifest_dir =
        PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets it"));
    let ui = manifest_dir.join("ui");
    println!("cargo:rerun-if-changed=ui/package.json");
    println!("cargo:rerun-if-changed=ui/package-lock.json");
    println!("cargo:rerun-if-env-changed=STAMPEDE_UI_NODE_MODULES");

    let installed = out_dir.join("ui");
    // A directory that already holds the installed packages (an offline build).
    let node_modules = match std::env::var_os("STAMPEDE_UI_NODE_MODULES") {
        Some(dir) => PathBuf::from(dir),
        None => {
            install(&ui, &installed);
            installed.join("node_modules")
        }
    };
    for asset in ASSETS {
        let path = node_modules.join(asset);
        if !path.is_file() {
            fail(&format!(
                "{} is missing after `npm ci` in {}",
                path.display(),
                installed.display()
            ));
        }
    }
    println!(
        "cargo:rustc-env=STAMPEDE_UI_NODE_MODULES={}",
        node_modules.display()
    );
}

/// `npm ci` of `ui/` in `target`, unless `target` already holds this lock file's packages.
fn install(ui: &Path, target: &Path) {
    let lock = std::fs::read(ui.join("package-lock.json"))
        .unwrap_or_else(|e| fail(&format!("cannot read ui/package-lock.json: {e}")));
    let stamp = target.join("installed-lock.json");
    if std::fs::read(&stamp).is_ok_and(|done| done == lock) {
        return;
    }
    std::fs::create_dir_all(target)
        .unwrap_or_else(|e| fail(&format!("cannot create {}: {e}", target.display())));
    for file in ["package.json", "package-lock.json"] {
        std::fs::copy(ui.join(file), target.join(file))
            .unwrap_or_else(|e| fail(&format!("cannot copy ui/{file}: {e}")));
    }
    // --prefer-offline: npm's own cache serves every build after the first.
    let status = Command::new("npm")
        .args([
            "ci",
            "--prefer-offline",
            "--ignore-scripts",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
        ])
        .current_dir(target)
        .status()
        .unwrap_or_else(|e| {
            fail(&format!(
                "cannot run npm ({e}): the HTML report embeds uPlot from the npm registry; \
                 install Node.js and npm, or set STAMPEDE_UI_NODE_MODULES to a node_modules \
                 directory holding uplot"
            ))
        });
    if !status.success() {
        fail(&format!(
            "`npm ci` in {} failed ({status})",
            target.display()
        ));
    }
    std::fs::write(&stamp, lock)
        .unwrap_or_else(|e| fail(&format!("cannot write {}: {e}", stamp.display())));
}

fn fail(message: &str) -> ! {
    eprintln!("error: stampede-runner build: {message}");
    std::process::exit(1);
}
