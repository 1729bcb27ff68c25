"""The example estate in examples/ keeps working (what `make demo` shows)."""
import os
import subprocess
import time

from conftest import BIN, REPO, by_integration, parse_time

EXAMPLES = os.path.join(REPO, "examples")
ORDER = ["pricing/line", "orders/validate", "warehouse/reserve", "crm/notify",
         "orders/follow-up", "orders/intake"]


def publish_examples(braid):
    r = braid("publish", *[os.path.join(EXAMPLES, n + ".json") for n in ORDER])
    assert r.returncode == 0, r.stderr
    for n in ORDER:
        assert f"published {n} version 1" in r.stdout


def test_order_intake(braid):
    publish_examples(braid)
    t0 = time.time()
    rec = braid.run_json("orders/intake", None, "--input",
                         "@" + os.path.join(EXAMPLES, "orders", "order.json"), "--drain")
    assert time.time() - t0 >= 1.9  # the follow-up is delayed by 2 s
    assert rec["status"] == "succeeded", rec["error"]
    out = rec["output"]
    assert out["order_id"] == "ord-1001"
    assert [l["amount"] for l in out["lines"]] == [25.0, 86.4, 49.9]
    assert [l["line_no"] for l in out["lines"]] == [1, 2, 3]
    assert abs(out["total"] - 161.3) < 1e-9
    assert sorted(a["integration"] for a in out["announced_to"]) == ["crm/notify",
                                                                     "warehouse/reserve"]
    assert out["follow_up"]["status"] == "scheduled"

    runs = braid.runs("--root", rec["id"])
    assert len(runs) == 1 + 1 + 3 + 2 + 1
    assert all(r["status"] == "succeeded" for r in runs)
    crm = by_integration(runs, "crm/notify")[0]
    assert crm["output"] == {"contact": "ada.lovelace@example.com",
                             "note": "order ord-1001: 161.3 EUR", "segment": "gold"}
    reserve = by_integration(runs, "warehouse/reserve")[0]
    assert reserve["output"] == {"reservation": "RES-ord-1001", "units": 3}
    follow = by_integration(runs, "orders/follow-up")[0]
    assert parse_time(follow["started_at"]) - parse_time(rec["created_at"]) >= 1.99
    assert follow["output"]["message"] == \
        "Hello Ada.Lovelace@example.com, how was order ord-1001?"


def test_bad_order_refused(braid):
    publish_examples(braid)
    r = braid("run", "orders/intake", "--input",
              "@" + os.path.join(EXAMPLES, "orders", "bad-order.json"))
    assert r.returncode == 1
    assert "error: invalid_order: order ord-1002 has no lines" in r.stderr
    rec = braid.runs("--integration", "orders/intake")[0]
    assert rec["error"]["detail"]["order_id"] == "ord-1002"
    assert rec["error"]["detail"]["reason"]["field"] == "lines"


def test_demo_script(tmp_path):
    env = dict(os.environ, BRAID_BIN=BIN, TMPDIR=str(tmp_path))
    r = subprocess.run(["bash", os.path.join(EXAMPLES, "demo.sh")], capture_output=True,
                       text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "├── " in r.stdout and "└── " in r.stdout
    assert "orders/intake --price (sync" in r.stdout
    assert "invalid_order" in r.stdout
    assert list(tmp_path.iterdir()) == []  # the demo's data directory is removed
