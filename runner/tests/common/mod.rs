//! Shared support of the runner's integration tests: a demo server on loopback, manifests
//! from YAML (validated like `stampede validate`), and quiet in-process runs.

#![allow(dead_code)]

use std::collections::BTreeMap;

use stampede_crds::LoadTest;
use stampede_runner::demo::{DemoConfig, DemoServer};
use stampede_runner::engine::progress::ProgressMode;
use stampede_runner::engine::{RunOptions, RunOutcome, run};

/// A demo server on its own runtime thread (so the engine under test owns its threads).
pub struct Demo {
    runtime: tokio::runtime::Runtime,
    server: Option<DemoServer>,
}

impl Demo {
    /// Starts the demo server on 127.0.0.1 with a free port.
    pub fn start() -> Demo {
        Demo::start_on([127, 0, 0, 1])
    }

    /// Starts the demo server on a loopback address (all of 127.0.0.0/8 is local on Linux),
    /// so that a test can have two hosts.
    pub fn start_on(ip: [u8; 4]) -> Demo {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("demo runtime");
        let server = runtime
            .block_on(DemoServer::start((ip, 0).into(), DemoConfig::default()))
            .expect("demo server starts");
        Demo {
            runtime,
            server: Some(server),
        }
    }

    /// `http://IP:PORT`.
    pub fn base_url(&self) -> String {
        self.server.as_ref().expect("running").base_url()
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            self.runtime.block_on(server.shutdown());
        }
    }
}

/// Parses a LoadTest and asserts it validates.
pub fn load(yaml: &str) -> LoadTest {
    let report = stampede_runner::manifest::check_str("test.yaml", yaml, &Default::default());
    assert!(
        report.is_valid(),
        "test manifest is invalid: {:#?}",
        report.diagnostics
    );
    report.tests.into_iter().next().expect("one LoadTest")
}

/// Runs quietly with `BASE_URL` set.
pub fn run_against(test: &LoadTest, base_url: &str) -> RunOutcome {
    let options = RunOptions {
        env: BTreeMap::from([("BASE_URL".to_string(), base_url.to_string())]),
        progress: ProgressMode::Off,
        print_errors: false,
        ..RunOptions::default()
    };
    run(test, options).expect("run completes")
}

/// A manifest header with `BASE_URL` templated into the base URL.
pub fn manifest(name: &str, body: &str) -> String {
    format!(
        "apiVersion: stampede.dev/v1alpha1\nkind: LoadTest\nmetadata: {{name: {name}}}\nspec:\n  defaults: {{baseUrl: \"${{env.BASE_URL}}\"}}\n  env: [{{name: BASE_URL, value: \"http://127.0.0.1:1\"}}]\n{body}"
    )
}
