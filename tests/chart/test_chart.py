"""Chart tests: charts/stampede rendered and linted by Helm's own engine (helm-python-sdk), offline.

Run: python3 -m unittest discover -s tests/chart
Needs: python3 -m pip install helm-python-sdk==0.2.2
"""

from __future__ import annotations

import json
import subprocess
import sys
import unittest
from pathlib import Path
from typing import Any

import render

ROOT = Path(__file__).resolve().parents[2]
RENDER = Path(__file__).resolve().parent / "render.py"
RELEASE_NS = "stampede-system"


def setUpModule() -> None:  # noqa: N802 (unittest's name)
    # Fails every test with the install hint rather than skipping: CI must have the SDK.
    render.helm()


def objects(values: dict[str, Any] | None = None, **kwargs: Any) -> list[dict[str, Any]]:
    sdk = render.helm()
    return [sdk.values_from_yaml(doc) for _, doc in render.render_documents(values, **kwargs)]


def of_kind(objs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objs if o.get("kind") == kind]


def one(objs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [o for o in of_kind(objs, kind) if name is None or o["metadata"]["name"] == name]
    assert len(found) == 1, f"want one {kind} {name or ''}, found {len(found)}"
    return found[0]


def operator_container(objs: list[dict[str, Any]]) -> dict[str, Any]:
    deployment = one(objs, "Deployment", "stampede")
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def rules_of(objs: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{o['kind']} {o['metadata'].get('namespace', '')}/{o['metadata']['name']}", rule)
        for o in objs
        if o["kind"] in ("ClusterRole", "Role")
        for rule in o.get("rules", [])
    ]


# Values that switch on everything optional, to lint and scan every template.
EVERYTHING = {
    "replicas": 2,
    "demoServer": {"enabled": True},
    "metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "prom"}}},
    "extraArgs": ["--log-format", "text"],
    "extraEnv": [{"name": "EXTRA", "value": "1"}],
    "podAnnotations": {"a": "b"},
    "nodeSelector": {"kubernetes.io/os": "linux"},
    "tolerations": [{"key": "k", "operator": "Exists"}],
    "imagePullSecrets": [{"name": "regcred"}],
}

CONFIGURATIONS = {
    "default": {},
    "cluster": {"mode": "cluster"},
    "namespaced": {"mode": "namespaced"},
    "cluster, listed namespaces, everything on": {
        "mode": "cluster", "watchNamespaces": ["team-a", "team-b"], **EVERYTHING},
    "namespaced, listed namespaces, everything on": {
        "mode": "namespaced", "watchNamespaces": ["team-a", "team-b"], **EVERYTHING},
}


class Version(unittest.TestCase):
    def test_the_chart_is_versioned_with_the_crates(self) -> None:
        # The release workflow tags vX.Y.Z for the workspace version and pushes the chart and
        # the image under it; the chart's default image tag is its appVersion.
        import tomllib
        workspace = tomllib.loads((ROOT / "Cargo.toml").read_text())["workspace"]["package"]
        chart = {}
        for line in (ROOT / "charts/stampede/Chart.yaml").read_text().splitlines():
            key, _, value = line.partition(":")
            chart[key.strip()] = value.strip().strip('"')
        self.assertEqual(chart["version"], workspace["version"])
        self.assertEqual(chart["appVersion"], workspace["version"])


class Lint(unittest.TestCase):
    def test_lint_passes_for_the_defaults_and_each_mode(self) -> None:
        for label, values in CONFIGURATIONS.items():
            with self.subTest(label):
                report = render.lint(values)
                self.assertEqual(render.lint_failures(report), [], report)

    def test_the_lint_cli_exits_0_and_fails_on_bad_values(self) -> None:
        for mode in ("cluster", "namespaced"):
            ok = run_cli("--lint", "--mode", mode)
            self.assertEqual(ok.returncode, 0, ok.stderr + ok.stdout)
        bad = run_cli("--lint", "--set", "replicas=two")
        self.assertEqual(bad.returncode, 1, bad.stdout)
        self.assertIn("/replicas", bad.stdout)


class Schema(unittest.TestCase):
    def assert_rejected(self, values: dict[str, Any], *fragments: str) -> None:
        sdk = render.helm()
        with self.assertRaises(sdk.HelmValuesError) as caught:
            render.render_documents(values)
        for fragment in fragments:
            self.assertIn(fragment, str(caught.exception))

    def test_a_wrong_type_is_rejected_with_the_key_named(self) -> None:
        self.assert_rejected({"replicas": "two"}, "/replicas", "want integer")

    def test_the_cli_prints_the_schema_error_and_exits_1(self) -> None:
        result = run_cli("--set", "replicas=two")
        self.assertEqual(result.returncode, 1)
        self.assertEqual(result.stdout, "")
        self.assertIn("at '/replicas': got string, want integer", result.stderr)

    def test_unknown_keys_bad_enums_and_bad_numbers_are_rejected(self) -> None:
        self.assert_rejected({"replica": 2}, "additional properties 'replica' not allowed")
        self.assert_rejected({"caps": {"maxRunner": 2}}, "/caps", "maxRunner")
        self.assert_rejected({"mode": "global"}, "/mode")
        self.assert_rejected({"logFormat": "xml"}, "/logFormat")
        self.assert_rejected({"caps": {"maxRunners": 0}}, "/caps/maxRunners")
        self.assert_rejected({"watchNamespaces": ["Not_A_Namespace"]}, "/watchNamespaces/0")
        self.assert_rejected({"watchNamespaces": "team-a"}, "/watchNamespaces")
        self.assert_rejected({"runnerPolicy": {"maxMemory": "8GB"}}, "/runnerPolicy/maxMemory")
        self.assert_rejected({"runnerPolicy": {"allowedSecrets": ["a,b"]}}, "/runnerPolicy/allowedSecrets/0")
        self.assert_rejected({"runnerPolicy": {"allowSecrets": True}}, "/runnerPolicy", "allowSecrets")

    def test_every_default_value_is_described_by_the_schema(self) -> None:
        sdk = render.helm()
        with sdk.Chart.load(render.CHART) as chart:
            schema = chart.schema
            defaults = chart.values
        assert schema is not None

        def walk(value: Any, node: dict[str, Any], path: str) -> None:
            self.assertIn("type", node, f"{path}: no type in the schema")
            if isinstance(value, dict) and "properties" in node:
                for key, child in value.items():
                    self.assertIn(key, node["properties"], f"{path}.{key} is not in the schema")
                    walk(child, node["properties"][key], f"{path}.{key}")
                    self.assertTrue(
                        node["properties"][key].get("description")
                        or node["properties"][key].get("type") == "object",
                        f"{path}.{key} has no description",
                    )

        walk(defaults, schema, "")
        self.assertFalse(schema.get("additionalProperties", True))


class Rbac(unittest.TestCase):
    def test_cluster_mode_is_one_cluster_role_bound_to_the_service_account(self) -> None:
        objs = objects({})
        role = one(objs, "ClusterRole")
        binding = one(objs, "ClusterRoleBinding")
        self.assertEqual(of_kind(objs, "Role"), [])
        self.assertEqual(binding["roleRef"], {"apiGroup": "rbac.authorization.k8s.io",
                                              "kind": "ClusterRole",
                                              "name": role["metadata"]["name"]})
        account = one(objs, "ServiceAccount")
        self.assertEqual(binding["subjects"], [{"kind": "ServiceAccount",
                                                "name": account["metadata"]["name"],
                                                "namespace": RELEASE_NS}])
        deployment = one(objs, "Deployment")
        self.assertEqual(deployment["spec"]["template"]["spec"]["serviceAccountName"],
                         account["metadata"]["name"])

    def test_namespaced_mode_has_no_cluster_rbac_and_one_role_per_watched_namespace(self) -> None:
        for watched, expected in ((None, [RELEASE_NS]), (["team-a", "team-b"], ["team-a", "team-b"])):
            values: dict[str, Any] = {"mode": "namespaced"}
            if watched:
                values["watchNamespaces"] = watched
            with self.subTest(watched=watched):
                objs = objects(values)
                self.assertEqual(of_kind(objs, "ClusterRole"), [])
                self.assertEqual(of_kind(objs, "ClusterRoleBinding"), [])
                roles = of_kind(objs, "Role")
                self.assertEqual(sorted(r["metadata"]["namespace"] for r in roles), expected)
                bindings = of_kind(objs, "RoleBinding")
                self.assertEqual(sorted(b["metadata"]["namespace"] for b in bindings), expected)
                for binding in bindings:
                    self.assertEqual(binding["roleRef"]["kind"], "Role")
                    self.assertEqual(binding["subjects"][0]["namespace"], RELEASE_NS)
                env = env_of(operator_container(objs))
                self.assertEqual(env["STAMPEDE_WATCH_NAMESPACE"], ",".join(expected))

    def test_leader_election_gets_a_lease_role_in_the_release_namespace_only(self) -> None:
        for mode in ("cluster", "namespaced"):
            with self.subTest(mode=mode):
                objs = objects({"mode": mode, "replicas": 2, "watchNamespaces": ["team-a"]})
                lease = one(objs, "Role", "stampede-leader-election")
                self.assertEqual(lease["metadata"]["namespace"], RELEASE_NS)
                self.assertEqual(
                    lease["rules"],
                    [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                      "verbs": ["create"]},
                     {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                      "resourceNames": ["stampede"], "verbs": ["get", "update"]}])
                binding = one(objs, "RoleBinding", "stampede-leader-election")
                self.assertEqual(binding["roleRef"]["name"], "stampede-leader-election")
                # Leases appear in the Lease Role only; reading and writing is for this Lease.
                for where, rule in rules_of(objs):
                    if "leases" in rule["resources"]:
                        self.assertIn("leader-election", where)
                        if set(rule["verbs"]) - {"create"}:
                            self.assertEqual(rule.get("resourceNames"), ["stampede"])
        # Without leader election, no Lease rights at all.
        objs = objects({})
        self.assertFalse(any("leases" in rule["resources"] for _, rule in rules_of(objs)))

    def test_no_rule_anywhere_grants_secrets_pods_log_or_wildcards(self) -> None:
        for label, values in CONFIGURATIONS.items():
            with self.subTest(label):
                rules = rules_of(objects(values))
                self.assertTrue(rules)
                for where, rule in rules:
                    resources = rule.get("resources", [])
                    for forbidden in ("secrets", "pods/log", "pods/exec", "pods/attach", "*"):
                        self.assertNotIn(forbidden, resources, f"{where} grants {forbidden}")
                    self.assertNotIn("*", rule.get("verbs", []), where)
                    self.assertNotIn("*", rule.get("apiGroups", []), where)
                    self.assertNotIn("nonResourceURLs", rule, where)
                    for verb in ("escalate", "bind", "impersonate"):
                        self.assertNotIn(verb, rule.get("verbs", []), where)

    def test_the_watch_rules_are_the_documented_least_verbs(self) -> None:
        rules = one(objects({}), "ClusterRole")["rules"]
        granted = {
            (group, resource): sorted(rule["verbs"])
            for rule in rules for group in rule["apiGroups"] for resource in rule["resources"]
        }
        self.assertEqual(granted, {
            ("stampede.dev", "loadtests"): sorted(["get", "list", "watch", "delete"]),
            ("stampede.dev", "loadtests/status"): ["patch"],
            ("batch", "jobs"): sorted(["get", "list", "watch", "create", "patch", "delete"]),
            ("", "configmaps"): sorted(["get", "list", "create", "update", "patch", "delete"]),
            ("", "pods"): ["list"],
            ("", "serviceaccounts"): ["create", "get", "patch"],
            ("rbac.authorization.k8s.io", "roles"): ["create", "get", "patch"],
            ("rbac.authorization.k8s.io", "rolebindings"): ["create", "get", "patch"],
            ("events.k8s.io", "events"): ["create", "patch"],
        })

    def test_rbac_create_false_renders_no_rbac(self) -> None:
        objs = objects({"rbac": {"create": False}, "replicas": 3})
        for kind in ("ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"):
            self.assertEqual(of_kind(objs, kind), [], kind)


class Optional(unittest.TestCase):
    def test_demo_server_and_service_monitor_only_when_enabled(self) -> None:
        objs = objects({})
        self.assertEqual(len(of_kind(objs, "Deployment")), 1)
        self.assertEqual([s["metadata"]["name"] for s in of_kind(objs, "Service")], ["stampede-metrics"])
        self.assertEqual(of_kind(objs, "ServiceMonitor"), [])

        objs = objects({"demoServer": {"enabled": True}})
        demo = one(objs, "Deployment", "stampede-demo")
        container = demo["spec"]["template"]["spec"]["containers"][0]
        self.assertEqual(container["command"] + container["args"],
                         ["stampede", "demo-server", "--listen", "0.0.0.0:8080"])
        self.assertEqual(container["image"], "ghcr.io/stampede-dev/stampede:0.1.0")
        self.assertEqual(container["readinessProbe"]["httpGet"]["path"], "/")
        self.assertEqual(container["livenessProbe"]["httpGet"]["path"], "/")
        assert_hardened(self, demo)
        service = one(objs, "Service", "stampede-demo")
        self.assertEqual(service["spec"]["selector"], demo["spec"]["selector"]["matchLabels"])
        self.assertEqual(of_kind(objs, "ServiceMonitor"), [])

        objs = objects({"metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "prom"}}}})
        monitor = one(objs, "ServiceMonitor")
        self.assertEqual(monitor["apiVersion"], "monitoring.coreos.com/v1")
        self.assertEqual(monitor["metadata"]["labels"]["release"], "prom")
        self.assertEqual(monitor["spec"]["endpoints"][0]["port"], "metrics")
        self.assertEqual(monitor["spec"]["endpoints"][0]["path"], "/metrics")
        metrics = one(objs, "Service", "stampede-metrics")
        for key, value in monitor["spec"]["selector"]["matchLabels"].items():
            self.assertEqual(metrics["metadata"]["labels"][key], value)
        self.assertIsNone(next((d for d in of_kind(objs, "Deployment")
                                if d["metadata"]["name"] == "stampede-demo"), None))


def assert_hardened(test: unittest.TestCase, deployment: dict[str, Any]) -> None:
    pod = deployment["spec"]["template"]["spec"]
    test.assertTrue(pod["securityContext"]["runAsNonRoot"])
    test.assertEqual(pod["securityContext"]["runAsUser"], 65532)
    test.assertEqual(pod["securityContext"]["seccompProfile"], {"type": "RuntimeDefault"})
    for container in pod["containers"]:
        context = container["securityContext"]
        test.assertFalse(context["allowPrivilegeEscalation"])
        test.assertTrue(context["readOnlyRootFilesystem"])
        test.assertEqual(context["capabilities"]["drop"], ["ALL"])
        test.assertTrue(container["resources"]["requests"])
        test.assertTrue(container["resources"]["limits"])


class Deployment(unittest.TestCase):
    def test_defaults(self) -> None:
        objs = objects({})
        deployment = one(objs, "Deployment", "stampede")
        self.assertEqual(deployment["metadata"]["namespace"], RELEASE_NS)
        self.assertEqual(deployment["spec"]["replicas"], 1)
        self.assertEqual(deployment["spec"]["strategy"], {"type": "Recreate"})
        assert_hardened(self, deployment)
        container = operator_container(objs)
        self.assertEqual(container["image"], "ghcr.io/stampede-dev/stampede:0.1.0")
        self.assertEqual(container["command"], ["stampede-operator"])
        self.assertNotIn("args", container)
        self.assertEqual(container["livenessProbe"]["httpGet"], {"path": "/healthz", "port": "metrics"})
        self.assertEqual(container["readinessProbe"]["httpGet"], {"path": "/readyz", "port": "metrics"})
        self.assertEqual(container["ports"], [{"name": "metrics", "containerPort": 8080, "protocol": "TCP"}])
        env = env_of(container)
        self.assertEqual(env, {
            "POD_NAME": {"fieldRef": {"fieldPath": "metadata.name"}},
            "POD_NAMESPACE": {"fieldRef": {"fieldPath": "metadata.namespace"}},
            "STAMPEDE_RUNNER_IMAGE": "ghcr.io/stampede-dev/stampede:0.1.0",
            "STAMPEDE_MAX_RUNNERS": "50",
            "STAMPEDE_MAX_VUS_PER_TEST": "100000",
            "STAMPEDE_DEFAULT_MAX_VUS_PER_RUNNER": "1000",
            "STAMPEDE_START_DEADLINE_SECONDS": "300",
            "STAMPEDE_MAX_RUNNER_CPU": "4",
            "STAMPEDE_MAX_RUNNER_MEMORY": "8Gi",
            "STAMPEDE_DENIED_TARGETS": "169.254.0.0/16,fe80::/10,fd00:ec2::254,100.100.100.200,"
                                       "metadata.google.internal,metadata.goog,kubernetes,kubernetes.default,"
                                       "kubernetes.default.svc,kubernetes.default.svc.cluster.local",
            "STAMPEDE_METRICS_ADDR": "0.0.0.0:8080",
            "STAMPEDE_DASHBOARD_ADDR": "127.0.0.1:5665",
            "STAMPEDE_LOG_FORMAT": "json",
            "RUST_LOG": "info",
        })

    def test_values_reach_the_env_and_args(self) -> None:
        objs = objects({
            "image": {"repository": "registry.example/stampede", "tag": "1.2.3"},
            "runner": {"image": {"repository": "registry.example/runner", "tag": "9"},
                       "resources": {"limits": {"memory": "2Gi"}}},
            "caps": {"maxRunners": 7, "maxVUsPerTest": 2500000, "defaultMaxVUsPerRunner": 321,
                     "startDeadlineSeconds": 45},
            "runnerPolicy": {"allowedImages": ["registry.example/runner:*", "registry.example/x:1"],
                             "allowServiceAccount": True, "allowedNodeSelectorKeys": ["pool"],
                             "allowedTolerationKeys": ["*"], "allowAffinity": True,
                             "maxCpu": 8, "maxMemory": "none",
                             "allowedSecrets": ["loadtest-*"], "allowedConfigMaps": ["users"],
                             "allowedTargets": ["*.shop.svc", "10.0.0.0/8"], "deniedTargets": ["10.0.0.1"]},
            "metrics": {"port": 9090},
            "dashboard": {"port": 7000},
            "logFormat": "text",
            "logLevel": "debug",
            "mode": "namespaced",
            "watchNamespaces": ["team-a", "team-b"],
            "leaderElection": {"enabled": True, "leaseName": "my-lease"},
            "extraArgs": ["--lease-name", "x"],
            "extraEnv": [{"name": "EXTRA", "value": "1"}],
            "resources": {"requests": {"cpu": "1"}, "limits": {"memory": "1Gi"}},
            "nodeSelector": {"pool": "ops"},
            "podAnnotations": {"note": "yes"},
        })
        deployment = one(objs, "Deployment", "stampede")
        pod = deployment["spec"]["template"]["spec"]
        container = operator_container(objs)
        self.assertEqual(container["image"], "registry.example/stampede:1.2.3")
        self.assertEqual(container["args"], ["--lease-name", "x"])
        env = env_of(container)
        self.assertEqual(env["STAMPEDE_RUNNER_IMAGE"], "registry.example/runner:9")
        self.assertEqual(json.loads(env["STAMPEDE_RUNNER_RESOURCES"]), {"limits": {"memory": "2Gi"}})
        self.assertEqual(env["STAMPEDE_MAX_RUNNERS"], "7")
        self.assertEqual(env["STAMPEDE_MAX_VUS_PER_TEST"], "2500000")
        self.assertEqual(env["STAMPEDE_DEFAULT_MAX_VUS_PER_RUNNER"], "321")
        self.assertEqual(env["STAMPEDE_START_DEADLINE_SECONDS"], "45")
        self.assertEqual(env["STAMPEDE_ALLOWED_RUNNER_IMAGES"], "registry.example/runner:*,registry.example/x:1")
        self.assertEqual(env["STAMPEDE_ALLOW_RUNNER_SERVICE_ACCOUNT"], "true")
        self.assertEqual(env["STAMPEDE_ALLOWED_NODE_SELECTOR_KEYS"], "pool")
        self.assertEqual(env["STAMPEDE_ALLOWED_TOLERATION_KEYS"], "*")
        self.assertEqual(env["STAMPEDE_ALLOW_RUNNER_AFFINITY"], "true")
        self.assertEqual(env["STAMPEDE_MAX_RUNNER_CPU"], "8")
        self.assertEqual(env["STAMPEDE_MAX_RUNNER_MEMORY"], "none")
        self.assertEqual(env["STAMPEDE_ALLOWED_SECRETS"], "loadtest-*")
        self.assertEqual(env["STAMPEDE_ALLOWED_CONFIG_MAPS"], "users")
        self.assertEqual(env["STAMPEDE_ALLOWED_TARGETS"], "*.shop.svc,10.0.0.0/8")
        self.assertEqual(env["STAMPEDE_DENIED_TARGETS"], "10.0.0.1")
        self.assertEqual(env["STAMPEDE_METRICS_ADDR"], "0.0.0.0:9090")
        self.assertEqual(env["STAMPEDE_DASHBOARD_ADDR"], "127.0.0.1:7000")
        off = env_of(operator_container(objects({"dashboard": {"enabled": False}})))
        self.assertEqual(off["STAMPEDE_DASHBOARD_ADDR"], "off")
        self.assertEqual(env["STAMPEDE_LOG_FORMAT"], "text")
        self.assertEqual(env["RUST_LOG"], "debug")
        self.assertEqual(env["STAMPEDE_WATCH_NAMESPACE"], "team-a,team-b")
        self.assertEqual(env["STAMPEDE_LEADER_ELECT"], "true")
        self.assertEqual(env["STAMPEDE_LEASE_NAMESPACE"], RELEASE_NS)
        self.assertEqual(env["STAMPEDE_LEASE_NAME"], "my-lease")
        self.assertEqual(env["EXTRA"], "1")
        self.assertEqual(container["ports"][0]["containerPort"], 9090)
        # Helm merges maps: the default memory request stays.
        self.assertEqual(container["resources"],
                         {"requests": {"cpu": "1", "memory": "64Mi"}, "limits": {"memory": "1Gi"}})
        self.assertEqual(pod["nodeSelector"], {"pool": "ops"})
        self.assertEqual(deployment["spec"]["template"]["metadata"]["annotations"], {"note": "yes"})
        self.assertNotIn("strategy", deployment["spec"])
        self.assertEqual(one(objs, "Role", "stampede-leader-election")["rules"][1]["resourceNames"],
                         ["my-lease"])

    def test_replicas_over_one_turn_leader_election_on(self) -> None:
        self.assertNotIn("STAMPEDE_LEADER_ELECT", env_of(operator_container(objects({}))))
        objs = objects({"replicas": 3})
        self.assertEqual(one(objs, "Deployment", "stampede")["spec"]["replicas"], 3)
        env = env_of(operator_container(objs))
        self.assertEqual(env["STAMPEDE_LEADER_ELECT"], "true")
        self.assertEqual(env["STAMPEDE_LEASE_NAME"], "stampede")

    def test_cluster_mode_watches_every_namespace_unless_listed(self) -> None:
        self.assertNotIn("STAMPEDE_WATCH_NAMESPACE", env_of(operator_container(objects({}))))
        env = env_of(operator_container(objects({"watchNamespaces": ["x", "y"]})))
        self.assertEqual(env["STAMPEDE_WATCH_NAMESPACE"], "x,y")

    def test_every_namespaced_object_names_its_namespace(self) -> None:
        for label, values in CONFIGURATIONS.items():
            with self.subTest(label):
                for obj in objects(values):
                    if obj["kind"] in ("CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding"):
                        self.assertNotIn("namespace", obj["metadata"])
                    else:
                        self.assertTrue(obj["metadata"].get("namespace"), obj["metadata"]["name"])


class Output(unittest.TestCase):
    def test_the_cli_prints_crds_first_then_templates_in_install_order(self) -> None:
        result = run_cli("--mode", "namespaced", "--set", "demoServer.enabled=true",
                         "--set", "metrics.serviceMonitor.enabled=true", "--set", "replicas=2")
        self.assertEqual(result.returncode, 0, result.stderr)
        kinds = [line.split(":", 1)[1].strip() for line in result.stdout.splitlines()
                 if line.startswith("kind:")]
        self.assertEqual(kinds, ["CustomResourceDefinition", "ServiceAccount", "Role", "Role",
                                 "RoleBinding", "RoleBinding", "Service", "Service",
                                 "Deployment", "Deployment", "ServiceMonitor"])
        self.assertTrue(result.stdout.startswith("---\n# Source: stampede/crds/loadtest.yaml\n"))
        self.assertNotIn("kubectl get lt", result.stdout)  # NOTES.txt is not a manifest

    def test_the_rendered_crd_is_crds_loadtest_yaml(self) -> None:
        sdk = render.helm()
        crds = of_kind(objects({}), "CustomResourceDefinition")
        expected = [sdk.values_from_yaml(doc)
                    for doc in render.split_documents((ROOT / "crds" / "loadtest.yaml").read_text())]
        self.assertEqual(crds, expected)
        self.assertEqual(of_kind(objects({}, include_crds=False), "CustomResourceDefinition"), [])

    def test_values_files_and_sets_compose_in_order(self) -> None:
        import tempfile
        with tempfile.NamedTemporaryFile("w", suffix=".yaml") as file:
            file.write("caps:\n  maxRunners: 3\n  maxVUsPerTest: 40\nlogFormat: text\n")
            file.flush()
            values = render.user_values("namespaced", [file.name], ["caps.maxRunners=5"])
        self.assertEqual(values, {"mode": "namespaced", "logFormat": "text",
                                  "caps": {"maxRunners": 5, "maxVUsPerTest": 40}})

    def test_notes_say_what_to_apply_next(self) -> None:
        notes = render.render_notes({})
        self.assertIn("kubectl get lt -n stampede-system -w", notes)
        self.assertIn("stampede wait smoke -n stampede-system", notes)
        self.assertIn("kind: LoadTest", notes)
        notes = render.render_notes({"demoServer": {"enabled": True}})
        self.assertIn('baseUrl: "http://stampede-demo.stampede-system.svc:8080"', notes)
        notes = render.render_notes({"mode": "namespaced", "watchNamespaces": ["team-a"]})
        self.assertIn("kubectl apply -n team-a", notes)
        self.assertIn("kubectl get lt -n team-a -w", notes)
        result = run_cli("--notes", "--set", "demoServer.enabled=true")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("stampede-demo.stampede-system.svc", result.stdout)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(RENDER), *args], capture_output=True, text=True,
                          check=False, cwd=ROOT)


if __name__ == "__main__":
    unittest.main()
