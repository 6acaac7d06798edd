"""The shipped recording rules parse and compute the KPI formulas (promtool)."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

RULES = Path(__file__).resolve().parent.parent / "prometheus"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool missing (Debian prometheus)")


@needs_promtool
def test_rules_are_valid():
    res = subprocess.run([PROMTOOL, "check", "rules", str(RULES / "rules.yml")],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr


@needs_promtool
def test_rules_compute_the_kpis():
    res = subprocess.run([PROMTOOL, "test", "rules", "rules_test.yml"], cwd=RULES,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "SUCCESS" in res.stdout, res.stdout + res.stderr


@needs_promtool
def test_rule_tests_can_fail(tmp_path):
    """A wrong expectation must be caught, or the test above proves nothing."""
    broken = (RULES / "rules_test.yml").read_text().replace("value: 0.75", "value: 0.74", 1)
    (tmp_path / "rules.yml").write_text((RULES / "rules.yml").read_text())
    (tmp_path / "rules_test.yml").write_text(broken)
    res = subprocess.run([PROMTOOL, "test", "rules", "rules_test.yml"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode != 0
