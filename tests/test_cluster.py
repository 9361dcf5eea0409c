"""The cluster tests: ``tests/cluster/scenarios.py`` in a network namespace of its own.

Ray binds a node to the machine's own network interface whenever there is one, whatever
``--node-ip-address`` says, and tests may talk over loopback only. So the scenarios (PostgreSQL,
a Ray head and one more worker node, the app, and the test process that talks to them) run in
one pytest process inside ``unshare -n``, whose only interface is loopback; everything started
there is stopped at the end. This test starts it and checks that every scenario ran and passed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from tests.conftest import ROOT

SCENARIOS = [
    "test_the_app_trains_a_queued_run_on_the_cluster",
    "test_three_runs_submitted_at_once_all_finish_each_with_the_node_that_ran_it",
    "test_scoring_and_an_explanation_run_on_the_cluster",
    "test_stop_on_the_page_stops_a_run_on_the_cluster",
    "test_a_run_deleted_while_it_trains_on_the_cluster_leaves_nothing",
    "test_the_cli_fits_through_the_cluster_with_the_scores_of_one_machine",
    "test_nothing_leaves_the_cluster",
    "test_a_node_that_cannot_see_the_data_folder_takes_no_jobs",
    "test_the_worker_node_lost_mid_run_fails_the_run_with_the_node_and_the_reason",
]


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"),
                    reason="a network namespace of its own needs root (CI runs as root)")
@pytest.mark.cluster
def test_the_cluster_scenarios_pass_on_a_loopback_only_network(tmp_path):
    report = tmp_path / "scenarios.xml"
    inner = (f"ip link set lo up && exec {sys.executable} -m pytest tests/cluster/scenarios.py -p no:cacheprovider "
             f"-p no:xdist -q -x --junitxml={report}")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DLCORE_", "RAY_", "PYTEST_XDIST"))}
    done = subprocess.run(["unshare", "-n", "sh", "-c", inner], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    cases = {case.get("name"): case for case in ET.parse(report).getroot().iter("testcase")}
    assert list(cases) == SCENARIOS
    for name, case in cases.items():
        assert not list(case), f"{name}: {[child.tag for child in case]}"  # no failure, error or skip
