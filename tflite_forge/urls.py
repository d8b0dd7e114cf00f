"""What makes a URL fetchable as written: the one check recipes, locks and --mirror share.

http(s) needs a host and, when given, a port from 1 to 65535; file:// needs an absolute local
path (`file:///abs/path`: in `file://relative` the word `relative` would be a host). Anything
urllib cannot split (`http://[::1`) is refused here, not later as a download that "failed".
"""

from __future__ import annotations

import urllib.parse

SCHEMES = ("http", "https", "file")


def url_problem(url: str) -> str | None:
    """Why `url` cannot be fetched as written, or None when it can."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"not a valid URL ({exc})"
    if parts.scheme not in SCHEMES or not url.startswith(f"{parts.scheme}://"):
        return "expected an http(s):// or file:// URL"
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            return (f"a file:// URL names an absolute local path (file:///abs/path); here {parts.netloc!r} "
                    f"would be a host name")
        if not parts.path.startswith("/"):
            return "a file:// URL needs an absolute path (file:///abs/path)"
        return None
    if not parts.hostname:
        return "no host name after the scheme"
    if port is not None and not 1 <= port <= 65535:
        return f"port {port} is out of range (1-65535)"
    return None
