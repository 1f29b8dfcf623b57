"""The one atomic file writer: a reader sees the old file or the new one, never half of either."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from querywatch.atomic import write_atomic


def test_replaces_content_and_keeps_permissions(tmp_path: Path) -> None:
    target = tmp_path / "baseline.json"
    target.write_text("old\n")
    target.chmod(0o640)
    write_atomic(target, "new\n")
    assert target.read_text() == "new\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["baseline.json"]  # no temporary left


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "postmortem.md"
    target.write_text("kept\n")
    with pytest.raises(UnicodeEncodeError):
        write_atomic(target, "half \udc80 written")  # a lone surrogate cannot be encoded
    assert target.read_text() == "kept\n"
    assert [p.name for p in tmp_path.iterdir()] == ["postmortem.md"]


def test_new_file_in_new_folders_follows_the_umask(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "run.json"
    old = os.umask(0o027)
    try:
        write_atomic(target, "{}\n", make_parents=True)
    finally:
        os.umask(old)
    assert target.read_text() == "{}\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640


def test_missing_folder_is_an_os_error_without_make_parents(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        write_atomic(tmp_path / "nowhere" / "x.md", "x")
