"""The build's run: execute a `BuildPlan` (build_plan.py) in one hermetic container and put its
result in place.

`run_build(plan, engine, ...)` holds the cell's lock (waiting, and saying so, for another build of
the cell), clears what a killed build left (staging folders, parked outputs, orphan containers),
checks the stamp (nothing changed: nothing to do), runs the steps with a progress line per step and
ninja's [n/N], collects exactly the targets' libraries, writes build-info.json, swaps the staging
folder into out/<cell>, and drops build volumes of the key made for other inputs. `run_cell` does
this for one cell from what fetch, patching and image made.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Iterator, Mapping, Sequence, TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from . import ccache_remote, compile_checks, elf, remote
from . import container as ct
from . import engine as eng
from .build_plan import (BUILD, CCACHE, DEPS, OUT, SRC, BuildPlan, BuildRequest, build_info, cell_compile_checks,
                         cell_options, container_user, make_request, plan_build, plan_inputs)
from .cache import sha256_file
from .builders import parse_builders
from .errors import BuildError, EngineError
from .fsutil import held_lock, swap_dir, write_json_atomic
from .jobs import choose_jobs
from .workspace import Cell, Workspace

TAIL_LINES = 40
NINJA_PROGRESS = re.compile(r"^\[(\d+)/(\d+)\]")


def is_up_to_date(plan: BuildPlan, inputs: Mapping) -> bool:
    try:
        stamp = json.loads(plan.stamp_path.read_text())
        info = (plan.out_dir / "build-info.json").read_bytes()
    except (OSError, ValueError):
        return False
    if stamp.get("inputs") != inputs or stamp.get("build_info_sha256") != hashlib.sha256(info).hexdigest():
        return False
    libs = json.loads(info).get("libraries", [])
    return bool(libs) and all((plan.out_dir / "lib" / lib["name"]).exists() for lib in libs)


# ---------------------------------------------------------------- running

class _Progress:
    """ninja's [n/N] as a rich progress bar on a TTY; off one (logs), a line per step and a line at
    every tenth of ninja's edges, never a carriage return. A nested ninja (an ExternalProject's own
    build, e.g. the host flatc) prints its own small [n/N] in between: progress is the largest n
    and the largest N seen in the step, so it only moves forward."""

    def __init__(self, title: str, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.title = title
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._step = ""
        self._done = self._total = self._tenth = 0

    def __enter__(self) -> "_Progress":
        if self.tty:
            self._progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                      TimeElapsedColumn(), console=Console(file=self.stream), transient=False)
            self._progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)

    def step(self, name: str) -> None:
        self._step, self._done, self._total, self._tenth = name, 0, 0, 0
        if self._progress is not None:
            self._task = self._progress.add_task(f"{self.title} {name}", total=None)
        else:
            print(f"tflite-forge: {self.title}: {name}", file=self.stream, flush=True)

    def line(self, text: str) -> None:
        match = NINJA_PROGRESS.match(text)
        if not match:
            return
        self._done, self._total = max(self._done, int(match.group(1))), max(self._total, int(match.group(2)))
        done, total = min(self._done, self._total), self._total
        if self._progress is not None:
            if self._task is not None:
                self._progress.update(self._task, completed=done, total=total)
        elif total and done * 10 // total > self._tenth:
            self._tenth = done * 10 // total
            print(f"tflite-forge: {self.title}: {self._step} {done}/{total} ({100 * done // total}%)",
                  file=self.stream, flush=True)

    def done(self) -> None:
        if self._progress is not None and self._task is not None:
            task = self._progress.tasks[-1]
            self._progress.update(self._task, completed=task.total or 1, total=task.total or 1)


def _prepare_staging(plan: BuildPlan, user: str) -> None:
    if plan.staging_dir.exists():
        shutil.rmtree(plan.staging_dir)
    plan.staging_dir.mkdir(parents=True)
    uid, _, gid = user.partition(":")
    if os.geteuid() == 0 and uid.isdigit():
        os.chown(plan.staging_dir, int(uid), int(gid or uid))
    else:
        os.chmod(plan.staging_dir, 0o777)


def _own(path: Path) -> None:
    """Give the container's files back to whoever runs tflite-forge (when we are root)."""
    if os.geteuid() != 0:
        return
    for dirpath, dirnames, filenames in os.walk(path):
        for name in [dirpath, *(os.path.join(dirpath, n) for n in dirnames + filenames)]:
            os.lchown(name, 0, 0)


def _remote_cache_access(plan: BuildPlan, engine: eng.EngineConfig,
                         cache: ccache_remote.RemoteCache | None) -> tuple[ccache_remote.Access | None, str | None]:
    """The shared compile cache for this build on this engine, if it answers (else one warning line and
    the local ccache only). Not part of the plan: the cache never changes what is built."""
    if cache is None:
        return None, None
    access = ccache_remote.container_access(cache, engine)
    problem = ccache_remote.probe(access, engine, image=plan.image, user=plan.spec.user, userns=plan.spec.userns)
    if problem:
        print(ccache_remote.probe_warning(cache, problem), file=sys.stderr, flush=True)
        return None, problem
    return access, None


def _write_run_record(plan: BuildPlan, stats_log: str, access: ccache_remote.Access | None,
                      cache: ccache_remote.RemoteCache | None, problem: str | None) -> None:
    stats = ccache_remote.parse_stats_log(stats_log)
    write_json_atomic(plan.run_record_path, {"key": plan.key, **ccache_remote.run_record(
        stats, access, configured=cache, problem=problem)})
    warning = ccache_remote.after_build_warning(cache, stats) if access is not None and cache is not None else None
    if warning:
        print(warning, file=sys.stderr, flush=True)


def execute(plan: BuildPlan, engine: eng.EngineConfig, *, log_line: Callable[[str], None] | None = None,
            remote_cache: ccache_remote.RemoteCache | None = None) -> dict:
    """Run the plan's steps in one container; the staging folder holds the libraries afterwards.
    Returns what the build proved about itself (the compile checks) for build-info.json.
    `remote_cache`: the shared ccache (ccache_remote), reached on this engine through its socket."""
    for name, labels in plan.volumes:
        ct.ensure_volume(engine, name, labels)
    _prepare_staging(plan, plan.spec.user or "")
    plan.log_path.parent.mkdir(parents=True, exist_ok=True)
    tail: list[str] = []
    proven: dict = {}
    access, problem = _remote_cache_access(plan, engine, remote_cache)
    # On a builder (--builder) the trees go over as volumes and /out comes back by copy (remote.py);
    # the cache socket is the builder host's own and stays a bind mount.
    local = remote.localize(engine, ccache_remote.with_access(plan.spec, access), run_labels=plan.cell_labels)
    with contextlib.ExitStack() as stack:
        stack.callback(remote.release, engine, local)
        log = stack.enter_context(open(plan.log_path, "w"))
        progress = stack.enter_context(_Progress(f"{plan.label} {plan.arch}"))
        box = stack.enter_context(ct.Container(engine, local.spec))
        log.write(f"# {plan.describe()}\n# engine {engine.name} {engine.version} ({engine.title}), container {box.name}\n")
        log.write(f"# compile cache: local {CCACHE}"
                  + (f" + remote {access.remote.url} at {ccache_remote.SOCKET}\n" if access else
                     f" only (remote {remote_cache.url}: {problem})\n" if remote_cache else " only\n"))

        def on_line(text: str) -> None:
            nonlocal tail
            log.write(text + "\n")
            tail.append(text)
            if len(tail) > 4 * TAIL_LINES:
                tail = tail[-TAIL_LINES:]
            progress.line(text)
            if log_line:
                log_line(text)

        def run(name: str, argv: Sequence[str], env: Mapping[str, str]) -> None:
            log.write(f"\n# step {name}: {' '.join(argv)}\n")
            log.flush()
            started = time.monotonic()
            result = box.call(list(argv), env=dict(env), on_line=on_line)
            log.write(f"# step {name} took {time.monotonic() - started:.2f}s (exit {result.returncode})\n")
            log.flush()
            if result.returncode != 0:
                sys.stderr.write("\n".join(tail[-TAIL_LINES:]) + "\n")
                raise BuildError(f"{plan.label} for {plan.arch}: step {name} failed (exit {result.returncode}); "
                                 f"the last {TAIL_LINES} lines are above, the full log is {plan.log_path}")

        for step in plan.steps:
            progress.step(step.name)
            run(step.name, step.argv, dict(step.env))
            if step.collect:
                proven = _collect(plan, lambda argv: run("collect-artifacts", argv, {}),
                                  lambda sub: remote.fetch_out(engine, box, local, sub))
            progress.done()
        stats_log = box.call(["sh", "-c", f"cat {ccache_remote.STATS_LOG} 2>/dev/null || true"], capture=True).stdout
    _own(plan.staging_dir)
    _write_run_record(plan, stats_log or "", access, remote_cache, problem)
    return proven


def _collect(plan: BuildPlan, run: Callable[[Sequence[str]], None], fetch: Callable[[str], None]) -> dict:
    """Copy exactly the built targets' artifacts (CMake's file API) into /out/lib, add the SONAME and
    development links a shared library's users expect, and check every compile command. `fetch(sub)`
    brings /out/<sub> to the staging folder (a builder's; on this host it is there already)."""
    meta = plan.staging_dir / ".meta"
    fetch(".meta")
    try:
        artifacts = target_artifacts(meta / "reply", plan.targets)
        commands = json.loads((meta / "compile_commands.json").read_text())
    except (OSError, ValueError, KeyError, IndexError, TypeError, StopIteration) as exc:
        raise BuildError(f"{plan.label} for {plan.arch}: CMake's file-API reply or compile_commands.json is "
                         f"unreadable ({exc}); run `invoke clean --build` and build again") from None
    # The file API names the link a consumer links against (lib<name>.so); the file behind it is the
    # versioned one: copy that, and make the links here.
    run(["sh", "-ec", f'for a; do f=$(readlink -f "$a"); cp -- "$f" {OUT}/lib/; echo "${{f##*/}}"; done', "collect",
         *(f"{BUILD}/target/{a}" for a in artifacts)])
    fetch("lib")
    lib = plan.staging_dir / "lib"
    for real in sorted(p for p in lib.iterdir() if not p.is_symlink()):
        _library_links(real)
    plan.compile_commands_path.write_text(json.dumps(commands, indent=1) + "\n")
    shutil.rmtree(meta, ignore_errors=True)
    report = compile_checks.run(commands, plan.compile_checks, trees={"tensorflow": SRC}, deps_root=DEPS)
    failed = next((r for r in report if r["failed"]), None)
    if failed:
        raise BuildError(f"{plan.label} for {plan.arch}: compile check {failed['id']} failed: {failed['failed']}; "
                         f"the patch set {failed['set']} did not reach the compiler (all commands: "
                         f"{plan.compile_commands_path})")
    return {"compile_checks": [{k: v for k, v in r.items() if k != "failed"} for r in report],
            "compile_commands": len(commands)}


def target_artifacts(reply: Path, targets: Sequence[str]) -> list[str]:
    """The artifact paths (relative to the build tree) of `targets`, from a file-API codemodel-v2 reply."""
    index = json.loads(sorted(reply.glob("index-*.json"))[-1].read_text())
    model = next(o["jsonFile"] for o in index["objects"] if o["kind"] == "codemodel")
    config = json.loads((reply / model).read_text())["configurations"][0]
    by_name = {t["name"]: t["jsonFile"] for t in config["targets"]}
    found = []
    for name in targets:
        if name not in by_name:
            raise BuildError(f"the build tree has no CMake target {name}; is [build].cmake_source_dir the C API project?")
        target = json.loads((reply / by_name[name]).read_text())
        found += [a["path"] for a in target.get("artifacts", []) if ".so" in PurePosixPath(a["path"]).name]
    return found


def _library_links(real: Path) -> None:
    """lib<name>.so.<major> (its SONAME) and lib<name>.so beside a versioned shared library."""
    soname = elf.soname(real)
    dev = real.name.split(".so", 1)[0] + ".so"
    if soname and soname != real.name:
        (real.parent / soname).symlink_to(real.name)
    if dev not in (real.name, soname):
        (real.parent / dev).symlink_to(soname or real.name)


STEP_TIME = re.compile(r"^# step (\S+) took ([0-9.]+)s")


def step_times(log_path: Path) -> dict[str, float]:
    """{step: seconds} from a build log (for bench/bench_build.py)."""
    times = {}
    for line in Path(log_path).read_text(errors="replace").splitlines():
        match = STEP_TIME.match(line)
        if match:
            times[match.group(1)] = float(match.group(2))
    return times


def libraries(lib_dir: Path) -> list[dict]:
    out: list[dict[str, Any]] = []
    for path in sorted(lib_dir.iterdir()):
        if path.is_symlink():
            out.append({"name": path.name, "symlink": os.readlink(path)})
        else:
            out.append({"name": path.name, "sha256": sha256_file(path), "size": path.stat().st_size,
                        "soname": elf.soname(path)})
    return out


def finish(plan: BuildPlan, info: dict) -> Path:
    """Write build-info.json into staging and swap staging in place of the old result."""
    info = dict(info, libraries=libraries(plan.staging_dir / "lib"))
    text = json.dumps(info, indent=2, sort_keys=True) + "\n"
    (plan.staging_dir / "build-info.json").write_text(text)
    swap_dir(plan.staging_dir, plan.out_dir)
    return plan.out_dir


def remove_stale(plan: BuildPlan) -> list[Path]:
    """Folders and temp files a killed build of this cell left behind (call under the cell lock):
    staging folders (any options), an out_dir parked as .old-* by finish() between its two renames,
    and stamp temps. Other cells' leftovers are not ours to judge and are left alone."""
    cell = re.escape(plan.out_dir.name)
    patterns = ((plan.out_dir.parent, re.compile(rf"^\.staging-{cell}-[0-9a-f]+$")),
                (plan.out_dir.parent, re.compile(rf"^\.old-{cell}-\d+$")),
                (plan.stamp_path.parent, re.compile(rf"^\.{cell}-[0-9a-f]+\.json\..+")))
    removed = []
    for folder, pattern in patterns:
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if not pattern.match(path.name):
                continue
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _say_waiting(plan: BuildPlan) -> None:
    print(f"tflite-forge: another build of {plan.label} for {plan.arch} is running (lock {plan.lock_path}); "
          "waiting for it to finish", file=sys.stderr, flush=True)


@contextlib.contextmanager
def cell_lock(plan: BuildPlan, *, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold the cell's lock (waiting, and saying so, if another process has it); clear stale leftovers."""
    path = plan.lock_path
    path.parent.mkdir(parents=True, exist_ok=True)
    with held_lock(path, on_wait or (lambda: _say_waiting(plan))):
        remove_stale(plan)
        yield


def run_build(plan: BuildPlan, engine: eng.EngineConfig, *, req: BuildRequest, image_id: str, info: dict,
              force: bool = False, remote_cache: ccache_remote.RemoteCache | None = None) -> tuple[Path, bool]:
    """Run the plan unless its stamp says nothing changed. Returns (out_dir, built).

    Two runs of the same cell would share the staging folder and the /build volume: the second
    waits for the first under the cell lock, then (usually) finds its result up to date."""
    with cell_lock(plan):
        inputs = plan_inputs(plan, req, image_id)
        if not force and is_up_to_date(plan, inputs):
            return plan.out_dir, False
        # Under the cell lock a container of this cell is an orphan: a SIGKILLed build's, still
        # writing into the volumes this run is about to use.
        orphans = ct.list_containers(engine, plan.cell_labels)
        if orphans:
            print(f"tflite-forge: removing {len(orphans)} container(s) a killed build of {plan.label} for "
                  f"{plan.arch} left running: {', '.join(orphans)}", file=sys.stderr)
            ct.remove_containers(engine, orphans)
        # ... and so is a builder's /out volume a killed run of this cell left (remote.py).
        ct.remove_volumes(engine, ct.list_volumes(engine, (remote.OUT_KIND, *plan.cell_labels)))
        plan.stamp_path.unlink(missing_ok=True)
        try:
            proven = execute(plan, engine, remote_cache=remote_cache)
            out = finish(plan, {**info, **proven})
        except BaseException:
            shutil.rmtree(plan.staging_dir, ignore_errors=True)
            raise
        stamp = {"key": plan.key, "inputs": inputs,
                 "build_info_sha256": sha256_file(out / "build-info.json")}
        write_json_atomic(plan.stamp_path, stamp)
        _drop_superseded_volumes(plan, engine)
        return out, True


def _drop_superseded_volumes(plan: BuildPlan, engine: eng.EngineConfig) -> None:
    """Build and deps volumes of this key made for other inputs are never used again as they are (a
    later build with those inputs starts afresh, from ccache): remove them so disk use stays bounded."""
    current = {name for name, _ in plan.volumes}
    stale = [v for v in ct.list_volumes(engine, (("io.tflite-forge.kind", "build"), *plan.cell_labels))
             if v not in current]
    if stale:
        ct.remove_volumes(engine, stale)


@dataclass(frozen=True, kw_only=True)
class CellResult:
    out_dir: Path
    built: bool
    plan: BuildPlan
    info: Mapping = field(default_factory=dict)


def run_cell(workspace: Workspace, cell: Cell, engine: eng.EngineConfig, *, sources: Any, prepared: Any,
             builder: Any, jobs: int | None = None, ccache_remote_url: str | None = None, cxx_shared: bool = False,
             force: bool = False) -> CellResult:
    """Plan and run the build of one cell from what fetch (`sources`), patching (`prepared`) and image
    (`builder`, already on `engine`) made. `jobs`: --jobs, else what the engine's CPUs and memory carry."""
    recipe, arch = cell.recipe, cell.arch
    options = cell_options(recipe, arch, builder.gcc_major)
    resources = eng.host_resources(engine)
    user, userns = container_user(engine.name, engine.remote)
    req = make_request(cell, workspace, sources, prepared, builder, options=options,
                       jobs=choose_jobs(jobs, resources.cpus, resources.memory_bytes), user=user, userns=userns,
                       engine=engine.name, cxx_shared=cxx_shared)
    plan = plan_build(req, compile_checks=cell_compile_checks(recipe, arch))
    info = build_info(recipe, arch, builder, plan, engine=engine.name, patch_sets=prepared.stamp_summary()["sets"],
                      deps=req.dependencies, lock_sha256=req.lock_sha256 or None)
    cache = ccache_remote.parse(ccache_remote_url) if ccache_remote_url else None
    out, built = run_build(plan, engine, req=req, image_id=builder.id, info=info, force=force, remote_cache=cache)
    return CellResult(out_dir=out, built=built, plan=plan, info=info)


def build_engines(settings: Any) -> tuple[eng.EngineConfig, eng.EngineConfig]:
    """(this host's engine, the engine builds run on): the first --builder that answers, if any were given
    (a matrix hands each cell process one builder), else this host's engine."""
    home = eng.resolve_engine(settings.engine)
    if not settings.builders:
        return home, home
    problems = []
    for spec in parse_builders(settings.builders):
        try:
            engine = eng.resolve_builder(spec)
        except EngineError as err:
            problems.append(str(err))
            continue
        if len(settings.builders) > 1 or problems:
            print(f"tflite-forge: building on {engine.title}", file=sys.stderr)
        return home, engine
    raise EngineError("no builder answers: " + "; ".join(problems))
