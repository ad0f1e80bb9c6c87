"""docs/install.md cannot rot: every ```sh test block of it runs here, in order, as one script.

The guide's absolute paths (/opt/fsm, /etc/fsm, /var/lib/fsm-*) are moved under a temporary
directory, and its PostgreSQL (`runuser -u postgres -- psql`, 127.0.0.1:5432) is the server the
database tests use. The package install is the guide's own pip command, made offline: pip finds
the dependencies (and a setuptools new enough to build fsm) already installed in this
interpreter's environment, which a .pth file in the new venv names, and may not reach an index,
so the suite passes with loopback only.
"""

from __future__ import annotations

import os
import re
import shutil
import site
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest

pytestmark = pytest.mark.postgresql

REPO = Path(__file__).resolve().parents[1]
GUIDE = REPO / "docs" / "install.md"
MOVED = ("/opt/fsm", "/etc/fsm", "/var/lib/fsm-client", "/var/lib/fsm-server")
ROLE = DATABASE = "fsm"  # the guide's names


def blocks(text: str, info: str) -> list[str]:
    """The bodies of the fenced blocks whose info string is exactly `info`."""
    return re.findall(rf"^```{re.escape(info)}\n(.*?)^```$", text, flags=re.M | re.S)


def test_the_guide_shows_the_install_the_keys_and_the_checks_as_runnable_blocks() -> None:
    runnable = "\n".join(blocks(GUIDE.read_text(), "sh test"))
    shown = ("python3 -m venv /opt/fsm", "/opt/fsm/bin/pip install", "server.toml keys init",
              "client.toml keys init", "keys show", "CREATE ROLE fsm", "CREATE DATABASE fsm", "clients add",
              "clients list")  # fmt: skip
    for needed in shown:
        assert needed in runnable, f"docs/install.md runs no {needed!r} any more"
    # Every other shell block only changes the machine (users, services, packages).
    changes_the_machine = r"\b(apt-get|systemctl|useradd|userdel|chown|chgrp|rm|pip install --upgrade)\b"
    for block in blocks(GUIDE.read_text(), "sh"):
        assert re.search(changes_the_machine, block), block


@pytest.fixture
def guide_database(postgres_admin: str) -> Iterator[str]:
    """The guide's role and database on the test server, gone before and after."""

    def drop() -> None:
        with psycopg.connect(postgres_admin, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
            conn.execute(f'DROP ROLE IF EXISTS "{ROLE}"')

    drop()
    yield postgres_admin
    drop()


def script(guide: str, root: Path, admin_url: str) -> str:
    """The guide's runnable blocks as one bash script, moved into `root` and onto the test server."""
    admin = urlsplit(admin_url)
    deps = site.getsitepackages()[0]
    lines = ["set -euxo pipefail"]
    for block in blocks(guide, "sh test"):
        for line in block.splitlines():
            for prefix in MOVED:
                line = line.replace(prefix, f"{root}{prefix}")
            line = line.replace("runuser -u postgres -- ", "")
            line = line.replace("127.0.0.1:5432", f"{admin.hostname}:{admin.port or 5432}")
            lines.append(line)
            venv = re.fullmatch(r"python3 -m venv (\S+)", line.strip())
            if venv:  # the new venv sees this environment's packages: pip installs offline
                query = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
                purelib = f'$({venv.group(1)}/bin/python -c "{query}")'
                lines.append(f"echo {deps} > {purelib}/fsm-test-dependencies.pth")
                # Its own setuptools (Debian's 66) is too old to build fsm and cannot be upgraded offline.
                lines.append(f"{venv.group(1)}/bin/pip uninstall --quiet --yes setuptools")
    return "\n".join(lines) + "\n"


def test_every_runnable_command_of_the_install_guide_works(tmp_path: Path, guide_database: str) -> None:
    root = tmp_path / "root"
    source = tmp_path / "source"  # pip builds in the tree: a copy keeps the checkout clean
    skipped = (".venv", ".git", "var", "__pycache__", "build", "*.egg-info", ".*_cache", ".hypothesis")
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(*skipped))
    admin = urlsplit(guide_database)
    env = dict(
        os.environ,
        PIP_NO_INDEX="1",
        PIP_NO_BUILD_ISOLATION="0",  # pip reads "no-" options backwards: this turns isolation off
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PGHOST=admin.hostname or "127.0.0.1",
        PGPORT=str(admin.port or 5432),
        PGUSER=admin.username or "postgres",
        PGDATABASE=admin.path.lstrip("/") or "postgres",
    )
    for name in ("FSM_CLIENT_CONFIG", "FSM_CLIENT_DATA_DIR", "FSM_SERVER_CONFIG", "FSM_SERVER_DATA_DIR",
                 "VIRTUAL_ENV", "PYTHONPATH"):  # fmt: skip
        env.pop(name, None)
    body = script(GUIDE.read_text(), root, guide_database)
    proc = subprocess.run(["bash", "-c", body], cwd=source, env=env, capture_output=True, text=True,
                          timeout=600, check=False)  # fmt: skip
    assert proc.returncode == 0, f"{body}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr[-4000:]}"

    # The commands ran from the guide's venv, not from this checkout.
    venv_python = root / "opt/fsm/bin/python"
    where = subprocess.run(
        [str(venv_python), "-c", "import fsm_client; print(fsm_client.__file__)"],
        capture_output=True, text=True, check=True, env=env, cwd=tmp_path,
    ).stdout  # fmt: skip
    assert where.startswith(str(root / "opt/fsm")), where
    for key in (root / "var/lib/fsm-server/keys/server.key", root / "var/lib/fsm-client/keys/client.key"):
        assert key.stat().st_mode & 0o777 == 0o600, key
    assert "acme-hq" in proc.stdout  # clients list, from the guide's PostgreSQL database
    with psycopg.connect(guide_database, autocommit=True, connect_timeout=5) as conn:
        owner = conn.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s",
                             (DATABASE,)).fetchone()  # fmt: skip
    assert owner == (ROLE,)
