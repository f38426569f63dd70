"""``placement-extender simulate`` as a user meets it, ``POST /simulate``, and the plotting extra
kept out of the server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from app.api.server import Runtime, create_app
from app.cli import main
from app.simulate.plot import SHORTFALL_PNG, UTILISATION_PNG
from tests.builders import P, node, pod
from tests.conftest import ClientFactory

ROOT = Path(__file__).parent.parent
CLUSTER = str(ROOT / "examples" / "demo-cluster.yaml")
PENDING = str(ROOT / "examples" / "pending-pods.yaml")
KEYS = ["placed", "unplaced", "elapsed_ms", "placements", "shortfall", "unfittable"]
PNG = b"\x89PNG\r\n\x1a\n"


def simulate(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["simulate", "--snapshot", CLUSTER, "--pods", PENDING, *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_table_names_every_pod_the_reasons_and_what_to_add(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = simulate(capsys)
    assert code == 0
    assert out.startswith("100 pending pods against 23 nodes: ")
    assert "kube-scheduler adds its own plugins' scores" in out
    assert "default/worker-20" in out and "0/23 nodes are available:" in out
    assert "1 × like cpu-batch-1  (pool batch, GPU type -; for 4 pods)" in out
    assert "default/render-b200: 0/8 node shapes are available:" in out


def test_json_has_exactly_the_documented_keys(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = simulate(capsys, "--format", "json")
    document = json.loads(out)
    assert code == 0 and list(document) == KEYS
    assert document["placed"] + document["unplaced"] == len(document["placements"]) == 100
    assert all(set(p) == {"pod", "node", "score", "reasons"} for p in document["placements"])
    for item in document["shortfall"]:
        assert {"pool", "gpu_type", "pods", "add_nodes"} <= set(item)
        assert all(set(a) == {"like", "count"} for a in item["add_nodes"])
    assert [u["pod"] for u in document["unfittable"]] == [
        "default/train-a100-big", "default/render-b200", "default/reindex-huge"
    ]  # fmt: skip


def test_compare_runs_the_same_pods_under_a_second_config(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    binpack, spread = tmp_path / "binpack.yaml", tmp_path / "spread.yaml"
    binpack.write_text("scoring:\n  cpu_pods: {fit: binpack, weights: {affinity: 0}}\n")
    spread.write_text("scoring:\n  cpu_pods: {fit: spread, weights: {affinity: 0}}\n")
    configs = ("--config", str(binpack), "--compare", str(spread))
    code, out, _ = simulate(capsys, *configs, "--format", "json")
    document = json.loads(out)
    assert code == 0 and list(document) == ["base", "compare"]
    assert list(document["compare"]) == KEYS
    touched = [
        len({p["node"] for p in document[k]["placements"] if p["node"]})
        for k in ("base", "compare")
    ]
    assert touched[0] < touched[1]  # spreading touches more nodes than bin-packing
    code, out, _ = simulate(capsys, *configs)
    assert code == 0 and "nodes touched" in out and str(spread) in out


def test_plot_writes_both_charts(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = simulate(capsys, "--plot", str(tmp_path / "charts"))
    assert code == 0
    for name in (UTILISATION_PNG, SHORTFALL_PNG):
        chart = tmp_path / "charts" / name
        assert chart.read_bytes()[:8] == PNG and f"wrote {chart}" in err


def test_bad_input_is_one_line_naming_what_is_wrong(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bound = tmp_path / "bound.yaml"
    bound.write_text(json.dumps(pod("placed-already", node_name="cpu-general-1", cpu="1")))
    code = main(["simulate", "--snapshot", CLUSTER, "--pods", str(bound)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip().endswith("not pending: default/placed-already (on cpu-general-1)")
    bad = tmp_path / "bad.yaml"
    bad.write_text(json.dumps(pod("p", annotations={P + "preemptible": "maybe"})))
    code = main(["simulate", "--snapshot", CLUSTER, "--pods", str(bad)])
    err = capsys.readouterr().err
    assert code == 2 and "preemptible='maybe'" in err and len(err.strip().splitlines()) == 1
    code = main(["simulate", "--snapshot", CLUSTER, "--pods", str(tmp_path / "nope.yaml")])
    assert code == 2 and "cannot read pending pods" in capsys.readouterr().err


def test_the_server_and_cli_do_not_import_the_plotting_extra() -> None:
    probe = "import sys, app.cli, app.api.server, app.sources; print('matplotlib' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


NODES = [node("cpu-1", cpu="4"), node("cpu-2", cpu="4")]


async def test_post_simulate_answers_like_the_cli_and_writes_nothing(
    make_client: ClientFactory,
) -> None:
    client = make_client(NODES, [pod("running", node_name="cpu-1", cpu="3")])
    pods = {"kind": "PodList", "items": [pod(f"p{i}", cpu="2") for i in range(3)]}
    before = await client.post("/simulate", json=pods)
    again = await client.post("/simulate", json=pods)
    document = before.json()
    assert before.status_code == 200 and list(document) == KEYS
    assert [p["node"] for p in document["placements"]] == ["cpu-2", "cpu-2", None]
    assert document["placements"][2]["reasons"] == {"insufficient cpu (2 requested)": 2}
    assert document["shortfall"][0]["add_nodes"] == [{"like": "cpu-1", "count": 1}]
    # the live snapshot was not written: the same request gives the same answer
    assert again.json()["placements"] == document["placements"]


async def test_post_simulate_rejects_bad_input_with_400(make_client: ClientFactory) -> None:
    client = make_client(NODES)
    reply = await client.post("/simulate", content=b"{nope")
    assert reply.status_code == 400 and "not valid JSON" in reply.json()["Error"]
    bound = {"items": [pod("b", node_name="cpu-1", cpu="1")]}
    reply = await client.post("/simulate", json=bound)
    assert reply.status_code == 400 and "default/b (on cpu-1)" in reply.json()["Error"]
    bad = {"items": [pod("q", cpu="two")]}
    reply = await client.post("/simulate", json=bad)
    assert reply.status_code == 400 and "'two'" in reply.json()["Error"]


async def test_post_simulate_is_503_until_ready(not_ready_runtime: Runtime) -> None:
    transport = httpx.ASGITransport(app=create_app(not_ready_runtime))
    async with httpx.AsyncClient(transport=transport, base_url="http://extender") as client:
        reply = await client.post("/simulate", json={"items": [pod("p", cpu="1")]})
    assert reply.status_code == 503 and reply.json()["Error"]
