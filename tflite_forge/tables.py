"""Tables for people and for logs: a rich table on a terminal, one line per row anywhere else.

Off a terminal (a pipe, a file, a CI log) a rich table is folded into 80 columns and splits words
across lines. There every table prints its title on a line of its own, then one line per row,

    check=cache dir | status=ok | detail=/var/cache/tflite-forge writable

(empty cells left out), then its caption; lines are never wrapped, markup is never read, a line
break inside a cell becomes ", ". Colour is for the terminal only: a cell is plain text, or
`Styled(text, style)` when the table should colour it.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Sequence, TextIO, Union

from rich.console import Console
from rich.table import Table
from rich.text import Text


@dataclass(frozen=True)
class Styled:
    """A cell's text and the rich style it gets in a terminal table (logs get the text alone)."""
    text: str
    style: str = ""


Cell = Union[str, Styled]


def console_for(out: Console | TextIO | None = None) -> Console:
    """A Console as given, or one writing to the stream (stdout when None)."""
    return out if isinstance(out, Console) else Console(file=out or sys.stdout)


def _text(cell: Cell) -> str:
    return cell.text if isinstance(cell, Styled) else str(cell)


def _one_line(value: str) -> str:
    return ", ".join(part.strip() for part in value.splitlines() if part.strip())


def rich_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Cell]], caption: str | None = None) -> Table:
    """The terminal form. Titles and cells are Text, so a "[...]" in a value is shown, not parsed."""
    table = Table(title=Text(title), caption=Text(caption) if caption else None,
                  title_justify="left", caption_justify="left")
    for col in columns:
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*(Text(cell.text, style=cell.style) if isinstance(cell, Styled) else Text(str(cell))
                        for cell in row))
    return table


def plain_lines(title: str, columns: Sequence[str], rows: Sequence[Sequence[Cell]], caption: str | None = None) -> list[str]:
    """The log form: the title, `col=value | col=value` per row (empty cells left out), the caption."""
    lines = [_one_line(title)]
    for row in rows:
        cells = [(col, _one_line(_text(cell))) for col, cell in zip(columns, row)]
        lines.append(" | ".join(f"{col}={value}" for col, value in cells if value))
    if caption:
        lines.append(_one_line(caption))
    return lines


def print_table(out: Console | TextIO | None, title: str, columns: Sequence[str], rows: Sequence[Sequence[Cell]],
                caption: str | None = None) -> None:
    """Print a table to a Console or a stream: rich on a terminal, one line per row otherwise."""
    console = console_for(out)
    if console.is_terminal:
        console.print(rich_table(title, columns, rows, caption))
        return
    for line in plain_lines(title, columns, rows, caption):
        console.print(line, markup=False, highlight=False, emoji=False, soft_wrap=True)
