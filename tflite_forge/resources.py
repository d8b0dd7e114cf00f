"""The checkout's data folders. tflite-forge is run from a checkout (`invoke` reads its tasks.py, and
recipes, patches, toolchain files and the smoke consumers are edited there), so these are found
beside the package, in one place; a wheel does not carry them (README: "Installing").
"""

from __future__ import annotations

from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent
RECIPES_DIR = CHECKOUT / "recipes"
PATCHES_DIR = CHECKOUT / "patches"
TOOLCHAINS_DIR = CHECKOUT / "toolchains"
SMOKE_DIR = CHECKOUT / "smoke"
