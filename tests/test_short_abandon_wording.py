"""Short abandons are said the same way everywhere, and counted that way:
KPI.md's "counted, and excluded where a formula says so" -- an abandon in
sipacd_queue_abandoned_total and the report's "abandoned", also counted
apart, left out only by the excluding-short-abandons formulas."""
from __future__ import annotations

import io
import re
import tomllib
from pathlib import Path
from types import SimpleNamespace

from prometheus_client import generate_latest

from sipagent.cli.report import write_table
from sipagent.metrics import EngineMetrics
from sipagent.queue.stats import QueueStats

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "sipacd.toml"


def help_of(metrics: EngineMetrics, name: str) -> str:
    text = generate_latest(metrics.registry).decode()
    return re.search(rf"^# HELP {name} (.*)$", text, re.M).group(1)


def test_the_example_config_says_a_short_abandon_is_an_abandon():
    text = EXAMPLE.read_text()
    comment = text[:text.index("\nshort_abandon =")].rsplit("\n\n", 1)[-1]
    comment = " ".join(line.lstrip("# ") for line in comment.splitlines()
                       if line.startswith("#") and not line.startswith("#:"))
    comment = comment[comment.index("short_abandon"):]   # the key's own comment
    assert "not as abandons" not in comment
    assert "still counted as an abandon" in comment
    assert "excluded only where a formula says so" in comment
    assert tomllib.loads(text)["queues"]["support"]["short_abandon"] == 5


def test_the_metric_help_and_the_counts_agree():
    metrics = EngineMetrics((5.0,))
    assert "short abandons included" in help_of(metrics, "sipacd_queue_abandoned_total")
    short_help = help_of(metrics, "sipacd_queue_short_abandoned_total")
    assert "also counted in sipacd_queue_abandoned_total" in short_help
    assert "subset" not in short_help
    stats = QueueStats({"q": SimpleNamespace(short_abandon=5.0, service_levels=(20.0,))},
                       metrics)
    stats.abandoned("q", 1000.0, 3.0, "c1")      # short
    stats.abandoned("q", 1001.0, 9.0, "c2")
    value = lambda name: metrics.registry.get_sample_value(name, {"queue": "q"})
    assert value("sipacd_queue_abandoned_total") == 2
    assert value("sipacd_queue_short_abandoned_total") == 1


def test_the_report_table_says_it_too():
    out = io.StringIO()
    write_table([], None, out)
    assert "aband counts short abandons too" in out.getvalue()
