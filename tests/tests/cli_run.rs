//! `stampede run` as a user runs it: exit codes 0 / 99 / 104 / 105, the summary on stdout and
//! errors on stderr, and a first SIGINT that stops gracefully and still prints the summary.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use stampede_tests::{repo_root, stampede, stampede_bin};

fn write_manifest(name: &str, body: &str) -> std::path::PathBuf {
    let path =
        std::env::temp_dir().join(format!("stampede-cli-{}-{name}.yaml", std::process::id()));
    std::fs::write(&path, body).expect("write manifest");
    path
}

#[test]
fn an_invalid_manifest_exits_104_with_the_field_named() {
    let path = write_manifest(
        "invalid",
        "apiVersion: stampede.dev/v1alpha1\nkind: LoadTest\nmetadata: {name: x}\nspec:\n  duration: 3x\n  flows: {default: [{sleep: 1s}]}\n",
    );
    let output = stampede(&["run", &path.to_string_lossy()]);
    assert_eq!(output.status.code(), Some(104));
    // An error: on stderr, once, and nothing on stdout.
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr
            .matches("spec.duration: \"3x\" is not a duration")
            .count(),
        1,
        "{stderr}"
    );
    assert!(output.stdout.is_empty(), "{:?}", output.stdout);
}

#[test]
fn sigint_stops_gracefully_prints_the_summary_and_exits_105() {
    // A sleep-only flow: no network needed, the run would take 60 s.
    let path = write_manifest(
        "sigint",
        "apiVersion: stampede.dev/v1alpha1\nkind: LoadTest\nmetadata: {name: long}\nspec:\n  vus: 2\n  duration: 60s\n  flows: {default: [{sleep: 200ms}]}\n",
    );
    let mut child = Command::new(stampede_bin())
        .current_dir(repo_root())
        .args(["run", &path.to_string_lossy()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start stampede run");
    // Wait until the run reports progress (it prints plain lines every 5 s without a TTY).
    let mut stderr = child.stderr.take().expect("stderr");
    let mut seen = Vec::new();
    let started = Instant::now();
    let mut buffer = [0u8; 256];
    while !String::from_utf8_lossy(&seen).contains("running (") {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no progress line"
        );
        let read = stderr.read(&mut buffer).expect("read stderr");
        assert!(read > 0, "stampede exited early");
        seen.extend_from_slice(&buffer[..read]);
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let output = child.wait_with_output().expect("wait");
    assert_eq!(output.status.code(), Some(105));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("TOTAL RESULTS"), "{stdout}");
    assert!(stdout.contains("interrupted by a signal"), "{stdout}");
    assert!(started.elapsed() < Duration::from_secs(40));
}

/// On a terminal (a pseudo-terminal from util-linux's `script`), each scenario gets a k6-style
/// bar under the run's line, redrawn in place, and the bars stay in their final state; without
/// one, progress stays plain lines with no escape codes (CI logs).
#[test]
fn a_terminal_shows_a_bar_per_scenario_and_a_log_gets_plain_lines() {
    let command = format!(
        "{} demo --duration-scale 0.2 --summary-mode compact",
        stampede_bin().display()
    );
    let output = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .current_dir(repo_root())
        .stdin(Stdio::null())
        .output()
        .expect("run util-linux script");
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8_lossy(&output.stdout);
    // The frames, escape codes removed.
    let plain: String = {
        let mut out = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\u{1b}' {
                // CSI: ESC [ parameters final-byte.
                if chars.peek() == Some(&'[') {
                    chars.next();
                    for c in chars.by_ref() {
                        if c.is_ascii_alphabetic() {
                            break;
                        }
                    }
                }
                continue;
            }
            out.push(c);
        }
        out
    };
    let full = format!("[{}]", "=".repeat(40));
    for scenario in ["browse [", "spike  ["] {
        assert!(plain.contains(scenario), "no bar for {scenario}: {plain}");
    }
    assert!(
        plain.contains(&format!("browse {full} ")) && plain.contains(&format!("spike  {full} ")),
        "the bars did not end full: {plain}"
    );
    assert!(plain.contains("iters/s, "), "{plain}");
    assert!(plain.contains("/100 VUs  0m06.0s/0m06.0s"), "{plain}");
    // A bar part way along, drawn in place (the cursor moves up to redraw).
    assert!(plain.contains("=>-"), "{plain}");
    assert!(
        text.contains("\u{1b}[2A") || text.contains("\u{1b}[3A"),
        "no redraw in place"
    );

    let logged = stampede(&["demo", "--duration-scale", "0.2"]);
    assert!(logged.status.success(), "{logged:?}");
    let stderr = String::from_utf8_lossy(&logged.stderr);
    assert!(stderr.contains("running ("), "{stderr}");
    assert!(
        !stderr.contains('\u{1b}'),
        "escape codes in a log: {stderr}"
    );
    assert!(!stderr.contains("=>-"), "{stderr}");
}
