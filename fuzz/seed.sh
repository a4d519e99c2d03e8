#!/usr/bin/env bash
# Builds each fuzz target's seed corpus under fuzz/corpus/ (not committed): every example and
# every one-mistake manifest of tests/invalid for `manifest`; the templates, expressions,
# thresholds, metric keys, JSONPaths and durations written in them for the text targets; the
# committed runner report for `report`.
set -euo pipefail
cd "$(dirname "$0")"
rm -rf corpus && mkdir -p corpus/{manifest,template,expr,threshold,jsonpath,duration,report}
cp ../examples/*.yaml ../tests/invalid/*.yaml corpus/manifest/
cp seeds/report/* corpus/report/
cp seeds/jsonpath/* corpus/jsonpath/
cp seeds/manifest/* corpus/manifest/
python3 - <<'PY'
import glob, hashlib, re
def put(target, text):
    name = hashlib.sha1(text.encode()).hexdigest()[:16]
    open(f"corpus/{target}/{name}", "w").write(text)
for path in glob.glob("../examples/*.yaml") + glob.glob("../tests/invalid/*.yaml"):
    for line in open(path, encoding="utf-8"):
        for text in re.findall(r'"((?:[^"\\]|\\.)*)"', line) + re.findall(r"'([^']*)'", line):
            if "${" in text: put("template", text)
            if "json(" in text or "==" in text or "status" in text: put("expr", text)
            if re.match(r"^\s*(p\(|avg|min|max|med|rate|count|value)", text): put("threshold", text)
            if text.startswith("$"): put("jsonpath", text)
        for text in re.findall(r"\b\d+(?:\.\d+)?(?:ms|s|m|h|us|µs)(?:\d+(?:ms|s|m|h))*\b", line):
            put("duration", text)
        for text in re.findall(r"^\s*([a-z_]+\{[^}]*\})\s*:", line):
            put("threshold", text)
PY
for dir in corpus/*; do echo "$dir: $(ls "$dir" | wc -l) seeds"; done
