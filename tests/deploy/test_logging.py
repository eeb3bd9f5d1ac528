"""Structured logs: request id and operation id on every line where known."""

import json
import logging

import pytest
from django.http import HttpResponse
from django.test import override_settings

from audit.middleware import RequestIDMiddleware
from controlplane.logging import ContextFilter, JsonFormatter, PlainFormatter, bind, context
from tests.deploy.conftest import wait_until


@pytest.fixture
def json_lines():
    """Log records of the ``probe`` logger, formatted by the JSON formatter."""
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record):
            lines.append(self.format(record))

    handler = Collect()
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ContextFilter())
    logger = logging.getLogger("probe")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in lines]
    logger.removeHandler(handler)


def test_json_lines_carry_the_bound_context_extras_and_exceptions(json_lines):
    log = logging.getLogger("probe")
    with bind(request_id="req-1"), bind(operation_id=42):
        log.info("claimed %s", "op", extra={"attempt": 2})
        try:
            raise RuntimeError("hypervisor said no")
        except RuntimeError:
            log.exception("failed")
    log.info("outside")

    claimed, failed, outside = json_lines()
    assert claimed["message"] == "claimed op" and claimed["level"] == "INFO" and claimed["logger"] == "probe"
    assert (claimed["request_id"], claimed["operation_id"], claimed["attempt"]) == ("req-1", 42, 2)
    assert claimed["ts"].endswith("+00:00")
    assert failed["operation_id"] == 42 and "RuntimeError: hypervisor said no" in failed["exc_info"]
    assert "request_id" not in outside and "operation_id" not in outside
    assert context() == {}


def test_bind_rejects_unknown_fields():
    with pytest.raises(TypeError, match="unknown log context field"), bind(operaton_id=1):
        pass


def test_plain_format_appends_the_context():
    record = logging.LogRecord("probe", logging.INFO, __file__, 1, "hello", None, None)
    with bind(operation_id=7):
        line = PlainFormatter().format(record)
    assert line.endswith("probe hello operation_id=7")


@override_settings(AUDIT_TRUSTED_PROXIES=["127.0.0.0/8"])
def test_the_request_id_comes_from_the_proxy_or_is_made_and_every_line_carries_it(rf, json_lines):
    def view(request):
        logging.getLogger("probe").info("inside the view")
        return HttpResponse("ok")

    middleware = RequestIDMiddleware(view)
    # Given nginx's request id (nginx on this machine, a trusted proxy): bound while the view runs, echoed back
    assert middleware(rf.get("/", HTTP_X_REQUEST_ID="0123abcd"))["X-Request-ID"] == "0123abcd"
    # Given a malformed one, or none, or one from an address that is no proxy: a fresh id replaces it
    bad = middleware(rf.get("/", HTTP_X_REQUEST_ID="evil\tvalue with spaces"))["X-Request-ID"]
    made = middleware(rf.get("/"))["X-Request-ID"]
    direct = middleware(rf.get("/", HTTP_X_REQUEST_ID="chosen", REMOTE_ADDR="203.0.113.9"))["X-Request-ID"]
    assert len(bad) == len(made) == len(direct) == 32 and len({bad, made, direct}) == 3
    assert [line["request_id"] for line in json_lines()] == ["0123abcd", bad, made, direct]
    assert context() == {}


@pytest.mark.django_db
@override_settings(AUDIT_TRUSTED_PROXIES=["127.0.0.0/8"])
def test_the_middleware_is_installed(client):
    assert client.get("/healthz", HTTP_X_REQUEST_ID="from-nginx")["X-Request-ID"] == "from-nginx"


def test_a_task_logs_json_with_the_request_id_it_was_sent_under_and_its_operation_id(deploy_worker, marker):
    from controlplane.celery import app

    # Given a worker logging JSON
    worker = deploy_worker(queues=f"deploy-log-{marker}", name=f"log-{marker}", LOG_FORMAT="json")
    # When a task is sent while a web request is being served, for operation 99
    with bind(request_id=f"req-{marker}"):
        result = app.send_task(
            "deploy_probe_log", args=[marker], kwargs={"operation_id": 99}, queue=f"deploy-log-{marker}"
        )
    # Then the task's line in the worker log is JSON carrying both ids and the task id
    wait_until(lambda: f"probe {marker} says hello" in worker.log_path.read_text(), 30, message="the probe line")
    lines = [json.loads(line) for line in worker.log_path.read_text().splitlines() if line.startswith("{")]
    probe = next(line for line in lines if line["message"] == f"probe {marker} says hello")
    assert probe["request_id"] == f"req-{marker}"
    assert probe["operation_id"] == 99
    assert probe["task_id"] == result.id
    assert all(set(line) >= {"ts", "level", "logger", "message"} for line in lines)


def test_an_operations_lines_in_the_worker_carry_its_operation_id_and_the_request_id(
    deploy_worker, marker, transactional_db, user, project, plan, image, tmp_path
):
    from compute.choices import OperationState
    from tests.deploy.conftest import request_vm, simulator_on_queue
    from tests.fixtures.compute import wait_operation

    # Given a worker logging JSON for a hypervisor's queue
    hv = simulator_on_queue(tmp_path, f"hv-log-{marker}", image)
    worker = deploy_worker(queues=hv.queue, name=f"oplog-{marker}", LOG_FORMAT="json")
    # When a web request asks for a VM (the create is published when its transaction commits)
    with bind(request_id=f"req-{marker}"):
        operation = request_vm(user=user, project=project, plan=plan, image=image, hypervisor=hv, name="vm-log")
    assert wait_operation(operation.pk, timeout=60).state == OperationState.SUCCEEDED

    # Then the engine's task lines (execute, then each poll) carry the operation id and
    # the execute task's lines the request id that started it all
    lines = [json.loads(line) for line in worker.log_path.read_text().splitlines() if line.startswith("{")]
    task_lines = [line for line in lines if line["logger"] == "celery.app.trace"]
    assert {line["message"].split("[")[0] for line in task_lines} >= {"Task execute_operation", "Task poll_operation"}
    assert all(line.get("operation_id") == operation.pk for line in task_lines), task_lines
    execute = next(line for line in task_lines if line["message"].startswith("Task execute_operation"))
    assert execute["request_id"] == f"req-{marker}"
