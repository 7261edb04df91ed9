"""The local Lambda runner's own promises, with tiny bootstraps written in Python: answers
come back through both APIs, a function that dies or hangs fails its callers at once or
at the timeout, and a timed-out event is never run later."""

from __future__ import annotations

import json
import pathlib
import shutil
import sys
import tempfile
import textwrap
import time
import unittest
import urllib.request

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "emulator"))

import local_lambda  # noqa: E402

BOOTSTRAP = textwrap.dedent("""\
    #!{python}
    import json, os, pathlib, sys, time, urllib.request
    api = os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/invocation/"
    seen = pathlib.Path(sys.argv[0]).with_suffix(".seen")
    while True:
        with urllib.request.urlopen(api + "next") as r:
            request_id = r.headers["Lambda-Runtime-Aws-Request-Id"]
            event = json.loads(r.read())
        with seen.open("a") as f:
            f.write(json.dumps(event) + "\\n")
        if event.get("do") == "hang":
            time.sleep(3600)
        if event.get("do") == "exit":
            sys.exit(4)
        kind = "error" if event.get("do") == "fail" else "response"
        body = {{"errorType": "Boom", "errorMessage": "asked to"}} if kind == "error" else {{"echo": event, "name": os.environ["AWS_LAMBDA_FUNCTION_NAME"]}}
        urllib.request.urlopen(urllib.request.Request(api + request_id + "/" + kind, data=json.dumps(body).encode(), method="POST"))
""")


class Runner(unittest.TestCase):
    def setUp(self) -> None:
        self.work = pathlib.Path(tempfile.mkdtemp(prefix="local-lambda-"))
        self.addCleanup(shutil.rmtree, self.work, True)
        self.bootstrap = self.work / "bootstrap.py"
        self.bootstrap.write_text(BOOTSTRAP.format(python=sys.executable))
        self.bootstrap.chmod(0o755)
        self.runner = local_lambda.LocalLambda(self.work / "logs", timeout=2).start()
        self.addCleanup(self.runner.stop)
        self.runner.add("fn", self.bootstrap, {"K": 1})

    def seen(self) -> list[dict]:
        path = self.bootstrap.with_suffix(".seen")
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def test_answers_and_errors_come_back_through_both_apis(self) -> None:
        ok, answer = self.runner.invoke_here("fn", b'{"n": 1}')
        self.assertTrue(ok)
        self.assertEqual(json.loads(answer), {"echo": {"n": 1}, "name": "fn"})
        url = f"{self.runner.url}/2015-03-31/functions/arn:aws:lambda:eu-west-1:123456789012:function:fn/invocations"
        with urllib.request.urlopen(urllib.request.Request(url, data=b'{"do": "fail"}', method="POST")) as r:
            self.assertEqual(r.headers["X-Amz-Function-Error"], "Unhandled")
            self.assertEqual(json.loads(r.read())["errorType"], "Boom")
        missing = urllib.request.Request(f"{self.runner.url}/2015-03-31/functions/nope/invocations", data=b"{}", method="POST")
        with self.assertRaises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(missing)
        self.assertEqual(e.exception.code, 404)

    def test_a_function_that_exits_fails_this_and_every_later_invocation_at_once(self) -> None:
        ok, answer = self.runner.invoke_here("fn", b'{"do": "exit"}')
        self.assertFalse(ok)
        self.assertEqual(json.loads(answer)["errorType"], "Runtime.ExitError")
        self.assertEqual(self.runner.exited(), ["fn (exit 4)"])
        started = time.monotonic()
        ok, answer = self.runner.invoke_here("fn", b'{"n": 2}')
        self.assertFalse(ok)
        self.assertLess(time.monotonic() - started, 1, "no waiting for a dead function")

    def test_a_timed_out_invocation_stops_the_function_and_is_never_run_later(self) -> None:
        ok, answer = self.runner.invoke_here("fn", b'{"do": "hang"}')
        self.assertFalse(ok)
        self.assertIn(b"did not answer within 2 s", answer)
        deadline = time.monotonic() + 5
        while not self.runner.exited() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertTrue(self.runner.exited(), "the hung process is stopped")
        self.assertEqual(self.seen(), [{"do": "hang"}])


if __name__ == "__main__":
    unittest.main()
