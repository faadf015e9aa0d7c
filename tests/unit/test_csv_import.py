"""Reading the CSV files staff upload: the WBP register and batch participants, all or nothing."""

import pytest

from catalog.csv_import import (
    PARTICIPANT_COLUMNS,
    WBP_COLUMNS,
    BatchRef,
    FileRefused,
    Line,
    ParticipantRow,
    RowError,
    WbpRef,
    WbpRow,
    parse_participants,
    parse_wbp,
    read_lines,
)

BANJARNEGARA = "rutan-banjarnegara"
SLUGS = {BANJARNEGARA, "rutan-magetan", "rutan-ruteng", "rutan-serang"}


def wbp_lines(text: str) -> list[Line]:
    return read_lines(text.encode(), WBP_COLUMNS)


# Reading the file


def test_excel_in_indonesian_saves_with_semicolons_and_a_byte_order_mark():
    data = "\ufefffacility;registration_number;name\r\nrutan-banjarnegara;BI-001;Agus\r\n".encode()
    assert read_lines(data, WBP_COLUMNS) == [
        Line(2, {"facility": BANJARNEGARA, "registration_number": "BI-001", "name": "Agus"})
    ]


def test_comma_separated_columns_may_come_in_any_order_and_case():
    lines = wbp_lines("Name,Facility,Registration_Number\nAgus, rutan-banjarnegara ,BI-001\n")
    assert lines[0].values == {
        "name": "Agus",
        "facility": BANJARNEGARA,
        "registration_number": "BI-001",
    }


def test_a_name_with_a_comma_is_quoted():
    lines = wbp_lines('facility,registration_number,name\nrutan-banjarnegara,BI-001,"Agus, S."\n')
    assert lines[0].values["name"] == "Agus, S."


def test_line_numbers_count_the_header_as_line_one_and_skip_empty_rows():
    lines = wbp_lines(
        "facility,registration_number,name\n"
        "rutan-banjarnegara,BI-001,Agus\n"
        "\n"
        ",,\n"
        'rutan-banjarnegara,BI-002,"Bambang\nRekaan"\n'
        "rutan-banjarnegara,BI-003,Cahyo\n"
    )
    assert [line.number for line in lines] == [2, 5, 7]


def test_a_line_with_too_few_values_is_reported_on_its_line():
    lines = wbp_lines("facility,registration_number,name\nrutan-banjarnegara,BI-001\n")
    parsed = parse_wbp(lines, BANJARNEGARA, SLUGS, set())
    assert [(e.line, e.message) for e in parsed.errors] == [
        (2, "expected 3 values: facility, registration_number, name.")
    ]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"registration_number,name\nBI-001,Agus\n", "must name the columns"),
        (b"facility,registration_number,name,notes\n", "must name the columns"),
        (b"", "must name the columns"),
        (b"facility,registration_number,name\n\n", "no rows"),
        (
            "facility,registration_number,name\nrutan-banjarnegara,BI-1,Agus Fiktif\n".encode(
                "utf-16"
            ),
            "not UTF-8",
        ),
        ("facility;registration_number;name\nx;BI-1;Dédi\n".encode("cp1252"), "not UTF-8"),
        (b"facility,registration_number,name\n" + b"x" * 1_000_000, "larger than 1 MB"),
    ],
)
def test_a_file_that_cannot_be_read_is_refused_whole(data, message):
    with pytest.raises(FileRefused, match=message):
        read_lines(data, WBP_COLUMNS)


def test_at_most_5000_rows():
    header = "facility,registration_number,name\n"
    row = "rutan-banjarnegara,BI-{n},Agus\n"
    assert len(wbp_lines(header + "".join(row.format(n=n) for n in range(5000)))) == 5000
    with pytest.raises(FileRefused, match="more than 5,000 rows"):
        wbp_lines(header + "".join(row.format(n=n) for n in range(5001)))


# The WBP register


def test_new_wbp_of_this_facility_are_ready_to_import():
    lines = wbp_lines(
        "facility,registration_number,name\n"
        "rutan-banjarnegara,BI-101/2026,Agus Fiktif\n"
        "rutan-banjarnegara,BI-102/2026,Bambang Rekaan\n"
    )
    parsed = parse_wbp(lines, BANJARNEGARA, SLUGS, {"DEMO-BNA-001"})
    assert parsed.ok
    assert parsed.rows == [
        WbpRow(2, "BI-101/2026", "Agus Fiktif"),
        WbpRow(3, "BI-102/2026", "Bambang Rekaan"),
    ]


def test_every_bad_wbp_line_is_reported_and_no_row_is_returned():
    lines = wbp_lines(
        "facility,registration_number,name\n"
        "rutan-banjarnegara,BI-101/2026,Agus Fiktif\n"
        "rutan-banjarnegra,BI-102/2026,Bambang Rekaan\n"
        "rutan-magetan,BI-103/2026,Cahyo Contoh\n"
        "rutan-banjarnegara,DEMO-BNA-001,Dedi Samaran\n"
        "rutan-banjarnegara,BI-101/2026,Eko Khayalan\n"
        "rutan-banjarnegara,,Fajar Andaian\n"
        "rutan-banjarnegara,BI-107/2026,\n"
    )
    parsed = parse_wbp(lines, BANJARNEGARA, SLUGS, {"DEMO-BNA-001"})
    assert not parsed.ok
    assert parsed.rows == []
    assert parsed.errors == [
        RowError(3, "unknown facility “rutan-banjarnegra”."),
        RowError(
            4,
            "facility “rutan-magetan” is another facility; import its WBP in its own back office.",
        ),
        RowError(5, "registration number DEMO-BNA-001 is already in the register."),
        RowError(6, "registration number BI-101/2026 is also on line 2."),
        RowError(7, "the registration number is missing."),
        RowError(8, "the name is missing."),
    ]


def test_overlong_values_are_errors_not_database_failures():
    lines = wbp_lines(
        f"facility,registration_number,name\nrutan-banjarnegara,{'9' * 41},{'A' * 121}\n"
    )
    messages = [e.message for e in parse_wbp(lines, BANJARNEGARA, SLUGS, set()).errors]
    assert messages == [
        "the registration number is longer than 40 characters.",
        "the name is longer than 120 characters.",
    ]


# Batch participants

BESEK = BatchRef(11, "BSK-2026-11", finished=False)
BESEK_DONE = BatchRef(10, "BSK-2026-10", finished=True)
AGUS = WbpRef(1, "BI-001", active=True)
BAMBANG = WbpRef(2, "BI-002", active=True)
RELEASED = WbpRef(3, "BI-003", active=False)


def participant_lines(body: str) -> list[Line]:
    return read_lines(
        ("batch_code;registration_number;contribution\n" + body).encode(), PARTICIPANT_COLUMNS
    )


def parse(body: str, participating=frozenset(), batches=(BESEK, BESEK_DONE)):
    return parse_participants(
        participant_lines(body), batches, [AGUS, BAMBANG, RELEASED], participating
    )


def test_participants_of_an_open_batch_are_ready_to_import():
    parsed = parse("BSK-2026-11;BI-001;300\nBSK-2026-11;BI-002;290\n")
    assert parsed.rows == [ParticipantRow(2, 11, 1, 300), ParticipantRow(3, 11, 2, 290)]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (
            "BSK-2026-11;BI-001;-300",
            "the contribution “-300” must be a whole number from 1 to 1,000,000.",
        ),
        ("BSK-2026-11;BI-001;0", "the contribution “0” must be a whole number"),
        ("BSK-2026-11;BI-001;2,5", "the contribution “2,5” must be a whole number"),
        ("BSK-2026-11;BI-001;1000001", "the contribution “1000001” must be a whole number"),
        ("BSK-2026-11;BI-001;", "the contribution “” must be a whole number"),
        ("BSK-2026-10;BI-001;300", "batch BSK-2026-10 is finished"),
        ("KST-2026-09;BI-001;300", "no batch with code “KST-2026-09” at this facility."),
        ("BSK-2026-11;BI-999;300", "no WBP with registration number “BI-999” in the register."),
        ("BSK-2026-11;BI-003;300", "WBP BI-003 is no longer active at this facility."),
    ],
)
def test_a_bad_participant_line_is_reported_by_its_line(row, message):
    parsed = parse("BSK-2026-11;BI-002;290\n" + row + "\n")
    assert parsed.rows == []
    assert len(parsed.errors) == 1
    assert parsed.errors[0].line == 3
    assert parsed.errors[0].message.startswith(message)


def test_the_same_wbp_twice_in_one_batch_is_refused():
    parsed = parse("BSK-2026-11;BI-001;300\nBSK-2026-11;BI-001;10\n", participating={(11, 2)})
    assert parsed.errors == [
        RowError(3, "WBP BI-001 is also listed for batch BSK-2026-11 on line 2.")
    ]
    parsed = parse("BSK-2026-11;BI-002;290\n", participating={(11, 2)})
    assert parsed.errors == [
        RowError(2, "WBP BI-002 is already a participant of batch BSK-2026-11.")
    ]


def test_a_code_shared_by_two_products_is_ambiguous():
    tas = BatchRef(12, "2026-11", finished=False)
    besek = BatchRef(13, "2026-11", finished=False)
    parsed = parse("2026-11;BI-001;5\n", batches=(tas, besek))
    assert "several products" in parsed.errors[0].message


def test_one_line_can_have_several_problems():
    parsed = parse("KST-2026-09;BI-999;-1\n")
    assert len(parsed.errors) == 3
    assert {e.line for e in parsed.errors} == {2}
