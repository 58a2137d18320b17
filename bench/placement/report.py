"""Writes one placement benchmark's figures into docs/benchmarks.md, between its markers
(`<!-- placement-NAME:start -->` and `<!-- placement-NAME:end -->`), leaving the rest.

    python report.py synthetic RESULTS_DIR   (the section is `synthetic-WORLD`, from the results)
    python report.py obd RESULTS_DIR
    python report.py throughput RESULTS_DIR
"""

import json
import math
import os
import platform
import statistics
import sys

DOCS = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "benchmarks.md")


def load(path):
    with open(path) as file:
        return json.load(file)


def mean_interval(values):
    mean = statistics.fmean(values)
    half = 1.96 * statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else float("inf")
    return mean, half


def machine():
    cores = os.cpu_count()
    model = ""
    try:
        with open("/proc/cpuinfo") as file:
            model = next((line.split(":", 1)[1].strip() for line in file if line.startswith("model name")), "")
    except OSError:
        pass
    return f"{cores} cores{', ' + model if model else ''}, {platform.system()} {platform.machine()}"


def synthetic(folder):
    capstan = load(os.path.join(folder, "capstan.json"))
    vw = load(os.path.join(folder, "vw.json"))
    policies = dict(capstan["policies"])
    policies.update(vw["policies"])
    seeds, decisions, warmup, window = capstan["seeds"], capstan["decisions"], capstan["warmup"], capstan["window"]
    first_seed, world = capstan["first_seed"], capstan["world"]
    oracle_after = policies["oracle"]["after_warmup"]
    feature_after = policies["feature-oracle"]["after_warmup"]
    labels = {
        "oracle": "Oracle (knows the taste)",
        "feature-oracle": "Feature oracle (knows the world's model, sees only the features)",
        "capstan": "**Capstan**, default settings (5% testing budget, 5% holdout)",
        "capstan-no-testing": "Capstan, no testing budget (5% holdout)",
        "capstan-no-testing-no-holdout": "Capstan, no testing budget, no holdout",
        "vw-squarecb": "VW `--cb_explore_adf --squarecb -q ::`",
        "vw-personalizer-default": "VW `--cb_explore_adf --epsilon 0.2 -q :: --cb_type mtr` (Personalizer's default)",
        "global-thompson": "Global Thompson sampling (not contextual)",
        "uniform": "Uniform random",
    }
    lines = [
        f"The {world} world: {seeds} worlds (seeds {first_seed} to {first_seed + seeds - 1}), "
        f"{decisions:,} decisions each, warm-up {warmup:,}; "
        f"Vowpal Wabbit {vw['vowpalwabbit']}. Mean over worlds ± 95% interval (t ≈ normal, across worlds).",
        "",
        "| Policy | Click rate, whole run | After warm-up | Share of the oracle after warm-up | Share of the feature oracle |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, label in labels.items():
        entry = policies[name]
        whole, whole_half = mean_interval(entry["mean_reward"])
        after, after_half = mean_interval(entry["after_warmup"])
        share = statistics.fmean(a / o for a, o in zip(entry["after_warmup"], oracle_after))
        feature_share = statistics.fmean(a / o for a, o in zip(entry["after_warmup"], feature_after))
        lines.append(
            f"| {label} | {whole:.4f} ± {whole_half:.4f} | {after:.4f} ± {after_half:.4f} "
            f"| {100 * share:.1f}% | {100 * feature_share:.1f}% |"
        )
    capstan_whole = policies["capstan"]["mean_reward"]
    wins = {
        name: sum(c >= v for c, v in zip(capstan_whole, policies[name]["mean_reward"]))
        for name in ("vw-squarecb", "vw-personalizer-default")
    }
    capstan_mean = statistics.fmean(capstan_whole)
    vw_mean = statistics.fmean(policies["vw-squarecb"]["mean_reward"])
    capstan_share = statistics.fmean(a / o for a, o in zip(policies["capstan"]["after_warmup"], oracle_after))
    feature_share = statistics.fmean(a / o for a, o in zip(feature_after, oracle_after))
    capstan_feature_share = statistics.fmean(a / o for a, o in zip(policies["capstan"]["after_warmup"], feature_after))
    if feature_share > 0.999:
        oracle_goal = (
            "at least 90% of the oracle's after warm-up: "
            + ("**met**" if capstan_share >= 0.9 else "**not met**")
            + f" ({100 * capstan_share:.1f}%)."
        )
    else:
        oracle_goal = (
            f"90% of the oracle's after warm-up is out of reach here: the feature oracle, the best any "
            f"policy that sees only the features can do, gets {100 * feature_share:.1f}% of it. Capstan gets "
            f"{100 * capstan_share:.1f}% of the oracle's and {100 * capstan_feature_share:.1f}% of the feature oracle's."
        )
    quarter_names = ["oracle", "feature-oracle", "capstan", "vw-squarecb", "vw-personalizer-default", "global-thompson"]
    oracle_quarters = policies["oracle"]["quarters"]
    step = decisions // 4
    lines += [
        "",
        "Against the goals: at least VW's average reward over the worlds: "
        + ("**met**" if capstan_mean >= vw_mean else "**not met**")
        + f" ({capstan_mean:.4f} against VW SquareCB's {vw_mean:.4f}); "
        + oracle_goal,
        "",
        "Learning: each quarter of the run's click rate as a share of the oracle's over the same decisions "
        "(mean over worlds).",
        "",
        "| Policy | " + " | ".join(f"{q * step:,} to {(q + 1) * step:,}" for q in range(4)) + " |",
        "| --- |" + " ---: |" * 4,
    ]
    for name in quarter_names:
        shares = [
            statistics.fmean(p[q] / o[q] for p, o in zip(policies[name]["quarters"], oracle_quarters))
            for q in range(4)
        ]
        lines.append(f"| {labels[name]} | " + " | ".join(f"{100 * share:.1f}%" for share in shares) + " |")
    lines += [
        "",
        f"Capstan (defaults) at least matched VW SquareCB's whole-run click rate in {wins['vw-squarecb']} of "
        f"{seeds} worlds, and Personalizer's default in {wins['vw-personalizer-default']} of {seeds}.",
        "",
        f"**New items.** Decisions after a good item arrives until the policy's impressions of it, over the "
        f"trailing {window} decisions, reach half of the oracle's over the same decisions (so {window} is the "
        f"earliest possible answer). Two good items per world; median over the {2 * seeds} arrivals, and how "
        f"many never got there before the run ended.",
        "",
        "| Policy | Median decisions to half the oracle's share | Never reached |",
        "| --- | ---: | ---: |",
    ]
    for name, label in labels.items():
        if name in ("oracle", "uniform"):
            continue
        arrivals = [value for per_seed in policies[name]["to_half_share"] for value in per_seed]
        reached = sorted(value for value in arrivals if value is not None)
        never = len(arrivals) - len(reached)
        # Never reached counts as longer than any reached, for the median.
        ordered = reached + [math.inf] * never
        median = statistics.median_low(ordered) if ordered else math.inf
        median_text = "not reached" if math.isinf(median) else f"{median:,}"
        lines.append(f"| {label} | {median_text} | {never} of {len(arrivals)} |")
    return f"synthetic-{world}", "\n".join(lines)


def interval(estimate):
    return f"{estimate['value']:.4f} [{estimate['low']:.4f}, {estimate['high']:.4f}]"


def obd(folder):
    result = load(os.path.join(folder, "obd.json"))
    progressive = result["capstan_progressive"]
    personal = result["capstan_personalised_only_progressive"]
    frozen = result["capstan_train_then_evaluate"]
    frozen_personal = result["capstan_personalised_only_train_then_evaluate"]
    lines = [
        f"`men` campaign, {result['items']} items, {result['rows']:,} rows per log (obp {result.get('obp', '0.4.1')}). "
        "Click rate with a 95% interval.",
        "",
        "| Policy | How | Click rate [95% interval] |",
        "| --- | --- | ---: |",
        f"| Uniform random (the logging policy) | on-policy mean of its log | {interval(result['random_logged'])} |",
        f"| Bernoulli Thompson sampling (ZOZOTOWN's) | on-policy mean of its own log | {interval(result['thompson_logged'])} |",
        f"| **Capstan**, defaults, learning along the random log | progressive IPS | {interval(progressive['ips'])} |",
        f"| Capstan, defaults, learning along the random log | progressive SNIPS | {interval(progressive['snips'])} |",
        f"| Capstan, no testing, no holdout, learning along the log | progressive IPS | {interval(personal['ips'])} |",
        f"| Capstan, defaults, learned on the first half, frozen | IPS on the second half | {interval(frozen['ips'])} |",
        f"| Capstan, defaults, learned on the first half, frozen | doubly robust on the second half | {interval(frozen['doubly_robust'])} |",
        f"| Capstan, no testing, no holdout, frozen | IPS on the second half | {interval(frozen_personal['ips'])} |",
        f"| Capstan, no testing, no holdout, frozen | doubly robust on the second half | {interval(frozen_personal['doubly_robust'])} |",
        f"| (the second half's own random log) | on-policy mean | {interval(frozen['logged'])} |",
    ]
    return "\n".join(lines)


def throughput(folder):
    capstan = load(os.path.join(folder, "throughput", "capstan.json"))
    vw = load(os.path.join(folder, "throughput", "vw.json"))
    http = load(os.path.join(folder, "http.json"))
    lines = [
        f"Measured on {machine()}; Vowpal Wabbit {vw['vowpalwabbit']}. A shared machine: other builds may have run "
        "at the same time, so treat figures as within a factor of about 1.5.",
        "",
    ]
    criterion = []
    for count in ("20", "100"):
        path = os.path.join(os.path.dirname(DOCS), "..", "target", "criterion", "rank", count, "new", "estimates.json")
        if os.path.exists(path):
            nanoseconds = load(path)["mean"]["point_estimate"]
            criterion.append((count, nanoseconds))
    if criterion:
        lines += [
            "`rank` alone, in process, one thread (criterion, `cargo bench -p capstan-bandit --bench rank`):",
            "",
            "| Candidates | Time per rank | Ranks per second |",
            "| ---: | ---: | ---: |",
        ]
        lines += [f"| {count} | {ns / 1000:.1f} µs | {1e9 / ns:,.0f} |" for count, ns in criterion]
        lines.append("")
    lines += [
        "Learn-and-predict examples per second, one thread, same examples "
        f"({capstan['20']['examples']:,} per candidate count):",
        "",
        "| Candidates | Capstan (`rank` + `learn`) | VW SquareCB `-q ::` | VW Personalizer default | VW SquareCB, context × item crosses only |",
        "| ---: | ---: | ---: | ---: | ---: |",
    ]
    for count in ("20", "100"):
        row = vw[count]
        lines.append(
            f"| {count} | {capstan[count]['per_second']:,.0f} | {row['vw-squarecb']['per_second']:,.0f} | "
            f"{row['vw-personalizer-default']['per_second']:,.0f} | {row['vw-squarecb-context-x-item']['per_second']:,.0f} |"
        )
    slowest = min(
        capstan[count]["per_second"] / max(vw[count][name]["per_second"] for name in vw[count])
        for count in ("20", "100")
    )
    lines += [
        "",
        "Against the goal (at least VW's rate): "
        + ("**met**" if slowest >= 1 else "**not met**")
        + f"; Capstan's rate is at least {slowest:.1f} times the fastest VW configuration's at either candidate count.",
        "",
        "HTTP `POST /api/v1/placements/{surface}/rank` on loopback, one keep-alive connection, one request at a time:",
        "",
        "| Candidates (live items) | Requests | p50 | p99 | Mean | Requests per second |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for count in ("20", "100"):
        row = http[count]
        lines.append(
            f"| {count} | {row['requests']:,} | {row['p50_ms']:.2f} ms | {row['p99_ms']:.2f} ms | "
            f"{row['mean_ms']:.2f} ms | {row['per_second']:,.0f} |"
        )
    connections = http["20"]["concurrent"]["connections"]
    lines += [
        "",
        f"The same, {connections} keep-alive connections at once (one request at a time on each; decisions that "
        "come together share a commit):",
        "",
        "| Candidates (live items) | Requests | p50 | p99 | Requests per second |",
        "| ---: | ---: | ---: | ---: | ---: |",
    ]
    for count in ("20", "100"):
        row = http[count]["concurrent"]
        lines.append(
            f"| {count} | {row['requests']:,} | {row['p50_ms']:.2f} ms | {row['p99_ms']:.2f} ms | "
            f"{row['per_second']:,.0f} |"
        )
    return "\n".join(lines)


def main():
    name, folder = sys.argv[1], sys.argv[2]
    if name == "synthetic":
        name, body = synthetic(folder)
    else:
        body = {"obd": obd, "throughput": throughput}[name](folder)
    start, end = f"<!-- placement-{name}:start -->", f"<!-- placement-{name}:end -->"
    with open(DOCS) as file:
        text = file.read()
    if start not in text or end not in text:
        sys.exit(f"{DOCS} lacks the markers {start} and {end}")
    before, rest = text.split(start, 1)
    _, after = rest.split(end, 1)
    with open(DOCS, "w") as file:
        file.write(f"{before}{start}\n{body}\n{end}{after}")


if __name__ == "__main__":
    main()
