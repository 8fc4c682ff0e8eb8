"""write_atomic: whole files or nothing, never over an input."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from fusionlab import io
from fusionlab.errors import FusionlabError
from fusionlab.io import write_atomic


def test_writes_text_and_bytes_and_replaces_whole(tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    assert write_atomic(out, "first\n") == out
    assert out.read_text() == "first\n"
    write_atomic(str(out), b"\x00second")
    assert out.read_bytes() == b"\x00second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan.json"]  # no temporary left


def test_a_failed_write_leaves_the_old_file_and_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "report.json"
    out.write_text("old\n")

    def disk_full(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(io.os, "replace", disk_full)
    with pytest.raises(FusionlabError, match=r"report\.json: cannot write \(No space left"):
        write_atomic(out, "new and longer\n" * 1000)
    assert out.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_an_interrupted_write_is_cleaned_up_and_re_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(path: str, mode: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(io.os, "chmod", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(tmp_path / "a.svg", "<svg/>")
    assert list(tmp_path.iterdir()) == []


def test_refuses_to_overwrite_a_protected_input(tmp_path: Path) -> None:
    model = tmp_path / "model.onnx"
    model.write_bytes(b"onnx bytes")
    with pytest.raises(FusionlabError, match="refusing to overwrite an input file"):
        write_atomic(model, "plan", protect=[model])
    # another spelling of the same file, and a link to it, are the same input
    spelled = tmp_path / "sub" / ".." / "model.onnx"
    (tmp_path / "sub").mkdir()
    with pytest.raises(FusionlabError, match="refusing"):
        write_atomic(spelled, "plan", protect=[str(model)])
    link = tmp_path / "link.onnx"
    link.symlink_to(model)
    with pytest.raises(FusionlabError, match="refusing"):
        write_atomic(link, "plan", protect=[model])
    hard = tmp_path / "hard.onnx"
    os.link(model, hard)
    with pytest.raises(FusionlabError, match="refusing"):
        write_atomic(model, "plan", protect=[hard])
    assert model.read_bytes() == b"onnx bytes"
    # an output beside the input is fine
    write_atomic(tmp_path / "model.plan.json", "{}", protect=[model])
    assert (tmp_path / "model.plan.json").read_text() == "{}"


def test_missing_folder_and_folder_target_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(FusionlabError, match="does not exist"):
        write_atomic(tmp_path / "nope" / "out.json", "{}")
    with pytest.raises(FusionlabError, match="is a folder"):
        write_atomic(tmp_path, "{}")


def test_new_files_get_the_usual_permissions_and_old_ones_keep_theirs(tmp_path: Path) -> None:
    old_mask = os.umask(0o022)
    try:
        fresh = write_atomic(tmp_path / "new.txt", "x")
        assert stat.S_IMODE(fresh.stat().st_mode) == 0o644
        kept = tmp_path / "script.sh"
        kept.write_text("old")
        kept.chmod(0o750)
        write_atomic(kept, "new")
        assert stat.S_IMODE(kept.stat().st_mode) == 0o750
    finally:
        os.umask(old_mask)
