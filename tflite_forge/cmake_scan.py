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
from typing import Any, Iterable

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

CONDITION_COMMANDS = frozenset({"if", "elseif", "while"})

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BRACKET_OPEN = re.compile(r"\[(=*)\[")
_VAR = re.compile(r"\$\{([A-Za-z0-9_./+-]+)\}")


@dataclass(frozen=True)
class Arg:
    value: str
    quoted: bool
    line: int
    paren: bool = False   # a bare "(" or ")" inside if()/elseif()/while(): grouping, not an argument


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
    license_file: str | None = None   # LICENSE_FILE: where the tree keeps its license (OouraFFT: a readme)


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
        out: list[str] = []
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
                name = m.group(0).lower()
                args = self._args(line)
                if name not in CONDITION_COMMANDS:
                    args = [a for a in args if not a.paren]
                cmds.append(Command(name, tuple(args), line))
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
                args.append(Arg("(", False, line, paren=True))
            elif c == ")":
                self._advance(1)
                if depth == 0:
                    return args
                depth -= 1
                args.append(Arg(")", False, line, paren=True))
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
        elif md5 := one("URL_MD5"):
            url_hash = ("MD5", md5.lower())
        found.append(Declaration(name=name, kind=kind, urls=urls, url_hash=url_hash,
                                 git_repository=one("GIT_REPOSITORY"), git_tag=one("GIT_TAG"),
                                 file=rel, line=cmd.line, license_file=one("LICENSE_FILE")))
    return found


# ---------------------------------------------------------------------- if() conditions
# Which options bring a download in: the reach walk below follows find_package/include/
# add_subdirectory/configure_file from the C API's CMakeLists and keeps the if() conditions around
# each declaration. A condition is evaluated as CMake does (parentheses, then unary tests, binary
# tests, NOT, then AND/OR left to right), three-valued: what the walk knows is decided, a
# user-settable variable stays a symbol, anything else is UNKNOWN (and counts as reached).

TRUE_WORDS = frozenset({"1", "ON", "YES", "TRUE", "Y"})
FALSE_WORDS = frozenset({"0", "OFF", "NO", "FALSE", "N", "IGNORE", "NOTFOUND", ""})
UNARY_TESTS = frozenset({"DEFINED", "TARGET", "EXISTS", "COMMAND", "POLICY", "TEST", "IS_DIRECTORY",
                         "IS_ABSOLUTE", "IS_SYMLINK", "IS_READABLE", "IS_WRITABLE", "IS_EXECUTABLE"})
BINARY_TESTS = frozenset({"STREQUAL", "MATCHES", "EQUAL", "LESS", "GREATER", "LESS_EQUAL", "GREATER_EQUAL",
                          "STRLESS", "STRGREATER", "STRLESS_EQUAL", "STRGREATER_EQUAL", "VERSION_EQUAL",
                          "VERSION_LESS", "VERSION_GREATER", "VERSION_LESS_EQUAL", "VERSION_GREATER_EQUAL",
                          "IN_LIST", "PATH_EQUAL", "IS_NEWER_THAN"})
UNKNOWN = ("unknown",)
# A variable's value during the walk: ("str", text), ("sym", name) for a value only the build's
# options decide, or UNKNOWN; None means undefined.
Value = tuple


def _word_truth(word: str) -> bool | None:
    """CMake's truth of a constant, or None when `word` is not a constant (then it names a variable)."""
    up = word.upper()
    if up in TRUE_WORDS:
        return True
    if up in FALSE_WORDS or up.endswith("-NOTFOUND"):
        return False
    if re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?", word):
        return float(word) != 0
    return None


def _not(x):
    if x is True or x is False:
        return not x
    if x == UNKNOWN:
        return UNKNOWN
    if x[0] == "not":
        return x[1]
    return ("not", x)


def _and(*xs):
    out = True
    for x in xs:
        if x is False or out is False:
            return False
        if x is True:
            continue
        if out is not True and (x == ("not", out) or out == ("not", x) or _contradicts(out, x)):
            return False
        out = x if out is True else (UNKNOWN if UNKNOWN in (out, x) else ("and", out, x))
    return out


def _contradicts(a, b) -> bool:
    """a AND b is false on its face: one side's conjunct is the other's negation (X AND NOT X)."""
    def terms(n):
        return terms(n[1]) + terms(n[2]) if n[0] == "and" else [n]
    ta, tb = terms(a), terms(b)
    return any(("not", t) in tb or t == ("not", u) for t in ta for u in tb)


def _or(*xs):
    out = False
    for x in xs:
        if x is True or out is True:
            return True
        if x is False:
            continue
        out = x if out is False else (UNKNOWN if UNKNOWN in (out, x) else ("or", out, x))
    return out


def _version_key(v: str) -> tuple[int, ...]:
    return tuple(int(p) if p.isdigit() else 0 for p in re.split(r"[.]", v.strip()) if p != "")


def _compare(op: str, a: str, b: str):
    try:
        if op == "STREQUAL":
            return a == b
        if op == "MATCHES":
            return re.search(b, a) is not None
        if op in ("EQUAL", "LESS", "GREATER", "LESS_EQUAL", "GREATER_EQUAL"):
            x, y = float(a), float(b)
            return {"EQUAL": x == y, "LESS": x < y, "GREATER": x > y, "LESS_EQUAL": x <= y, "GREATER_EQUAL": x >= y}[op]
        if op.startswith("STR"):
            return {"STRLESS": a < b, "STRGREATER": a > b, "STRLESS_EQUAL": a <= b, "STRGREATER_EQUAL": a >= b}[op]
        if op.startswith("VERSION_"):
            u, v = _version_key(a), _version_key(b)
            n = max(len(u), len(v))
            u, v = u + (0,) * (n - len(u)), v + (0,) * (n - len(v))
            return {"VERSION_EQUAL": u == v, "VERSION_LESS": u < v, "VERSION_GREATER": u > v,
                    "VERSION_LESS_EQUAL": u <= v, "VERSION_GREATER_EQUAL": u >= v}[op]
    except (ValueError, re.error):
        return UNKNOWN
    return UNKNOWN


class Condition:
    """Parse and evaluate one if() argument list against `lookup(name) -> Value | None`."""

    def __init__(self, args: tuple[Arg, ...] | list[Arg], lookup):
        self.toks, self.i, self.lookup = list(args), 0, lookup

    def evaluate(self):
        if not self.toks:
            return False
        try:
            node = self._logic()
        except IndexError:
            return UNKNOWN
        return node if self.i == len(self.toks) else UNKNOWN

    # -- values
    def _expand(self, text: str):
        """${VAR} references in text: ("str", ...), ("sym", name) when text is exactly one symbol, or UNKNOWN."""
        m = re.fullmatch(r"\$\{([A-Za-z0-9_./+-]+)\}", text)
        if m:
            v = self.lookup(m.group(1))
            return ("str", "") if v is None else v
        out = text
        for _ in range(16):
            m = _VAR.search(out)
            if not m:
                return ("str", out)
            v = self.lookup(m.group(1))
            if v is None:
                v = ("str", "")
            if v[0] != "str":
                return UNKNOWN
            out = out[:m.start()] + v[1] + out[m.end():]
        return UNKNOWN

    def _operand(self, tok: Arg):
        if tok.quoted:
            return self._expand(tok.value)
        v = self._expand(tok.value)
        if v[0] == "str" and _word_truth(v[1]) is None and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.+-]*", v[1]):
            named = self.lookup(v[1])
            return ("str", v[1]) if named is None else named
        return v

    def _truth(self, tok: Arg):
        v = self._expand(tok.value)
        if v == UNKNOWN:
            return UNKNOWN
        if v[0] == "sym":
            return ("var", v[1])
        word = v[1]
        const = _word_truth(word)
        if const is not None:
            return const
        if tok.quoted:
            return False
        named = self.lookup(word)
        if named is None:
            return False
        if named[0] == "sym":
            return ("var", named[1])
        if named == UNKNOWN:
            return UNKNOWN
        return bool(_word_truth(named[1]) is not False)

    # -- grammar
    def _peek(self) -> Arg | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def _keyword(self, words) -> str | None:
        tok = self._peek()
        if tok is not None and not tok.quoted and not tok.paren and tok.value in words:
            return tok.value
        return None

    def _logic(self):
        left = self._negation()
        while (op := self._keyword(("AND", "OR"))):
            self.i += 1
            right = self._negation()
            left = _and(left, right) if op == "AND" else _or(left, right)
        return left

    def _negation(self):
        if self._keyword(("NOT",)):
            self.i += 1
            return _not(self._negation())
        return self._binary()

    def _binary(self):
        tok = self._peek()
        if tok is None or (tok.paren and tok.value == ")"):
            raise IndexError("an operand is missing")
        if tok.paren and tok.value == "(":
            self.i += 1
            node = self._logic()
            close = self._peek()
            if close is None or not (close.paren and close.value == ")"):
                raise IndexError("unbalanced parentheses")
            self.i += 1
            return node
        if (op := self._keyword(UNARY_TESTS)):
            self.i += 1
            target = self.toks[self.i]
            self.i += 1
            return self._unary(op, target)
        self.i += 1
        nxt = self._keyword(BINARY_TESTS)
        if nxt:
            self.i += 1
            right = self.toks[self.i]
            self.i += 1
            return self._binop(nxt, tok, right)
        return self._truth(tok)

    def _unary(self, op: str, target: Arg):
        if op == "DEFINED":
            name = target.value
            m = re.fullmatch(r"(?:ENV|CACHE)\{(.+)\}", name)
            if m:
                return UNKNOWN
            v = self.lookup(name)
            if v is None:
                return False
            return ("defined", v[1]) if v[0] == "sym" and v[1] == name else (UNKNOWN if v == UNKNOWN else True)
        if op == "TARGET":
            return False   # read as on first inclusion: no target exists yet
        return UNKNOWN

    def _binop(self, op: str, left: Arg, right: Arg):
        a, b = self._operand(left), self._operand(right)
        if UNKNOWN in (a, b) or op in ("IN_LIST", "PATH_EQUAL", "IS_NEWER_THAN"):
            return UNKNOWN
        if a[0] == "str" and b[0] == "str":
            return _compare(op, a[1], b[1])
        return ("cmp", op, a, b)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$") + '"'


def condition_text(node) -> str:
    """A condition as CMake if() text over the build's options: "TRUE", "FALSE", or e.g.
    "TFLITE_ENABLE_GPU", "NOT CMAKE_SYSTEM_PROCESSOR OR CMAKE_SYSTEM_PROCESSOR MATCHES \"x86\""."""
    if node is True or node == UNKNOWN:
        return "TRUE"
    if node is False:
        return "FALSE"

    def fmt(n, nested=False) -> str:
        kind = n[0]
        if kind == "var":
            return n[1]
        if kind == "defined":
            return f"DEFINED {n[1]}"
        if kind == "cmp":
            side = lambda v: v[1] if v[0] == "sym" else _quote(v[1])  # noqa: E731
            return f"{side(n[2])} {n[1]} {side(n[3])}"
        if kind == "not":
            inner = fmt(n[1], True)
            return f"NOT ({inner})" if n[1][0] in ("and", "or") else f"NOT {inner}"
        op = " AND " if kind == "and" else " OR "
        parts = [f"({fmt(c)})" if c[0] in ("and", "or") and c[0] != kind else fmt(c) for c in (n[1], n[2])]
        text = op.join(parts)
        return f"({text})" if nested else text
    return fmt(node)


def evaluate_condition(text: str, values: dict[str, str]) -> bool:
    """Whether a recorded condition holds for a build's options (values: name -> CMake value).
    A name the build does not set is undefined, as in CMake; what cannot be decided holds."""
    cmds = parse_commands(f"if({text})\n", "condition")

    def lookup(name: str):
        return ("str", values[name]) if name in values else None
    result = Condition(cmds[0].args, lookup).evaluate()
    return result is not False


def check_condition(text: str) -> None:
    """A LockError unless `text` is one well-formed CMake if() condition."""
    cmds = parse_commands(f"if({text})\n", "condition")
    if len(cmds) != 1 or cmds[0].name != "if" or not cmds[0].args:
        raise LockError(f"{text!r} is not one if() condition")
    cond = Condition(cmds[0].args, lambda _name: None)
    try:
        cond._logic()
    except IndexError:
        raise LockError(f"{text!r} ends in the middle of an expression") from None
    if cond.i != len(cond.toks):
        raise LockError(f"{text!r} has unexpected words after the expression")


# ---------------------------------------------------------------------- reach: which options bring a download in

# Known for every tflite-forge build (Linux targets, GCC); everything user-settable stays a symbol.
PLATFORM_FACTS = {"CMAKE_SYSTEM_NAME": "Linux", "CMAKE_HOST_SYSTEM_NAME": "Linux", "UNIX": "1",
                  "CMAKE_CXX_COMPILER_ID": "GNU", "CMAKE_C_COMPILER_ID": "GNU", "CMAKE_COMPILER_IS_GNUCXX": "1",
                  "CMAKE_COMMAND": "cmake"}
PLATFORM_UNDEFINED = frozenset({"WIN32", "MSVC", "APPLE", "ANDROID", "IOS", "CYGWIN", "MINGW", "EMSCRIPTEN", "MSYS"})
SYMBOLIC_CMAKE = frozenset({"CMAKE_SYSTEM_PROCESSOR", "CMAKE_CROSSCOMPILING", "BUILD_SHARED_LIBS"})
# What tflite-forge passes to replace a download (and what a download sets): undefined when asking
# "would this configure download it?".
_OVERRIDE_RE = re.compile(r"^(FETCHCONTENT_|OVERRIDABLE_FETCH_CONTENT_|CMAKE_)|_(SOURCE_DIR|BINARY_DIR|POPULATED|FOUND)$")


@dataclass(frozen=True)
class Reach:
    """The result of walking a CMake project from its entry file."""
    conditions: dict[tuple[str, int], Any]   # (file, line) of a download declaration -> condition node
    defaults: dict[str, str]                 # option()/cache variable -> default value
    files: tuple[str, ...]                   # every file the walk read


class _Walk:
    def __init__(self, root: Path, module_dir: str, preset: dict[str, str]):
        self.root = root.resolve()
        self.vars: dict[str, Value] = {}
        self.preset = dict(preset)
        self.defaults: dict[str, str] = {}
        self.module_path: list[Path] = [self.root / module_dir]
        self.reached: dict[tuple[str, int], Any] = {}
        self.files: list[str] = []
        self.list_dir = self.root
        self.source_dir = self.root

    def lookup(self, name: str) -> Value | None:
        if name == "CMAKE_CURRENT_LIST_DIR":
            return ("str", str(self.list_dir))
        if name in ("CMAKE_CURRENT_SOURCE_DIR", "PROJECT_SOURCE_DIR"):
            return ("str", str(self.source_dir))
        if name in self.preset:
            return ("str", self.preset[name])
        if name in PLATFORM_FACTS:
            return ("str", PLATFORM_FACTS[name])
        if name in self.vars:
            return self.vars[name]
        if name in SYMBOLIC_CMAKE:
            return ("sym", name)
        if name in PLATFORM_UNDEFINED or _OVERRIDE_RE.search(name):
            return None
        return ("sym", name)

    def expand_path(self, text: str, base: Path) -> Path | None:
        cond = Condition([], self.lookup)
        v = cond._expand(text)
        if v[0] != "str" or not v[1]:
            return None
        path = Path(v[1])
        path = (path if path.is_absolute() else base / path).resolve()
        try:
            path.relative_to(self.root)
        except ValueError:
            return None
        return path

    def rel(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def _module(self, name: str) -> Path | None:
        for d in self.module_path:
            if (d / name).is_file():
                return d / name
        return None

    def walk(self, path: Path, cond, stack: tuple[str, ...] = (), source_dir: Path | None = None) -> None:
        rel = self.rel(path)
        if rel in stack or len(stack) > 48 or cond is False:
            return
        try:
            commands = parse_commands(path.read_text(encoding="utf-8", errors="replace"), rel)
        except (OSError, LockError):
            return
        if rel not in self.files:
            self.files.append(rel)
        saved = (self.list_dir, self.source_dir)
        self.list_dir = path.parent
        if source_dir is not None:
            self.source_dir = source_dir
        try:
            self._commands(rel, commands, cond, (*stack, rel))
        finally:
            self.list_dir, self.source_dir = saved

    def _commands(self, rel: str, commands: list[Command], cond, stack: tuple[str, ...]) -> None:
        frames: list[list] = []   # per open if(): [current branch condition, [earlier branch conditions]]
        guard = True              # after a return() inside if(): NOT that if's condition
        nesting = 0
        for cmd in commands:
            name = cmd.name
            if name in ("function", "macro"):
                nesting += 1
                continue
            if name in ("endfunction", "endmacro"):
                nesting = max(0, nesting - 1)
                continue
            if nesting:
                continue
            if name == "if":
                c = Condition(cmd.args, self.lookup).evaluate()
                frames.append([c, [c]])
                continue
            if name in ("elseif", "else") and frames:
                earlier = frames[-1][1]
                c = Condition(cmd.args, self.lookup).evaluate() if name == "elseif" else True
                frames[-1][0] = _and(_not(_or(*earlier)), c)
                earlier.append(c)
                continue
            if name == "endif":
                if frames:
                    frames.pop()
                continue
            here = _and(cond, guard, *(f[0] for f in frames))
            if here is False:
                continue
            if name == "return":
                if not frames:
                    return
                guard = _and(guard, _not(_and(*(f[0] for f in frames))))
                continue
            self._command(rel, cmd, here, stack)

    def _command(self, rel: str, cmd: Command, here, stack: tuple[str, ...]) -> None:
        args = [a.value for a in cmd.args]
        name = cmd.name
        if name in DECLARE_COMMANDS:
            key = (rel, cmd.line)
            self.reached[key] = _or(self.reached.get(key, False), here)
        elif name in ("set", "option", "cmake_dependent_option") and args:
            self._set(name, cmd, here)
        elif name == "list" and len(args) >= 3 and args[0] in ("APPEND", "PREPEND") and args[1] == "CMAKE_MODULE_PATH":
            self._module_dirs(args[2:])
        elif name == "include" and args:
            target = self._module(f"{args[0]}.cmake") if re.fullmatch(r"[A-Za-z0-9_.+-]+", args[0]) \
                and not args[0].endswith(".cmake") else self.expand_path(args[0], self.source_dir)
            if target is not None and target.is_file():
                self.walk(target, here, stack)
        elif name == "find_package" and args:
            if not {"CONFIG", "NO_MODULE"} & set(args[1:]):
                target = self._module(f"Find{args[0]}.cmake")
                if target is not None:
                    self.walk(target, here, stack)
        elif name == "add_subdirectory" and args:
            sub = self.expand_path(args[0], self.source_dir)
            if sub is not None and (sub / "CMakeLists.txt").is_file():
                self.walk(sub / "CMakeLists.txt", here, stack, source_dir=sub)
        elif name == "configure_file" and args:
            src = self.expand_path(args[0], self.source_dir)
            if src is not None and src.suffix == ".cmake" and src.is_file():
                self.walk(src, here, stack, source_dir=src.parent)

    def _module_dirs(self, values: list[str]) -> None:
        for value in values:
            for part in value.split(";"):
                d = self.expand_path(part, self.source_dir) if part else None
                if d is not None and d.is_dir() and d not in self.module_path:
                    self.module_path.append(d)

    def _set(self, kind: str, cmd: Command, here) -> None:
        args = cmd.args
        var = args[0].value
        if var in self.preset or var in PLATFORM_FACTS:
            return
        if kind in ("option", "cmake_dependent_option"):
            default = args[2].value if len(args) > 2 else "OFF"
            if here is True or var not in self.vars:
                self.defaults.setdefault(var, default)
                self.vars.setdefault(var, ("sym", var))
            return
        values = [a for a in args[1:] if a.value != "PARENT_SCOPE"]
        cache = next((i for i, a in enumerate(values) if a.value == "CACHE" and not a.quoted), None)
        force = cache is not None and any(a.value == "FORCE" for a in values[cache:])
        if cache is not None:
            values = values[:cache]
        if var == "CMAKE_MODULE_PATH":
            self._module_dirs([a.value for a in values])
            return
        if here is not True:
            self.vars[var] = UNKNOWN
            return
        if len(values) == 1:
            value = Condition([], self.lookup)._expand(values[0].value)
        else:
            value = Condition([], self.lookup)._expand(";".join(a.value for a in values))
        if cache is not None and not force:
            # A cache default: the user may give another value (-D), so it stays a symbol.
            if var not in self.vars:
                if value[0] == "str":
                    self.defaults.setdefault(var, value[1])
                self.vars[var] = ("sym", var)
            return
        self.vars[var] = value


def reach(root: Path, entry: str, *, module_dir: str = "tensorflow/lite/tools/cmake/modules",
          preset: dict[str, str] | None = None, symbols: Iterable[str] = ()) -> Reach:
    """Walk the CMake project `entry` (a CMakeLists.txt relative to root) as a configure would, and
    return under which conditions each download declaration is reached. `symbols` are variables
    the build may set (recipe options) that the files never declare."""
    walk = _Walk(root, module_dir, preset or {})
    for name in symbols:
        walk.vars.setdefault(name, ("sym", name))
    start = walk.root / entry
    if start.is_file():
        walk.walk(start, True, source_dir=start.parent)
    return Reach(conditions=dict(walk.reached), defaults=dict(walk.defaults), files=tuple(walk.files))
