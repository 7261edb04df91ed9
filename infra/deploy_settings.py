#!/usr/bin/env python3
"""A deployment's settings in one file (make deploy CONFIG=deploy.toml; docs/deploy.example.toml):

    stack = "outposts-ha"
    region = "eu-central-1"
    architecture = "arm64"
    email = "oncall@example.com"
    [parameters]
    FencingPolicy = "isolate"

Every key is optional. Standard library only: make reads the architecture with the
machine's python3 before any venv exists (`deploy_settings.py FILE architecture`).
"""

from __future__ import annotations

import pathlib
import sys

try:
    import tomllib
except ModuleNotFoundError:  # Python before 3.11: the same parser, as a package
    try:
        import tomli as tomllib
    except ModuleNotFoundError:
        tomllib = None

TOP_LEVEL = ("stack", "region", "architecture", "email", "parameters")
ARCHITECTURES = ("arm64", "x86_64")


class SettingsError(Exception):
    """The settings file cannot be used; the message says where and why."""


def _text(path: pathlib.Path, key: str, value: object) -> str:
    # TOML's own types, as CloudFormation takes every parameter: a string.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise SettingsError(f"{path}: {key} must be a string, number or boolean, not {type(value).__name__}")


def load(path: str | pathlib.Path) -> dict:
    """{"stack", "region", "architecture", "email": str or None, "parameters": {name: str}}."""
    path = pathlib.Path(path)
    if tomllib is None:
        raise SettingsError(f"{path}: reading it needs Python 3.11 or the tomli package")
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise SettingsError(f"{path}: no such settings file (docs/deploy.example.toml is one)") from None
    except tomllib.TOMLDecodeError as e:
        raise SettingsError(f"{path}: not TOML: {e}") from None
    unknown = sorted(set(raw) - set(TOP_LEVEL))
    if unknown:
        raise SettingsError(f"{path}: unknown setting(s) {', '.join(unknown)}; the file takes {', '.join(TOP_LEVEL)} "
                            "(template parameters go under [parameters])")
    settings: dict = {k: (_text(path, k, raw[k]) if k in raw else None) for k in TOP_LEVEL if k != "parameters"}
    if settings["architecture"] is not None and settings["architecture"] not in ARCHITECTURES:
        raise SettingsError(f"{path}: architecture must be arm64 or x86_64, not {settings['architecture']!r}")
    parameters = raw.get("parameters", {})
    if not isinstance(parameters, dict):
        raise SettingsError(f"{path}: parameters must be a table ([parameters])")
    settings["parameters"] = {k: _text(path, f"parameters.{k}", v) for k, v in parameters.items()}
    return settings


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[1] not in TOP_LEVEL[:-1]:
        print(f"usage: deploy_settings.py FILE ({'|'.join(TOP_LEVEL[:-1])})", file=sys.stderr)
        return 2
    try:
        print(load(argv[0])[argv[1]] or "")
    except SettingsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
