"""The shipped recording rules parse and compute the KPI formulas (promtool),
for one engine (rules_test.yml) and for several engines that Prometheus
scrapes one by one (rules_test_nodes.yml: a queue's series from two nodes,
one of which stops at a failover while the other's start at 0)."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

RULES = Path(__file__).resolve().parent.parent / "prometheus"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool missing (Debian prometheus)")
TEST_FILES = ("rules_test.yml", "rules_test_nodes.yml")


def promtool_test(folder: Path, test_file: str) -> subprocess.CompletedProcess:
    return subprocess.run([PROMTOOL, "test", "rules", test_file], cwd=folder,
                          capture_output=True, text=True, timeout=120)


def copy_with(tmp_path: Path, *, rules: str | None = None, **tests: str) -> Path:
    """The rules folder in ``tmp_path``, with ``rules`` and test files
    (by name, dots as underscores) replaced."""
    (tmp_path / "rules.yml").write_text(rules if rules is not None
                                        else (RULES / "rules.yml").read_text())
    for name in TEST_FILES:
        text = tests.get(name.replace(".", "_"))
        (tmp_path / name).write_text(text if text is not None else (RULES / name).read_text())
    return tmp_path


@needs_promtool
def test_rules_are_valid():
    res = subprocess.run([PROMTOOL, "check", "rules", str(RULES / "rules.yml")],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr


@needs_promtool
@pytest.mark.parametrize("test_file", TEST_FILES)
def test_rules_compute_the_kpis(test_file):
    res = promtool_test(RULES, test_file)
    assert res.returncode == 0 and "SUCCESS" in res.stdout, res.stdout + res.stderr


@needs_promtool
def test_rule_tests_can_fail(tmp_path):
    """A wrong expectation must be caught, or the test above proves nothing."""
    broken = (RULES / "rules_test.yml").read_text().replace("value: 0.75", "value: 0.74", 1)
    res = promtool_test(copy_with(tmp_path, rules_test_yml=broken), "rules_test.yml")
    assert res.returncode != 0


@needs_promtool
def test_cross_node_expectations_can_fail(tmp_path):
    """The center-wide ASA is 2328 / 104 s; node-b's alone would be 30 s,
    node-a's 12 s."""
    text = (RULES / "rules_test_nodes.yml").read_text()
    assert "value: 22.384615384615383" in text
    broken = text.replace("value: 22.384615384615383", "value: 30", 1)
    res = promtool_test(copy_with(tmp_path, rules_test_nodes_yml=broken), "rules_test_nodes.yml")
    assert res.returncode != 0
    assert 'expr: "sipacd:queue_asa_seconds:mean15m"' in res.stdout + res.stderr


# Rules that are right for one engine and wrong for several: the one-engine
# test passes them, the two-node test must not.
NODE_BLIND_RULES = {
    # A figure per node: `instance` kept.
    "instance kept": lambda line: line.replace("sum by (queue", "sum by (instance, queue"),
    # One node's figure (the largest) instead of the center's. Occupancy's
    # sums over agent states stay sums (or one engine would see it too), and
    # so does the agents gauge's: a queue's agents are on one node at a
    # time, where max and sum agree.
    "max instead of sum": lambda line: line if "sipacd_queue_agent" in line
    else line.replace("sum by (queue", "max by (queue"),
}


def recorded(rules: str) -> dict[str, list[str]]:
    """record name -> its expressions (a name may be recorded twice)."""
    out: dict[str, list[str]] = {}
    for group in yaml.safe_load(rules)["groups"]:
        for rule in group["rules"]:
            if "record" in rule:
                out.setdefault(rule["record"], []).append(rule["expr"])
    return out


@needs_promtool
@pytest.mark.parametrize("mutation", sorted(NODE_BLIND_RULES))
def test_only_the_cross_node_case_catches_node_blind_rules(tmp_path, mutation):
    original = (RULES / "rules.yml").read_text()
    rules = "".join(NODE_BLIND_RULES[mutation](line)
                    for line in original.splitlines(keepends=True))
    folder = copy_with(tmp_path, rules=rules)
    single = promtool_test(folder, "rules_test.yml")
    assert single.returncode == 0, single.stdout + single.stderr
    nodes = promtool_test(folder, "rules_test_nodes.yml")
    failures = nodes.stdout + nodes.stderr
    assert nodes.returncode != 0, failures
    before, after = recorded(original), recorded(rules)
    changed = [name for name in before if before[name] != after[name] and "queue" in name]
    tested = (RULES / "rules_test_nodes.yml").read_text()
    assert len(changed) >= 10, changed
    caught = [name for name in changed
              # a wrong value, or a rule that no longer evaluates (many-to-many)
              if f'expr: "{name}"' in failures or f"rule: {name}," in failures]
    for name in changed:
        assert f"expr: {name}" in tested, f"{name} has no cross-node test"
    if "many-to-many" in failures:
        # A rule that fails to evaluate ends promtool's test case there, so
        # the case's other rules are not reported: one of each case is.
        assert any(":ratio15m" in name for name in caught), failures
        assert "sipacd:queue_waiting_calls:sum" in caught, failures
    else:
        assert caught == changed, (sorted(set(changed) - set(caught)), failures)
