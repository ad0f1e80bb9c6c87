"""A validly signed compression bomb (1 GiB of zeros) is refused at its limit without being inflated."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

# Runs in a child process so that its peak RSS (ru_maxrss) measures only this trial.
CHILD = textwrap.dedent(
    """
    import json, os, resource, zlib
    from fsm_protocol import crypto
    from fsm_protocol.envelope import _seal_payload, open_envelope
    from fsm_protocol.errors import TooLarge
    from fsm_protocol.keys import EncryptionKey, SigningKey

    signing = SigningKey(crypto.ed25519_generate())
    server = EncryptionKey(crypto.x25519_generate())
    deflate, zeros = zlib.compressobj(9), bytes(1 << 20)
    bomb = b"".join([deflate.compress(zeros) for _ in range(1024)]) + deflate.flush()  # 1 GiB inflated
    del zeros

    def trial(declared):
        data = _seal_payload(bomb, report_len=declared, client_id="acme-hq", seq=1, kind="periodic",
                             signing_key=signing, server_key=server.public, rng=os.urandom)
        try:
            open_envelope(data, verify_key=signing.public, encryption_key=server)
        except TooLarge as exc:
            return exc.reason, exc.message
        return "opened", ""

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    results = {"lying": trial(1000), "honest": trial(1 << 30)}
    small = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    results["at_default_limit"] = trial(64 << 20)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"bomb_bytes": len(bomb), "rss_before_kb": before, "rss_small_kb": small,
                      "rss_peak_kb": after, **results}))
    """
)


def test_a_signed_gigabyte_bomb_is_refused_while_memory_stays_small() -> None:
    run = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=120, check=True
    )
    result = json.loads(run.stdout)
    assert result["bomb_bytes"] < 2 << 20  # ~1 MiB on the wire
    # Declares 1000 bytes: inflation stops at 1001.
    assert result["lying"] == [
        "too_large",
        "payload inflates to more than the 1000 bytes its header declares; refused at the limit",
    ]
    # Declares its real size: refused before decrypting, from the signed header alone.
    assert result["honest"][0] == "too_large" and "declares 1073741824 bytes" in result["honest"][1]
    # Declares exactly the default report limit: inflated up to the limit (64 MiB), no further.
    assert result["at_default_limit"][0] == "too_large"
    grown_mib = (result["rss_small_kb"] - result["rss_before_kb"]) / 1024
    assert grown_mib < 8, (
        f"peak RSS grew by {grown_mib:.0f} MiB refusing a 1 GiB bomb that declares 1000 bytes"
    )
    grown_mib = (result["rss_peak_kb"] - result["rss_before_kb"]) / 1024
    assert grown_mib < 64 + 16, (
        f"peak RSS grew by {grown_mib:.0f} MiB inflating a bomb up to the 64 MiB limit"
    )
