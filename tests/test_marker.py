"""The rustkm marker's options are checked: a bad value is a usage error naming the option."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


@pytest.mark.parametrize("value", ['"soon"', "0", "True", "2.5"])
def test_a_bad_hung_task_time_is_a_usage_error(rustkm_kernel, tmp_path, value):
    test = tmp_path / "test_bad_marker.py"
    test.write_text("import pytest\n\n\n"
                    f"@pytest.mark.rustkm(hung_task_seconds={value})\n"
                    "def test_it(vm):\n    vm.succeed('true')\n")
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-p", "no:xdist", str(test)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode != 0
    assert "hung_task_seconds= takes a whole number of seconds, 1 or more" in done.stdout
