"""manage.py audit_export: JSON lines and CSV, filtered, re-verifiable."""

import csv
import io
import json

import pytest
from django.core.management import CommandError, call_command

import audit
from audit import chain


@pytest.fixture
def events(team, other_project_events):
    return [
        audit.record(actor=team.owner, action=action, project=team.project, details={"amount": "10.00"})
        for action in ("wallet.topup", "wallet.debited", "invoice.issued")
    ]


@pytest.fixture
def other_project_events(db, append_events):
    return append_events(2)


def _run(*args) -> str:
    out = io.StringIO()
    call_command("audit_export", *args, stdout=out)
    return out.getvalue()


def test_a_full_json_lines_export_is_the_whole_chain(events):
    lines = [json.loads(line) for line in _run("--format", "jsonl").splitlines()]
    assert chain.walk(lines, start_hash=chain.GENESIS).ok
    assert lines[-1]["hash"] == events[-1].hash


def test_csv_export_for_one_project(events, team):
    rows = list(csv.DictReader(io.StringIO(_run("--format", "csv", "--project", team.project.slug))))
    assert [row["action"] for row in rows] == ["project.created", "wallet.topup", "wallet.debited", "invoice.issued"]


def test_filters_by_action_prefix_and_time(events, tmp_path):
    target = tmp_path / "out.jsonl"
    call_command("audit_export", "--action", "wallet.", "--since", "2000-01-01", "--output", str(target))
    assert [json.loads(line)["action"] for line in target.read_text().splitlines()] == [
        "wallet.topup",
        "wallet.debited",
    ]
    assert _run("--until", "2000-01-01") == ""


def test_an_unknown_project_is_an_error(db):
    with pytest.raises(CommandError, match="No project"):
        _run("--project", "nope")
