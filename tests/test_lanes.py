"""Lanes: names resolved the same everywhere, project lanes checked, declared exceptions."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rustkm.errors import RustkmError
from rustkm.kernel.choice import LaneChoice
from rustkm.kernel.config import parse_config
from rustkm.kernel.lane import resolve_lane, resolve_lanes
from rustkm.module_file import module_lane_skip
from rustkm.project import Project, find_project

ROOT = Path(__file__).parents[1]


def project_with(tmp_path: Path, toml: str) -> Project:
    (tmp_path / "rustkm.toml").write_text(textwrap.dedent(toml))
    return find_project(tmp_path)


def test_built_in_lanes(tmp_path):
    project = Project(root=tmp_path)
    assert resolve_lane("default", project).kind == "self-built"
    assert resolve_lane("debug", project).debug
    for stock in ("debian:latest", "debian:next", "debian:7.2.13+deb14-amd64", "debian:7.3-amd64"):
        assert resolve_lane(stock, project).stock == stock
    with pytest.raises(RustkmError, match="unknown kernel 'debian:lates'") as caught:
        resolve_lane("debian:lates", project, "--kernel")
    assert caught.value.hint is not None and "debian:next" in caught.value.hint


def test_the_kernel_tests_lane_adds_the_kernels_rust_suites(tmp_path):
    project = Project(root=tmp_path)
    lane = resolve_lane("kernel-tests", project)
    assert lane.kind == "self-built" and not lane.debug
    options = {}
    for fragment in lane.fragment_list():
        options.update(parse_config(fragment.text))
    assert options["RUST_KERNEL_DOCTESTS"] == "y"
    assert options["RUST_KUNIT_TESTS"] == "y" and options["KUNIT"] == "y"


def test_several_lanes_each_once_in_order(tmp_path):
    project = Project(root=tmp_path)
    names = [lane.name for lane in resolve_lanes("debian:next,default,debian:next", project)]
    assert names == ["debian:next", "default"]
    with pytest.raises(RustkmError, match="empty lane name"):
        resolve_lanes("default,,debug", project)


def test_project_lanes_carry_the_projects_kernel(tmp_path):
    project = project_with(tmp_path, """
        [kernel]
        fragments = ["base.config"]
        [lanes.v73]
        source = "debian:7.3"
        fragments = ["more.config"]
        debug = true
    """)
    lane = resolve_lane("v73", project)
    assert lane.source == "debian:7.3" and lane.debug and lane.name == "v73"
    assert lane.fragments == (str(tmp_path / "base.config"), str(tmp_path / "more.config"))
    assert resolve_lane("default", project).fragments == (str(tmp_path / "base.config"),)
    # A command's --fragment comes beside the lane's own, never instead of them.
    extra = lane.with_options(fragments=(str(tmp_path / "x.config"),))
    assert extra.fragments == (*lane.fragments, str(tmp_path / "x.config"))
    assert resolve_lane("debian:next", project).stock == "debian:next"


@pytest.mark.parametrize("toml, message", [
    ("[lanes.v73]\nsorce = 'debian:7.3'\n", "unknown key lanes.v73.sorce"),
    ("[lanes.default]\nsource = 'debian:7.3'\n", "not a name a lane can have"),
    ("[lanes.x]\ndebug = 'yes'\n", "lanes.x.debug must be true or false"),
    ("[lanes.x]\nsource = 'debian:seven'\n", "bad kernel source"),
    ("lanes = 3\n", "lanes must be a table"),
])
def test_bad_project_lanes_are_refused(tmp_path, toml, message):
    with pytest.raises(RustkmError, match=message):
        project_with(tmp_path, toml)


def test_a_build_folder_is_a_lane_only_when_rustkm_built_it(tmp_path):
    project = Project(root=tmp_path)
    (tmp_path / "build").mkdir()
    with pytest.raises(RustkmError, match="not a kernel folder rustkm built"):
        resolve_lane(str(tmp_path / "build"), project)
    (tmp_path / "build" / "rustkm-build.json").write_text("{}")
    assert resolve_lane(str(tmp_path / "build"), project).build_dir == tmp_path / "build"


def test_the_debug_lane_is_not_a_stock_kernel(tmp_path, monkeypatch):
    monkeypatch.setenv("RUSTKM_KERNEL", "debian:latest")
    monkeypatch.setenv("RUSTKM_DEBUG_KERNEL", "1")
    with pytest.raises(RustkmError, match="the debug lane is a self-built kernel"):
        LaneChoice.ask().lane(Project(root=tmp_path))
    monkeypatch.delenv("RUSTKM_KERNEL")
    assert LaneChoice.ask().lane(Project(root=tmp_path)).name == "debug"


def test_the_environment_is_read_when_asking_and_the_options_come_first(tmp_path, monkeypatch):
    project = Project(root=tmp_path)
    monkeypatch.setenv("RUSTKM_KERNEL", "debian:next")
    choice = LaneChoice.ask()
    assert (choice.name, choice.origin) == ("debian:next", "RUSTKM_KERNEL")
    assert LaneChoice.ask("default").lane(project).name == "default"
    monkeypatch.delenv("RUSTKM_KERNEL")
    # A choice made is not changed by the environment afterwards.
    assert choice.lane(project).name == "debian:next"
    # An empty name names nothing: the environment chooses.
    monkeypatch.setenv("RUSTKM_KERNEL", "debian:next")
    assert LaneChoice.ask("").lane(project).name == "debian:next"
    monkeypatch.delenv("RUSTKM_KERNEL")
    # rustkm fuzz and rustkm debug: the debug lane when nothing names one.
    assert LaneChoice.ask(fallback="debug").lane(project).name == "debug"
    assert LaneChoice.ask("default", fallback="debug").lane(project).name == "default"


def test_a_module_declares_where_it_does_not_apply(tmp_path):
    (tmp_path / "rustkm-module.toml").write_text(
        '[lanes]\nskip = { "debian:*" = "needs CONFIG_KUNIT" }\n')
    assert module_lane_skip(tmp_path, "debian:next") == "needs CONFIG_KUNIT"
    assert module_lane_skip(tmp_path, "default") == ""
    # A pattern with ! skips the lanes it does not match: an arm64-only module.
    (tmp_path / "rustkm-module.toml").write_text(
        '[lanes]\nskip = { "!*@arm64" = "needs a device tree" }\n')
    assert module_lane_skip(tmp_path, "default") == "needs a device tree"
    assert module_lane_skip(tmp_path, "debian:latest") == "needs a device tree"
    assert module_lane_skip(tmp_path, "debian:latest@arm64") == ""
    (tmp_path / "rustkm-module.toml").write_text("[lane]\n")
    with pytest.raises(RustkmError, match="only \\[lanes\\] skip"):
        module_lane_skip(tmp_path, "default")


def test_the_cli_and_pytest_refuse_an_unknown_lane():
    for argv in (["-m", "rustkm.cli", "build", "--kernel", "nope", "kmods/printerfact"],
                 ["-m", "pytest", "-q", "--co", "--rustkm-kernel", "default,nope",
                  "kmods/printerfact"]):
        done = subprocess.run([sys.executable, *argv], cwd=ROOT, capture_output=True,
                              text=True, timeout=120, check=False)
        assert done.returncode != 0
        assert "unknown kernel 'nope'" in done.stdout + done.stderr, argv
