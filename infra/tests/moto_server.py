"""moto server with the project's doubles on a free port of 127.0.0.1 for a test class, and
the AWS environment that points boto3 at it; stopped and the environment restored by the
class's cleanup. A call IAM refused fails the class at cleanup unless the class sets
`expects_denials` (its tests then read `test_class.iam_denials`, the refusals' log)."""

from __future__ import annotations

import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

REGION = "eu-west-1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(test_class: type[unittest.TestCase]) -> dict[str, str]:
    """Starts moto server, registers its stop with `test_class`'s class cleanups, and sets the
    AWS environment; returns that environment."""
    port = free_port()
    # The same emulator as the Rust tests and the demo: moto with the doubles that refuse
    # what AWS refuses.
    emulator = pathlib.Path(__file__).resolve().parents[2] / "tests" / "emulator" / "moto_with_doubles.py"
    log = open(os.environ.get("MOTO_LOG", os.devnull), "w")
    denials = pathlib.Path(tempfile.mkdtemp(prefix="iam-denials-")) / "denials.log"
    test_class.iam_denials = denials
    process = subprocess.Popen([sys.executable, str(emulator), "-H", "127.0.0.1", "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=log,
                               env={**os.environ, "IAM_DOUBLE_DENIALS": str(denials)})
    saved = dict(os.environ)

    def stop() -> None:
        process.kill()
        process.wait()
        log.close()
        os.environ.clear()
        os.environ.update(saved)
        refused = denials.read_text() if denials.exists() else ""
        shutil.rmtree(denials.parent, ignore_errors=True)
        if refused and not getattr(test_class, "expects_denials", False):
            raise AssertionError(f"IAM refused calls no test expected:\n{refused}")

    test_class.addClassCleanup(stop)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1)
            break
        except OSError:
            if time.time() > deadline or process.poll() is not None:
                raise
            time.sleep(0.2)
    env = {"AWS_ENDPOINT_URL": endpoint, "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION,
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    os.environ.update(env)
    for k in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_LAMBDA"):
        os.environ.pop(k, None)
    return env


def seed_outposts(ids: list[str], retired: list[str] = ()) -> None:
    """Makes `ids` Outposts of the account in REGION (the emulator's Outposts double), as
    the Outposts a fleet already has."""
    import json

    body = {"region": REGION, "outposts": [{"OutpostId": i, "LifeCycleStatus": "RETIRED" if i in retired else "ACTIVE"}
                                           for i in ids]}
    request = urllib.request.Request(f"{os.environ['AWS_ENDPOINT_URL']}/_outposts_double/outposts", method="POST",
                                     data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=30).read()

