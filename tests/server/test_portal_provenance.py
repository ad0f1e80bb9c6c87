"""Provenance down to the OID, both databases: a printer read through snmpsim by the client's
reader, its report sealed and loaded by the pipeline; the server keeps the PMD and the OID of
every value and the client's PMD bundle, the device page names them beside each value and the
clients page names the bundle."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest
from portal_kit import enrol, login, web_ctx
from starlette.testclient import TestClient

from fsm_client.config import ClientConfig, Credential, SnmpSection
from fsm_client.pmd.authoring.loader import load_pool
from fsm_client.pmd.distribution.active import bundle_label
from fsm_client.pmd.distribution.dirs import shipped_dir
from fsm_client.scan import scan
from fsm_client.snmp.snmpsim import Snmpsim
from fsm_devtools.corpus import ClientKit, ServerKit, mails_for, seal
from fsm_protocol.schema import Report
from fsm_server.db.connect import Database
from fsm_server.db.models import Device, Envelope, Reading, ReadingSource
from fsm_server.ingest.pipeline import Pipeline
from fsm_server.web import create_app

pytestmark = pytest.mark.snmp

#: The HP LaserJet MFP M130nw: its counters come from HP's vendor OIDs, its supplies from the
#: Printer-MIB table (indexes 1 and 5).
WALK = "hp-laserjet-mfp-m130nw"
SUPPLY_LEVEL = "1.3.6.1.2.1.43.11.1.1.9.1.{}"  # prtMarkerSuppliesLevel, row (1, index)


async def read_and_load(
    snmpsim_walks: Snmpsim,
    walk_credential: Callable[..., Credential],
    pipeline: Pipeline,
    client_kit: ClientKit,
    server_kit: ServerKit,
    data_dir: Path,
) -> Report:
    [device] = await scan(
        [f"127.0.0.1:{snmpsim_walks.port}"],
        config=ClientConfig(snmp=SnmpSection(timeout=1.0, retries=1)),
        pool=load_pool([shipped_dir()]),
        credentials=[walk_credential(WALK)],
    )
    assert (device.reachability, device.pmd) == ("ok", "hp")
    report = Report(
        client_id=client_kit.name,
        customer="ACME",
        site="HQ",
        seq=1,
        kind="periodic",
        created_at=datetime.now(UTC),
        pmd_bundle=bundle_label(data_dir),  # a data dir without an installed bundle: "shipped"
        devices=[device],
    )
    [mail] = mails_for(seal(report, client_kit, server_kit))
    assert pipeline.process(mail, source="test").outcome == "loaded"
    return report


async def test_the_server_keeps_each_values_oid_and_the_portal_shows_it(
    db: Database,
    snmpsim_walks: Snmpsim,
    walk_credential: Callable[..., Credential],
    pipeline: Pipeline,
    client_kit: ClientKit,
    server_kit: ServerKit,
    tmp_path: Path,
) -> None:
    sent = await read_and_load(snmpsim_walks, walk_credential, pipeline, client_kit, server_kit, tmp_path)
    read = sent.devices[0]
    # what the client's reader recorded: each counter's OID, each table supply's level OID
    assert read.sources["counters.total"].startswith("1.3.6.1.4.1.11.")
    assert [s.index for s in read.supplies] == [1, 5]
    assert (read.sources["supplies.1"], read.sources["supplies.5"]) == (
        SUPPLY_LEVEL.format(1),
        SUPPLY_LEVEL.format(5),
    )
    assert sent.pmd_bundle == "shipped"

    # what the server stored: the map once, the reading pointing at it, the bundle on the envelope
    [reading] = Reading.select()
    stored = ReadingSource.get_by_id(reading.source_id)
    assert (stored.pmd, stored.sources) == ("hp", read.sources)
    assert Envelope.get().pmd_bundle == "shipped"
    # a second report of the same printer shares the map
    again = msgspec.structs.replace(sent, seq=2)
    [mail] = mails_for(seal(again, client_kit, server_kit))
    assert pipeline.process(mail, source="test").outcome == "loaded"
    assert ReadingSource.select().count() == 1
    assert {r.source_id for r in Reading.select()} == {stored.id}

    # the portal: every value names its PMD, bundle and OID; the clients page names the bundle
    admin = enrol("ada-provenance", "admin")
    with TestClient(
        create_app(web_ctx(tmp_path), db=db, base_url="https://testserver"), base_url="https://testserver"
    ) as client:
        login(client, admin)
        page = html.unescape(client.get(f"/devices/{Device.get().id}").text)
        shown = re.findall(r'<dt>OID</dt><dd class="mono">(.*?)</dd>', page)
        oids = [re.sub(r"<[^>]+>", "", oid) for oid in shown]  # without cell's wrapping span
        assert read.sources["counters.total"] in oids
        assert SUPPLY_LEVEL.format(1) in oids and SUPPLY_LEVEL.format(5) in oids
        # one per counter, per supply, and the status's (this printer has no status table)
        assert len(oids) == len(read.counters) + len(read.supplies) + 1
        assert "status" not in read.sources and oids.count("not reported") == 1
        assert "hp <small>(bundle shipped)</small>" in page
        clients = client.get("/clients").text
        assert re.search(r'<td data-label="PMD bundle" class="mono">shipped</td>', clients), clients
