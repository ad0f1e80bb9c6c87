"""Signed PMD bundles: what is installed, what is refused (leaving the active set as it was),
local overrides, rollback, kill -9 during the swap, the publisher tool, status and the CLI."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
import warnings
import zipfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import hypothesis
import hypothesis.strategies
import msgspec
import pytest
from click.testing import CliRunner
from pmd_bundle_helpers import (
    Publisher,
    entries_of,
    make_config,
    marked,
    shipped_files,
    snapshot,
    symlink_entry,
    with_name,
    zip_of,
)

from fsm_client.cli import main
from fsm_client.errors import (
    PmdBundleError,
    PmdBundleNotNewer,
    PmdBundleSignatureError,
    PmdBundleUnknownKey,
    PmdError,
    PmdUpdateError,
)
from fsm_client.pmd.authoring.loader import load_pool
from fsm_client.pmd.distribution.active import ActivePool, load_active_pool, status
from fsm_client.pmd.distribution.bundle import LIMITS, Limits, build_from_dir, open_bundle
from fsm_client.pmd.distribution.dirs import active_pmd_dirs, shipped_dir
from fsm_client.pmd.distribution.sets import CURRENT, INSTALL_INFO, SETS_DIR, PmdSets
from fsm_client.pmd.distribution.update import install_from
from fsm_client.scan import default_pool
from fsm_client.store import Store
from fsm_protocol.schema import Device

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[2]
HP_OID = "1.3.6.1.4.1.11.2.3.9.1"
HP_DESCR = "HP ETHERNET MULTI-ENVIRONMENT,ROM none,JETDIRECT,JD153"


@pytest.fixture
def publisher(tmp_path: Path) -> Publisher:
    return Publisher(tmp_path / "publisher")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def config(publisher: Publisher):  # type: ignore[no-untyped-def]
    return make_config([publisher.pub_text])


@pytest.fixture
def installed_v1(tmp_path: Path, publisher: Publisher, config, data_dir: Path) -> Path:  # type: ignore[no-untyped-def]
    """Version 1 of a bundle installed (every file marked ``# set 1``); gives the data dir."""
    path = tmp_path / "v1.zip"
    path.write_bytes(publisher.bundle(1, marked(1)))
    install_from(str(path), config=config, data_dir=data_dir, now=NOW)
    return data_dir


def write_pool(directory: Path, files: dict[str, bytes]) -> Path:
    directory.mkdir(parents=True)
    for name, content in files.items():
        (directory / name).write_bytes(content)
    return directory


def write(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def active_marker(data_dir: Path) -> set[str]:
    """The ``# set N`` markers of the files the active pool reads (one value when unmixed)."""
    pool = load_active_pool(None, data_dir)
    return {
        p.read_text().rsplit("# set ", 1)[-1].strip()
        for p in pool.files.values()
        if "# set " in p.read_text()
    }


# --- a valid update ------------------------------------------------------------------------------


def test_valid_bundle_is_installed_and_read_by_scans(
    tmp_path: Path, publisher: Publisher, config, data_dir: Path
) -> None:
    src = write(tmp_path, "b.zip", publisher.bundle(7, with_name(shipped_files(), "hp", "HP from bundle 7")))
    result = install_from(src, config=config, data_dir=data_dir, now=NOW)

    assert result.outcome == "installed" and result.version == 7
    assert "installed PMD bundle version 7" in result.message
    current = PmdSets.in_data_dir(data_dir).current()
    assert current is not None and current.version == 7 and current.info.source == src
    assert current.info.signer == publisher.key.fingerprint and current.info.previous is None
    # the scan path (scan.default_pool) reads the bundle's file, not the shipped one
    assert default_pool(data_dir).get("hp").name == "HP from bundle 7"
    assert load_pool(active_pmd_dirs(config, data_dir)).get("hp").name == "HP from bundle 7"


def test_bundle_files_match_the_signed_manifest_on_disk(installed_v1: Path) -> None:
    current = PmdSets.in_data_dir(installed_v1).current()
    assert current is not None
    manifest = json.loads((current.path / "manifest.json").read_text())
    assert manifest["format"] == 1 and manifest["version"] == 1
    for f in manifest["files"]:
        content = (current.path / f["path"].removeprefix("pmd/")).read_bytes()
        assert hashlib.sha256(content).hexdigest() == f["sha256"] and len(content) == f["size"]


# --- refusals: each leaves the active set unchanged ----------------------------------------------


def refused(data_dir: Path, src: str, config, error: type[Exception], match: str) -> Exception:  # type: ignore[no-untyped-def]
    before = snapshot(data_dir)
    with pytest.raises(error, match=match) as info:
        install_from(src, config=config, data_dir=data_dir, now=NOW)
    assert snapshot(data_dir) == before, "a refused bundle changed the active set"
    assert active_marker(data_dir) == {"1"}
    return info.value


def test_tampered_file_is_refused(tmp_path: Path, publisher: Publisher, config, installed_v1: Path) -> None:
    entries = [
        (n, d + b"\n# one more line\n" if n == "pmd/hp.toml" else d)
        for n, d in entries_of(publisher.bundle(2, marked(2)))
    ]
    exc = refused(
        installed_v1,
        write(tmp_path, "t.zip", zip_of(entries)),
        config,
        PmdBundleError,
        r"pmd/hp.toml does not match its sha256 in the signed manifest",
    )
    assert "unchanged" in exc.hint  # type: ignore[attr-defined]


def test_altered_manifest_fails_the_signature(
    tmp_path: Path, publisher: Publisher, config, installed_v1: Path
) -> None:
    entries = [
        (n, d.replace(b'"version": 2', b'"version": 9') if n == "manifest.json" else d)
        for n, d in entries_of(publisher.bundle(2, marked(2)))
    ]
    refused(
        installed_v1,
        write(tmp_path, "m.zip", zip_of(entries)),
        config,
        PmdBundleSignatureError,
        r"signature does not verify with publisher key 'SHA256:",
    )


def test_bad_signature_is_refused(tmp_path: Path, publisher: Publisher, config, installed_v1: Path) -> None:
    def flip(sig: bytes) -> bytes:
        d = json.loads(sig)
        raw = bytearray(base64.b64decode(d["signature"]))
        raw[10] ^= 0x01
        d["signature"] = base64.b64encode(bytes(raw)).decode()
        return json.dumps(d).encode()

    entries = [
        (n, flip(d) if n == "manifest.sig" else d) for n, d in entries_of(publisher.bundle(2, marked(2)))
    ]
    refused(
        installed_v1,
        write(tmp_path, "s.zip", zip_of(entries)),
        config,
        PmdBundleSignatureError,
        r"signature does not verify",
    )


def test_bundle_of_an_unknown_publisher_key_is_refused(tmp_path: Path, config, installed_v1: Path) -> None:
    stranger = Publisher(tmp_path / "stranger")
    exc = refused(
        installed_v1,
        write(tmp_path, "u.zip", stranger.bundle(2, marked(2))),
        config,
        PmdBundleUnknownKey,
        f"signed by publisher key '{re.escape(stranger.key.fingerprint)}', which is not pinned",
    )
    assert "publisher_keys" in exc.hint  # type: ignore[attr-defined]


def test_nothing_is_trusted_without_a_pinned_key(
    tmp_path: Path, publisher: Publisher, installed_v1: Path
) -> None:
    refused(
        installed_v1,
        write(tmp_path, "n.zip", publisher.bundle(2, marked(2))),
        make_config([]),
        PmdBundleUnknownKey,
        "no publisher key is pinned",
    )


@pytest.mark.parametrize("version", [1, 0.5])
def test_older_or_same_version_is_refused(
    tmp_path: Path, publisher: Publisher, config, installed_v1: Path, version: float
) -> None:
    # 0.5 stands for "older": versions are integers, so reinstall 1 and try the older via v2 first
    if version == 0.5:
        install_from(
            write(tmp_path, "v3.zip", publisher.bundle(3, marked(1))),
            config=config,
            data_dir=installed_v1,
            now=NOW,
        )
        version = 2
    exc = refused(
        installed_v1,
        write(tmp_path, "old.zip", publisher.bundle(int(version), marked(9))),
        config,
        PmdBundleNotNewer,
        rf"bundle version {int(version)} is not newer than \d+",
    )
    assert "downgrade" in str(exc)


HOSTILE_NAMES = {
    "parent directory": "../evil.toml",
    "parent inside pmd": "pmd/../../evil.toml",
    "absolute path": "/etc/evil.toml",
    "windows separators": "pmd\\..\\evil.toml",
    "drive letter": "C:/evil.toml",
    "sub-directory": "pmd/sub/evil.toml",
    "not a toml file": "pmd/evil.sh",
    "outside pmd/": "evil.toml",
    "upper-case id": "pmd/Evil.toml",
    "trailing newline": "pmd/evil.toml\n",
}


@pytest.mark.parametrize("name", HOSTILE_NAMES.values(), ids=HOSTILE_NAMES.keys())
def test_hostile_entry_names_are_refused_and_nothing_is_written(
    tmp_path: Path, publisher: Publisher, config, installed_v1: Path, name: str
) -> None:
    entries = [*entries_of(publisher.bundle(2, marked(2))), (name, b"name = 'x'\n")]
    exc = refused(
        installed_v1,
        write(tmp_path, "h.zip", zip_of(entries)),
        config,
        PmdBundleError,
        r"bundle entry .* (absolute|traversal|is not manifest.json)",
    )
    assert repr(name) in str(exc)
    assert not list(tmp_path.rglob("evil*")) and not Path("/etc/evil.toml").exists()


def test_symlink_entry_is_refused(tmp_path: Path, publisher: Publisher, config, installed_v1: Path) -> None:
    entries = [*entries_of(publisher.bundle(2, marked(2))), symlink_entry("pmd/link.toml", "/etc/passwd")]
    refused(
        installed_v1,
        write(tmp_path, "l.zip", zip_of(entries)),
        config,
        PmdBundleError,
        "'pmd/link.toml' is a symbolic link",
    )


def test_directory_and_duplicate_entries_are_refused(
    tmp_path: Path, publisher: Publisher, config, installed_v1: Path
) -> None:
    base = entries_of(publisher.bundle(2, marked(2)))
    refused(
        installed_v1,
        write(tmp_path, "d.zip", zip_of([*base, ("pmd/", b"")])),
        config,
        PmdBundleError,
        "is a directory",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate we make on purpose
        dup = zip_of([*base, ("pmd/hp.toml", b"name = 'second hp'\n")])
    refused(
        installed_v1, write(tmp_path, "dup.zip", dup), config, PmdBundleError, "names 'pmd/hp.toml' twice"
    )


def test_zip_bomb_is_refused_from_the_directory_before_inflating(
    tmp_path: Path, publisher: Publisher, config, installed_v1: Path
) -> None:
    # 400 KB of zeros deflates to ~400 bytes: a ratio of ~1000:1
    bomb = [*entries_of(publisher.bundle(2, marked(2))), ("pmd/bomb.toml", b"\0" * 400_000)]
    refused(
        installed_v1,
        write(tmp_path, "bomb.zip", zip_of(bomb)),
        config,
        PmdBundleError,
        r"'pmd/bomb.toml' expands 400000 bytes from \d+ .*zip bomb",
    )


def test_declared_size_over_the_limit_is_refused_without_reading_the_data(
    tmp_path: Path, publisher: Publisher, config, installed_v1: Path
) -> None:
    data = publisher.bundle(2, marked(2))
    # Rewrite one entry's uncompressed size in the central directory to 4 GiB - 1. Were the
    # data inflated first, this would fail with a CRC or size error, not with the limit.
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        info = zf.getinfo("pmd/hp.toml")
    cd = data.find(b"PK\x01\x02")  # central directory headers; find hp.toml's
    while cd != -1:
        name_len = int.from_bytes(data[cd + 28 : cd + 30], "little")
        if data[cd + 46 : cd + 46 + name_len] == b"pmd/hp.toml":
            break
        cd = data.find(b"PK\x01\x02", cd + 4)
    assert cd != -1 and info.file_size < LIMITS.max_file_bytes
    forged = data[: cd + 24] + (0xFFFFFFFE).to_bytes(4, "little") + data[cd + 28 :]
    refused(
        installed_v1,
        write(tmp_path, "big.zip", forged),
        config,
        PmdBundleError,
        r"'pmd/hp.toml' is 4294967294 bytes uncompressed, over the limit",
    )


def test_entry_count_and_total_limits(publisher: Publisher) -> None:
    data = publisher.bundle(2, marked(2))
    with pytest.raises(PmdBundleError, match=r"has \d+ entries, over the limit of 5"):
        open_bundle(data, publisher_keys=[publisher.key.public], limits=Limits(max_entries=5))
    with pytest.raises(PmdBundleError, match="add up to over 1000 bytes"):
        open_bundle(data, publisher_keys=[publisher.key.public], limits=Limits(max_total_bytes=1000))
    with pytest.raises(PmdBundleError, match="over the limit of 100"):
        open_bundle(data, publisher_keys=[publisher.key.public], limits=Limits(max_bundle_bytes=100))


def test_truncated_bundle_file_is_refused(
    tmp_path: Path, publisher: Publisher, config, installed_v1: Path
) -> None:
    data = publisher.bundle(2, marked(2))
    for cut in (len(data) // 2, len(data) - 10, 100):
        exc = refused(
            installed_v1,
            write(tmp_path, f"cut{cut}.zip", data[:cut]),
            config,
            PmdBundleError,
            "not a complete, readable ZIP archive",
        )
        assert "truncated" in exc.hint  # type: ignore[attr-defined]


def test_bundle_with_a_pmd_that_does_not_load_is_refused(
    tmp_path: Path, publisher: Publisher, config, installed_v1: Path
) -> None:
    files = marked(2)
    files["hp.toml"] += b"\n[identity]\nserial = [{ oidd = '1.3.6.1.2.1.43.5.1.1.17.1' }]\n"
    refused(
        installed_v1,
        write(tmp_path, "bad.zip", publisher.bundle(2, files)),
        config,
        PmdBundleError,
        r"bundle version 2 has a PMD that does not load: .*hp\.toml",
    )
    assert not [p for p in (installed_v1 / SETS_DIR).iterdir() if p.name.startswith(".staging")]


# --- local overrides -----------------------------------------------------------------------------


def test_local_override_wins_over_the_bundle_and_survives_updates(
    tmp_path: Path, publisher: Publisher, data_dir: Path
) -> None:
    local = tmp_path / "my-pmds"
    local.mkdir()
    hp = with_name({"hp.toml": shipped_files()["hp.toml"]}, "hp", "operator's HP")["hp.toml"]
    (local / "hp.toml").write_bytes(hp)
    config = make_config([publisher.pub_text])
    config = msgspec.structs.replace(config, pmd=msgspec.structs.replace(config.pmd, local_dir=local))
    for version in (1, 2):
        files = with_name(marked(version), "hp", f"bundle {version} HP")
        install_from(
            write(tmp_path, f"v{version}.zip", publisher.bundle(version, files)),
            config=config,
            data_dir=data_dir,
            now=NOW,
        )
        pool = load_active_pool(config, data_dir)
        assert pool.get("hp").name == "operator's HP"
        assert pool.files["hp"] == local / "hp.toml"
        assert pool.get("canon").name == load_pool(active_pmd_dirs(None, data_dir)[:2]).get("canon").name
    assert (local / "hp.toml").read_bytes() == hp
    assert active_pmd_dirs(config, data_dir)[-1] == local


def test_a_bundle_that_breaks_a_local_override_is_refused(
    tmp_path: Path, publisher: Publisher, data_dir: Path
) -> None:
    local = data_dir / "pmd"  # the default local_dir
    local.mkdir(parents=True)
    (local / "ricoh.toml").write_text('extends = "kyocera"\n[match]\nsys_descr = ["^MyRicoh"]\n')
    config = make_config([publisher.pub_text])
    assert load_active_pool(config, data_dir).get("ricoh").chain == ["ricoh", "kyocera", "printer-mib"]
    files = shipped_files()  # the new kyocera.toml extends ricoh: fine alone, a cycle with the override
    files["kyocera.toml"] = b'extends = "ricoh"\n' + files["kyocera.toml"]
    load_pool([shipped_dir(), write_pool(tmp_path / "alone", files)])
    with pytest.raises(PmdBundleError, match=r"does not load: .*inheritance cycle"):
        install_from(
            write(tmp_path, "b.zip", publisher.bundle(5, files)), config=config, data_dir=data_dir, now=NOW
        )
    assert PmdSets.in_data_dir(data_dir).current() is None


# --- rollback ------------------------------------------------------------------------------------


def test_rollback_restores_the_previous_set(
    tmp_path: Path, publisher: Publisher, config, installed_v1: Path
) -> None:
    sets = PmdSets.in_data_dir(installed_v1)
    install_from(
        write(tmp_path, "v2.zip", publisher.bundle(2, marked(2))),
        config=config,
        data_dir=installed_v1,
        now=NOW,
    )
    assert active_marker(installed_v1) == {"2"}

    old, new = sets.rollback(now=NOW + timedelta(minutes=5))
    assert (old.version, new.version if new else None) == (2, 1)
    assert active_marker(installed_v1) == {"1"}
    # the version rolled away from is not reinstalled (e.g. by the daily check) ...
    with pytest.raises(PmdBundleNotNewer, match="not newer than 2"):
        install_from(
            write(tmp_path, "v2b.zip", publisher.bundle(2, marked(2))),
            config=config,
            data_dir=installed_v1,
            now=NOW,
        )
    assert active_marker(installed_v1) == {"1"}
    # ... a newer one is, and it records the restored set as its previous
    install_from(
        write(tmp_path, "v3.zip", publisher.bundle(3, marked(3))),
        config=config,
        data_dir=installed_v1,
        now=NOW,
    )
    current = sets.current()
    assert current is not None and current.version == 3 and current.info.previous is not None
    assert sets.get(current.info.previous).version == 1


def test_rollback_of_the_first_bundle_returns_to_the_shipped_set(installed_v1: Path) -> None:
    sets = PmdSets.in_data_dir(installed_v1)
    old, new = sets.rollback(now=NOW)
    assert old.version == 1 and new is None
    assert active_pmd_dirs(None, installed_v1) == active_pmd_dirs(None, None)
    assert active_marker(installed_v1) == set()
    with pytest.raises(PmdError, match="nothing to roll back"):
        sets.rollback(now=NOW)


def test_a_deleted_active_set_is_reported_and_repaired_by_the_next_install(
    tmp_path: Path, publisher: Publisher, config, installed_v1: Path
) -> None:
    current = PmdSets.in_data_dir(installed_v1).current()
    assert current is not None
    shutil.rmtree(current.path)
    with pytest.raises(PmdError, match="is missing") as info:
        load_active_pool(config, installed_v1)
    assert "pmd update" in info.value.hint
    with pytest.raises(PmdBundleNotNewer):  # the downgrade guard still holds
        install_from(
            write(tmp_path, "v1.zip", publisher.bundle(1, marked(1))),
            config=config,
            data_dir=installed_v1,
            now=NOW,
        )
    install_from(
        write(tmp_path, "v2.zip", publisher.bundle(2, marked(2))),
        config=config,
        data_dir=installed_v1,
        now=NOW,
    )
    assert active_marker(installed_v1) == {"2"}


def test_old_sets_are_pruned_keeping_the_rollback_chain(
    tmp_path: Path, publisher: Publisher, config, installed_v1: Path
) -> None:
    for v in range(2, 7):
        install_from(
            write(tmp_path, f"v{v}.zip", publisher.bundle(v, marked(v))),
            config=config,
            data_dir=installed_v1,
            now=NOW,
        )
    sets = PmdSets.in_data_dir(installed_v1)
    assert [s.version for s in sets.installed()] == [6, 5, 4]
    sets.rollback(now=NOW)
    sets.rollback(now=NOW)
    assert active_marker(installed_v1) == {"4"}
    with pytest.raises(PmdError, match=r"is no longer kept") as info:
        sets.rollback(now=NOW)
    assert "newer bundle" in info.value.hint and active_marker(installed_v1) == {"4"}


# --- kill -9 during the swap ---------------------------------------------------------------------

CHILD = r"""
import sys
from datetime import datetime, UTC
from pathlib import Path
from fsm_protocol.keys import load_signing_key, load_verify_key
from fsm_client.pmd.distribution.bundle import build_bundle, open_bundle
from fsm_client.pmd.distribution.update import install_bundle

data_dir, key, pub, shipped = Path(sys.argv[1]), sys.argv[2], sys.argv[3], Path(sys.argv[4])
version = int(sys.argv[5])
sk, vk = load_signing_key(Path(key)), [load_verify_key(Path(pub))]
files = {p.name: p.read_bytes() for p in shipped.glob("*.toml")}
print("ready", flush=True)
while True:  # install ever newer versions until killed
    data = build_bundle({n: c + f"\n# set {version}\n".encode() for n, c in files.items()}, version=version,
                        signing_key=sk, created_at=datetime.now(UTC))
    install_bundle(open_bundle(data, publisher_keys=vk), source=f"trial {version}", config=None,
                   data_dir=data_dir, now=datetime.now(UTC))
    print(version, flush=True)
    version += 1
"""


def leftovers(data_dir: Path) -> list[Path]:
    """What an interrupted install left: a staging directory or a temporary link."""
    return [p for p in (data_dir / SETS_DIR).iterdir() if p.name.startswith((".staging", ".current-"))]


def assert_complete_single_set(data_dir: Path) -> int:
    """The active set is one whole set: every file from it, all of one version, matching its
    signed manifest byte for byte; the real loader loads it. Returns its version."""
    sets = PmdSets.in_data_dir(data_dir)
    current = sets.current()
    assert current is not None
    manifest = json.loads((current.path / "manifest.json").read_text())
    on_disk = sorted(p.name for p in current.path.glob("*.toml"))
    assert on_disk == sorted(f["path"].removeprefix("pmd/") for f in manifest["files"])
    for f in manifest["files"]:
        content = (current.path / f["path"].removeprefix("pmd/")).read_bytes()
        assert hashlib.sha256(content).hexdigest() == f["sha256"]
    assert active_marker(data_dir) == {str(current.version)} == {str(manifest["version"])}
    return current.version


def test_kill_9_at_random_moments_never_leaves_a_mixed_set(
    tmp_path: Path, publisher: Publisher, installed_v1: Path
) -> None:
    rng = random.Random(20261123)
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    def installer(first_version: int) -> subprocess.Popen[str]:
        """A real process installing ever newer bundles, once it printed "ready"."""
        child = subprocess.Popen(
            [
                sys.executable,
                "-c",
                CHILD,
                str(installed_v1),
                str(publisher.key_file),
                str(publisher.pub_file),
                str(REPO / "pmd"),
                str(first_version),
            ],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        return child

    def kill(child: subprocess.Popen[str]) -> list[int]:
        os.kill(child.pid, signal.SIGKILL)
        assert child.stdout is not None
        done = [int(x) for x in child.stdout.read().split()]
        child.wait(timeout=10)
        child.stdout.close()
        assert child.returncode == -signal.SIGKILL
        return done

    # Calibrate: how long one install takes on this machine now, so the kills spread over
    # whole install cycles (build, verify, write, fsync, load, swap) however loaded it is.
    child = installer(2)
    assert child.stdout is not None
    started = time.monotonic()
    child.stdout.readline()
    t0 = time.monotonic()
    first = t0 - started  # the first install of a process is slower (lazy imports, cold caches)
    child.stdout.readline()
    child.stdout.readline()
    period = (time.monotonic() - t0) / 2
    version = max(4, *kill(child), assert_complete_single_set(installed_v1)) + 1

    trials, interrupted_installs, versions_seen = 20, 0, set()
    for _ in range(trials):
        child = installer(version)
        time.sleep(rng.uniform(0.0, first + 2 * period))
        finished = kill(child)
        interrupted_installs += bool(leftovers(installed_v1))
        active = assert_complete_single_set(installed_v1)
        versions_seen.add(active)
        version = max(version, active, *finished) + 2  # the next run starts above anything seen
    print(
        f"kill -9 trials: {trials}, one install takes {first * 1000:.0f} ms first, {period * 1000:.0f} ms "
        f"then; kills inside an install: {interrupted_installs}, distinct active versions: "
        f"{len(versions_seen)}"
    )
    assert len(versions_seen) >= 3, "the kills all landed at the same point"
    assert interrupted_installs >= 1, "no kill landed inside an install (raise the trial count)"
    # and an install after the last kill cleans the leftovers and works
    config = make_config([publisher.pub_text])
    install_from(
        write(tmp_path, "after.zip", publisher.bundle(version, marked(version))),
        config=config,
        data_dir=installed_v1,
        now=NOW,
    )
    assert assert_complete_single_set(installed_v1) == version
    assert not leftovers(installed_v1)


# --- the daemon picks the new set up without a restart --------------------------------------------


def test_active_pool_reloads_only_when_the_active_set_changes(
    tmp_path: Path, publisher: Publisher, config, installed_v1: Path
) -> None:
    pool = ActivePool(config, installed_v1)
    first = pool.get()
    assert pool.get() is first and pool.reloads == 1  # nothing changed: no reload
    install_from(
        write(tmp_path, "v2.zip", publisher.bundle(2, with_name(marked(2), "hp", "HP v2"))),
        config=config,
        data_dir=installed_v1,
        now=NOW,
    )
    second = pool.get()
    assert second is not first and second.get("hp").name == "HP v2" and pool.reloads == 2
    PmdSets.in_data_dir(installed_v1).rollback(now=NOW)
    assert pool.get().get("hp").name != "HP v2" and pool.reloads == 3
    # a local override saved half-edited keeps the last good pool and says why
    (installed_v1 / "pmd").mkdir()
    (installed_v1 / "pmd" / "hp.toml").write_text("name = [broken\n")
    kept = pool.get()
    assert kept.get("hp").name != "HP v2" and pool.last_error is not None
    assert "hp.toml" in pool.last_error.message


async def test_the_daemon_reads_with_a_new_set_at_its_next_scan_without_restart(
    tmp_path: Path, publisher: Publisher, data_dir: Path
) -> None:
    from client_fixtures import Keys
    from client_fixtures import make_config as client_config

    from fsm_client.daemon import Daemon
    from fsm_client.snmp.source import RecordingSource

    keys = Keys(tmp_path / "keys")
    config = client_config(
        keys,
        pmd={"update": {"publisher_keys": [publisher.pub_text]}},
        transport={"kind": "filedrop"},
        filedrop={"directory": str(tmp_path / "drop")},
    )
    walk = REPO / "demo" / "snmp-walks" / "hp-color-laserjet-m452nw" / "device.snmprec"

    @contextlib.asynccontextmanager
    async def open_source(host: str, port: int, cred: object) -> AsyncIterator[RecordingSource]:
        yield RecordingSource.from_file(walk)  # the HP's real recording behind the SnmpSource protocol

    def with_marker(version: int) -> dict[str, bytes]:
        files = marked(version)  # a constant vendor counter shows which set read the device
        files["hp.toml"] = files["hp.toml"].replace(
            b"\n[counters]\n", f"\n[counters]\nx_bundle_set = [{{ value = {version} }}]\n".encode(), 1
        )
        return files

    async def read() -> Device:
        await daemon.full_read(["10.0.0.5"])
        return daemon.store.readings()[-1].device

    daemon = Daemon(config, data_dir, open_source=open_source)
    try:
        first = await read()
        assert first.pmd == "hp" and "x_bundle_set" not in first.counters
        install_from(
            write(tmp_path, "v2.zip", publisher.bundle(2, with_marker(2))),
            config=config,
            data_dir=data_dir,
            now=NOW,
        )
        assert (await read()).counters["x_bundle_set"] == 2
        install_from(
            write(tmp_path, "v3.zip", publisher.bundle(3, with_marker(3))),
            config=config,
            data_dir=data_dir,
            now=NOW,
        )
        assert (await read()).counters["x_bundle_set"] == 3
        PmdSets.in_data_dir(data_dir).rollback(now=NOW)
        assert (await read()).counters["x_bundle_set"] == 2
    finally:
        daemon.store.close()


# --- status --------------------------------------------------------------------------------------


def test_status_without_a_store_says_so(installed_v1: Path, config) -> None:  # type: ignore[no-untyped-def]
    st = status(config, installed_v1)
    assert st["active"]["version"] == 1 and st["devices_changed"] == "no store"
    assert st["active"]["source"].endswith("v1.zip") and st["active"]["installed_at"]


def test_status_names_devices_whose_pmd_changed(
    tmp_path: Path, publisher: Publisher, config, installed_v1: Path
) -> None:
    with Store.in_data_dir(installed_v1) as store:
        for ip, oid, descr, model in (
            ("10.0.0.5", HP_OID, HP_DESCR, "LaserJet"),
            ("10.0.0.6", "1.3.6.1.4.1.1347.41", "KYOCERA Document Solutions", "ECOSYS"),
        ):
            store.add_reading(
                Device(ip=ip, observed_at=NOW, sys_object_id=oid, sys_descr=descr, model=model), kind="scan"
            )
    install_from(
        write(tmp_path, "v2.zip", publisher.bundle(2, with_name(marked(1), "hp", "HP v2"))),
        config=config,
        data_dir=installed_v1,
        now=NOW,
    )
    st = status(config, installed_v1)
    assert st["devices_changed"] == [
        {"ip": "10.0.0.5", "model": "LaserJet", "before": "hp", "after": "hp", "why": "its PMD changed"}
    ]
    assert st["previous"]["version"] == 1 and st["last_change"]["action"] == "install"


# --- the publisher tool and the CLI --------------------------------------------------------------


def test_publisher_refuses_to_sign_a_pool_with_a_broken_pmd(tmp_path: Path, publisher: Publisher) -> None:
    src = write_pool(tmp_path / "pool", shipped_files())
    (src / "zebra.toml").write_text("[counters]\ntotl = [{ oid = '1.3.6.1.2.1.43.10.2.1.4.1.1' }]\n")
    out = tmp_path / "out.zip"
    result = CliRunner().invoke(
        main, ["pmd", "bundle", "--key", str(publisher.key_file), "--out", str(out), "--source", str(src)]
    )
    assert result.exit_code != 0 and "zebra.toml" in result.output
    assert not out.exists()
    with pytest.raises(PmdError, match=r"zebra\.toml"):
        build_from_dir(src, signing_key=publisher.key)


def test_publisher_key_must_be_private(tmp_path: Path, publisher: Publisher) -> None:
    publisher.key_file.chmod(0o644)
    result = CliRunner().invoke(
        main, ["pmd", "bundle", "--key", str(publisher.key_file), "--out", str(tmp_path / "o.zip")]
    )
    assert result.exit_code == 1 and f"chmod 600 {publisher.key_file}" in result.output


def test_cli_keygen_bundle_update_status_rollback(tmp_path: Path) -> None:
    runner = CliRunner()
    keydir = tmp_path / "publisher-keys"
    r = runner.invoke(main, ["pmd", "keygen", "--dir", str(keydir)])
    assert r.exit_code == 0, r.output
    assert (keydir / "publisher.key").stat().st_mode & 0o777 == 0o600
    pub_line = (keydir / "publisher.pub").read_text().strip()
    assert f"clients pin: {pub_line}" in r.output and "fingerprint: SHA256:" in r.output
    assert runner.invoke(main, ["pmd", "keygen", "--dir", str(keydir)]).exit_code == 1  # no overwrite

    out = tmp_path / "bundle.zip"
    r = runner.invoke(
        main,
        [
            "pmd",
            "bundle",
            "--key",
            str(keydir / "publisher.key"),
            "--out",
            str(out),
            "--version",
            "42",
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["version"] == 42 and out.is_file()

    config_file = tmp_path / "client.toml"
    config_file.write_text(f'[pmd.update]\npublisher_keys = ["{pub_line}"]\n')
    base = ["--config", str(config_file), "--data-dir", str(tmp_path / "data"), "pmd"]
    r = runner.invoke(main, [*base, "update", str(out)])
    assert r.exit_code == 0 and "installed PMD bundle version 42" in r.output, r.output
    r = runner.invoke(main, [*base, "update", str(out)])
    assert r.exit_code == 1 and "error: bundle version 42 is not newer than 42" in r.output
    r = runner.invoke(main, [*base, "status", "--json"])
    st = json.loads(r.output)
    assert st["active"]["version"] == 42 and st["devices_changed"] == "no store"
    r = runner.invoke(main, [*base, "status"])
    assert "active:     bundle version 42" in r.output and "signed by SHA256:" in r.output
    r = runner.invoke(main, [*base, "rollback"])
    assert r.exit_code == 0 and "rolled back from PMD bundle version 42 to the PMD set shipped" in r.output
    assert not (tmp_path / "data" / SETS_DIR / CURRENT).exists()
    assert (tmp_path / "data" / SETS_DIR / "state.json").is_file()
    for sub in ("update", "rollback", "status", "bundle", "keygen"):
        assert runner.invoke(main, ["pmd", sub, "--help"]).output.count("Usage:") == 1


def test_scripts_pmd_bundle_publishes_a_bundle_clients_accept(
    tmp_path: Path, publisher: Publisher, config, data_dir: Path
) -> None:
    script = Path(__file__).resolve().parents[2] / "scripts" / "pmd-bundle"
    out = tmp_path / "pmd-bundle.zip"
    done = subprocess.run(
        [str(script), "--key", str(publisher.key_file), "--out", str(out), "--version", "12"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert f"PMD bundle version 12, {len(shipped_files())} PMDs" in done.stdout
    assert install_from(str(out), config=config, data_dir=data_dir, now=NOW).version == 12


def test_unreadable_bundle_path_is_an_update_error(tmp_path: Path, config, data_dir: Path) -> None:
    with pytest.raises(PmdUpdateError, match="does not exist"):
        install_from(str(tmp_path / "nope.zip"), config=config, data_dir=data_dir, now=NOW)
    assert INSTALL_INFO == "install.json"


# --- whatever the bytes, only our errors come out ------------------------------------------------


@pytest.fixture(scope="module")
def fuzz_publisher(tmp_path_factory: pytest.TempPathFactory) -> Publisher:
    return Publisher(tmp_path_factory.mktemp("fuzz-publisher"))


@hypothesis.settings(
    max_examples=300, deadline=None, suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture]
)
@hypothesis.given(data=hypothesis.strategies.data())
def test_damaged_bundles_raise_only_bundle_errors(
    fuzz_publisher: Publisher, data: hypothesis.strategies.DataObject
) -> None:
    """Flipped, dropped or inserted bytes anywhere (headers, directory, deflate streams, the
    manifest) give PmdBundleError and never a zipfile/zlib/msgspec exception."""
    good = fuzz_publisher.bundle(
        2, {"printer-mib.toml": shipped_files()["printer-mib.toml"], "hp.toml": shipped_files()["hp.toml"]}
    )
    st = hypothesis.strategies
    damaged = bytearray(good)
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(damaged) - 1))
        match data.draw(st.sampled_from(["flip", "drop", "insert", "cut"])):
            case "flip":
                damaged[at] ^= data.draw(st.integers(1, 255))
            case "drop":
                del damaged[at]
            case "insert":
                damaged[at:at] = data.draw(st.binary(min_size=1, max_size=8))
            case "cut":
                del damaged[at:]
        if not damaged:
            damaged = bytearray(b"PK")
    try:
        bundle = open_bundle(bytes(damaged), publisher_keys=[fuzz_publisher.key.public])
    except PmdBundleError:
        return
    # what survives must be exactly what was signed
    assert bundle.files == open_bundle(good, publisher_keys=[fuzz_publisher.key.public]).files
