"""The models an evaluation can compare, by name: every candidate source (SOURCES), the blend, every
ranker (RANKERS), the pipeline (the default configuration, whose ranker is chosen per dataset), random,
and the oracle where the data is a simulated world.

The command line's `--models`, the app's evaluation button and the simulator's offline view all
build their policies here.
"""

from __future__ import annotations

from typing import Callable

__all__ = ["model_names", "default_models", "build_policies", "online_specs", "BlendPolicy", "PIPELINE"]

BASELINES = ("random", "blend", "oracle")
#: The default configuration as `recsys train` fits it (`ranker="auto"`), beside each ranker's fixed row.
PIPELINE = "pipeline"


def model_names() -> list[str]:
    """Every name `build_policies` understands."""
    from ..candidates import SOURCES
    from ..ranking import RANKERS

    return ["random", *SOURCES.names(), "blend", *RANKERS.names(), PIPELINE, "oracle"]


def default_models(has_world: bool) -> list[str]:
    """What `recsys evaluate` compares by default: random, popularity, the default pipeline's sources, the
    blend, every ranker, the default pipeline, and the oracle when there is a world."""
    from ..pipeline import RecommenderConfig
    from ..ranking import RANKERS

    sources = [s for s in RecommenderConfig().sources if s != "popularity"]
    return ["random", "popularity", *sources, "blend", *RANKERS.names(), PIPELINE] + \
        (["oracle"] if has_world else [])


def build_policies(names: list[str], spec: str, protocol: str, seed: int) -> dict[str, Callable]:
    """Evaluation policies (factories) by name; the rankers share one candidate stage per fold."""
    from ..candidates import SOURCES
    from ..data.loaders import world_of
    from ..pipeline import RecommenderConfig
    from ..ranking import RANKERS
    from .protocol import GeneratorPolicy, OraclePolicy, RandomPolicy, RecommenderPolicy, SharedStages

    shared = SharedStages()
    rows = "holdout" if protocol == "stratified" else RecommenderConfig().training_rows
    # tuning validates on a split like the protocol's own: a per-user random share, or the latest days
    validation = "holdout" if protocol == "stratified" else "temporal"
    default_sources = RecommenderConfig().sources
    policies: dict[str, Callable] = {}
    for name in names:
        if name == "random":
            policies[name] = lambda: RandomPolicy(seed)
        elif name in SOURCES:
            policies[name] = lambda name=name: GeneratorPolicy((name,), seed, training_rows=rows,
                                                               validation=validation)
        elif name == "blend":
            policies[name] = lambda: BlendPolicy(default_sources, seed, training_rows=rows, validation=validation)
        elif name in RANKERS:
            policies[name] = lambda name=name: RecommenderPolicy(
                RecommenderConfig(ranker=name, training_rows=rows, validation=validation, seed=seed), shared)
        elif name == PIPELINE:
            policies[name] = lambda: RecommenderPolicy(
                RecommenderConfig(training_rows=rows, validation=validation, seed=seed), shared)
        elif name == "oracle":
            world = world_of(spec)
            if world is None:
                raise ValueError("'oracle' needs the simulated world's ground truth: use --data sample or a "
                                 "folder written by `recsys generate`")
            policies[name] = lambda world=world: OraclePolicy(world)
        else:
            raise ValueError(f"unknown model {name!r}; choose from {', '.join(model_names())}")
    return policies


class BlendPolicy:
    """The blend of several sources used alone, as `GeneratorPolicy` builds it, but with its quotas learned
    for NDCG@k of its own order on the tuning's validation split when tuning runs (`learned_quotas`; lists of
    `n`, what the evaluation asks for), so on validation it is never below its best member."""

    def __init__(self, sources: tuple[str, ...], seed: int = 0, training_rows: str = "candidates",
                 tune: str = "auto", n: int = 50, validation: str = "auto") -> None:
        self.sources, self.seed, self.training_rows, self.tune, self.n = sources, seed, training_rows, tune, n
        self.validation = validation

    def fit(self, train) -> "BlendPolicy":
        from ..candidates import BlendGenerator
        from ..pipeline import RecommenderConfig, fit_generator, learned_quotas, tuned_source_params

        config = RecommenderConfig(sources=tuple(self.sources), training_rows=self.training_rows, tune=self.tune,
                                   validation=self.validation, seed=self.seed)
        self.source_params_, self.tuning_ = tuned_source_params(config, train)
        self.quotas_, log = learned_quotas(config, train, self.source_params_, "ndcg", self.n)
        if log:
            self.tuning_ = dict(self.tuning_, quotas=log)
        gens = [fit_generator(s, self.seed, self.source_params_.get(s), train) for s in self.sources]
        self.model_ = BlendGenerator(generators=tuple(gens), quotas=self.quotas_, prefit=True).fit(train)
        return self

    def recommend(self, user_ids, k, now, users):
        return self.model_.recommend(user_ids, n=k, now=now, users=users)[
            ["user_id", "item_id", "rank", "score"]]


def online_specs(names: list[str], seed: int, has_world: bool) -> dict[str, object]:
    """The online twin (recsys.simulation.policies) of each evaluation model, for the off-policy replay: the
    baselines by name, a ranker as the pipeline with it, a source or the blend as a ranker-less pipeline
    serving its candidates in order; `logging` joins where there is a world. Models without a twin (the
    oracle without a world) are left out."""
    from ..candidates import SOURCES
    from ..pipeline import Recommender, RecommenderConfig
    from ..ranking import RANKERS

    specs: dict[str, object] = {}
    for name in names:
        if name in ("random", "popularity") or (name == "oracle" and has_world):
            specs[name] = name
        elif name in RANKERS:
            specs[name] = Recommender(RecommenderConfig(ranker=name, seed=seed))
        elif name == PIPELINE:
            specs[name] = Recommender(RecommenderConfig(seed=seed))
        elif name in SOURCES:
            specs[name] = Recommender(RecommenderConfig(ranker=None, sources=(name,), seed=seed))
        elif name == "blend":
            specs[name] = Recommender(RecommenderConfig(ranker=None, seed=seed))
    if has_world:
        specs["logging"] = "logging"
    return specs
