"""Full-size stress runs of the ingest tests (CI runs them small):

* kill -9 of the ingest daemon at random moments while 500 report mails arrive: 100 trials
  (CI: 20), on SQLite and PostgreSQL, against the real Postfix + Dovecot stack;
* the bad-mail corpus: 10,000 mails (CI: 1,000) on each database, with outcome counts, RSS
  samples and the peak RSS printed.

    FSM_MAIL_PORT_OFFSET=200 .venv/bin/python bench/stress_ingest.py [kill9|corpus]

Each part is the CI test itself with its size raised, so the two cannot drift apart.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PARTS = {
    "kill9": ("tests/server/test_ingest_daemon.py", "kill_9", {"FSM_KILL9_TRIALS": "100"}),
    "corpus": ("tests/server/test_bad_mail_corpus.py", "every_bad_mail", {"FSM_BAD_CORPUS": "10000"}),
}


def main() -> int:
    chosen = sys.argv[1:] or list(PARTS)
    status = 0
    for name in chosen:
        path, selector, env = PARTS[name]
        print(f"== {name}: {env}", flush=True)
        status |= subprocess.call(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-s",
                "-p",
                "no:cacheprovider",
                path,
                "-k",
                selector,
                "--durations=5",
                f"--basetemp={tempfile.mkdtemp(prefix=f'fsm-stress-{name}-')}",
            ],
            cwd=ROOT,
            env={**os.environ, **env},
        )
    return status


if __name__ == "__main__":
    raise SystemExit(main())
