"""On-disk cache of per-text token ids and normalised embeddings, safe for many processes.

Layout: ``<root>/<namespace-hash>/<pack-hash>.pack``.  The namespace is everything that
changes the stored numbers (stable encoder id with weights checksum, layer, dtype,
implementation, tokenizer checksum, max length); within it a text is keyed by the first 16
bytes of ``sha256(namespace-hash, text)``.

Each :meth:`EmbeddingCache.put_many` call writes ONE immutable *pack* holding all its
entries (a sweep cell writes one file, not one per text: creating hundreds of small files
cost ~0.3 s per cell on the project's machine).  A pack is written to a unique temporary
file in the same folder (permissions from the umask, so colleagues sharing the cache can
read it) and moved into place with ``os.replace``, so readers see either no pack or a
complete one; the name is the hash of the pack's keys, so two processes storing the same
entries write the same file.  No fsync: a lost pack is recomputed.

Nothing read from a pack is trusted unchecked.  The header holds a crc32 of the index (the
header fields, keys, token counts and entry checksums), verified when a pack is opened, and
every entry a crc32 of its ids and embeddings, verified each time the entry is read (crc32
runs at over 1 GB/s and the bytes are read anyway).  A pack that fails a check (size, index
or entry checksum) is *quarantined*: renamed to ``<name>.pack.bad`` with one warning, never
read again, and its entries are recomputed.  A pack this process may not read (another
user's file without read permission) is skipped, recomputed in memory and left in place
(one warning); when a pack cannot be written (a read-only shared cache, a full disk) the
run goes on without storing it (one warning).

``max_bytes`` bounds the total size: after a write the oldest packs (by modification time;
a hit refreshes it) are deleted, across all namespaces under ``root``.

Pack format (little endian): header ``"BSP2", n, dim, dtype code, index crc32``; ``n``
16-byte keys; ``n`` uint32 token counts; ``n`` uint32 entry crc32s; then for every entry its
int32 ids followed by its embeddings (float32 or float16, ``[n_tokens, dim]``).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import mmap
import os
import shutil
import struct
import zlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from pipeline.core.io import create_temp_file

log = logging.getLogger(__name__)

MAGIC = b"BSP2"
_HEAD = struct.Struct("<4sIIB3x")  # magic, n entries, dim, dtype code
_CRC = struct.Struct("<I")  # crc32 of the head and the index tables, after the head
HEADER_SIZE = _HEAD.size + _CRC.size
_DTYPES = {0: np.dtype("<f4"), 1: np.dtype("<f2")}
_CODES = {np.dtype("<f4"): 0, np.dtype("<f2"): 1}
SUFFIX = ".pack"
BAD_SUFFIX = ".bad"  # a quarantined pack: <name>.pack.bad
KEY_BYTES = 16

Entry = tuple[np.ndarray, np.ndarray]  # (int32 token ids [n], float embeddings [n, dim])


class DamagedPack(ValueError):
    """A pack whose size or checksums do not match its contents; ``ident`` is the
    (device, inode) of the file found damaged."""

    ident: tuple[int, int] | None = None


def encode_pack(entries: list[tuple[bytes, np.ndarray, np.ndarray]]) -> bytes:
    """Serialise ``(key, ids, embeddings)`` entries that share one dim and dtype."""
    if not entries:
        raise ValueError("a pack needs at least one entry")
    embs = [np.ascontiguousarray(e) for _k, _i, e in entries]
    dtype, dim = embs[0].dtype, embs[0].shape[1] if embs[0].ndim == 2 else -1
    counts, bodies = [], []
    for (key, ids, _e), emb in zip(entries, embs, strict=True):
        if (len(key) != KEY_BYTES or emb.dtype != dtype or dtype not in _CODES
                or emb.ndim != 2 or emb.shape != (len(ids), dim)):
            raise ValueError("entries need 16-byte keys and float32/float16 [n_tokens, dim] "
                             "embeddings of one dtype and dim matching their ids")
        counts.append(len(ids))
        bodies.append(np.ascontiguousarray(ids, dtype="<i4").tobytes() + emb.tobytes())
    head = _HEAD.pack(MAGIC, len(entries), dim, _CODES[dtype])
    index = (b"".join(k for k, _i, _e in entries) + np.asarray(counts, "<u4").tobytes()
             + np.asarray([zlib.crc32(b) for b in bodies], "<u4").tobytes())
    return b"".join([head, _CRC.pack(zlib.crc32(index, zlib.crc32(head))), index, *bodies])


class _Pack:
    """A memory-mapped pack: key -> entry; raises :class:`DamagedPack` when it is not a
    valid pack (checked: size, index checksum; each entry's checksum when it is read)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.index: dict[bytes, tuple[int, int, int]] = {}  # key -> (offset, n_tokens, j)
        with open(path, "rb") as fh:
            st = os.fstat(fh.fileno())
            self.ident = (st.st_dev, st.st_ino)
            try:
                if st.st_size < HEADER_SIZE:
                    raise DamagedPack("shorter than a pack header")
                self.buf = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
                self._read_index()
            except DamagedPack as exc:
                exc.ident = self.ident
                raise

    def _read_index(self) -> None:
        self.view = memoryview(self.buf)
        magic, n, dim, code = _HEAD.unpack_from(self.buf)
        if magic != MAGIC or code not in _DTYPES:
            raise DamagedPack("not a pack")
        self.dim, self.dtype = dim, _DTYPES[code]
        counts_at = HEADER_SIZE + KEY_BYTES * n
        crcs_at = counts_at + 4 * n
        data_at = crcs_at + 4 * n
        if len(self.buf) < data_at:
            raise DamagedPack("shorter than its index")
        (index_crc,) = _CRC.unpack_from(self.buf, _HEAD.size)
        if zlib.crc32(self.view[HEADER_SIZE:data_at],
                      zlib.crc32(self.view[:_HEAD.size])) != index_crc:
            raise DamagedPack("index checksum mismatch")
        counts = np.frombuffer(self.buf, "<u4", count=n, offset=counts_at).astype(np.int64)
        self.crcs = np.frombuffer(self.buf, "<u4", count=n, offset=crcs_at)
        sizes = counts * (4 + self.dtype.itemsize * dim)
        if data_at + int(sizes.sum()) != len(self.buf):
            raise DamagedPack("size does not match its header")
        offsets = data_at + np.concatenate([[0], np.cumsum(sizes)[:-1]])
        keys = self.buf[HEADER_SIZE:counts_at]
        for j in range(n):
            self.index[keys[j * KEY_BYTES:(j + 1) * KEY_BYTES]] = (int(offsets[j]),
                                                                   int(counts[j]), j)

    def entry(self, key: bytes) -> Entry:
        """The entry of ``key``, after checking its checksum (:class:`DamagedPack` if bad)."""
        off, n, j = self.index[key]
        end = off + n * (4 + self.dtype.itemsize * self.dim)
        if zlib.crc32(self.view[off:end]) != int(self.crcs[j]):
            raise DamagedPack(f"checksum mismatch in entry {j}")
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
        self._skipped: set[str] = set()  # names of packs not used (damaged or unreadable)
        self._warned: set[str] = set()  # problems already reported once ("read", "write")

    def key(self, text: str) -> bytes:
        """The 16-byte key of ``text`` in this namespace."""
        return hashlib.sha256(self.ns_hash.encode() + b"\0" + text.encode("utf-8")).digest()[
            :KEY_BYTES]

    def _warn_once(self, kind: str, message: str, *args: object) -> None:
        if kind not in self._warned:
            self._warned.add(kind)
            log.warning(message, *args)

    def _refresh(self) -> None:
        """Open packs written since the last look (by this or any other process)."""
        try:
            names = [e.name for e in os.scandir(self.dir)
                     if e.name.endswith(SUFFIX) and not e.name.startswith(".")]
        except FileNotFoundError:
            return
        except PermissionError:
            self._warn_once("read", "BERTScore cache: cannot list %s (permission denied); "
                            "embeddings are computed without it", self.dir)
            return
        for name in names:
            if name in self._packs or name in self._skipped:
                continue
            path = os.path.join(self.dir, name)
            try:
                pack = self._packs[name] = _Pack(path)
            except FileNotFoundError:  # evicted meanwhile
                continue
            except PermissionError:  # another user's file: never ours to move or delete
                self._skipped.add(name)
                self._warn_once("read", "BERTScore cache: cannot read %s (permission denied); "
                                "its entries (and those of any other unreadable pack) are "
                                "computed in memory and the file is left in place", path)
                continue
            except DamagedPack as exc:
                self._quarantine(name, str(exc), exc.ident)
                continue
            except (ValueError, OSError) as exc:  # e.g. an I/O error: skip, touch nothing
                self._skipped.add(name)
                log.warning("BERTScore cache: cannot read %s (%s); its entries are recomputed",
                            path, exc)
                continue
            self._where.update(dict.fromkeys(pack.index, pack))

    def _quarantine(self, name: str, reason: str, ident: tuple[int, int] | None) -> None:
        """Never use pack ``name`` again; rename it to ``<name>.bad`` when it is still the
        file found damaged (``ident``: device, inode), and warn once."""
        self._skipped.add(name)
        pack = self._packs.pop(name, None)
        if pack is not None:
            self._where = {k: p for p in self._packs.values() for k in p.index}
        path = os.path.join(self.dir, name)
        try:
            st = os.stat(path)
            if (st.st_dev, st.st_ino) != ident:  # another process wrote a fresh copy
                self._skipped.discard(name)
                where = "already replaced"
            else:
                os.replace(path, path + BAD_SUFFIX)
                where = f"moved aside to {path + BAD_SUFFIX}"
        except FileNotFoundError:  # evicted, or quarantined by another process
            where = "already gone"
        except OSError as exc:
            where = f"left in place (cannot rename it: {exc.strerror})"
        log.warning("BERTScore cache: %s is damaged (%s); %s, its entries are recomputed",
                    path, reason, where)

    def get_many(self, texts: Iterable[str]) -> dict[str, Entry]:
        """Entries of the texts that are cached (each checked against its checksum)."""
        texts = list(texts)
        self._refresh()
        out: dict[str, Entry] = {}
        source: dict[str, str] = {}  # text -> path of the pack its entry came from
        damaged: set[str] = set()
        for text in texts:
            key = self.key(text)
            while (pack := self._where.get(key)) is not None:
                try:
                    out[text] = pack.entry(key)
                except DamagedPack as exc:
                    self._quarantine(os.path.basename(pack.path), str(exc), pack.ident)
                    damaged.add(pack.path)
                    continue  # another pack may hold the key
                source[text] = pack.path
                break
        for text in [t for t in out if source[t] in damaged]:
            del out[text]  # recomputed with the rest of its pack, so all are stored again
        used = set(source.values()) - damaged
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
        """Store entries as one pack (atomically), then enforce ``max_bytes``.

        A pack that cannot be written (permissions, full disk) is skipped with one warning.
        """
        entries = {self.key(t): (ids, emb) for t, ids, emb in items}
        if not entries:
            return
        data = encode_pack([(k, i, e) for k, (i, e) in sorted(entries.items())])
        name = hashlib.sha256(b"".join(sorted(entries)) + data[:_HEAD.size]).hexdigest()[
            :32] + SUFFIX
        tmp = None
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            fd, tmp = create_temp_file(self.dir, prefix=".")
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, self.dir / name)
        except BaseException as exc:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
            if not isinstance(exc, OSError):
                raise
            self._warn_once("write", "BERTScore cache: cannot write to %s (%s); embeddings "
                            "are not stored", self.dir, exc.strerror or exc)
            return
        self._skipped.discard(name)  # a fresh copy of a quarantined pack is fine
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
