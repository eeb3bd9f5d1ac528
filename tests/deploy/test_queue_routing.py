"""A worker serves only its own queues: a hypervisor's tasks run on its worker."""

from compute.choices import OperationState
from tests.deploy.conftest import request_vm, simulator_on_queue, wait_until
from tests.fixtures.compute import wait_operation
from tests.fixtures.factories import HypervisorFactory


def test_each_task_runs_only_on_the_worker_of_its_queue(deploy_worker, broker, marker, transactional_db):
    from controlplane.celery import app

    # Given two hypervisors on two queues, each served by its own worker (as two units would)
    fra = HypervisorFactory(queue=f"hv-fra-{marker}")
    blr = HypervisorFactory(queue=f"hv-blr-{marker}")
    deploy_worker(queues=fra.queue, name=f"fra-{marker}")
    deploy_worker(queues=blr.queue, name=f"blr-{marker}")

    # When tasks are sent to each hypervisor's queue, interleaved
    sent = 6
    for _ in range(sent):
        for hypervisor in (fra, blr):
            app.send_task("deploy_probe_whoami", args=[marker], queue=hypervisor.queue)

    # Then every task ran, each on the worker serving its queue and no other
    key = f"deploy-probe:{marker}"
    wait_until(lambda: broker.llen(key) >= 2 * sent, 30, message="all probe tasks")
    ran = [entry.decode().split("|") for entry in broker.lrange(key, 0, -1)]
    assert len(ran) == 2 * sent
    assert sorted({(worker, queue) for worker, queue in ran}) == [
        (f"blr-{marker}@test", blr.queue),
        (f"fra-{marker}@test", fra.queue),
    ]
    assert sum(queue == fra.queue for _, queue in ran) == sent


def test_each_operation_runs_only_on_its_hypervisors_worker(
    deploy_worker, marker, transactional_db, user, project, plan, image, tmp_path
):
    # Given two hypervisors on two queues, each served by its own worker unit
    fra = simulator_on_queue(tmp_path, f"hv-fra-{marker}", image)
    blr = simulator_on_queue(tmp_path, f"hv-blr-{marker}", image)
    workers = {
        fra.pk: deploy_worker(queues=fra.queue, name=f"fra-{marker}", concurrency=2),
        blr.pk: deploy_worker(queues=blr.queue, name=f"blr-{marker}", concurrency=2),
    }

    # When VMs are requested on both, interleaved
    operations = [
        request_vm(user=user, project=project, plan=plan, image=image, hypervisor=hv, name=f"vm-{hv.name}-{i}")
        for i in range(3)
        for hv in (fra, blr)
    ]

    # Then every create succeeded, claimed by the worker of its own hypervisor's queue
    for operation in operations:
        done = wait_operation(operation.pk, timeout=60)
        assert done.state == OperationState.SUCCEEDED, done.error_message
        assert done.worker == f"{workers[done.hypervisor_id].name}@test", (done.hypervisor.queue, done.worker)
