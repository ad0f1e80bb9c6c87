"""Backup and restore of the server's database (and, encrypted, its key).

    from fsm_server.backup import take_backup, restore, verify
    result = take_backup(db, Path("/var/backups/fsm"))     # online: ingest goes on
    verify(result.path)                                    # into a scratch database
    restore(result.path, other_db, force=False)            # SQLite or PostgreSQL, either way

See docs/operations.md, "Backup and restore".
"""

from __future__ import annotations

from .archive import ArchiveReader, Manifest, TableEntry, list_backups
from .restore import RestoreResult, restore, restore_key, row_counts, verify
from .schedule import BackupPlan, BackupService, BackupStatus, run_backup, status
from .snapshot import BackupResult, take_backup

__all__ = [
    "ArchiveReader",
    "BackupPlan",
    "BackupResult",
    "BackupService",
    "BackupStatus",
    "Manifest",
    "RestoreResult",
    "TableEntry",
    "list_backups",
    "restore",
    "restore_key",
    "row_counts",
    "run_backup",
    "status",
    "take_backup",
    "verify",
]
