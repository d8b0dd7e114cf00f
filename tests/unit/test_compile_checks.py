"""The patch sets' [[compile_check]] rows, run on compile_commands.json entries shaped like CMake's."""

import json
from pathlib import Path

import pytest

from tflite_forge import build_run as b
from tflite_forge import compile_checks
from tflite_forge.errors import PatchError
from tflite_forge.patchset import PATCHES_DIR, load_patch_set

TREES = {"tensorflow": "/src/tensorflow"}


def entry(file, target, flags, directory="/build/target/_deps/xnnpack-build"):
    obj = f"CMakeFiles/{target}.dir/{file.rsplit('/', 1)[-1]}.o"
    return {"directory": directory, "file": file, "output": obj,
            "command": f"/usr/bin/aarch64-linux-gnu-gcc {flags} -o {obj} -c {file}"}


def checks(set_name, arch):
    ps = load_patch_set(PATCHES_DIR / f"{set_name}.toml")
    return [c for c in ps.checks if c.applies.why_not("2.14.0", arch, "cmake") is None]


def run(entries, set_name, arch):
    return {r["id"]: r for r in compile_checks.run(entries, checks(set_name, arch), trees=TREES, deps_root="/deps")}


GOOD = [
    entry("/deps/xnnpack/src/f32-vmulc/neon.c", "microkernels-prod", "-funsafe-math-optimizations -O3 -DNDEBUG -O3"),
    entry("/deps/xnnpack/src/packing.c", "packing", "-O3 -DNDEBUG -O3"),
    entry("/deps/xnnpack/src/operator.c", "XNNPACK", "-O3 -DNDEBUG -Os"),
    entry("/src/tensorflow/tensorflow/lite/core/c/c_api.cc", "tensorflow-lite", "-O3 -DNDEBUG", "/build/target"),
]


def test_o3_checks_pass_on_raised_kernels_and_count_what_they_saw():
    report = run(GOOD, "o3", "aarch64")
    assert report["xnnpack-no-o2"] == {"id": "xnnpack-no-o2", "set": "o3", "matched": 3, "failed": ""}
    assert report["xnnpack-microkernels-o3"]["matched"] == 1 and not report["xnnpack-microkernels-o3"]["failed"]


def test_a_kernel_left_at_o2_fails_naming_its_compile_command():
    bad = GOOD + [entry("/deps/xnnpack/src/f32-vmulc/scalar.c", "microkernels-all", "-O3 -DNDEBUG -O2")]
    report = run(bad, "o3", "aarch64")
    failed = report["xnnpack-no-o2"]["failed"]
    assert failed.startswith("/deps/xnnpack/src/f32-vmulc/scalar.c (target microkernels-all) has -O2: ")
    assert "aarch64-linux-gnu-gcc" in failed and "\n" not in failed
    assert "ends on -O2 instead of -O3" in report["xnnpack-microkernels-o3"]["failed"]


def test_tensorflows_own_files_are_not_xnnpacks():
    tf_o2 = [entry("/src/tensorflow/tensorflow/lite/kernels/add.cc", "tensorflow-lite", "-O2", "/build/target")]
    assert not run(tf_o2, "o3", "aarch64")["xnnpack-no-o2"]["failed"]


def test_aarch64_may_carry_no_mfpu_and_armhf_keeps_neon_vfpv4():
    assert checks("drop-mfpu-neon", "aarch64")[0].id == "aarch64-no-mfpu"
    mfpu = [entry("/deps/xnnpack/src/f32-vmulc/neon.c", "microkernels-prod", "-O3 -mfpu=neon")]
    assert "has -mfpu=neon" in run(mfpu, "drop-mfpu-neon", "aarch64")["aarch64-no-mfpu"]["failed"]
    assert not run(GOOD, "drop-mfpu-neon", "aarch64")["aarch64-no-mfpu"]["failed"]

    armhf_flags = "-march=armv7-a -mfpu=neon-vfpv4 -funsafe-math-optimizations -O3"
    kept = [entry("/deps/xnnpack/src/f32-vmulc/neon.c", "microkernels-prod", armhf_flags + " -march=armv7-a -mfpu=neon"),
            entry("/deps/xnnpack/src/asm.S", "microkernels-prod", "-O3")]          # assembler: not C/C++
    report = run(kept, "drop-mfpu-neon", "armhf")
    assert set(report) == {"armhf-keeps-neon-vfpv4"}
    assert report["armhf-keeps-neon-vfpv4"] == {"id": "armhf-keeps-neon-vfpv4", "set": "drop-mfpu-neon",
                                                "matched": 1, "failed": ""}
    stripped = [entry("/deps/xnnpack/src/init.c", "XNNPACK", "-march=armv7-a -O3")]
    assert "lacks -mfpu=neon-vfpv4" in run(stripped, "drop-mfpu-neon", "armhf")["armhf-keeps-neon-vfpv4"]["failed"]


def test_arguments_form_and_missing_output_field():
    e = {"directory": "/build/target/_deps/xnnpack-build", "file": "/deps/xnnpack/src/packing.c",
         "arguments": ["cc", "-O2", "-o", "CMakeFiles/packing.dir/src/packing.c.o", "-c", "/deps/xnnpack/src/packing.c"]}
    (c,) = compile_checks.parse([e])
    assert c.target == "packing" and c.argv[1] == "-O2"
    assert "has -O2" in run([e], "o3", "x86_64")["xnnpack-no-o2"]["failed"]


def test_a_check_that_checks_nothing_or_a_bad_opt_flag_is_a_schema_error(tmp_path):
    base = '[set]\nkind = "tuning"\ndescription = "x"\n[[edit]]\nid = "e"\ndescription = "d"\ntree = "tensorflow"\n' \
           'upstream = "N/A test"\nfiles = ["a"]\npattern = "a"\nreplacement = "b"\ncount = 1\n'
    (tmp_path / "s.toml").write_text(base + '[[compile_check]]\nid = "c"\ndescription = "d"\n')
    with pytest.raises(PatchError, match=r"\[\[compile_check\]\]\[0\]: checks nothing"):
        load_patch_set(tmp_path / "s.toml")
    (tmp_path / "s.toml").write_text(base + '[[compile_check]]\nid = "c"\ndescription = "d"\nlast_opt = "O3"\n')
    with pytest.raises(PatchError, match="is not a -O flag"):
        load_patch_set(tmp_path / "s.toml")
    (tmp_path / "s.toml").write_text(base + '[[compile_check]]\nid = "c"\ndescription = "d"\nforbid = ["-O2"]\n'
                                            'colour = "red"\n')
    with pytest.raises(PatchError, match="colour"):
        load_patch_set(tmp_path / "s.toml")


def write_reply(reply: Path, targets: dict[str, list[str]]) -> None:
    reply.mkdir(parents=True)
    listed = []
    for i, (name, artifacts) in enumerate(targets.items()):
        (reply / f"target-{i}.json").write_text(json.dumps({"name": name, "artifacts": [{"path": a} for a in artifacts]}))
        listed.append({"name": name, "jsonFile": f"target-{i}.json"})
    (reply / "codemodel-v2-1.json").write_text(json.dumps({"configurations": [{"targets": listed}]}))
    (reply / "index-2026-01-01T00-00-00-0000.json").write_text(json.dumps(
        {"objects": [{"kind": "cache", "jsonFile": "cache-v2.json"}, {"kind": "codemodel", "jsonFile": "codemodel-v2-1.json"}]}))


def test_collect_reads_exactly_the_targets_artifacts_from_the_file_api(tmp_path):
    write_reply(tmp_path / "reply", {"tensorflowlite_c": ["libtensorflowlite_c.so.2.99.1"],
                                     "tensorflow-lite": ["tensorflow-lite/libtensorflow-lite.a"],
                                     "XNNPACK": ["_deps/xnnpack-build/libXNNPACK.a"]})
    assert b.target_artifacts(tmp_path / "reply", ("tensorflowlite_c",)) == ["libtensorflowlite_c.so.2.99.1"]
    with pytest.raises(b.BuildError, match="no CMake target nope"):
        b.target_artifacts(tmp_path / "reply", ("nope",))
