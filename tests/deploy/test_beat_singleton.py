"""Two beat processes: periodic jobs are still sent once, and a standby takes over."""

import json
import signal
import time

import pytest

from tests.deploy.conftest import wait_until

SINGLETON = "controlplane.beat:SingletonScheduler"
PLAIN = "celery.beat:PersistentScheduler"


def _schedule(queue: str, every: float) -> str:
    return json.dumps({"beat-probe": {"task": "ping", "schedule": every, "options": {"queue": queue}}})


def _arrivals(broker, queue: str, seconds: float, enough: int | None = None) -> list[float]:
    """Monotonic times at which new messages appeared in ``queue`` during ``seconds``
    (or until ``enough`` have)."""
    times, seen = [], broker.llen(queue)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and (enough is None or len(times) < enough):
        now_seen = broker.llen(queue)
        times.extend([time.monotonic()] * (now_seen - seen))
        seen = now_seen
        time.sleep(0.02)
    return times


@pytest.fixture
def probe_queue(broker, marker):
    queue = f"deploy-beat-{marker}"
    yield queue
    broker.delete(queue)


@pytest.mark.parametrize(("scheduler", "expected_rate"), [(SINGLETON, 1), (PLAIN, 2)], ids=["singleton", "plain"])
def test_two_beats_send_a_periodic_job_at_the_rate_of_one(beat_factory, broker, probe_queue, scheduler, expected_rate):
    # Given two beat processes with a job every second (the plain scheduler is the
    # control: it shows this measurement sees a second beat when nothing guards)
    beats = [beat_factory(name=name, schedule=_schedule(probe_queue, 1.0), scheduler=scheduler) for name in "ab"]
    wait_until(lambda: all("beat: Starting" in b.log() for b in beats), 60, message="both beats started")
    wait_until(lambda: broker.llen(probe_queue) > 0, 30, message="a first periodic message")
    time.sleep(1.5)  # a second beat lags the first by its start-up time

    # When they run side by side for 6 seconds
    sent = _arrivals(broker, probe_queue, 6.0)

    # Then the job went out at the rate of one beat (two for the unguarded control)
    assert 5 * expected_rate <= len(sent) <= 7 * expected_rate, (len(sent), [b.log()[-2000:] for b in beats])
    if scheduler == SINGLETON:
        gaps = [b - a for a, b in zip(sent, sent[1:], strict=False)]
        assert min(gaps) > 0.7, gaps
        leaders = [b for b in beats if "took the scheduler lock" in b.log()]
        standbys = [b for b in beats if "standing by" in b.log()]
        assert len(leaders) == 1 and len(standbys) == 1, [b.log()[-1500:] for b in beats]
        assert broker.get(f"{leaders[0].env['BEAT_LOCK_KEY']}:leader").decode().endswith(f":{leaders[0].proc.pid}")


@pytest.mark.parametrize("how", ["killed", "stopped"])
def test_a_standby_beat_takes_over_on_schedule_when_the_leader_goes(beat_factory, broker, probe_queue, how):
    # Given a leader and a standby beat, a job every 4 s and a lock that lives 1.5 s
    every, ttl = 4.0, 1.5
    beats = [
        beat_factory(name=name, schedule=_schedule(probe_queue, every), BEAT_LOCK_TTL_SECONDS=str(ttl)) for name in "ab"
    ]
    wait_until(lambda: all("beat: Starting" in b.log() for b in beats), 60, message="both beats started")
    leader = wait_until(
        lambda: next((b for b in beats if "took the scheduler lock" in b.log()), None), 30, message="a leader"
    )
    standby = next(b for b in beats if b is not leader)

    # When the leader dies (SIGKILL: a lost host) or stops (SIGTERM: systemctl stop) right after a send
    sent = broker.llen(probe_queue)
    wait_until(lambda: broker.llen(probe_queue) > sent, 2 * every, interval=0.01, message="a send")
    last_send = time.monotonic()
    leader.signal(signal.SIGKILL if how == "killed" else signal.SIGTERM)
    resumed = _arrivals(broker, probe_queue, 2.5 * every, enough=2)

    # Then the standby sends the next run on the old leader's schedule: not sooner
    # (no double run), not an interval after taking over (no postponed run)
    assert "took the scheduler lock" in standby.log(), standby.log()[-2000:]
    assert resumed, "the standby never sent anything"
    gap = resumed[0] - last_send
    assert every - 0.3 <= gap <= every + 1.0, (gap, standby.log()[-2000:])
    assert all(b - a > every - 0.5 for a, b in zip(resumed, resumed[1:], strict=False)), resumed


def test_a_leader_that_lost_its_lock_steps_down_before_sending(settings, broker, probe_queue, tmp_path):
    from controlplane.beat import SingletonScheduler
    from controlplane.celery import app

    settings.BEAT_LOCK_KEY = f"deploy-test-beat:{probe_queue}"
    settings.BEAT_LOCK_TTL_SECONDS = 30
    original_schedule = app.conf.beat_schedule
    app.conf.beat_schedule = json.loads(_schedule(probe_queue, 0.2))
    scheduler = SingletonScheduler(app=app, schedule_filename=str(tmp_path / "schedule"))
    try:
        # Given a leader sending a job every 0.2 s
        scheduler.tick()
        assert scheduler.is_leader
        wait_until(lambda: scheduler.tick() is not None and broker.llen(probe_queue) >= 2, 10, message="sends")

        # When its lock is taken from it (it was paused past the TTL and a standby took over)
        broker.set(f"{settings.BEAT_LOCK_KEY}:leader", "other-host:1")
        sent = broker.llen(probe_queue)
        time.sleep(0.5)

        # Then its next tick steps down and it sends nothing more while the other holds the lock
        assert scheduler.tick() == scheduler.check_interval
        assert not scheduler.is_leader
        for _ in range(5):
            scheduler.tick()
            time.sleep(0.1)
        assert broker.llen(probe_queue) == sent
        assert broker.get(f"{settings.BEAT_LOCK_KEY}:leader") == b"other-host:1"

        # And it leads again once the lock is free
        broker.delete(f"{settings.BEAT_LOCK_KEY}:leader")
        scheduler.tick()
        assert scheduler.is_leader
    finally:
        scheduler.close()
        app.conf.beat_schedule = original_schedule
        broker.delete(f"{settings.BEAT_LOCK_KEY}:leader", f"{settings.BEAT_LOCK_KEY}:last-run")
