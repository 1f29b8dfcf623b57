"""The windows a detection pass reads, folded into each side's baselines as they come from the
store, and what an agent keeps of them between passes.

A stateless pass reads the whole look-back: half an hour of every fingerprint, about 180,000
windows at 1,000 busy fingerprints, re-folded at every poll although only the last poll's
windows are new. With ``reuse_seconds`` (what `querywatch watch` runs with), a :class:`LookBack`
keeps, between passes, what windows older than ``SETTLE_S`` (a minute; younger ones may still be
written) made of each side:

* the trailing baseline of the unannounced detector (which ends a minute ago), as its builder:
  each pass feeds it the windows that have settled since the last one. Its span therefore starts
  up to ``reuse_seconds`` earlier than a fresh one would (30 to 35 minutes with the defaults);
* the deploy being judged: its before side (a span the deploy fixes), the fingerprints seen
  before it and its routes; and its after side's builder up to the last minute, which a pass
  branches to add the last minute's windows.

A pass thus reads the last minute and the current window. Everything is read again every
``reuse_seconds`` (so a window written later than a minute counts then), and at once when a
deploy moves a span's start, a pass comes more than ``MAX_STEP_S`` late or the clock goes back.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from querywatch.detect.baseline import BaselineBuilder, KeyBaseline, Point, statement_point
from querywatch.detect.comparison import SETTLE_S, Phases, Sides, W, floor_w
from querywatch.records import RequestWindow, StatementWindow
from querywatch.store.base import Store

MAX_STEP_S = 6 * W
"""A kept builder is fed at most this much at once; a longer gap between passes (the agent was
stopped, the machine slept) rebuilds it instead of holding the gap's windows."""


@dataclass(slots=True)
class PassContext:
    """What one detection pass read from the store, folded as it was read."""

    now: float
    deploy_sides: Sides | None = None  # the deploy's phases, when one is compared against
    seen_before: set[str] = field(default_factory=set)  # fingerprints seen before the deploy
    routes: Sides | None = None  # routes over the deploy's phases
    unannounced: Phases | None = None  # the trailing baseline and the recent windows
    unannounced_sides: Sides | None = None


@dataclass(slots=True)
class _Kept:
    """A side's builder, fed every window of ``[builder.start, builder.end)``, kept for later."""

    builder: BaselineBuilder
    anchor: object  # what decides the span's start: the latest deploy, or the judged one
    built_at: float


class _Growing:
    """A side whose span's end moves with time: kept up to ``settled``, open after it."""

    def __init__(
        self, kept: _Kept | None, anchor: object, span: Phases, settle: float, now: float | None
    ) -> None:
        self.kept = kept
        self.anchor = anchor
        after = now is not None  # a deploy's after side (trimmed at now), else a baseline
        self.start = span.after_start if after else span.before_start
        self.end = span.after_end if after else span.before_end
        self.settled = max(self.start, min(self.end, settle))
        self.now = now
        if kept is not None and not 0 <= self.settled - kept.builder.end <= MAX_STEP_S:
            self.kept = None  # a later deploy cut the span, a late pass, a clock that went back


@dataclass(slots=True)
class _DeployBefore:
    """The before side of the judged deploy, as a pass built it."""

    phases: Phases
    statements: dict[str, KeyBaseline]
    seen_before: set[str]
    routes: dict[str, KeyBaseline]
    built_at: float


class LookBack:
    """Reads the windows of a detection pass; with ``reuse_seconds`` > 0, only what is new."""

    def __init__(self, store: Store, min_chunk_calls: int, *, reuse_seconds: float = 0.0) -> None:
        self.store = store
        self.min_chunk_calls = min_chunk_calls
        self.reuse_seconds = reuse_seconds
        self._deploy_before: _DeployBefore | None = None
        self._deploy_after: _Kept | None = None
        self._trailing: _Kept | None = None

    def read(
        self,
        now: float,
        since: float,
        deploy: Phases | None,
        unannounced: Phases | None,
        anchor: str | None = None,
    ) -> PassContext:
        """Baselines of both sides of ``deploy`` and of ``unannounced`` at ``now``.

        ``since``: where a stateless pass starts reading (the look-back, including what decides
        which fingerprints were seen before the deploy). ``anchor``: the latest deploy's id.
        """
        k = self.min_chunk_calls
        before = self._kept_deploy_before(deploy, now)
        settle = floor_w(now) - SETTLE_S
        sides: dict[str, _Growing] = {}
        if deploy is not None:
            kept = self._kept(self._deploy_after, deploy.before_end, deploy.after_start, now)
            sides["after"] = _Growing(kept, deploy.before_end, deploy, settle, now)
        if unannounced is not None:
            trail = self._kept(self._trailing, anchor, unannounced.before_start, now)
            sides["trailing"] = _Growing(trail, anchor, unannounced, settle, None)
        # what cannot be fed on is let go before its replacement is built: one of each at a time
        self._deploy_after = sides["after"].kept if "after" in sides else None
        self._trailing = sides["trailing"].kept if "trailing" in sides else None
        collect: dict[str, tuple[float, float]] = {}
        for name, g in sides.items():
            if g.kept is not None:
                collect[name] = (g.kept.builder.end, g.settled)
            collect[name + " open"] = (g.settled, g.end)
        read_from = since
        if self.reuse_seconds > 0:
            starts = [lo for lo, _ in collect.values()]
            starts += [g.start for g in sides.values() if g.kept is None]
            if deploy is not None and before is None:
                starts.append(since)  # what was seen before the deploy
            if unannounced is not None:
                starts.append(unannounced.after_start)
            read_from = min(starts, default=now)

        def attempt(windows: Iterator[StatementWindow]) -> _Fold:
            texts: dict[str, str] = {}  # one copy of each text, shared by the sides

            def builder(start: float, end: float, *, elapsed: bool = False) -> BaselineBuilder:
                return BaselineBuilder(
                    start, end, min_chunk_calls=k, now=now if elapsed else None, texts=texts
                )

            fresh = {
                name: builder(g.start, g.settled) for name, g in sides.items() if g.kept is None
            }
            if deploy is not None and before is None:
                fresh["before"] = builder(deploy.before_start, deploy.before_end)
            if unannounced is not None:
                fresh["recent"] = builder(
                    unannounced.after_start, unannounced.after_end, elapsed=True
                )
            seen_until = deploy.before_end if deploy is not None and before is None else None
            return _Fold(now, fresh, collect, seen_until).consume(windows)

        fold = self.store.fold_statement_windows(attempt, since=read_from)
        grown = {name: self._grow(name, g, fold, now) for name, g in sides.items()}
        if self.reuse_seconds > 0:
            self._deploy_after = sides["after"].kept if "after" in sides else None
            self._trailing = sides["trailing"].kept if "trailing" in sides else None
        ctx = PassContext(now)
        if deploy is not None:
            if before is None:
                routes_before, routes_after = self._routes(now, since, deploy, None)
                before = _DeployBefore(
                    deploy, fold.fresh["before"].baselines(), fold.seen, routes_before, now
                )
                if self.reuse_seconds > 0:
                    self._deploy_before = before
            else:
                routes_after = self._routes(now, deploy.after_start, deploy, before.routes)[1]
            ctx.deploy_sides = (before.statements, grown["after"])
            ctx.seen_before = before.seen_before
            ctx.routes = (before.routes, routes_after)
        if unannounced is not None:
            ctx.unannounced = unannounced
            ctx.unannounced_sides = (grown["trailing"], fold.fresh["recent"].baselines())
        return ctx

    @staticmethod
    def _grow(name: str, g: _Growing, fold: _Fold, now: float) -> dict[str, KeyBaseline]:
        """The side's baselines: its kept builder fed what was read for it (after the read: a
        retried read must not feed it twice), then a branch of it with the open windows."""
        if g.kept is None:
            g.kept = _Kept(fold.fresh[name], g.anchor, now)
        g.kept.builder.extend(g.settled)
        for p in fold.collected.get(name, []):
            g.kept.builder.add_point(p)
        if g.end == g.settled and g.now is None:
            return g.kept.builder.baselines()  # nothing open: the trailing baseline
        branch = g.kept.builder.branch(g.end, g.now)
        for p in fold.collected[name + " open"]:
            branch.add_point(p)
        return branch.baselines()

    def _kept(self, kept: _Kept | None, anchor: object, start: float, now: float) -> _Kept | None:
        """``kept`` if it may be fed on: same anchor, built lately, its span started no later
        than ``start`` (a deploy moves the trailing baseline's start past a kept one)."""
        if kept is None or kept.anchor != anchor or not self._fresh(kept.built_at, now):
            return None
        return kept if kept.builder.start <= start else None

    def _kept_deploy_before(self, deploy: Phases | None, now: float) -> _DeployBefore | None:
        kept = self._deploy_before
        if kept is None or deploy is None or not self._fresh(kept.built_at, now):
            return None
        same = (kept.phases.before_start, kept.phases.before_end) == (
            deploy.before_start,
            deploy.before_end,
        )
        return kept if same else None

    def _fresh(self, built_at: float, now: float) -> bool:
        return built_at <= now < built_at + self.reuse_seconds

    def _routes(
        self,
        now: float,
        since: float,
        deploy: Phases,
        kept: dict[str, KeyBaseline] | None,
    ) -> Sides:
        """Routes before (unless kept) and after the deploy, from the request windows."""
        k = self.min_chunk_calls

        def consume(windows: Iterator[RequestWindow]) -> Sides:
            before = BaselineBuilder(deploy.before_start, deploy.before_end, min_chunk_calls=k)
            after = BaselineBuilder(
                deploy.after_start, deploy.after_end, min_chunk_calls=k, now=now
            )
            for w in windows:
                if w.window_start <= now:
                    if kept is None:
                        before.add_request(w)
                    after.add_request(w)
            return (kept if kept is not None else before.baselines()), after.baselines()

        return self.store.fold_request_windows(consume, since=since)


class _Fold:
    """One read of statement windows: into fresh builders, and collected for the kept ones by
    time range (they are fed once the read is done). Built anew if the read is retried."""

    def __init__(
        self,
        now: float,
        fresh: dict[str, BaselineBuilder],
        collect: dict[str, tuple[float, float]],
        seen_until: float | None,
    ) -> None:
        self.now = now
        self.fresh = fresh
        self.ranges = collect
        self.collected: dict[str, list[Point]] = {name: [] for name in collect}
        self.seen_until = seen_until  # fingerprints with a window before it were seen before
        self.seen: set[str] = set()

    def consume(self, windows: Iterator[StatementWindow]) -> _Fold:
        builders = list(self.fresh.values())
        ranges = [(lo, hi, self.collected[name]) for name, (lo, hi) in self.ranges.items()]
        now, seen_until = self.now, self.seen_until
        for w in windows:
            if w.calls <= 0 or w.window_start > now:
                continue
            if seen_until is not None and w.window_start < seen_until:
                self.seen.add(w.fingerprint)
            for b in builders:
                b.add_statement(w)
            for lo, hi, into in ranges:
                if lo <= w.window_start < hi:
                    into.append(statement_point(w))  # a window is 3x a point
        return self
