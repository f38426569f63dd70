"""Record kube-scheduler's ``ExtenderPreemptionArgs`` in both ``nodeCacheCapable`` modes:

    KUBEBUILDER_ASSETS=... \
        python -m tests.controlplane.record_preemption tests/fixtures/kube-scheduler

Two 4-GPU nodes full of low-priority pods (on gpu-a, 2 of its GPUs reserved in the ledger for
another pod instead), and a high-priority 3-GPU pod: kube-scheduler asks the extender (through
the recorder) to confirm its victims on both nodes. Writes ``<mode>-preempt-gpu-preemptor.json``.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

from kubernetes.client import CoreV1Api, RbacAuthorizationV1Api

from tests.controlplane.chart import extender_rbac, scheduler_config
from tests.controlplane.cluster import Assets, ControlPlane
from tests.controlplane.objects import apply_rbac, create_nodes, create_pods, delete_all, node, pod
from tests.controlplane.preemption import HIGH, LOW, create_priority_classes, gpu_pod, reserve
from tests.controlplane.recorder import Recorder

SCHEDULER = "placement-scheduler"


def record(plane: ControlPlane, core: CoreV1Api, node_cache: bool) -> dict[str, object]:
    create_nodes(core, [node("gpu-a", gpus=4), node("gpu-b", gpus=4)])
    (holder,) = create_pods(core, [pod("holder", scheduler="nobody", gpus=2)])
    reserve(core, "gpu-a", holder, gpus=2)
    extender = plane.extender()
    with Recorder(extender.url, {"preempt"}) as recorder:
        kubeconfig = str(plane.admin_kubeconfig)
        values = {"scheduler": {"nodeCacheCapable": node_cache}}
        config = scheduler_config(extender_url=recorder.url, kubeconfig=kubeconfig, values=values)
        scheduler = plane.scheduler(config, name=SCHEDULER)
        filler = [
            gpu_pod(f"low-{n}-{i}", scheduler=SCHEDULER, gpus=1, priority=LOW, node_name=n)
            for n, count in (("gpu-a", 2), ("gpu-b", 4))
            for i in range(count)
        ]  # fmt: skip
        create_pods(core, filler)
        create_pods(core, [gpu_pod("gpu-preemptor", scheduler=SCHEDULER, gpus=3, priority=HIGH)])
        call = recorder.wait_for("preempt", timeout=60)
        plane.stop_child(scheduler)
    plane.stop_child(extender.proc)
    delete_all(core)
    return call


def main(out: Path) -> None:
    assets = Assets.from_env()
    assert assets is not None, "set KUBEBUILDER_ASSETS"
    workdir = Path(tempfile.mkdtemp(prefix="record-preemption-"))
    plane = ControlPlane(assets, workdir).start()
    try:
        with plane.api_client() as client:
            core = CoreV1Api(client)
            apply_rbac(core, RbacAuthorizationV1Api(client), extender_rbac())
            create_priority_classes(core)
            for node_cache, mode in ((True, "nodecache"), (False, "fullnodes")):
                call = record(plane, core, node_cache)
                path = out / f"{mode}-preempt-gpu-preemptor.json"
                path.write_text(json.dumps(call, indent=2) + "\n")
                print(path)
    finally:
        plane.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
