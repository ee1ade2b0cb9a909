"""`rustkm demo` takes the fastest lane (Debian's stock kernel) and falls back to the self-built
kernel when that lane cannot be prepared; a lane the user chose is never replaced."""

from __future__ import annotations

import pytest

from rustkm import demo
from rustkm.errors import RustkmError
from rustkm.project import find_project


@pytest.fixture
def prepared(monkeypatch):
    """The lanes the demo asked for, the stock one failing as a moved archive would."""
    asked: list[str] = []

    def prepare(lane, project, lock=None):
        asked.append(lane.name)
        if lane.stock:
            raise RustkmError("linux-image-7.2.13+deb14-amd64 has left the archive")
        return "toolchain", "kernel"

    monkeypatch.setattr(demo, "prepare_lane", prepare)
    monkeypatch.delenv("RUSTKM_KERNEL", raising=False)
    monkeypatch.delenv("RUSTKM_DEBUG_KERNEL", raising=False)
    return asked


def test_the_stock_lane_first_then_the_self_built_kernel(prepared, capsys):
    used, _, _ = demo._prepare(None, find_project())
    assert prepared == ["debian:latest", "default"] and used == "default"
    assert "has left the archive; using the self-built kernel instead" in capsys.readouterr().err


def test_a_lane_the_user_chose_is_kept(prepared, monkeypatch):
    with pytest.raises(RustkmError, match="left the archive"):
        demo._prepare("debian:latest", find_project())
    monkeypatch.setenv("RUSTKM_KERNEL", "debian:next")
    with pytest.raises(RustkmError, match="left the archive"):
        demo._prepare(None, find_project())
    assert prepared == ["debian:latest", "debian:next"]
