#!/usr/bin/env python3
"""Render or lint charts/stampede with Helm's own engine, offline: no cluster, no helm binary.

Helm v4's Go SDK comes through the PyPI package helm-python-sdk (module `helm_python`):

    python3 -m pip install helm-python-sdk==0.2.2

Usage:

    python3 tests/chart/render.py [--mode cluster|namespaced] [--set KEY=VALUE ...]
                                  [--values FILE ...] [--name NAME] [--namespace NS]
                                  [--no-crds] [--notes | --lint]

Output (render): one multi-document YAML stream on stdout, like `helm template --include-crds`:
the chart's CRDs (crds/) first, then the templates' objects in Helm's install order (ServiceAccount,
ClusterRole, ClusterRoleBinding, Role, RoleBinding, Service, Deployment, ..., kinds Helm does not
know such as ServiceMonitor last). Each document starts with `---` and a `# Source: PATH` comment;
empty documents are left out. So `kubectl apply -f -` of the output installs the release in order.
NOTES.txt is not part of it: `--notes` prints the rendered NOTES.txt instead.

Values, later ones winning: the chart's values.yaml, `--mode` (sets `mode`), each `--values FILE`
in order, each `--set` in order (Helm's --set syntax: `a.b=1`, `list={x,y}`, `list[0]=x`). The
chart's values.schema.json is enforced: invalid values exit 1 with Helm's message, naming the key.

`--lint` runs Helm's linter (strict: warnings count as errors) over the same values, prints its
findings, and exits 1 when there is an error or warning (informational findings do not fail).

Exit codes: 0 ok, 1 render / values / lint failure, 2 usage or helm-python-sdk missing.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

CHART = Path(__file__).resolve().parents[2] / "charts" / "stampede"
SDK_VERSION = "0.2.2"
INSTALL_HINT = f"python3 -m pip install helm-python-sdk=={SDK_VERSION}"

# Helm's install order (helm.sh/helm/v4 pkg/release/v1/util kind_sorter.go, InstallOrder).
INSTALL_ORDER = [
    "PriorityClass", "Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange",
    "PodSecurityPolicy", "PodDisruptionBudget", "ServiceAccount", "Secret", "SecretList",
    "ConfigMap", "StorageClass", "PersistentVolume", "PersistentVolumeClaim",
    "CustomResourceDefinition", "ClusterRole", "ClusterRoleList", "ClusterRoleBinding",
    "ClusterRoleBindingList", "Role", "RoleList", "RoleBinding", "RoleBindingList", "Service",
    "DaemonSet", "Pod", "ReplicationController", "ReplicaSet", "Deployment",
    "HorizontalPodAutoscaler", "StatefulSet", "Job", "CronJob", "IngressClass", "Ingress",
    "APIService", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration",
]

_SEPARATOR = re.compile(r"^---[ \t]*$", re.MULTILINE)
_KIND = re.compile(r"^kind:[ \t]*['\"]?([A-Za-z0-9]+)", re.MULTILINE)


class UsageError(Exception):
    """Bad command line or missing SDK (exit 2)."""


def helm() -> Any:
    """The helm_python module, or a UsageError that says how to install it."""
    try:
        import helm_python
    except ImportError as error:
        raise UsageError(
            f"the Python module helm_python is missing ({error}); install it with: {INSTALL_HINT}"
        ) from error
    return helm_python


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Maps merge key by key; anything else (lists included) in `override` replaces."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def user_values(
    mode: str | None = None,
    values_files: list[str] | None = None,
    sets: list[str] | None = None,
) -> dict[str, Any]:
    """The values given on top of the chart's defaults, composed as documented above."""
    sdk = helm()
    values: dict[str, Any] = {}
    if mode is not None:
        values["mode"] = mode
    for path in values_files or []:
        try:
            text = Path(path).read_text()
        except OSError as error:
            raise UsageError(f"--values {path}: {error}") from error
        values = deep_merge(values, sdk.values_from_yaml(text) or {})
    for expression in sets or []:
        values = deep_merge(values, sdk.parse_set_string(expression))
    return values


def split_documents(text: str) -> list[str]:
    """The non-empty YAML documents of a stream (a document of comments only is empty)."""
    documents = []
    for part in _SEPARATOR.split(text):
        meaningful = [
            line for line in part.splitlines() if line.strip() and not line.lstrip().startswith("#")
        ]
        if meaningful:
            documents.append(part.strip("\n"))
    return documents


def kind_of(document: str) -> str:
    match = _KIND.search(document)
    return match.group(1) if match else ""


def render_documents(
    values: dict[str, Any] | None = None,
    *,
    name: str = "stampede",
    namespace: str = "stampede-system",
    include_crds: bool = True,
) -> list[tuple[str, str]]:
    """(source path, YAML document) pairs: CRDs first, then templates in install order."""
    sdk = helm()
    with sdk.Chart.load(CHART) as chart:
        rendered = chart.render(
            values=values or {}, name=name, namespace=namespace, is_install=True
        )
        crds = chart.crds if include_crds else []
    documents: list[tuple[str, str]] = []
    for crd in sorted(crds, key=lambda c: c["filename"]):
        documents += [(crd["filename"], doc) for doc in split_documents(crd["data"])]
    templates: list[tuple[int, int, str, str]] = []
    for source in sorted(rendered):
        if source.endswith("NOTES.txt"):
            continue
        for doc in split_documents(rendered[source]):
            kind = kind_of(doc)
            rank = INSTALL_ORDER.index(kind) if kind in INSTALL_ORDER else len(INSTALL_ORDER)
            templates.append((rank, len(templates), source, doc))
    documents += [(source, doc) for _, _, source, doc in sorted(templates)]
    return documents


def render_notes(
    values: dict[str, Any] | None = None, *, name: str = "stampede", namespace: str = "stampede-system"
) -> str:
    sdk = helm()
    with sdk.Chart.load(CHART) as chart:
        rendered = chart.render(
            values=values or {}, name=name, namespace=namespace, is_install=True
        )
    return next((text for source, text in rendered.items() if source.endswith("NOTES.txt")), "")


def to_stream(documents: list[tuple[str, str]]) -> str:
    return "".join(f"---\n# Source: {source}\n{doc}\n" for source, doc in documents)


def lint(values: dict[str, Any] | None = None, *, namespace: str = "stampede-system") -> dict[str, Any]:
    """Helm's lint report ({"messages": [{"severity", "path", "error"}], "errors": [...]})."""
    report: dict[str, Any] = helm().lint(CHART, values or {}, strict=True, namespace=namespace)
    return report


SEVERITY = {0: "UNKNOWN", 1: "INFO", 2: "WARNING", 3: "ERROR"}


def lint_failures(report: dict[str, Any]) -> list[str]:
    """The findings that fail a lint: warnings and errors."""
    failures = [
        f"[{SEVERITY.get(m['severity'], m['severity'])}] {m['path']}: {m['error'].strip()}"
        for m in report.get("messages", [])
        if m.get("severity", 0) >= 2
    ]
    if report.get("errors") and not failures:
        failures = [f"[ERROR] {e.strip()}" for e in report["errors"]]
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Render or lint charts/stampede with Helm's engine (helm-python-sdk).",
        epilog="Output: CRDs first, then the templates' objects in Helm's install order.",
    )
    parser.add_argument("--mode", choices=["cluster", "namespaced"], help="sets the value `mode`")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a value in Helm's --set syntax (repeatable)")
    parser.add_argument("--values", "-f", action="append", default=[], metavar="FILE",
                        help="a values YAML file (repeatable)")
    parser.add_argument("--name", default="stampede", help="release name (default: stampede)")
    parser.add_argument("--namespace", "-n", default="stampede-system",
                        help="release namespace (default: stampede-system)")
    parser.add_argument("--no-crds", action="store_true", help="leave the CRDs out")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--lint", action="store_true", help="lint instead of rendering")
    action.add_argument("--notes", action="store_true", help="print the rendered NOTES.txt")
    args = parser.parse_args(argv)

    try:
        sdk = helm()
        values = user_values(args.mode, args.values, args.set)
        if args.lint:
            report = lint(values, namespace=args.namespace)
            for message in report.get("messages", []):
                severity = SEVERITY.get(message["severity"], message["severity"])
                print(f"[{severity}] {message['path']}: {message['error'].strip()}")
            failures = lint_failures(report)
            if failures:
                print(f"lint failed: {len(failures)} finding(s) of warning or error level",
                      file=sys.stderr)
                return 1
            print(f"lint passed ({json.dumps(values, sort_keys=True)})")
            return 0
        if args.notes:
            sys.stdout.write(render_notes(values, name=args.name, namespace=args.namespace))
            return 0
        documents = render_documents(
            values, name=args.name, namespace=args.namespace, include_crds=not args.no_crds
        )
        sys.stdout.write(to_stream(documents))
        return 0
    except UsageError as error:
        print(f"render.py: {error}", file=sys.stderr)
        return 2
    except sdk.HelmError as error:
        print(f"render.py: {type(error).__name__}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
