"""A followed log as a source for the agent (``querywatch digest --follow``).

For a database whose logs are all there is (no pg_stat_statements, a managed server), the log
takes pg_stat_statements' place: each poll reads what was written since the last one
(:class:`~querywatch.logs.reader.Tail`, rotation-safe), digests it, and returns statement
windows bucketed by the statements' own log times, for the agent to store and detect on like
any other source.

Parsers are generators over chunks, so one lives for the whole run in a thread of its own,
fed through a queue: a poll hands over the new lines and an empty chunk ("nothing more for now:
finish what you have") and waits until the parser asks for more, so every record of those lines
has reached the windows when ``poll`` returns. A statement whose duration line comes in the
next poll's lines is still paired (the parser's session state carries over).
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterator
from pathlib import Path

from querywatch.errors import SourceError
from querywatch.logs import formats
from querywatch.logs.digest import Digest
from querywatch.logs.model import ParseOptions
from querywatch.logs.reader import Tail
from querywatch.logs.windows import Windows
from querywatch.records import StatementWindow

STATE_VERSION = 1


class LogSource:
    """:class:`querywatch.capture.base.Source` over one followed log file."""

    def __init__(self, path: Path, fmt: str, options: ParseOptions | None = None) -> None:
        self.path = path
        self.name = f"log:{path}"
        self.format = formats.get(fmt)
        self.options = options or ParseOptions()
        self.parser = self.format.parser(self.options)
        self._ready: list[StatementWindow] = []
        self._windows = Windows(self._ready.extend, self.format.dialect)
        self.digest = Digest(self.format.dialect, window_sink=self._windows.add)
        self._tail: Tail | None = None
        self._queue: queue.Queue[bytes | None] = queue.Queue()
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._restored: tuple[int, tuple[int, int]] | None = None

    # -- Source --------------------------------------------------------------------------------

    def poll(self, now: float) -> list[StatementWindow]:
        if self._tail is None:
            self._start()
        assert self._tail is not None
        try:
            data = self._tail.read()
        except OSError as exc:
            raise SourceError(f"{self.path}: cannot read: {exc.strerror or exc}") from None
        if data:
            self._queue.put(data)
        self._queue.put(b"")
        self._queue.join()  # the parser has asked for more: everything given is digested
        if self._error is not None:
            error, self._error = self._error, None
            raise SourceError(f"{self.path}: {error}")
        self._windows.flush()
        out, self._ready[:] = list(self._ready), []
        return out

    def snapshot_state(self) -> str:
        tail = self._tail
        if tail is None or tail.identity is None:
            return json.dumps({"version": STATE_VERSION})
        return json.dumps(
            {"version": STATE_VERSION, "offset": tail.position, "identity": list(tail.identity)}
        )

    def restore_state(self, state: str) -> None:
        try:
            data = json.loads(state)
            if data.get("version") == STATE_VERSION and "offset" in data:
                dev, ino = data["identity"]
                self._restored = (int(data["offset"]), (int(dev), int(ino)))
        except (ValueError, TypeError, KeyError):
            self._restored = None  # unreadable state: start at the end, as a first run does

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(10)
        if self._tail is not None:
            self._tail.close()

    # -- the parser thread ---------------------------------------------------------------------

    def _start(self) -> None:
        offset, identity = self._restored if self._restored else (None, None)
        self._tail = Tail(self.path, offset=offset, identity=identity)
        self._thread = threading.Thread(target=self._run, name="querywatch-log", daemon=True)
        self._thread.start()

    def _chunks(self) -> Iterator[bytes]:
        first = True
        while True:
            if not first:
                self._queue.task_done()  # the previous chunk is fully digested
            first = False
            chunk = self._queue.get()
            if chunk is None:
                self._queue.task_done()
                return
            yield chunk

    def _run(self) -> None:
        try:
            self.digest.consume(self.parser.parse(self._chunks()), str(self.path))
        except Exception as exc:  # reported by the next poll, as a source error
            self._error = exc
            while True:  # keep answering polls so they do not wait forever
                item = self._queue.get()
                self._queue.task_done()
                if item is None:
                    return
