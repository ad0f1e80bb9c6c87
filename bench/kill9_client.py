"""kill -9 of `fsm-client run` at 100 random moments during scans and sends (CI runs 20).

Real peers: three snmpsim printers (flipped between fine, jammed and door open so alerts are
sealed too) and the project's Postfix + Dovecot. After the last kill the outbox is flushed
with `fsm-client send --no-read`, then the bench checks that every stored reading is in
exactly one envelope that reached the mailbox, that no number from 1 to the last is missing
(duplicates of a number are allowed and counted), and that each envelope opens to exactly
the readings the store says it carries. Exit status 1 if any of that fails.

    .venv/bin/python bench/kill9_client.py [--trials 100] [--filedrop] [--seed 1]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "client"))

from client_fixtures import Keys, Printers  # noqa: E402
from kill9_harness import check, client_sections, run_trials, write_toml  # noqa: E402

from fsm_client.store import Store  # noqa: E402
from fsm_devtools.peers.mailstack import MailStack, MailStackError  # noqa: E402
from fsm_protocol.mime import parse_message  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--filedrop", action="store_true", help="send through the file drop instead of SMTP")
    parser.add_argument("--offset", type=int, default=int(os.environ.get("FSM_MAIL_PORT_OFFSET", "100")))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        keys = Keys(work / "keys")
        printers = Printers(["k1", "k2", "k3"], work / "printers", first_ip="127.0.0.80").start()
        stack = None
        with contextlib.ExitStack() as peers:
            peers.callback(printers.stop)
            if args.filedrop:
                drop = work / "drop"
                drop.mkdir()
                transport = {"transport": {"kind": "filedrop"}, "filedrop": {"directory": str(drop)}}
            else:
                stack = peers.enter_context(MailStack(port_offset=args.offset).lease())
                stack.empty_mailbox("dealer")
                transport = {
                    "smtp": {
                        "host": stack.host,
                        "port": stack.smtp_port,
                        "security": "starttls",
                        "ca_file": str(stack.ca_file),
                        "from": "client@fsm.test",
                        "to": ["dealer@fsm.test"],
                    }
                }
            config = write_toml(work / "client.toml", client_sections(keys, printers, transport))
            t0 = time.monotonic()
            outcome = run_trials(
                config, work / "data", printers, trials=args.trials, rng=random.Random(args.seed)
            )
            with Store.in_data_dir(work / "data") as store:
                last = store.last_seq()
            if stack is not None:
                with contextlib.suppress(MailStackError):
                    stack.wait_for_messages(last, timeout=60)
                delivered = [parse_message(raw).envelope for _, raw in stack.messages()]
            else:
                delivered = [parse_message(f.read_bytes()).envelope for f in sorted(drop.glob("*.eml"))]
            outcome = check(outcome, work / "data", keys, delivered)
            elapsed = time.monotonic() - t0
    print(
        f"transport: {'file drop' if args.filedrop else 'SMTP (Postfix + Dovecot)'}; "
        f"{outcome.trials} trials, {outcome.kills} kill -9, {elapsed:.0f} s"
    )
    print(
        f"readings stored: {outcome.readings}; envelopes numbered 1..{outcome.last_seq}; "
        f"distinct numbers delivered: {outcome.envelopes_seen}; duplicate deliveries: {outcome.duplicates}"
    )
    print(
        f"readings in no envelope: {outcome.unreported}; numbers missing: {outcome.missing or 'none'}; "
        f"envelopes not matching the store: {outcome.mismatched or 'none'}"
    )
    for line in outcome.exited_early:
        print("early exit:", line)
    print("OK" if outcome.ok else "FAILED")
    return 0 if outcome.ok else 1


if __name__ == "__main__":
    sys.exit(main())
