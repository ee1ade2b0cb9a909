"""LKMPG dma in Rust: a synthetic platform device bound to a driver that sets a 32-bit DMA mask,
allocates a coherent buffer and maps a streaming one; all undone at rmmod."""

import re

import pytest

pytestmark = pytest.mark.rustkm(modules=["."])

DEVICE = "/sys/bus/platform/devices/lkmpg_dma_demo"
DRIVER = "/sys/bus/platform/drivers/lkmpg_dma_demo"
PROBED = (r"lkmpg_dma_demo lkmpg_dma_demo: coherent=0x([0-9a-f]+)/(\d+) "
          r"streaming=0x([0-9a-f]+)/(\d+) DMA mask=0x([0-9a-f]+)")


def probed(vm) -> tuple[int, int, int, int, int]:
    """The probe's log line since the ring buffer was last cleared, as numbers."""
    match = re.search(PROBED, vm.succeed("dmesg"))
    assert match, vm.succeed("dmesg")
    coherent, coherent_len, streaming, streaming_len, mask = match.groups()
    return int(coherent, 16), int(coherent_len), int(streaming, 16), int(streaming_len), \
        int(mask, 16)


def test_probe_allocates_and_maps_aligned_buffers_below_the_mask(vm):
    vm.insmod("dma")
    coherent, coherent_len, streaming, streaming_len, mask = probed(vm)
    assert mask == 2**32 - 1
    assert (coherent_len, streaming_len) == (4096, 4096)
    for address in (coherent, streaming):
        assert address % 4096 == 0 and address + 4096 - 1 <= mask
    # The device is bound to the driver.
    assert vm.succeed(f"readlink {DEVICE}/driver").strip().endswith("/lkmpg_dma_demo")


def test_sizes_are_parameters(vm):
    vm.insmod("dma", coherent_size=3 * 4096 + 1, streaming_size=20000)
    coherent, coherent_len, streaming, streaming_len, _ = probed(vm)
    assert (coherent_len, streaming_len) == (3 * 4096 + 1, 20000)
    assert coherent % 4096 == 0 and streaming % 4096 == 0


def test_rmmod_cleans_up_and_it_loads_again(vm):
    for _ in range(2):
        vm.succeed("dmesg -c > /dev/null")
        vm.insmod("dma")
        probed(vm)
        vm.rmmod("dma")
        assert "lkmpg_dma_demo lkmpg_dma_demo: DMA demo removed" in vm.succeed("dmesg")
        assert vm.run(f"test -e {DEVICE} || test -e {DRIVER}").status == 1
    assert "DMA-API" not in vm.console_log


@pytest.mark.parametrize("param", ["coherent_size=0", "streaming_size=0",
                                   "coherent_size=1048577", "streaming_size=4294967295"])
def test_bad_sizes_are_refused(vm, param):
    result = vm.run(f"insmod /lib/modules/rustkm/dma.ko {param}")
    assert result.status != 0 and "Invalid argument" in result.err
    assert vm.run(f"test -e {DEVICE}").status == 1
