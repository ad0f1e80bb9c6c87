"""Sorting more items than a report should hold: sorted runs of ``RUN`` items in temporary files,
merged as they are read back.

A report ordered across the whole fleet (supplies by days remaining) cannot write its first line
before it has seen the last supply; this holds at most ``RUN`` items in memory however large the
fleet, the rest in private temporary files (removed when closed). Items are ``(key, payload)``
pairs of plain values (str, int, float, bool, lists of them) as msgpack; the order is that of a
stable sort on ``key`` (equal keys keep the order they came in), as ``sorted`` would give.
"""

from __future__ import annotations

import heapq
import operator
import struct
import tempfile
from collections.abc import Iterable, Iterator
from typing import IO, Any

import msgspec

#: Items held in memory at once: a run is sorted, written, and the next begun.
RUN = 5000

_LENGTH = struct.Struct("<I")
_KEY = operator.itemgetter(0)


def sorted_payloads(items: Iterable[tuple[Any, Any]], run: int | None = None) -> Iterator[Any]:
    """The payloads of ``items`` in the order of their keys.

    ``items`` is consumed before this returns (whatever it counts on the way is final then); the
    payloads come back from the returned iterator, which closes the temporary files at its end.
    A key or payload comes back as msgpack gives it (a tuple as a list) when there was more than
    one run. ``run``: items per run (``RUN`` unless given).
    """
    run = run or RUN
    runs: list[IO[bytes]] = []
    batch: list[tuple[Any, Any]] = []
    try:
        for item in items:
            batch.append(item)
            if len(batch) >= run:
                runs.append(_write_run(batch))
                batch = []
    except BaseException:
        for f in runs:
            f.close()
        raise
    if not runs:
        batch.sort(key=_KEY)
        return (payload for _, payload in batch)
    if batch:
        runs.append(_write_run(batch))
    return _merged(runs)


def _write_run(batch: list[tuple[Any, Any]]) -> IO[bytes]:
    batch.sort(key=_KEY)
    f = tempfile.TemporaryFile()  # noqa: SIM115 - closed by _merged or on error
    encode = msgspec.msgpack.Encoder().encode
    pack = _LENGTH.pack
    for item in batch:
        data = encode(item)
        f.write(pack(len(data)))
        f.write(data)
    f.seek(0)
    return f


def _read_run(f: IO[bytes]) -> Iterator[list[Any]]:
    decode = msgspec.msgpack.Decoder().decode
    unpack = _LENGTH.unpack
    size = _LENGTH.size
    while head := f.read(size):
        (n,) = unpack(head)
        item: list[Any] = decode(f.read(n))
        yield item


def _merged(runs: list[IO[bytes]]) -> Iterator[Any]:
    try:
        # heapq.merge is stable: of equal keys, the earlier run's item first
        for _, payload in heapq.merge(*(_read_run(f) for f in runs), key=_KEY):
            yield payload
    finally:
        for f in runs:
            f.close()


__all__ = ["RUN", "sorted_payloads"]
