"""Attributing kmemleak's report to modules already unloaded, on a real report from a debug-lane
guest (tests/data/kmemleak): vinput's global state kept its types' buffer after its unload,
allocated in vkbd's init through vinput_register. Once the modules are gone the kernel prints
their frames as bare addresses; where their sections were loaded names them."""

from __future__ import annotations

from pathlib import Path

from rustkm.leaks import Placed, attribute

REPORT = (Path(__file__).parent / "data" / "kmemleak" / "vinput-types.txt").read_text()
# As /sys/module/NAME/sections showed them before the unload (.text of vinput, .init.text of
# vkbd), with the sizes and a symbol from the .ko files.
VINPUT_TEXT = Placed("vinput", ".text", 0xFFFFFFFFA0000000, 0x8000,
                     ((0x3700, 0x100, "vinput_register"),))
VKBD_INIT = Placed("vkbd", ".init.text", 0xFFFFFFFFA0009000, 0x200, ())


def test_bare_frames_in_a_modules_sections_make_the_object_its_and_get_named():
    found = attribute(REPORT, ["vinput", "vkbd"], [VINPUT_TEXT, VKBD_INIT])
    assert found is not None and found.count("unreferenced object") == 1
    assert "0xffffffffa0003748 vinput_register+0x48 [vinput]" in found
    assert "0xffffffffa0009012 .init.text+0x12 [vkbd]" in found
    assert "krealloc_node_align_noprof" in found  # the kernel's own frames are kept


def test_objects_of_other_code_are_not_the_modules():
    elsewhere = Placed("printerfact", ".text", 0xFFFFFFFFC0000000, 0x8000, ())
    assert attribute(REPORT, ["printerfact"], [elsewhere]) is None
    assert attribute("", ["vinput"], [VINPUT_TEXT]) is None


def test_a_frame_the_kernel_could_still_name_counts_without_placements():
    named = REPORT.replace("0xffffffffa0003748", "vinput_register+0x48/0x1f0 [vinput]")
    assert attribute(named, ["vinput"], []) is not None
