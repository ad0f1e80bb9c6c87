"""A generated corpus of hostile and broken mails: each gets the right reason (or counts as a
duplicate), nothing stops the pipeline, and memory stays flat. 1,000 mails here on each
database; bench/bad_corpus.py runs 10,000."""

from __future__ import annotations

import gc
import os
from collections import Counter
from pathlib import Path

import pytest

from fsm_devtools.corpus import ClientKit, ServerKit, bad_mails, make_client, make_server, report_mail
from fsm_server.db.models import Envelope, Quarantine
from fsm_server.ingest.pipeline import Pipeline
from fsm_server.registry import Registry

CI_CORPUS = int(os.environ.get("FSM_BAD_CORPUS", "1000"))


def rss_bytes() -> tuple[int, int]:
    """(current RSS, peak RSS) of this process, from /proc."""
    lines = Path("/proc/self/status").read_text().splitlines()
    fields = dict(line.split(":", 1) for line in lines if ":" in line)
    return int(fields["VmRSS"].split()[0]) * 1024, int(fields["VmHWM"].split()[0]) * 1024


def run_corpus(
    pipeline: Pipeline,
    registry: Registry,
    client: ClientKit,
    server: ServerKit,
    tmp: Path,
    count: int,
    *,
    big: bool,
) -> tuple[Counter[str], list[str], list[int]]:
    revoked = make_client(tmp / "revoked", "old-site")
    registry.add(revoked.name, revoked.pub_path)
    registry.revoke(revoked.name)
    stranger = make_client(tmp / "stranger", "stranger")
    other_server = make_server(tmp / "other-server")
    loaded = [report_mail(client, server, seq, devices=1) for seq in range(1, 21)]
    for mail in loaded:
        assert pipeline.process(mail).outcome == "loaded"
    outcomes: Counter[str] = Counter()
    wrong: list[str] = []
    rss: list[int] = []
    mails = bad_mails(
        client,
        server,
        revoked=revoked,
        stranger=stranger,
        other_server=other_server,
        loaded_mails=loaded,
        count=count,
        big=big,
    )
    # no enumerate(): it caches its last result tuple, which would keep a 50 MB test mail alive
    for i in range(count):
        expected, raw = next(mails)
        verdict = pipeline.process(raw, source=f"corpus:{i}")
        del raw  # a 50 MB test mail must not count as the pipeline's memory
        got = verdict.outcome if verdict.outcome != "quarantined" else verdict.reason
        outcomes[got] += 1
        if got not in expected.split("|"):
            wrong.append(f"#{i}: expected {expected}, got {got}: {verdict.detail}")
        if i % 50 == 0:
            gc.collect()  # the generator's email.message objects are cyclic garbage, not ours
            rss.append(rss_bytes()[0])
    return outcomes, wrong, rss


@pytest.mark.slow
def test_every_bad_mail_is_quarantined_with_its_reason_or_counted_duplicate(
    tmp_path: Path, pipeline: Pipeline, registry: Registry, client_kit: ClientKit, server_kit: ServerKit
) -> None:
    outcomes, wrong, rss = run_corpus(
        pipeline,
        registry,
        client_kit,
        server_kit,
        tmp_path,
        CI_CORPUS,
        big=os.environ.get("FSM_BAD_CORPUS_BIG") == "1",
    )
    print(
        f"\ncorpus of {CI_CORPUS}: {dict(outcomes)}\nRSS MB every 50 mails: {[r // 2**20 for r in rss]}"
        f"\npeak RSS (VmHWM) {rss_bytes()[1] / 2**20:.0f} MB"
    )
    assert wrong == []
    assert sum(outcomes.values()) == CI_CORPUS
    for reason in (
        "loaded",
        "not_fsm_mail",
        "malformed_mime",
        "unknown_client",
        "revoked_client",
        "bad_signature",
        "bad_schema",
        "version_not_supported",
        "implausible",
        "seq_conflict",
        "duplicate",
    ):
        assert outcomes[reason] > 0, (reason, outcomes)
    assert outcomes["too_large"] + outcomes["decryption_failed"] + outcomes["unknown_key"] > 0
    assert "internal_error" not in outcomes
    # the corpus loaded only its hostile-but-storable reports (cleaned text), each once
    assert Envelope.select().count() == 20 + outcomes["loaded"]
    # memory: after warm-up, RSS does not grow with the number of mails
    warm = rss[len(rss) // 5]
    assert max(rss) - warm < 64 * 1024 * 1024, [r // 2**20 for r in rss]


def test_a_50_mb_attachment_is_refused_before_parsing(pipeline: Pipeline) -> None:
    from fsm_devtools.corpus import _plain_mail

    raw = _plain_mail("big", attachments=[("big.fsm", b"\x89FSM" + bytes(50 * 1024 * 1024))])
    verdict = pipeline.process(raw)
    assert (verdict.outcome, verdict.reason) == ("quarantined", "too_large")
    q = Quarantine.get_by_id(verdict.quarantine_id)
    assert q.raw_size == len(raw) and len(q.raw) == pipeline.limits.quarantine_keep_bytes
