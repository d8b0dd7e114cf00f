"""TOML reading with errors that name the file; schema helpers shared by every data file.

tomllib already refuses duplicate keys (TOML forbids them), so a recipe can never
silently keep one of two values. On top of that, `check_keys` refuses unknown keys
with a "Perhaps you meant" hint, the way cibuildwheel treats its options.
"""

from __future__ import annotations

import difflib
import sys
from pathlib import Path
from typing import Any, Iterable

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from .errors import RecipeError


def load_toml(path: Path, *, error: type[Exception] = RecipeError) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except IsADirectoryError:
        raise error(f"{path}: is a folder, not a TOML file; pass the .toml file itself "
                    f"(e.g. {Path(path) / 'tensorflow-<version>.toml'})") from None
    except PermissionError:
        raise error(f"{path}: permission denied; make it readable (chmod u+r) or pass another file") from None
    except OSError as exc:
        raise error(f"{path}: cannot read ({exc.strerror or exc}); check the path and pass a readable .toml file") from None
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{path}: not valid TOML ({exc}); fix the syntax at that line") from None
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text (byte {exc.start}); TOML files must be UTF-8, re-save it as UTF-8") from None


def check_keys(path: Path, where: str, table: dict[str, Any], allowed: Iterable[str],
               *, error: type[Exception] = RecipeError) -> None:
    allowed = list(allowed)
    for key in table:
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f"; perhaps you meant {close[0]!r}" if close else f"; allowed keys: {', '.join(allowed)}"
            raise error(f"{path}: {where}: unknown key {key!r}{hint}")


def expect(path: Path, where: str, value: Any, kind: type | tuple[type, ...], what: str,
           *, error: type[Exception] = RecipeError) -> Any:
    # bool is an int in Python; never accept it where a number or string is meant.
    if isinstance(value, bool) and kind is not bool and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise error(f"{path}: {where}: expected {what}, got {value!r}")
    if not isinstance(value, kind):
        raise error(f"{path}: {where}: expected {what}, got {type(value).__name__} {value!r}")
    return value


def require(path: Path, where: str, table: dict[str, Any], key: str, kind, what: str,
            *, error: type[Exception] = RecipeError) -> Any:
    if key not in table:
        raise error(f"{path}: {where}.{key}: missing; expected {what}")
    return expect(path, f"{where}.{key}", table[key], kind, what, error=error)
