"""The suite itself: each test states one promise of the connector contract."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from patchbay.config import load_config_data
from patchbay.core.connector import Capability
from patchbay.core.entities import Record
from patchbay.core.errors import QuarantinedRecord, RecordNotFound
from patchbay.core.filters import FieldKind, Op, field_catalog
from patchbay.core.registry import ConnectorRegistry, EntityRegistry
from patchbay.core.transforms import SourceForm
from patchbay.render import value_at
from patchbay.sync import SyncHub

__all__ = ["ConformanceCase", "ConnectorConformance"]


@dataclass
class ConformanceCase:
    """A live source to run the suite against.

    ``config`` is a ``patchbay.yaml`` as data holding at least the source under test (its
    ``state`` defaults to a SQLite file in pytest's tmp_path); ``quarantined`` is the exact
    number of rows of that entity that must fail validation; ``page_sizes`` are the page
    sizes the cursor test walks with.
    """

    config: Mapping[str, Any]
    source: str
    entity: str
    base_dir: Path | None = None
    quarantined: int = 0
    min_records: int = 3
    page_sizes: tuple[int, ...] = (1, 3, 7)
    connectors: ConnectorRegistry | None = None
    entities: EntityRegistry | None = None


def _ids(records: list[Record]) -> list[str]:
    return [r.id for r in records]


class ConnectorConformance:
    """Base class: subclass it as ``Test...`` and provide the ``case`` fixture."""

    @pytest.fixture
    def case(self) -> ConformanceCase:
        raise NotImplementedError("define a `case` fixture returning a ConformanceCase")

    def _hub(self, case: ConformanceCase, tmp_path: Path, **options: Any) -> SyncHub:
        data = copy.deepcopy(dict(case.config))
        data.setdefault("state", f"sqlite:///{tmp_path / 'conformance-state.db'}")
        data.setdefault("secret_key", "conformance-suite-key-0123456789")
        config = load_config_data(
            data,
            base_dir=case.base_dir or tmp_path,
            connectors=case.connectors,
            entities=case.entities,
        )
        return SyncHub(config, **options)

    @pytest.fixture
    def hub(self, case: ConformanceCase, tmp_path: Path) -> Iterator[SyncHub]:
        hub = self._hub(case, tmp_path)
        try:
            yield hub
        finally:
            hub.close()

    @pytest.fixture
    def memory_hub(self, case: ConformanceCase, tmp_path: Path) -> Iterator[SyncHub]:
        """The same sources with every filter evaluated in memory: the reference."""
        hub = self._hub(case, tmp_path, pushdown=False)
        try:
            yield hub
        finally:
            hub.close()

    @pytest.fixture
    def everything(self, case: ConformanceCase, hub: SyncHub) -> list[Record]:
        return list(hub.query(case.entity, sources=[case.source]))

    # --- reading ----------------------------------------------------------------------------

    def test_reads_every_row_once(
        self, case: ConformanceCase, hub: SyncHub, everything: list[Record]
    ) -> None:
        stream = hub.query(case.entity, sources=[case.source])
        records = list(stream)
        quality = stream.quality.sources[case.source]
        assert _ids(records) == _ids(everything), "two reads of the same source differ"
        assert len(set(_ids(records))) == len(records), "duplicate ids in one read"
        assert len(records) >= case.min_records, "the case needs more records to test with"
        assert {r.source for r in records} == {case.source}
        assert quality.delivered == len(records)
        assert quality.quarantined == case.quarantined, quality.samples
        assert quality.read == quality.delivered + quality.quarantined, "rows were lost"

    def test_bad_rows_are_quarantined_not_lost(self, case: ConformanceCase, hub: SyncHub) -> None:
        if case.quarantined == 0:
            pytest.skip("the case declares no bad rows")
        list(hub.query(case.entity, sources=[case.source]))
        kept = hub.quarantine.list(source=case.source, entity=case.entity, limit=10_000)
        assert len(kept) == case.quarantined
        for entry in kept:
            assert entry.reasons, "a quarantined row without a reason"
            assert entry.raw, "a quarantined row without its raw data"
        with pytest.raises(QuarantinedRecord):
            list(hub.query(case.entity, sources=[case.source], strict=True))

    def test_pages_resume_without_gaps_or_duplicates(
        self, case: ConformanceCase, hub: SyncHub, everything: list[Record]
    ) -> None:
        for size in case.page_sizes:
            seen: list[str] = []
            cursor: str | None = None
            while True:
                page = hub.fetch(case.entity, sources=[case.source], limit=size, cursor=cursor)
                assert len(page.records) <= size
                seen.extend(_ids(page.records))
                cursor = page.next_cursor
                if cursor is None:
                    break
            assert seen == _ids(everything), f"paging by {size} differs from one read"

    def test_get_returns_the_same_record(
        self, case: ConformanceCase, hub: SyncHub, everything: list[Record]
    ) -> None:
        picks = {0, len(everything) // 2, len(everything) - 1}
        for index in sorted(picks):
            record = everything[index]
            assert hub.get(case.entity, record.id) == record
        with pytest.raises(RecordNotFound):
            hub.get(case.entity, f"{case.source}:patchbay-conformance-no-such-id")

    def test_since_matches_the_canonical_timestamps(
        self, case: ConformanceCase, hub: SyncHub, everything: list[Record]
    ) -> None:
        stamps = sorted(r.updated_at for r in everything if r.updated_at is not None)
        if not stamps:
            pytest.skip("the source maps no updated_at for this entity")
        since = stamps[len(stamps) // 2]
        expected = [r.id for r in everything if r.updated_at is not None and r.updated_at >= since]
        got = _ids(list(hub.query(case.entity, sources=[case.source], since=since)))
        assert got == expected

    # --- push-down ------------------------------------------------------------------------

    def test_push_down_gives_the_in_memory_result(
        self,
        case: ConformanceCase,
        hub: SyncHub,
        memory_hub: SyncHub,
        everything: list[Record],
    ) -> None:
        mapping = hub.config.sources[case.source].mappings[case.entity]
        model = mapping.model
        checked = 0
        for where in _conditions(model, mapping.pushables, everything):
            pushed = _ids(list(hub.query(case.entity, where, sources=[case.source])))
            reference = _ids(list(memory_hub.query(case.entity, where, sources=[case.source])))
            assert pushed == reference, f"push-down changed the result of {where}"
            checked += 1
        connector = hub.config.sources[case.source].connector
        if connector.pushdown and mapping.pushables:
            assert checked, "no condition could be built from the data to check push-down"

    # --- health ---------------------------------------------------------------------------

    def test_check_passes(self, case: ConformanceCase, hub: SyncHub) -> None:
        assert hub.check([case.source]) == {case.source: None}

    def test_discover_describes_what_the_mapping_reads(
        self, case: ConformanceCase, hub: SyncHub
    ) -> None:
        connector = hub.config.sources[case.source].connector
        if Capability.DISCOVER not in connector.capabilities:
            pytest.skip(f"the {connector.kind} connector does not declare discover")
        schema = hub.discover(case.source)
        assert schema.tables, "discover found nothing"
        columns = {c.name.lower() for t in schema.tables for c in t.columns}
        mapping = hub.config.sources[case.source].mappings[case.entity]
        flat = [p for p in mapping.source_paths if "." not in p]
        missing = [p for p in flat if p.lower() not in columns]
        assert not missing, f"discover does not list the mapped columns {missing}"
        # describe() of each origin the mapping reads shows no drift on an unchanged source.
        assert hub.drift([case.source]) == []
        assert hub.drift([case.source]) == [], "the baseline just recorded does not hold"


# --- conditions built from the data ----------------------------------------------------------

_ORDERED = (FieldKind.NUMBER, FieldKind.DATE, FieldKind.DATETIME)


def _conditions(
    model: type[Record], pushables: Mapping[str, Any], records: list[Record]
) -> Iterator[dict[str, Any]]:
    """Filters on every field the source may evaluate, with values taken from its own data."""
    catalog = field_catalog(model)
    for name, pushable in sorted(pushables.items()):
        if name == "id" or name not in catalog:
            continue
        info = catalog[name]
        values = [value_at(r, name) for r in records]
        present = [v for v in values if v is not None]
        yield {f"{name}__isnull": True}
        yield {f"{name}__isnull": False}
        if not present:
            continue
        first, other = present[0], present[len(present) // 2]
        if pushable.form is SourceForm.REF:
            yield {name: first}
            yield {f"{name}__in": [first, other]}
            continue
        yield {name: _text(first)}
        if pushable.form is SourceForm.EXACT:
            yield {f"{name}__ne": _text(first)}
            yield {f"{name}__in": [_text(first), _text(other)]}
        if info.kind in (FieldKind.TEXT, FieldKind.EMAIL):
            text = str(first)
            yield {f"{name}__contains": text[len(text) // 3 : len(text) // 3 + 3] or text}
        if info.kind in _ORDERED and pushable.form is SourceForm.EXACT:
            middle = sorted(present)[len(present) // 2]
            for op in (Op.GT, Op.GTE, Op.LT, Op.LTE):
                yield {f"{name}__{op}": _text(middle)}


def _text(value: Any) -> Any:
    """A filter value as a front door would send it."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value
