"""Miniature TensorFlow: a generated release that keeps TensorFlow Lite's build contract.

`write_release(dest, version)` writes archives under `dest/www/<host>/<path>` and a recipe
under `dest/recipes/`; see README.md in this package for what is real and what is a stand-in.
"""

from .generate import (
    DEPENDENCY_EPOCH,
    FLATBUFFERS_TAG,
    FP16_COMMIT,
    PTHREADPOOL_COMMIT,
    XNNPACK_TAG,
    MiniatureDependency,
    MiniatureRelease,
    url_path,
    write_release,
)

__all__ = [
    "DEPENDENCY_EPOCH", "FLATBUFFERS_TAG", "FP16_COMMIT", "PTHREADPOOL_COMMIT", "XNNPACK_TAG",
    "MiniatureDependency", "MiniatureRelease", "url_path", "write_release",
]
