"""On-disk cache of per-text token ids and normalised embeddings, safe for many processes.

Layout: ``<root>/<namespace-hash>/<pack-hash>.pack``.  The namespace is everything that
changes the stored numbers (stable encoder id with weights checksum, layer, dtype,
implementation, tokenizer checksum, max length); within it a text is keyed by the first 16
bytes of ``sha256(namespace-hash, text)``.

Each :meth:`EmbeddingCache.put_many` call writes ONE immutable *pack* holding all its
entries (a sweep cell writes one file, not one per text: creating hundreds of small files
cost ~0.3 s per cell on the project's machine).  A pack is written to a unique temporary
file in the same folder and moved into place with ``os.replace``, so readers see either no
pack or a complete one; the name is the hash of the pack's keys, so two processes storing
the same entries write the same file.  A pack whose size does not match its header (e.g.
damaged on disk) is ignored and removed.  No fsync: a lost pack is recomputed.

``max_bytes`` bounds the total size: after a write the oldest packs (by modification time;
a hit refreshes it) are deleted, across all namespaces under ``root``.

Pack format (little endian): header ``"BSP1", n, dim, dtype code``; ``n`` 16-byte keys;
``n`` uint32 token counts; then for every entry its int32 ids followed by its embeddings
(float32 or float16, ``[n_tokens, dim]``).
"""

from __future__ import annotations

import contextlib
import hashlib
import mmap
import os
import shutil
import struct
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

MAGIC = b"BSP1"
_HEADER = struct.Struct("<4sIIB3x")  # magic, n entries, dim, dtype code
_DTYPES = {0: np.dtype("<f4"), 1: np.dtype("<f2")}
_CODES = {np.dtype("<f4"): 0, np.dtype("<f2"): 1}
SUFFIX = ".pack"
KEY_BYTES = 16

Entry = tuple[np.ndarray, np.ndarray]  # (int32 token ids [n], float embeddings [n, dim])


def encode_pack(entries: list[tuple[bytes, np.ndarray, np.ndarray]]) -> bytes:
    """Serialise ``(key, ids, embeddings)`` entries that share one dim and dtype."""
    if not entries:
        raise ValueError("a pack needs at least one entry")
    embs = [np.ascontiguousarray(e) for _k, _i, e in entries]
    dtype, dim = embs[0].dtype, embs[0].shape[1] if embs[0].ndim == 2 else -1
    counts = []
    for (key, ids, _e), emb in zip(entries, embs, strict=True):
        if (len(key) != KEY_BYTES or emb.dtype != dtype or dtype not in _CODES
                or emb.ndim != 2 or emb.shape != (len(ids), dim)):
            raise ValueError("entries need 16-byte keys and float32/float16 [n_tokens, dim] "
                             "embeddings of one dtype and dim matching their ids")
        counts.append(len(ids))
    parts = [_HEADER.pack(MAGIC, len(entries), dim, _CODES[dtype]),
             b"".join(k for k, _i, _e in entries), np.asarray(counts, "<u4").tobytes()]
    for (_k, ids, _e), emb in zip(entries, embs, strict=True):
        parts.append(np.ascontiguousarray(ids, dtype="<i4").tobytes())
        parts.append(emb.tobytes())
    return b"".join(parts)


class _Pack:
    """A memory-mapped pack: key -> entry, or ``None`` when the file is not a valid pack."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.index: dict[bytes, tuple[int, int]] = {}  # key -> (offset, n_tokens)
        with open(path, "rb") as fh:
            self.buf = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        if len(self.buf) < _HEADER.size:
            raise ValueError("short pack")
        magic, n, dim, code = _HEADER.unpack_from(self.buf)
        if magic != MAGIC or code not in _DTYPES:
            raise ValueError("not a pack")
        self.dim, self.dtype = dim, _DTYPES[code]
        keys_at = _HEADER.size
        counts_at = keys_at + KEY_BYTES * n
        data_at = counts_at + 4 * n
        if len(self.buf) < data_at:
            raise ValueError("short pack")
        counts = np.frombuffer(self.buf, "<u4", count=n, offset=counts_at).astype(np.int64)
        sizes = counts * (4 + self.dtype.itemsize * dim)
        if data_at + int(sizes.sum()) != len(self.buf):
            raise ValueError("pack size does not match its header")
        offsets = data_at + np.concatenate([[0], np.cumsum(sizes)[:-1]])
        keys = self.buf[keys_at:counts_at]
        for j in range(n):
            self.index[keys[j * KEY_BYTES:(j + 1) * KEY_BYTES]] = (int(offsets[j]),
                                                                   int(counts[j]))

    def entry(self, key: bytes) -> Entry:
        off, n = self.index[key]
        ids = np.frombuffer(self.buf, "<i4", count=n, offset=off)
        emb = np.frombuffer(self.buf, self.dtype, count=n * self.dim, offset=off + 4 * n)
        return ids, emb.reshape(n, self.dim)


class EmbeddingCache:
    """Pack-file embedding cache under ``root`` for one ``namespace``."""

    def __init__(self, root: str | Path, namespace: str, max_bytes: int | None = None) -> None:
        self.root = Path(root)
        self.namespace = namespace
        self.ns_hash = hashlib.sha256(namespace.encode("utf-8")).hexdigest()[:24]
        self.dir = self.root / self.ns_hash
        self.max_bytes = max_bytes
        self.hits = 0
        self.misses = 0
        self._packs: dict[str, _Pack] = {}  # file name -> opened pack (immutable files)
        self._where: dict[bytes, _Pack] = {}  # key -> a pack holding it

    def key(self, text: str) -> bytes:
        """The 16-byte key of ``text`` in this namespace."""
        return hashlib.sha256(self.ns_hash.encode() + b"\0" + text.encode("utf-8")).digest()[
            :KEY_BYTES]

    def _refresh(self) -> None:
        """Open packs written since the last look (by this or any other process)."""
        try:
            names = [e.name for e in os.scandir(self.dir)
                     if e.name.endswith(SUFFIX) and not e.name.startswith(".")]
        except FileNotFoundError:
            return
        for name in names:
            if name in self._packs:
                continue
            path = os.path.join(self.dir, name)
            try:
                pack = self._packs[name] = _Pack(path)
            except FileNotFoundError:  # evicted meanwhile
                continue
            except (ValueError, OSError):  # damaged: drop it, its entries get recomputed
                with contextlib.suppress(OSError):
                    os.unlink(path)
                continue
            self._where.update(dict.fromkeys(pack.index, pack))

    def get_many(self, texts: Iterable[str]) -> dict[str, Entry]:
        """Entries of the texts that are cached."""
        texts = list(texts)
        self._refresh()
        out: dict[str, Entry] = {}
        used: set[str] = set()
        for text in texts:
            key = self.key(text)
            pack = self._where.get(key)
            if pack is not None:
                out[text] = pack.entry(key)
                used.add(pack.path)
        self.hits += len(out)
        self.misses += len(texts) - len(out)
        if self.max_bytes is not None:  # keep LRU order for eviction
            for path in used:
                with contextlib.suppress(OSError):
                    os.utime(path)
        return out

    def get(self, text: str) -> Entry | None:
        """The entry for ``text`` or ``None``."""
        return self.get_many([text]).get(text)

    def put_many(self, items: Iterable[tuple[str, np.ndarray, np.ndarray]]) -> None:
        """Store entries as one pack (atomically), then enforce ``max_bytes``."""
        entries = {self.key(t): (ids, emb) for t, ids, emb in items}
        if not entries:
            return
        data = encode_pack([(k, i, e) for k, (i, e) in sorted(entries.items())])
        name = hashlib.sha256(b"".join(sorted(entries)) + data[:_HEADER.size]).hexdigest()[
            :32] + SUFFIX
        self.dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, self.dir / name)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        if self.max_bytes is not None:
            self.evict(self.max_bytes)

    def put(self, text: str, ids: np.ndarray, emb: np.ndarray) -> None:
        """Store one entry (a pack of one)."""
        self.put_many([(text, ids, emb)])

    def _files(self) -> list[tuple[float, int, str]]:
        out = []
        if not self.root.is_dir():
            return out
        for ns in self.root.iterdir():
            if not (ns.is_dir() and len(ns.name) == 24):
                continue
            for entry in os.scandir(ns):
                if entry.name.startswith(".") or not entry.is_file():
                    continue
                with contextlib.suppress(OSError):
                    st = entry.stat()
                    out.append((st.st_mtime, st.st_size, entry.path))
        return out

    def size_bytes(self) -> int:
        """Total size of all packs under ``root`` (every namespace)."""
        return sum(size for _m, size, _p in self._files())

    def evict(self, max_bytes: int) -> int:
        """Delete the oldest packs (all namespaces) until the total is <= ``max_bytes``."""
        files = sorted(self._files())
        total = sum(size for _m, size, _p in files)
        removed = 0
        for _mtime, size, p in files:
            if total <= max_bytes:
                break
            with contextlib.suppress(OSError):
                os.unlink(p)
                removed += 1
            total -= size
        return removed

    def clear(self) -> None:
        """Remove every cached entry (all namespaces) under ``root``."""
        self._packs.clear()
        self._where.clear()
        if self.root.is_dir():
            for child in self.root.iterdir():
                if child.is_dir() and len(child.name) == 24:
                    shutil.rmtree(child, ignore_errors=True)
