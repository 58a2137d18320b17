"""Ranks and rewards on Capstan with Microsoft's Azure Personalizer Python client.

It starts the real `capstan serve` (CAPSTAN_BIN, or the workspace's debug build) on
port 0 with a fresh SQLite file, makes a placement token through the management API,
and points the unmodified client at Capstan: only the endpoint and the key change.
"""

import json
import os
import subprocess
import tempfile
import unittest
import urllib.request

from azure.cognitiveservices.personalizer import PersonalizerClient
from azure.cognitiveservices.personalizer.models import RankableAction, RankRequest
from msrest.authentication import CognitiveServicesCredentials
from msrest.exceptions import HttpOperationError

ADMIN = "cps_personalizer_py_admin_0123456789abcdef"
HERE = os.path.dirname(os.path.abspath(__file__))
BINARY = os.environ.get("CAPSTAN_BIN", os.path.join(HERE, "..", "..", "target", "debug", "capstan"))


def actions():
    return [
        RankableAction(id="sleep-story", features=[{"content": {"category": "sleep", "length": 20}}]),
        RankableAction(id="focus-music", features=[{"content": {"category": "focus", "length": 45}}]),
        RankableAction(id="calm-breath", features=[{"content": {"category": "calm", "length": 5}}]),
    ]


def context():
    return [{"user": {"taste": "sleep", "country": "FR"}}, {"timeOfDay": "evening"}]


class PersonalizerClientAgainstCapstan(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.directory = tempfile.TemporaryDirectory()
        cls.server = subprocess.Popen(
            [BINARY, "serve", "--listen", "127.0.0.1:0", "--database", os.path.join(cls.directory.name, "capstan.db")],
            env={**os.environ, "CAPSTAN_BOOTSTRAP_TOKEN": ADMIN, "CAPSTAN_LOG": "warn"},
            stdout=subprocess.PIPE,
            text=True,
        )
        for line in cls.server.stdout:
            if line.startswith("Listening on "):
                cls.url = line[len("Listening on "):].strip()
                break
        else:
            raise RuntimeError("capstan serve exited before listening")
        token = cls.api("POST", "/api/v1/tokens", {"name": "personalizer-app", "role": "placement"})
        cls.key = token["token"]
        cls.client = PersonalizerClient(cls.url, CognitiveServicesCredentials(cls.key))

    @classmethod
    def tearDownClass(cls):
        cls.server.terminate()
        cls.server.wait(timeout=30)
        cls.server.stdout.close()
        cls.directory.cleanup()

    @classmethod
    def api(cls, method, path, body=None):
        request = urllib.request.Request(
            cls.url + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": "Bearer " + ADMIN, "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request) as response:
            text = response.read()
            return json.loads(text) if text else None

    def test_rank_then_reward(self):
        response = self.client.rank(RankRequest(actions=actions(), context_features=context()))
        ids = [ranked.id for ranked in response.ranking]
        self.assertEqual(sorted(ids), ["calm-breath", "focus-music", "sleep-story"])
        self.assertAlmostEqual(sum(ranked.probability for ranked in response.ranking), 1.0, places=9)
        self.assertEqual(response.reward_action_id, ids[0])
        self.assertTrue(response.event_id)
        self.client.events.reward(response.event_id, 1.0)
        # Rewards combine as "first" by default: a second one is refused, clearly.
        with self.assertRaises(HttpOperationError) as refused:
            self.client.events.reward(response.event_id, 1.0)
        self.assertEqual(refused.exception.response.status_code, 409)

    def test_own_event_id_exclusions_and_deferred_activation(self):
        response = self.client.rank(
            RankRequest(
                actions=actions(),
                context_features=context(),
                excluded_actions=["sleep-story"],
                event_id="py-event-1",
                defer_activation=True,
            )
        )
        self.assertEqual(response.event_id, "py-event-1")
        self.assertNotIn("sleep-story", [ranked.id for ranked in response.ranking])
        self.client.events.activate("py-event-1")
        self.client.events.reward("py-event-1", 0.5)

    def test_a_named_surface_is_an_endpoint(self):
        self.api("PUT", "/api/v1/projects/default/surfaces/sleep_row", {"description": "The sleep row"})
        client = PersonalizerClient(self.url + "/surfaces/sleep_row", CognitiveServicesCredentials(self.key))
        response = client.rank(RankRequest(actions=actions(), context_features=context()))
        client.events.reward(response.event_id, 1.0)
        decisions = self.api("GET", "/api/v1/projects/default/surfaces/sleep_row")
        self.assertEqual(decisions["key"], "sleep_row")

    def test_bad_requests_are_clear_errors(self):
        from azure.cognitiveservices.personalizer.models import ErrorResponseException

        with self.assertRaises(ErrorResponseException) as empty:
            self.client.rank(RankRequest(actions=[], context_features=context()))
        self.assertEqual(empty.exception.response.status_code, 400)
        self.assertEqual(empty.exception.response.json()["error"]["target"], "candidates")
        with self.assertRaises(HttpOperationError) as unknown:
            self.client.events.reward("no-such-event", 1.0)
        self.assertEqual(unknown.exception.response.status_code, 404)
        wrong_key = PersonalizerClient(self.url, CognitiveServicesCredentials("cps_not_a_key"))
        with self.assertRaises(ErrorResponseException) as unauthorised:
            wrong_key.rank(RankRequest(actions=actions(), context_features=context()))
        self.assertEqual(unauthorised.exception.response.status_code, 401)


if __name__ == "__main__":
    unittest.main()
