"""The HTML report: a real evaluation (with off-policy estimates) and a real `recsys simulate --offline --json`
rendered into one self-contained file; every chart, table and string from the data where it belongs."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from plotly.offline import get_plotlyjs
from typer.testing import CliRunner

from recsys.cli import app
from recsys.data import DataError
from recsys.ui.report_html import (
    ABResults, chart_count, check_evaluation, read_ab, read_evaluation, read_manifest, render_html, write_html,
)

runner = CliRunner()
MODELS = ["random", "popularity", "oracle"]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A 100-member world; its evaluation report with off-policy estimates; an A/B test of popularity
    against random with the offline and off-policy comparison, as `recsys simulate --json` prints it."""
    from recsys.data.loaders import load_dataset, world_of
    from recsys.evaluation.models import build_policies, online_specs
    from recsys.evaluation.off_policy import OffPolicyConfig, evaluate_off_policy
    from recsys.evaluation.protocol import temporal_folds
    from recsys.evaluation.report import attach_off_policy, evaluate, write_report

    root = tmp_path_factory.mktemp("html-report")
    world_dir = root / "world"
    assert runner.invoke(app, ["generate", "--out", str(world_dir), "--scale", "0.05", "--seed", "3"]).exit_code == 0
    spec = f"parquet:{world_dir}"
    data = load_dataset(spec)
    report = evaluate(data, build_policies(MODELS, spec, "temporal", 0), temporal_folds(data, n_folds=2, test_days=14),
                      k=10, max_k=20, protocol={"name": "temporal", "folds": 2, "test_days": 14}, n_boot=100)
    off = evaluate_off_policy(data, online_specs(MODELS, 0, True), world=world_of(spec),
                              config=OffPolicyConfig(bootstrap=100))
    report_path = write_report(attach_off_policy(report, off), root / "report.json")
    done = runner.invoke(app, ["simulate", "--data", spec, "--control", "popularity", "--treatment", "random",
                               "--users", "100", "--days", "2", "--offline", "--json"])
    assert done.exit_code == 0, done.output
    ab_path = root / "ab.json"
    ab_path.write_text(done.stdout)
    return {"root": root, "spec": spec, "report_path": report_path, "ab_path": ab_path,
            "report": read_evaluation(report_path), "ab": read_ab(ab_path)}


MANIFEST = {"format": "recsys.recommender", "version": 2, "config": {"ranker": "logistic", "sources": ["ease"]},
            "data": {"name": "world", "fingerprint": None, "end": "2025-12-31 23:17:18"},
            "training": {"rows": 1234, "rows_from": "impressions"}, "fit_seconds": {"ranker": 1.5},
            "files": {"data/events.parquet": {"sha256": "ab", "size": 1}}}


def _manifest_for(report, **data):
    return {**MANIFEST, "data": {**MANIFEST["data"], "fingerprint": report["dataset"]["fingerprint"], **data}}


def test_every_section_and_chart_is_in_the_file(inputs):
    report, ab = inputs["report"], inputs["ab"]
    doc = render_html(report, _manifest_for(report), ab, generated="2026-01-02 03:04 UTC")
    segments = {s for m in report["models"].values() for s in m["segments"]}
    # comparison (NDCG, recall) + 4 curves + per fold + segments; off-policy: minutes, engagement, NDCG vs minutes;
    # A/B: lifts, 2 arms, 2 daily, offline vs online, 2 estimated vs simulated
    expected = 2 + 4 + 1 + len(segments) + 3 + 5 + 1 + 2
    assert len(segments) >= 2 and chart_count(doc) == expected
    for n in range(1, expected + 1):  # every div is drawn by its own call
        assert f'id="chart-{n}"' in doc and re.search(rf'Plotly\.newPlot\(\s*"chart-{n}"', doc)
    for title in ("ndcg@k", "recall@k", "precision@k", "map@k", "ndcg per fold", "ndcg by activity",
                  "Estimated minutes per session (95% interval)", "Lift over the control", "Daily engagement rate",
                  "Offline NDCG@10 vs online engagement rate", "Estimated from the logs (ips) vs simulated"):
        assert title in doc, title
    assert report["dataset"]["fingerprint"] in doc and "Generated 2026-01-02 03:04 UTC" in doc
    assert "<h3>Configuration</h3>" in doc and "logistic" in doc and "impressions" in doc
    assert "1 file checksummed" in doc and "data/events.parquet" not in doc
    # the evaluation: every model with its NDCG interval, the paired tests with their p-values
    for name in MODELS:
        nd = report["models"][name]["metrics"]["ndcg"]
        assert f"{nd['estimate']:.4f} [{nd['low']:.4f}, {nd['high']:.4f}]" in doc
    for c in report["comparisons"]:
        assert f"{c['diff']:.4f} [{c['low']:.4f}, {c['high']:.4f}]" in doc and f"{c['p_value']:.4f}" in doc
    # the estimated online value beside each model
    section = doc[doc.index("Estimated online impact"):doc.index("A/B test (simulated)")]
    for name in MODELS:
        e = report["models"][name]["off_policy"]["minutes_per_session"]
        assert f"{e['estimate']:.4f} [{e['low']:.4f}, {e['high']:.4f}]" in section
    # the A/B test: the sample-ratio verdict, each lift with its interval and p-value
    a = doc[doc.index("A/B test (simulated)"):]
    assert ("Sample ratio check passed" in a) != ("Sample ratio mismatch" in a)
    for r in ab.comparisons.itertuples():
        assert f"{r.lift:+.1%} [{r.lift_low:+.1%}, {r.lift_high:+.1%}]" in a and f"{r.p_value:.4f}" in a
    assert "Offline versus online" in a and "Kendall" in a


def test_plotly_is_inlined_once_and_nothing_points_at_a_network(inputs):
    doc = render_html(inputs["report"], None, inputs["ab"])
    library = get_plotlyjs()
    assert doc.count(library) == 1 and doc.count(library[:2000]) == 1
    page = doc.replace(library, "")  # the library's own text names its website (the modebar logo's link)
    assert page.count("<script") == chart_count(doc) + 1  # the library, then one call per chart
    assert not re.search(r"<script[^>]*\bsrc=", page, re.I)
    assert not re.search(r"<link\b", page, re.I) and "@import" not in page
    assert not re.search(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", page, re.I)
    assert "default-src 'none'" in page and "<style>" in page


def test_strings_from_the_data_are_escaped(inputs):
    evil = '<script>alert("popularity")</script> & <b>co</b>'
    report = check_evaluation(json.loads(json.dumps(inputs["report"]).replace('"popularity"', json.dumps(evil))))
    manifest = _manifest_for(report, name='<img src=x onerror="alert(1)">')
    doc = render_html(report, manifest, inputs["ab"], title="Q4 <review> & friends")
    assert evil not in doc and "<script>alert" not in doc and "<img src=x" not in doc
    assert "&lt;script&gt;alert(&quot;popularity&quot;)&lt;/script&gt; &amp; &lt;b&gt;co&lt;/b&gt;" in doc
    assert "<title>Q4 &lt;review&gt; &amp; friends</title>" in doc
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in doc
    # inside the charts' JSON the name is escaped too (plotly writes < and / as \u003c, \u002f)
    assert "\\u003cscript\\u003ealert" in doc


def test_a_model_trained_on_other_data_is_flagged(inputs):
    report = inputs["report"]
    assert "not the evaluated data" not in render_html(report, _manifest_for(report))
    other = render_html(report, _manifest_for(report, fingerprint="0123456789abcdef", trained_on="0123456789abcdef"))
    assert "not the evaluated data" in other and "0123456789abcdef" in other
    assert "No model manifest was given" in render_html(report, None)
    assert "No A/B results were included" in render_html(report, None)


def test_the_ab_page_outcome_renders_like_the_simulate_json(inputs):
    """The A/B page's outcome (recsys.ui.experiments) and `recsys simulate --json` of the same experiment give
    the same A/B tables: one renderer, two sources."""
    from recsys.ui.experiments import run_ab_test

    outcome = run_ab_test(inputs["spec"], ["popularity", "random"], 100, 2.0, 0, 60, None, False,
                          lambda message, fraction: None)
    from_page = ABResults.from_outcome(outcome)
    report = inputs["report"]

    def tables(ab):
        doc = render_html(report, None, ab)
        section = doc[doc.index("<h2>A/B test (simulated)"):]
        return re.sub(r", simulated in [0-9.]+ s", "", section[:section.index('<div class="charts">')])

    assert from_page.offline is None and from_page.off_policy is None
    assert tables(from_page) == tables(inputs["ab"])
    assert chart_count(render_html(report, None, from_page)) == chart_count(render_html(report)) + 5


def test_reading_bad_input_names_the_file(tmp_path, inputs):
    with pytest.raises(DataError, match="no such evaluation report file") as err:
        read_evaluation(tmp_path / "missing.json")
    assert "missing.json" in str(err.value)
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(DataError, match="broken.json.*not JSON"):
        read_evaluation(broken)
    listed = tmp_path / "list.json"
    listed.write_text("[1, 2]")
    with pytest.raises(DataError, match="list.json.*the JSON is a list"):
        read_evaluation(listed)
    with pytest.raises(DataError, match="ab.json.*no 'models'"):
        read_evaluation(inputs["ab_path"])
    with pytest.raises(DataError, match="report.json.*not A/B results"):
        read_ab(inputs["report_path"])
    bad = json.loads(inputs["report_path"].read_text())
    bad["models"]["random"]["curves"] = {"ndcg": "high"}
    with pytest.raises(DataError, match="model 'random': 'curves'"):
        check_evaluation(bad, "r.json")
    with pytest.raises(DataError, match="no such model manifest file"):
        read_manifest(tmp_path)


def test_the_file_is_written_atomically(tmp_path, inputs):
    doc = render_html(inputs["report"])
    out = write_html(doc, tmp_path / "deep" / "report.html")
    assert out.read_text(encoding="utf-8") == doc
    assert [p.name for p in out.parent.iterdir()] == ["report.html"]  # no temporary file left behind


def test_the_report_module_and_command_do_not_import_streamlit(tmp_path, inputs):
    out = tmp_path / "r.html"
    code = (
        "import sys\n"
        "import recsys.ui.report_html, recsys.ui.charts, recsys.ui.curve_charts\n"
        "from typer.testing import CliRunner\n"
        "from recsys.cli import app\n"
        f"r = CliRunner().invoke(app, ['report', '--report', {str(inputs['report_path'])!r}, '--ab', "
        f"{str(inputs['ab_path'])!r}, '--out', {str(out)!r}])\n"
        "assert r.exit_code == 0, r.output\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'streamlit'))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
    assert chart_count(out.read_text(encoding="utf-8")) > 10


def test_recsys_ui_names_still_import():
    from recsys.ui import dataset_summary, load_cached_dataset, load_report, onboarding_model, trained_recommender
    from recsys.ui import training_table

    assert all(callable(f) for f in (dataset_summary, load_cached_dataset, load_report, onboarding_model,
                                     trained_recommender, training_table))
    with pytest.raises(ImportError, match="no_such_thing"):
        from recsys.ui import no_such_thing  # noqa: F401
