"""kill -9 of a real `fsm-client run` subprocess at random moments during scans and sends.

Afterwards every stored reading is in exactly one sealed envelope that reached the mailbox
(or the drop folder): duplicates of a number are allowed, holes are not. CI runs 20 trials
against Postfix + Dovecot and 10 against the file drop; bench/kill9_client.py runs 100.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from client_fixtures import Keys, Printers
from kill9_harness import check, client_sections, run_trials, write_toml

from fsm_client.store import Store
from fsm_devtools.peers.mailstack import MailStack, MailStackError
from fsm_protocol.mime import parse_message

pytestmark = [pytest.mark.mail, pytest.mark.snmp, pytest.mark.slow]

SMTP_TRIALS = 20
FILEDROP_TRIALS = 10


@pytest.fixture(scope="module")
def printers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Printers]:
    p = Printers(
        ["floor-1", "floor-2", "floor-3"], tmp_path_factory.mktemp("printers"), first_ip="127.0.0.40"
    ).start()
    try:
        yield p
    finally:
        p.stop()


def test_kill_9_during_scans_and_sends_loses_no_reading_and_leaves_no_hole(
    empty_dealer_mailbox: MailStack, printers: Printers, keys: Keys, tmp_path: Path
) -> None:
    stack = empty_dealer_mailbox
    smtp = {
        "smtp": {
            "host": stack.host,
            "port": stack.smtp_port,
            "security": "starttls",
            "ca_file": str(stack.ca_file),
            "from": "client@fsm.test",
            "to": ["dealer@fsm.test"],
        }
    }
    config = write_toml(tmp_path / "client.toml", client_sections(keys, printers, smtp))
    outcome = run_trials(config, tmp_path / "data", printers, trials=SMTP_TRIALS, rng=random.Random(5))
    assert not outcome.exited_early, outcome.exited_early
    with Store.in_data_dir(tmp_path / "data") as store:
        last = store.last_seq()
    with contextlib.suppress(MailStackError):  # a hole shows up in the check below, by number
        stack.wait_for_messages(last, timeout=30)
    raw = stack.messages()
    outcome = check(outcome, tmp_path / "data", keys, [parse_message(m).envelope for _, m in raw])
    assert outcome.kills == SMTP_TRIALS
    assert outcome.readings > 0 and outcome.last_seq > 0
    assert outcome.unreported == 0, "a stored reading is in no envelope"
    assert outcome.missing == [], f"numbers that never arrived: {outcome.missing}"
    assert outcome.mismatched == [], f"envelopes not carrying their stored readings: {outcome.mismatched}"


def test_kill_9_with_the_file_drop_leaves_only_whole_envelope_files(
    printers: Printers, keys: Keys, tmp_path: Path
) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    transport = {"transport": {"kind": "filedrop"}, "filedrop": {"directory": str(drop)}}
    config = write_toml(tmp_path / "client.toml", client_sections(keys, printers, transport))
    outcome = run_trials(config, tmp_path / "data", printers, trials=FILEDROP_TRIALS, rng=random.Random(7))
    assert not outcome.exited_early, outcome.exited_early
    files = sorted(drop.glob("*.eml"))
    # every visible file is a whole message (a partial one would not parse or open)
    envelopes = [parse_message(f.read_bytes()).envelope for f in files]
    outcome = check(outcome, tmp_path / "data", keys, envelopes)
    assert outcome.unreported == 0 and outcome.missing == [] and outcome.mismatched == []
    assert outcome.last_seq > 0
