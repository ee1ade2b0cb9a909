"""rustkm matrix: cells planned and sharded deterministically, JUnit and rustc read back, shards
merged; and for real, a module that builds and passes beside one that does not compile."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rustkm.errors import RustkmError
from rustkm.matrix import (
    BUILD_ERROR,
    BUILT,
    NOT_APPLICABLE,
    PASSED,
    Cell,
    first_build_error,
    merge,
    parse_shard,
    plan,
    read_junit,
    to_json,
)

ROOT = Path(__file__).parents[1]


def test_shards_split_the_cells_once_each():
    modules, lanes = ["a", "b", "c"], ["default", "debian:next"]
    every = [(c.module, c.lane) for c in plan(modules, lanes)]
    assert every[:3] == [("a", "default"), ("b", "default"), ("c", "default")]
    shares = [[(c.module, c.lane) for c in plan(modules, lanes, (k, 4))] for k in range(1, 5)]
    assert sorted(cell for share in shares for cell in share) == sorted(every)
    assert shares == [[(c.module, c.lane) for c in plan(modules, lanes, (k, 4))]
                      for k in range(1, 5)]  # the same split every time
    for bad in ("0/2", "3/2", "x", "1/0"):
        with pytest.raises(RustkmError, match="not K/N"):
            parse_shard(bad)


def test_junit_counts_and_the_first_failure(tmp_path):
    (tmp_path / "test_x.py").write_text(
        "import pytest\n"
        "def test_ok(): pass\n"
        "def test_bad(): assert 1 == 2, 'one is not two'\n"
        "@pytest.mark.skip(reason='no')\n"
        "def test_skipped(): pass\n")
    junit = tmp_path / "junit.xml"
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:rustkm", "-p",
                    "no:cacheprovider", f"--junitxml={junit}", str(tmp_path / "test_x.py")],
                   cwd=tmp_path, capture_output=True, check=False)
    passed, failed, skipped, first = read_junit(junit)
    assert (passed, failed, skipped) == (1, 1, 1)
    assert first.startswith("test_bad: AssertionError: one is not two")


def test_shards_merge_into_one_table(tmp_path):
    lanes = ["default", "debian:next"]
    cells = plan(["a", "b"], lanes)
    for cell in cells:
        cell.status, cell.passed = PASSED, 3
    for k in (1, 2):
        (tmp_path / f"{k}.json").write_text(to_json(cells[k - 1::2], lanes, (k, 2)))
    merged, merged_lanes = merge([tmp_path / "1.json", tmp_path / "2.json"])
    assert merged_lanes == lanes
    assert sorted((c.module, c.lane) for c in merged) == sorted((c.module, c.lane) for c in cells)
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(RustkmError, match="not a rustkm matrix JSON"):
        merge([tmp_path / "bad.json"])


def _project_with(tmp_path: Path, *modules: str) -> None:
    """A project in tmp_path: rustkm's own settings and lock, kmods/lib and copies of
    `modules` (kmods/NAME folders) without their tests."""
    for module in modules:
        shutil.copytree(ROOT / "kmods" / module, tmp_path / "kmods" / module,
                        ignore=shutil.ignore_patterns("test_*.py", "__pycache__"))
    shutil.copytree(ROOT / "kmods" / "lib", tmp_path / "kmods" / "lib")
    (tmp_path / "rustkm.toml").write_text((ROOT / "rustkm.toml").read_text().replace(
        '"kmods/lkmpg/kernel.config"', f'"{ROOT}/kmods/lkmpg/kernel.config"'))
    shutil.copy(ROOT / "rustkm.lock", tmp_path / "rustkm.lock")


def test_build_only_over_a_tree_of_modules(tmp_path):
    _project_with(tmp_path, "printerfact", "sysctl")
    (tmp_path / "kmods" / "sysctl" / "rustkm-module.toml").write_text(
        '[lanes]\nskip = { "def*" = "not for this kernel" }\n')
    out = tmp_path / "matrix.json"
    done = subprocess.run([sys.executable, "-m", "rustkm.cli", "matrix", "kmods", "--lanes",
                           "default", "--build-only", "--json", str(out)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    cells = {c["module"]: Cell(**c) for c in json.loads(out.read_text())["cells"]}
    assert sorted(cells) == ["kmods/printerfact", "kmods/sysctl"]  # kmods/lib has no Kbuild
    assert cells["kmods/printerfact"].status == BUILT
    assert cells["kmods/sysctl"].status == NOT_APPLICABLE
    assert cells["kmods/sysctl"].detail == "not for this kernel"
    assert "1 built only" in done.stdout and "1 not applicable" in done.stdout


def test_a_build_error_and_a_passing_module_on_one_lane(tmp_path):
    _project_with(tmp_path, "printerfact")
    broken = tmp_path / "kmods" / "broken"
    (tmp_path / "kmods" / "printerfact").rename(broken)
    source = broken / "printerfact.rs"
    source.write_text(source.read_text().replace("fn init(", "fn init(undeclared: Nope, ", 1))
    out = tmp_path / "matrix.json"
    done = subprocess.run([sys.executable, "-m", "rustkm.cli", "matrix", "kmods/broken",
                           str(ROOT / "kmods" / "sysctl"), "--lanes", "default",
                           "--json", str(out)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=900, check=False)
    assert done.returncode == 1, done.stdout + done.stderr
    cells = {c["module"]: Cell(**c) for c in json.loads(out.read_text())["cells"]}
    assert cells["kmods/broken"].status == BUILD_ERROR
    assert "printerfact.rs:" in cells["kmods/broken"].detail, cells["kmods/broken"]
    assert "error" in first_build_error(cells["kmods/broken"].detail)
    sysctl = next(c for name, c in cells.items() if name.endswith("sysctl"))
    assert sysctl.status == PASSED and sysctl.passed > 5
    assert "build error" in done.stdout and "passed (" in done.stdout
