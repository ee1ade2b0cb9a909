"""The module x lane table of `rustkm matrix`, and its exit status."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from rustkm.matrix import BAD, BUILT, FAILED, NOT_APPLICABLE, PASSED, Cell

_STYLE = {PASSED: "green", BUILT: "green", NOT_APPLICABLE: "dim", FAILED: "red"}


def print_table(cells: list[Cell], lanes: list[str]) -> int:
    """Print the table (on stdout); 1 if any cell failed, built with errors or could not run."""
    console = Console(highlight=False)  # stdout: the table is the command's result
    table = Table(title="rustkm matrix", show_lines=True)
    table.add_column("module")
    shown = [lane for lane in lanes if any(c.lane == lane for c in cells)]
    for lane in shown:
        table.add_column(lane, overflow="fold")
    by_cell = {(c.module, c.lane): c for c in cells}
    for module in sorted({c.module for c in cells}):
        row = [module]
        for lane in shown:
            cell = by_cell.get((module, lane))
            if cell is None:
                row.append("")  # another shard's
            else:
                style = _STYLE.get(cell.status, "bold red")
                row.append(f"[{style}]{_escape(cell.text())}[/]")
        table.add_row(*row)
    console.print(table)
    bad = [c for c in cells if c.status in BAD]
    console.print(f"{len(cells)} cell(s): {sum(c.status == PASSED for c in cells)} passed, "
                  f"{sum(c.status == BUILT for c in cells)} built only, "
                  f"{len(bad)} failed, {sum(c.status == NOT_APPLICABLE for c in cells)} "
                  "not applicable", highlight=False)
    return 1 if bad else 0


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
