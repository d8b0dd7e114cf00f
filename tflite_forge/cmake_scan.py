"""Read configure-time download declarations out of CMake files, without running CMake.

A small reader for the CMake language (comments, bracket comments, quoted and bracket arguments,
escapes, nested parentheses, multi-line commands) turns a file into commands; `declarations()`
then picks `OverridableFetchContent_Declare`, `FetchContent_Declare` and `ExternalProject_Add`
calls that download something (URL or GIT_REPOSITORY) at the top level of the file. Calls inside
function()/macro() bodies are definitions, not downloads, and are ignored. `${VAR}` is resolved
from plain `set(VAR value)` earlier in the same file, from variables the caller presets (the lock
passes TF_SOURCE_DIR), and from TFLite's own helpers that read a pin out of a Bazel file in the
tree (`get_dependency_archive`, `get_dependency_tag` in tools/cmake/modules/utils.cmake); anything
else is an error naming file and line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .errors import LockError

DECLARE_COMMANDS = {"overridablefetchcontent_declare": "fetchcontent", "fetchcontent_declare": "fetchcontent",
                    "externalproject_add": "externalproject"}
# Option keywords of ExternalProject_Add / FetchContent_Declare (and TF's LICENSE_FILE); a value
# equal to one of these starts a new option. Prefixes cover the families (LOG_*, GIT_*, ...).
KEYWORDS = {"PREFIX", "TMP_DIR", "STAMP_DIR", "LOG_DIR", "DOWNLOAD_DIR", "SOURCE_DIR", "BINARY_DIR",
            "INSTALL_DIR", "URL", "URL_HASH", "URL_MD5", "TIMEOUT", "INACTIVITY_TIMEOUT", "NETRC", "NETRC_FILE",
            "SOURCE_SUBDIR", "DEPENDS", "EXCLUDE_FROM_ALL", "STEP_TARGETS", "INDEPENDENT_STEP_TARGETS",
            "LIST_SEPARATOR", "COMMAND", "FIND_PACKAGE_ARGS", "OVERRIDE_FIND_PACKAGE", "SYSTEM", "LICENSE_FILE",
            "EXCLUDE_FROM_ALL", "PATCH_COMMAND", "LICENSE_URL"}
KEYWORD_PREFIXES = ("GIT_", "SVN_", "HG_", "CVS_", "LOG_", "USES_TERMINAL_", "DOWNLOAD_", "UPDATE_", "BUILD_",
                    "INSTALL_", "TEST_", "CONFIGURE_", "CMAKE_", "TLS_", "HTTP_")

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BRACKET_OPEN = re.compile(r"\[(=*)\[")
_VAR = re.compile(r"\$\{([A-Za-z0-9_./+-]+)\}")


@dataclass(frozen=True)
class Arg:
    value: str
    quoted: bool
    line: int


@dataclass(frozen=True)
class Command:
    name: str  # lower-case
    args: tuple[Arg, ...]
    line: int


@dataclass(frozen=True)
class Declaration:
    name: str            # as declared
    kind: str            # "fetchcontent" or "externalproject"
    urls: tuple[str, ...]
    url_hash: tuple[str, str] | None   # (algorithm upper-case, hex lower-case)
    git_repository: str | None
    git_tag: str | None
    file: str            # path relative to the tree that declares it
    line: int


class _Reader:
    def __init__(self, text: str, where: str):
        self.s, self.i, self.line, self.where = text, 0, 1, where

    def error(self, what: str, line: int | None = None) -> LockError:
        return LockError(f"{self.where}:{line or self.line}: {what}; cannot read this CMake file")

    def _advance(self, n: int) -> str:
        chunk = self.s[self.i:self.i + n]
        self.line += chunk.count("\n")
        self.i += n
        return chunk

    def _bracket(self) -> str | None:
        m = _BRACKET_OPEN.match(self.s, self.i)
        if not m:
            return None
        start = self.line
        close = "]" + m.group(1) + "]"
        end = self.s.find(close, m.end())
        if end < 0:
            raise self.error("unterminated bracket argument or comment", start)
        self._advance(m.end() - self.i)
        body = self._advance(end - self.i)
        self._advance(len(close))
        return body[1:] if body.startswith("\n") else body

    def _comment(self) -> None:
        self._advance(1)  # '#'
        if self._bracket() is not None:
            return
        end = self.s.find("\n", self.i)
        self._advance((end if end >= 0 else len(self.s)) - self.i)

    def _quoted(self) -> str:
        start = self.line
        self._advance(1)
        out = []
        while self.i < len(self.s):
            c = self.s[self.i]
            if c == '"':
                self._advance(1)
                return "".join(out)
            if c == "\\":
                nxt = self.s[self.i + 1:self.i + 2]
                self._advance(2)
                out.append({"n": "\n", "t": "\t", "r": "\r", ";": ";", "\n": ""}.get(nxt, nxt))
                continue
            out.append(self._advance(1))
        raise self.error("unterminated quoted argument", start)

    def _unquoted(self) -> str:
        out = []
        depth = 0  # ${...} may hold characters that would otherwise end the argument
        while self.i < len(self.s):
            c = self.s[self.i]
            if c == "$" and self.s.startswith("${", self.i):
                depth += 1
                out.append(self._advance(2))
                continue
            if c == "}" and depth:
                depth -= 1
            elif not depth and (c.isspace() or c in '()#"'):
                break
            if c == "\\":
                nxt = self.s[self.i + 1:self.i + 2]
                self._advance(2)
                out.append({"n": "\n", "t": "\t", "r": "\r"}.get(nxt, nxt))
                continue
            out.append(self._advance(1))
        return "".join(out)

    def commands(self) -> list[Command]:
        cmds = []
        while self.i < len(self.s):
            c = self.s[self.i]
            if c.isspace():
                self._advance(1)
            elif c == "#":
                self._comment()
            else:
                m = _IDENT.match(self.s, self.i)
                if not m:
                    raise self.error(f"unexpected {c!r}")
                line = self.line
                self._advance(m.end() - self.i)
                while self.i < len(self.s) and self.s[self.i] in " \t":
                    self._advance(1)
                if not self.s.startswith("(", self.i):
                    raise self.error(f"expected '(' after {m.group(0)}", line)
                self._advance(1)
                cmds.append(Command(m.group(0).lower(), tuple(self._args(line)), line))
        return cmds

    def _args(self, start: int) -> list[Arg]:
        args: list[Arg] = []
        depth = 0
        while self.i < len(self.s):
            c = self.s[self.i]
            line = self.line
            if c.isspace():
                self._advance(1)
            elif c == "#":
                self._comment()
            elif c == "(":
                depth += 1
                self._advance(1)
            elif c == ")":
                self._advance(1)
                if depth == 0:
                    return args
                depth -= 1
            elif c == '"':
                args.append(Arg(self._quoted(), True, line))
            elif c == "[" and _BRACKET_OPEN.match(self.s, self.i):
                args.append(Arg(self._bracket() or "", True, line))
            else:
                args.append(Arg(self._unquoted(), False, line))
        raise self.error("unterminated command (missing ')')", start)


def parse_commands(text: str, where: str) -> list[Command]:
    return _Reader(text, where).commands()


def expand(value: str, variables: dict[str, str], where: str, line: int,
           unknown: dict[str, str] | None = None) -> str:
    """Resolve ${VAR} (innermost first) from variables; anything unknown is a LockError
    (saying why, when `unknown` records why that variable could not be worked out)."""
    if "$ENV{" in value or "$CACHE{" in value:
        raise LockError(f"{where}:{line}: {value!r} depends on the environment or cache; tflite-forge "
                        f"cannot resolve it without running CMake: pin this download in a hand-edited lock")
    for _ in range(32):
        m = _VAR.search(value)
        if not m:
            return value
        name = m.group(1)
        if name not in variables:
            why = (unknown or {}).get(name, "it is not set in this file")
            raise LockError(f"{where}:{line}: cannot resolve ${{{name}}} in {value!r} ({why}); "
                            f"tflite-forge reads declarations without running CMake: pin this download in a "
                            f"hand-edited lock")
        value = value[:m.start()] + variables[name] + value[m.end():]
    raise LockError(f"{where}:{line}: variable expansion in {value!r} does not terminate")


def _is_keyword(arg: Arg) -> bool:
    return not arg.quoted and (arg.value in KEYWORDS or arg.value.startswith(KEYWORD_PREFIXES)) \
        and arg.value.isupper()


# TFLite's utils.cmake reads pins out of Bazel files with file(STRINGS ... REGEX) on lines of the
# form `<NAME>_URL = "http..."`, `<NAME>_SHA256 = "<hex>"`, `<NAME>_COMMIT = "<hex>"`.
_BZL_PIN = {"URL": r'"(http[a-zA-Z0-9/.:_-]*)"', "SHA256": r'"([a-zA-Z0-9]*)"', "COMMIT": r'"([a-zA-Z0-9]*)"'}
BZL_HELPERS = {"get_dependency_archive": ("URL", "SHA256"), "get_dependency_tag": ("COMMIT",)}


def _bzl_pins(cmd: Command, variables: dict[str, str], unknown: dict[str, str], root: Path | None,
              rel: str) -> None:
    """Emulate get_dependency_archive(NAME FILE OUT_URL OUT_SHA256) / get_dependency_tag(NAME FILE
    OUT_COMMIT): set the OUT variables from FILE, or record in `unknown` why they stay unset."""
    keys = BZL_HELPERS[cmd.name]
    args = [a.value for a in cmd.args]
    if len(args) != 2 + len(keys):
        return
    outs = args[2:]

    def give_up(why: str) -> None:
        for out in outs:
            variables.pop(out, None)
            unknown[out] = f"{cmd.name} at line {cmd.line}: {why}"

    try:
        module = expand(args[0], variables, rel, cmd.line, unknown)
        bzl = expand(args[1], variables, rel, cmd.line, unknown)
    except LockError as exc:
        give_up(str(exc).split(": ", 2)[-1])
        return
    if root is None:
        give_up(f"no source tree to read {bzl} from")
        return
    target = Path(bzl) if Path(bzl).is_absolute() else root / bzl
    try:
        target = target.resolve()
        shown = target.relative_to(root.resolve()).as_posix()
        text = target.read_text(encoding="utf-8", errors="replace")
    except ValueError:
        give_up(f"{bzl} is outside the source tree")
        return
    except OSError:
        give_up(f"{bzl} does not exist in the source tree")
        return
    values = []
    for key in keys:
        var = f"{module.upper()}_{key}"
        m = re.search(rf"^[ ]*{re.escape(var)}[ ]*=[ ]*{_BZL_PIN[key]}$", text, re.MULTILINE)
        if not m:
            give_up(f"{shown} has no line `{var} = \"...\"`, so CMake itself would stop here")
            return
        values.append(m.group(1))
    for out, value in zip(outs, values):
        variables[out] = value
        unknown.pop(out, None)


def declarations(path: Path, rel: str, *, root: Path | None = None,
                 preset: dict[str, str] | None = None) -> list[Declaration]:
    """Every top-level download declared in one CMake file (rel names it in messages and the lock).
    root is the tree the file belongs to (Bazel files named by TFLite's pin helpers are read from
    it); preset holds variables the including CMakeLists would have set (e.g. TF_SOURCE_DIR)."""
    commands = parse_commands(path.read_text(encoding="utf-8", errors="replace"), rel)
    variables: dict[str, str] = dict(preset or {})
    unknown: dict[str, str] = {}
    nesting = 0
    found = []
    for cmd in commands:
        if cmd.name in ("function", "macro"):
            nesting += 1
            continue
        if cmd.name in ("endfunction", "endmacro"):
            nesting = max(0, nesting - 1)
            continue
        if nesting:
            continue
        if cmd.name == "set" and cmd.args:
            values = [a.value for a in cmd.args[1:] if a.value not in ("PARENT_SCOPE",)]
            if "CACHE" in values:
                values = values[:values.index("CACHE")]
            try:
                variables[cmd.args[0].value] = expand(";".join(values), variables, rel, cmd.line, unknown)
            except LockError:
                variables.pop(cmd.args[0].value, None)  # only an error if a download uses it
            continue
        if cmd.name in BZL_HELPERS:
            _bzl_pins(cmd, variables, unknown, root, rel)
            continue
        kind = DECLARE_COMMANDS.get(cmd.name)
        if kind is None or not cmd.args:
            continue
        options: dict[str, list[Arg]] = {}
        current = None
        for arg in cmd.args[1:]:
            if _is_keyword(arg):
                current = arg.value
                options.setdefault(current, [])
            elif current is not None:
                options[current].append(arg)
        if "URL" not in options and "GIT_REPOSITORY" not in options:
            continue  # builds something local (e.g. a host tool), downloads nothing

        def one(key: str) -> str | None:
            vals = options.get(key)
            if not vals:
                return None
            return expand(vals[0].value, variables, rel, vals[0].line, unknown)

        name = expand(cmd.args[0].value, variables, rel, cmd.line, unknown)
        urls = tuple(u for a in options.get("URL", []) for u in expand(a.value, variables, rel, a.line, unknown).split(";")
                     if u)
        url_hash = None
        raw_hash = one("URL_HASH")
        if raw_hash:
            algo, sep, hex_ = raw_hash.partition("=")
            if not sep or not re.fullmatch(r"[0-9a-fA-F]+", hex_):
                raise LockError(f"{rel}:{cmd.line}: URL_HASH {raw_hash!r} is not ALGO=hex")
            url_hash = (algo.upper(), hex_.lower())
        elif one("URL_MD5"):
            url_hash = ("MD5", one("URL_MD5").lower())
        found.append(Declaration(name=name, kind=kind, urls=urls, url_hash=url_hash,
                                 git_repository=one("GIT_REPOSITORY"), git_tag=one("GIT_TAG"),
                                 file=rel, line=cmd.line))
    return found
