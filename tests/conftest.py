"""Session fixtures shared by every test tier: the miniature TensorFlow release and its server.

- `miniature_release`: `write_release(<tmp>/miniature)` once per session (a MiniatureRelease).
  Treat its files as read-only: copy a tree before changing it.
- `miniature_server`: its `www/` served on 127.0.0.1; the base URL "http://127.0.0.1:PORT/".
- `miniature_rewrite`: the `--rewrite` value that sends every upstream https URL there,
  "https://=http://127.0.0.1:PORT/" (also `rewrite_to(base_url)` for other servers).
"""

from __future__ import annotations

import pytest

from tflite_forge.loopback import serve_directory
from tflite_forge.miniature import MiniatureRelease, write_release


def rewrite_to(base_url: str) -> str:
    """The --rewrite FROM=TO value that maps every https:// URL onto base_url."""
    return f"https://={base_url}"


@pytest.fixture(scope="session")
def miniature_release(tmp_path_factory) -> MiniatureRelease:
    return write_release(tmp_path_factory.mktemp("miniature"))


@pytest.fixture(scope="session")
def miniature_server(miniature_release):
    with serve_directory(miniature_release.www_root) as base_url:
        yield base_url


@pytest.fixture(scope="session")
def miniature_rewrite(miniature_server) -> str:
    return rewrite_to(miniature_server)
