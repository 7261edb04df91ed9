"""`make demo`'s story, run as `make demo` runs it, so it cannot rot.

`make demo` runs the release zips `make build` writes; release builds stay out of
`make test`, so here the zips hold the functions' debug binaries (`make functions-debug`,
the build `cargo test` shares). Everything else is the demo itself: the emulator, the
stack deployed by stackctl, the local Lambda runner, the rules, the story, the clean-up.
"""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import zipfile

INFRA = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(INFRA))

import demo as demo_script  # noqa: E402
import stackctl  # noqa: E402

TARGET = pathlib.Path(os.environ.get("CARGO_TARGET_DIR") or pathlib.Path.home() / ".cache/outposts-ha/target")


def artifacts(folder: pathlib.Path, replace: dict[str, str] | None = None) -> pathlib.Path:
    """<function>/bootstrap.zip from the debug binaries; `replace` swaps a function's
    bootstrap for a shell script."""
    for function in stackctl.FUNCTIONS:
        (folder / function).mkdir(parents=True)
        with zipfile.ZipFile(folder / function / "bootstrap.zip", "w") as z:
            if replace and function in replace:
                info = zipfile.ZipInfo("bootstrap")
                info.external_attr = 0o755 << 16
                z.writestr(info, replace[function])
            else:
                binary = TARGET / "debug" / function
                if not binary.is_file():
                    raise AssertionError(f"{binary} is missing: run `make functions-debug` (make test does)")
                z.write(binary, "bootstrap")
    return folder


def demo(folder: pathlib.Path, **kwargs) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    argv = [sys.executable, str(INFRA / "demo.py"), "--artifacts", str(folder)]
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def ports(text: str) -> list[int]:
    """The emulator's and the local runtime's ports, as the story names them."""
    return [int(p) for p in re.findall(r"on 127\.0\.0\.1:(\d+)", text)]


class Demo(unittest.TestCase):
    def setUp(self) -> None:
        self.work = pathlib.Path(tempfile.mkdtemp(prefix="demo-test-"))
        self.addCleanup(shutil.rmtree, self.work, True)

    def test_the_whole_story_is_told_and_everything_is_cleaned_up(self) -> None:
        p = demo(artifacts(self.work / "zips"))
        out, err = p.communicate(timeout=600)
        self.assertEqual(p.returncode, 0, f"{out}\n{err}")
        story = out
        # The scene: the real templates deployed, the alarms from protected-server.yaml.
        self.assertIn("deployed stack ohademo from infra/template.yaml", story)
        self.assertRegex(story, r"alarms outposts-ha-op-0a1b2c3d4e5f60718 \(OK\), outposts-ha-op-0f9e8d7c6b5a40312 \(OK\)")
        for rule, function in (("AlarmStateChangeRule", "alarm-handler"), ("RelaunchRequestedRule", "relaunch"),
                               ("ReplacementRunningRule", "relaunch"), ("FenceRequestedRule", "relaunch"),
                               ("NotifyRule", "notifier"), ("BackupStatusRule", "backup-scheduler"),
                               ("WitnessProbeRule", "relaunch")):
            self.assertRegex(story, rf"ohademo-{rule}-\S+ +→ {function}\n")
        # Backups: both parameters moved to AMIs that are backups of the originals.
        backups = dict(re.findall(r"\] (pos-db|records): /outposts-ha/ohademo/\S+ \(none\) → (ami-\w+) \(available", story))
        self.assertEqual(sorted(backups), ["pos-db", "records"], story)
        helper = re.search(r"backup helper subnet \(in the Region, tagged outposts-ha:backup-helper\): (subnet-\w+)", story)
        self.assertIsNotNone(helper, story)
        self.assertEqual(re.findall(r"runbook helper: subnet (subnet-\w+), type (\S+)", story),
                         [(helper.group(1), "c5.large")] * 2, story)
        # Failover: routed by the deployed rules to the real binaries.
        for line in ("→ alarm-handler    CloudWatch Alarm State Change: outposts-ha-op-0a1b2c3d4e5f60718 OK → ALARM",
                     "→ relaunch         RelaunchRequested: op-0a1b2c3d4e5f60718",
                     "→ notifier         WorkloadServing: pos-app"):
            self.assertIn(line, story)
        self.assertRegex(story, r"incident inc-\w+: 3 workloads serving")
        self.assertIn("still 3 replacements", story)
        self.assertRegex(story, r"target group pos-app-web: i-\w+ healthy\n")
        # The inbox (the email subscription's filter): the opening and one failover summary,
        # with the incident and the site's name in each subject; no per-workload mail.
        self.assertRegex(story, r"Subject: \[CRITICAL\] inc-\w+ Store 17, Main St: server down, relaunching 3 workload")
        self.assertRegex(story, r"Subject: \[INFO\] inc-\w+ Store 17, Main St: failover complete: 3/3 up")
        self.assertNotIn("Relaunched pos-db", story)
        # Return: exactly server A's originals fenced, the incident closed.
        self.assertEqual(len(re.findall(r"original i-\w+ fenced \(running\)", story)), 3, story)
        # Each interface (eth0 and the LNI at eth1) in the quarantine group, its own groups kept.
        isolated = re.findall(r"eth(\d) eni-\w+: outposts-ha-ohademo-quarantine \(kept: sg-\w+\)", story)
        self.assertEqual(sorted(isolated), ["0"] * 3 + ["1"] * 3, story)
        self.assertIn("refused, its replacement still runs", story)
        restored = re.findall(r"eth(\d) eni-\w+: outposts-ha-ohademo-quarantine → (\S+)", story)
        self.assertEqual(restored, [("0", "apps-op-0a1b2c3d4e5f60718"), ("1", "store-lan-op-0a1b2c3d4e5f60718")], story)
        self.assertRegex(story, r"Subject: \[CRITICAL\] inc-\w+ (op-0a1b2c3d4e5f60718: )?pos-app original back in service")
        self.assertRegex(story, r"incident inc-\w+ closed; server B's originals untouched")
        self.assertRegex(story, r"Subject: \[INFO\] inc-\w+ Store 17, Main St: server back, incident closed")
        self.assertIn("Timeline:", story)
        # Back home: stateless workloads on their originals again, their replacements gone;
        # the stateful one left for the runbook. Then the fleet at a glance.
        self.assertRegex(story, r"make protect SERVERS=stores.csv: servers A and B")
        self.assertRegex(story, r"kiosk: home on i-\w+; replacement i-\w+ terminated")
        self.assertRegex(story, r"pos-app: home on i-\w+; replacement i-\w+ terminated")
        self.assertRegex(story, r"pos-db: left on its replacement: stateful")
        self.assertIn("2 of 2 server(s) ready; nothing launched", story)
        # Status: server B clean; server A's stateful workload still runs on its replacement.
        self.assertIn("make status (exit 1):", story)
        self.assertRegex(story, r"op-0a1b2c3d4e5f60718  Store 17, Main St  OK +3 ok +\S+ +READY \d+s ago +- +"
                                r"1 on a replacement \(pos-db: i-\w+\): make failback SERVER=op-0a1b2c3d4e5f60718, "
                                r"stateful ones by the runbook\n")
        self.assertRegex(story, r"op-0f9e8d7c6b5a40312  - +OK +2 ok +\S+ +READY \d+s ago +- +-\n")
        self.assertIn("2 protected server(s); 1 need attention", story)
        timeline = story[story.index("make incident SERVER=op-0a1b2c3d4e5f60718"):]
        self.assertRegex(timeline, r"==> incident inc-\w+ \(closed\): Store 17, Main St \(op-0a1b2c3d4e5f60718\)")
        for fact in ("detected: the server's alarm went to ALARM", "opening told", "pos-app: serving",
                     "failover summary told", "server back: its alarm went to OK", "closing told"):
            self.assertIn(fact, timeline[:timeline.index("summary:")])
        # A partition: server B's database answers the witness, so it is held (one critical
        # notification) while imaging is relaunched; released on the operator's word; on
        # return both copies of the database are kept, imaging's original fenced.
        self.assertRegex(story, r"incident inc-\w+: imaging relaunched and serving; records held")
        held = re.findall(r"Subject: \[CRITICAL\] inc-\w+ op-0f9e8d7c6b5a40312: 1 workload\(s\) HELD", story)
        self.assertEqual(len(held), 1, story)
        self.assertIn("records at 192.168.20.21:5432: answered", story)
        self.assertIn("make release SERVER=op-0f9e8d7c6b5a40312", story)
        self.assertIn("records relaunched from its newest backup", story)
        self.assertRegex(story, r"records: original i-\w+ kept beside its replacement")
        self.assertRegex(story, r"imaging: original i-\w+ fenced\n")
        self.assertRegex(story, r"Subject: \[CRITICAL\] inc-\w+ op-0f9e8d7c6b5a40312: records: both copies kept\n")
        # After the release, the failover is told again, complete.
        self.assertRegex(story, r"Subject: \[INFO\] inc-\w+ op-0f9e8d7c6b5a40312: failover complete: 2/2 up")
        # The summary: pos-db restored from the backup just taken; the others from their templates.
        summary = story[story.index("== Summary"):story.index("== Cleaning up")]
        rows = {line.split()[0]: line.split() for line in summary.splitlines()[2:] if line.strip()}
        self.assertEqual(sorted(rows), ["kiosk", "pos-app", "pos-db"], summary)
        self.assertEqual(rows["pos-db"][3], backups["pos-db"], summary)
        self.assertEqual(rows["pos-app"][3], "-", summary)
        for row in rows.values():
            self.assertTrue(row[1].startswith("i-") and row[2].startswith("i-") and row[1] != row[2], row)
            to_launch, to_serving = float(row[-4]), float(row[-2])
            self.assertLessEqual(to_launch, to_serving, row)
        # Cleaned up: the stack deleted, every process stopped.
        self.assertIn("stack ohademo, its server stacks, backups and artifacts deleted", story)
        self.assertEqual(len(ports(story)), 2, story)
        for port in ports(story):
            self.assertFalse(listening(port), f"port {port} still open after the demo")

    def test_ctrl_c_stops_the_story_and_still_cleans_up(self) -> None:
        p = demo(artifacts(self.work / "zips"))
        seen = ""
        deadline = time.time() + 300
        while "local Lambda runtime" not in seen and time.time() < deadline and p.poll() is None:
            seen += p.stdout.readline()
        p.send_signal(signal.SIGINT)
        rest, err = p.communicate(timeout=120)
        story = seen + rest
        self.assertEqual(p.returncode, 130, f"{story}\n{err}")
        self.assertIn("demo interrupted", err)
        self.assertIn("stack ohademo, its server stacks, backups and artifacts deleted", story)
        self.assertIn("the emulator stopped", story)
        for port in ports(story):
            self.assertFalse(listening(port), f"port {port} still open after Ctrl-C")

    def test_a_function_that_dies_fails_the_demo_with_the_reason(self) -> None:
        broken = artifacts(self.work / "zips", replace={"relaunch": "#!/bin/sh\necho 'cannot start' >&2\nexit 3\n"})
        p = demo(broken)
        out, err = p.communicate(timeout=300)
        self.assertEqual(p.returncode, 1, f"{out}\n{err}")
        self.assertRegex(err, r"demo failed: .*relaunch \(exit 3\) stopped; its log says why")
        self.assertIn("the emulator stopped", out)


class StopRequests(unittest.TestCase):
    """With threads running, CPython may run the Python-level handler late; the demo's
    waits must see the signal from the wakeup fd, which the C-level handler writes at once."""

    def setUp(self) -> None:
        self.saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
        self.requests = demo_script.StopRequests()
        self.write_end = signal.set_wakeup_fd(-1)  # as if the handler had written it

    def tearDown(self) -> None:
        for s, handler in self.saved.items():
            signal.signal(s, handler)
        os.close(self.write_end)
        os.close(self.requests.wakeup)

    def test_a_signal_not_yet_handled_ends_the_next_wait_and_only_the_first_counts(self) -> None:
        os.write(self.write_end, bytes([signal.SIGTERM]))
        with self.assertRaises(KeyboardInterrupt):
            self.requests.sleep(30)
        self.assertEqual(self.requests.received, signal.SIGTERM)
        # The clean-up that follows is not interrupted by the handler's late run or a repeat.
        os.write(self.write_end, bytes([signal.SIGINT]))
        self.requests.sleep(0.1)
        self.requests.on_signal(signal.SIGINT, None)
        self.assertEqual(self.requests.received, signal.SIGTERM)

    def test_a_quiet_wait_just_waits(self) -> None:
        self.requests.sleep(0.05)
        self.assertIsNone(self.requests.received)


if __name__ == "__main__":
    unittest.main()
