"""The files connector against real files written in tmp_path: no mocks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
from collections.abc import AsyncGenerator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from patchbay.connectors.files import FileConnector, FileSettings
from patchbay.core.connector import (
    Batch,
    Capability,
    GetRequest,
    LinesRequest,
    ReadRequest,
    Resources,
    SourceOrder,
)
from patchbay.core.errors import SourceError, SourceUnavailable
from patchbay.core.mapping import LINES_KEY, ROW_ERRORS_KEY
from patchbay.testing import ConformanceCase, ConnectorConformance

OWNER = "crm-team@acme.example"


def make(base: Path, **options: Any) -> FileConnector:
    resources = Resources(source="crm", owner=OWNER, base_dir=base)
    return FileConnector(FileSettings.model_validate(options), resources)


def request(
    origin: Mapping[str, Any],
    *,
    ids: Sequence[str] = (),
    paths: Sequence[str] = (),
    position: Any = None,
    batch_size: int = 1000,
    lines: LinesRequest | None = None,
) -> ReadRequest:
    return ReadRequest(
        entity="contact",
        origin=origin,
        id_paths=tuple(ids),
        paths=tuple(paths),
        position=position,
        batch_size=batch_size,
        lines=lines,
    )


async def batches(conn: FileConnector, req: ReadRequest) -> list[Batch]:
    return [batch async for batch in conn.read(req)]


async def rows(conn: FileConnector, req: ReadRequest) -> list[dict[str, Any]]:
    return [dict(row) for batch in await batches(conn, req) for row in batch.rows]


async def read_file(tmp_path: Path, data: bytes | str, name: str = "crm.csv",
                    settings: Mapping[str, Any] | None = None, **origin: Any
                    ) -> list[dict[str, Any]]:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8", newline="")
    else:
        path.write_bytes(data)
    return await rows(make(tmp_path, **(settings or {})), request({"file": name, **origin}))


def errors(row: Mapping[str, Any]) -> list[str]:
    return list(row.get(ROW_ERRORS_KEY, []))


def test_contract() -> None:
    assert FileConnector.kind == "files"
    assert FileConnector.capabilities == {
        Capability.READ, Capability.GET, Capability.DISCOVER, Capability.CHECK
    }
    assert FileConnector.pushdown == frozenset()
    assert FileConnector.resources == frozenset()


# --- encodings -----------------------------------------------------------------------------


async def test_utf8_detected(tmp_path: Path) -> None:
    got = await read_file(tmp_path, "id,Nom\n1,Zoë Ñúñez\n2,Plain\n".encode())
    assert got == [{"id": "1", "Nom": "Zoë Ñúñez"}, {"id": "2", "Nom": "Plain"}]


async def test_utf8_with_bom_detected(tmp_path: Path) -> None:
    got = await read_file(tmp_path, "id,Name\n1,Zoë\n".encode("utf-8-sig"))
    assert got == [{"id": "1", "Name": "Zoë"}]


async def test_cp1252_detected(tmp_path: Path) -> None:
    data = "id;Name;Price\n1;Café “Müller”;€ 5 \u2013 6\n".encode("cp1252")
    got = await read_file(tmp_path, data)
    assert got == [{"id": "1", "Name": "Café “Müller”", "Price": "€ 5 \u2013 6"}]


async def test_latin1_when_cp1252_cannot_decode(tmp_path: Path) -> None:
    data = "id,Name\n1,Café\x81\n".encode("latin-1")  # 0x81 is undefined in cp1252
    got = await read_file(tmp_path, data)
    assert got == [{"id": "1", "Name": "Café\x81"}]


async def test_detection_reads_past_the_first_chunk(tmp_path: Path) -> None:
    filler = "".join(f"{n},{'x' * 100}\n" for n in range(11_000))  # over 1 MiB
    got = await read_file(tmp_path, f"id,Note\n{filler}x,Café\n".encode("cp1252"))
    assert got[-1] == {"id": "x", "Note": "Café"}
    assert len(got) == 11_001


async def test_utf8_sequence_across_chunk_boundary_is_still_utf8(tmp_path: Path) -> None:
    head = b"id,Note\n" + b"".join(b"%05d,%s\n" % (n, b"x" * 100) for n in range(9_000))
    pad = b"y" * ((1 << 20) - len(head) - 7)  # "é" (2 bytes) straddles the 1 MiB boundary
    data = head + b"last1," + pad + "é\nlast2,ok\n".encode()
    assert data[(1 << 20) - 1 : (1 << 20) + 1] == "é".encode()
    got = await read_file(tmp_path, data)
    assert got[-2]["Note"].endswith("yé")
    assert got[-1] == {"id": "last2", "Note": "ok"}


async def test_truncated_utf8_at_the_end_is_not_utf8(tmp_path: Path) -> None:
    got = await read_file(tmp_path, b"id,Note\n1,ok\xc3")
    assert got == [{"id": "1", "Note": "ok\u00c3"}]  # cp1252 0xC3


async def test_declared_encoding_wins(tmp_path: Path) -> None:
    data = "id,Name\n1,Café\n".encode()
    got = await read_file(tmp_path, data, encoding="cp1252")
    assert got == [{"id": "1", "Name": "CafÃ©"}]
    got = await read_file(tmp_path, data, settings={"encoding": "latin-1"})
    assert got == [{"id": "1", "Name": "CafÃ©"}]
    # The entity's own encoding overrides the source's default.
    got = await read_file(tmp_path, data, settings={"encoding": "latin-1"}, encoding="utf-8")
    assert got == [{"id": "1", "Name": "Café"}]


async def test_bad_bytes_are_reported_by_line_and_column(tmp_path: Path) -> None:
    data = (
        b"Contact ID,First Name,Last Name\r\n"
        b"C1,Ann,Smith\r\n"
        b"C2,J\xf6rg,M\xfcller\r\n"
        b"C3,Bob,Jones\r\n"
    )
    got = await read_file(tmp_path, data, encoding="utf-8")
    assert [errors(r) for r in got] == [
        [],
        ["crm.csv line 3: invalid utf-8 bytes in columns 'First Name', 'Last Name'"],
        [],
    ]
    assert got[1]["Contact ID"] == "C2"
    assert got[1]["Last Name"] == "M\\xfcller"  # readable, and storable as UTF-8
    got[1]["Last Name"].encode("utf-8")


async def test_bad_bytes_after_a_bom(tmp_path: Path) -> None:
    data = codecs_bom() + b"id,Last Name\n1,Smith\n2,M\xfcller\n"
    got = await read_file(tmp_path, data)
    assert errors(got[0]) == []
    assert errors(got[1]) == ["crm.csv line 3: invalid utf-8 bytes in column 'Last Name'"]


def codecs_bom() -> bytes:
    return "\ufeff".encode()


# --- CSV dialects --------------------------------------------------------------------------


async def test_semicolon_detected(tmp_path: Path) -> None:
    data = 'id;Name;Amount\n1;"Smith, John";1.234,50\n2;Ann;12,00\n'
    got = await read_file(tmp_path, data)
    assert got == [
        {"id": "1", "Name": "Smith, John", "Amount": "1.234,50"},
        {"id": "2", "Name": "Ann", "Amount": "12,00"},
    ]


async def test_tab_and_pipe_detected(tmp_path: Path) -> None:
    got = await read_file(tmp_path, "id\tName\tCity\n1\tAnn, Jr\tParis\n", name="a.tsv")
    assert got == [{"id": "1", "Name": "Ann, Jr", "City": "Paris"}]
    got = await read_file(tmp_path, "id|Name|City\n1|Ann;X|Oslo\n2|Bo|Rome\n", name="b.txt")
    assert got == [{"id": "1", "Name": "Ann;X", "City": "Oslo"},
                   {"id": "2", "Name": "Bo", "City": "Rome"}]


async def test_declared_delimiter_and_quotechar(tmp_path: Path) -> None:
    data = "id;Name\n1;'a;b'\n"
    got = await read_file(tmp_path, data, delimiter=";", quotechar="'")
    assert got == [{"id": "1", "Name": "a;b"}]
    got = await read_file(tmp_path, data, settings={"delimiter": ";", "quotechar": "'"})
    assert got == [{"id": "1", "Name": "a;b"}]


async def test_single_column_falls_back_to_comma(tmp_path: Path) -> None:
    got = await read_file(tmp_path, "email\nann@acme.example\nbob@acme.example\n")
    assert got == [{"email": "ann@acme.example"}, {"email": "bob@acme.example"}]


async def test_quoted_fields(tmp_path: Path) -> None:
    data = (
        'id,Comment,City\r\n'
        '1,"Says ""hi"", then\r\nleaves",Paris\r\n'
        '2,,\r\n'
        '3,a,b,c\r\n'
    )
    got = await read_file(tmp_path, data)
    assert got[0] == {"id": "1", "Comment": 'Says "hi", then\r\nleaves', "City": "Paris"}
    assert got[1] == {"id": "2", "Comment": "", "City": ""}
    # The multi-line record counts its lines: the bad record starts on line 5.
    assert errors(got[2]) == ["crm.csv line 5: 4 fields, header has 3"]


async def test_header_names_stripped(tmp_path: Path) -> None:
    data = "\ufeff Contact ID , Name\t,,Name\n1,Ann,x,y\n".encode()
    got = await read_file(tmp_path, data, encoding="utf-8")  # the BOM stays in the text
    assert got == [{"Contact ID": "1", "Name": "Ann", "#3": "x", "Name#4": "y"}]


async def test_values_are_not_stripped_and_blank_lines_are_skipped(tmp_path: Path) -> None:
    got = await read_file(tmp_path, "id,Name\n\n 1 , Ann \n\r\n2,Bo\n\n")
    assert got == [{"id": " 1 ", "Name": " Ann "}, {"id": "2", "Name": "Bo"}]


async def test_too_many_and_too_few_fields(tmp_path: Path) -> None:
    data = "id,a,b\n1,x,y\n2,x,y,z,w\n3,x\n4,x,y\n"
    got = await read_file(tmp_path, data)
    assert got[0] == {"id": "1", "a": "x", "b": "y"}
    assert got[1] == {"id": "2", "a": "x", "b": "y", "#4": "z", "#5": "w",
                      ROW_ERRORS_KEY: ["crm.csv line 3: 5 fields, header has 3"]}
    assert got[2] == {"id": "3", "a": "x", "b": "",
                      ROW_ERRORS_KEY: ["crm.csv line 4: 2 fields, header has 3"]}
    assert errors(got[3]) == []


async def test_no_header_with_columns(tmp_path: Path) -> None:
    got = await read_file(tmp_path, "1,Ann\n2,Bo,extra\n", header=False, columns=["id", "Name"])
    assert got[0] == {"id": "1", "Name": "Ann"}
    assert errors(got[1]) == ["crm.csv line 2: 3 fields, columns: lists 2"]


async def test_skip_rows(tmp_path: Path) -> None:
    data = 'Export of "CRM, 2024\nrun at 10:00;x;y\nid,Name\n1,Ann\n'
    got = await read_file(tmp_path, data, skip_rows=2)
    assert got == [{"id": "1", "Name": "Ann"}]
    got = await read_file(tmp_path, data + "2,Bo,x\n", skip_rows=3, header=False,
                          columns=["n", "name"])
    assert got[0] == {"n": "1", "name": "Ann"}
    assert errors(got[1]) == ["crm.csv line 5: 3 fields, columns: lists 2"]


async def test_empty_and_header_only_files(tmp_path: Path) -> None:
    assert await read_file(tmp_path, b"") == []
    assert await read_file(tmp_path, "id,Name\r\n") == []


async def test_demo_crm_export(tmp_path: Path) -> None:
    from patchbay.demo.generate import CRM_HEADER, generate

    files = generate(tmp_path)
    conn = make(tmp_path)
    got = await rows(conn, request({"file": files.crm_csv.name}, ids=("Contact ID",)))
    assert len(got) == 40
    assert list(got[0]) == list(CRM_HEADER)
    assert got[1]["Company"] == 'Señor Frío; Importaciones "El Sol" S.L.'
    assert not any(ROW_ERRORS_KEY in r for r in got)


# --- fixed width ---------------------------------------------------------------------------

LAYOUT = {"CUST_NO": [0, 6], "NAME": [6, 20], "CITY": [20, 30]}


async def test_fixed_width(tmp_path: Path) -> None:
    data = (
        "CUSTOMER MASTER 2024-01-31\r\n"
        "CUST_NONAME          CITY\r\n"
        "000001Ann Smith     London    \r\n"
        "\r\n"
        "000002Jörg Müller   Köln      \r\n"
        "000003Short\r\n"
    ).encode("cp1252")
    got = await read_file(tmp_path, data, name="legacy.dat", format="fixed", layout=LAYOUT,
                          skip_rows=2)
    assert got[0] == {"CUST_NO": "000001", "NAME": "Ann Smith", "CITY": "London"}
    assert got[1] == {"CUST_NO": "000002", "NAME": "Jörg Müller", "CITY": "Köln"}
    assert got[2] == {"CUST_NO": "000003", "NAME": "Short", "CITY": "",
                      ROW_ERRORS_KEY: ["legacy.dat line 6: 11 characters, layout needs 30"]}


async def test_fixed_width_bad_bytes(tmp_path: Path) -> None:
    data = b"000001Ann Smith     London    \n000002J\xf6rg          Koln      \n"
    got = await read_file(tmp_path, data, name="legacy.dat", format="fixed", layout=LAYOUT,
                          encoding="utf-8")
    assert errors(got[0]) == []
    assert errors(got[1]) == ["legacy.dat line 2: invalid utf-8 bytes in column 'NAME'"]
    assert got[1]["NAME"] == "J\\xf6rg"
    assert got[1]["CITY"] == "Koln"


# --- folders of exports and positions ------------------------------------------------------


def write_exports(folder: Path, counts: Mapping[str, int]) -> list[dict[str, str]]:
    """Dated exports with ``counts[date]`` rows each; returns every row in expected order."""
    folder.mkdir(parents=True, exist_ok=True)
    expected: list[dict[str, str]] = []
    for day, count in counts.items():
        records = [{"id": f"{day}/{n}", "Name": f"name {n}"} for n in range(1, count + 1)]
        body = "".join(
            f'{r["id"]},"{r["Name"]}\n"\n' if n % 3 == 0 else f"\n{r['id']},{r['Name']}\n"
            for n, r in enumerate(records, start=1)
        )  # quoted newlines and blank lines must not shift record numbers
        (folder / f"customers_{day}.csv").write_text("id,Name\n" + body)
        expected.extend(
            {"id": r["id"], "Name": r["Name"] + ("\n" if n % 3 == 0 else "")}
            for n, r in enumerate(records, start=1)
        )
    return expected


async def test_folder_read_in_name_order(tmp_path: Path) -> None:
    counts = {"2024-03-31": 2, "2024-01-31": 1, "2024-02-29": 3}
    write_exports(tmp_path / "exports", counts)
    (tmp_path / "exports" / "customers_notes.txt").write_text("ignored\n")
    (tmp_path / "exports" / "customers_old.csv").mkdir()  # a folder is not a file
    conn = make(tmp_path, directory=".")
    got = await rows(conn, request({"files": "exports/customers_*.csv"}))
    assert [r["id"] for r in got] == [
        "2024-01-31/1", "2024-02-29/1", "2024-02-29/2", "2024-02-29/3", "2024-03-31/1",
        "2024-03-31/2",
    ]


async def test_directory_setting_is_relative_to_base_dir(tmp_path: Path) -> None:
    write_exports(tmp_path / "data" / "exports", {"2024-01-31": 1})
    conn = make(tmp_path, directory="data")
    got = await rows(conn, request({"files": "exports/*.csv"}))
    assert [r["id"] for r in got] == ["2024-01-31/1"]
    batch = (await batches(conn, request({"files": "exports/*.csv"})))[0]
    assert batch.position_after(0) == {"file": "exports/customers_2024-01-31.csv", "row": 1}


async def test_batches_respect_batch_size(tmp_path: Path) -> None:
    expected = write_exports(tmp_path, {"2024-01-31": 4, "2024-02-29": 0, "2024-03-31": 5})
    conn = make(tmp_path)
    got = await batches(conn, request({"files": "customers_*.csv"}, batch_size=4))
    assert [len(b.rows) for b in got] == [4, 4, 1]
    assert [dict(r) for b in got for r in b.rows] == expected
    assert got[1].position_after(0) == {"file": "customers_2024-03-31.csv", "row": 1}
    assert got[2].position_after(0) == {"file": "customers_2024-03-31.csv", "row": 5}


async def test_positions_are_json(tmp_path: Path) -> None:
    import json

    write_exports(tmp_path, {"2024-01-31": 2})
    batch = (await batches(make(tmp_path), request({"files": "*.csv"})))[0]
    assert json.loads(json.dumps(batch.position_after(1))) == {
        "file": "customers_2024-01-31.csv", "row": 2
    }


async def test_resume_from_every_position(tmp_path: Path) -> None:
    expected = write_exports(tmp_path, {"2024-01-31": 3, "2024-02-29": 1, "2024-03-31": 4})
    await check_resume(tmp_path, expected, batch_size=3)


async def check_resume(folder: Path, expected: list[dict[str, str]], batch_size: int) -> None:
    conn = make(folder)
    origin = {"files": "customers_*.csv"}
    full = await batches(conn, request(origin, batch_size=batch_size))
    assert all(0 < len(b.rows) <= batch_size for b in full)
    flat = [(dict(row), b.position_after(i)) for b in full for i, row in enumerate(b.rows)]
    assert [row for row, _ in flat] == expected
    for index, (_, position) in enumerate(flat):
        rest = await rows(conn, request(origin, position=position, batch_size=batch_size))
        assert rest == expected[index + 1 :], position


@settings(max_examples=25, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(
    counts=st.lists(st.integers(min_value=0, max_value=6), min_size=1, max_size=4),
    batch_size=st.integers(min_value=1, max_value=5),
)
def test_resume_property(counts: list[int], batch_size: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        days = {f"2024-{month:02d}-01": count for month, count in enumerate(counts, start=1)}
        expected = write_exports(folder, days)
        asyncio.run(check_resume(folder, expected, batch_size))


async def test_resume_when_files_come_and_go(tmp_path: Path) -> None:
    write_exports(tmp_path, {"2024-01-31": 2, "2024-02-29": 2})
    conn = make(tmp_path)
    origin = {"files": "customers_*.csv"}
    first = (await batches(conn, request(origin, batch_size=3)))[0]
    position = first.position_after(2)  # second file, first record
    (tmp_path / "customers_2024-01-31.csv").unlink()
    write_exports(tmp_path, {"2024-03-31": 1})
    got = await rows(conn, request(origin, position=position))
    assert [r["id"] for r in got] == ["2024-02-29/2", "2024-03-31/1"]
    # The position's own file gone: the files sorting after it are still read.
    (tmp_path / "customers_2024-02-29.csv").unlink()
    got = await rows(conn, request(origin, position=position))
    assert [r["id"] for r in got] == ["2024-03-31/1"]


async def test_invalid_position(tmp_path: Path) -> None:
    write_exports(tmp_path, {"2024-01-31": 1})
    with pytest.raises(SourceError, match="cannot resume from position"):
        await rows(make(tmp_path), request({"files": "*.csv"}, position=[1, 2]))


async def test_early_close_stops_the_reader(tmp_path: Path) -> None:
    write_exports(tmp_path, {"2024-01-31": 500})
    conn = make(tmp_path)
    reader = conn.read(request({"files": "*.csv"}, batch_size=1))
    assert isinstance(reader, AsyncGenerator)
    async with contextlib.aclosing(reader):
        async for batch in reader:
            assert len(batch.rows) == 1
            break


# --- lines ---------------------------------------------------------------------------------


async def test_lines_attached_by_key(tmp_path: Path) -> None:
    (tmp_path / "orders.csv").write_text("ORD_NO;CUST\n1;A\n2;B\n3;C\n")
    (tmp_path / "lines.csv").write_text(
        "ORD_NO;LINE_NO;SKU\n3;1;X\n1;1;P\n 1 ;2;Q\n3;2;Y;oops\n"
    )
    lines = LinesRequest(origin={"file": "lines.csv"}, key=("ORD_NO",), paths=("SKU",))
    got = await rows(make(tmp_path), request({"file": "orders.csv"}, ids=("ORD_NO",),
                                             paths=("CUST",), lines=lines, batch_size=2))
    assert [[line["SKU"] for line in r[LINES_KEY]] for r in got] == [["P", "Q"], [], ["X", "Y"]]
    # Reasons stay on the line row; the mapping quarantines the whole document with them.
    assert errors(got[2]) == []
    assert got[2][LINES_KEY][1][ROW_ERRORS_KEY] == ["lines.csv line 5: 4 fields, header has 3"]


async def test_lines_with_composite_key(tmp_path: Path) -> None:
    (tmp_path / "inv.csv").write_text("CO,INV\nA,1\nB,1\n")
    (tmp_path / "inv_lines.csv").write_text("INV,CO,AMT\n1,B,9\n1,A,5\n")
    lines = LinesRequest(origin={"file": "inv_lines.csv"}, key=("CO", "INV"), paths=("AMT",))
    got = await rows(make(tmp_path), request({"file": "inv.csv"}, ids=("CO", "INV"),
                                             lines=lines))
    assert [[line["AMT"] for line in r[LINES_KEY]] for r in got] == [["5"], ["9"]]


# --- get -----------------------------------------------------------------------------------


async def test_get(tmp_path: Path) -> None:
    write_exports(tmp_path, {"2024-01-31": 2, "2024-02-29": 2})
    (tmp_path / "notes.csv").write_text("id,Note\n2024-02-29/1,first\n2024-02-29/1,again\n")
    conn = make(tmp_path)
    origin = {"files": "customers_*.csv"}

    def get(value: str, lines: LinesRequest | None = None) -> GetRequest:
        return GetRequest("contact", origin, ("id",), (value,), ("Name",), lines)

    assert await conn.get(get(" 2024-02-29/1")) == {"id": "2024-02-29/1", "Name": "name 1"}
    assert await conn.get(get("2024-09-09/1")) is None
    found = await conn.get(get("2024-02-29/1", LinesRequest({"file": "notes.csv"}, ("id",),
                                                            ("Note",))))
    assert found is not None
    assert [line["Note"] for line in found[LINES_KEY]] == ["first", "again"]


# --- discover and check --------------------------------------------------------------------


async def test_discover(tmp_path: Path) -> None:
    (tmp_path / "b.csv").write_text("id;Last Name\n1;x\n", encoding="cp1252")
    (tmp_path / "a.tsv").write_bytes("\ufeffid\tNäme\n".encode())
    (tmp_path / "notes.TXT").write_text("just one column\n")
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "picture.png").write_bytes(b"\x89PNG")
    (tmp_path / ".hidden.csv").write_text("x,y\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "nested.csv").write_text("x,y\n")
    schema = await make(tmp_path).discover()
    assert [(t.name, [(c.name, c.type) for c in t.columns]) for t in schema.tables] == [
        ("a.tsv", [("id", "text"), ("Näme", "text")]),
        ("b.csv", [("id", "text"), ("Last Name", "text")]),
        ("empty.csv", []),
        ("notes.TXT", [("just one column", "text")]),
    ]


async def test_check(tmp_path: Path) -> None:
    await make(tmp_path).check()
    with pytest.raises(SourceUnavailable) as info:
        await make(tmp_path, directory="missing").check()
    message = str(info.value)
    assert "'crm'" in message
    assert OWNER in message
    assert str(tmp_path / "missing") in message
    (tmp_path / "file").write_text("")
    with pytest.raises(SourceUnavailable, match="is not a directory"):
        await make(tmp_path, directory="file").check()
    with pytest.raises(SourceUnavailable, match=OWNER):
        await make(tmp_path, directory="missing").discover()


async def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SourceUnavailable) as info:
        await rows(make(tmp_path), request({"file": "crm_contacts.csv"}))
    assert info.value.source == "crm"
    assert info.value.owner == OWNER
    assert str(tmp_path / "crm_contacts.csv") in str(info.value)
    with pytest.raises(SourceUnavailable):
        await make(tmp_path).get(
            GetRequest("contact", {"file": "nope.csv"}, ("id",), ("1",), ())
        )


async def test_glob_matching_nothing(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert await rows(make(tmp_path), request({"files": "exports/*.csv"})) == []
    assert "matches no files" in caplog.text
    assert "'crm'" in caplog.text


# --- configuration errors ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("origin", "message"),
    [
        ({}, "exactly one of 'file'"),
        ({"file": "a.csv", "files": "*.csv"}, "exactly one of 'file'"),
        ({"table": "a"}, "table: unknown key"),
        ({"file": "a.csv", "header": False}, "header: false needs columns"),
        ({"file": "a.csv", "columns": ["a"]}, "columns: only with header: false"),
        ({"file": "a.csv", "layout": {"A": [0, 1]}}, "layout: only with format: fixed"),
        ({"file": "a.dat", "format": "fixed"}, "needs a layout"),
        ({"file": "a.dat", "format": "fixed", "layout": {"A": [3, 1]}}, "layout.A"),
        ({"file": "a.dat", "format": "fixed", "layout": {"A": [0, 1]}, "delimiter": ";"},
         "delimiter: not used with format: fixed"),
        ({"file": "a.csv", "encoding": "klingon"}, "unknown encoding 'klingon'"),
        ({"file": "a.csv", "delimiter": ";;"}, "delimiter"),
        ({"file": "a.csv", "skip_rows": -1}, "skip_rows"),
        ({"file": "a.csv", "format": "xml"}, "format"),
    ],
)
async def test_invalid_origin(tmp_path: Path, origin: dict[str, Any], message: str) -> None:
    with pytest.raises(SourceError) as info:
        await rows(make(tmp_path), request(origin))
    assert "entity 'contact': invalid from: block" in str(info.value)
    assert message in str(info.value)
    assert info.value.owner == OWNER


async def test_unknown_column(tmp_path: Path) -> None:
    (tmp_path / "crm.csv").write_text("id,Email\n1,a@b.example\n")
    with pytest.raises(SourceError, match=r"crm.csv has no column 'Emial'; columns: id, Email"):
        await rows(make(tmp_path), request({"file": "crm.csv"}, ids=("id",), paths=("Emial",)))


async def test_order_is_not_supported(tmp_path: Path) -> None:
    (tmp_path / "crm.csv").write_text("id\n1\n")
    conn = make(tmp_path)
    req = ReadRequest("contact", {"file": "crm.csv"}, ("id",), ("id",),
                      order=(SourceOrder("id"),))
    assert conn.can_order(req, SourceOrder("id")) is False
    with pytest.raises(SourceError, match="cannot sort"):
        await rows(conn, req)


def test_settings() -> None:
    assert FileSettings().model_dump() == {
        "directory": ".", "encoding": None, "delimiter": None, "quotechar": '"'
    }
    for bad in ({"encoding": "nope"}, {"delimiter": ",,"}, {"dir": "x"},
                {"delimiter": ";", "quotechar": ";"}):
        with pytest.raises(ValidationError):
            FileSettings.model_validate(bad)


async def test_base_dir_defaults_to_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "crm.csv").write_text("id\n1\n")
    monkeypatch.chdir(tmp_path)
    conn = FileConnector(FileSettings(), Resources(source="crm"))
    assert await rows(conn, request({"file": "crm.csv"})) == [{"id": "1"}]


# --- the conformance kit ----------------------------------------------------------------------


def _dated_exports(folder: Path) -> None:
    """Three nightly exports of an invoicing tool, one with a row whose id is missing."""
    header = "INVOICE;CUSTOMER;DATE;AMOUNT;EMAIL\n"
    days = {
        "2024-01-29": ["1001;C1;29.01.2024;1.200,00;a@x.example", "1002;C2;29.01.2024;80,50;"],
        "2024-01-30": ["1003;C1;30.01.2024;15,00;B@X.example", ";C3;30.01.2024;1,00;"],
        "2024-01-31": [f"{1004 + i};C{i % 4};31.01.2024;{i},25;c{i}@x.example" for i in range(9)],
    }
    for day, rows in days.items():
        (folder / f"invoices_{day}.csv").write_text(header + "\n".join(rows) + "\n")


class TestFileConformance(ConnectorConformance):
    @pytest.fixture(params=["crm-export", "dated-folder"])
    def case(self, request: pytest.FixtureRequest, demo_dir: Path) -> ConformanceCase:
        if request.param == "crm-export":
            config = yaml.safe_load((demo_dir / "patchbay.yaml").read_text())
            config.pop("state", None)
            return ConformanceCase(config=config, base_dir=demo_dir, source="crm",
                                   entity="contact", quarantined=1)
        _dated_exports(demo_dir)
        config = {"version": 1, "sources": {"billing": {
            "connector": "files",
            "defaults": {"currency": "EUR", "decimal": "comma"},
            "entities": {"invoice": {
                "from": {"files": "invoices_*.csv"},
                "id": "INVOICE",
                "fields": {
                    "customer_id": {"path": "CUSTOMER", "transform": "ref"},
                    "issued_on": {"path": "DATE", "transform": "date:%d.%m.%Y"},
                    "total": {"path": "AMOUNT", "transform": "money"},
                    "extra.email": {"path": "EMAIL", "transform": "email"},
                },
            }},
        }}}
        return ConformanceCase(config=config, base_dir=demo_dir, source="billing",
                               entity="invoice", quarantined=1, page_sizes=(1, 4, 5))
