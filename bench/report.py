"""Figures beside their baselines, machine facts, and the generated parts of docs/BENCHMARKS.md.

A benchmark builds a :class:`Result` of :class:`Figure` rows (each with the
baseline measured in the same run), prints it, and with ``--json PATH`` writes
it for ``bench/run_all.py``. Generated text goes into docs/BENCHMARKS.md
between ``<!-- BEGIN generated:NAME -->`` and ``<!-- END generated:NAME -->``
markers; everything outside the markers is left as it is.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "BENCHMARKS.md"


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank) of a non-empty list."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


@dataclass
class Figure:
    """One measured value and the baseline it is compared with (same run, same machine)."""

    label: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_label: str = ""
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.baseline in (None, 0):
            return None
        return self.value / self.baseline

    def row(self) -> list[str]:
        ratio = "" if self.ratio is None else f"{self.ratio:.2f}x"
        baseline = "" if self.baseline is None else f"{_num(self.baseline)} {self.unit}"
        label = f"{self.label} ({self.note})" if self.note else self.label
        return [label, f"{_num(self.value)} {self.unit}", baseline, self.baseline_label, ratio]


def _num(value: float) -> str:
    if isinstance(value, int) or float(value).is_integer() and abs(value) >= 100:
        return f"{int(value):,}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}" if abs(value) >= 0.1 else f"{value:.3g}"


@dataclass
class Result:
    name: str
    title: str
    command: str
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    ok: bool = True

    def add(self, *args, **kwargs) -> Figure:
        figure = Figure(*args, **kwargs)
        self.figures.append(figure)
        return figure

    def table(self) -> str:
        rows = [["figure", "value", "baseline", "baseline is", "ratio"], *(f.row() for f in self.figures)]
        widths = [max(len(row[i]) for row in rows) for i in range(5)]
        lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]
        return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])

    def markdown_table(self) -> str:
        rows = [["figure", "value", "baseline (same run)", "ratio"]]
        for f in self.figures:
            cells = f.row()
            baseline = f"{cells[2]} ({cells[3]})" if cells[2] else ""
            rows.append([cells[0], cells[1], baseline, cells[4]])
        out = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
        out += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows[1:]]
        return "\n".join(out)

    def print(self) -> None:
        print(f"\n== {self.title}\n{self.table()}")
        for note in self.notes:
            print(f"   {note}")

    def to_dict(self) -> dict:
        data = asdict(self)
        for figure, source in zip(data["figures"], self.figures, strict=True):
            figure["ratio"] = source.ratio
        return data

    @classmethod
    def from_dict(cls, data: dict) -> Result:
        figures = [Figure(**{k: v for k, v in f.items() if k != "ratio"}) for f in data.get("figures", [])]
        return cls(**{**data, "figures": figures})

    def write_json(self, path: str | Path | None) -> None:
        if path:
            Path(path).write_text(json.dumps(self.to_dict(), indent=2))


def machine_facts() -> dict:
    """What the figures depend on: cores, CPU, memory, load, versions, commit, date."""
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split("\n", 1)[0].split()[1])
        memory = f"{kib / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": os.cpu_count(),
        "cpu": cpu,
        "memory": memory,
        "load_average": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "commit": commit.stdout.strip(),
    }


def facts_line(facts: dict) -> str:
    parts = [
        facts.get("date", ""),
        f"{facts.get('cores')} cores ({facts.get('cpu') or 'unknown CPU'})",
        facts.get("memory", ""),
        f"load average {facts.get('load_average')} at start",
    ]
    if facts.get("load_average_end"):
        parts.append(f"{facts['load_average_end']} at end")
    parts += [f"Python {facts.get('python')}", facts.get("postgres", ""), facts.get("redis", "")]
    if facts.get("commit"):
        parts.append(f"commit {facts['commit']}")
    return "; ".join(p for p in parts if p)


def replace_block(name: str, body: str, *, before: str | None = "## Audit", doc: Path = DOC) -> None:
    """Put ``body`` between this block's markers, creating the block when missing
    (placed before the heading ``before`` if present, else at the end)."""
    begin, end = f"<!-- BEGIN generated:{name} -->", f"<!-- END generated:{name} -->"
    block = f"{begin}\n{body.rstrip()}\n{end}"
    text = doc.read_text() if doc.exists() else "# Benchmarks\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + block + rest.split(end, 1)[1]
    elif before and f"\n{before}" in text:
        head, rest = text.split(f"\n{before}", 1)
        text = f"{head.rstrip()}\n\n{block}\n\n{before}{rest}"
    else:
        text = f"{text.rstrip()}\n\n{block}\n"
    doc.write_text(text)


def command_line() -> str:
    """How this run was started, without the harness's plumbing (--json PATH, --write-docs)."""
    args, rest = [], iter(sys.argv[1:])
    for arg in rest:
        if arg == "--json":
            next(rest, None)
        elif arg != "--write-docs":
            args.append(arg)
    return ".venv/bin/python " + " ".join([Path(sys.argv[0]).resolve().relative_to(ROOT).as_posix(), *args])
