"""On-disk cache of per-text token ids and normalised embeddings, safe for many processes.

Layout: ``<root>/<namespace-hash>/<2 hex>/<entry-hash>.emb``, one file per text.  The
namespace is everything that changes the stored numbers (stable encoder id with weights
checksum, layer, dtype, tokenizer checksum, max length); the entry hash adds the text.

Each entry is written to a unique temporary file in the same folder and moved into place
with ``os.replace``, so readers see either no file or a complete one and concurrent
writers of the same entry simply race to store identical content.  A file that fails to
parse (e.g. truncated by a crash) is treated as a miss and removed.  No fsync: a cache
entry lost on power failure is recomputed.  ``max_bytes`` bounds the total size: after a
write the oldest entries (by modification time; hits refresh it) are evicted.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import struct
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

MAGIC = b"BSE1"
_HEADER = struct.Struct("<4sIIB")  # magic, n_tokens, dim, dtype code
_DTYPES = {0: np.dtype("<f4"), 1: np.dtype("<f2")}
_CODES = {np.dtype("<f4"): 0, np.dtype("<f2"): 1}
SUFFIX = ".emb"

Entry = tuple[np.ndarray, np.ndarray]  # (int32 token ids [n], float embeddings [n, dim])


def encode_entry(ids: np.ndarray, emb: np.ndarray) -> bytes:
    """Serialise one entry (header, int32 ids, float32/float16 embeddings)."""
    ids = np.ascontiguousarray(ids, dtype="<i4")
    emb = np.ascontiguousarray(emb)
    if emb.dtype not in _CODES or emb.ndim != 2 or emb.shape[0] != ids.shape[0]:
        raise ValueError("embeddings must be float32/float16 [n_tokens, dim] matching ids")
    return (_HEADER.pack(MAGIC, ids.shape[0], emb.shape[1], _CODES[emb.dtype])
            + ids.tobytes() + emb.tobytes())


def decode_entry(data: bytes) -> Entry | None:
    """Parse an entry; ``None`` when the bytes are not a complete, valid entry."""
    if len(data) < _HEADER.size:
        return None
    magic, n, dim, code = _HEADER.unpack_from(data)
    if magic != MAGIC or code not in _DTYPES:
        return None
    dt = _DTYPES[code]
    off = _HEADER.size
    if len(data) != off + 4 * n + dt.itemsize * n * dim:
        return None
    ids = np.frombuffer(data, dtype="<i4", count=n, offset=off)
    emb = np.frombuffer(data, dtype=dt, count=n * dim, offset=off + 4 * n).reshape(n, dim)
    return ids, emb


class EmbeddingCache:
    """Files-per-entry embedding cache under ``root`` for one ``namespace``."""

    def __init__(self, root: str | Path, namespace: str, max_bytes: int | None = None) -> None:
        self.root = Path(root)
        self.namespace = namespace
        self.ns_hash = hashlib.sha256(namespace.encode("utf-8")).hexdigest()[:24]
        self.dir = self.root / self.ns_hash
        self.max_bytes = max_bytes
        self.hits = 0
        self.misses = 0

    def _path(self, text: str) -> Path:
        h = hashlib.sha256(self.ns_hash.encode() + b"\0" + text.encode("utf-8")).hexdigest()
        return self.dir / h[:2] / (h + SUFFIX)

    def get(self, text: str) -> Entry | None:
        """The entry for ``text`` or ``None``."""
        path = self._path(text)
        try:
            data = path.read_bytes()
        except OSError:
            self.misses += 1
            return None
        entry = decode_entry(data)
        if entry is None:  # corrupt: drop it, recompute
            with contextlib.suppress(OSError):
                path.unlink()
            self.misses += 1
            return None
        if self.max_bytes is not None:  # keep LRU order for eviction
            with contextlib.suppress(OSError):
                os.utime(path)
        self.hits += 1
        return entry

    def get_many(self, texts: Iterable[str]) -> dict[str, Entry]:
        """Entries of the texts that are cached."""
        out = {}
        for t in texts:
            e = self.get(t)
            if e is not None:
                out[t] = e
        return out

    def put(self, text: str, ids: np.ndarray, emb: np.ndarray) -> None:
        """Store one entry atomically (temp file + ``os.replace``)."""
        path = self._path(text)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(encode_entry(ids, emb))
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def put_many(self, items: Iterable[tuple[str, np.ndarray, np.ndarray]]) -> None:
        """Store several entries, then enforce ``max_bytes``."""
        for text, ids, emb in items:
            self.put(text, ids, emb)
        if self.max_bytes is not None:
            self.evict(self.max_bytes)

    def _files(self) -> list[tuple[float, int, str]]:
        out = []
        if not self.root.is_dir():
            return out
        for dirpath, _dirs, files in os.walk(self.root):
            for name in files:
                if not name.endswith(SUFFIX) or name.startswith("."):
                    continue
                p = os.path.join(dirpath, name)
                try:
                    st = os.stat(p)
                except OSError:
                    continue
                out.append((st.st_mtime, st.st_size, p))
        return out

    def size_bytes(self) -> int:
        """Total size of all entries under ``root`` (every namespace)."""
        return sum(size for _m, size, _p in self._files())

    def evict(self, max_bytes: int) -> int:
        """Delete the oldest entries (all namespaces) until the total is <= ``max_bytes``."""
        files = sorted(self._files())
        total = sum(size for _m, size, _p in files)
        removed = 0
        for _mtime, size, p in files:
            if total <= max_bytes:
                break
            try:
                os.unlink(p)
                removed += 1
            except OSError:
                pass
            total -= size
        return removed

    def clear(self) -> None:
        """Remove every cached entry (all namespaces) under ``root``."""
        if self.root.is_dir():
            for child in self.root.iterdir():
                if child.is_dir() and len(child.name) == 24:
                    shutil.rmtree(child, ignore_errors=True)
