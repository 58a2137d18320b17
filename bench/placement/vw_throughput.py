"""Vowpal Wabbit's learn-and-predict rate on the throughput benchmark's examples.

The PyPI package `vowpalwabbit` ships no `vw` command line (and Debian has no package of
it here), so this drives VW's own C++ input loop from Python: `Workspace("... -d FILE")`
then `run_parser()`, which is what `vw -d FILE` runs: parse, predict every action, learn
the labelled one, per example. Python is not involved per example. (With `-d`, the
constructor already runs the whole file.) A run is timed from the constructor to
`finish()`, less the same for an empty file: the model's allocation is not counted.

    python vw_throughput.py DIR OUT.json
"""

import importlib.metadata
import json
import os
import sys
import time

import vowpalwabbit

CONFIGS = {
    "vw-squarecb": "--cb_explore_adf --squarecb -q ::",
    "vw-personalizer-default": "--cb_explore_adf --epsilon 0.2 -q :: --cb_type mtr",
    # Only context x item crosses (u, p with i): the interactions Capstan's model has.
    "vw-squarecb-context-x-item": "--cb_explore_adf --squarecb -q ui -q pi",
}


def count_examples(path):
    with open(path) as file:
        return sum(1 for line in file if line.startswith("shared "))


def timed(arguments):
    started = time.perf_counter()
    vw = vowpalwabbit.Workspace(arguments)
    vw.run_parser()
    vw.finish()
    return time.perf_counter() - started


def main():
    folder, out = sys.argv[1], sys.argv[2]
    empty = os.path.join(folder, "empty.vw")
    open(empty, "w").close()
    results = {"vowpalwabbit": importlib.metadata.version("vowpalwabbit")}
    for candidates in ("20", "100"):
        path = os.path.join(folder, f"examples-{candidates}.vw")
        examples = count_examples(path)
        for name, config in CONFIGS.items():
            seconds = timed(f"{config} --quiet -b 20 -d {path}") - timed(f"{config} --quiet -b 20 -d {empty}")
            results.setdefault(candidates, {})[name] = {
                "examples": examples,
                "seconds": seconds,
                "per_second": examples / seconds,
            }
            print(f"{candidates} candidates, {name}: {examples / seconds:.0f} examples/s", file=sys.stderr)
    with open(out, "w") as file:
        json.dump(results, file, indent=1)


if __name__ == "__main__":
    main()
