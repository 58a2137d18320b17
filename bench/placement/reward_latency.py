"""How long a reward takes to change the next decisions, through the real server.

Starts `target/release/capstan serve` on 127.0.0.1:0 (fresh SQLite, default learning
interval), makes a surface with three items and a placement token, then repeats: rank a
context and note the probabilities; send a reward of 1 for the item shown; rank the same
context again and again (no sleeps; each rank is a real request) until the probabilities
differ; the time from the reward's answer to the first changed ranking is one sample.
Prints p50, p90 and max over the trials. Loopback only, bounded in count and time.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ADMIN = "cps_reward_latency_admin_0123456789abcdef"
TRIALS = int(sys.argv[1]) if len(sys.argv) > 1 else 30


def call(url, method, path, token, body=None):
    request = urllib.request.Request(
        url + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        text = response.read()
        return json.loads(text) if text else None


def main():
    directory = tempfile.TemporaryDirectory()
    server = subprocess.Popen(
        ["target/release/capstan", "serve", "--listen", "127.0.0.1:0", "--database", os.path.join(directory.name, "capstan.db")],
        env={**os.environ, "CAPSTAN_BOOTSTRAP_TOKEN": ADMIN, "CAPSTAN_LOG": "warn"},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = None
        for line in server.stdout:
            if line.startswith("Listening on "):
                url = line[len("Listening on "):].strip()
                break
        call(url, "PUT", "/api/v1/projects/default/surfaces/latency", ADMIN, {"settings": {"learner": {"holdout": 0, "testingBudget": 0}}})
        items = [{"id": f"item-{n}", "features": {"content": {"category": f"c{n}"}}} for n in range(3)]
        call(url, "POST", "/api/v1/projects/default/surfaces/latency/items", ADMIN, {"items": items})
        token = call(url, "POST", "/api/v1/tokens", ADMIN, {"name": "bench", "role": "placement"})["token"]
        samples = []
        deadline = time.monotonic() + 120
        for trial in range(TRIALS):
            context = {"user": {"trial": str(trial % 5)}}
            first = call(url, "POST", "/api/v1/placements/latency/rank", token, {"context": context})
            before = {item["id"]: item["probability"] for item in first["items"]}
            call(url, "POST", f"/api/v1/placements/events/{first['eventId']}/reward", token, {"value": 1})
            rewarded = time.monotonic()
            while True:
                again = call(url, "POST", "/api/v1/placements/latency/rank", token, {"context": context})
                after = {item["id"]: item["probability"] for item in again["items"]}
                if any(abs(after[key] - before[key]) > 1e-12 for key in before):
                    samples.append(time.monotonic() - rewarded)
                    break
                if time.monotonic() > deadline:
                    raise SystemExit("a reward never changed the decisions")
        samples.sort()
        p50 = statistics.median(samples)
        p90 = samples[int(0.9 * (len(samples) - 1))]
        print(f"{len(samples)} rewards: time to the first changed decision p50 {p50 * 1000:.0f} ms, "
              f"p90 {p90 * 1000:.0f} ms, max {samples[-1] * 1000:.0f} ms")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
