"""Vowpal Wabbit plays the synthetic world's stream files, online, event for event.

For each decision: build the ADF example (a `shared` line with the context's namespaces,
one line per live item with its features and its id), `predict` the PMF, draw the item
to show from it, settle the click exactly as the Rust side does (`u < rate[taste][item]`;
the taste is in the stream for scoring only, VW never sees it), then `learn` the example
labelled `0:cost:probability` on the shown item, cost = -reward.

    python vw_synthetic.py STREAM_DIR OUT.json [--jobs 2]

Writes, per configuration, the same figures as `capstan-placement-bench synthetic`.
"""

import argparse
import glob
import importlib.metadata
import json
import multiprocessing
import os
import random

import vowpalwabbit

CONFIGS = {
    "vw-squarecb": "--cb_explore_adf --squarecb -q ::",
    "vw-personalizer-default": "--cb_explore_adf --epsilon 0.2 -q :: --cb_type mtr",
}


def namespaces(features):
    """`{"user": {"segment": "s1", "activity": 0.4}}` -> `|user segment=s1 activity:0.4`."""
    parts = []
    for namespace, values in features.items():
        tokens = [namespace]
        for name, value in values.items():
            if isinstance(value, str):
                tokens.append(f"{name}={value}")
            else:
                tokens.append(f"{name}:{value}")
        parts.append("|" + " ".join(tokens))
    return " ".join(parts)


def decisions_to_half_share(shown, oracle, item, arrival, window):
    """The same measure as the Rust side's `decisions_to_half_share`."""
    policy_count = oracle_count = 0
    for decision in range(arrival, len(shown)):
        policy_count += shown[decision] == item
        oracle_count += oracle[decision] == item
        if decision >= arrival + window:
            leaving = decision - window
            policy_count -= shown[leaving] == item
            oracle_count -= oracle[leaving] == item
        seen = decision + 1 - arrival
        if seen >= window and oracle_count > 0 and 2 * policy_count >= oracle_count:
            return seen
    return None


def quarters(clicks):
    """The click rate in each quarter of the run, as the Rust side's `quarters`."""
    bounds = [quarter * len(clicks) // 4 for quarter in range(5)]
    return [sum(clicks[low:high]) / max(high - low, 1) for low, high in zip(bounds, bounds[1:])]


def play(task):
    path, name = task
    with open(path) as stream:
        header = json.loads(stream.readline())
        events = [json.loads(line) for line in stream]
    rates = header["rates"]
    item_lines = []
    for item in header["items"]:
        features = dict(item["features"])
        features["item"] = dict(features["item"], id=item["id"])
        item_lines.append(namespaces(features))
    vw = vowpalwabbit.Workspace(CONFIGS[name] + f" --quiet --random_seed {header['seed']}")
    chooser = random.Random(header["seed"])
    shown, clicks, oracle = [], [], []
    for event in events:
        live = event["live"]
        example = ["shared " + namespaces(event["context"])] + item_lines[:live]
        pmf = vw.predict(example)
        position = chooser.choices(range(live), weights=pmf)[0]
        reward = 1.0 if event["u"] < rates[event["taste"]][position] else 0.0
        labelled = list(example)
        labelled[1 + position] = f"0:{-reward}:{pmf[position]} " + labelled[1 + position]
        vw.learn(labelled)
        shown.append(position)
        clicks.append(reward)
        oracle.append(event["oracle"])
    vw.finish()
    warmup, window = header["warmup"], header["window"]
    good = [(index, item["arrival"]) for index, item in enumerate(header["items"]) if item["good"]]
    return {
        "name": name,
        "seed": header["seed"],
        "mean_reward": sum(clicks) / len(clicks),
        "after_warmup": sum(clicks[warmup:]) / (len(clicks) - warmup),
        "quarters": quarters(clicks),
        "to_half_share": [
            decisions_to_half_share(shown, oracle, item, arrival, window) for item, arrival in good
        ],
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("streams")
    parser.add_argument("out")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    paths = sorted(
        glob.glob(os.path.join(args.streams, "stream-*.jsonl")),
        key=lambda path: int(path.rsplit("-", 1)[1].split(".")[0]),
    )
    tasks = [(path, name) for path in paths for name in CONFIGS]
    with multiprocessing.Pool(args.jobs) as pool:
        outcomes = pool.map(play, tasks, chunksize=1)
    policies = {
        name: {"mean_reward": [], "after_warmup": [], "quarters": [], "to_half_share": [], "seeds": []}
        for name in CONFIGS
    }
    for outcome in outcomes:
        entry = policies[outcome["name"]]
        for key in ("mean_reward", "after_warmup", "quarters", "to_half_share"):
            entry[key].append(outcome[key])
        entry["seeds"].append(outcome["seed"])
    with open(args.out, "w") as out:
        json.dump({"policies": policies, "vowpalwabbit": importlib.metadata.version("vowpalwabbit")}, out, indent=1)


if __name__ == "__main__":
    main()
