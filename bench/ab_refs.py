"""Run benchmarks at two git refs, interleaved, and print medians side by side (not run in CI).

A refactor claims "no regression beyond noise"; on a shared 2-core machine that claim only
holds when both versions are measured in the same run, alternating (A B B A ...), so that
load changes hit both. This script checks ``--base`` out into a temporary git worktree
(the generated gRPC code is copied over; it is not in git), then runs every ``--bench``
command once per round with the working directory set to each tree in turn. Both trees use
this virtualenv's interpreter and dependencies; the code under test is the tree's own,
because the working directory comes first on ``sys.path``.

Numbers are compared by line shape: each output line with its numbers replaced by ``#`` is
a shape, and every number in it a slot, so ``write rate  123,456 samples/s`` from either
tree lands in one row (a shape printed several times is numbered). Prints, per bench and
slot, the median and range of each tree and the ratio (head / base), and the machine's load
average before and after. Full outputs are kept under ``bench/results/ab-<time>/``.

    .venv/bin/python bench/ab_refs.py --base b33bdb8 --rounds 3 \\
        --bench "bench/store_write.py --series 500 --samples 300" \\
        --bench "bench/query_range.py --series 300 --runs 3"
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
GENERATED = Path("federator/api/_generated")


def worktree(ref: str) -> Path:
    """A worktree of ``ref`` under /tmp (reused if it exists), with the generated code."""
    sha = subprocess.run(
        ["git", "rev-parse", "--short", ref], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.strip()
    path = Path(f"/tmp/meshfed-ab-{sha}")
    if not path.exists():
        subprocess.run(["git", "worktree", "add", "--detach", str(path), sha], cwd=REPO, check=True)
    if (REPO / GENERATED).exists() and not (path / GENERATED).exists():
        shutil.copytree(REPO / GENERATED, path / GENERATED)
    if not (path / ".venv").exists():
        # Benchmarks that start `.venv/bin/meshfed` find it here; PYTHONPATH (set in run())
        # makes that interpreter import the worktree's code, not this checkout's.
        (path / ".venv").symlink_to(REPO / ".venv")
    return path


def run(tree: Path, command: str, timeout: float) -> str:
    argv = [sys.executable, *shlex.split(command)]
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run(
        argv, cwd=tree, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"{command} failed in {tree} ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout


def slots(output: str) -> dict[tuple[str, int, int], float]:
    """Every number of ``output`` keyed by (line shape, occurrence of that shape, slot)."""
    found: dict[tuple[str, int, int], float] = {}
    seen: dict[str, int] = defaultdict(int)
    for line in output.splitlines():
        numbers = NUMBER.findall(line)
        if not numbers:
            continue
        shape = " ".join(NUMBER.sub("#", line).split())
        occurrence = seen[shape]
        seen[shape] += 1
        for i, text in enumerate(numbers):
            found[(shape, occurrence, i)] = float(text.replace(",", ""))
    return found


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):,.4g} ({min(values):,.3g}-{max(values):,.3g})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="git ref to compare against (e.g. main~3)")
    parser.add_argument(
        "--head", default=None, help="git ref to measure (default: this working tree as it is)"
    )
    parser.add_argument("--bench", action="append", required=True, help="script and its flags")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each tree (interleaved)")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per bench run")
    args = parser.parse_args()

    trees = {"base": worktree(args.base), "head": worktree(args.head) if args.head else REPO}
    out_dir = REPO / "bench" / "results" / time.strftime("ab-%Y%m%d-%H%M%S")
    out_dir.mkdir(parents=True)
    print(f"load average before: {os.getloadavg()}; cores: {os.cpu_count()}", flush=True)
    for command in args.bench:
        values: dict[str, dict[tuple[str, int, int], list[float]]] = {
            name: defaultdict(list) for name in trees
        }
        for round_no in range(args.rounds):
            order = list(trees) if round_no % 2 == 0 else list(reversed(trees))
            for name in order:
                output = run(trees[name], command, args.timeout)
                label = re.sub(r"\W+", "_", command)[:60]
                (out_dir / f"{label}-{name}-{round_no}.txt").write_text(output)
                for key, value in slots(output).items():
                    values[name][key].append(value)
                print(f"  {command} [{name} round {round_no + 1}] done", flush=True)
        print(f"\n## {command}")
        print(
            "| line (numbers as #) | slot | base median (min-max) | head median (min-max) | ratio |"
        )
        print("|---|---|---|---|---|")
        for key in values["head"]:
            base, head = values["base"].get(key), values["head"][key]
            if not base or len(set(base + head)) == 1:
                continue  # constants (sizes, flags echoed back) say nothing
            b, h = statistics.median(base), statistics.median(head)
            ratio = f"{h / b:.2f}" if b else "-"
            line = f"{key[0][:70]} ({key[1] + 1})" if key[1] else key[0][:70]
            print(f"| {line} | {key[2]} | {spread(base)} | {spread(head)} | {ratio} |")
    print(f"\nload average after: {os.getloadavg()}; outputs in {out_dir}")


if __name__ == "__main__":
    main()
