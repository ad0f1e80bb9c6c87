"""The ingest part of config.example.toml loads strictly, shows every setting, and hides passwords."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import msgspec

from fsm_common import configfile
from fsm_server.config import DatabaseSection, IngestSection, MailboxSection, ServerConfig

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.toml"


def part() -> str:
    m = re.search(r"begin fsm-server-ingest\n(.*?)\n# =+ end fsm-server ingest", EXAMPLE.read_text(), re.S)
    assert m, "config.example.toml lacks the fsm-server-ingest markers"
    return m.group(1)


def test_the_example_loads_and_states_the_defaults() -> None:
    config = configfile.convert(tomllib.loads(part()), ServerConfig, source="config.example.toml")
    assert config.ingest == IngestSection() and config.database == DatabaseSection()


def test_every_setting_is_shown() -> None:
    text = part()
    for struct in (IngestSection, MailboxSection):
        for field in msgspec.structs.fields(struct):
            where = f"{struct.__name__}.{field.encode_name}"
            assert re.search(rf"^#? ?{field.encode_name} = ", text, re.M), where


def test_the_commented_mailbox_loads_and_its_password_never_prints() -> None:
    uncommented = re.sub(r"^# (\[\[mailboxes\]\]|[a-z_]+ = )", r"\1", part(), flags=re.M)
    config = configfile.convert(tomllib.loads(uncommented), ServerConfig, source="config.example.toml")
    [mailbox] = config.mailboxes
    assert (mailbox.host, mailbox.port, mailbox.security) == ("imap.example.com", 993, "tls")
    assert mailbox.password.reveal() == "..."
    dumped = repr(config) + str(configfile.dump(config))
    assert "'...'" not in dumped and "<secret>" in dumped
