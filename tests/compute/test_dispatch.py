"""Publishing is fire and forget: no result is kept for the product's tasks (issue 25).

The test settings configure a Redis result backend (the suite reads ``ping`` results), so
without ``ignore_result`` every publish would subscribe this process to the task's result
channel (one more round trip each, and subscriptions nobody ends) and the worker would
store every return value.
"""

import base64
import json
import uuid

import pytest
import redis
from django.conf import settings

from compute import dispatch
from controlplane.celery import app


@pytest.fixture
def private_queue():
    queue = f"dispatch-{uuid.uuid4().hex[:8]}"
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    yield queue, broker
    broker.delete(queue)


def _messages(broker, queue):
    return [json.loads(raw) for raw in broker.lrange(queue, 0, -1)]


def test_an_operation_message_asks_for_no_result_and_subscribes_to_none(private_queue):
    queue, broker = private_queue
    assert app.conf.result_backend, "the test settings configure a result backend"
    consumer = app.backend.result_consumer
    subscribed_before = set(getattr(consumer, "subscribed_to", set()))

    # When the engine publishes one operation and a batch of two (outside a transaction)
    dispatch.publish_execute(operation_id=101, queue=queue, on_commit=False)
    dispatch.publish_execute_many(operations=[(102, queue), (103, queue)], on_commit=False)
    dispatch.publish_poll(operation_id=104, token="t", queue=queue, countdown=0)

    # Then each message tells the worker to keep no result
    messages = _messages(broker, queue)
    assert sorted(json.loads(base64.b64decode(m["body"]))[0][0] for m in messages) == [101, 102, 103, 104]
    assert [m["headers"]["ignore_result"] for m in messages] == [True] * 4
    # And this process subscribed to none of their result channels
    ids = {m["headers"]["id"] for m in messages}
    subscribed = set(getattr(consumer, "subscribed_to", set())) - subscribed_before
    assert not {key for key in subscribed if any(task_id in str(key) for task_id in ids)}
