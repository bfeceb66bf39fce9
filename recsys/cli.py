"""The `recsys` command line: generate the sample world, inspect datasets, train, recommend, evaluate,
simulate A/B tests and export a report.

Every command takes `--data SPEC` where it reads data, prints progress on long work to stderr,
and `--json` for machine-readable output on stdout. Bad input exits with status 2 and a message,
never a traceback.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Optional

import typer

from .data.errors import DataError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="recsys: a two-stage recommender for a streaming service.")

DATA_HELP = "sample | movielens:PATH | csv:PATH | parquet:PATH"


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


def _load(spec: str):
    """The dataset for `spec`, or exit 2 with the loader's message."""
    from .data.loaders import load_dataset

    try:
        return load_dataset(spec)
    except DataError as err:
        _fail(str(err))


def _say(message: str, fraction: float) -> None:
    """Progress of a long command, on stderr (stdout stays for --json)."""
    typer.echo(f"[{fraction:4.0%}] {message}", err=True)


def _parquet_folder(spec: str) -> Path | None:
    """The folder a `sample` or `parquet:PATH` spec names (Spark's executors can read it), else None."""
    from .data.loaders import sample_data_dir

    if spec == "sample":
        return sample_data_dir()
    if spec.startswith("parquet:"):
        return Path(spec.split(":", 1)[1]).expanduser()
    return None


def _engine_options(engine: str, spark_master: str | None, partitions: int | None) -> str:
    """The Spark master to use, after refusing an unknown engine, fewer than one partition, and Spark options
    given with --engine local (where they would be silently ignored)."""
    if engine not in ("local", "spark"):
        _fail(f"--engine must be local or spark, got {engine!r}")
    if partitions is not None and partitions < 1:
        _fail("--partitions must be at least 1")
    given = [name for name, value in (("--spark-master", spark_master), ("--partitions", partitions))
             if value is not None]
    if engine == "local" and given:
        both = len(given) > 1
        _fail(f"{' and '.join(given)} {'apply' if both else 'applies'} to --engine spark only; add --engine spark, "
              f"or leave {'them' if both else 'it'} out to run in this process")
    return spark_master or "local[*]"


def _spark_source(spark, spec: str, partitions: int | None):
    """The events of a `sample` or `parquet:` spec read by Spark's executors (`read_source`), with the load
    report said as progress; None for other specs (the driver loads those and hands them over)."""
    from .spark.source import read_source

    folder = _parquet_folder(spec)
    if folder is None:
        return None
    _say(f"reading {spec} on the executors (checked partition by partition)", 0.0)
    source = read_source(spark, folder, name="sample" if spec == "sample" else None, partitions=partitions)
    for reason, count in source.report.dropped.items():
        _say(f"dropped {count:,} {reason}", 0.0)
    for note in source.report.notes:
        _say(note, 0.0)
    return source


def _emit_json(payload: Any) -> None:
    typer.echo(json.dumps(payload, indent=2, default=str))


@app.command()
def generate(
    out: Path = typer.Option(Path("sample_data"), help="Folder to write the Parquet files into."),
    seed: int = typer.Option(7, help="Seed of the world; the same seed gives identical files."),
    scale: float = typer.Option(1.0, help="Members (and so events) as a multiple of the default world."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary."),
) -> None:
    """Simulate the default streaming world and write it as the sample dataset."""
    from tqdm import tqdm

    from .data.loaders import save_dataset
    from .data.synthetic import WorldConfig, generate_sample, write_world_manifest

    if scale <= 0:
        _fail("--scale must be positive")
    config = WorldConfig(seed=seed).scaled(scale)
    started = time.perf_counter()
    with tqdm(total=config.n_users, desc="simulating members", unit="member", file=sys.stderr,
              disable=None) as bar:
        world, dataset = generate_sample(config, progress=lambda done, total: bar.update(done - bar.n))
    files = save_dataset(dataset, out)
    write_world_manifest(world, out)
    elapsed = time.perf_counter() - started
    size = sum(p.stat().st_size for p in Path(out).glob("*") if p.is_file())
    summary = {"out": str(out), "seconds": round(elapsed, 1), "bytes": size,
               "files": sorted(str(p) for p in files.values()), **{k: dataset.summary()[k] for k in
                                                                  ("users", "items", "events", "plays", "searches")}}
    if as_json:
        _emit_json(summary)
    else:
        typer.echo(f"wrote {summary['events']:,} events, {summary['users']:,} members and {summary['items']:,} "
                   f"titles to {out}/ ({size / 1e6:.1f} MB) in {elapsed:.1f} s")


@app.command()
def info(
    data: str = typer.Option("sample", "--data", help=DATA_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Counts, time span, genres and density of a dataset."""
    summary = _load(data).summary()
    if as_json:
        _emit_json(summary)
        return
    typer.echo(format_summary(summary))


@app.command()
def features(
    data: str = typer.Option("sample", "--data", help=DATA_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    markdown: bool = typer.Option(False, "--markdown", help="Print a markdown table (for docs)."),
) -> None:
    """The features the ranking stage can use on a dataset: name, group, type, description."""
    from .features import FeatureBuilder

    dataset = _load(data)
    table = FeatureBuilder(use_embeddings=dataset.has("items", "synopsis")).fit(dataset).feature_set.describe()
    if as_json:
        _emit_json(table.to_dict("records"))
    elif markdown:
        lines = ["| feature | group | type | description |", "|---|---|---|---|"]
        lines += [f"| `{r.name}` | {r.group} | {r.kind} | {r.description} |" for r in table.itertuples()]
        typer.echo("\n".join(lines))
    else:
        typer.echo(table.to_string(index=False))


def _progress_bar(desc: str):
    """A tqdm bar on stderr driven by (message, fraction) progress callbacks."""
    from tqdm import tqdm

    bar = tqdm(total=100, desc=desc, file=sys.stderr, bar_format="{desc}: {percentage:3.0f}%|{bar}| {postfix}",
               disable=None)

    def update(message: str, fraction: float) -> None:
        bar.n = int(round(100 * max(0.0, min(1.0, fraction))))
        bar.set_postfix_str(message[:60])
        bar.refresh()

    return bar, update


@app.command()
def train(
    data: str = typer.Option("sample", "--data", help=DATA_HELP),
    out: Path = typer.Option(Path("artifacts/model"), "--out", help="Folder to write the model into."),
    ranker: str = typer.Option("auto", help="auto (the default: on rating data chosen between logistic and "
                                            "boosting on validation, else logistic), a ranker "
                                            "(recsys.ranking.RANKERS: logistic, forest, boosting, deep) or none."),
    sources: str = typer.Option("", help="Comma-separated candidate sources (recsys.candidates.SOURCES; default: "
                                         "the tuned set)."),
    seed: int = typer.Option(0, help="Seed of every random choice."),
    preset: str = typer.Option("default", help="default, or previous: the default before docs/online-quality.md "
                                               "(ranker on candidate rows, lists by P(watch), without the "
                                               "features added since), to A/B test old against new with `recsys simulate`."),
    engine: str = typer.Option("local", "--engine", help="local (this process) or spark: where the ranker's "
                                                          "training rows are built; fitting stays here. The same "
                                                          "model either way."),
    spark_master: Optional[str] = typer.Option(None, "--spark-master",
                                               help="With --engine spark: local[N] or any cluster URL (spark://, "
                                                    "yarn, k8s://); default local[*]."),
    partitions: Optional[int] = typer.Option(None, "--partitions", help="With --engine spark: partitions of members "
                                                                         "and of titles (default: the parallelism)."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary."),
) -> None:
    """Fit the whole pipeline (candidates, ranker, re-rank) and save it as plain files."""
    from .data.loaders import load_dataset
    from .pipeline import PREVIOUS_DEFAULT, Recommender, RecommenderConfig
    from .spark import SparkUnavailable

    spark_master = _engine_options(engine, spark_master, partitions)
    window_tables = None
    try:
        if preset not in ("default", "previous"):
            raise ValueError(f"unknown preset {preset!r}: use default or previous")
        dataset = load_dataset(data)
        kwargs: dict[str, Any] = {"ranker": None if ranker == "none" else ranker, "seed": seed}
        if sources.strip():
            kwargs["sources"] = tuple(s.strip() for s in sources.split(",") if s.strip())
        config = replace(PREVIOUS_DEFAULT, **kwargs) if preset == "previous" else RecommenderConfig(**kwargs)
        if engine == "spark":
            window_tables = _spark_windows(config, dataset, data, spark_master, partitions)
    except (SparkUnavailable, DataError, ValueError) as err:
        _fail(str(err))
        return
    started = time.perf_counter()
    bar, update = _progress_bar("training")
    try:
        model = Recommender(config).fit(dataset, progress=update, window_tables=window_tables)
        path = model.save(out)
    except DataError as err:
        bar.close()
        _fail(str(err))
        return
    except Exception as err:
        if window_tables is None or not _spark_failure(err):
            raise
        bar.close()
        _fail(f"a Spark job failed while building the training rows: {str(err).strip().splitlines()[0][:500]}")
        return
    bar.close()
    summary = {"out": str(path), "seconds": round(time.perf_counter() - started, 1), "data": dataset.name,
               "fingerprint": model.fingerprint_, "ranker": model.config.ranker, "sources": list(config.sources),
               "training_rows": model.training_summary_.get("rows"), "fit_seconds": model.fit_timings_,
               "engine": engine}
    if as_json:
        _emit_json(summary)
    else:
        from .tuning import ranker_choice_text

        how = ranker_choice_text(model.tuning_.get("ranker", {}))
        how = f", {how}" if how else ""
        typer.echo(f"trained on {dataset.name} in {summary['seconds']} s "
                   f"({summary['training_rows'] or 0:,} ranker rows, built {'on Spark' if window_tables else 'here'}; "
                   f"ranker {summary['ranker'] or 'none'}{how}); saved to {path}/")


def _spark_failure(err: Exception) -> bool:
    """Whether `err` is Spark's (a failed job, or an executor's Python error sent back through the JVM)."""
    return type(err).__module__.split(".")[0] in ("pyspark", "py4j")


def _spark_windows(config, dataset, spec: str, master: str, partitions: int | None):
    """`SparkWindowTables` for `recsys train --engine spark`, refusing configs whose ranker rows Spark does not
    build (it builds the logged impressions' rows, the default wherever impressions are logged)."""
    from .spark import spark_session
    from .spark.windows import SparkWindowTables

    refusal = config.window_rows_refusal(dataset)
    if refusal is not None:
        raise ValueError(f"--engine spark builds the ranker's rows from logged impressions, and this training does "
                         f"not use them: {refusal}; train it without --engine")
    spark = spark_session(master)
    return SparkWindowTables(spark, _spark_source(spark, spec, partitions), partitions)


@app.command()
def recommend(
    artifacts: Path = typer.Option(Path("artifacts/model"), "--artifacts", help="A folder written by `recsys train`."),
    user: list[str] = typer.Option(..., "--user", help="Member id (repeat for several)."),
    k: int = typer.Option(10, "--k", help="How many titles."),
    now: Optional[str] = typer.Option(None, help="Moment of the request (default: just after the data ends)."),
    device: Optional[str] = typer.Option(None, help="tv | mobile | tablet | web"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Top-k titles for members from a trained model, with scores, sources and reasons."""
    from .pipeline import Recommender

    if k < 1:
        _fail("--k must be at least 1")
    try:
        model = Recommender.load(artifacts)
        context = {"now": now, "device": device}
        if now is not None:
            import pandas as pd

            try:
                pd.Timestamp(now)
            except (ValueError, TypeError):
                _fail(f"--now {now!r} is not a time (use e.g. 2025-12-20T20:00)")
        frame = model.recommend(user, k=k, context=context)
    except (DataError, ValueError) as err:
        _fail(str(err))
        return
    if as_json:
        _emit_json(frame.to_dict("records"))
        return
    for uid, rows in frame.groupby("user_id", sort=False):
        typer.echo(f"member {uid}")
        for r in rows.itertuples():
            typer.echo(f"  {r.rank:>2}. {r.title:<40} p(watch)={r.score:.3f}  [{r.source}] {r.reason}")


@app.command()
def batch(
    artifacts: Path = typer.Option(Path("artifacts/model"), "--artifacts", help="A folder written by `recsys train`."),
    out: str = typer.Option(..., "--out", help="The Parquet folder to write: one row per (member, rank) with "
                                               "member, rank, title, title_name, score, source, reason."),
    engine: str = typer.Option("local", "--engine", help="local (this process) or spark."),
    k: int = typer.Option(10, "--k", help="Titles per member."),
    now: Optional[str] = typer.Option(None, help="Moment of the lists (default: just after the data ends)."),
    device: Optional[str] = typer.Option(None, help="tv | mobile | tablet | web"),
    spark_master: Optional[str] = typer.Option(None, "--spark-master",
                                               help="With --engine spark: local[N] or any cluster URL (spark://, "
                                                    "yarn, k8s://); default local[*]."),
    partitions: Optional[int] = typer.Option(None, "--partitions", help="With --engine spark: member partitions "
                                                                         "(default: the cluster's parallelism)."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary."),
) -> None:
    """Every member's top-k list from a trained model, written as Parquet, in this process or on Spark."""
    from .spark import SparkUnavailable, batch_local, batch_spark, spark_session

    spark_master = _engine_options(engine, spark_master, partitions)
    if k < 1:
        _fail("--k must be at least 1")
    if now is not None:
        import pandas as pd

        try:
            pd.Timestamp(now)
        except (ValueError, TypeError):
            _fail(f"--now {now!r} is not a time (use e.g. 2025-12-20T20:00)")
    context = {"now": now, "device": device}
    try:
        if engine == "local":
            summary = batch_local(artifacts, out, k=k, context=context, progress=_say)
        else:
            summary = batch_spark(spark_session(spark_master), artifacts, out, k=k, context=context,
                                  partitions=partitions, progress=_say)
    except (SparkUnavailable, DataError, ValueError) as err:
        _fail(str(err))
        return
    if as_json:
        _emit_json(summary.__dict__)
        return
    typer.echo(f"{summary.members:,} members, {summary.rows:,} list rows written to {summary.out} "
               f"({summary.engine}, {summary.seconds} s)")


@app.command("training-table")
def training_table(
    data: str = typer.Option("sample", "--data", help=DATA_HELP),
    out: str = typer.Option(..., "--out", help="The Parquet folder to write: one row per training row with user_id, "
                                               "item_id, timestamp, device, label, weight and every feature."),
    engine: str = typer.Option("local", "--engine", help="local (this process) or spark; the same table either way."),
    days: float = typer.Option(14.0, "--days", help="The window: the last DAYS days of the data (ignored with --start)."),
    start: Optional[str] = typer.Option(None, "--start", help="Window start (e.g. 2025-12-01); default: --days before "
                                                              "the data ends."),
    end: Optional[str] = typer.Option(None, "--end", help="Window end, exclusive (default: after the last event)."),
    negatives: float = typer.Option(4.0, "--negatives", help="Negatives kept per positive, per member (hash-seeded)."),
    seed: int = typer.Option(0, help="Seed of the negative sample and the feature builder."),
    slot_features: bool = typer.Option(True, "--slot-features/--no-slot-features",
                                       help="Add each impression's slot and the plays above it, where the data logs "
                                            "sessions and positions."),
    spark_master: Optional[str] = typer.Option(None, "--spark-master",
                                               help="With --engine spark: local[N] or any cluster URL (spark://, "
                                                    "yarn, k8s://); default local[*]."),
    partitions: Optional[int] = typer.Option(None, "--partitions", help="With --engine spark: partitions of members "
                                                                         "and of titles (default: the parallelism)."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary."),
) -> None:
    """The ranker's training table (a window's impressions and plays: labels, negatives sampled by a hash of the
    row and the seed, duration weights, point-in-time features) as Parquet, in this process or on Spark."""
    import pandas as pd

    from .spark import SparkUnavailable, spark_session
    from .spark.training import write_training_table
    from .training_table import TrainingConfig

    spark_master = _engine_options(engine, spark_master, partitions)
    if not negatives > 0:
        _fail("--negatives must be > 0")
    if not days > 0:
        _fail("--days must be > 0")
    times = {}
    for name, value in (("start", start), ("end", end)):
        if value is not None:
            try:
                times[name] = pd.Timestamp(value)
            except (ValueError, TypeError):
                _fail(f"--{name} {value!r} is not a time (use e.g. 2025-12-01)")
    config = TrainingConfig(negatives_per_positive=negatives, seed=seed, sampler="hash")
    try:
        spark = spark_session(spark_master) if engine == "spark" else None
        source = _spark_source(spark, data, partitions) if spark is not None else None
        if source is not None:  # the executors read the events; the driver never holds them
            dataset, shell = source, source.shell
        else:
            dataset = shell = _load(data)
        window_start = times.get("start", (times.get("end", dataset.end) - pd.Timedelta(days=days)))
        slots = slot_features and shell.has("events", "position") and shell.has("events", "session_id")
        summary = write_training_table(dataset, out, window_start, times.get("end"), config, engine=engine,
                                       spark=spark, slot_features=slots, partitions=partitions, progress=_say)
    except (SparkUnavailable, DataError, ValueError) as err:
        _fail(str(err))
        return
    if as_json:
        _emit_json(summary.__dict__)
        return
    typer.echo(f"{summary.rows:,} training rows ({summary.positives:,} positives) from {window_start} written to "
               f"{summary.out} ({summary.engine}, {summary.seconds} s)")


@app.command()
def evaluate(
    data: str = typer.Option("sample", "--data", help=DATA_HELP),
    protocol: str = typer.Option("temporal", help="temporal (time-series CV), stratified (per-user random split) "
                                                  "or timecut (one cut in time, the latest interactions held out)"),
    folds: int = typer.Option(3, help="Temporal folds."),
    test_days: float = typer.Option(14.0, help="Days in each temporal test window."),
    test_ratio: float = typer.Option(0.25, help="Stratified: share of each member's interactions held out; "
                                                "timecut: share of all interactions after the cut."),
    relevant_rating: Optional[float] = typer.Option(
        None, help="temporal and timecut on ratings: the lowest test rating that counts as a hit (default 4, the "
                   "label threshold; published temporal MovieLens tables often use 3)."),
    seed: int = typer.Option(0, help="Seed of every random choice."),
    k: int = typer.Option(10, "--k", help="List length the metrics are computed at."),
    models: str = typer.Option("", help="Comma-separated models: random, a candidate source, blend, a ranker, "
                                        "pipeline (the default configuration, its ranker chosen as `recsys train` "
                                        "chooses it) or oracle (default: the pipeline's sources, the blend, every "
                                        "ranker, the pipeline, random, and the oracle where the data has one)."),
    out: Path = typer.Option(Path("artifacts/report.json"), help="Where to write the JSON report."),
    off_policy: bool = typer.Option(False, "--off-policy",
                                    help="Also estimate each model's online engagement, videos and minutes per "
                                         "session from the logged impressions of the last --test-days "
                                         "(docs/off-policy.md)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary table as JSON."),
) -> None:
    """Fit every model per fold without leakage, score it, and write a report (the dashboard reads it)."""
    from .data.loaders import load_dataset, world_of
    from .evaluation.models import build_policies, default_models
    from .evaluation.protocol import stratified_folds, temporal_folds, time_cut_folds
    from .evaluation.report import evaluate as run, ranker_choices, summary_table, write_report
    from .labels import LabelConfig

    if protocol not in ("temporal", "stratified", "timecut"):
        _fail("--protocol must be temporal, stratified or timecut")
    if k < 1:
        _fail("--k must be at least 1")
    if relevant_rating is not None and protocol == "stratified":
        _fail("--relevant-rating applies to --protocol temporal or timecut: under stratified every held-out "
              "interaction is relevant, whatever its rating")
    try:
        labels = LabelConfig() if relevant_rating is None else LabelConfig(rating_threshold=relevant_rating)
        dataset = load_dataset(data)
        if relevant_rating is not None and dataset.feedback != "explicit":
            raise ValueError(f"--relevant-rating needs rating data; {dataset.name} is implicit feedback (hits are "
                             f"titles watched past {labels.positive_above:.0%})")
        names = [m.strip() for m in models.split(",") if m.strip()] or default_models(world_of(data) is not None)
        policies = build_policies(names, data, protocol, seed)
        relevant = (f"rated >= {labels.rating_threshold:g}" if dataset.feedback == "explicit"
                    else f"watched > {labels.positive_above:.0%}")
        if protocol == "temporal":
            split = temporal_folds(dataset, n_folds=folds, test_days=test_days, labels=labels)
            spec = {"name": "temporal", "folds": folds, "test_days": test_days, "relevant": relevant}
        elif protocol == "timecut":
            split = time_cut_folds(dataset, test_ratio=test_ratio, labels=labels)
            spec = {"name": "timecut", "test_ratio": test_ratio, "cut": split[0].info["cut"], "relevant": relevant,
                    "cold": "members and titles without an interaction before the cut dropped", "seen_items": "excluded"}
        else:
            split = stratified_folds(dataset, test_ratio=test_ratio, seed=seed)
            spec = {"name": "stratified", "test_ratio": test_ratio, "seed": seed,
                    "relevant": "every held-out interaction", "seen_items": "excluded"}
    except (DataError, ValueError) as err:
        _fail(str(err))
        return
    started = time.perf_counter()
    bar, update = _progress_bar("evaluating")
    try:
        report = run(dataset, policies, split, k=max(1, k), max_k=max(50, k), protocol=spec, seed=seed,
                     progress=update)
    except DataError as err:
        bar.close()
        _fail(str(err))
        return
    bar.close()
    if off_policy:
        report = _with_off_policy(report, dataset, data, names, k, seed)
    report["seconds"] = round(time.perf_counter() - started, 1)
    write_report(report, out)
    table = summary_table(report, reference="oracle" if "oracle" in report["models"] else None)
    if as_json:
        _emit_json({"report": str(out), "seconds": report["seconds"], "summary": table.to_dict("records"),
                    **({"ratings": report["ratings"]} if "ratings" in report else {})})
        return
    typer.echo(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    for name, r in report.get("ratings", {}).items():
        typer.echo(f"rating prediction {name}: RMSE {r['rmse']:.4f} [{r['rmse_ci'][0]:.4f}, {r['rmse_ci'][1]:.4f}]"
                   f"  MAE {r['mae']:.4f} on {r['ratings']:,} test ratings")
    for line in ranker_choices(report):
        typer.echo(line)
    significant = [c for c in report["comparisons"] if c["metric"] == "ndcg"]
    typer.echo(f"\nbest by NDCG@{k}: {report['best']}; paired bootstrap over (fold, member) pairs:")
    for c in significant:
        verdict = "significant" if c["significant"] else "not significant"
        typer.echo(f"  {c['a']} - {c['b']}: {c['diff']:+.4f} [{c['low']:+.4f}, {c['high']:+.4f}] "
                   f"p={c['p_value']:.4f} ({verdict})")
    if "off_policy" in report:
        _echo_estimated_online(report)
    typer.echo(f"\nreport written to {out} in {report['seconds']} s")


def _with_off_policy(report: dict[str, Any], dataset, data: str, names: list[str], k: int,
                     seed: int) -> dict[str, Any]:
    """`evaluate --off-policy`: each model's estimated online value from the logs, added to the report."""
    from .data.loaders import world_of
    from .evaluation.logged import OffPolicyUnavailable
    from .evaluation.models import online_specs
    from .evaluation.off_policy import OffPolicyConfig, evaluate_off_policy
    from .evaluation.report import attach_off_policy

    world = world_of(data)
    bar, update = _progress_bar("off-policy estimates")
    try:
        off = evaluate_off_policy(dataset, online_specs(names, seed, world is not None), world=world,
                                  config=OffPolicyConfig(k=min(10, k), seed=seed), progress=update)
    except OffPolicyUnavailable as err:
        off = str(err)
    except (DataError, ValueError) as err:
        _fail(str(err))
    finally:
        bar.close()
    return attach_off_policy(report, off)


def _echo_estimated_online(report: dict[str, Any]) -> None:
    section = report["off_policy"]
    if "unavailable" in section:
        typer.echo(f"\nestimated online: not available: {section['unavailable']}")
        return
    typer.echo(f"\nestimated online ({section['default_estimator']}, logged sessions {section['window']['start']} to "
               f"{section['window']['end']}; the logs' own: "
               f"{section['logged']['minutes_per_session']['estimate']:.1f} minutes per session):")
    for name, by in section["policies"].items():
        per = by[section["default_estimator"]]
        e, m = per["engagement_rate"], per["minutes_per_session"]
        typer.echo(f"  {name:<12} engagement {e['estimate']:.3f} [{e['low']:.3f}, {e['high']:.3f}]  minutes/session "
                   f"{m['estimate']:6.1f} [{m['low']:.1f}, {m['high']:.1f}]  ESS {m['ess']:.0f}")


@app.command()
def simulate(
    data: str = typer.Option("sample", "--data", help=DATA_HELP + " (a simulated world: the sample or a "
                                                                  "folder written by `recsys generate`)"),
    control: str = typer.Option("popularity", "--control",
                                help="popularity | random | oracle | logging | a saved model's folder"),
    treatment: list[str] = typer.Option(..., "--treatment", help="Same choices as --control; repeat for more arms."),
    users: int = typer.Option(2000, "--users", help="Members in the experiment (split at random between arms)."),
    days: float = typer.Option(7.0, "--days", help="Length of the simulated period after the data ends."),
    seed: int = typer.Option(0, help="Seed of the assignment, the sessions and the behaviour."),
    k: int = typer.Option(10, "--k", help="Titles shown per session (one row, at most 10)."),
    slot_minutes: int = typer.Option(60, "--slot-minutes", help="Sessions are served in batches of this many minutes."),
    retrain_every: Optional[float] = typer.Option(None, "--retrain-every",
                                                  help="Re-fit every arm on what it has seen every DAYS days."),
    alpha: float = typer.Option(0.05, help="Significance level of the comparisons."),
    offline: bool = typer.Option(False, "--offline",
                                 help="Also the offline NDCG/mAP@k of each arm's policy (one temporal fold; "
                                      "re-fits each policy) and its off-policy estimates of engagement, videos "
                                      "and minutes per session from the logs, next to its online metrics."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Simulated online A/B test: members split at random between a control and treatment arm(s)."""
    from .pipeline import ArtifactError
    from .simulation import (
        POLICY_NAMES, ExperimentConfig, RecommenderPolicy, analyze, evaluation_policy, make_policy, offline_metrics,
        offline_vs_online,
    )

    specs = [control, *treatment]
    names = []
    for spec in specs:
        name = spec if spec in POLICY_NAMES else Path(spec).expanduser().name or spec
        while name in names:
            name = f"{name}'"
        names.append(name)
    config = ExperimentConfig(users=users, days=days, seed=seed, k=k, slot_minutes=slot_minutes,
                              retrain_every_days=retrain_every)
    try:
        config.validate(len(specs))
    except ValueError as err:
        _fail(str(err))
    dataset = _load(data)
    try:
        from .data.loaders import world_of

        world = world_of(data)
    except DataError as err:
        _fail(str(err))
        return
    if world is None:
        _fail(f"{data!r} has no simulated world (world.json): use --data sample or a folder written by "
              "`recsys generate`")
    try:
        arms = {name: make_policy(spec, world=world, seed=seed) for name, spec in zip(names, specs)}
    except (ArtifactError, DataError, ValueError) as err:
        _fail(str(err))
        return
    from .simulation import run_experiment

    bar, update = _progress_bar("simulating")
    try:
        result = run_experiment(dataset, world, arms, config, progress=update)
    except (DataError, ValueError, KeyError) as err:
        bar.close()
        _fail(str(err))
        return
    bar.close()
    report = analyze(result, alpha=alpha)
    payload: dict[str, Any] = {**result.summary(), **report.to_json()}
    comparison = None
    if offline:
        bar, update = _progress_bar("offline metrics")
        try:
            factories = {name: evaluation_policy(arm if isinstance(arm, RecommenderPolicy) else spec, world, seed)
                         for (name, arm), spec in zip(arms.items(), specs)}
            off = offline_metrics(dataset, factories, k=k, seed=seed, progress=update)
        except (DataError, ValueError) as err:
            bar.close()
            _fail(str(err))
            return
        bar.close()
        comparison, agreement = offline_vs_online(off, report, k=k)
        payload["offline_vs_online"] = {"table": comparison.to_dict("records"), "agreement": agreement}
        off_policy = _off_policy_section(dataset, world, arms, specs, report, k, seed, slot_minutes)
        payload["off_policy"] = off_policy
        for arm in payload["arms"]:
            if arm["arm"] in off_policy.get("estimates", {}):
                arm["off_policy"] = off_policy["estimates"][arm["arm"]]
    if as_json:
        _emit_json(payload)
        return
    typer.echo(f"{len(result.assignment):,} members, {len(result.sessions):,} sessions, {result.start:%Y-%m-%d %H:%M} "
               f"to {result.end:%Y-%m-%d %H:%M}, simulated in {result.seconds:.1f} s\n")
    table = report.table()
    cols = ["arm", "members", "active members", "sessions", "engagement_rate", "videos_per_session",
            "finished_per_session", "minutes_per_session", "minutes_per_member"]
    typer.echo(table[cols].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    typer.echo(f"\nagainst the control ({report.control}), Welch t over members, alpha={alpha}:")
    for r in report.comparisons.itertuples():
        verdict = "significant" if r.significant else "not significant"
        typer.echo(f"  {r.treatment:<14} {r.metric:<22} {r.control_value:9.3f} -> {r.treatment_value:9.3f}  "
                   f"lift {r.lift:+.1%} [{r.lift_low:+.1%}, {r.lift_high:+.1%}]  p={r.p_value:.4f} ({verdict})")
    srm = report.srm
    typer.echo(f"\nsample ratio: active members {srm['observed']} vs expected "
               f"{ {a: round(v, 1) for a, v in srm['expected'].items()} }, chi2={srm['chi2']:.2f} "
               f"p={srm['p_value']:.4f}: " + ("MISMATCH, do not trust the results" if srm["mismatch"] else "ok"))
    if comparison is not None:
        typer.echo("\noffline (last 14 days, re-fitted) versus online:")
        typer.echo(comparison.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
        typer.echo(f"Kendall tau {agreement.get('kendall_tau')}, same order: {agreement.get('same_order')}, "
                   f"same best: {agreement.get('same_best')}")
        _echo_off_policy(payload["off_policy"])


def _off_policy_section(dataset, world, arms, specs, report, k: int, seed: int, slot_minutes: int) -> dict[str, Any]:
    """`simulate --offline`'s off-policy part: every arm estimated from the logs, beside its simulated value."""
    from .evaluation.logged import METRICS as OFF_METRICS
    from .evaluation.logged import OffPolicyUnavailable
    from .evaluation.off_policy import OffPolicyConfig, evaluate_off_policy
    from .simulation import RecommenderPolicy, off_policy_vs_online

    bar, update = _progress_bar("off-policy estimates")
    try:
        policies = {name: (arm if isinstance(arm, RecommenderPolicy) else spec)
                    for (name, arm), spec in zip(arms.items(), specs)}
        off = evaluate_off_policy(dataset, policies, world=world,
                                  config=OffPolicyConfig(k=k, seed=seed, slot_minutes=slot_minutes), progress=update)
    except OffPolicyUnavailable as err:
        bar.close()
        return {"unavailable": str(err)}
    except (DataError, ValueError) as err:
        bar.close()
        _fail(str(err))
    bar.close()
    table, agreement = off_policy_vs_online(off, report)
    estimates = {name: {metric: off.policies[name][off.lead][metric].as_dict() for metric in OFF_METRICS}
                 for name in off.policies}
    return {"estimator": off.lead, "estimates": estimates, "agreement": agreement,
            "table": table.to_dict("records"), "report": off.as_dict()}


def _echo_off_policy(section: dict[str, Any]) -> None:
    if "unavailable" in section:
        typer.echo(f"\noff-policy estimates: not available: {section['unavailable']}")
        return
    typer.echo(f"\noff-policy estimates from the logs (estimator {section['estimator']}, last 14 days) versus online:")
    for row in section["table"]:
        if row["estimator"] == section["estimator"]:
            typer.echo(f"  {row['policy']:<14} {row['metric']:<20} simulated {row['simulated']:9.3f}  estimated "
                       f"{row['estimate']:9.3f} [{row['low']:.3f}, {row['high']:.3f}]  "
                       f"error {row['relative_error']:.1%}")
    for metric, a in section["agreement"][section["estimator"]].items():
        typer.echo(f"  {metric}: Kendall tau {a['kendall_tau']}, median relative error "
                   f"{a['median_relative_error']:.1%}, intervals covering {a['covered']} of {a['arms']}")


@app.command("report")
def report_html(
    report: Path = typer.Option(..., "--report", help="An evaluation report written by `recsys evaluate --out`."),
    ab: Optional[Path] = typer.Option(None, "--ab", help="A/B results: what `recsys simulate ... --json` prints, "
                                                        "saved to a file."),
    artifacts: Optional[Path] = typer.Option(None, "--artifacts", help="A model folder written by `recsys train`: "
                                                                       "its manifest.json goes into the report."),
    out: Path = typer.Option(Path("artifacts/report.html"), "--out", help="Where to write the HTML file."),
    title: Optional[str] = typer.Option(None, help="The report's title (default: 'recsys report: DATASET')."),
) -> None:
    """One self-contained HTML file (plotly inlined, no network needed): the evaluation with its off-policy
    estimates, the A/B results, the dataset fingerprint and the model manifest."""
    from .ui.report_html import chart_count, read_ab, read_evaluation, read_manifest, render_html, write_html

    try:
        evaluation = read_evaluation(report)
        results = None if ab is None else read_ab(ab)
        manifest = read_manifest(artifacts) if artifacts is not None else evaluation.get("manifest")
        document = render_html(evaluation, manifest, results, title=title)
    except DataError as err:
        _fail(str(err))
        return
    except (KeyError, TypeError, ValueError, AttributeError) as err:  # a shape the checks did not foresee
        _fail(f"the report {str(report)!r}" + (f" or the A/B results {str(ab)!r}" if ab else "")
              + f" has an unexpected shape ({type(err).__name__}: {err})")
        return
    try:
        write_html(document, out)
    except OSError as err:
        _fail(f"cannot write {str(out)!r}: {err}")
    typer.echo(f"wrote {out} ({len(document.encode('utf-8')) / 1e6:.1f} MB, {chart_count(document)} charts)")


def format_summary(s: dict[str, Any]) -> str:
    """The human-readable form of `Dataset.summary()`."""
    lines = [
        f"dataset        {s['name']} ({s['feedback']} feedback)",
        f"members        {s['users']:,} ({s['active_users']:,} with plays)",
        f"titles         {s['items']:,} ({s['played_items']:,} played)"
        + (f"  {', '.join(f'{k}: {v:,}' for k, v in s['item_kinds'].items())}" if s.get("item_kinds") else ""),
        f"events         {s['events']:,} ({s['plays']:,} plays)",
        f"searches       {s['searches']:,}",
        f"time span      {s['start']} .. {s['end']} ({s['days']} days)",
        f"density        {s['density']:.4%} of member x title pairs played",
    ]
    if "label_balance" in s:
        lb = s["label_balance"]
        lines.append(
            f"watch fraction >80%: {lb['positive_gt_0.8']:,}  10-80%: {lb['middle_0.1_to_0.8']:,}  "
            f"<10%: {lb['negative_lt_0.1']:,}  shown, not played: {lb['shown_not_played']:,}")
    if "ratings" in s:
        lines.append("ratings        " + ", ".join(f"{k}: {v:,}" for k, v in s["ratings"].items()))
    if s.get("genres"):
        lines.append("genres         " + ", ".join(f"{g} {n}" for g, n in s["genres"].items()))
    report = s.get("report") or {}
    for reason, count in (report.get("dropped") or {}).items():
        lines.append(f"dropped        {count:,} rows: {reason}")
    for note in report.get("notes") or []:
        lines.append(f"note           {note}")
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> None:
    """Console entry point."""
    app(args=argv, prog_name="recsys")


if __name__ == "__main__":
    main()
