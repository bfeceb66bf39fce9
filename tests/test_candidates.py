"""Candidate generators: one shared contract every generator passes, plus hand-computed specifics."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recsys.candidates import (
    ALSGenerator, BlendGenerator, BPRGenerator, CandidateGenerator, ContentGenerator, EASEGenerator,
    InteractionConfig, ItemKNNGenerator, NotFittedError, PopularityGenerator, blend_frames, load_generator,
)
from recsys.candidates.base import RECOMMENDATION_COLUMNS, SOURCES, top_n
from recsys.data import Dataset, DataError
from recsys.data.synthetic import SyntheticWorld, WorldConfig

T0 = pd.Timestamp("2025-02-01")
NOW = pd.Timestamp("2025-03-01")
HORROR = ["h1", "h2", "h3", "h4"]
COMEDY = ["c1", "c2", "c3", "c4"]


# ------------------------------------------------------------------ tiny world
def _tiny() -> Dataset:
    """Two taste groups with a known answer: horror fans a1-a3 all watched h2, a4 did not; comedy
    fans b1-b3 all watched c2, b4 did not. k1 is a kid, z has no events, imp only saw rows."""
    items = []
    for k, item in enumerate(HORROR):
        items.append(dict(item_id=item, title=f"Night Terror {k + 1}", genres=["Horror", "Thriller"],
                          tags=["scary", "dark"], actors=["Ava Stone", f"Horror Actor {k}"], director="Dir H",
                          original_language="English", maturity_rating="R", public_rating=6.5,
                          synopsis="A haunted house hides a killer who stalks a terrified family at night.",
                          duration_min=100.0, added_at=pd.Timestamp("2024-06-01")))
    for k, item in enumerate(COMEDY):
        items.append(dict(item_id=item, title=f"Silly Summer {k + 1}", genres=["Comedy", "Family"],
                          tags=["funny", "feel-good"], actors=["Bo Bright", f"Comedy Actor {k}"], director="Dir C",
                          original_language="English", maturity_rating="PG", public_rating=6.5,
                          synopsis="A clumsy dad and his kids go on a hilarious road trip full of mishaps.",
                          duration_min=90.0, added_at=pd.Timestamp("2024-06-01")))
    for k in range(2):
        items.append(dict(item_id=f"k{k + 1}", title=f"Little Dragon {k + 1}", genres=["Animation", "Family"],
                          tags=["colourful"], actors=["Kim Ha"], director="Dir K", original_language="Korean",
                          maturity_rating="G", public_rating=7.0,
                          synopsis="A tiny dragon learns to fly with help from forest friends.", duration_min=80.0,
                          added_at=pd.Timestamp("2024-06-01")))
    items.append(dict(item_id="new1", title="Coming Soon", genres=["Comedy"], tags=["funny"], actors=["Bo Bright"],
                      director="Dir C", original_language="English", maturity_rating="PG", public_rating=6.0,
                      synopsis="A brand new comedy about a wedding that goes wrong.", duration_min=95.0,
                      added_at=pd.Timestamp("2025-03-10")))
    items = pd.DataFrame(items)
    users = pd.DataFrame({
        "user_id": ["a1", "a2", "a3", "a4", "b1", "b2", "b3", "b4", "k1", "z", "imp"],
        "age": [30, 35, 40, 28, 33, 45, 38, 29, 8, 40, 30],
        "gender": ["F", "M", "F", "M", "F", "M", "F", "M", "F", "M", "F"],
        "language": ["English"] * 8 + ["Korean", "English", "English"],
    })
    watched = {"a1": ["h1", "h2", "h3"], "a2": ["h1", "h2", "h4"], "a3": ["h2", "h3", "h4"], "a4": ["h1", "h3", "h4"],
               "b1": ["c1", "c2", "c3"], "b2": ["c1", "c2", "c4"], "b3": ["c2", "c3", "c4"], "b4": ["c1", "c3", "c4"],
               "k1": ["k1"]}
    rows = []
    for u, (user, titles) in enumerate(watched.items()):
        for k, item in enumerate(titles):
            rows.append(dict(user_id=user, item_id=item, timestamp=T0 + pd.Timedelta(days=k + 1, hours=u),
                             watch_fraction=0.95))
    rows.append(dict(user_id="a4", item_id="c1", timestamp=T0 + pd.Timedelta(days=5), watch_fraction=0.5))
    rows.append(dict(user_id="imp", item_id="c3", timestamp=T0 + pd.Timedelta(days=6), watch_fraction=0.0))
    rows.append(dict(user_id="imp", item_id="h1", timestamp=T0 + pd.Timedelta(days=6), watch_fraction=0.0))
    return Dataset.from_frames(users, items, pd.DataFrame(rows), name="tiny")


@pytest.fixture(scope="module", autouse=True)
def _embedding_cache(tmp_path_factory):
    """Synopsis embeddings go to a temporary cache, not the working tree's .cache/."""
    import os

    old = os.environ.get("RECSYS_CACHE_DIR")
    os.environ["RECSYS_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if old is None:
        os.environ.pop("RECSYS_CACHE_DIR", None)
    else:
        os.environ["RECSYS_CACHE_DIR"] = old


@pytest.fixture(scope="module")
def tiny() -> Dataset:
    return _tiny()


def _two_tower(**kw):
    from recsys.candidates.two_tower import TwoTowerGenerator

    return TwoTowerGenerator(dim=16, hidden=32, epochs=60, batch_size=8, learning_rate=0.02, use_text=False,
                             temperature=0.2, threads=1, **kw)


# name -> (factory, personal: knows the answer for a4/b4, scores users without history)
GENERATORS = {
    "popularity": (lambda: PopularityGenerator(), False, True),
    "als": (lambda: ALSGenerator(factors=4, regularization=0.1, alpha=5.0, iterations=20), True, False),
    "bpr": (lambda: BPRGenerator(factors=4, learning_rate=0.05, regularization=0.001, iterations=300), True, False),
    "ease": (lambda: EASEGenerator(l2=1.0), True, False),
    "itemknn": (lambda: ItemKNNGenerator(neighbours=5, shrink=0.0), True, False),
    "content": (lambda: ContentGenerator(popularity_weight=0.0), True, True),
    "two_tower": (_two_tower, True, True),
    "blend": (lambda: BlendGenerator(generators=[PopularityGenerator(), ItemKNNGenerator(neighbours=5, shrink=0.0)],
                                     quotas={"popularity": 1.0, "itemknn": 2.0}), True, True),
}


def test_every_registered_source_runs_the_contract():
    """A source added to the registry without contract-test settings here fails this test."""
    assert set(GENERATORS) - {"blend"} == set(SOURCES.names())
    for name in SOURCES.names():
        assert SOURCES.get(name).source == name


@pytest.fixture(scope="module")
def fitted(tiny):
    return {name: factory().fit(tiny) for name, (factory, _, _) in GENERATORS.items()}


@pytest.mark.parametrize("name", list(GENERATORS))
class TestContract:
    """Every generator: output shape, known answer, cold users, masks, errors and save/load."""

    def test_output_frame(self, name, fitted, tiny):
        recs = fitted[name].recommend(["a1", "b1"], n=3, now=NOW)
        assert list(recs.columns[:5]) == list(RECOMMENDATION_COLUMNS)
        assert recs["user_id"].tolist()[:1] == ["a1"]
        assert recs.groupby("user_id").size().max() <= 3
        for _, group in recs.groupby("user_id"):
            assert group["rank"].tolist() == list(range(1, len(group) + 1))
            assert (np.diff(group["score"].to_numpy()) <= 1e-12).all() or name == "blend"
        assert not recs.duplicated(["user_id", "item_id"]).any()
        assert set(recs["item_id"]) <= set(tiny.item_ids)

    def test_known_answer(self, name, fitted):
        _, personal, _ = GENERATORS[name]
        if not personal:
            pytest.skip("not personal")
        recs = fitted[name].recommend(["a4", "b4"], n=3, now=NOW)
        recs = recs[recs["item_id"] != "c1"]  # a4 half-watched c1: "continue watching" may come first
        top = recs.groupby("user_id")["item_id"].agg(lambda s: list(s)[:2])
        assert "h2" in top["a4"], top.to_dict()
        assert "c2" in top["b4"], top.to_dict()

    def test_exclude_seen(self, name, fitted, tiny):
        model = fitted[name]
        recs = model.recommend(["a1", "a4"], n=20, now=NOW)
        assert not ({"h1", "h2", "h3"} & set(recs.loc[recs.user_id == "a1", "item_id"]))
        # a half-watched title is not "seen": it may come back (continue watching)
        assert not ({"h1", "h3", "h4"} & set(recs.loc[recs.user_id == "a4", "item_id"]))
        everything = model.recommend(["a1"], n=20, exclude_seen=False)
        assert len(everything) >= len(recs[recs.user_id == "a1"])

    def test_unknown_and_empty_history(self, name, fitted):
        _, _, scores_cold = GENERATORS[name]
        recs = fitted[name].recommend(["ghost", "z", "imp"], n=5, now=NOW)
        if scores_cold:
            assert set(recs["user_id"]) >= {"z", "imp"}
        else:
            assert recs.empty
        assert list(recs.columns[:5]) == list(RECOMMENDATION_COLUMNS)
        assert fitted[name].recommend([], n=5).empty

    def test_availability_and_age(self, name, fitted):
        model = fitted[name]
        assert "new1" not in set(model.recommend(["b1", "b4", "z"], n=20, now=NOW)["item_id"])
        kid = model.recommend(["k1"], n=20, now=NOW)
        assert not (set(HORROR) & set(kid["item_id"]))  # R-rated, k1 is 8
        new_kid = model.recommend(["newkid"], n=20, now=NOW, users=pd.DataFrame({"user_id": ["newkid"], "age": [9]}))
        assert not (set(HORROR) & set(new_kid["item_id"]))

    def test_fit_without_events(self, name, tiny):
        empty = tiny.as_of("2025-01-01")  # before the first event: users and titles, no events
        recs = GENERATORS[name][0]().fit(empty).recommend(["a1", "ghost"], n=3, now=NOW)
        assert list(recs.columns[:5]) == list(RECOMMENDATION_COLUMNS)
        assert recs.groupby("user_id").size().max() <= 3 if len(recs) else True

    def test_unfitted_raises(self, name):
        model = GENERATORS[name][0]()
        with pytest.raises(NotFittedError, match="not fitted"):
            model.recommend(["a1"], n=3)
        with pytest.raises(NotFittedError):
            model.save("unused")

    def test_save_load_round_trip(self, name, fitted, tmp_path):
        model = fitted[name]
        model.save(tmp_path / name)
        manifest = json.loads((tmp_path / name / "manifest.json").read_text())
        assert manifest["class"] == type(model).__name__
        assert not list((tmp_path / name).rglob("*.pkl")) and not list((tmp_path / name).rglob("*.tmp"))
        again = load_generator(tmp_path / name)
        assert type(again) is type(model)
        users = ["a1", "a4", "b4", "k1", "z", "ghost"]
        pd.testing.assert_frame_equal(model.recommend(users, n=5, now=NOW), again.recommend(users, n=5, now=NOW))


# ------------------------------------------------------------------ specifics
def test_fit_rejects_bad_input(tiny):
    with pytest.raises(TypeError):
        PopularityGenerator().fit(pd.DataFrame())
    with pytest.raises(ValueError, match="half_life_days"):
        PopularityGenerator(half_life_days=0).fit(tiny)
    with pytest.raises(ValueError, match="factors"):
        ALSGenerator(factors=0).fit(tiny)
    with pytest.raises(ValueError, match="n must be"):
        PopularityGenerator().fit(tiny).recommend(["a1"], n=0)


def test_bpr_adds_log_recent_popularity_to_the_item_bias(tiny):
    raw = BPRGenerator(factors=4, popularity_weight=0).fit(tiny)
    corrected = BPRGenerator(factors=4).fit(tiny)
    popularity = PopularityGenerator().fit(tiny).item_scores_
    np.testing.assert_allclose(corrected.item_factors_[:, :-1], raw.item_factors_[:, :-1])
    np.testing.assert_allclose(corrected.item_factors_[:, -1] - raw.item_factors_[:, -1], np.log1p(popularity))
    assert (corrected.user_factors_[corrected.has_history_, -1] == 1.0).all()  # the bias column scores as is
    with pytest.raises(ValueError, match="popularity_window_days"):
        BPRGenerator(popularity_window_days=0).fit(tiny)


def test_popularity_decay_is_hand_computed():
    items = pd.DataFrame({"item_id": ["A", "B", "C"], "title": ["A", "B", "C"]})
    end = pd.Timestamp("2025-01-31")
    events = pd.DataFrame({
        "user_id": ["u1", "u2", "u3", "u4", "u5"],
        "item_id": ["A", "A", "B", "C", "B"],
        "timestamp": [end, end - pd.Timedelta(days=7), end - pd.Timedelta(days=3.5), end - pd.Timedelta(days=40),
                      end - pd.Timedelta(days=1)],
        "watch_fraction": [0.9, 0.95, 0.99, 0.9, 0.5],  # the last is a half-watched play
    })
    data = Dataset.from_frames(None, items, events)
    model = PopularityGenerator(window_days=28, half_life_days=7).fit(data)
    expected = {"A": 1.0 + 0.5, "B": 2 ** -0.5 + 0.25 * 2 ** (-1 / 7), "C": 0.0}
    got = dict(zip(model.item_ids_, model.item_scores_))
    assert got == pytest.approx(expected)
    recs = model.recommend(["nobody"], n=3)
    assert recs["item_id"].tolist() == ["A", "B", "C"]


def test_ease_matches_closed_form(tiny):
    model = EASEGenerator(l2=2.0, binary=True).fit(tiny)
    X = np.zeros((len(tiny.user_ids), len(tiny.item_ids)))
    plays = tiny.events[tiny.events.watch_fraction >= 0.1]
    X[tiny.user_index(plays.user_id), tiny.item_index(plays.item_id)] = 1.0
    P = np.linalg.inv(X.T @ X + 2.0 * np.eye(X.shape[1]))
    B = np.eye(X.shape[1]) - P / np.diag(P)
    np.fill_diagonal(B, 0.0)
    np.testing.assert_allclose(model.item_weights_, B, atol=1e-10)
    scores = model.score_items(["a4"]).to_numpy()[0]
    np.testing.assert_allclose(scores, X[tiny.user_index(["a4"])[0]] @ B, atol=1e-10)


def test_item_to_item_explains_because_you_watched(fitted):
    why = fitted["itemknn"].explain(["a4", "ghost"], ["h2", "h2"])
    assert why.loc[0, "because_item_id"] in {"h1", "h3", "h4"}
    assert why.loc[0, "reason"].startswith("Because you watched Night Terror")
    assert why.loc[1, "reason"] == "" and why.loc[1, "because_item_id"] is None
    ease = fitted["ease"].explain(["b4"], ["c2"])
    assert ease.loc[0, "because_item_id"] in {"c1", "c3", "c4"}


def test_top_n_ties_break_by_lower_index():
    scores = np.array([[1.0, 3.0, 3.0, 3.0, -np.inf], [0.0, 0.0, 0.0, 0.0, 0.0]])
    idx, vals = top_n(scores, 2)
    assert idx.tolist() == [[1, 2], [0, 1]]
    assert vals[0].tolist() == [3.0, 3.0]


def test_blend_dedupes_and_honours_quotas():
    a = pd.DataFrame({"user_id": "u", "item_id": ["x1", "x2", "x3", "x4", "x5"], "score": [5., 4, 3, 2, 1],
                      "rank": [1, 2, 3, 4, 5]})
    b = pd.DataFrame({"user_id": "u", "item_id": ["x1", "y1", "y2", "y3"], "score": [.9, .8, .7, .6],
                      "rank": [1, 2, 3, 4]})
    equal = blend_frames({"a": a, "b": b}, n=4, quotas={"a": 1, "b": 1})
    assert set(equal["item_id"]) == {"x1", "x2", "y1", "x3"}
    assert not equal.duplicated(["user_id", "item_id"]).any()
    row = equal.set_index("item_id").loc["x1"]
    assert row["sources"] == "a|b" and row["source"] == "a" and row["rank"] == 1
    assert row["score_a"] == 5.0 and row["score_b"] == 0.9 and row["rank_b"] == 1
    assert np.isnan(equal.set_index("item_id").loc["x2", "score_b"])
    skewed = blend_frames({"a": a, "b": b}, n=4, quotas={"a": 3, "b": 1})
    assert set(skewed["item_id"]) == {"x1", "x2", "x3", "x4"}
    features_only = blend_frames({"a": a, "b": b}, n=10, quotas={"a": 1, "b": 0})
    assert set(features_only["item_id"]) == {"x1", "x2", "x3", "x4", "x5"}
    assert features_only["rank"].tolist() == [1, 2, 3, 4, 5]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.integers(0, 12), max_size=10, unique=True), min_size=1, max_size=4),
       st.lists(st.sampled_from([0.0, 0.5, 1.0, 3.0]), min_size=4, max_size=4), st.integers(1, 8))
def test_blend_properties(lists, shares, n):
    frames = {f"s{k}": pd.DataFrame({"user_id": "u", "item_id": [f"i{v}" for v in items],
                                     "score": -np.arange(len(items), dtype=float),
                                     "rank": np.arange(1, len(items) + 1)}) for k, items in enumerate(lists)}
    quotas = {f"s{k}": shares[k] for k in range(len(lists))}
    out = blend_frames(frames, n=n, quotas=quotas)
    offered = {f"i{v}" for k, items in enumerate(lists) if shares[k] > 0 for v in items}
    assert len(out) == min(n, len(offered))
    assert not out["item_id"].duplicated().any() and set(out["item_id"]) <= offered
    assert out["rank"].tolist() == list(range(1, len(out) + 1))
    assert all(src in sources.split("|") for src, sources in zip(out["source"], out["sources"]))
    assert (np.diff(out["score"].to_numpy()) <= 1e-12).all()


def test_blend_validates_sources(tiny):
    with pytest.raises(ValueError, match="distinct names"):
        BlendGenerator(generators=[PopularityGenerator(), PopularityGenerator()]).fit(tiny)
    with pytest.raises(ValueError, match="unknown source"):
        BlendGenerator(generators=[PopularityGenerator()], quotas={"als": 1.0}).fit(tiny)
    named = BlendGenerator(generators=[PopularityGenerator(), PopularityGenerator(name="recent", window_days=3)])
    recs = named.fit(tiny).recommend(["a1"], n=5)
    assert {"score_popularity", "rank_popularity", "score_recent", "rank_recent", "sources"} <= set(recs.columns)


def test_explicit_ratings_build_the_matrix():
    items = pd.DataFrame({"item_id": list("ABCD"), "title": list("ABCD")})
    events = pd.DataFrame({"user_id": ["1", "1", "2", "2", "3"], "item_id": ["A", "B", "A", "B", "A"],
                           "timestamp": pd.Timestamp("2020-01-01"), "rating": [5, 4, 5, 2, 5]})
    data = Dataset.from_frames(None, items, events)
    model = EASEGenerator(l2=1.0).fit(data)
    assert model.user_items_.toarray()[data.user_index(["2"])[0]].tolist() == [1.0, 0.5, 0.0, 0.0]
    recs = model.recommend(["3"], n=2)
    assert recs["item_id"].tolist()[0] == "B"  # rated items are "seen": A is excluded
    assert model.seen_.nnz == 5


# ------------------------------------------------------------------ cold start
@pytest.fixture(scope="module")
def small_world() -> Dataset:
    world = SyntheticWorld(WorldConfig(seed=4, n_users=40, n_movies=70, n_shows=2, days=14))
    return world.simulate()


@pytest.fixture(scope="module")
def content_model(small_world) -> ContentGenerator:
    return ContentGenerator().fit(small_world)


@pytest.mark.parametrize("genres", [["Horror", "Thriller"], ["Documentary"], ["animation", "Family"]])
def test_onboarding_top10_carries_picked_genres(content_model, genres):
    recs = content_model.recommend_for_profile(genres=genres, n=10)
    assert len(recs) == 10
    picked = {g.casefold() for g in genres}
    carries = recs["genres"].map(lambda gs: bool(picked & {g.casefold() for g in gs}))
    assert carries.sum() >= 8, recs[["title", "genres", "reason"]]
    for reason, ok in zip(recs["reason"], carries):
        if ok:
            assert reason.startswith("Matches your picked genres: ")
    assert (recs["rank"] == np.arange(1, 11)).all()


def test_onboarding_languages_titles_text_and_age(content_model, small_world):
    items = small_world.items
    korean = items.loc[items.original_language == "Korean", "title"].iloc[0]
    recs = content_model.recommend_for_profile(genres=["Drama"], languages=["Korean"], liked_titles=[korean],
                                               text="a ghost haunts an old house at midnight", n=10, age=10)
    assert korean not in set(recs["title"])
    rating = items.set_index("item_id").loc[recs["item_id"], "maturity_rating"]
    assert set(rating) <= {"G", "PG"}
    assert recs["reason"].str.len().gt(0).all()
    assert recs["reason"].str.contains("Korean|similar to|described").any()
    with pytest.raises(ValueError, match="unknown genre"):
        content_model.recommend_for_profile(genres=["Westerns"])
    nothing = content_model.recommend_for_profile(n=5)  # no picks at all: the overall prior
    assert len(nothing) == 5


def test_content_cold_member_gets_demographic_profile(content_model):
    users = pd.DataFrame({"user_id": ["new-kid", "new-adult"], "age": [9, 35], "language": ["English", "Korean"]})
    recs = content_model.recommend(["new-kid", "new-adult"], n=10, users=users)
    assert set(recs["user_id"]) == {"new-kid", "new-adult"}
    kid = recs[recs.user_id == "new-kid"]["item_id"]
    assert kid.map(dict(zip(content_model.item_ids_, content_model.item_min_age_))).max() <= 9


def test_embeddings_cache_and_normalise(tmp_path):
    from recsys.embeddings import TextEncoder, model_path

    assert (model_path() / "config.json").is_file()
    enc = TextEncoder(cache_dir=tmp_path)
    vecs = enc.encode(["a scary ghost story", "", "a scary ghost story"])
    assert vecs.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(vecs[0]), 1.0, rtol=1e-5)
    assert not vecs[1].any()
    assert len(list(tmp_path.rglob("*.npy"))) == 1
    again = TextEncoder(cache_dir=tmp_path).encode(["a scary ghost story"])
    np.testing.assert_array_equal(again[0], vecs[0])


def test_a_text_encodes_the_same_alone_and_among_others():
    """A vector depends on its text only, not on what else was missing from the cache (the same data and
    seed then give the same model whatever the cache held)."""
    from recsys.embeddings import TextEncoder

    enc = TextEncoder(cache=False)
    texts = ["a scary ghost story", "two detectives in a rainy city chase a thief across three continents", "love"]
    together = enc.encode(texts)
    for i, text in enumerate(texts):
        np.testing.assert_array_equal(enc.encode([text])[0], together[i])


def test_load_rejects_foreign_folders(tmp_path, fitted):
    with pytest.raises(DataError, match="manifest"):
        CandidateGenerator.load(tmp_path)
    fitted["popularity"].save(tmp_path / "pop")
    with pytest.raises(DataError, match="not a EASEGenerator"):
        EASEGenerator.load(tmp_path / "pop")


def test_interaction_weights_follow_labels(tiny):
    weights = ALSGenerator().fit(tiny).user_items_.toarray()
    a4 = tiny.user_index(["a4"])[0]
    c1, h1 = tiny.item_index(["c1", "h1"])
    assert weights[a4, c1] == pytest.approx(0.25)  # half-watched: partial weight
    assert weights[a4, h1] == pytest.approx((0.95 * 100 / 60) ** 0.5)  # duration weight, 60-min reference
    assert weights[tiny.user_index(["imp"])[0]].sum() == 0  # impressions carry no weight
    none = ALSGenerator(interactions=InteractionConfig(partial_weight=0.0)).fit(tiny).user_items_.toarray()
    assert none[a4, c1] == 0
    full = EASEGenerator().fit(tiny)
    recent = EASEGenerator(interactions=InteractionConfig(window_days=3)).fit(tiny)
    assert recent.user_items_.nnz < full.user_items_.nnz  # old events weigh nothing...
    assert recent.seen_.nnz == full.seen_.nnz  # ...but finished titles stay "seen"
    with pytest.raises(ValueError, match="window_days"):
        EASEGenerator(interactions=InteractionConfig(window_days=-1)).fit(tiny)


def test_a_members_scores_are_the_same_alone_and_in_a_batch(fitted, tiny):
    """Dense products run in fixed blocks: a member's raw scores do not depend on who else is asked."""
    members = list(tiny.users["user_id"])
    for name, gen in fitted.items():
        together = gen.score_items(members).to_numpy()
        for k, member in enumerate(members):
            np.testing.assert_array_equal(gen.score_items([member]).to_numpy()[0], together[k], err_msg=name)