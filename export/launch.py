"""``edgeface train --nproc N``: start the same command under torchrun, N processes on this machine
(``python -m torch.distributed.run --standalone --nproc_per_node N -m edgeface.cli train ...``).

For several machines run torchrun yourself on each (``--nnodes``, ``--node-rank`` / ``--rdzv-endpoint``); the run
directory must then be on storage every node sees (rank 0 writes it, every rank reads the caches and checkpoint).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

#: options that only concern this launcher, never passed on to the workers
LAUNCHER_OPTIONS = ("nproc",)


def worker_argv(add_arguments, args: argparse.Namespace, command: str = "train") -> list[str]:
    """The command line that gives ``args`` back (options at their default left out), without ``--nproc``."""
    parser = argparse.ArgumentParser(add_help=False)
    add_arguments(parser)
    argv = [command]
    for action in parser._actions:
        if not action.option_strings or action.dest in LAUNCHER_OPTIONS:
            continue
        value = getattr(args, action.dest, action.default)
        if value == action.default:
            continue
        flag = action.option_strings[-1]
        if isinstance(action, argparse._StoreTrueAction):
            argv.append(flag)
        elif isinstance(action, argparse._StoreFalseAction):
            argv.append(flag)
        else:
            argv += [flag, str(value)]
    return argv


def in_torchrun() -> bool:
    return "TORCHELASTIC_RUN_ID" in os.environ or int(os.environ.get("WORLD_SIZE", "1")) > 1


def launch(nproc: int, argv: list[str], verbose: bool = False) -> int:
    """Run ``edgeface ARGV`` as ``nproc`` processes under torchrun; its exit status."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={int(nproc)}",
           "-m", "edgeface.cli", *(["--verbose"] if verbose else []), *argv]
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")  # torchrun's own default; --threads sets torch's per process
    return subprocess.run(cmd, env=env).returncode
