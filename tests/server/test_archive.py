"""Archive re-import: mbox (streamed), Maildir, .eml and .fsm files, on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
import mailbox
import tracemalloc
from pathlib import Path

from fsm_devtools.corpus import ClientKit, ServerKit, make_report, report_mail, seal
from fsm_server.db.models import Envelope, Quarantine
from fsm_server.ingest.archive import import_paths
from fsm_server.ingest.pipeline import Pipeline


def _mbox_text(mails: list[bytes]) -> bytes:
    """An mbox as mail clients write it: LF line ends, a From_ line per message, >From escaping."""
    out = []
    for m in mails:
        body = m.replace(b"\r\n", b"\n")
        body = b"\n".join(b">" + line if line.startswith(b"From ") else line for line in body.split(b"\n"))
        out.append(b"From client@fsm.test Mon Nov 23 10:00:00 2026\n" + body.rstrip(b"\n") + b"\n\n")
    return b"".join(out)


def test_an_mbox_maildir_eml_and_fsm_files_are_imported_and_importing_twice_changes_nothing(
    tmp_path: Path, pipeline: Pipeline, client_kit: ClientKit, server_kit: ServerKit
) -> None:
    mbox = tmp_path / "reports.mbox"
    mbox.write_bytes(
        _mbox_text(
            [report_mail(client_kit, server_kit, s) for s in range(1, 6)]
            + [b"From: x@y\r\nSubject: hi\r\n\r\nFrom the office\r\n"]
        )
    )
    md = mailbox.Maildir(tmp_path / "Maildir", create=True)
    for s in range(6, 9):
        md.add(report_mail(client_kit, server_kit, s))
    (tmp_path / "drop").mkdir()
    (tmp_path / "drop" / "acme-hq-9-1of1.fsm").write_bytes(
        seal(make_report(client_kit.name, 9), client_kit, server_kit)
    )
    (tmp_path / "one.eml").write_bytes(report_mail(client_kit, server_kit, 10))
    paths = [mbox, tmp_path / "Maildir", tmp_path / "drop", tmp_path / "one.eml"]

    seen: list[tuple[int, int]] = []
    first = import_paths(paths, pipeline, progress=lambda done, total, v: seen.append((done, total)))
    assert first.outcomes["loaded"] == 10, first.summary()
    assert first.reasons == {"not_fsm_mail": 1}
    assert seen[-1][0] == seen[-1][1] > 0  # the bar ends full
    assert all(a[0] <= b[0] for a, b in itertools.pairwise(seen))

    second = import_paths(paths, pipeline)
    assert (second.outcomes["loaded"], second.outcomes["duplicate"]) == (0, 10)
    assert Envelope.select().count() == 10
    assert Quarantine.select().count() == 1


def test_a_huge_message_in_an_mbox_is_quarantined_without_being_held_in_memory(
    tmp_path: Path, pipeline: Pipeline, client_kit: ClientKit, server_kit: ServerKit
) -> None:
    pipeline.limits.max_mail_bytes = 2 * 1024 * 1024
    mbox = tmp_path / "big.mbox"
    with mbox.open("wb") as f:
        f.write(_mbox_text([report_mail(client_kit, server_kit, 1)]))
        f.write(b"From x Mon Nov 23 10:00:00 2026\nSubject: huge\n\n")
        line = b"A" * 76 + b"\n"
        for _ in range(40 * 1024 * 1024 // len(line)):  # 40 MB
            f.write(line)
        f.write(b"B" * (8 * 1024 * 1024) + b"\n\n")  # and one 8 MB line without a break
        f.write(_mbox_text([report_mail(client_kit, server_kit, 2)]))
    tracemalloc.start()
    try:
        tally = import_paths([mbox], pipeline)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert tally.outcomes["loaded"] == 2
    assert tally.reasons == {"too_large": 1}
    q = Quarantine.get()
    assert q.raw_size > 47 * 1024 * 1024
    assert len(q.raw) == pipeline.limits.quarantine_keep_bytes
    assert peak < 12 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB while reading a 48 MB message"


def test_an_archive_with_poison_reports_and_odd_file_names_imports_every_valid_report(
    tmp_path: Path, pipeline: Pipeline, client_kit: ClientKit, server_kit: ServerKit
) -> None:
    import os

    from fsm_devtools.corpus import _plain_mail, poison_then_valid

    corpus = poison_then_valid(client_kit, server_kit, first_seq=1, valid_after_each=1)
    mbox = tmp_path / "reports.mbox"
    mbox.write_bytes(_mbox_text([raw for _, raw in corpus]))
    drop = tmp_path / "drop"
    drop.mkdir()
    # a file name that is not UTF-8 (decoded with surrogateescape) becomes the quarantine's source
    with open(os.path.join(os.fsencode(drop), b"lunch-\xff\x01.eml"), "wb") as f:
        f.write(_plain_mail("lunch?"))

    tally = import_paths([mbox, drop], pipeline)

    loaded = sum(1 for want, _ in corpus if want == "loaded")
    assert tally.outcomes["loaded"] == loaded, tally.summary()
    assert tally.outcomes["quarantined"] == len(corpus) - loaded + 1
    assert "internal_error" not in tally.reasons
    assert Envelope.select().count() == loaded
