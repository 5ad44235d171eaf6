import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
import nimbuslab  # noqa: E402


def pytest_sessionstart(session):
    if os.geteuid() == 0:
        nimbuslab.sweep_stale()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture
def lab(request):
    if os.geteuid() != 0:
        pytest.skip("integration tests need root (network namespaces, DPDK)")
    if not os.path.exists(nimbuslab.NIMBUSD):
        pytest.fail(f"{nimbuslab.NIMBUSD} is not built")
    lb = nimbuslab.Lab(request.node.name)
    yield lb
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        print(f"\n===== logs of {request.node.name} =====\n{lb.logs()}")
    lb.cleanup()
