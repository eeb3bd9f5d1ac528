"""The harness's report: ratios, and generated blocks that leave hand-written sections alone."""

from bench.report import Figure, Result, replace_block

DOC = """# Benchmarks

Intro.

## Audit

Hand-written audit figures.

## Billing

Hand-written billing figures.
"""


def test_a_figure_is_shown_beside_its_baseline_as_a_ratio():
    result = Result(name="x", title="X", command="cmd")
    result.add("p50", 30.0, "ms", baseline=10.0, baseline_label="floor")
    result.add("queries", 4, "queries")
    assert result.figures[0].ratio == 3.0 and result.figures[1].ratio is None
    assert "3.00x" in result.table() and "| p50 | 30.0 ms | 10.0 ms (floor) | 3.00x |" in result.markdown_table()
    assert Result.from_dict(result.to_dict()).figures == result.figures
    assert Figure("f", 1, "s", baseline=0).ratio is None


def test_generated_blocks_go_before_the_audit_section_and_are_replaced_in_place(tmp_path):
    doc = tmp_path / "BENCHMARKS.md"
    doc.write_text(DOC)

    replace_block("run_all", "## Latest run\n\nfirst", doc=doc)
    replace_block("chaos", "## Chaos\n\nfirst", doc=doc)
    replace_block("run_all", "## Latest run\n\nsecond", doc=doc)

    text = doc.read_text()
    assert text.count("<!-- BEGIN generated:run_all -->") == 1 and "first\n<!-- END generated:run_all" not in text
    assert text.index("Intro.") < text.index("second") < text.index("## Chaos") < text.index("## Audit")
    assert "Hand-written audit figures." in text and text.rstrip().endswith("Hand-written billing figures.")
