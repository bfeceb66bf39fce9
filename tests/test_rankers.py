"""The ranker contract, checked on every ranker, plus a few checks specific to each one.

The contract table is synthetic with a known answer: P(watch) is driven by one dense feature
(`signal`) and one categorical (`color` == "red"); the other columns are noise, gaps, ids and
ragged lists (some empty), so every ranker meets the shapes real feature tables have.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys.data import DataError
from recsys.evaluation.metrics import auc_score
from recsys.features import Feature, FeatureSet, FeatureTable, NotFittedError, Ragged
from recsys.ranking import (
    RANKERS,
    ArtifactError,
    BoostingRanker,
    DeepRanker,
    ForestRanker,
    LogisticRanker,
    Ranker,
    TabularEncoder,
    load_ranker,
)
from recsys.artifacts import MANIFEST
from recsys.ranking.base import time_holdout
from recsys.training_table import TrainingTable

FEATURES = FeatureSet((
    Feature("signal", "user_x_media", "dense", "The informative dense feature."),
    Feature("noise", "user", "dense", "Pure noise."),
    Feature("gappy", "media", "dense", "Noise with missing values."),
    Feature("count", "media", "dense", "A skewed, uninformative count."),
    Feature("color", "media", "categorical", "The informative categorical: red titles are watched."),
    Feature("shape", "context", "categorical", "An uninformative categorical."),
    Feature("user_id", "sparse", "categorical", "Member id."),
    Feature("item_id", "sparse", "categorical", "Title id."),
    Feature("history_items", "sparse", "sparse_list", "Past titles (often empty)."),
    Feature("item_tags", "sparse", "sparse_list", "Tags of the title."),
))
COLORS = np.array(["red", "blue", "green"], dtype=object)
SHAPES = np.array([f"shape{k}" for k in range(8)], dtype=object)
TAGS = ("<pad>", "cosy", "dark", "funny", "epic")


def _ragged(rng: np.random.Generator, n: int, vocab: tuple[str, ...], max_len: int, p_empty: float) -> Ragged:
    lengths = np.where(rng.random(n) < p_empty, 0, rng.integers(1, max_len + 1, n))
    values = rng.integers(1, len(vocab), int(lengths.sum()))
    return Ragged(values.astype(np.int64), np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64), vocab)


def make_table(n: int, seed: int, start: str = "2025-01-01") -> TrainingTable:
    """Rows whose label is decided by `signal` and `color` (plus a little noise)."""
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=n)
    color = rng.choice(COLORS, n)
    logit = 3.0 * signal + 2.5 * (color == "red") - 1.5 + 0.3 * rng.normal(size=n)
    label = (logit > 0).astype(np.int8)
    gappy = rng.normal(size=n)
    gappy[rng.random(n) < 0.3] = np.nan
    frame = pd.DataFrame({
        "signal": signal,
        "noise": rng.normal(size=n),
        "gappy": gappy,
        "count": np.floor(rng.pareto(1.5, n) * 10.0),
        "color": color,
        "shape": rng.choice(SHAPES, n),
        "user_id": np.array([f"u{k}" for k in rng.integers(0, 60, n)], dtype=object),
        "item_id": np.array([f"i{k}" for k in rng.integers(0, 40, n)], dtype=object),
    })
    items = ("<pad>",) + tuple(f"i{k}" for k in range(40)) + ("<unknown>",)
    times = pd.Timestamp(start) + pd.to_timedelta(np.sort(rng.uniform(0, 30 * 86_400, n)), unit="s")
    rows = pd.DataFrame({"user_id": frame["user_id"], "item_id": frame["item_id"], "timestamp": times})
    sparse = {"history_items": _ragged(rng, n, items, 6, p_empty=0.3), "item_tags": _ragged(rng, n, TAGS, 3, 0.2)}
    features = FeatureTable(rows=rows, frame=frame, sparse=sparse, feature_set=FEATURES)
    return TrainingTable(features=features, label=label, weight=rng.uniform(0.5, 1.5, n), balance={},
                         label_counts={}, window=(None, None))


def make_ranker(kind: str, seed: int = 0) -> Ranker:
    """Each ranker, sized for a 1,500-row table (one thread: tiny work, and the machine is shared)."""
    if kind == "logistic":
        return LogisticRanker(seed=seed)
    if kind == "forest":
        return ForestRanker(n_estimators=30, max_depth=8, min_samples_leaf=5, max_samples=None, n_jobs=1, seed=seed)
    if kind == "boosting":
        return BoostingRanker(n_estimators=300, learning_rate=0.1, min_child_samples=10, n_jobs=1, seed=seed)
    if kind == "deep":
        return DeepRanker(hidden=(32, 16), embedding_dim=8, batch_size=128, learning_rate=5e-3, max_epochs=40,
                          patience=4, device="cpu", n_threads=1, seed=seed)
    raise KeyError(kind)


KINDS = ["logistic", "forest", "boosting", "deep"]
TRAIN = make_table(1500, seed=1)
TEST = make_table(600, seed=2, start="2025-02-01")
_FITTED: dict[str, Ranker] = {}


def fitted(kind: str) -> Ranker:
    """One fitted ranker per kind for the whole module (fits are the slow part)."""
    if kind not in _FITTED:
        _FITTED[kind] = make_ranker(kind).fit(TRAIN)
    return _FITTED[kind]


def one_row(table: TrainingTable, **values) -> FeatureTable:
    """Row 0 of `table` with some columns overwritten."""
    row = table.features.take(np.array([0]))
    frame = row.frame.copy()
    for k, v in values.items():
        frame[k] = pd.Series([v], dtype=frame[k].dtype)
    return FeatureTable(rows=row.rows, frame=frame, sparse=row.sparse, feature_set=row.feature_set)


def test_every_registered_ranker_runs_the_contract():
    """A ranker added to the registry without contract-test settings here (make_ranker) fails this test."""
    assert set(RANKERS.names()) == set(KINDS)
    assert all(RANKERS.get(k).name == k for k in KINDS)


@pytest.mark.parametrize("kind", KINDS)
class TestRankerContract:
    def test_learns_the_known_signal(self, kind):
        p = fitted(kind).predict_proba(TEST.features)
        assert p.dtype == np.float64 and p.shape == (len(TEST),)
        assert np.all((p >= 0) & (p <= 1))
        assert auc_score(p, TEST.label) > 0.9

    def test_accepts_a_training_table_and_empty_input(self, kind):
        ranker = fitted(kind)
        np.testing.assert_array_equal(ranker.predict_proba(TEST), ranker.predict_proba(TEST.features))
        assert ranker.predict_proba(TEST.features.take(np.zeros(0, dtype=int))).shape == (0,)

    def test_unknown_categories_missing_values_and_empty_lists(self, kind):
        table = TEST.features.take(np.arange(50))
        frame = table.frame.copy()
        frame["color"] = "purple"          # never seen in training
        frame["shape"] = None               # missing
        frame["user_id"] = "brand-new-member"
        frame["gappy"] = np.nan
        frame["count"] = 1e9                # far outside the training range
        empty = Ragged(np.zeros(0, dtype=np.int64), np.zeros(51, dtype=np.int64), TAGS)
        sparse = {"history_items": Ragged(np.zeros(0, dtype=np.int64), np.zeros(51, dtype=np.int64),
                                          table.sparse["history_items"].vocab), "item_tags": empty}
        odd = FeatureTable(rows=table.rows, frame=frame, sparse=sparse, feature_set=FEATURES)
        p = fitted(kind).predict_proba(odd)
        assert p.shape == (50,) and np.all(np.isfinite(p)) and np.all((p >= 0) & (p <= 1))
        # an unseen colour is not "red": strong negatives stay negative
        negative = odd.take(np.flatnonzero(odd.frame["signal"].to_numpy() < -1.5))
        assert np.all(fitted(kind).predict_proba(negative) < 0.5)

    def test_list_tokens_are_matched_by_text_not_by_table_id(self, kind):
        table = TEST.features.take(np.arange(100))
        tags = table.sparse["item_tags"]
        order = np.array([0, 4, 3, 2, 1])  # the same tags under other ids, as another table's vocab may be
        inverse = np.argsort(order)
        shuffled = Ragged(inverse[tags.values], tags.offsets, tuple(TAGS[k] for k in order))
        assert shuffled.lists() == tags.lists()
        other = FeatureTable(rows=table.rows, frame=table.frame, sparse={**table.sparse, "item_tags": shuffled},
                             feature_set=FEATURES)
        ranker = fitted(kind)
        np.testing.assert_array_equal(ranker.predict_proba(other), ranker.predict_proba(table))

    def test_unfitted_use_is_a_clear_error(self, kind, tmp_path):
        ranker = make_ranker(kind)
        for call in (lambda: ranker.predict_proba(TEST.features), lambda: ranker.explain(TEST.features, 0),
                     ranker.feature_importance, lambda: ranker.save(tmp_path / "m")):
            with pytest.raises(NotFittedError, match="not fitted"):
                call()

    def test_save_and_load_give_identical_predictions(self, kind, tmp_path):
        ranker = fitted(kind)
        ranker.save(tmp_path / "model")
        manifest = json.loads((tmp_path / "model" / MANIFEST).read_text())
        assert manifest["name"] == kind and manifest["version"] == 2
        assert manifest["config"] == ranker.get_config()
        assert "signal" in manifest["features"]["dense"]
        assert not list((tmp_path / "model").glob("*.tmp")) and not list((tmp_path / "model").glob("*.pkl"))
        for loader in (Ranker.load, type(ranker).load, load_ranker):
            again = loader(tmp_path / "model")
            assert type(again) is type(ranker)
            np.testing.assert_array_equal(again.predict_proba(TEST.features), ranker.predict_proba(TEST.features))
        pd.testing.assert_frame_equal(again.explain(TEST.features, 3), ranker.explain(TEST.features, 3))
        pd.testing.assert_frame_equal(again.feature_importance(), ranker.feature_importance())

    def test_explain_puts_the_informative_feature_first(self, kind):
        ranker = fitted(kind)
        clear = one_row(TEST, signal=3.0, color="blue", gappy=0.0, noise=0.0)
        out = ranker.explain(clear, 0, top=5)
        assert list(out.columns) == ["feature", "value", "contribution"]
        assert len(out) == 5 and out["contribution"].abs().is_monotonic_decreasing
        assert out["feature"].iloc[0] == "signal" and out["value"].iloc[0] == "3"
        assert out["contribution"].iloc[0] > 0
        assert out.attrs["prediction"] == pytest.approx(ranker.predict_proba(clear)[0])
        assert out.attrs["units"] in ("log-odds", "probability") and out.attrs["method"]
        assert out.attrs["descriptions"]["signal"] == "The informative dense feature."
        red = ranker.explain(one_row(TEST, signal=0.2, color="red", gappy=0.0, noise=0.0), 0, top=3)
        assert "color" in red["feature"].tolist()[:2]
        assert red.set_index("feature").loc["color", "value"] == "red"

    def test_explain_checks_its_arguments(self, kind):
        ranker = fitted(kind)
        with pytest.raises(IndexError):
            ranker.explain(TEST.features, len(TEST))
        with pytest.raises(ValueError):
            ranker.explain(TEST.features, 0, top=0)

    def test_feature_importance(self, kind):
        imp = fitted(kind).feature_importance()
        assert list(imp.columns) == ["feature", "importance"]
        assert imp["importance"].sum() == pytest.approx(1.0) and (imp["importance"] >= 0).all()
        assert imp["importance"].is_monotonic_decreasing
        assert "signal" in imp["feature"].head(2).tolist()

    def test_corrupted_or_mismatched_artifacts_are_clear_errors(self, kind, tmp_path):
        ranker = fitted(kind)
        ranker.save(tmp_path / "ok")
        files = [p.name for p in (tmp_path / "ok").iterdir() if p.name != MANIFEST]

        def copy(name: str) -> Path:
            target = tmp_path / name
            target.mkdir()
            for p in (tmp_path / "ok").iterdir():
                (target / p.name).write_bytes(p.read_bytes())
            return target

        flipped = copy("flipped")  # a damaged model file: the checksum catches it
        data = bytearray((flipped / files[0]).read_bytes())
        data[len(data) // 2] ^= 0xFF
        (flipped / files[0]).write_bytes(bytes(data))
        with pytest.raises(ArtifactError, match="checksum"):
            Ranker.load(flipped)

        forged = copy("forged")  # garbage whose checksum was updated too: the reader still refuses it
        manifest = json.loads((forged / MANIFEST).read_text())
        for name in files:
            (forged / name).write_bytes(b"not a model")
            manifest["files"][name]["sha256"] = __import__("hashlib").sha256(b"not a model").hexdigest()
        (forged / MANIFEST).write_text(json.dumps(manifest))
        with pytest.raises(ArtifactError):
            Ranker.load(forged)

        missing = copy("missing")
        (missing / files[0]).unlink()
        with pytest.raises(ArtifactError, match="missing"):
            Ranker.load(missing)

        garbled = copy("garbled")
        (garbled / MANIFEST).write_text("{not json")
        with pytest.raises(ArtifactError, match="JSON"):
            Ranker.load(garbled)

        future = copy("future")
        manifest = json.loads((future / MANIFEST).read_text())
        manifest["version"] = 99
        (future / MANIFEST).write_text(json.dumps(manifest))
        with pytest.raises(ArtifactError, match="version"):
            Ranker.load(future)

        other = next(cls for k, cls in RANKERS.items() if k != kind)
        with pytest.raises(ArtifactError, match="not a"):
            other.load(tmp_path / "ok")
        with pytest.raises(ArtifactError, match="manifest"):
            Ranker.load(tmp_path / "nowhere")
        assert issubclass(ArtifactError, DataError)

    def test_predicting_without_a_trained_feature_is_a_clear_error(self, kind):
        features = TEST.features
        frame = features.frame.drop(columns=["signal"])
        broken = FeatureTable(rows=features.rows, frame=frame, sparse=features.sparse,
                              feature_set=features.feature_set.without(["signal"]))
        with pytest.raises(DataError, match="signal"):
            fitted(kind).predict_proba(broken)

    def test_fit_validates_the_table(self, kind):
        ranker = make_ranker(kind)
        with pytest.raises(TypeError, match="TrainingTable"):
            ranker.fit(TRAIN.features)
        small = TRAIN.take(np.arange(200))
        one_class = TrainingTable(small.features, np.ones(200, dtype=np.int8), small.weight, {}, {}, (None, None))
        with pytest.raises(DataError, match="both classes"):
            ranker.fit(one_class)
        bad_weight = TrainingTable(small.features, small.label, -small.weight, {}, {}, (None, None))
        with pytest.raises(DataError, match="weight"):
            ranker.fit(bad_weight)

    def test_fit_is_seeded_and_uses_sample_weights(self, kind):
        # the same rows again with flipped labels but zero weight must change nothing essential
        n = len(TRAIN)
        both = TrainingTable(TRAIN.features.take(np.r_[np.arange(n), np.arange(n)]),
                             np.r_[TRAIN.label, 1 - TRAIN.label].astype(np.int8),
                             np.r_[TRAIN.weight, np.zeros(n)], {}, {}, (None, None))
        a = make_ranker(kind, seed=7).fit(both).predict_proba(TEST.features)
        b = make_ranker(kind, seed=7).fit(both).predict_proba(TEST.features)
        np.testing.assert_array_equal(a, b)
        assert auc_score(a, TEST.label) > 0.9


# ---------------------------------------------------------------- ranker-specific
def test_logistic_explanation_is_coefficient_times_value():
    ranker = fitted("logistic")
    out = ranker.explain(TEST.features, 5, top=100)
    p = ranker.predict_proba(TEST.features)[5]
    assert out.attrs["baseline"] + out["contribution"].sum() == pytest.approx(math.log(p / (1 - p)))
    coefs = ranker.coefficients()
    assert {"color=red", "signal", "gappy (missing)"} <= set(coefs["column"])
    assert coefs.set_index("column").loc["color=red", "coefficient"] > 1
    assert "user_id" not in ranker.features_["categorical"]  # high-cardinality ids are left out


def test_forest_matches_scikit_learn_and_path_contributions_add_up():
    from sklearn.ensemble import RandomForestClassifier

    ranker = fitted("forest")
    x = ranker.encoder_.matrix(TEST.frame).astype(np.float32)
    sk = RandomForestClassifier(n_estimators=30, max_depth=8, min_samples_leaf=5, max_features="sqrt",
                                bootstrap=True, n_jobs=1, random_state=0)
    sk.fit(ranker.encoder_.matrix(TRAIN.frame).astype(np.float32), TRAIN.label, sample_weight=TRAIN.weight)
    np.testing.assert_allclose(ranker.predict_proba(TEST.features), sk.predict_proba(x)[:, 1], atol=1e-12)
    for row in (0, 7):
        out = ranker.explain(TEST.features, row, top=100)
        assert out.attrs["baseline"] + out["contribution"].sum() == pytest.approx(out.attrs["prediction"], abs=1e-9)


def test_boosting_shap_values_add_up_and_early_stopping_stops():
    ranker = fitted("boosting")
    out = ranker.explain(TEST.features, 4, top=100)
    p = out.attrs["prediction"]
    assert out.attrs["baseline"] + out["contribution"].sum() == pytest.approx(math.log(p / (1 - p)), abs=1e-6)
    assert 1 <= ranker.best_iteration_ < 300  # stopped on the latest 10% of rows
    given = BoostingRanker(n_estimators=300, learning_rate=0.1, min_child_samples=10, n_jobs=1).fit(TRAIN, valid=TEST)
    assert given.best_iteration_ < 300 and auc_score(given.predict_proba(TEST.features), TEST.label) > 0.9


def _one_moment(table: TrainingTable) -> TrainingTable:
    """The table with every row at one moment, as holdout rows are (no time cut can stop on them)."""
    rows = table.features.rows.assign(timestamp=pd.Timestamp("2025-02-01"))
    features = FeatureTable(rows=rows, frame=table.features.frame, sparse=table.features.sparse,
                            feature_set=table.features.feature_set)
    return TrainingTable(features, table.label, table.weight, {}, {}, (None, None))


def test_boosting_stops_on_a_random_part_of_the_members_when_rows_share_one_moment():
    from recsys.ranking.base import member_holdout

    members = _one_moment(TRAIN).features.rows["user_id"].to_numpy()
    train, valid = member_holdout(members, 0.1, seed=3)
    assert not set(members[train]) & set(members[valid]) and len(set(members[valid])) == 6  # 10% of 60 members
    assert np.array_equal(np.sort(np.r_[train, valid]), np.arange(len(members)))
    again = member_holdout(members, 0.1, seed=3)
    assert np.array_equal(again[1], valid)  # seeded
    ranker = BoostingRanker(n_estimators=300, learning_rate=0.1, min_child_samples=10, n_jobs=1).fit(_one_moment(TRAIN))
    assert 1 <= ranker.best_iteration_ < 300  # it stopped early (before: all 300 rounds, no stopping fold)
    assert auc_score(ranker.predict_proba(TEST.features), TEST.label) > 0.9


def test_boosting_lambdarank_orders_each_members_rows(tmp_path):
    ranker = BoostingRanker(n_estimators=200, learning_rate=0.1, min_child_samples=10, n_jobs=1,
                            objective="lambdarank").fit(_one_moment(TRAIN))
    assert 1 <= ranker.best_iteration_ < 200
    p = ranker.predict_proba(TEST.features)
    assert ((p > 0) & (p < 1)).all() and auc_score(p, TEST.label) > 0.9  # a sigmoid of the ranking score
    out = ranker.explain(TEST.features, 4, top=100)
    assert out.attrs["units"] == "ranking score"
    again = Ranker.load(ranker.save(tmp_path / "lambdarank"))
    np.testing.assert_array_equal(again.predict_proba(TEST.features), p)
    with pytest.raises(ValueError, match="objective"):
        BoostingRanker(objective="poisson").fit(TRAIN)


def test_boosting_refuses_a_tampered_model_text_with_a_valid_checksum(tmp_path):
    """LightGBM trusts its files (a bad child index reads out of bounds): the loader checks every tree."""
    import hashlib

    fitted("boosting").save(tmp_path / "ok")
    text = (tmp_path / "ok" / "lightgbm.txt").read_text()
    first = next(line for line in text.splitlines() if line.startswith("left_child="))
    tampered = {
        "child": text.replace(first, first.rsplit(" ", 1)[0] + " 99", 1),
        "short": text.replace(first, first.rsplit(" ", 1)[0], 1),
        "features": text.replace("max_feature_idx=", "max_feature_idx=1", 1),
    }
    for name, body in tampered.items():
        target = tmp_path / name
        target.mkdir()
        for p in (tmp_path / "ok").iterdir():
            (target / p.name).write_bytes(p.read_bytes())
        (target / "lightgbm.txt").write_text(body)
        manifest = json.loads((target / MANIFEST).read_text())
        manifest["files"]["lightgbm.txt"]["sha256"] = hashlib.sha256(body.encode()).hexdigest()
        (target / MANIFEST).write_text(json.dumps(manifest))
        with pytest.raises(ArtifactError, match="lightgbm.txt"):
            Ranker.load(target)


def test_deep_ranker_stops_early_keeps_the_best_epoch_and_reports_history():
    ranker = fitted("deep")
    assert ranker.device_ == "cpu"
    losses = [h["valid_loss"] for h in ranker.history_]
    assert len(losses) <= 40 and ranker.best_epoch_ == int(np.argmin(losses)) + 1
    assert set(ranker.features_["sparse"]) == {"history_items", "item_tags"}
    assert "color" in ranker.features_["categorical"] and "user_id" not in ranker.features_["categorical"]
    with pytest.raises(ValueError, match="device"):
        DeepRanker(device="tpu").fit(TRAIN.take(np.arange(300)))


def test_deep_ranker_embeds_ids_and_lists_when_asked():
    ranker = DeepRanker(hidden=(16, 8), embedding_dim=4, max_epochs=2, exclude=(), device="cpu", n_threads=1).fit(TRAIN)
    assert {"user_id", "item_id"} <= set(ranker.features_["categorical"])
    names = {n for n, _ in ranker.net_.named_parameters()}
    assert "bags.0.weight" in names and "embeddings.0.weight" in names
    explained = ranker.explain(TEST.features, 0, top=100)
    assert {"history_items", "item_tags", "user_id"} <= set(explained["feature"])
    value = explained.set_index("feature").loc["item_tags", "value"]
    assert value == "(none)" or set(value.split(", ")) <= set(TAGS)


def test_encoder_imputes_standardises_and_round_trips_through_json():
    enc = TabularEncoder(categorical="mixed", onehot_max_levels=4, log_skewed=True).fit(TRAIN.features)
    assert enc.onehot_ == ["color"] and set(enc.coded_) == {"shape", "user_id", "item_id"}
    assert enc.missing_ == ["gappy"] and enc.log_ == ["count"]
    dense = enc.dense_matrix(TRAIN.frame)
    np.testing.assert_allclose(dense.mean(axis=0), 0.0, atol=1e-9)
    assert np.isfinite(dense).all()
    codes = enc.code_matrix(pd.DataFrame({"shape": ["shape3", "unseen", None], "user_id": ["u1", "u1", "zz"],
                                          "item_id": ["i1", None, "i2"]}))
    assert codes[1, 0] == 0 and codes[2, 0] == 0 and codes[2, 1] == 0 and codes[0, 0] > 0
    onehot = enc.onehot_matrix(pd.DataFrame({"color": ["red", "purple"]})).toarray()
    assert onehot.shape == (2, 3) and onehot[0].sum() == 1 and onehot[1].sum() == 0
    again = TabularEncoder.from_dict(json.loads(json.dumps(enc.to_dict())))
    np.testing.assert_array_equal(again.matrix(TEST.frame), enc.matrix(TEST.frame))
    assert [c.name for c in again.columns] == [c.name for c in enc.columns]
    big = pd.concat([TEST.frame] * 4, ignore_index=True)  # > 2,048 rows: the vectorised path
    np.testing.assert_array_equal(enc.code_matrix(big)[: len(TEST)], enc.code_matrix(TEST.frame))
    mixed = pd.DataFrame({"shape": pd.Series(["shape1", 3, None, float("nan")], dtype=object),
                          "user_id": ["u1"] * 4, "item_id": ["i1"] * 4})
    np.testing.assert_array_equal(enc.code_matrix(mixed), enc.code_matrix(pd.concat([mixed] * 600))[:4])
    capped = TabularEncoder(categorical="codes", max_categories=10).fit(TRAIN.features)
    assert set(capped.coded_) == {"color", "shape"}
    with pytest.raises(NotFittedError):
        TabularEncoder().dense_matrix(TRAIN.frame)


def test_time_holdout_takes_the_latest_rows():
    times = pd.date_range("2025-01-01", periods=100, freq="h").to_numpy()
    train, valid = time_holdout(times[::-1], 0.1)
    assert len(valid) == 10 and times[::-1][valid].min() > times[::-1][train].max()
    tied = np.repeat(times[:5], 20)
    _, valid = time_holdout(tied, 0.1)
    assert len(valid) == 20  # the whole last moment, never half of it
    with pytest.raises(ValueError):
        time_holdout(np.repeat(times[:1], 10), 0.1)


@pytest.mark.parametrize("kind", KINDS)
def test_rankers_on_real_feature_tables(kind, sample_tables):
    train, test = sample_tables
    small = {"forest": dict(n_estimators=20, n_jobs=1), "boosting": dict(n_estimators=100, n_jobs=1),
             "deep": dict(max_epochs=10, device="cpu", n_threads=1)}.get(kind, {})  # 3 epochs: 0.57-0.65 AUC
    ranker = RANKERS.create(kind, **small).fit(train)
    t = time.perf_counter()
    p = ranker.predict_proba(test.features)
    assert time.perf_counter() - t < 10
    assert auc_score(p, test.label) > 0.6
    out = ranker.explain(test.features, int(np.argmax(p)))
    assert len(out) == 10 and out["feature"].isin(train.features.feature_set.names()).all()
    assert not out["value"].isna().any()


@pytest.fixture(scope="module")
def sample_tables():
    """Training and later test rows from a tiny simulated world, through the real FeatureBuilder."""
    from recsys.data.synthetic import SyntheticWorld, WorldConfig
    from recsys.features import FeatureBuilder
    from recsys.training_table import TrainingConfig, build_training_table

    data = SyntheticWorld(WorldConfig(seed=3, n_users=150, n_movies=120, n_shows=8, days=60)).simulate()
    builder = FeatureBuilder(use_embeddings=False).fit(data)
    cut = data.end.floor("D") - pd.Timedelta(days=10)
    train = build_training_table(data, None, cut, TrainingConfig(seed=0), builder)
    test = build_training_table(data, cut, None, TrainingConfig(negatives_per_positive=None), builder)
    return train, test
