"""The command line itself (SPEC §10 and the CLI contract in docs/cli.md)."""
import json
import os
import subprocess
import time

from conftest import BIN, UUID7_RE, by_integration, call, echo, integration, parse_time, set_task

COMMANDS = ("publish", "validate", "run", "cancel", "runs", "show", "graph", "token", "serve")


def test_help(braid):
    for args in (["--help"], ["help"]):
        r = subprocess.run([BIN, *args], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, args
        assert "usage" in r.stdout.lower()
        for c in COMMANDS:
            assert c in r.stdout
    for c in COMMANDS:
        r = braid(c, "--help")
        assert r.returncode == 0, (c, r.stderr)
        assert c in r.stdout and "usage" in r.stdout.lower()
        assert "--json" in r.stdout


def test_usage_errors_exit_2(braid):
    braid.publish(echo("cli/x"))
    cases = [
        ["frobnicate"],
        ["run", "cli/x", "--no-such-option"],
        ["run"],                                  # missing NAME
        ["run", "cli/x", "--input"],              # missing value
        ["run", "cli/x", "--version", "two"],     # bad number
        ["run", "cli/x", "--max-call-depth", "-1x"],
        ["run", "cli/x", "--mode", "sideways"],
        ["run", "cli/x", "--input", "{bad json"],
        ["run", "cli/x", "--input", "@/no/such/file.json"],
        ["runs", "--limit", "many"],
        ["show"],
        ["cancel"],
        ["publish"],
        ["validate"],
        ["graph", "--bogus"],
    ]
    for args in cases:
        r = braid(*args)
        assert r.returncode == 2, (args, r.returncode, r.stdout, r.stderr)
        assert r.stderr.strip(), args
    r = subprocess.run([BIN], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2


def test_unparsable_input_names_line_and_column(braid):
    braid.publish(echo("cli/x"))
    r = braid("run", "cli/x", "--input", '{"a": 1,\n "b": }')
    assert r.returncode == 2
    assert "2" in r.stderr and "line" in r.stderr.lower() and "column" in r.stderr.lower()
    path = braid.write('{\n\n  "a": [1, 2,,]\n}')
    r = braid("run", "cli/x", "--input", "@" + path)
    assert r.returncode == 2
    assert "line 3" in r.stderr.lower(), r.stderr


def test_input_forms(braid):
    braid.publish(integration("cli/in", [set_task("s", {"seen": "{{input.payload}}"})],
                              outputs=["seen"]))
    r = braid("run", "cli/in", "--input", '{"a": [1, 2]}')
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"seen": {"a": [1, 2]}}
    r = braid("run", "cli/in", "--input", "@" + braid.write({"from": "file"}))
    assert json.loads(r.stdout) == {"seen": {"from": "file"}}
    r = braid("run", "cli/in", "--input", "-", input='{"from": "stdin"}')
    assert json.loads(r.stdout) == {"seen": {"from": "stdin"}}
    r = braid("run", "cli/in")
    assert json.loads(r.stdout) == {"seen": {}}
    r = braid("run", "cli/in", "--input", "42")
    assert json.loads(r.stdout) == {"seen": 42}


def test_run_prints_output_as_pretty_json(braid):
    braid.publish(integration("cli/out", [set_task("s", {"a": {"b": [1, 2]}})], outputs=["a"]))
    r = braid("run", "cli/out")
    assert r.returncode == 0
    assert json.loads(r.stdout) == {"a": {"b": [1, 2]}}
    assert "\n" in r.stdout.strip()  # pretty, not compact


def test_run_errors_before_a_run(braid):
    r = braid("run", "cli/nothing")
    assert r.returncode == 1
    assert r.stderr.startswith("error: not_found: "), r.stderr
    braid.publish(integration("cli/req", [set_task("s", {"a": 1})],
                              inputs={"x": {"type": "string", "required": True}}))
    r = braid("run", "cli/req", "--json")
    assert r.returncode == 1
    assert r.stderr.startswith("error: input_invalid: "), r.stderr


def test_run_failed_prints_error(braid):
    braid.publish(integration("cli/fail", [{"id": "f", "type": "fail", "code": "nope",
                                           "message": "no way"}]))
    r = braid("run", "cli/fail")
    assert r.returncode == 1
    assert "error: nope: no way" in r.stderr


def test_run_async(braid):
    braid.publish(echo("cli/bg"))
    r = braid("run", "cli/bg", "--mode", "async")
    assert r.returncode == 0, r.stderr
    word, run_id = r.stdout.split()
    assert word == "queued" and UUID7_RE.match(run_id)
    assert braid.show(run_id)["status"] == "queued"

    out = braid.json("run", "cli/bg", "--mode", "async")
    assert out["status"] == "queued" and UUID7_RE.match(out["run_id"])
    parse_time(out["scheduled_at"])

    # run_async integrations are queued without --mode; --mode sync overrides.
    braid.publish(echo("cli/bg2", run_async=True))
    r = braid("run", "cli/bg2")
    assert r.stdout.startswith("queued ")
    rec = braid.run_json("cli/bg2", {"v": 1}, "--mode", "sync")
    assert rec["status"] == "succeeded" and rec["output"]["echoed"] == 1

    # --drain runs everything queued.
    rec = braid.run_json("cli/bg", {}, "--mode", "async", "--drain")
    for q in braid.runs():
        assert q["status"] == "succeeded", q


def test_data_dir_from_env_and_flag(tmp_path):
    env_dir = tmp_path / "from-env"
    doc = tmp_path / "d.json"
    doc.write_text(json.dumps(echo("cli/env")))
    env = dict(os.environ, BRAID_DATA=str(env_dir))
    r = subprocess.run([BIN, "publish", str(doc)], capture_output=True, text=True, env=env,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    assert env_dir.exists()
    r = subprocess.run([BIN, "run", "cli/env"], capture_output=True, text=True, env=env,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    # --data wins over BRAID_DATA.
    other = tmp_path / "other"
    r = subprocess.run([BIN, "run", "cli/env", "--data", str(other)], capture_output=True,
                       text=True, env=env, timeout=30)
    assert r.returncode == 1 and "not_found" in r.stderr
    # Without either: ./braid-data
    r = subprocess.run([BIN, "publish", str(doc)], capture_output=True, text=True,
                       env={k: v for k, v in os.environ.items() if k != "BRAID_DATA"},
                       cwd=tmp_path, timeout=30)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "braid-data").is_dir()


def test_json_outputs_parse(braid):
    braid.publish(echo("cli/j"))
    rec = braid.run_json("cli/j", {"v": 1})
    for args in (["runs"], ["show", rec["id"]], ["show", rec["id"], "--tree"], ["graph"],
                 ["validate", braid.write(echo("cli/k"))],
                 ["publish", braid.write(echo("cli/k"))]):
        r = braid(*args, "--json")
        assert r.returncode == 0, (args, r.stderr)
        json.loads(r.stdout)


def test_cancel_queued_and_scheduled(braid, run_json):
    braid.publish(echo("cli/kid"))
    braid.publish(integration("cli/sched", [
        call("later", "cli/kid", strategy="async", delay_ms=60000),
    ], outputs={"id": "{{tasks.later.result.run_id}}"}))
    kid = run_json("cli/sched", {})["output"]["id"]
    assert braid.show(kid)["status"] == "scheduled"
    r = braid("cancel", kid)
    assert r.returncode == 0, r.stderr
    shown = braid.show(kid)
    assert shown["status"] == "cancelled"
    assert_time_ok = parse_time(shown["finished_at"])
    assert assert_time_ok > 0

    out = braid.json("run", "cli/kid", "--mode", "async")
    rec = braid.json("cancel", out["run_id"])
    assert rec["id"] == out["run_id"] and rec["status"] == "cancelled"
    # Nothing is left to run.
    braid.publish(echo("cli/noop"))
    run_json("cli/noop", {}, "--drain")
    assert braid.show(kid)["status"] == "cancelled"
    assert braid.show(out["run_id"])["status"] == "cancelled"


def test_cancel_unknown_run(braid):
    braid.publish(echo("cli/x"))
    r = braid("cancel", "0190a000-0000-7000-8000-000000000000")
    assert r.returncode == 1
    assert "not_found" in r.stderr


def test_cancel_running_run_cascades_but_spares_detached(braid):
    braid.publish(echo("cli/kid"))
    braid.publish(integration("cli/boss", [
        call("a", "cli/kid", strategy="async", delay_ms=60000),
        call("b", "cli/kid", strategy="async", delay_ms=2500, detached=True),
        {"id": "w", "type": "await",
         "runs": ["{{tasks.a.result.run_id}}", "{{tasks.b.result.run_id}}"],
         "timeout_ms": 30000},
    ]))
    p = braid.popen("run", "cli/boss", "--drain", "--json")
    try:
        deadline = time.time() + 20
        kids = []
        while time.time() < deadline:
            kids = by_integration(braid.runs(), "cli/kid")
            if len(kids) == 2:
                break
            time.sleep(0.05)
        assert len(kids) == 2, "the children never appeared"
        boss = by_integration(braid.runs(), "cli/boss")[0]
        r = braid("cancel", boss["id"])
        assert r.returncode == 0, r.stderr
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 1, err
    rec = json.loads(out)
    assert rec["status"] == "cancelled"
    assert rec["error"]["code"] == "cancelled"
    by_task = {k["task"]: braid.show(k["id"]) for k in kids}
    assert by_task["a"]["status"] == "cancelled"
    assert by_task["b"]["status"] == "succeeded"  # detached: outlives the cancellation
    assert braid.show(boss["id"])["status"] == "cancelled"


def test_graph(braid):
    braid.publish(echo("g/leaf", triggers=[{"type": "api", "id": "ping"}]))
    braid.publish(echo("g/other", triggers=[{"type": "api", "id": "ping"}]))
    braid.publish(integration("g/root", [
        call("one", "g/leaf", strategy="sync"),
        call("many", "g/leaf", strategy="async", for_each=[1, 2], input={"v": "{{item}}"}),
        {"id": "bcast", "type": "call_integration", "trigger": "ping", "strategy": "async"},
        call("dyn", "{{vars.target}}", strategy="sync"),
    ]))
    r = braid("graph")
    assert r.returncode == 0
    lines = r.stdout.splitlines()
    assert any(l.startswith("g/root --one (sync") and l.endswith("--> g/leaf") for l in lines), \
        r.stdout
    assert any(l.startswith("g/root --many (async") and l.endswith("--> g/leaf")
               for l in lines)
    assert sum("--bcast (async" in l for l in lines) == 2

    r = braid("graph", "--dot")
    assert r.returncode == 0
    assert r.stdout.lstrip().startswith("digraph")
    assert '"g/root" -> "g/leaf"' in r.stdout
    assert r.stdout.rstrip().endswith("}")

    g = braid.json("graph")
    nodes = {n["name"]: n for n in g["nodes"]}
    assert set(nodes) == {"g/leaf", "g/other", "g/root"}
    assert nodes["g/leaf"]["version"] == 1
    assert nodes["g/leaf"]["triggers"] == ["ping"]
    edges = {(e["task"], e["to"]): e for e in g["edges"]}
    one = edges[("one", "g/leaf")]
    assert (one["from"], one["strategy"], one["for_each"]) == ("g/root", "sync", False)
    assert edges[("many", "g/leaf")]["for_each"] is True
    assert edges[("many", "g/leaf")]["strategy"] == "async"
    assert edges[("bcast", "g/leaf")]["trigger"] == "ping"
    assert edges[("bcast", "g/other")]["trigger"] == "ping"
    dyn = [e for e in g["edges"] if e["task"] == "dyn"]
    assert len(dyn) == 1 and dyn[0]["dynamic"] is True


def test_retain_days_flag_accepted(braid):
    braid.publish(echo("cli/ret"))
    rec = braid.run_json("cli/ret", {}, "--retain-days", "1", "--workers", "2")
    assert rec["status"] == "succeeded"
    assert len(braid.runs()) == 1


def test_drain_shows_a_progress_line_on_a_terminal(braid):
    """On a terminal, --drain rewrites one progress line in place; elsewhere it prints none."""
    import pty
    import select

    braid.publish(integration("p/leaf", [set_task("s", {"a": 1})]))
    braid.publish(integration("p/root", [
        call("later", "p/leaf", strategy="async", delay_ms=400),
    ]))
    master, slave = pty.openpty()
    proc = subprocess.Popen([BIN, "run", "p/root", "--drain", "--data", braid.data],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    seen = b""
    while True:
        ready, _, _ = select.select([master], [], [], 10)
        if not ready:
            break
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the other end closed: the process is done
            break
        if not chunk:
            break
        seen += chunk
    proc.wait(timeout=30)
    os.close(master)
    assert proc.returncode == 0
    text = seen.decode(errors="replace")
    assert "drain:" in text and "scheduled" in text and "\r" in text, text
    # Not on a terminal: no progress at all.
    r = braid("run", "p/root", "--drain")
    assert r.returncode == 0 and "drain:" not in r.stderr
