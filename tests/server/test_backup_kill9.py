"""kill -9 of `fsm-server backup` at random moments: the backups taken before stay intact, and no
file that looks like a complete backup is anything but one."""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fsm_devtools.corpus import ClientKit, ServerKit, report_mail
from fsm_server.backup import ArchiveReader, list_backups
from fsm_server.backup.archive import PARTIAL_SUFFIX
from fsm_server.db import open_database
from fsm_server.errors import BackupCorrupt
from fsm_server.ingest.pipeline import Pipeline
from fsm_server.registry import Registry

TRIALS = 20


def _backup_process(data: Path, to: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from fsm_server.cli import main; main()",
            "--data-dir",
            str(data),
            "backup",
            "--to",
            str(to),
        ],
        env={k: v for k, v in os.environ.items() if k != "FSM_DATABASE_URL"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_kill_9_during_backup_leaves_previous_backups_intact_and_no_half_file_named_complete(
    tmp_path: Path, client_kit: ClientKit, server_kit: ServerKit
) -> None:
    data, to = tmp_path / "server", tmp_path / "backups"
    with open_database("", data_dir=data) as db:
        registry = Registry(db)
        registry.add(client_kit.name, client_kit.pub_path)
        pipeline = Pipeline(db, registry, server_kit.encryption_key)
        for seq in range(1, 41):
            mail = report_mail(
                client_kit, server_kit, seq, devices=100, created_at=datetime(2025, 1, 1, tzinfo=UTC)
            )
            assert pipeline.process(mail, source="test").outcome == "loaded"
    start = time.monotonic()
    first = _backup_process(data, to)
    assert first.wait(120) == 0
    whole_run = time.monotonic() - start
    kept = {p: _digest(p) for p in list_backups(to)}
    assert len(kept) == 1
    with ArchiveReader(next(iter(kept))) as reader:
        writing = reader.manifest.seconds  # reading the snapshot and writing the file
    rng = random.Random(19)
    partial_seen = 0
    for trial in range(TRIALS):
        proc = _backup_process(data, to)
        if trial % 4 == 0:
            time.sleep(rng.uniform(0.0, whole_run * 1.1))  # anywhere: start-up, writing, renaming, after
        else:  # most kills land while the file is being written
            while proc.poll() is None and not any(p.name.endswith(PARTIAL_SUFFIX) for p in to.iterdir()):
                time.sleep(0.002)
            time.sleep(rng.uniform(0.0, writing * 1.2))
        proc.kill()
        proc.wait()
        partial_seen += any(p.name.endswith(PARTIAL_SUFFIX) for p in to.iterdir())
        listed = list_backups(to)
        for path, digest in kept.items():
            assert path in listed and _digest(path) == digest, f"{path} changed"
        for path in listed:
            with ArchiveReader(path) as reader:
                reader.check()  # every file named as a backup is a whole one
            kept.setdefault(path, _digest(path))
        for stray in to.glob(f"*{PARTIAL_SUFFIX}"):
            if stray.stat().st_size:
                with pytest.raises(BackupCorrupt):
                    ArchiveReader(stray).close()
    print(
        f"\n{TRIALS} kills over a {whole_run:.2f} s backup run: {partial_seen} left a partial file, "
        f"{len(kept) - 1} completed before the kill"
    )
    # the next backup clears what the killed ones left
    last = _backup_process(data, to)
    assert last.wait(120) == 0
    assert not list(to.glob(f"*{PARTIAL_SUFFIX}")) and not list(to.glob(f".*{PARTIAL_SUFFIX}"))
