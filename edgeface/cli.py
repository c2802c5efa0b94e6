"""The ``edgeface`` command line.

Every subcommand is one module in ``edgeface.commands``, ``edgeface.export.commands`` or
``edgeface.device.commands`` that defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and
``run(args) -> int``. Modules are discovered, so adding a command never touches this file.

Command modules keep heavy imports (torch, onnx, device libraries) inside ``run`` so that
building the parser, and ``edgeface gate``, never import torch.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
import textwrap
from types import ModuleType

from . import __version__
from .errors import ConfigError, EdgefaceError

COMMAND_PACKAGES = ("edgeface.commands", "edgeface.export.commands", "edgeface.device.commands")

EX_CONFIG = 78


def discover_commands() -> list[ModuleType]:
    """Import every command module and return them sorted by name."""
    found: dict[str, ModuleType] = {}
    for package_name in COMMAND_PACKAGES:
        package = importlib.import_module(package_name)
        for info in pkgutil.iter_modules(package.__path__):
            if info.name.startswith("_"):
                continue
            module = importlib.import_module(f"{package_name}.{info.name}")
            name = getattr(module, "NAME", None)
            if name is None:
                continue
            if name in found:
                raise RuntimeError(f"two modules define the command {name!r}: {found[name].__name__}, {module.__name__}")
            found[name] = module
    return [found[k] for k in sorted(found)]


class HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, but a description keeps its shape: blank lines separate paragraphs (each refilled
    to the terminal's width) and indented lines (command examples) are printed as they are written."""

    def _fill_text(self, text, width, indent):
        out, para = [], []

        def flush():
            if para:
                out.append(textwrap.fill(" ".join(para), width, initial_indent=indent, subsequent_indent=indent,
                                         break_on_hyphens=False, break_long_words=False))
                para.clear()

        for line in text.splitlines():
            if not line.strip():
                flush()
                out.append("")
            elif line[0].isspace():
                flush()
                out.append(indent + line.rstrip())
            else:
                para.append(line.strip())
        flush()
        return "\n".join(out)


class Parser(argparse.ArgumentParser):
    """Every parser of the CLI, sub-commands' and their actions' included (add_subparsers builds its parsers with
    the parent's class), formats its help with :class:`HelpFormatter`."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="edgeface", description="Face-recognition door access on edge hardware.")
    parser.add_argument("--version", action="version", version=f"edgeface {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging on stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in discover_commands():
        p = sub.add_parser(module.NAME, help=module.HELP, description=getattr(module, "DESCRIPTION", module.HELP),
                           usage=getattr(module, "USAGE", None))
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        code = int(args._run(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, inside the handlers, not in the interpreter's exit
        return code
    except ConfigError as exc:
        print(f"edgeface: config error: {exc}", file=sys.stderr)
        return EX_CONFIG
    except EdgefaceError as exc:
        print(f"edgeface: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("edgeface: interrupted", file=sys.stderr)
        return 130
    except ImportError as exc:  # an optional extra that is not installed: which one, in one line
        from .extras import from_import_error

        missing = from_import_error(exc, f"edgeface {args.command}")
        if missing is None:
            raise
        logging.getLogger(__name__).debug("ImportError", exc_info=True)
        print(f"edgeface: error: {missing}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `edgeface people list | head`: the reader left; nothing more to say
        _silence_stdout()
        return 141
    except OSError as exc:  # a file the user named cannot be read or written: one line, no traceback
        logging.getLogger(__name__).debug("OSError", exc_info=True)
        print(f"edgeface: error: {exc}", file=sys.stderr)
        return 1


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not raise again on the closed pipe."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
