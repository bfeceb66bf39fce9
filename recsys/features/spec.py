"""What a feature is: name, group, type and a one-line description (shown on the app's feature page)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Literal

import pandas as pd

__all__ = ["Feature", "FeatureSet", "GROUPS", "KINDS"]

Group = Literal["user", "context", "media", "user_x_media", "sparse", "source_scores"]
Kind = Literal["dense", "categorical", "sparse_list"]
GROUPS: tuple[str, ...] = ("user", "context", "media", "user_x_media", "exposure", "slot", "sparse", "source_scores")
KINDS: tuple[str, ...] = ("dense", "categorical", "sparse_list")


@dataclass(frozen=True)
class Feature:
    """One feature column (or, for sparse lists, one ragged id list per row)."""

    name: str
    group: Group
    kind: Kind
    description: str

    def __post_init__(self) -> None:
        if self.group not in GROUPS:
            raise ValueError(f"feature {self.name!r}: group must be one of {GROUPS}, got {self.group!r}")
        if self.kind not in KINDS:
            raise ValueError(f"feature {self.name!r}: kind must be one of {KINDS}, got {self.kind!r}")


@dataclass(frozen=True)
class FeatureSet:
    """The features a dataset supports, in a fixed order. Unsupported ones are absent, never faked."""

    features: tuple[Feature, ...]

    def __post_init__(self) -> None:
        names = [f.name for f in self.features]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"duplicate feature names: {sorted(dup)}")

    def __iter__(self):
        return iter(self.features)

    def __len__(self) -> int:
        return len(self.features)

    def __contains__(self, name: object) -> bool:
        return any(f.name == name for f in self.features)

    def __getitem__(self, name: str) -> Feature:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(f"no feature named {name!r}")

    def names(self, kind: str | Iterable[str] | None = None, group: str | Iterable[str] | None = None) -> list[str]:
        """Feature names, optionally only of some kinds and groups."""
        kinds = {kind} if isinstance(kind, str) else set(kind) if kind is not None else None
        groups = {group} if isinstance(group, str) else set(group) if group is not None else None
        return [f.name for f in self.features
                if (kinds is None or f.kind in kinds) and (groups is None or f.group in groups)]

    @property
    def dense(self) -> list[str]:
        return self.names("dense")

    @property
    def categorical(self) -> list[str]:
        return self.names("categorical")

    @property
    def sparse(self) -> list[str]:
        return self.names("sparse_list")

    def describe(self) -> pd.DataFrame:
        """One row per feature: name, group, kind, description."""
        return pd.DataFrame([f.__dict__ for f in self.features], columns=["name", "group", "kind", "description"])

    def without(self, names: Iterable[str]) -> "FeatureSet":
        drop = set(names)
        return FeatureSet(tuple(f for f in self.features if f.name not in drop))
