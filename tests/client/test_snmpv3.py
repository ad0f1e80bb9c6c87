"""SNMPv3 against Net-SNMP snmpd started by the test: authPriv with SHA-2 and AES, the
key-extension variant Net-SNMP uses, wrong credentials, and v3 in a discovery sweep."""

from __future__ import annotations

import asyncio

import pytest

from fsm_client.config import Credential
from fsm_client.errors import SnmpAuthError, SnmpTimeout
from fsm_client.snmp.discovery import sweep
from fsm_client.snmp.session import PysnmpSource
from fsm_client.snmp.source import SnmpValue
from fsm_devtools.fixtures.snmp import SNMPD_USERS, community_credential, v3_credential
from fsm_devtools.peers.snmpd import Snmpd, V3User

SYS_LOCATION, SYS_NAME = "1.3.6.1.2.1.1.6.0", "1.3.6.1.2.1.1.5.0"
SYSTEM = "1.3.6.1.2.1.1"


@pytest.mark.parametrize("user", SNMPD_USERS, ids=lambda u: f"{u.auth_protocol}-{u.priv_protocol or 'none'}")
async def test_v3_reads_with_every_auth_and_privacy_protocol(snmpd: Snmpd, user: V3User) -> None:
    async with PysnmpSource(snmpd.host, v3_credential(user), port=snmpd.port, timeout=2, retries=1) as src:
        got = await src.get([SYS_LOCATION, SYS_NAME])
        rows = await src.walk(SYSTEM)
    assert got == {SYS_LOCATION: SnmpValue("octets", b"Lab"), SYS_NAME: SnmpValue("octets", b"fsm-snmpd")}
    assert (SYS_LOCATION, SnmpValue("octets", b"Lab")) in rows
    assert src.warnings == []


async def test_v3_authpriv_sha256_aes_reads_the_same_values_as_v2c(snmpd: Snmpd) -> None:
    cred = v3_credential(SNMPD_USERS[0])
    assert (cred.auth_protocol, cred.priv_protocol) == ("SHA-256", "AES")
    async with (
        PysnmpSource(snmpd.host, cred, port=snmpd.port) as v3,
        PysnmpSource(snmpd.host, community_credential("public"), port=snmpd.port) as v2,
    ):
        v3_rows = await v3.walk(SYSTEM)
        v2_rows = await v2.walk(SYSTEM)
    uptime = "1.3.6.1.2.1.1.3.0"  # ticks between the two walks
    assert [r for r in v3_rows if r[0] != uptime] == [r for r in v2_rows if r[0] != uptime]


async def test_wrong_auth_key_is_an_auth_error_naming_the_credential(snmpd: Snmpd) -> None:
    cred = v3_credential(SNMPD_USERS[0], name="office-v3", auth_key="not-the-key")
    with pytest.raises(SnmpAuthError) as info:
        await PysnmpSource(snmpd.host, cred, port=snmpd.port, timeout=1, retries=0).get([SYS_LOCATION])
    assert "office-v3" in info.value.message and "sha256aes" in info.value.message
    assert info.value.reason == "snmp_auth_failed"
    assert "auth" in info.value.hint


async def test_unknown_user_is_an_auth_error(snmpd: Snmpd) -> None:
    cred = v3_credential(SNMPD_USERS[0], user="nobody-here")
    with pytest.raises(SnmpAuthError, match="nobody-here"):
        await PysnmpSource(snmpd.host, cred, port=snmpd.port, timeout=1, retries=0).get([SYS_LOCATION])


async def test_wrong_privacy_key_gets_no_answer(snmpd: Snmpd) -> None:
    # snmpd cannot decrypt the scoped PDU and drops it silently (it counts usmStatsDecryptionErrors).
    cred = v3_credential(SNMPD_USERS[0], priv_key="wrong-privacy")
    with pytest.raises((SnmpTimeout, SnmpAuthError)):
        await PysnmpSource(snmpd.host, cred, port=snmpd.port, timeout=0.5, retries=0).get([SYS_LOCATION])


async def test_same_user_with_other_keys_on_two_agents_reads_both_at_once(snmpd: Snmpd) -> None:
    # one user name, two key sets (two sites): pysnmp holds one USM entry per user name
    # and engine, so each key set gets its own engine instead of overwriting the other.
    site_b = V3User(SNMPD_USERS[0].name, "SHA-256", "other-auth-key", "AES", "other-priv-key")
    with Snmpd(users=[site_b]) as other:
        cred_a = v3_credential(SNMPD_USERS[0], name="site-a")
        cred_b = v3_credential(site_b, name="site-b")

        async def read(host: str, port: int, cred: Credential) -> dict[str, SnmpValue]:
            async with PysnmpSource(host, cred, port=port, timeout=2, retries=0) as src:
                return await src.get([SYS_LOCATION])

        results = await asyncio.gather(
            *(read(a.host, a.port, c) for _ in range(10) for a, c in ((snmpd, cred_a), (other, cred_b)))
        )
    assert all(r == {SYS_LOCATION: SnmpValue("octets", b"Lab")} for r in results)


async def test_sweep_finds_a_v3_only_agent_with_the_v3_credential(snmpd: Snmpd) -> None:
    creds = [community_credential("not-this-one", name="v2c-guess"), v3_credential(SNMPD_USERS[0], name="v3")]
    found = await sweep(
        [f"{snmpd.host}-3"], credentials=creds, port=snmpd.port, timeout=0.5, retries=0, rate=0
    )
    assert [(f.ip, f.credential, f.version) for f in found] == [(snmpd.host, "v3", "3")]
    assert found[0].sys_object_id.startswith("1.3.6.1.4.1.8072.")  # Net-SNMP's enterprise
    assert found[0].sys_descr.startswith("Linux")
