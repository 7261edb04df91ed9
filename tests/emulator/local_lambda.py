#!/usr/bin/env python3
"""The one local Lambda runner: the functions' real bootstrap binaries, each behind
Lambda's Runtime API, invoked through Lambda's Invoke API by function name.

    local_lambda.py serve --logs DIR --function NAME=BOOTSTRAP [--function …] [--env K=V …] [--port P]
    local_lambda.py cold-start --logs DIR --function NAME=BOOTSTRAP --event FILE --runs N [--env K=V …]

Used by `make demo` (its deliverer invokes the deployed functions), by the operator
commands' tests (stackctl's `lambda.invoke` reaches it through AWS_ENDPOINT_URL_LAMBDA)
and by `make bench` (`cold-start`: per run, a fresh process handles one event; it prints
JSON with the time from process start to its first request for an event, and the peak
resident memory after the answer).

Each function runs one process handling one invocation at a time, as a Lambda execution
environment does; concurrent invokes queue. A process that exits fails the invocations
waiting for it and every later one (`Runtime.ExitError`): locally, a function that dies is
a finding, not something to paper over by starting it again. An invocation that times out
is never run later, and the process that hangs on it is stopped.
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import pathlib
import queue
import re
import subprocess
import sys
import threading
import time
import uuid

INVOKE = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations$")
RUNTIME = re.compile(r"^/fn/(?P<name>[^/]+)/2018-06-01/runtime/(?P<rest>.+)$")
RUNTIME_API_VERSION = "2018-06-01"


class Invocation:
    def __init__(self, payload: bytes, timeout: float) -> None:
        self.request_id = str(uuid.uuid4())
        self.payload = payload
        self.deadline = time.time() + timeout
        self.done = threading.Event()
        self.cancelled = False
        self.error = False
        self.answer = b""

    def finish(self, answer: bytes, error: bool) -> None:
        self.answer, self.error = answer, error
        self.done.set()


class Function:
    """One function: its process and the invocations queued for it."""

    def __init__(self, name: str, bootstrap: pathlib.Path, env: dict[str, str], log: pathlib.Path) -> None:
        self.name = name
        self.bootstrap = bootstrap
        self.env = env
        self.log = log
        self.pending: queue.Queue[Invocation] = queue.Queue()
        self.current: dict[str, Invocation] = {}
        self.process: subprocess.Popen | None = None
        self.started_at = 0.0
        self.ready_after: float | None = None
        self.lock = threading.Lock()

    def start(self, runtime_api: str) -> None:
        env = {
            "PATH": "/usr/bin:/bin",
            **{k: str(v) for k, v in self.env.items()},
            "AWS_LAMBDA_RUNTIME_API": f"{runtime_api}/fn/{self.name}",
            "AWS_LAMBDA_FUNCTION_NAME": self.name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": self.env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{self.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": "local",
        }
        self.started_at = time.monotonic()
        out = self.log.open("ab")
        self.process = subprocess.Popen([str(self.bootstrap)], env=env, stdout=out, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        threading.Thread(target=self.watch, daemon=True).start()

    def watch(self) -> None:
        """A process that exits fails what waits for it (under the lock `submit` takes, so
        nothing queued after the exit waits in vain)."""
        assert self.process is not None
        self.process.wait()
        with self.lock:
            waiting = list(self.current.values())
            self.current.clear()
            while not self.pending.empty():
                waiting.append(self.pending.get_nowait())
        for invocation in waiting:
            invocation.finish(self.exit_error(), error=True)

    def submit(self, payload: bytes, timeout: float) -> Invocation:
        """Queues an invocation; one for a process that has exited fails at once."""
        invocation = Invocation(payload, timeout)
        with self.lock:
            if self.exited() is None:
                self.pending.put(invocation)
                return invocation
        invocation.finish(self.exit_error(), error=True)
        return invocation

    def give_up(self, invocation: Invocation) -> None:
        """A timed-out invocation: never run it later, and stop the process that hangs on it
        (as Lambda ends a timed-out environment)."""
        invocation.cancelled = True
        with self.lock:
            hung = self.current.pop(invocation.request_id, None) is not None
        if hung:
            self.stop()

    def exited(self) -> int | None:
        return self.process.poll() if self.process else None

    def exit_error(self) -> bytes:
        body = {"errorType": "Runtime.ExitError", "errorMessage": f"{self.name} exited with {self.exited()}"}
        return json.dumps(body).encode()

    def next_invocation(self) -> Invocation:
        if self.ready_after is None:
            self.ready_after = time.monotonic() - self.started_at
        while True:
            invocation = self.pending.get()
            with self.lock:
                if invocation.cancelled:
                    continue
                self.current[invocation.request_id] = invocation
            return invocation

    def finish(self, request_id: str, answer: bytes, error: bool) -> bool:
        with self.lock:
            invocation = self.current.pop(request_id, None)
        if invocation:
            invocation.finish(answer, error)
        return invocation is not None

    def peak_rss_kib(self) -> int:
        if not self.process or self.process.poll() is not None:
            return 0
        try:
            status = pathlib.Path(f"/proc/{self.process.pid}/status").read_text()
        except OSError:
            return 0
        match = re.search(r"^VmHWM:\s+(\d+)", status, re.M)
        return int(match.group(1)) if match else 0

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()


class LocalLambda:
    """The runner: functions by name, one HTTP server for both APIs on 127.0.0.1."""

    def __init__(self, logs: pathlib.Path, port: int = 0, timeout: float = 120.0) -> None:
        self.logs = logs
        self.logs.mkdir(parents=True, exist_ok=True)
        self.timeout = timeout
        self.functions: dict[str, Function] = {}
        runner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt: str, *args) -> None:  # quiet: the functions' logs tell the story
                pass

            def body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                if self.path.startswith("/stats/"):
                    return runner.stats(self, self.path[len("/stats/"):])
                m = RUNTIME.match(self.path)
                if m and m["rest"] == "invocation/next":
                    return runner.next(self, m["name"])
                self.answer(404, b'{"message": "not found"}')

            def do_POST(self) -> None:
                payload = self.body()
                if m := INVOKE.match(self.path):
                    return runner.invoke(self, m["name"], payload)
                if m := RUNTIME.match(self.path):
                    return runner.runtime_post(self, m["name"], m["rest"], payload)
                self.answer(404, b'{"message": "not found"}')

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> "LocalLambda":
        self.thread.start()
        return self

    def add(self, name: str, bootstrap: pathlib.Path, env: dict[str, str]) -> Function:
        """Starts `bootstrap` as function `name` with `env` (the deployed function's)."""
        f = Function(name, bootstrap, env, self.logs / f"{name}.log")
        self.functions[name] = f
        f.start(self.url)
        return f

    def stop(self) -> None:
        for f in self.functions.values():
            f.stop()
        self.server.shutdown()
        self.server.server_close()

    def exited(self) -> list[str]:
        """`name (exit N)` of every function whose process stopped by itself."""
        return [f"{n} (exit {f.exited()})" for n, f in self.functions.items() if f.exited() is not None]

    def function(self, name: str) -> Function | None:
        # Invoke accepts a name, an ARN or a partial ARN: the name is the part after `function:`.
        return self.functions.get(name.rsplit("function:", 1)[-1].split(":")[0])

    # --- the Invoke API ----------------------------------------------------------------

    def invoke(self, h, name: str, payload: bytes) -> None:
        f = self.function(name)
        if f is None:
            body = {"Type": "User", "message": f"Function not found: {name}"}
            return h.answer(404, json.dumps(body).encode(), {"X-Amzn-ErrorType": "ResourceNotFoundException"})
        ok, answer = self.invoke_here(name, payload)
        headers = {"X-Amz-Executed-Version": "$LATEST"}
        if not ok:
            headers["X-Amz-Function-Error"] = "Unhandled"
        h.answer(200, answer or b"null", headers)

    def invoke_here(self, name: str, payload: bytes) -> tuple[bool, bytes]:
        """One invoke, in-process (the Invoke API answers with this): (succeeded, answer)."""
        f = self.function(name)
        if f is None:
            raise KeyError(name)
        invocation = f.submit(payload, self.timeout)
        if not invocation.done.wait(self.timeout):
            f.give_up(invocation)
            body = {"errorType": "Sandbox.Timedout", "errorMessage": f"{name} did not answer within {self.timeout:.0f} s"}
            return False, json.dumps(body).encode()
        return not invocation.error, invocation.answer

    # --- the Runtime API -----------------------------------------------------------------

    def next(self, h, name: str) -> None:
        f = self.functions.get(name)
        if f is None:
            return h.answer(404, b'{"message": "unknown function"}')
        invocation = f.next_invocation()
        deadline_ms = int(invocation.deadline * 1000)
        h.answer(200, invocation.payload, {
            "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
            "Lambda-Runtime-Deadline-Ms": str(deadline_ms),
            "Lambda-Runtime-Invoked-Function-Arn": f"arn:aws:lambda:eu-west-1:123456789012:function:{name}",
            "Lambda-Runtime-Trace-Id": "Root=1-00000000-000000000000000000000000;Sampled=0",
        })

    def runtime_post(self, h, name: str, rest: str, payload: bytes) -> None:
        f = self.functions.get(name)
        if f is None:
            return h.answer(404, b'{"message": "unknown function"}')
        parts = rest.split("/")
        if parts[0] == "invocation" and len(parts) == 3 and parts[2] in ("response", "error"):
            known = f.finish(parts[1], payload, error=parts[2] == "error")
            return h.answer(202 if known else 400, b'{"status": "OK"}' if known else b'{"message": "unknown request"}')
        if rest == "init/error":
            print(f"{name} failed to initialise: {payload.decode(errors='replace')}", file=sys.stderr)
            return h.answer(202, b'{"status": "OK"}')
        h.answer(404, b'{"message": "not found"}')

    def stats(self, h, name: str) -> None:
        f = self.functions.get(name)
        if f is None:
            return h.answer(404, b'{"message": "unknown function"}')
        body = {"ready_after_ms": None if f.ready_after is None else f.ready_after * 1000,
                "peak_rss_kib": f.peak_rss_kib(), "pid": f.process.pid if f.process else None}
        h.answer(200, json.dumps(body).encode())


def role_credentials(session, configuration: dict) -> dict[str, str]:
    """The deployed function's execution role, assumed: its environment's credentials, as
    Lambda gives a function (`session` is an administrator's boto3 session)."""
    answer = session.client("sts").assume_role(RoleArn=configuration["Role"],
                                               RoleSessionName=configuration["FunctionName"][-64:])
    c = answer["Credentials"]
    return {"AWS_ACCESS_KEY_ID": c["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": c["SecretAccessKey"],
            "AWS_SESSION_TOKEN": c["SessionToken"]}


def cold_starts(logs: pathlib.Path, name: str, bootstrap: pathlib.Path, env: dict[str, str], event: bytes,
                runs: int) -> dict:
    """`runs` fresh starts of one function, each handing it `event`."""
    ready_ms, peak = [], 0
    for run in range(runs):
        runner = LocalLambda(logs / f"run-{run}", timeout=60).start()
        try:
            f = runner.add(name, bootstrap, env)
            ok, answer = runner.invoke_here(name, event)
            if not ok:
                raise RuntimeError(f"{name} failed the invocation: {answer.decode(errors='replace')[:500]}")
            ready_ms.append((f.ready_after or 0.0) * 1000)
            peak = max(peak, f.peak_rss_kib())
        finally:
            runner.stop()
    return {"function": name, "ready_ms": ready_ms, "peak_rss_kib": peak}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["serve", "cold-start"])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--logs", type=pathlib.Path, required=True)
    p.add_argument("--function", action="append", default=[], help="NAME=BOOTSTRAP")
    p.add_argument("--env", action="append", default=[], help="K=V for every function")
    p.add_argument("--event", type=pathlib.Path, help="cold-start: the event to hand the function")
    p.add_argument("--runs", type=int, default=5, help="cold-start: how many fresh starts")
    a = p.parse_args(argv)
    env = dict(e.split("=", 1) for e in a.env)
    functions = [spec.split("=", 1) for spec in a.function]
    if a.mode == "cold-start":
        if len(functions) != 1 or a.event is None:
            p.error("cold-start takes one --function and an --event")
        (name, bootstrap), = functions
        result = cold_starts(a.logs, name, pathlib.Path(bootstrap), env, a.event.read_bytes(), a.runs)
        print(json.dumps(result), flush=True)
        return 0
    runner = LocalLambda(a.logs, a.port).start()
    for name, bootstrap in functions:
        runner.add(name, pathlib.Path(bootstrap), env)
    print(f"local Lambda on {runner.url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        runner.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
