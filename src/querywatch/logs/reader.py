"""Reading log files: compressed or not, rotated sets in order, byte ranges, and following.

Compression is told from the file's first bytes, not its name (a rotated ``postgresql.log.1`` may
be gzip). zstd uses the ``zstandard`` package when installed (``querywatch[zstd]``), else the
``zstd`` command. Everything is read as chunks of whole lines (``model.Parser``), a megabyte at a
time, so memory does not grow with the file.
"""

from __future__ import annotations

import bz2
import gzip
import itertools
import lzma
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from querywatch.logs.model import LogFormatError

CHUNK = 1 << 20
HEAD_LINES = 200

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bz2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
)
_COMPRESSED_SUFFIX = re.compile(r"\.(?:gz|bz2|xz|zst|zstd)$")
_ROTATION = re.compile(r"^(?P<base>.*?)(?:[.-](?:(?P<n>\d{1,3})|(?P<date>\d{8}(?:\d{2,6})?)))?$")


def compression_of(path: Path) -> str | None:
    """``gzip``, ``bz2``, ``xz``, ``zstd`` or None, from the file's magic bytes."""
    with open(path, "rb") as f:
        head = f.read(6)
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    return None


class LogFile:
    """One log file opened for reading; ``position`` is how far into the file (on disk) it got,
    so progress is right for compressed files too."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.size = path.stat().st_size
            self.compression = compression_of(path)
            self._raw: IO[bytes] = open(path, "rb")  # noqa: SIM115 - closed by close()
        except OSError as exc:
            raise LogFormatError(f"{path}: cannot read: {exc.strerror or exc}") from None
        self._proc: subprocess.Popen[bytes] | None = None
        self.stream: IO[bytes] = self._open_stream()

    def _open_stream(self) -> IO[bytes]:
        raw: Any = self._raw
        if self.compression is None:
            return self._raw
        opened: Any
        if self.compression == "gzip":
            opened = gzip.GzipFile(fileobj=raw, mode="rb")
            return opened  # type: ignore[no-any-return]
        if self.compression == "bz2":
            opened = bz2.BZ2File(raw, "rb")
            return opened  # type: ignore[no-any-return]
        if self.compression == "xz":
            opened = lzma.LZMAFile(raw, "rb")  # noqa: SIM115 - closed by close()
            return opened  # type: ignore[no-any-return]
        try:
            import zstandard
        except ImportError:
            return self._zstd_command()
        reader: IO[bytes] = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
        return reader

    def _zstd_command(self) -> IO[bytes]:
        exe = shutil.which("zstd")
        if exe is None:
            raise LogFormatError(
                f"{self.path}: zstd-compressed; install querywatch[zstd] (the zstandard "
                "package) or the zstd command to read it"
            )
        self._proc = subprocess.Popen([exe, "-dcq"], stdin=self._raw, stdout=subprocess.PIPE)
        assert self._proc.stdout is not None
        return self._proc.stdout

    @property
    def position(self) -> int:
        try:
            return self._raw.tell()
        except (OSError, ValueError):
            return self.size

    def chunks(self, size: int = CHUNK) -> Iterator[bytes]:
        """The file as chunks of whole lines (the last may lack its newline)."""
        yield from whole_lines(self._read_blocks(size))

    def _read_blocks(self, size: int) -> Iterator[bytes]:
        read = self.stream.read
        try:
            while block := read(size):
                yield block
        except (OSError, EOFError, lzma.LZMAError) as exc:
            # A truncated or corrupt archive: what was read so far counts, then one clear error.
            raise LogFormatError(f"{self.path}: cannot decompress past this point: {exc}") from None
        except Exception as exc:  # zstandard.ZstdError and friends
            if type(exc).__module__.startswith("zstandard"):
                msg = f"{self.path}: cannot decompress past this point: {exc}"
                raise LogFormatError(msg) from None
            raise

    def head(self, lines: int = HEAD_LINES) -> list[bytes]:
        """The first lines (read through a fresh handle: this one's position does not move)."""
        with LogFile(self.path) as again:
            out: list[bytes] = []
            for chunk in again.chunks(64 * 1024):
                out.extend(chunk.split(b"\n"))
                if len(out) > lines:
                    break
            return [line for line in out[:lines] if line]

    def close(self) -> None:
        if self.stream is not self._raw:
            self.stream.close()
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
        self._raw.close()

    def __enter__(self) -> LogFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def whole_lines(blocks: Iterable[bytes]) -> Iterator[bytes]:
    """Re-cut blocks of bytes at their last newline, carrying the rest into the next one."""
    rest = b""
    for block in blocks:
        cut = block.rfind(b"\n")
        if cut < 0:
            rest += block
            continue
        yield rest + block[: cut + 1] if rest else block[: cut + 1]
        rest = block[cut + 1 :]
    if rest:
        yield rest


@dataclass(frozen=True, slots=True)
class ByteRange:
    """A piece of one uncompressed file, for parsing in parallel (``digest -j N``)."""

    path: Path
    start: int
    end: int
    index: int  # its place among the file's ranges


def split_ranges(path: Path, parts: int, starts_entry: Callable[[bytes], bool]) -> list[ByteRange]:
    """Cut an uncompressed file into about ``parts`` ranges, each starting at a log entry (a line
    ``starts_entry`` accepts), so no entry is split between two workers."""
    size = path.stat().st_size
    if parts <= 1:
        return [ByteRange(path, 0, size, 0)]
    cuts = [0]
    with open(path, "rb") as f:
        for k in range(1, parts):
            at = _entry_start_after(f, size * k // parts, starts_entry)
            if at is not None and at > cuts[-1]:
                cuts.append(at)
    cuts.append(size)
    return [ByteRange(path, a, b, i) for i, (a, b) in enumerate(itertools.pairwise(cuts))]


def _entry_start_after(
    f: IO[bytes], offset: int, starts_entry: Callable[[bytes], bool]
) -> int | None:
    f.seek(offset)
    f.readline()  # the rest of the line the offset fell into
    for _ in range(100_000):
        at = f.tell()
        line = f.readline()
        if not line:
            return None
        if starts_entry(line):
            return at
    return None


def range_chunks(r: ByteRange, size: int = CHUNK) -> Iterator[bytes]:
    """The chunks of whole lines in one byte range."""
    with open(r.path, "rb") as f:
        f.seek(r.start)
        left = r.end - r.start

        def blocks() -> Iterator[bytes]:
            nonlocal left
            while left > 0:
                block = f.read(min(size, left))
                if not block:
                    return
                left -= len(block)
                yield block

        yield from whole_lines(blocks())


def rotation_order(paths: Sequence[Path]) -> list[Path]:
    """Files of a rotated set oldest first: ``pg.log.2.gz``, ``pg.log.1``, ``pg.log``.

    Names are grouped by their base (the name without a compression suffix and a rotation number)
    and, within a group, a higher number is older, a date suffix (logrotate's dateext) sorts by
    date, and the bare name is newest. Names with dates inside (PostgreSQL's own
    ``postgresql-2024-05-01_000000.log``) sort by name, which is by time.
    """

    def key(p: Path) -> tuple[str, str, int, int, str]:
        name = _COMPRESSED_SUFFIX.sub("", p.name)
        m = _ROTATION.match(name)
        assert m is not None  # the pattern matches any name
        if m["n"]:
            return (str(p.parent), m["base"], 0, -int(m["n"]), "")
        if m["date"]:
            return (str(p.parent), m["base"], 0, 0, m["date"])
        return (str(p.parent), name, 1, 0, "")

    return sorted(dict.fromkeys(paths), key=key)


def expand(paths: Sequence[str]) -> list[Path]:
    """Paths as given; a directory stands for the log files in it."""
    out: list[Path] = []
    for given in paths:
        p = Path(given)
        if p.is_dir():
            found = [c for c in p.iterdir() if c.is_file() and not c.name.startswith(".")]
            if not found:
                raise LogFormatError(f"{p}: no log files in this directory")
            out.extend(found)
        elif not p.exists():
            raise LogFormatError(f"{p}: no such file")
        else:
            out.append(p)
    return rotation_order(out)


def file_identity(path: Path) -> tuple[int, int]:
    st = os.stat(path)
    return (st.st_dev, st.st_ino)


class Tail:
    """``tail -F`` for one log: new whole lines on each :meth:`read`, across rotation.

    A rotation by rename (logrotate, PostgreSQL's collector) is seen as the path naming another
    file: the old file is read to its end first, then the new one from its start. A truncation
    in place (copytruncate) starts the file over. A missing file is waited for. ``offset`` and
    ``identity`` (device, inode) resume a tail after a restart, also when the file was rotated
    meanwhile (the old file is found by its inode beside the new one).
    """

    def __init__(
        self, path: Path, *, offset: int | None = None, identity: tuple[int, int] | None = None
    ) -> None:
        self.path = path
        self._f: IO[bytes] | None = None
        self.identity: tuple[int, int] | None = None
        self.offset = 0
        self._rest = b""
        self._resume(offset, identity)

    def _resume(self, offset: int | None, identity: tuple[int, int] | None) -> None:
        if offset is not None and identity is not None:
            old = self._find(identity)
            if old is not None:
                self._open(old, offset)
                return
        if self.path.exists():
            if compression_of(self.path) is not None:
                raise LogFormatError(f"{self.path}: a compressed file cannot be followed")
            # A fresh tail starts at the end, as tail -F does: what is already there is history.
            self._open(self.path, self.path.stat().st_size if offset is None else 0)

    def _find(self, identity: tuple[int, int]) -> Path | None:
        candidates = [self.path, *sorted(self.path.parent.glob(self.path.name + "*"))]
        for p in candidates:
            try:
                if file_identity(p) == identity:
                    return p
            except OSError:
                continue
        return None

    def _open(self, path: Path, offset: int) -> None:
        f = open(path, "rb")  # noqa: SIM115 - kept open between reads, closed by close()
        st = os.fstat(f.fileno())
        f.seek(min(offset, st.st_size))
        self._f, self.identity, self.offset = f, (st.st_dev, st.st_ino), f.tell()

    def read(self, limit: int = 64 << 20) -> bytes:
        """Whole lines written since the last read (``b""`` when none), at most about
        ``limit`` bytes; the rest waits for the next read."""
        if self._f is None:
            if not self.path.exists():
                return b""
            self._open(self.path, 0)
        assert self._f is not None
        data = self._f.read(limit)
        if not data:
            data = self._after_end(limit)
        self.offset = self._f.tell() if self._f is not None else 0
        data = self._rest + data
        cut = data.rfind(b"\n") + 1
        self._rest = data[cut:]
        return data[:cut]

    def _after_end(self, limit: int) -> bytes:
        """At the end of the open file: has it been rotated or truncated?"""
        assert self._f is not None
        try:
            now = file_identity(self.path)
        except OSError:
            return b""  # rotated away and not recreated yet: keep the old handle
        if now != self.identity:
            self._f.close()
            self._open(self.path, 0)
            self._rest = b""  # a partial last line of the old file stays unfinished
            return self._f.read(limit)
        if os.fstat(self._f.fileno()).st_size < self._f.tell():
            self._f.seek(0)  # truncated in place
            self._rest = b""
            return self._f.read(limit)
        return b""

    @property
    def position(self) -> int:
        """The offset of the first byte not yet handed out (a partial line is not handed out)."""
        return self.offset - len(self._rest)

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None


def content_key(path: Path) -> str:
    """A name for a log file's content (size, first and last 64 KiB), so `digest --store` can
    tell a file it already stored, under whatever name it has now."""
    import hashlib

    size = path.stat().st_size
    h = hashlib.blake2b(str(size).encode(), digest_size=12)
    with open(path, "rb") as f:
        h.update(f.read(1 << 16))
        if size > 1 << 16:
            f.seek(max(size - (1 << 16), 1 << 16))
            h.update(f.read(1 << 16))
    return h.hexdigest()
