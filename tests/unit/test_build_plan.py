"""plan_build is pure: the whole container build as data, checked without an engine."""

import json
from pathlib import Path

import pytest

from tflite_forge import build as b
from tflite_forge import image
from tflite_forge.arches import resolve_arch


def request(tmp_path, arch="aarch64", **kw):
    base = dict(
        label="tensorflow-2.16.1", version="2.16.1", arch=resolve_arch(arch), image="tflite-forge/builder:x-1",
        gcc_version="12.2.0", tensorflow=tmp_path / "src" / "tensorflow",
        dependencies=(b.Dependency(name="xnnpack", cmake_variable="FETCHCONTENT_SOURCE_DIR_XNNPACK", path=tmp_path / "d/x"),
                      b.Dependency(name="fp16", cmake_variable="FP16_SOURCE_DIR", path=tmp_path / "d/f")),
        cmake_options=(("TFLITE_ENABLE_XNNPACK", "ON"),), source_date_epoch=1709856000,
        work_dir=tmp_path / "work", jobs=3, host_arch="x86_64")   # the same plans on any runner
    base.update(kw)
    return b.BuildRequest(**base)


def step(plan, name):
    return next(s for s in plan.steps if s.name == name)


def test_cross_build_makes_host_flatc_first_and_passes_it(tmp_path):
    plan = b.plan_build(request(tmp_path))
    names = [s.name for s in plan.steps]
    assert names == ["host-configure", "host-flatc", "host-tools", "configure", "build", "collect"]
    assert "flatbuffers-flatc" in step(plan, "host-flatc").argv
    configure = step(plan, "configure").argv
    assert f"-DTFLITE_HOST_TOOLS_DIR={b.HOST_TOOLS}" in configure
    assert "-DCMAKE_TOOLCHAIN_FILE=/toolchains/aarch64-linux-gnu.cmake" in configure
    host = step(plan, "host-configure").argv
    assert not any("TOOLCHAIN_FILE" in a for a in host)


def test_native_build_skips_host_tools(tmp_path):
    plan = b.plan_build(request(tmp_path, arch="x86_64"))
    assert [s.name for s in plan.steps] == ["configure", "build", "collect"]
    assert not any("TFLITE_HOST_TOOLS_DIR" in a for a in step(plan, "configure").argv)


def test_cross_is_decided_by_the_host_arch_not_by_x86_64(tmp_path):
    on_arm = b.plan_build(request(tmp_path, arch="aarch64", host_arch="aarch64"))
    assert not on_arm.cross and [s.name for s in on_arm.steps] == ["configure", "build", "collect"]
    x86_on_arm = b.plan_build(request(tmp_path, arch="x86_64", host_arch="aarch64"))
    assert x86_on_arm.cross and [s.name for s in x86_on_arm.steps][:3] == ["host-configure", "host-flatc", "host-tools"]
    assert f"-DTFLITE_HOST_TOOLS_DIR={b.HOST_TOOLS}" in step(x86_on_arm, "configure").argv
    assert not b.plan_build(request(tmp_path, arch="x86_64", host_arch="x86_64")).cross


def test_every_locked_tree_is_passed_and_fetching_is_off(tmp_path):
    plan = b.plan_build(request(tmp_path))
    for name in ("host-configure", "configure"):
        argv = step(plan, name).argv
        assert "-DFETCHCONTENT_SOURCE_DIR_XNNPACK=/deps/xnnpack" in argv
        assert "-DFP16_SOURCE_DIR=/deps/fp16" in argv
        assert "-DFETCHCONTENT_FULLY_DISCONNECTED=ON" in argv
    assert "-DCMAKE_BUILD_TYPE=Release" in step(plan, "configure").argv


def test_sources_read_only_build_and_ccache_volumes_hermetic_container(tmp_path):
    plan = b.plan_build(request(tmp_path))
    mounts = {m.target: m for m in plan.spec.mounts}
    assert mounts["/src/tensorflow"].read_only and mounts["/deps/xnnpack"].read_only and mounts["/toolchains"].read_only
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
    assert all(n.startswith(("tflite-forge-build-", "tflite-forge-ccache-")) for n in names(a))


def test_reproducibility_flags(tmp_path):
    env = dict(step(b.plan_build(request(tmp_path)), "configure").env)
    assert "-ffile-prefix-map=/src/tensorflow=." in env["CFLAGS"].split()
    assert env["CFLAGS"] == env["CXXFLAGS"]
    assert "-Wl,--build-id=sha1" in env["LDFLAGS"]


def test_fp16_format_is_the_toolchain_files_not_the_builds(tmp_path):
    """One place: the armhf toolchain file adds -mfp16-format=ieee when XNNPACK is on (it sees the
    -D the configure step passes); the build's own CFLAGS carry only path maps."""
    plan = b.plan_build(request(tmp_path, arch="armhf"))
    configure = step(plan, "configure")
    assert "-DTFLITE_ENABLE_XNNPACK=ON" in configure.argv
    assert "-DCMAKE_TOOLCHAIN_FILE=/toolchains/arm-linux-gnueabihf.cmake" in configure.argv
    for name in ("configure", "host-configure"):
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
    req = request(tmp_path, dependencies=())
    src = Path(req.tensorflow)
    src.mkdir(parents=True)
    (src / "a.cc").write_text("int a;\n")
    plan = b.plan_build(req)
    inputs = b.plan_inputs(plan, req, "sha256:1")
    assert not b.is_up_to_date(plan, inputs)  # never built
    (plan.out_dir / "lib").mkdir(parents=True)
    (plan.out_dir / "lib" / "libtensorflowlite_c.so").write_bytes(b"\x7fELF")
    info = json.dumps({"libraries": [{"name": "libtensorflowlite_c.so", "sha256": "x"}]})
    (plan.out_dir / "build-info.json").write_text(info)
    import hashlib
    plan.stamp_path.parent.mkdir(parents=True)
    plan.stamp_path.write_text(json.dumps({"inputs": inputs, "build_info_sha256": hashlib.sha256(info.encode()).hexdigest()}))
    assert b.is_up_to_date(plan, inputs)
    assert not b.is_up_to_date(plan, b.plan_inputs(plan, req, "sha256:2"))  # new image
    (src / "a.cc").write_text("int a = 1;\n")
    assert not b.is_up_to_date(plan, b.plan_inputs(plan, req, "sha256:1"))  # edited source
    (plan.out_dir / "lib" / "libtensorflowlite_c.so").unlink()
    assert not b.is_up_to_date(plan, inputs)


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
    for pkg in ("cmake", "ninja-build", "ccache", "qemu-user-static", "file"):
        assert pkg in image.BASE_PACKAGES


def test_facts_parsing():
    facts = image.parse_facts("glibc=2.36\ngcc=12.2.0\n\nnoise\n")
    assert facts == {"glibc": "2.36", "gcc": "12.2.0"}


@pytest.mark.parametrize("line,expected", [("[12/345] Building CXX object x.o", (12, 345)), ("-- Configuring done", None)])
def test_ninja_progress_lines(line, expected):
    m = b.NINJA_PROGRESS.match(line)
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
    assert [d["name"] for d in info["dependencies"]] == ["xnnpack", "fp16"]
    # Embedded in a reproducible tarball: same inputs, same bytes; nothing taken from the clock.
    text = json.dumps(info, sort_keys=True)
    assert text == json.dumps(b.build_info(recipe, resolve_arch("aarch64"), builder, plan, **args), sort_keys=True)
    now = time.time()
    numbers = [int(n) for n in re.findall(r"\b\d{9,}\b", text)]
    assert not [n for n in numbers if abs(n - now) < 86400], "a value looks like the build's clock"
    assert not re.search(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}", text)
