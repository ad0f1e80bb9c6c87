"""The reports/notifications part of config.example.toml loads strictly and shows every setting."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import msgspec

from fsm_common import configfile
from fsm_server.config import NotifySection, ReportsSection, RetentionSection, RuleSection, ServerConfig

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.toml"


def part() -> str:
    m = re.search(r"begin fsm-server-reports\n(.*?)\n# =+ end fsm-server reports", EXAMPLE.read_text(), re.S)
    assert m, "config.example.toml lacks the fsm-server-reports markers"
    return m.group(1)


def test_the_example_loads_and_states_the_defaults() -> None:
    config = configfile.convert(tomllib.loads(part()), ServerConfig, source="config.example.toml")
    assert config.reports == ReportsSection() and config.notify == NotifySection()
    assert config.retention == RetentionSection()


def test_the_commented_rules_load_too() -> None:
    uncommented = re.sub(r"^# (\[\[rules\]\]|[a-z_]+ = )", r"\1", part(), flags=re.M)
    config = configfile.convert(tomllib.loads(uncommented), ServerConfig, source="config.example.toml")
    assert [r.when for r in config.rules] == [
        "alert",
        "supply_days",
        "silent_client",
        "counter_anomaly",
        "backup",
    ]
    assert config.reports.meter_names["total"] == "TOTAL_CLICKS"


def test_every_setting_is_shown() -> None:
    text = part()
    for struct in (ReportsSection, NotifySection, RuleSection):
        for field in msgspec.structs.fields(struct):
            if field.encode_name == "meter_names":
                continue  # a table of its own
            where = f"{struct.__name__}.{field.encode_name}"
            assert re.search(rf"^#? ?{field.encode_name} = ", text, re.M), where
