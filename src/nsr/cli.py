"""`nsr <command>`: one entry point per pipeline stage (also `python -m nsr`).

Each command lives in its own module exposing ``add_arguments(parser)`` and ``run(args)``;
only the chosen module is imported, so `nsr --help` and light commands stay fast. Every command
runs on one pinned CPU code path (nsr.numerics, set before the module imports torch) and keeps freed
memory in the heap (nsr.allocator).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from nsr.allocator import keep_freed_memory
from nsr.io import InputError
from nsr.numerics import pin_cpu_numerics

COMMANDS = {
    "subset": ("nsr.data_cli", "write the seeded train/test problem sets (parquet)"),
    "base": ("nsr.base", "build or copy the start policy into a model folder"),
    "train": ("nsr.train_cli", "train a policy with grpo / psr / nsr / w-reinforce"),
    "sample": ("nsr.sampling.cli", "draw n samples per test problem and score them"),
    "passk": ("nsr.passk", "unbiased Pass@k with bootstrap CIs from a samples file"),
    "plot": ("nsr.plotting.cli", "comparison figure + tables, training-dynamics figure"),
    "forms": ("nsr.forms_cli", "answer forms of samples: correct / well formed but wrong / malformed, distinct answers"),
    "card": ("nsr.base_card", "the base card: skill, headroom, fragile problems, form of the base's own samples"),
    "coverage": ("nsr.coverage", "test problems binned by the base's success rate: per method the share solved in n"),
    "answers": ("nsr.answer_distributions_cli",
                "per fragile (and easy) problem each method's answer shares: right, the base's top wrong answers, malformed"),
    "launch": ("nsr.launch", "accelerate launch with processes/machines from the job's gpu/nodes resources"),
    "gpus": ("nsr.gpus", "run a command on GPUs of its own (CUDA_VISIBLE_DEVICES from lock files)"),
    "check-config": ("nsr.study_config.cli", "check a study config (YAML, schema, files, options) as the workflow does"),
}


class TypedFlag(argparse.Action):
    """Stores like "store" and remembers which spelling of the option was typed (``--vlm-name`` or
    ``--model``), so an error about its value names the flag the user wrote (see ``typed_flag``)."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        namespace.typed_flags = {**getattr(namespace, "typed_flags", {}), self.dest: option_string}


def typed_flag(args: argparse.Namespace, dest: str, default: str) -> str:
    """The spelling of option ``dest`` on the command line; ``default`` when it was not typed."""
    return getattr(args, "typed_flags", {}).get(dest) or default


def add_test_set_flags(parser: argparse.ArgumentParser, fields: Sequence[str], help_text: str,
                       tables: str = ".csv and .md tables") -> None:
    """`--set NAME FIELD... SAMPLES...` (repeated, one per test set) and `--output` of a command that
    writes a figure and its ``tables`` (`nsr forms`, `nsr coverage`, `nsr answers`)."""
    parser.add_argument("--set", dest="sets", action="append", nargs="+", required=True,
                        metavar=" ".join(["NAME", *fields, "SAMPLES"]),
                        help=f"a test set: its name, {help_text}; repeat for several test sets")
    parser.add_argument("--output", required=True, help=f"figure (.png); the {tables} go next to it")


def test_set_groups(sets: Sequence[Sequence[str]], fields: Sequence[str]) -> list[tuple]:
    """The --set groups as (name, *fields, [samples files])."""
    groups = []
    for spec in sets:
        if len(spec) < len(fields) + 2:
            raise InputError(f"--set {' '.join(spec)}: give {' '.join(['NAME', *fields, 'SAMPLES'])} [SAMPLES ...]")
        groups.append((spec[0], *spec[1:len(fields) + 1], list(spec[len(fields) + 1:])))
    return groups


class ArgumentParser(argparse.ArgumentParser):
    """argparse that raises InputError instead of printing usage and exiting: every error a user
    can cause is one line (`nsr <command> --help` shows the usage)."""

    def error(self, message):
        raise InputError(f"{message} (see {self.prog} --help)")


def build_parser(command: str) -> tuple[argparse.ArgumentParser, object]:
    module_name, help_text = COMMANDS[command]
    module = importlib.import_module(module_name)
    parser = ArgumentParser(prog=f"nsr {command}", description=help_text)
    module.add_arguments(parser)
    return parser, module


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        lines = [f"  {name:<12} {help_text}" for name, (_, help_text) in COMMANDS.items()]
        print("usage: nsr <command> [options]\n\ncommands:\n" + "\n".join(lines))
        if argv and argv[0] not in ("-h", "--help"):
            print(f"\nnsr: unknown command {argv[0]!r}", file=sys.stderr)
            sys.exit(2)
        return
    try:
        pin_cpu_numerics()  # before the command's module (and torch) is imported: see nsr.numerics
        keep_freed_memory()  # see nsr.allocator
        parser, module = build_parser(argv[0])
        module.run(parser.parse_args(argv[1:]))
    except InputError as exc:
        # One line: messages quoting a library's error can hold line breaks.
        message = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        print(f"nsr {argv[0]}: error: {message}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
