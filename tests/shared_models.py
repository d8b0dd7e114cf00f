"""Models from ../shared/models (beside the repository, in CI's checkout too): TensorFlow's own
`add.bin` (tensorflow/lite/testdata), one float32 input "input" [1, 8, 8, 3], output = 3 * input.

`TFLITE_FORGE_ADD_BIN` points elsewhere. Missing: skipped on a developer machine, a failure under
CI=true (tests.ci.unavailable): CI must run the real model.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.ci import unavailable

REPO = Path(__file__).resolve().parents[1]
ADD_BIN = REPO.parent / "shared" / "models" / "add.bin"
ADD_BIN_SHAPE = [1, 8, 8, 3]


def add_bin() -> Path:
    path = Path(os.environ.get("TFLITE_FORGE_ADD_BIN") or ADD_BIN)
    if not path.is_file():
        unavailable(f"{path} is missing: check out the shared folder beside the repository "
                    "(../shared/models/add.bin) or set TFLITE_FORGE_ADD_BIN")
    return path
