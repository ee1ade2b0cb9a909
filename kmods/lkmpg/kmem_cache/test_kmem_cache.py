"""LKMPG kmem_cache in Rust: the original's log, the cache in /proc/slabinfo and
/sys/kernel/slab with its objects, and destroyed without objects remaining at unload."""

import re

import pytest

pytestmark = pytest.mark.rustkm(modules=["."])

CACHE = "my_custom_cache"


def slabinfo(vm) -> dict[str, list[str]]:
    """/proc/slabinfo's rows by cache name: active_objs num_objs objsize objperslab ..."""
    rows = vm.succeed("cat /proc/slabinfo").splitlines()[2:]
    return {row.split()[0]: row.split()[1:] for row in rows}


def test_log_and_the_cache_in_slabinfo_and_sysfs(vm):
    vm.insmod("kmem_cache")
    for line in ["Initializing module", "Allocated obj1 (id: 1)", "Allocated obj2 (id: 2)"]:
        vm.wait_for_console_text(re.escape(f"kmem_cache: kmem_cache_example: {line}"))
    active, total, objsize = (int(n) for n in slabinfo(vm)[CACHE][:3])
    # The slab's object size: 36 bytes rounded up to a cache line (SLAB_HWCACHE_ALIGN).
    assert objsize % 64 == 0 and total >= active >= 2
    # Its own cache (not merged into another), for 36-byte objects, cache-line aligned.
    sysfs = f"/sys/kernel/slab/{CACHE}"
    assert vm.succeed(f"test -d {sysfs} && ! test -L {sysfs} && cat {sysfs}/object_size") == "36\n"
    assert vm.succeed(f"cat {sysfs}/align") == "64\n"


def test_allocations_show_and_unload_destroys_the_cache(vm):
    for _ in range(2):  # and load again
        vm.insmod("kmem_cache", objects=5000)
        vm.wait_for_console_text("kmem_cache_example: Allocated 4998 more objects")
        active, total = (int(n) for n in slabinfo(vm)[CACHE][:2])
        assert total >= active >= 5000
        vm.rmmod("kmem_cache")
        vm.wait_for_console_text("kmem_cache_example: Cleaned up and exited")
        assert CACHE not in slabinfo(vm)
        assert vm.run(f"test -e /sys/kernel/slab/{CACHE}").status == 1
    assert "objects remaining" not in vm.console_log
    assert "kmem_cache_destroy" not in vm.console_log


def test_bad_object_counts_are_refused_and_leave_no_cache(vm):
    for bad in (0, -1, 100_001):
        result = vm.run(f"insmod /lib/modules/rustkm/kmem_cache.ko objects={bad}")
        assert result.status != 0 and "Invalid argument" in result.err
    assert CACHE not in slabinfo(vm)
    vm.insmod("kmem_cache")
    assert CACHE in slabinfo(vm)
