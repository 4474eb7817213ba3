#!/usr/bin/env python3
"""Offline checks of the Helm chart (no cluster, no helm binary): run by tests/integration/helm.rs.

1. `helm lint` (through helm-sdkpy, the Helm Go library) of the chart with its default values and with each
   `ci/*.yaml` values file merged over them: templates must parse, render and produce valid YAML.
2. Values references: every `.Values.x.y` a template reads exists in values.yaml (a typo would silently render
   empty), and every leaf in values.yaml is read by some template (a documented knob that does nothing is a lie).
3. `--routes` prints the ingress route table as JSON for the route test in Rust.
"""
import asyncio
import json
import re
import shutil
import sys
import tempfile
from pathlib import Path

import yaml

CHART = Path(__file__).resolve().parent.parent / "clavis"
ERROR_SEVERITY = 3  # helm's support.ErrorSev
WARNING_SEVERITY = 2


def deep_merge(base, override):
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for key, value in override.items():
            out[key] = deep_merge(base.get(key), value) if key in base else value
        return out
    return override


def lint(chart_dir: Path):
    import helm_sdkpy

    result = asyncio.run(helm_sdkpy.Lint(helm_sdkpy.Configuration()).run(str(chart_dir)))
    problems = [m for m in result.get("Messages") or [] if m.get("Severity", 0) >= WARNING_SEVERITY]
    problems += [{"Err": e} for e in result.get("Errors") or []]
    return problems


def lint_with(values_file: Path | None):
    """Lint a copy of the chart whose values.yaml is the defaults merged with `values_file`."""
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "clavis"
        shutil.copytree(CHART, copy)
        if values_file is not None:
            defaults = yaml.safe_load((CHART / "values.yaml").read_text())
            extra = yaml.safe_load(values_file.read_text())
            (copy / "values.yaml").write_text(yaml.safe_dump(deep_merge(defaults, extra)))
        return lint(copy)


def leaves(tree, prefix=()):
    if isinstance(tree, dict) and tree:
        for key, value in tree.items():
            yield from leaves(value, prefix + (key,))
    else:
        yield prefix


def has_path(tree, path):
    for part in path:
        if not isinstance(tree, dict) or part not in tree:
            return False
        tree = tree[part]
    return True


def check_references():
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    templates = "\n".join(p.read_text() for p in sorted((CHART / "templates").iterdir()) if p.is_file())
    errors = []
    read = set()
    # Direct reads: .Values.a.b or $.Values.a.b
    for match in re.finditer(r"\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)", templates):
        path = tuple(match.group(1).lstrip(".").split("."))
        read.add(path)
        if not has_path(values, path):
            errors.append(f"templates read .Values.{'.'.join(path)}, which values.yaml does not define")
    # Reads through the per-service range variable: `$spec.x.y` must exist for every service.
    for match in re.finditer(r"\$spec((?:\.[A-Za-z_][A-Za-z0-9_]*)+)", templates):
        path = tuple(match.group(1).lstrip(".").split("."))
        for service in values["services"]:
            read.add(("services", service) + path)
            if not has_path(values["services"][service], path):
                errors.append(f"templates read $spec.{'.'.join(path)}, which services.{service} does not define")
    # Maps the templates range over are read whole.
    for ranged in re.finditer(r"range\s+(?:\$\w+\s*,\s*)?\$\w+\s*:=\s*\$?\.Values((?:\.\w+)+)", templates):
        read.add(tuple(ranged.group(1).lstrip(".").split(".")))
    for leaf in leaves(values):
        if not any(leaf[: len(r)] == r for r in read):
            errors.append(f"values.yaml defines {'.'.join(leaf)}, which no template reads")
    return errors


def main():
    if sys.argv[1:] == ["--routes"]:
        values = yaml.safe_load((CHART / "values.yaml").read_text())
        print(json.dumps(values["routes"]))
        return 0
    failures = []
    for problem in lint_with(None):
        failures.append(f"lint (default values): {problem}")
    ci_files = sorted((CHART / "ci").glob("*.yaml"))
    if not ci_files:
        failures.append("no ci/*.yaml values files to lint with")
    for values_file in ci_files:
        for problem in lint_with(values_file):
            failures.append(f"lint ({values_file.name}): {problem}")
    failures += check_references()
    for failure in failures:
        print(failure)
    print(f"checked chart {CHART}: {len(ci_files) + 1} lint runs, {len(failures)} problem(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
