"""The Bazel files of the miniature TensorFlow tree, carrying the lines the patch sets edit.

Only the flag lines matter, and they keep the real files' shapes (indentation, quoting,
trailing commas, neighbouring lines), so `patches/o3.toml` and `patches/drop-mfpu-neon.toml`
match here exactly as they do in a release archive:

    tensorflow/lite/kernels/internal/BUILD      NEON_FLAGS_IF_APPLICABLE: `        "-mfpu=neon",`
                                                after `        "-O3",` for each 32-bit ARM key
    tensorflow/lite/build_def.bzl               tflite_copts(): `            "-mfpu=neon",`
                                                under //tensorflow:android_arm
    tensorflow/tools/toolchains/embedded/arm-linux/cc_config.bzl.tpl
                                                opt flag set: `"-g0",` then `"-O2",` (32 spaces),
                                                once for aarch64 and once for armhf

Everything around those lines is written for the miniature (no upstream text); Bazel never
runs on it. The 32-bit ARM keys are the four seen in the 2020+ stored BUILD (:arm,
:armeabi-v7a, :armhf, :armv7a); per-tag keys could not be read offline (see patches/*.toml).
"""

from __future__ import annotations

import re

# The 32-bit ARM cpu values NEON_FLAGS_IF_APPLICABLE keys on (same for every supported version).
_NEON_KEYS = ("arm", "armeabi-v7a", "armhf", "armv7a")


def _check_version(version: str) -> None:
    if not re.match(r"^\d+\.\d+\.\d+$", version):
        raise ValueError(f"expected a TensorFlow version such as '2.16.1', got {version!r}")


def _kernels_internal_build() -> str:
    keys = "".join(
        f'    ":{k}": [\n'
        f'        "-O3",\n'
        f'        "-mfpu=neon",\n'
        f'    ],\n'
        for k in _NEON_KEYS
    )
    settings = "".join(
        f'config_setting(\n'
        f'    name = "{k}",\n'
        f'    values = {{"cpu": "{k}"}},\n'
        f')\n\n'
        for k in ("aarch64", *_NEON_KEYS)
    )
    return (
        '# Miniature: the optimized-kernel flags of the TFLite kernels package.\n'
        'load("//tensorflow/lite:build_def.bzl", "tflite_copts")\n'
        '\n'
        'package(default_visibility = ["//visibility:public"])\n'
        '\n'
        'HARD_FP_FLAGS_IF_APPLICABLE = select({\n'
        '    "//tensorflow:android_arm": ["-mfloat-abi=softfp"],\n'
        '    "//conditions:default": [],\n'
        '})\n'
        '\n'
        'NEON_FLAGS_IF_APPLICABLE = select({\n'
        f'{keys}'
        '    "//conditions:default": [\n'
        '        "-O3",\n'
        '    ],\n'
        '})\n'
        '\n'
        f'{settings}'
        'cc_library(\n'
        '    name = "neon_tensor_utils",\n'
        '    srcs = ["optimized/neon_tensor_utils.cc"],\n'
        '    hdrs = ["optimized/neon_tensor_utils.h"],\n'
        '    copts = tflite_copts() + NEON_FLAGS_IF_APPLICABLE + HARD_FP_FLAGS_IF_APPLICABLE,\n'
        ')\n'
        '\n'
        'cc_library(\n'
        '    name = "tensor_utils",\n'
        '    srcs = ["tensor_utils.cc"],\n'
        '    hdrs = ["tensor_utils.h"],\n'
        '    copts = tflite_copts() + NEON_FLAGS_IF_APPLICABLE,\n'
        '    deps = [":neon_tensor_utils"],\n'
        ')\n'
    )


def _build_def_bzl() -> str:
    return (
        '"""Miniature: compile flags shared by the TFLite packages."""\n'
        '\n'
        'def clean_dep(target):\n'
        '    """Resolve a label relative to this repository."""\n'
        '    return str(Label(target))\n'
        '\n'
        'def tflite_copts():\n'
        '    """Compile flags every TFLite target uses."""\n'
        '    copts = [\n'
        '        "-DFARMHASH_NO_CXX_STRING",\n'
        '    ] + select({\n'
        '        clean_dep("//tensorflow:android_arm"): [\n'
        '            "-mfpu=neon",\n'
        '            "-mfloat-abi=softfp",\n'
        '        ],\n'
        '        clean_dep("//tensorflow:linux_x86_64"): [\n'
        '            "-msse4.2",\n'
        '        ],\n'
        '        "//conditions:default": [\n'
        '            "-Wno-sign-compare",\n'
        '        ],\n'
        '    }) + select({\n'
        '        clean_dep("//tensorflow:optimized"): ["-O3"],\n'
        '        "//conditions:default": [],\n'
        '    })\n'
        '    return copts\n'
    )


def _opt_flag_set() -> str:
    return (
        '                flag_set(\n'
        '                    actions = all_compile_actions,\n'
        '                    flag_groups = [\n'
        '                        flag_group(\n'
        '                            flags = [\n'
        '                                "-g0",\n'
        '                                "-O2",\n'
        '                                "-DNDEBUG",\n'
        '                                "-ffunction-sections",\n'
        '                                "-fdata-sections",\n'
        '                            ],\n'
        '                        ),\n'
        '                    ],\n'
        '                    with_features = [with_feature_set(features = ["opt"])],\n'
        '                ),\n'
    )


def _cc_config_tpl() -> str:
    branches = []
    for cond, cpu in (("if", "aarch64"), ("elif", "armhf")):
        branches.append(
            f'    {cond} (ctx.attr.cpu == "{cpu}"):\n'
            f'        default_compile_flags_feature = feature(\n'
            f'            name = "default_compile_flags",\n'
            f'            enabled = True,\n'
            f'            flag_sets = [\n'
            f'{_opt_flag_set()}'
            f'            ],\n'
            f'        )\n'
        )
    return (
        '# Miniature: cross toolchain config for the embedded ARM Bazel builds.\n'
        'load("@bazel_tools//tools/cpp:cc_toolchain_config_lib.bzl", "feature", "flag_group", "flag_set", "with_feature_set")\n'
        'load("@bazel_tools//tools/build_defs/cc:action_names.bzl", "ACTION_NAMES")\n'
        '\n'
        'def _impl(ctx):\n'
        '    all_compile_actions = [ACTION_NAMES.c_compile, ACTION_NAMES.cpp_compile, ACTION_NAMES.assemble]\n'
        '    opt_feature = feature(name = "opt")\n'
        '\n'
        + "".join(branches) +
        '    else:\n'
        '        fail("Unreachable")\n'
        '    return [opt_feature, default_compile_flags_feature]\n'
        '\n'
        'cc_toolchain_config = rule(\n'
        '    implementation = _impl,\n'
        '    attrs = {"cpu": attr.string(mandatory = True, values = ["aarch64", "armhf"])},\n'
        '    provides = [CcToolchainConfigInfo],\n'
        ')\n'
    )


def bazel_files(version: str = "2.16.1") -> dict[str, str]:
    """{relpath: text} of the Bazel files the patch sets edit, for miniature `version`."""
    _check_version(version)
    return {
        "tensorflow/lite/kernels/internal/BUILD": _kernels_internal_build(),
        "tensorflow/lite/build_def.bzl": _build_def_bzl(),
        "tensorflow/tools/toolchains/embedded/arm-linux/cc_config.bzl.tpl": _cc_config_tpl(),
    }
