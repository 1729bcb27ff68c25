"""JSONTestSuite (../shared/testdata/JSONTestSuite/test_parsing): every n_ file refused with a
clear message and no crash, both as a run's input and as a definition; every y_ file accepted
as a run's input."""
import os

import pytest

from conftest import JSON_TEST_SUITE, integration, set_task


def suite_files(prefix):
    if not os.path.isdir(JSON_TEST_SUITE):
        pytest.fail(f"JSONTestSuite not found at {JSON_TEST_SUITE}", pytrace=False)
    files = sorted(f for f in os.listdir(JSON_TEST_SUITE)
                   if f.startswith(prefix) and f.endswith(".json"))
    assert files, f"no {prefix}*.json files in {JSON_TEST_SUITE}"
    return [os.path.join(JSON_TEST_SUITE, f) for f in files]


def open_integration(braid):
    braid.publish(integration("jts/open", [set_task("s", {"seen": True})],
                              outputs={"seen": "{{vars.seen}}"}))


def refused(r):
    """Exit 1 or 2 (not a signal, not success) with a message on stderr."""
    return r.returncode in (1, 2) and r.stderr.strip() != ""


def test_n_files_refused_as_input(braid):
    open_integration(braid)
    bad = []
    for path in suite_files("n_"):
        r = braid("run", "jts/open", "--input", "@" + path, timeout=30)
        if not refused(r):
            bad.append(f"{os.path.basename(path)}: exit {r.returncode}, stderr {r.stderr[:200]!r}")
    assert not bad, "\n".join(bad)
    # Nothing was run.
    assert braid.runs() == []


def test_n_files_refused_as_definitions(braid):
    bad = []
    for path in suite_files("n_"):
        r = braid("validate", path, timeout=30)
        if not refused(r):
            bad.append(f"{os.path.basename(path)}: exit {r.returncode}, stderr {r.stderr[:200]!r}")
    assert not bad, "\n".join(bad)


def test_n_files_refused_by_publish(braid):
    bad = []
    for path in suite_files("n_")[::4]:  # a sample: publish shares validate's parser
        r = braid("publish", path, timeout=30)
        if not refused(r):
            bad.append(f"{os.path.basename(path)}: exit {r.returncode}, stderr {r.stderr[:200]!r}")
    assert not bad, "\n".join(bad)


def test_y_files_accepted_as_input(braid):
    open_integration(braid)
    bad = []
    for path in suite_files("y_"):
        r = braid("run", "jts/open", "--input", "@" + path, timeout=30)
        if r.returncode != 0:
            bad.append(f"{os.path.basename(path)}: exit {r.returncode}, stderr {r.stderr[:200]!r}")
    assert not bad, "\n".join(bad)
