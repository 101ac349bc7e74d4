"""The lakehouse's object store as DuckDB reads it: the root's own fsspec file system, with
what never changes asked once.

DuckDB reads a root such as ``s3://bucket/lake`` through a file system registered with it
(:meth:`duckdb.DuckDBPyConnection.register_filesystem`), so no extension is downloaded and the
credentials are whatever the file system finds. For each file a query touches, DuckDB asks its
size and modification time and opens it, at binding and again at execution, reading its footer
and then its columns: on S3 a dozen ``HEAD`` and three ``GET`` requests per file and query. A
version file never changes once written (its name carries the digest of its bytes), so
:class:`VersionFileSystem` keeps its metadata and, up to a budget, its bytes for the life of
the connection. Globs, and every other file, go to the store each time, so a query sees the
versions written since the last one.
"""

from __future__ import annotations

import io
from collections import OrderedDict
from typing import Any

from fsspec import AbstractFileSystem
from fsspec.spec import AbstractBufferedFile

from quant_assets.lakehouse.store import VERSION_FILE, is_s3, whole_read_options

#: A version file up to this size is read whole, once, and kept in memory...
MAX_KEPT_FILE_BYTES = 16 * 2**20
#: ...within this much per connection (least recently read first out).
MAX_KEPT_BYTES = 256 * 2**20


class VersionFileSystem(AbstractFileSystem):
    """``fs`` for DuckDB: every call passed on, except that version files are described and
    read from what the first request for them brought."""

    cachable = False  # one per connection: fsspec must not hand it to anyone else

    def __init__(self, fs: AbstractFileSystem) -> None:
        super().__init__()
        self.fs = fs
        self.protocol = fs.protocol
        self._s3 = is_s3(fs)
        self._infos: dict[str, dict[str, Any]] = {}
        self._bytes: OrderedDict[str, bytes] = OrderedDict()
        self._kept = 0  # bytes in self._bytes

    def _strip_protocol(self, path: str) -> str:  # type: ignore[override]
        return self.fs._strip_protocol(path)

    def _immutable(self, key: str) -> bool:
        return VERSION_FILE.fullmatch(key.rsplit("/", 1)[-1]) is not None

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        key = self._strip_protocol(path)
        if kwargs or not self._immutable(key):
            return self.fs.info(path, **kwargs)
        if key not in self._infos:
            self._infos[key] = self.fs.info(path)
        return self._infos[key]

    def modified(self, path: str) -> Any:
        details = self.info(path)
        if "LastModified" in details:  # s3fs: what its own ``modified`` returns
            return details["LastModified"]
        return self.fs.modified(path)

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> Any:
        return self.fs.ls(path, detail=detail, **kwargs)

    def glob(self, path: str, **kwargs: Any) -> Any:
        return self.fs.glob(path, **kwargs)

    def _open(self, path: str, mode: str = "rb", block_size: Any = None, autocommit: bool = True,
              cache_options: Any = None, **kwargs: Any) -> Any:
        key = self._strip_protocol(path)
        details = self.info(key) if mode == "rb" and self._immutable(key) else None
        if details is not None and details.get("size", MAX_KEPT_FILE_BYTES + 1) <= MAX_KEPT_FILE_BYTES:
            return io.BytesIO(self._whole(key))
        if details is not None and self._s3:
            kwargs.setdefault("size", details["size"])
        opened = self.fs._open(key, mode, block_size=block_size, autocommit=autocommit, cache_options=cache_options,
                               **kwargs)
        if details is not None and isinstance(opened, AbstractBufferedFile):
            opened.details = details  # else its first read asks again (s3fs: for the ETag)
        return opened

    def _whole(self, key: str) -> bytes:
        """The bytes of a version file: one GET the first time, from memory after."""
        if key in self._bytes:
            self._bytes.move_to_end(key)
            return self._bytes[key]
        data = self.fs.cat_file(key, **whole_read_options(self.fs))
        self._bytes[key] = data
        self._kept += len(data)
        while self._kept > MAX_KEPT_BYTES and len(self._bytes) > 1:
            self._kept -= len(self._bytes.popitem(last=False)[1])
        return data
