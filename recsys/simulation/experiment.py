"""A simulated online A/B experiment over a future period of the simulated world.

Members are assigned to arms at random (seeded, independently per member, so the arm sizes vary
the way a real split does). Over `days` after the data ends they start sessions at their habitual
times and devices (`SyntheticWorld.sessions_between`); each arm's policy shows its list; the
world's behaviour model decides plays, watch time and binges (`SyntheticWorld.respond_many`); the
events feed back into the policy (`observe`) and into the member's state, so later sessions see
them. Nothing is re-trained unless `retrain_every_days` asks.

Sessions are processed in time slots (`slot_minutes`): the policy is asked once per slot and
device for all the members who start a session in it (a member with two sessions in one slot gets
them in successive rounds, the second after the first's feedback). Randomness: the assignment,
the sessions and each session's behaviour draw from separate streams of `seed`, so the same seed
gives identical results, and a member's sessions do not depend on the arm they are in.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable

import numpy as np
import pandas as pd

from ..data.dataset import Dataset
from .policies import OnlinePolicy, make_policy

__all__ = ["ExperimentConfig", "ExperimentResult", "run_experiment", "run_paired", "assign_arms", "session_outcomes"]

Progress = Callable[[str, float], None]


@dataclass(frozen=True)
class ExperimentConfig:
    """How the experiment runs. `start` defaults to the first full hour after the data ends."""

    users: int = 2000
    days: float = 7.0
    seed: int = 0
    k: int = 10
    shares: tuple[float, ...] | None = None  # per arm, in arm order; default: equal
    slot_minutes: int = 60
    start: str | None = None
    retrain_every_days: float | None = None
    finished_above: float = 0.8

    def validate(self, n_arms: int) -> None:
        if n_arms < 2:
            raise ValueError("an experiment needs at least two arms (a control and a treatment)")
        if isinstance(self.users, bool) or not isinstance(self.users, (int, np.integer)) or self.users < 2:
            raise ValueError(f"users must be an integer >= 2, got {self.users!r}")
        if not (isinstance(self.days, (int, float)) and 0 < self.days <= 365):
            raise ValueError(f"days must be a number in (0, 365], got {self.days!r}")
        if not (isinstance(self.k, (int, np.integer)) and 1 <= self.k <= 10):
            raise ValueError(f"k must be an integer from 1 to 10 (one row of the app), got {self.k!r}")
        if not (isinstance(self.slot_minutes, (int, np.integer)) and 1 <= self.slot_minutes <= 24 * 60):
            raise ValueError(f"slot_minutes must be an integer from 1 to 1440, got {self.slot_minutes!r}")
        if self.retrain_every_days is not None and not self.retrain_every_days > 0:
            raise ValueError(f"retrain_every_days must be > 0 or None, got {self.retrain_every_days!r}")
        if self.shares is not None:
            shares = np.asarray(self.shares, dtype=float)
            if len(shares) != n_arms or (shares <= 0).any() or not np.isfinite(shares).all():
                raise ValueError(f"shares must be {n_arms} positive numbers, got {self.shares!r}")


@dataclass
class ExperimentResult:
    """What happened: who was in which arm, every session's outcome, and every simulated event."""

    config: ExperimentConfig
    arms: list[str]  # arm names, control first
    assignment: pd.DataFrame  # user_id, arm
    sessions: pd.DataFrame  # session_id, user_id, arm, timestamp, device, day, shown, plays, finished, minutes, engaged
    events: pd.DataFrame  # the simulated events (logged schema) with an `arm` column
    start: pd.Timestamp
    end: pd.Timestamp
    seconds: float
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def control(self) -> str:
        return self.arms[0]

    @property
    def shares(self) -> np.ndarray:
        shares = np.ones(len(self.arms)) if self.config.shares is None else np.asarray(self.config.shares, float)
        return shares / shares.sum()

    def summary(self) -> dict[str, Any]:
        return {"arms": self.arms, "users": len(self.assignment), "sessions": len(self.sessions),
                "events": len(self.events), "start": str(self.start), "end": str(self.end),
                "seconds": round(self.seconds, 1), "config": asdict(self.config), **self.info}


def assign_arms(user_ids, arms: list[str], seed: int, shares=None) -> pd.DataFrame:
    """Each member to one arm at random (independently, with the given shares; seeded)."""
    p = np.ones(len(arms)) if shares is None else np.asarray(shares, dtype=float)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 11]))
    pick = rng.choice(len(arms), size=len(user_ids), p=p / p.sum())
    return pd.DataFrame({"user_id": np.asarray(user_ids, dtype=object), "arm": np.asarray(arms, dtype=object)[pick]})


def _start_of(dataset: Dataset, config: ExperimentConfig) -> pd.Timestamp:
    if config.start is not None:
        return pd.Timestamp(config.start)
    return (dataset.end + pd.Timedelta(seconds=1)).ceil("h")


def _member_states(world, dataset: Dataset, user_ids) -> dict[str, Any]:
    """Each member's state in the world (finished titles, show progress) at the end of the data."""
    events = dataset.events
    return world.states_from_events(events[events["user_id"].isin(pd.Index(np.asarray(user_ids, dtype=object)))],
                                    user_ids)


def session_outcomes(sessions: pd.DataFrame, events: pd.DataFrame, finished_above: float = 0.8) -> pd.DataFrame:
    """Per session: titles shown, plays (watch fraction > 0, autoplay included), titles finished
    (watch fraction > `finished_above`), minutes watched, and whether anything was played."""
    out = sessions.copy()
    if len(events):
        ev = events.assign(played=events["watch_fraction"] > 0, done=events["watch_fraction"] > finished_above,
                           row=events["source"].eq("row") if "source" in events.columns else True)
        agg = ev.groupby("session_id").agg(shown=("row", "sum"), plays=("played", "sum"), finished=("done", "sum"),
                                           minutes=("minutes_watched", "sum"))
        out = out.join(agg, on="session_id")
    for col in ("shown", "plays", "finished"):
        out[col] = out[col].fillna(0).astype(np.int64) if col in out.columns else 0
    out["minutes"] = out["minutes"].fillna(0.0).astype(float) if "minutes" in out.columns else 0.0
    out["engaged"] = out["plays"] > 0
    return out


def run_experiment(dataset: Dataset, world, arms: dict[str, Any], config: ExperimentConfig | None = None,
                   progress: Progress | None = None) -> ExperimentResult:
    """Run the experiment; `arms` maps arm name to a policy (an OnlinePolicy, a name such as
    `popularity`, a model folder, or a fitted Recommender). The first arm is the control."""
    config = config or ExperimentConfig()
    config.validate(len(arms))
    say = progress or (lambda message, fraction: None)
    started = time.perf_counter()
    names = [str(a) for a in arms]
    if len(set(names)) != len(names):
        raise ValueError(f"arm names must differ, got {names}")

    say("preparing the arms", 0.0)
    policies: dict[str, OnlinePolicy] = {}
    for name, spec in arms.items():
        policies[str(name)] = make_policy(spec, world=world, seed=config.seed).start(dataset, world)

    known = pd.Index(world.users["user_id"]).intersection(pd.Index(dataset.users["user_id"]), sort=False)
    if config.users > len(known):
        raise ValueError(f"this world has {len(known)} members; asked for {config.users}")
    rng = np.random.default_rng(np.random.SeedSequence([int(config.seed), 10]))
    members = np.sort(rng.choice(known.to_numpy(dtype=object), size=config.users, replace=False))
    assignment = assign_arms(members, names, config.seed, config.shares)
    arm_of = dict(zip(assignment["user_id"], assignment["arm"]))

    start = _start_of(dataset, config)
    end = start + pd.Timedelta(days=float(config.days))
    say("drawing sessions", 0.02)
    sessions = world.sessions_between(start, end, members, seed=config.seed)
    sessions["arm"] = sessions["user_id"].map(arm_of)
    slot = pd.Timedelta(minutes=int(config.slot_minutes))
    sessions["slot"] = ((sessions["timestamp"] - start) // slot).astype(np.int64)
    sessions["round"] = sessions.groupby(["slot", "user_id"]).cumcount()
    sessions["day"] = ((sessions["timestamp"] - start) // pd.Timedelta(days=1)).astype(np.int64)
    user_pos = pd.Index(world.users["user_id"]).get_indexer(sessions["user_id"])
    session_no = sessions.groupby("user_id").cumcount().to_numpy()
    seeds = {sid: (int(u), int(n)) for sid, u, n in zip(sessions["session_id"], user_pos, session_no)}

    say("member histories", 0.04)
    base_states = _member_states(world, dataset, members)
    states = base_states

    retrain_every = (pd.Timedelta(days=float(config.retrain_every_days))
                     if config.retrain_every_days is not None else None)
    next_retrain = start + retrain_every if retrain_every is not None else None
    retrains = 0
    arm_seconds = {name: 0.0 for name in names}  # each arm's own time: recommending and observing
    collected: list[pd.DataFrame] = []
    arm_of = {str(u): a for u, a in arm_of.items()}
    total = max(1, len(sessions))
    done = 0
    batches = sessions.groupby(["slot", "round"], sort=True)
    for (_, _), batch in batches:
        now = batch["timestamp"].min()
        while next_retrain is not None and now >= next_retrain:
            say(f"re-training the arms ({next_retrain:%Y-%m-%d})", 0.05 + 0.9 * done / total)
            for policy in policies.values():
                policy.retrain()
            next_retrain += retrain_every
            retrains += 1
        requests = []
        for name, part in batch.groupby("arm", sort=False):
            t = time.perf_counter()
            lists = policies[name].recommend(part[["user_id", "timestamp", "device", "session_id"]], config.k, now)
            arm_seconds[name] += time.perf_counter() - t
            for row in part.itertuples(index=False):
                u, n = seeds[row.session_id]
                stream = np.random.default_rng(np.random.SeedSequence([int(config.seed), 12, u, n]))
                requests.append((row.user_id, lists.get(str(row.user_id), [])[: config.k], row.timestamp,
                                 row.device, stream, row.session_id))
        events = world.respond_many(requests, states)  # members are in one arm each: one states table
        if len(events):
            events["arm"] = events["user_id"].map(arm_of)
            for name, part in events.groupby("arm", sort=False):
                t = time.perf_counter()
                policies[name].observe(part.drop(columns="arm").reset_index(drop=True))
                arm_seconds[name] += time.perf_counter() - t
            collected.append(events)
        done += len(batch)
        say(f"simulated {done:,} of {total:,} sessions ({now:%Y-%m-%d %H:%M})", 0.05 + 0.9 * done / total)

    events = (pd.concat(collected, ignore_index=True).sort_values(["timestamp", "user_id"], kind="stable")
              .reset_index(drop=True) if collected else pd.DataFrame(columns=list(dataset.events.columns) + ["arm"]))
    outcome = session_outcomes(sessions.drop(columns=["slot", "round"]), events, config.finished_above)
    say("done", 1.0)
    return ExperimentResult(config=config, arms=names, assignment=assignment, sessions=outcome, events=events,
                            start=start, end=end, seconds=time.perf_counter() - started,
                            info={"retrains": retrains, "arm_seconds": {k: round(v, 2) for k, v in arm_seconds.items()},
                                  "slots": int(sessions["slot"].nunique()) if len(sessions) else 0})


def run_paired(dataset: Dataset, world, arms: dict[str, Any], config: ExperimentConfig | None = None,
               progress: Progress | None = None) -> ExperimentResult:
    """Every policy over all the members: one A/A test of each (`recsys simulate --control P --treatment
    P`), merged into one result whose arms share members, sessions and behaviour draws.

    A split test gives each of n arms 1/n of the members, and their differences carry the member-to-member
    spread; here that spread is common to every arm, so their order is measured, not sampled (the
    agreement study of docs/off-policy.md uses it). Policies learn only from their own members' events,
    as in a split test; each A/A half learns from its half."""
    config = replace(config or ExperimentConfig(), shares=None)
    if len(arms) < 1:
        raise ValueError("a paired experiment needs at least one policy")
    say = progress or (lambda message, fraction: None)
    started = time.perf_counter()
    parts: dict[str, ExperimentResult] = {}
    for i, (name, spec) in enumerate(arms.items()):
        name = str(name)

        def step(message: str, fraction: float, i: int = i, name: str = name) -> None:
            say(f"{name}: {message}", (i + fraction) / len(arms))

        parts[name] = run_experiment(dataset, world, {name: spec, f"{name} (A/A)": spec}, config, step)

    def merged(frame: str) -> pd.DataFrame:
        return pd.concat([getattr(r, frame).assign(arm=n) for n, r in parts.items()], ignore_index=True)

    first = next(iter(parts.values()))
    return ExperimentResult(
        config=config, arms=list(parts), assignment=merged("assignment"), sessions=merged("sessions"),
        events=merged("events"), start=first.start, end=first.end, seconds=time.perf_counter() - started,
        info={"paired": True, "arm_seconds": {n: sum(r.info["arm_seconds"].values()) for n, r in parts.items()},
              "retrains": sum(r.info["retrains"] for r in parts.values()), "slots": first.info["slots"]})
