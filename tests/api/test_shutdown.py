"""SIGTERM (SPEC §9 "Limits", issue 3 §5): stop accepting, let running runs finish within the
grace period, exit 0; scheduled runs stay in the store and run after the next start."""
import signal
import threading
import time

from apilib import call, integration, nop_doc, slow_doc


def test_sigterm_lets_a_sync_run_finish(make_server):
    srv = make_server(["--grace-ms", "20000"])
    srv.publish(nop_doc(), slow_doc())
    got = {}

    def client():
        got["r"] = srv.execute("t/slow", {"ms": 1500})

    t = threading.Thread(target=client)
    t.start()
    deadline = time.monotonic() + 10
    while not srv.runs(status="running", integration="t/slow"):
        assert time.monotonic() < deadline, "the slow run never started"
        time.sleep(0.05)
    srv.signal(signal.SIGTERM)
    time.sleep(0.3)
    # No longer accepting: a new connection is refused, or answered 503.
    try:
        r = srv.get("/healthz", token=None, fresh=True)
        assert r.status == 503, f"still accepting after SIGTERM: {r!r}"
    except (ConnectionRefusedError, ConnectionResetError, OSError):
        pass
    t.join(30)
    assert not t.is_alive()
    r = got["r"]
    assert r.status == 200, r
    assert r.json()["status"] == "succeeded" and r.json()["output"] == {"slept": 1500}
    assert srv.wait(30) == 0


def test_sigterm_keeps_scheduled_runs(make_server):
    srv = make_server()
    srv.publish(nop_doc("s/nop"),
                integration("s/later", [call("c", "s/nop", strategy="async", delay_ms=2500)]))
    rec = srv.execute("s/later", {}).json()
    child = srv.get("/runs?parent_id=" + rec["id"]).json()["runs"][0]
    assert child["status"] == "scheduled"
    srv.stop()
    srv.start()
    assert srv.run(child["id"])["status"] == "scheduled"
    done = srv.wait_run(child["id"], timeout=30)
    assert done["status"] == "succeeded" and done["attempt"] == 1
    assert len(srv.runs(integration="s/nop")) == 1


def test_sigterm_idle_server_exits_quickly(make_server):
    srv = make_server()
    srv.healthy()
    t0 = time.monotonic()
    srv.stop()
    assert time.monotonic() - t0 < 5
