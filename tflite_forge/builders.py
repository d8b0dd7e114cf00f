"""Builders: container engines a build may run on other than this host's own (`--builder`).

A builder is an engine endpoint, given as:

    unix:///run/other-dockerd.sock      a Docker API socket (dockerd, or `podman system service`)
    ssh://user@host[:port]              a Docker daemon reached over ssh (docker's own ssh transport)
    tcp://host:port                     a Docker daemon on TCP (protect it with TLS: DOCKER_TLS_VERIFY ...)
    podman+unix:///run/podman.sock      a podman service, driven by the podman CLI (`podman --url`)
    podman+ssh://user@host/run/...sock  the same over ssh
    NAME                                a docker context (`docker context ls`)

This module only parses and names them (pure, no engine is asked anything); engine.py turns a
spec into an engine it talks to. A builder shares no filesystem with this host: trees go to it as
volumes and results come back by copy (see remote.py), never as bind mounts.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass

from .errors import ConfigError

CONTEXT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
FORMS = ("unix:///path/to/docker.sock, ssh://user@host, tcp://host:port, podman+unix:///path/to/podman.sock, "
         "podman+ssh://user@host/path/to/podman.sock or a docker context name")


@dataclass(frozen=True)
class BuilderSpec:
    text: str                      # as the user gave it: names the builder in messages and on the board
    engine: str                    # the CLI that drives it: "docker" or "podman"
    flags: tuple[str, ...]         # the CLI's global flags selecting the endpoint


def parse_builder(text: str, where: str = "--builder") -> BuilderSpec:
    """One builder as given on the command line, in TFLITE_FORGE_BUILDERS or invoke.yaml."""
    text = str(text).strip()
    scheme, sep, _rest = text.partition("://")
    if not sep:
        if CONTEXT_NAME.fullmatch(text):
            return BuilderSpec(text=text, engine="docker", flags=("--context", text))
        raise ConfigError(f"{where} {text!r}: not a builder; expected {FORMS}")
    engine = "podman" if scheme.startswith("podman+") else "docker"
    url = text.removeprefix("podman+")
    parts = urllib.parse.urlsplit(url)
    problem = None
    if parts.scheme not in ("unix", "ssh", "tcp"):
        problem = f"unknown scheme {scheme}://"
    elif parts.scheme == "unix" and (parts.netloc or not parts.path.startswith("/")):
        problem = "a unix socket needs an absolute path: unix:///path/to.sock (three slashes)"
    elif parts.scheme in ("ssh", "tcp") and not parts.hostname:
        problem = "no host"
    elif parts.scheme == "tcp" and engine == "podman":
        problem = "podman's service is reached over unix:// or ssh://"
    if problem is None:
        try:
            port = parts.port
        except ValueError:
            port, problem = None, "the port is not a number from 1 to 65535"
        if port is not None and not 0 < port < 65536:
            problem = "the port is not a number from 1 to 65535"
        if parts.scheme == "tcp" and port is None and problem is None:
            problem = "tcp:// needs a port (tcp://host:2376)"
    if problem:
        raise ConfigError(f"{where} {text!r}: {problem}; expected {FORMS}")
    if engine == "podman":
        return BuilderSpec(text=text, engine="podman", flags=("--remote", "--url", url))
    return BuilderSpec(text=text, engine="docker", flags=("--host", url))


def parse_builders(values, where: str = "--builder") -> tuple[BuilderSpec, ...]:
    """Every builder, in order, once each (the same endpoint twice would take two cells at once)."""
    specs: list[BuilderSpec] = []
    for value in values or ():
        spec = parse_builder(value, where)
        if any(s.flags == spec.flags for s in specs):
            raise ConfigError(f"{where} {spec.text!r} is given twice; a builder runs one cell at a time, name it once")
        specs.append(spec)
    return tuple(specs)
