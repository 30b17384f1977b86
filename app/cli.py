"""The ``backprop-lab`` command: ``backprop-lab serve`` starts the web app and says where.

Every setting of ``app.settings.Settings`` is an option of ``serve`` (``--max-points 2000``)
and an environment variable (``BACKPROP_LAB_MAX_POINTS=2000``); the help lists them from the
model itself, so it never falls behind. Options reach the app through the environment,
which uvicorn's worker processes inherit.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from importlib import metadata
from typing import Any

from pydantic import ValidationError

from app.settings import Settings

ENV_PREFIX = Settings.model_config.get("env_prefix", "")
# options of `serve` that are not settings (what uvicorn itself needs)
SERVER_OPTIONS = {"host", "port", "workers", "log_level"}


def version() -> str:
    """The installed distribution's version (the checkout's metadata in an editable install)."""
    try:
        return metadata.version("backprop-lab")
    except metadata.PackageNotFoundError:  # a checkout on PYTHONPATH: its pyproject.toml
        import tomllib
        from pathlib import Path

        pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
        try:
            return tomllib.loads(pyproject.read_text())["project"]["version"] + " (checkout)"
        except (OSError, KeyError, tomllib.TOMLDecodeError):
            return "unknown"


def environment_name(name: str) -> str:
    return f"{ENV_PREFIX}{name}".upper()


def _shown_default(field: Any) -> str:
    default = field.get_default(call_default_factory=True)
    if default is None:
        return "unset"
    if isinstance(default, list):
        return ",".join(map(str, default)) or "none"
    return str(default)


def settings_help() -> str:
    """Every setting: its option, environment variable, default and what it limits."""
    lines = ["settings (each an option of `serve` and an environment variable):"]
    for name, field in Settings.model_fields.items():
        option = "--" + name.replace("_", "-")
        lines.append(f"  {option:32} {environment_name(name)}  (default {_shown_default(field)})")
        if field.description:
            lines.append(f"  {'':32} {field.description}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="backprop-lab",
        description="Backprop Lab: train small feedforward networks live in the browser.",
        epilog=settings_help(), formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = commands.add_parser(
        "serve", help="start the web app and print the address to open",
        description="Start the web app (uvicorn) and print the address to open in a browser.",
        epilog=settings_help(), formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default 127.0.0.1: this machine only; "
                       "0.0.0.0 for a class on the same network)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument("--workers", type=int, default=1,
                       help="server processes (default 1: a heavy job lives in the process "
                       "that took it, see docs/protocol.md 'Running several processes')")
    serve.add_argument("--log-level", default="info",
                       choices=["critical", "error", "warning", "info", "debug"])
    for name in Settings.model_fields:
        if name in SERVER_OPTIONS:  # pragma: no cover - a setting named like a server option
            raise RuntimeError(f"setting {name!r} clashes with a server option")
        if name == "scheduler":
            help_text = ("Dask scheduler address (tcp://host:8786) for heavy jobs; "
                         "default: an embedded cluster started by the first job")
        else:
            help_text = argparse.SUPPRESS  # listed, with its variable, in the epilog
        serve.add_argument("--" + name.replace("_", "-"), dest=name, default=None,
                           metavar="URL" if name == "scheduler" else "VALUE",
                           help=help_text)
    return parser


def settings_environment(options: argparse.Namespace) -> dict[str, str]:
    """The environment variables of the settings given as options (lists comma-separated)."""
    return {
        environment_name(name): str(value)
        for name in Settings.model_fields
        if (value := getattr(options, name, None)) is not None
    }


def check_settings(environment: dict[str, str]) -> Settings:
    """The settings the app will read, built now so that a bad value stops here with a
    sentence naming its option, not in a traceback from each worker process."""
    saved = {key: os.environ.get(key) for key in environment}
    os.environ.update(environment)
    try:
        return Settings()
    except ValidationError as error:
        problems = []
        for item in error.errors(include_url=False):
            name = str(item["loc"][0]) if item.get("loc") else "?"
            problems.append(f"--{name.replace('_', '-')} ({environment_name(name)}): "
                            f"{item['msg']}")
        raise SystemExit("backprop-lab: " + "; ".join(problems)) from None
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def serve(options: argparse.Namespace) -> None:
    import uvicorn

    environment = settings_environment(options)
    settings = check_settings(environment)
    os.environ.update(environment)  # this process's app and every worker process read it
    shown_host = "127.0.0.1" if options.host in ("0.0.0.0", "::", "") else options.host
    if ":" in shown_host:
        shown_host = f"[{shown_host}]"
    url = f"http://{shown_host}:{options.port}/"
    cluster = settings.scheduler or "embedded (started by the first job)"
    print(f"Backprop Lab {version()}: open {url} in a browser "
          f"({options.workers} process{'es' if options.workers > 1 else ''}; "
          f"job cluster: {cluster}). Ctrl+C stops it.", flush=True)
    uvicorn.run("app.main:app", host=options.host, port=options.port,
                workers=options.workers, log_level=options.log_level)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``backprop-lab`` console script."""
    parser = build_parser()
    options = parser.parse_args(argv)
    if options.command == "serve":
        serve(options)
        return 0
    parser.print_help()
    return 2


if __name__ == "__main__":  # python -m app.cli
    sys.exit(main())
