"""Explanations of options a .config lacks, on real Debian configs and real Kconfig excerpts."""

import gzip
from pathlib import Path

from rustkm.kernel.config import parse_config
from rustkm.kernel.explain import explain, explain_missing
from rustkm.kernel.kconfig import dependency, read_kconfig
from rustkm.kernel.kexpr import Y

DATA = Path(__file__).parent / "data"
LINUX_612 = DATA / "kconfig/linux-6.12"
LINUX_72 = DATA / "kconfig/linux-7.2"
DEBIAN_612 = parse_config(gzip.decompress(
    (DATA / "debian/config-6.12.107+deb13-amd64.gz").read_bytes()).decode())
DEBIAN_72 = parse_config(gzip.decompress(
    (DATA / "debian/config-7.2.13+deb14-amd64.gz").read_bytes()).decode())


def why(tree: Path, config: dict[str, str], **wanted: str) -> str:
    return "\n".join(explain(read_kconfig(tree), config, wanted))


def test_debian_13_stock_config_has_rust_off_because_of_modversions():
    text = why(LINUX_612, DEBIAN_612, RUST="y")
    first = text.splitlines()[0]
    assert first.startswith("RUST is n (wanted y): depends on HAVE_RUST && RUST_IS_AVAILABLE "
                            "&& !MODVERSIONS && ")
    unmet = first.split(", but ", 1)[1]
    assert "MODVERSIONS=y" in unmet
    # Debian built 6.12 without a Rust toolchain, so the probes are off too; HAVE_RUST is not blamed.
    assert "RUST_IS_AVAILABLE=n" in unmet and "HAVE_RUST" not in unmet
    assert "CALL_PADDING=y, RUSTC_VERSION=0 (so `RUSTC_VERSION >= 108100` is n)" in unmet
    assert first.endswith("[init/Kconfig:23]")


def test_7_2_names_the_gendwarfksyms_way_out_of_modversions():
    first = why(LINUX_72, DEBIAN_612, RUST="y").splitlines()[0]
    assert "(!MODVERSIONS || GENDWARFKSYMS)" in first
    assert first.endswith("but RUST_IS_AVAILABLE=n, MODVERSIONS=y, GENDWARFKSYMS=n "
                          "[init/Kconfig:23]")


def test_debian_7_2_config_meets_every_rust_dependency():
    kconfig = read_kconfig(LINUX_72)
    [rust] = kconfig.symbols["RUST"].definitions
    assert kconfig.evaluator(DEBIAN_72).value(dependency(rust)) == Y
    assert explain(kconfig, DEBIAN_72, {"RUST": "y", "MODULES": "y"}) == []


def test_probe_symbols_are_read_from_the_config_and_noted():
    text = why(LINUX_72, DEBIAN_612, RUST="y")
    assert "note: RUST_IS_AVAILABLE=n was measured by Kconfig " \
           "($(success,$(srctree)/scripts/rust_is_available.sh))" in text
    allowed = {**DEBIAN_612, "RUST_IS_AVAILABLE": "y", "MODVERSIONS": "n"}
    assert why(LINUX_72, allowed, RUST="y").startswith("RUST is n (wanted y): nothing in Kconfig")


def test_rustc_version_too_old_for_kasan_sw_tags_is_named():
    config = {"HAVE_RUST": "y", "RUST_IS_AVAILABLE": "y", "KASAN_SW_TAGS": "y",
              "RUSTC_VERSION": "108501", "KASAN": "y", "CC_IS_CLANG": "y"}
    assert "but KASAN_SW_TAGS=y, RUSTC_VERSION=108501 (so `RUSTC_VERSION >= 109600` is n)" in \
        why(LINUX_72, config, RUST="y")


def test_inherited_if_condition_is_named_with_where_it_comes_from():
    text = why(LINUX_72, {"MODULES": "n"}, MODULE_UNLOAD="y")
    assert text == ("MODULE_UNLOAD is n (wanted y): depends on MODULES (from `if MODULES` at "
                    "kernel/module/Kconfig:24), but MODULES=n [kernel/module/Kconfig:26]")


def test_only_the_unmet_inherited_conditions_are_shown():
    text = why(LINUX_72, {"MODULES": "y", "MODVERSIONS": "y"}, GENDWARFKSYMS="y")
    assert "from `if MODULES`" not in text
    assert text.endswith("but DEBUG_INFO=n [kernel/module/Kconfig:62]")


def test_a_select_that_forces_a_symbol_on_is_named():
    text = why(LINUX_72, DEBIAN_72, HAVE_RUST="n")
    assert text == ("HAVE_RUST is y (wanted n): forced by `select HAVE_RUST if X86_64` in X86 "
                    "(X86=y, X86_64=y) [arch/x86/Kconfig:7]")


def test_a_symbol_without_prompt_is_left_to_its_select_or_default():
    text = why(LINUX_72, DEBIAN_612, RUST_IS_AVAILABLE="y")
    assert text.startswith("RUST_IS_AVAILABLE is n (wanted y): it has no prompt, so only a "
                           "`select` or its default sets it; default $(success,")


def test_the_other_choice_member_is_named():
    config = {"MODULES": "y", "MODVERSIONS": "y", "GENDWARFKSYMS": "y", "DEBUG_INFO": "y"}
    assert why(LINUX_72, config, GENKSYMS="y") == (
        'GENKSYMS is n (wanted y): it is one of the choice "Module versioning implementation" '
        "(kernel/module/Kconfig:47), which took GENDWARFKSYMS=y")


def test_bool_wanted_as_module_and_unknown_symbols_are_plain_errors():
    text = why(LINUX_72, {}, MODVERSIONS="m", RUST_FOR_EVERYONE="y")
    assert "MODVERSIONS is bool, so it is y or n, never m" in text
    assert "RUST_FOR_EVERYONE is n (wanted y): linux-7.2's Kconfig has no symbol " \
           "RUST_FOR_EVERYONE" in text


def test_explain_missing_reads_the_tree_it_is_given():
    text = explain_missing(LINUX_612, DEBIAN_612, {"RUST": ("y", "n"), "MODULES": ("y", "y")})
    assert text.startswith("RUST is n (wanted y): depends on HAVE_RUST")
    assert "MODULES is" not in text


def test_a_number_probe_is_left_to_its_default():
    kconfig = read_kconfig(LINUX_72)
    [reason] = explain(kconfig, {}, {"PAHOLE_VERSION": "130"})
    assert reason == ("PAHOLE_VERSION is unset (wanted 130): it has no prompt, so only a `select` "
                      'or its default sets it; default "$(PAHOLE_VERSION)" [init/Kconfig:19]')
