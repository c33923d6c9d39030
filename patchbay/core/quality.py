"""The quality report of a query: what was read, delivered, quarantined and nulled, per source."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from patchbay.core.mapping import Quarantined

__all__ = ["QualityReport", "SourceFailure", "SourceQuality"]

SAMPLE = 20  # quarantined rows kept in the report itself (all of them go to the state database)


@dataclass
class SourceQuality:
    read: int = 0
    delivered: int = 0
    quarantined: int = 0
    nulled: Counter[str] = field(default_factory=Counter)  # "field: reason" -> rows
    samples: list[Quarantined] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "delivered": self.delivered,
            "quarantined": self.quarantined,
            "nulled": dict(self.nulled),
            "quarantined_rows": [
                {"remote_id": q.remote_id, "reasons": list(q.reasons)} for q in self.samples
            ],
        }


@dataclass(frozen=True)
class SourceFailure:
    source: str
    owner: str | None
    error: str
    unavailable: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "owner": self.owner,
            "error": self.error,
            "unavailable": self.unavailable,
        }


@dataclass
class QualityReport:
    sources: dict[str, SourceQuality] = field(default_factory=dict)

    def source(self, name: str) -> SourceQuality:
        quality = self.sources.get(name)
        if quality is None:
            quality = self.sources[name] = SourceQuality()
        return quality

    @property
    def read(self) -> int:
        return sum(q.read for q in self.sources.values())

    @property
    def delivered(self) -> int:
        return sum(q.delivered for q in self.sources.values())

    @property
    def quarantined(self) -> int:
        return sum(q.quarantined for q in self.sources.values())

    @property
    def nulled(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for name, q in self.sources.items():
            for key, count in q.nulled.items():
                total[f"{name}.{key}"] += count
        return total

    @property
    def quarantined_rows(self) -> list[Quarantined]:
        return [row for q in self.sources.values() for row in q.samples]

    def to_dict(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "delivered": self.delivered,
            "quarantined": self.quarantined,
            "nulled": dict(self.nulled),
            "sources": {name: q.to_dict() for name, q in self.sources.items()},
        }
