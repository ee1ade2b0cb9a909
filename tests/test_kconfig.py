"""The Kconfig reader and its expressions, on real excerpts of Linux 6.12 and 7.2 (and on the
whole cached 7.2 tree when there is one)."""

from pathlib import Path

import pytest

from rustkm.cache import cache_root
from rustkm.errors import RustkmError
from rustkm.kernel.kconfig import dependency, read_kconfig
from rustkm.kernel.kexpr import And, Cmp, M, N, Not, Or, Sym, Y, parse_expr

DATA = Path(__file__).parent / "data"
LINUX_612 = DATA / "kconfig/linux-6.12"
LINUX_72 = DATA / "kconfig/linux-7.2"


def value(text: str, **config: str) -> int:
    return read_kconfig(LINUX_72).evaluator(config).value(parse_expr(text))


def own_depends(tree: Path, name: str) -> list[str]:
    [definition] = read_kconfig(tree).symbols[name].definitions
    return [c.text for c in definition.depends if c.origin is None]


def test_rust_entry_keeps_each_depends_on_line_of_7_2():
    assert own_depends(LINUX_72, "RUST") == [
        "HAVE_RUST", "RUST_IS_AVAILABLE", "!MODVERSIONS || GENDWARFKSYMS",
        "!GCC_PLUGIN_RANDSTRUCT", "!RANDSTRUCT",
        "!DEBUG_INFO_BTF || (PAHOLE_HAS_LANG_EXCLUDE && !LTO)",
        "!CFI || HAVE_CFI_ICALL_NORMALIZE_INTEGERS_RUSTC", "!KASAN || CC_IS_CLANG",
        "!KASAN_SW_TAGS || RUSTC_VERSION >= 109600"]


def test_rust_in_6_12_refuses_modversions_outright():
    assert "!MODVERSIONS" in own_depends(LINUX_612, "RUST")


def test_types_prompts_and_probe_defaults_are_recorded():
    kconfig = read_kconfig(LINUX_72)
    rust, probe, version = (kconfig.symbols[n] for n in ("RUST", "RUST_IS_AVAILABLE",
                                                         "RUSTC_VERSION"))
    assert (rust.type, rust.definitions[0].prompt) == ("bool", "Rust support")
    assert (probe.type, probe.definitions[0].prompt) == ("bool", None)
    assert probe.definitions[0].defaults[0].value_text == \
        "$(success,$(srctree)/scripts/rust_is_available.sh)"
    assert version.type == "int"
    assert rust.definitions[0].location == "init/Kconfig:23"


def test_if_blocks_pass_their_condition_to_every_entry_inside():
    kconfig = read_kconfig(LINUX_72)
    [unload] = kconfig.symbols["MODULE_UNLOAD"].definitions
    assert [(c.text, c.origin) for c in unload.depends] == [
        ("MODULES", "`if MODULES` at kernel/module/Kconfig:24")]
    [gendwarf] = kconfig.symbols["GENDWARFKSYMS"].definitions
    inherited = [c.text for c in gendwarf.depends if c.origin]
    assert inherited == ["MODULES", "MODVERSIONS"]


def test_choice_members_are_recorded_with_the_choice():
    kconfig = read_kconfig(LINUX_72)
    choice = kconfig.symbols["GENKSYMS"].definitions[0].choice
    assert choice is not None and choice.prompt == "Module versioning implementation"
    assert choice.members == ["GENKSYMS", "GENDWARFKSYMS"]
    assert kconfig.symbols["MODVERSIONS"].definitions[0].choice is None


def test_select_with_condition_is_recorded_on_the_selected_symbol():
    kconfig = read_kconfig(LINUX_72)
    [by_x86] = kconfig.symbols["HAVE_RUST"].selected_by
    assert (by_x86.by, by_x86.cond_text, by_x86.location) == ("X86", "X86_64",
                                                              "arch/x86/Kconfig:7")
    [by_rust] = kconfig.symbols["EXTENDED_MODVERSIONS"].selected_by
    assert (by_rust.by, by_rust.cond) == ("RUST", Sym("MODVERSIONS"))


def test_expressions_parse_with_kconfig_precedence():
    assert parse_expr("A || B && !C") == Or((Sym("A"), And((Sym("B"), Not(Sym("C"))))))
    assert parse_expr("!(A && B) || C >= 10") == Or((Not(And((Sym("A"), Sym("B")))),
                                                     Cmp(">=", Sym("C"), Sym("10"))))
    assert str(parse_expr("!DEBUG_INFO_BTF || (PAHOLE_HAS_LANG_EXCLUDE && !LTO)")) == \
        "!DEBUG_INFO_BTF || (PAHOLE_HAS_LANG_EXCLUDE && !LTO)"


def test_tristate_logic_takes_min_for_and_max_for_or():
    assert value("A && B", A="y", B="m") == M
    assert value("A || B", A="n", B="m") == M
    assert value("!A", A="m") == M
    assert value("!A", A="y") == N
    assert value("UNSET || y") == Y


def test_comparisons_are_numeric_for_numbers_and_textual_otherwise():
    assert value("RUSTC_VERSION >= 109600", RUSTC_VERSION="109701") == Y
    assert value("RUSTC_VERSION >= 109600", RUSTC_VERSION="108501") == N
    assert value("PAHOLE_VERSION < 128 || PAHOLE_VERSION > 129", PAHOLE_VERSION="128") == N
    assert value('S = "abc"', S='"abc"') == Y
    assert value("A != n", A="m") == Y
    assert value("RUSTC_VERSION >= 1") == N  # an int with unmet dependencies is "", not a number


def test_conditional_depends_on_limits_only_where_its_if_holds(tmp_path):
    (tmp_path / "Kconfig").write_text(
        "config CDNS\n\ttristate \"x\"\n\tdepends on USB if !USB_GADGET\n")
    [d] = read_kconfig(tmp_path).symbols["CDNS"].definitions
    evaluate = read_kconfig(tmp_path).evaluator
    assert evaluate({"USB_GADGET": "y"}).value(dependency(d)) == Y
    assert evaluate({}).value(dependency(d)) == N


def test_sources_follow_srcarch_rsource_osource_and_absolute_paths(tmp_path):
    (tmp_path / "arch/x86").mkdir(parents=True)
    (tmp_path / "drivers").mkdir()
    (tmp_path / "Kconfig").write_text(
        'source "arch/$(SRCARCH)/Kconfig"\nosource "missing/Kconfig"\n'
        f'source "{tmp_path}/drivers/Kconfig"\nsource "$(srctree)/drivers/Kconfig.more"\n')
    (tmp_path / "arch/x86/Kconfig").write_text('rsource "Kconfig.cpu"\n')
    (tmp_path / "arch/x86/Kconfig.cpu").write_text("config X86_CPU\n\tbool\n")
    (tmp_path / "drivers/Kconfig").write_text("menu \"Drivers\"\n\tdepends on X86_CPU\n"
                                              "config DRV\n\ttristate \"drv\" if EXPERT\n"
                                              "endmenu\n")
    (tmp_path / "drivers/Kconfig.more").write_text("config MORE\n\tdef_bool y\n")
    kconfig = read_kconfig(tmp_path)
    assert {"X86_CPU", "DRV", "MORE"} <= kconfig.symbols.keys()
    [drv] = kconfig.symbols["DRV"].definitions
    assert [(c.text, c.origin) for c in drv.depends] == [
        ("X86_CPU", 'menu "Drivers" at drivers/Kconfig:2')]
    assert [c.text for c in drv.prompt_if] == ["EXPERT"]


def test_a_missing_source_and_an_unclosed_block_are_errors(tmp_path):
    (tmp_path / "Kconfig").write_text('source "nope/Kconfig"\n')
    with pytest.raises(RustkmError, match="Kconfig:1: source nope/Kconfig: no such file"):
        read_kconfig(tmp_path)
    (tmp_path / "Kconfig").write_text("if FOO\nconfig BAR\n\tbool\n")
    with pytest.raises(RustkmError, match="`if` block is never closed"):
        read_kconfig(tmp_path)
    with pytest.raises(RustkmError, match="not a Linux source tree"):
        read_kconfig(tmp_path / "nowhere")


def test_help_text_that_looks_like_keywords_is_skipped(tmp_path):
    (tmp_path / "Kconfig").write_text(
        "config A\n\tbool \"a\"\n\thelp\n\t  config NOT_A_SYMBOL\n\t  depends on NOPE\n\n"
        "\t  if unsure, say N.\nconfig B\n\tbool\n")
    assert set(read_kconfig(tmp_path).symbols) == {"A", "B"}


def _cached_7_2_tree() -> Path | None:
    trees = sorted((cache_root() / "store/src").glob("linux-7.2.*[0-9]"))
    return next((t for t in trees if (t / "Kconfig").is_file()), None)


def test_the_whole_cached_7_2_tree_parses():
    # Its speed (about 0.6 s) is a figure for bench/, not a timed assertion that can flake.
    tree = _cached_7_2_tree()
    if tree is None:
        pytest.skip("no Linux 7.2 tree in the rustkm cache (rustkm kernel build fetches one)")
    kconfig = read_kconfig(tree)
    assert kconfig.files > 1500 and len(kconfig.symbols) > 15000
    assert "!MODVERSIONS || GENDWARFKSYMS" in own_depends(tree, "RUST")
    for sym in kconfig.symbols.values():  # every expression of the tree parses
        for d in sym.definitions:
            for c in [*d.depends, *d.prompt_if]:
                assert c.expr is not None
