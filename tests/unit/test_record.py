"""The lab record (state.json): typed, frozen, versioned; files of every earlier format still read.

fixtures/state/*.json were written by netlab before the record was typed: `current` in the
format of the last unversioned release, `first` in the first one (no pod ports, no policies;
a run still building). *.status.json is what `status --json` printed for them then.
"""
from __future__ import annotations

import json
from dataclasses import FrozenInstanceError, replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from netlab.cli import main
from netlab.kernel import netns
from netlab.kernel.procs import ProcRecord
from netlab.ops import state
from netlab.ops.record import VERSION, LabRecord, RecordError, SandboxRecord
from netlab.tools import render

FIXTURES = Path(__file__).parent / "fixtures" / "state"


@pytest.fixture(autouse=True)
def no_namespaces(tmp_path, monkeypatch):
    """`present` in status reads /run/netns: point it at an empty directory."""
    monkeypatch.setattr(netns, "NETNS_DIR", str(tmp_path / "netns"))


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


@pytest.mark.parametrize("name", ["current", "first"])
def test_status_json_of_an_unversioned_file_is_what_it_was(name):
    record = LabRecord.from_json(fixture(name))
    assert json.dumps(render.status_json(record), indent=2) + "\n" == (FIXTURES / f"{name}.status.json").read_text()


def test_a_file_of_the_last_unversioned_format_is_written_back_the_same_plus_its_version():
    raw = fixture("current")
    written = LabRecord.from_json(raw).to_json()
    assert written.pop("version") == VERSION == 1
    assert json.dumps(written, sort_keys=True) == json.dumps(raw, sort_keys=True)


def test_a_file_of_the_first_format_reads_with_empty_ports_and_policies():
    record = LabRecord.from_json(fixture("first"))
    assert record.status == "building" and record.pending == ("statefix.node-1", "statefix.node-2")
    assert record.policies == () and record.policy_digest is None
    assert all(pod.ports == () for pod in record.pods)
    assert record.pod("x/a").containers[0] == ProcRecord("x/a", "web", 999999999, 123, "/run/netlab/x/logs/a.web.log")
    written = record.to_json()
    assert written["version"] == 1 and written["policies"] == [] and written["pods"][0]["ports"] == []


def test_round_trip_and_fingerprints():
    record = LabRecord.from_json(fixture("current"))
    assert LabRecord.from_json(record.to_json()) == record
    assert record.fingerprints == {name: ns["fingerprint"] for name, ns in fixture("current")["namespaces"].items()}
    assert "pending" not in record.to_json()     # only a run not yet finished has it


def test_the_record_is_frozen_and_changes_by_replace():
    record = LabRecord.from_json(fixture("current"))
    with pytest.raises(FrozenInstanceError):
        record.status = "failed"
    with pytest.raises(TypeError):
        record.pods[0].labels["pod"] = "z"
    failed = replace(record, status="failed")
    assert failed.status == "failed" and record.status == "ready"
    assert record.with_policies((), "digest").policy_digest is None   # a digest only with policies
    moved = record.with_pods({"x/b": replace(record.pod("x/b"), node="node-1")})
    assert moved.pod("x/b").node == "node-1" and record.pod("x/b").node == "node-2"
    assert [p.key for p in moved.pods] == [p.key for p in record.pods]


def test_a_pod_sandbox_is_written_only_when_there_is_one():
    raw = fixture("current")
    assert all("sandbox" not in p for p in LabRecord.from_json(raw).to_json()["pods"])   # older shape kept
    raw["pods"][0]["sandbox"] = {"pid": 4242, "start": 77}
    record = LabRecord.from_json(raw)
    assert record.pod("x/a").sandbox == SandboxRecord(4242, 77) and record.pod("x/b").sandbox is None
    assert LabRecord.from_json(record.to_json()) == record
    assert record.to_json()["pods"][0]["sandbox"] == {"pid": 4242, "start": 77}
    for odd in ({"pid": "1", "start": 2}, {"pid": True, "start": 2}, {"pid": 0, "start": 2}, [1, 2], None):
        raw["pods"][0]["sandbox"] = odd   # of another shape: no recorded init (the kernel is asked anyway)
        assert LabRecord.from_json(raw).pod("x/a").sandbox is None


def test_the_rules_per_node_are_written_only_when_known_and_claimed_lab_wide_only_when_complete():
    raw = fixture("current")
    record = LabRecord.from_json(raw)
    assert record.policy_nodes == {} and "policyNodes" not in record.to_json()   # older shape kept
    partial = record.with_enforced(("x/new",), "lab-new", {"node-1": "n1-new", "node-2": "n2-old"}, complete=False)
    assert (partial.policies, partial.policy_digest) == (record.policies, record.policy_digest)   # not claimed
    assert partial.to_json()["policyNodes"] == {"node-1": "n1-new", "node-2": "n2-old"}
    assert LabRecord.from_json(partial.to_json()) == partial
    with pytest.raises(TypeError):
        partial.policy_nodes["node-2"] = "n2-new"
    done = partial.with_enforced(("x/new",), "lab-new", {"node-1": "n1-new", "node-2": "n2-new"}, complete=True)
    assert (done.policies, done.policy_digest) == (("x/new",), "lab-new")
    assert done.policy_nodes == {"node-1": "n1-new", "node-2": "n2-new"}
    none = done.with_enforced((), "lab-none", {"node-1": "a", "node-2": "b"}, complete=True)
    assert none.policies == () and none.policy_digest is None and "policyNodes" not in none.to_json()


def test_container_entries_of_another_shape_are_skipped():
    raw = fixture("current")
    raw["pods"][0]["containers"].append({"pid": 1})
    assert len(LabRecord.from_json(raw).pod("x/a").containers) == 2


def test_a_newer_or_broken_file_is_ignored_with_a_message(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NETLAB_RUN_DIR", str(tmp_path))
    with pytest.raises(RecordError, match="newer netlab"):
        LabRecord.from_json(dict(fixture("current"), version=VERSION + 1))
    for lab, text in [("newer", json.dumps(dict(fixture("current"), version=2))),
                      ("broken", json.dumps({"name": "broken"})), ("list", "[]")]:
        state.state_path(lab).parent.mkdir(parents=True)
        state.state_path(lab).write_text(text)
        assert state.load(lab) is None
        assert f"ignoring unreadable state {state.state_path(lab)}" in capsys.readouterr().err


def test_save_writes_version_1(tmp_path, monkeypatch):
    monkeypatch.setenv("NETLAB_RUN_DIR", str(tmp_path))
    record = LabRecord.from_json(fixture("first"))
    state.save("statefix", record)
    on_disk = json.loads(state.state_path("statefix").read_text())
    assert on_disk["version"] == 1 and state.load("statefix") == record


@pytest.mark.parametrize("name", ["current", "first"])
def test_status_command_on_an_old_state_file(name, tmp_path, monkeypatch):
    """`netlab status --json` over a state file written before the record had a version."""
    monkeypatch.setenv("NETLAB_RUN_DIR", str(tmp_path))
    (tmp_path / "statefix").mkdir()
    (tmp_path / "statefix" / "state.json").write_text((FIXTURES / f"{name}.json").read_text())
    result = CliRunner().invoke(main, ["status", "--name", "statefix", "--json"])
    assert result.exit_code == 0, result.output
    assert result.output == (FIXTURES / f"{name}.status.json").read_text()
    listed = CliRunner().invoke(main, ["status", "--json"])
    assert json.loads(listed.output) == {"labs": [json.loads(result.output)]}


def test_services_round_trip_and_show_the_contract_keys():
    from netlab.ops.record import EndpointRecord, ServicePortRecord, ServiceRecord
    web = ServiceRecord("web", "x", "NodePort", "172.18.1.37",
                        (ServicePortRecord("http", 80, "http", "TCP", 30080),),
                        (EndpointRecord("x/web-5d8f9c7b6d-abcde", "172.16.1.5", True, "node-2"),),
                        affinity_timeout=10800)
    kube = ServiceRecord("kubernetes", "default", "ClusterIP", "172.18.0.1", (ServicePortRecord("https", 443, 6443, "TCP"),),
                         note="no selector: no managed endpoints (the lab runs no API server)")
    record = replace(LabRecord.from_json(fixture("current")), services=(kube, web))
    written = record.to_json()
    assert LabRecord.from_json(json.loads(json.dumps(written))) == record
    assert "services" not in LabRecord.from_json(fixture("current")).to_json()   # none: the earlier shape
    shown = render.status_json(record)["services"][1]
    assert shown == {"clusterIP": "172.18.1.37", "endpoints": [{"ip": "172.16.1.5", "node": "node-2",
                                                                "pod": "x/web-5d8f9c7b6d-abcde", "ready": True}],
                     "name": "web", "namespace": "x",
                     "ports": [{"name": "http", "nodePort": 30080, "port": 80, "protocol": "TCP", "targetPort": "http"}],
                     "sessionAffinity": {"timeoutSeconds": 10800, "type": "ClientIP"}, "type": "NodePort"}
    assert list(shown) == sorted(shown)   # as the state file (sort_keys) showed them before the record was typed
