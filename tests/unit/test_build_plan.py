"""plan_build is pure: the whole container build as data, checked without an engine."""

import json
from dataclasses import replace as dataclass_replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from tflite_forge import build_plan as b
from tflite_forge import build_run
from tflite_forge import image
from tflite_forge.arches import resolve_arch
from tflite_forge.workspace import Cell, Workspace


def request(tmp_path, arch="aarch64", label="tensorflow-2.16.1", version="2.16.1", work_dir=None, **kw):
    work_dir = work_dir or tmp_path / "work"
    base = dict(
        cell=Cell(recipe=SimpleNamespace(label=label, version=version), arch=resolve_arch(arch)),
        workspace=Workspace(work_dir=work_dir, dist_dir=tmp_path / "dist", cache_dir=tmp_path / "cache"),
        image="tflite-forge/builder:x-1",
        gcc_version="12.2.0", tensorflow=tmp_path / "src" / "tensorflow",
        dependencies=(b.Dependency(name="xnnpack", cmake_variable="FETCHCONTENT_SOURCE_DIR_XNNPACK", path=tmp_path / "d/x",
                                   sha256="a" * 64),
                      b.Dependency(name="fp16", cmake_variable="FP16_SOURCE_DIR", path=tmp_path / "d/f", sha256="b" * 64),
                      b.Dependency(name="flatbuffers", cmake_variable="FETCHCONTENT_SOURCE_DIR_FLATBUFFERS",
                                   path=tmp_path / "d/fb", sha256="c" * 64)),
        source_sha256="d" * 64, patch_sets=("o3:11", "soname:22"), lock_sha256="e" * 64, toolchain_sha256="f" * 64,
        host_compiler="host_gcc=12.2.0 cmake=3.25.1 ninja=1.11.1 debian=12.8 base=sha256:b1",
        cmake_options=(("TFLITE_ENABLE_XNNPACK", "ON"),), source_date_epoch=1709856000,
        jobs=3, host_arch="x86_64")   # the same plans on any runner
    base.update(kw)
    return b.BuildRequest(**base)


def step(plan, name):
    return next(s for s in plan.steps if s.name == name)


def test_cross_build_makes_host_flatc_first_and_passes_it(tmp_path):
    plan = b.plan_build(request(tmp_path))
    names = [s.name for s in plan.steps]
    assert names == ["sources", "host-tools", "configure", "build", "collect"]
    host = step(plan, "host-tools")
    # Straight from the flatbuffers tree (configured as TFLite's flatbuffers-flatc ExternalProject
    # configures it), natively, under a lock on the shared /host volume.
    assert host.argv[:2] == ("flock", "/host/.lock")
    script = host.argv[-1]
    assert "cmake -S /deps/flatbuffers -B /host/build" in script and "--target flatc" in script
    assert "-DFLATBUFFERS_BUILD_TESTS=OFF" in script and "TOOLCHAIN_FILE" not in script
    assert f"{b.HOST_TOOLS}/flatc --version" in script
    configure = step(plan, "configure").argv
    assert f"-DTFLITE_HOST_TOOLS_DIR={b.HOST_TOOLS}" in configure
    assert "-DCMAKE_TOOLCHAIN_FILE=/toolchains/aarch64-linux-gnu.cmake" in configure


def test_native_build_skips_host_tools(tmp_path):
    plan = b.plan_build(request(tmp_path, arch="x86_64"))
    assert [s.name for s in plan.steps] == ["sources", "configure", "build", "collect"]
    assert not any("TFLITE_HOST_TOOLS_DIR" in a for a in step(plan, "configure").argv)
    assert "/host" not in {m.target for m in plan.spec.mounts}


def test_cross_is_decided_by_the_host_arch_not_by_x86_64(tmp_path):
    on_arm = b.plan_build(request(tmp_path, arch="aarch64", host_arch="aarch64"))
    assert not on_arm.cross and [s.name for s in on_arm.steps] == ["sources", "configure", "build", "collect"]
    x86_on_arm = b.plan_build(request(tmp_path, arch="x86_64", host_arch="aarch64"))
    assert x86_on_arm.cross and [s.name for s in x86_on_arm.steps][:2] == ["sources", "host-tools"]
    assert f"-DTFLITE_HOST_TOOLS_DIR={b.HOST_TOOLS}" in step(x86_on_arm, "configure").argv
    assert not b.plan_build(request(tmp_path, arch="x86_64", host_arch="x86_64")).cross


def test_a_cross_build_without_flatbuffers_or_with_an_unknown_host_tool_is_refused_when_planned(tmp_path):
    from tflite_forge.errors import ConfigError

    deps = tuple(d for d in request(tmp_path).dependencies if d.name != "flatbuffers")
    with pytest.raises(ConfigError, match="needs the host flatc from the 'flatbuffers' dependency"):
        b.plan_build(request(tmp_path, dependencies=deps))
    with pytest.raises(ConfigError, match="host_tools_target = 'protoc'"):
        b.plan_build(request(tmp_path, host_tools_target="protoc"))
    assert b.plan_build(request(tmp_path, arch="x86_64", dependencies=deps))   # native: no host tools needed


def test_every_locked_tree_is_passed_and_fetching_is_off(tmp_path):
    plan = b.plan_build(request(tmp_path))
    argv = step(plan, "configure").argv
    assert "-DFETCHCONTENT_SOURCE_DIR_XNNPACK=/deps/xnnpack" in argv
    assert "-DFP16_SOURCE_DIR=/deps/fp16" in argv
    assert "-DFETCHCONTENT_FULLY_DISCONNECTED=ON" in argv
    assert "-DCMAKE_BUILD_TYPE=Release" in argv and "-DCMAKE_EXPORT_COMPILE_COMMANDS=ON" in argv


def test_dependency_trees_are_copied_writable_every_run(tmp_path):
    """TFLite's CMake writes into dependency source trees at configure time (eigen.cmake): the build
    gets its own copies at /deps, exactly the read-only working copies (--delete puts back what a
    previous configure wrote), owned by the build user, mtimes kept (ninja stays incremental)."""
    plan = b.plan_build(request(tmp_path))
    sources = step(plan, "sources").argv[-1]
    assert sources.startswith("rsync --recursive --links --times --omit-dir-times --chmod=u+rwX --delete -- "
                              "/src/deps/ /deps/")
    assert "--owner" not in sources and "-a " not in sources
    mounts = {m.target: m for m in plan.spec.mounts}
    assert mounts["/src/deps/xnnpack"].read_only and mounts["/src/deps/fp16"].read_only
    assert mounts["/deps"].volume and not mounts["/deps"].read_only
    assert "/deps/xnnpack" not in mounts
    assert sources.index("rsync") < sources.index("codemodel-v2")


def test_sources_read_only_build_and_ccache_volumes_hermetic_container(tmp_path):
    plan = b.plan_build(request(tmp_path))
    mounts = {m.target: m for m in plan.spec.mounts}
    assert mounts["/src/tensorflow"].read_only and mounts["/src/deps/xnnpack"].read_only and mounts["/toolchains"].read_only
    assert mounts["/build"].volume and not mounts["/build"].read_only
    assert mounts["/ccache"].volume
    assert not mounts["/out"].read_only and not mounts["/out"].volume
    assert plan.spec.network == "none" and plan.spec.cap_drop_all and plan.spec.no_new_privileges
    assert plan.spec.user == "1000:1000"
    assert ("SOURCE_DATE_EPOCH", "1709856000") in plan.spec.env


def test_volumes_keyed_by_version_arch_and_options(tmp_path):
    a = b.plan_build(request(tmp_path))
    same = b.plan_build(request(tmp_path, jobs=1))
    other_arch = b.plan_build(request(tmp_path, arch="armhf"))
    other_opts = b.plan_build(request(tmp_path, cmake_options=(("TFLITE_ENABLE_XNNPACK", "OFF"),)))
    other_version = b.plan_build(request(tmp_path, label="tensorflow-2.17.0", version="2.17.0"))
    names = lambda p: [v for v, _ in p.volumes]
    assert names(a) == names(same)
    assert len({tuple(names(p)) for p in (a, other_arch, other_opts, other_version)}) == 4
    assert all(n.startswith(("tflite-forge-build-", "tflite-forge-deps-", "tflite-forge-ccache-", "tflite-forge-host-"))
               for n in names(a))


def volume(plan, prefix):
    return next(v for v, _ in plan.volumes if v.startswith(prefix))


@pytest.mark.parametrize("change", [
    {"source_sha256": "9" * 64}, {"patch_sets": ("o3:11",)}, {"patch_sets": ("o3:11", "soname:33")},
    {"lock_sha256": "9" * 64}, {"toolchain_sha256": "9" * 64}, {"image": "tflite-forge/builder:x-2"},
    {"cmake_options": (("TFLITE_ENABLE_XNNPACK", "ON"), ("TFLITE_ENABLE_RUY", "ON"))},
])
def test_the_build_tree_is_keyed_by_every_input_cmake_cannot_track(tmp_path, change):
    """S2: a patch set switched off must not leave the old SONAME's library in the tree; S1: a changed
    tree brings files whose mtimes ninja may take for old. A fresh build and deps volume for each."""
    a = b.plan_build(request(tmp_path))
    other = b.plan_build(request(tmp_path, **change))
    assert volume(a, "tflite-forge-build-") != volume(other, "tflite-forge-build-")
    assert volume(a, "tflite-forge-deps-") != volume(other, "tflite-forge-deps-")
    assert volume(a, "tflite-forge-ccache-") == volume(other, "tflite-forge-ccache-") or "cmake_options" in change


def test_a_changed_dependency_archive_or_its_patches_rekeys_the_build(tmp_path):
    deps = request(tmp_path).dependencies
    bumped = tuple(dataclass_replace(d, sha256="9" * 64) if d.name == "fp16" else d for d in deps)
    patched = tuple(dataclass_replace(d, patches=("o3:11",)) if d.name == "xnnpack" else d for d in deps)
    a = b.plan_build(request(tmp_path))
    for other in (bumped, patched):
        assert volume(a, "tflite-forge-build-") != volume(b.plan_build(request(tmp_path, dependencies=other)),
                                                           "tflite-forge-build-")


def test_host_tools_are_keyed_by_flatbuffers_and_the_host_compiler_only(tmp_path):
    """Every cross cell of one flatbuffers tree shares one host flatc (armhf and aarch64, another
    TensorFlow, other options); a new flatbuffers archive or host compiler gets a new one (S1)."""
    a = volume(b.plan_build(request(tmp_path)), "tflite-forge-host-")
    shared = [b.plan_build(request(tmp_path, arch="armhf")), b.plan_build(request(tmp_path, arch="riscv64")),
              b.plan_build(request(tmp_path, label="tensorflow-2.17.0", version="2.17.0", source_sha256="1" * 64)),
              b.plan_build(request(tmp_path, cmake_options=(), image="tflite-forge/builder:armhf-2"))]
    assert {volume(p, "tflite-forge-host-") for p in shared} == {a}
    deps = request(tmp_path).dependencies
    new_fb = tuple(dataclass_replace(d, sha256="9" * 64) if d.name == "flatbuffers" else d for d in deps)
    assert volume(b.plan_build(request(tmp_path, dependencies=new_fb)), "tflite-forge-host-") != a
    assert volume(b.plan_build(request(tmp_path, host_compiler="host_gcc=13.1.0")), "tflite-forge-host-") != a


def test_collect_takes_the_file_api_artifacts_not_a_find(tmp_path):
    collect = step(b.plan_build(request(tmp_path)), "collect")
    assert collect.collect and "find" not in collect.argv[-1]
    assert "/build/target/.cmake/api/v1/reply" in collect.argv[-1]
    assert "compile_commands.json" in collect.argv[-1]


def test_reproducibility_flags(tmp_path):
    env = dict(step(b.plan_build(request(tmp_path)), "configure").env)
    assert "-ffile-prefix-map=/src/tensorflow=." in env["CFLAGS"].split()
    assert {"-ffile-prefix-map=/deps=deps", "-ffile-prefix-map=/host=host"} <= set(env["CFLAGS"].split())
    assert env["CFLAGS"] == env["CXXFLAGS"]
    assert "-Wl,--build-id=sha1" in env["LDFLAGS"]


def test_fp16_format_is_the_toolchain_files_not_the_builds(tmp_path):
    """One place: the armhf toolchain file adds -mfp16-format=ieee when XNNPACK is on (it sees the
    -D the configure step passes); the build's own CFLAGS carry only path maps."""
    plan = b.plan_build(request(tmp_path, arch="armhf"))
    configure = step(plan, "configure")
    assert "-DTFLITE_ENABLE_XNNPACK=ON" in configure.argv
    assert "-DCMAKE_TOOLCHAIN_FILE=/toolchains/arm-linux-gnueabihf.cmake" in configure.argv
    for name in ("configure", "host-tools"):
        assert "-mfp16-format=ieee" not in dict(step(plan, name).env)["CFLAGS"]
    toolchain = resolve_arch("armhf").toolchain_file.read_text()
    assert "if(NOT DEFINED TFLITE_ENABLE_XNNPACK OR TFLITE_ENABLE_XNNPACK)" in toolchain
    assert "-mfp16-format=ieee" in toolchain


def test_old_gcc_rule_comes_from_the_arch_table_only(tmp_path):
    from tflite_forge.arches import default_cmake_options

    table = default_cmake_options("aarch64", "2.16.1", gcc_major=8)
    assert {table["XNNPACK_ENABLE_ARM_BF16"], table["XNNPACK_ENABLE_ARM_I8MM"]} == {"OFF"}
    old = b.plan_build(request(tmp_path, gcc_version="8.3.0", cmake_options=tuple(sorted(table.items()))))
    assert "-DXNNPACK_ENABLE_ARM_BF16=OFF" in step(old, "configure").argv
    assert "-DXNNPACK_ENABLE_ARM_I8MM=OFF" in step(old, "configure").argv
    # The plan adds no compiler rule of its own: what build_cell got from the table is what runs.
    bare = b.plan_build(request(tmp_path, gcc_version="8.3.0"))
    assert not any("BF16" in a or "I8MM" in a for a in step(bare, "configure").argv)


def test_targets_c_by_default_cxx_shared_on_request(tmp_path):
    plan = b.plan_build(request(tmp_path))
    assert plan.targets == ("tensorflowlite_c",)
    assert "BUILD_SHARED_LIBS" not in dict(plan.cmake_options)
    cxx = b.plan_build(request(tmp_path, cxx_shared=True))
    assert cxx.targets == ("tensorflowlite_c", "tensorflow-lite")
    assert "-DBUILD_SHARED_LIBS=ON" in step(cxx, "configure").argv
    # the C library then NEEDs libtensorflow-lite.so: it finds it beside itself, not in /build
    assert {"-DCMAKE_BUILD_WITH_INSTALL_RPATH=ON", "-DCMAKE_INSTALL_RPATH=$ORIGIN"} <= set(step(cxx, "configure").argv)
    assert "-DCMAKE_INSTALL_RPATH=$ORIGIN" not in step(plan, "configure").argv
    assert ["--target", "tensorflow-lite"] == list(step(cxx, "build").argv[5:7])
    assert "libtensorflow-lite.so*" in cxx.lib_patterns


def test_jobs_reach_ninja(tmp_path):
    plan = b.plan_build(request(tmp_path, jobs=3))
    assert step(plan, "build").argv[-2:] == ("-j", "3")
    assert step(plan, "build").progress


def test_output_paths(tmp_path):
    plan = b.plan_build(request(tmp_path))
    assert plan.out_dir == tmp_path / "work" / "out" / "tensorflow-2.16.1-aarch64"
    assert plan.log_path == tmp_path / "work" / "logs" / "build-tensorflow-2.16.1-aarch64.log"


def test_plan_is_deterministic(tmp_path):
    assert b.plan_build(request(tmp_path)) == b.plan_build(request(tmp_path))


def test_stamp_detects_changed_trees_and_missing_outputs(tmp_path):
    req = request(tmp_path, arch="x86_64", dependencies=())
    src = Path(req.tensorflow)
    src.mkdir(parents=True)
    (src / "a.cc").write_text("int a;\n")
    plan = b.plan_build(req)
    inputs = b.plan_inputs(plan, req, "sha256:1")
    assert not build_run.is_up_to_date(plan, inputs)  # never built
    (plan.out_dir / "lib").mkdir(parents=True)
    (plan.out_dir / "lib" / "libtensorflowlite_c.so").write_bytes(b"\x7fELF")
    info = json.dumps({"libraries": [{"name": "libtensorflowlite_c.so", "sha256": "x"}]})
    (plan.out_dir / "build-info.json").write_text(info)
    import hashlib
    plan.stamp_path.parent.mkdir(parents=True)
    plan.stamp_path.write_text(json.dumps({"inputs": inputs, "build_info_sha256": hashlib.sha256(info.encode()).hexdigest()}))
    assert build_run.is_up_to_date(plan, inputs)
    assert not build_run.is_up_to_date(plan, b.plan_inputs(plan, req, "sha256:2"))  # new image
    (src / "a.cc").write_text("int a = 1;\n")
    assert not build_run.is_up_to_date(plan, b.plan_inputs(plan, req, "sha256:1"))  # edited source
    (plan.out_dir / "lib" / "libtensorflowlite_c.so").unlink()
    assert not build_run.is_up_to_date(plan, inputs)


def test_builder_tag_follows_its_inputs():
    arch = resolve_arch("aarch64")
    tag = image.builder_tag(arch, image.builder_inputs(arch, "sha256:base1", "FROM x\n"))
    assert tag.startswith("tflite-forge/builder:aarch64-")
    assert tag == image.builder_tag(arch, image.builder_inputs(arch, "sha256:base1", "FROM x\n"))
    assert tag != image.builder_tag(arch, image.builder_inputs(arch, "sha256:base2", "FROM x\n"))
    assert tag != image.builder_tag(arch, image.builder_inputs(arch, "sha256:base1", "FROM y\n"))
    armhf = resolve_arch("armhf")
    assert image.builder_inputs(armhf, "b")["cross_packages"] != image.builder_inputs(arch, "b")["cross_packages"]


def test_dockerfile_is_multi_stage_and_installs_the_tools():
    text = image.DOCKERFILE.read_text()
    assert "AS base" in text and "FROM base AS toolchain" in text
    for pkg in ("cmake", "ninja-build", "ccache", "qemu-user-static", "file", "rsync"):
        assert pkg in image.BASE_PACKAGES


def test_facts_parsing():
    facts = image.parse_facts("glibc=2.36\ngcc=12.2.0\n\nnoise\n")
    assert facts == {"glibc": "2.36", "gcc": "12.2.0"}


@pytest.mark.parametrize("line,expected", [("[12/345] Building CXX object x.o", (12, 345)), ("-- Configuring done", None)])
def test_ninja_progress_lines(line, expected):
    m = build_run.NINJA_PROGRESS.match(line)
    assert (m and (int(m.group(1)), int(m.group(2)))) == expected or (m is None and expected is None)


def test_build_info_has_every_key_and_no_clock(tmp_path):
    import re
    import time

    from tflite_forge.recipe import load_recipe

    recipe = load_recipe(Path(__file__).resolve().parents[2] / "recipes" / "tensorflow-2.16.1.toml")
    plan = b.plan_build(request(tmp_path))
    builder = image.BuilderImage(tag="tflite-forge/builder:x-1", id="sha256:b", arch="aarch64",
                                 base_image="debian:bookworm", base_id="sha256:d",
                                 facts={"glibc": "2.36", "gcc": "12.2.0", "cmake": "3.25.1", "debian_suite": "bookworm"})
    deps = request(tmp_path).dependencies
    args = dict(engine="docker", patch_sets=[{"name": "core", "sha256": "ab"}], deps=deps, lock_sha256="cd")
    info = b.build_info(recipe, resolve_arch("aarch64"), builder, plan, **args)
    assert set(info) == {"format", "tflite_forge", "recipe", "arch", "engine", "builder_image", "base_image",
                         "glibc_floor", "compilers", "cmake_options", "targets", "source_date_epoch", "patch_sets",
                         "dependencies", "lock_sha256", "build_paths", "jobs"}
    assert info["source_date_epoch"] == 1709856000 and info["glibc_floor"] == "2.36"
    assert info["arch"]["toolchain_file"] == "toolchains/aarch64-linux-gnu.cmake"
    assert [d["name"] for d in info["dependencies"]] == ["xnnpack", "fp16", "flatbuffers"]
    # Embedded in a reproducible tarball: same inputs, same bytes; nothing taken from the clock.
    text = json.dumps(info, sort_keys=True)
    assert text == json.dumps(b.build_info(recipe, resolve_arch("aarch64"), builder, plan, **args), sort_keys=True)
    now = time.time()
    numbers = [int(n) for n in re.findall(r"\b\d{9,}\b", text)]
    assert not [n for n in numbers if abs(n - now) < 86400], "a value looks like the build's clock"
    assert not re.search(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}", text)


def test_two_work_dirs_building_one_cell_share_no_tree_and_see_no_orphans_of_each_other(tmp_path):
    """The cell lock is the work dir's: two work dirs may build one cell at once. Their build and deps
    trees differ, and the labels a run uses to find its own orphans and superseded volumes carry the
    work dir's id; ccache (safe to share) and the host tools (under flock) stay shared."""
    a = b.plan_build(request(tmp_path, work_dir=tmp_path / "a"))
    other = b.plan_build(request(tmp_path, work_dir=tmp_path / "b"))
    for prefix in ("tflite-forge-build-", "tflite-forge-deps-"):
        assert volume(a, prefix) != volume(other, prefix)
    for prefix in ("tflite-forge-ccache-", "tflite-forge-host-"):
        assert volume(a, prefix) == volume(other, prefix)
    assert a.key == other.key and a.cell_labels != other.cell_labels
    assert ("io.tflite-forge.work", b.work_id(tmp_path / "a")) in a.cell_labels
    assert dict(a.spec.labels) == dict(a.cell_labels)
