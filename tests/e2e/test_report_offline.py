"""The exported HTML report opened from disk in headless Chromium with networking off: every chart draws
and no request leaves the file.

Builds the file the way a user does (`recsys generate`, an evaluation with off-policy estimates,
`recsys simulate --offline --json`, `recsys train`, `recsys report`); needs no streamlit server. Uses
Debian's chromium through Playwright, as tests/e2e/test_browser.py does (never a downloaded browser).
"""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from recsys.cli import app

pytestmark = pytest.mark.e2e

runner = CliRunner()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """report.html of a 100-member world: evaluation, estimated online value, A/B results, model manifest."""
    from recsys.data.loaders import load_dataset, world_of
    from recsys.evaluation.models import build_policies, online_specs
    from recsys.evaluation.off_policy import OffPolicyConfig, evaluate_off_policy
    from recsys.evaluation.protocol import temporal_folds
    from recsys.evaluation.report import attach_off_policy, evaluate, write_report

    root = tmp_path_factory.mktemp("offline-report")
    made = runner.invoke(app, ["generate", "--out", str(root / "world"), "--scale", "0.05", "--seed", "3"])
    assert made.exit_code == 0, made.output
    spec = f"parquet:{root / 'world'}"
    data, names = load_dataset(spec), ["random", "popularity", "oracle"]
    report = evaluate(data, build_policies(names, spec, "temporal", 0), temporal_folds(data, n_folds=2, test_days=14),
                      k=10, max_k=20, protocol={"name": "temporal", "folds": 2, "test_days": 14}, n_boot=100)
    off = evaluate_off_policy(data, online_specs(names, 0, True), world=world_of(spec),
                              config=OffPolicyConfig(bootstrap=100))
    write_report(attach_off_policy(report, off), root / "report.json")
    ab = runner.invoke(app, ["simulate", "--data", spec, "--control", "popularity", "--treatment", "random",
                             "--users", "100", "--days", "2", "--offline", "--json"])
    assert ab.exit_code == 0, ab.output
    (root / "ab.json").write_text(ab.stdout)
    assert runner.invoke(app, ["train", "--data", spec, "--ranker", "none", "--sources", "popularity",
                               "--out", str(root / "model")]).exit_code == 0
    out = root / "report.html"
    done = runner.invoke(app, ["report", "--report", str(root / "report.json"), "--ab", str(root / "ab.json"),
                               "--artifacts", str(root / "model"), "--out", str(out)])
    assert done.exit_code == 0, done.output
    return out


def test_every_chart_draws_from_disk_with_the_network_off(exported, browser):
    charts = exported.read_text(encoding="utf-8").count('class="plotly-graph-div"')
    assert charts >= 20
    requests, problems = [], []
    context = browser.new_context(offline=True, viewport={"width": 1400, "height": 900})
    try:
        context.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file:")
                      else route.abort())
        page = context.new_page()
        page.on("request", lambda request: requests.append(request.url))
        page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
        page.on("console", lambda message: problems.append(f"console {message.type}: {message.text}")
                if message.type in ("error", "warning") else None)
        page.goto(exported.as_uri())
        page.wait_for_function("() => { const divs = document.querySelectorAll('.plotly-graph-div');"
                               " return divs.length > 0 && [...divs].every(d => d.querySelector('.main-svg')); }",
                               timeout=60_000)
        drawn = page.evaluate("() => { const divs = [...document.querySelectorAll('.plotly-graph-div')];"
                              " return [divs.length, divs.filter(d => d.querySelector('.main-svg')).length,"
                              " divs.filter(d => d.querySelector('.main-svg').getBoundingClientRect().height > 300)"
                              ".length]; }")
        headings = page.locator("h2").all_inner_texts()
    finally:
        context.close()
    assert drawn == [charts, charts, charts]  # every div drew its svg, at its full height
    assert headings == ["Model", "Offline evaluation", "Estimated online impact (off-policy)", "A/B test (simulated)"]
    assert [u for u in requests if not u.startswith("file:")] == []
    assert requests == [exported.as_uri()]
    assert problems == []
