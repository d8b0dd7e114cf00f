"""`invoke test --model FILE`: a user's own .tflite model through the packaged library, on the target.

1. Before anything is built or packaged, the host checks the model file (the "TFL3" flatbuffer
   identifier, `tflite_model.check_model_file`) and turns each `--input FILE.npy` into raw
   little-endian bytes plus its TfLiteType and shape (`tflite_model.read_npy`, no NumPy needed).
2. Per (recipe, arch) tarball, one of two interpreters runs the model with the same arguments and
   prints the same JSON lines (protocol in `smoke/run_model.c`):
   - `c-api` (default): `smoke/run_model.c`, built with the smoke consumers' SCons machinery
     against the unpacked tarball and run natively or under qemu-user;
   - `tflite-runtime`: `smoke/run_model_tflite_runtime.py` in the `wheel` runtime image of the
     arch (the real interpreter from PyPI), the model mounted read-only.
   Each allocates, feeds zeros (or the .npy bytes, checked against the input's type, shape and
   byte size; `--resize` resizes the input to the array's shape first) and invokes N times.
3. `parse_run` turns the JSON lines into a `ModelReport` (or one error line naming the fix) and
   `render` prints names, types, shapes, the first output values and the median invoke time.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from . import container as ct
from . import engine as eng
from .arches import resolve_arches_or_host
from .errors import ConfigError, PackageError
from .package import artifact_stem
from .pipeline import ensure_packaged
from .recipe import select_recipes
from .runtime_image import build_runtime_image, wheel_platform
from .smoke import SMOKE_DIR, build_with_scons, how_it_runs, run_on_target, unpack
from .tflite_model import NpyArray, check_model_file, read_npy, type_name

INTERPRETERS = ("c-api", "tflite-runtime")
DEFAULT_RUNS = 10
RUN_TIMEOUT = 900                     # seconds, for all runs: real models under qemu are slow
IN_CONTAINER = "/run-model"           # where the tflite-runtime path mounts the model and inputs
RUNTIME_SCRIPT = "run_model_tflite_runtime.py"
INPUT_ERRORS = ("feed", "input_type", "input_shape", "input_size", "resize")


@dataclass(frozen=True)
class Tensor:
    io: str                           # "input" or "output"
    index: int
    name: str
    type_code: int                    # TfLiteType
    shape: tuple[int, ...]
    nbytes: int
    fed: str | None = None            # inputs: "zeros", "file" or "none"
    values: tuple[float | str, ...] | None = None    # outputs: the first values ("nan"/"inf" as text)
    count: int | None = None
    total: float | str | None = None  # outputs: sum of all elements

    @property
    def type(self) -> str:
        return type_name(self.type_code)


@dataclass(frozen=True)
class ModelReport:
    model: Path
    arch: str
    interpreter: str                  # "c-api" or "tflite-runtime"
    where: str                        # "natively", "under qemu-aarch64-static", "in <image>"
    version: str                      # TfLiteVersion() or tflite_runtime.__version__
    inputs: tuple[Tensor, ...]
    outputs: tuple[Tensor, ...]
    invoke_ns: tuple[int, ...]
    emulated: bool = False            # ran under qemu: the times are not the board's

    @property
    def median_ns(self) -> float:
        return statistics.median(self.invoke_ns)


@dataclass(frozen=True)
class ModelRequest:
    """What the user asked for, checked on the host before anything runs."""
    model: Path
    inputs: tuple[NpyArray, ...]
    runs: int
    resize: bool
    interpreter: str

    def feeds(self, folder: Path | str) -> list[str]:
        """run_model's FEED arguments, with the raw input files named inside `folder`."""
        return [f"{i}:{a.type_code}:{','.join(map(str, a.shape))}:{int(self.resize)}:{folder}/input-{i}.raw"
                for i, a in enumerate(self.inputs)]

    def write_inputs(self, folder: Path) -> None:
        for i, array in enumerate(self.inputs):
            (folder / f"input-{i}.raw").write_bytes(array.data)


def make_request(model: str | os.PathLike[str], *, inputs: str | None = None, runs: int = DEFAULT_RUNS,
                 resize: bool = False, interpreter: str = "c-api") -> ModelRequest:
    """Check every option on the host (one line per problem); nothing is built or run yet."""
    model_path = check_model_file(model)
    if interpreter not in INTERPRETERS:
        raise ConfigError(f"--interpreter {interpreter!r}: expected one of {', '.join(INTERPRETERS)}")
    try:
        runs = int(runs)
    except (TypeError, ValueError):
        raise ConfigError(f"--runs {runs!r}: expected a whole number of invokes, e.g. --runs 10") from None
    if runs < 1:
        raise ConfigError(f"--runs {runs}: expected at least 1 invoke")
    paths = [p for p in (inputs or "").split(",") if p.strip()]
    if resize and not paths:
        raise ConfigError("--resize resizes inputs to the shapes of --input arrays; give --input FILE.npy too")
    arrays = tuple(read_npy(p.strip()) for p in paths)
    return ModelRequest(model=model_path, inputs=arrays, runs=runs, resize=resize,
                        interpreter=interpreter)


# ---------------------------------------------------------------- the protocol (pure: unit-tested)

def _tensor(line: dict) -> Tensor:
    values = line.get("values")
    return Tensor(io=line["io"], index=int(line["index"]), name=str(line.get("name") or ""),
                  type_code=int(line["type"]), shape=tuple(int(d) for d in line["shape"]), nbytes=int(line["bytes"]),
                  fed=line.get("fed"), values=tuple(values) if values is not None else None,
                  count=line.get("count"), total=line.get("sum"))


def _shape(dims: Any) -> str:
    return "[" + ", ".join(str(d) for d in dims) + "]"


def _input_error(line: dict, request: ModelRequest) -> ConfigError:
    stage, i = line["stage"], int(line.get("index", 0))
    model = request.model.name
    if stage == "feed":
        return ConfigError(f"--input names {len(request.inputs)} array(s) but {model} has {line.get('inputs')} "
                           "input(s); give at most one .npy per input, comma-separated in input order")
    npy = request.inputs[i].path if i < len(request.inputs) else "?"
    name = line.get("name") or "?"
    takes = f"{type_name(int(line['type']))} {_shape(line['shape'])}"
    given = f"{type_name(int(line['given_type']))} {_shape(line['given_shape'])}"
    if stage == "resize":
        return ConfigError(f"--resize: input {i} '{name}' of {model} cannot be resized to {_shape(line['given_shape'])} "
                           f"(from {npy}); give an array of shape {_shape(line['shape'])}")
    if stage == "input_type":
        return ConfigError(f"--input {npy} is {given}, but input {i} '{name}' of {model} takes {takes}; "
                           f"save it as {type_name(int(line['type']))} (array.astype('{type_name(int(line['type']))}'))")
    if stage == "input_shape":
        return ConfigError(f"--input {npy} is {given}, but input {i} '{name}' of {model} takes {takes}; "
                           f"save it with shape {_shape(line['shape'])}, or add --resize to resize the input to "
                           f"{_shape(line['given_shape'])}")
    return ConfigError(f"--input {npy} holds {line.get('given_bytes')} bytes, but input {i} '{name}' of {model} "
                       f"({takes}) takes {line['bytes']}; save an array of that type and shape")


def parse_run(stdout: str, stderr: str, returncode: int, *, request: ModelRequest, arch: str, where: str,
              who: str, emulated: bool = False) -> ModelReport:
    """The run-model program's JSON lines as a report, or the one error line that says what to fix.
    `who` names the interpreter in messages (e.g. "libtensorflowlite_c 2.14.0 (aarch64)")."""
    events = []
    for text in stdout.splitlines():
        text = text.strip()
        if text.startswith("{"):
            try:
                events.append(json.loads(text))
            except json.JSONDecodeError:
                pass
    library_said = _last_line(stderr)
    errors = [e for e in events if e.get("event") == "error"]
    model = request.model.name
    if errors:
        err = errors[0]
        stage = err.get("stage")
        if stage in INPUT_ERRORS:
            raise _input_error(err, request)
        said = f": {library_said}" if library_said else ""
        if stage == "model":
            said = f": {err.get('message')}" if err.get("message") and not library_said else said
            raise PackageError(f"{who} could not load {model}{said}; check that it is a complete .tflite file "
                               "from the TFLite converter")
        if stage == "interpreter":
            raise PackageError(f"{who} could not make an interpreter for {model}{said}; every operator the model "
                               "uses must be built into the library (a custom op, or a newer schema?)")
        hint = "compare with --interpreter tflite-runtime" if request.interpreter == "c-api" else \
            "check the model with the tools of the TensorFlow release that wrote it"
        raise PackageError(f"{who} failed on {model} at {stage} ({err.get('message', '')}){said}; {hint}")
    done = any(e.get("event") == "done" for e in events)
    if returncode != 0 or not done:
        last = library_said or _last_line(stdout) or "(no output)"
        raise PackageError(f"the run-model program stopped {where} on {model} (exit {returncode}) before it finished: "
                           f"{last}; the library may not run on {arch}")
    version = next((str(e.get("version")) for e in events if e.get("event") == "library"), "?")
    tensors = [_tensor(e) for e in events if e.get("event") == "tensor"]
    invoke = next(e for e in events if e.get("event") == "invoke")
    return ModelReport(model=request.model, arch=arch, interpreter=request.interpreter, where=where, version=version,
                       inputs=tuple(t for t in tensors if t.io == "input"),
                       outputs=tuple(t for t in tensors if t.io == "output"),
                       invoke_ns=tuple(int(n) for n in invoke["ns"]), emulated=emulated)


def _last_line(text: str) -> str:
    """What the library said: its first ERROR line (TFLite follows the cause with generic ones such as
    "Registration failed."), else the last line that is not INFO chatter or protocol."""
    lines = [line.strip() for line in (text or "").splitlines()
             if line.strip() and not line.startswith(("INFO:", "{"))]
    errors = [line.removeprefix("ERROR:").strip() for line in lines if line.startswith("ERROR:")]
    said = errors[0] if errors else lines[-1] if lines else ""
    return said.rstrip(".")                  # it is followed by "; <how to fix>"


def _ms(ns: float) -> str:
    return f"{ns / 1e3:.1f} µs" if ns < 1e6 else f"{ns / 1e6:.3f} ms"


def _value(v: Any) -> str:
    return f"{v:g}" if isinstance(v, (int, float)) else str(v)


def render(report: ModelReport, *, source: str) -> list[str]:
    """The report as lines for a terminal or a log: one header, one line per tensor, one timing line."""
    via = f"{source} (TfLiteVersion {report.version})" if report.interpreter == "c-api" else \
        f"tflite-runtime {report.version} (the PyPI wheel)"
    lines = [f"test: {report.model.name} on {report.arch} through {via}, {report.where}"]
    tensors = [*report.inputs, *report.outputs]
    name_w = max((len(t.name) for t in tensors), default=4)
    spec_w = max((len(f"{t.type}{_shape(t.shape)}") for t in tensors), default=4)
    for t in tensors:
        head = f"  {t.io:<6} {t.index:<2} {t.name:<{name_w}}  {t.type + _shape(t.shape):<{spec_w}}  {t.nbytes} B"
        if t.io == "input":
            lines.append(f"{head}  fed {t.fed}")
        elif t.values is not None:
            more = ", ..." if (t.count or 0) > len(t.values) else ""
            lines.append(f"{head}  values {', '.join(_value(v) for v in t.values)}{more} "
                         f"({t.count} values, sum {_value(t.total)})")
        else:
            lines.append(head)
    ns = report.invoke_ns
    note = "; emulated: not the board's speed" if report.emulated else ""
    lines.append(f"  invoke    median {_ms(report.median_ns)} over {len(ns)} run(s) "
                 f"(min {_ms(min(ns))}, max {_ms(max(ns))}{note})")
    return lines


# ---------------------------------------------------------------- running it

def run_c_api(request: ModelRequest, tarball: Path, arch: Any, scratch: Path, *, version: str) -> ModelReport:
    """Build smoke/run_model.c against the tarball, run it natively or under qemu-user."""
    prefix = unpack(tarball, scratch / "artifact")
    program = build_with_scons(prefix, arch, scratch / "scons", main="run_model.c", program="tflite-run-model")
    request.write_inputs(scratch)
    proc = run_on_target(program, [str(request.model.resolve()), str(request.runs), *request.feeds(scratch)],
                         prefix, arch, timeout=RUN_TIMEOUT)
    return parse_run(proc.stdout, proc.stderr, proc.returncode, request=request, arch=arch.name,
                     where=how_it_runs(arch), who=f"libtensorflowlite_c {version} ({arch.name})",
                     emulated=not arch.runs_natively())


def run_tflite_runtime(request: ModelRequest, engine: Any, tag: str, arch: Any, scratch: Path) -> ModelReport:
    """Run smoke/run_model_tflite_runtime.py in the arch's wheel image, the model mounted read-only."""
    folder = scratch / "run-model"
    folder.mkdir()
    shutil.copyfile(request.model, folder / "model.tflite")
    shutil.copyfile(SMOKE_DIR / RUNTIME_SCRIPT, folder / RUNTIME_SCRIPT)
    request.write_inputs(folder)
    # The image runs as an unprivileged user: the mounted folder must be readable by anyone.
    for path in [folder, *folder.iterdir()]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    spec = ct.ContainerSpec(image=tag, purpose="run-model", platform=arch.platform,
                            mounts=(ct.Mount(source=str(folder), target=IN_CONTAINER, read_only=True),))
    # The wheel image's entrypoint is python3: these are its arguments.
    argv = [f"{IN_CONTAINER}/{RUNTIME_SCRIPT}", f"{IN_CONTAINER}/model.tflite", str(request.runs),
            *request.feeds(IN_CONTAINER)]
    proc = ct.run_container(engine, spec, argv, timeout=RUN_TIMEOUT)
    where = f"in {tag}" + ("" if arch.runs_natively() else f" ({arch.platform}, emulated)")
    return parse_run(proc.stdout or "", proc.stderr or "", proc.returncode, request=request, arch=arch.name,
                     where=where, who=f"tflite-runtime in {tag}", emulated=not arch.runs_natively())


def run_model_test(settings: Any, request: ModelRequest, *, log: Callable[[str], None] = print) -> list[ModelReport]:
    """`invoke test --model`: the model through every selected (recipe, arch) tarball (packaged first if missing)."""
    arches = resolve_arches_or_host(settings.arch)
    if request.interpreter == "tflite-runtime":
        for arch in arches:           # armhf, riscv64: no tflite-runtime wheel; say so before packaging
            try:
                wheel_platform(arch)
            except ConfigError:
                raise ConfigError(f"--interpreter tflite-runtime: PyPI has tflite-runtime wheels for aarch64 and "
                                  f"x86_64 only, not {arch.name}; use --interpreter c-api there") from None
    engine = eng.resolve_engine(settings.engine) if request.interpreter == "tflite-runtime" else None
    reports: list[ModelReport] = []
    for recipe in select_recipes(version=settings.version, recipe=settings.recipe):
        for arch in arches:
            tarball = Path(settings.dist_dir) / f"{artifact_stem(recipe.version, arch.name)}.tar.gz"
            ensure_packaged(settings, recipe, arch, tarball, log=log)
            with tempfile.TemporaryDirectory(prefix=f"tflite-forge-run-model-{arch.name}-") as tmp:
                if engine is None:
                    report = run_c_api(request, tarball, arch, Path(tmp), version=recipe.version)
                    source = tarball.name
                else:
                    image = build_runtime_image(engine, tarball, arch, flavor="wheel", version=recipe.version,
                                                cache_dir=Path(settings.cache_dir), log=log)
                    report = run_tflite_runtime(request, engine, image.tag, arch, Path(tmp))
                    source = "tflite-runtime"
            for line in render(report, source=source):
                log(line)
            reports.append(report)
    return reports
