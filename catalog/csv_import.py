"""Reading and checking CSV imports (the WBP register, batch participants) without a database.

The caller passes what it knows (the facility, its WBP, its batches) and gets back either rows ready
to import or every problem, each with the line of the file it is on (the header is line 1), so that
staff can fix the file in one go. A file with any problem imports nothing.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from shop.i18n import gettext as _

from .production import MAX_CONTRIBUTION

MAX_BYTES = 1_000_000
MAX_ROWS = 5_000
WBP_COLUMNS = ("facility", "registration_number", "name")
PARTICIPANT_COLUMNS = ("batch_code", "registration_number", "contribution")
# The lengths of Wbp.registration_number and Wbp.name.
MAX_REGISTRATION_NUMBER = 40
MAX_NAME = 120

T = TypeVar("T")


class FileRefused(Exception):
    """The file as a whole cannot be read: wrong size, encoding or columns."""

    @property
    def message(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class RowError:
    line: int
    message: str


@dataclass(frozen=True)
class Parsed(Generic[T]):
    """Either rows ready to import (no errors) or every error and no rows: all or nothing."""

    rows: list[T] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass(frozen=True)
class Line:
    """One data line of the file: its number in the file and its values by column."""

    number: int
    values: Mapping[str, str]


def read_lines(data: bytes, columns: tuple[str, ...]) -> list[Line]:
    """The data lines of a CSV file whose header names exactly `columns`, in any order.

    UTF-8 with or without a byte order mark; comma or semicolon separated (Excel set to Indonesian
    saves with semicolons, because the comma is the decimal separator there).
    """
    if len(data) > MAX_BYTES:
        raise FileRefused(_("The file is larger than 1 MB. Split it into smaller files."))
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise FileRefused(
            _("The file is not UTF-8 text. In Excel, save it as “CSV UTF-8”.")
        ) from None
    header_line = text.split("\n", 1)[0]
    delimiter = ";" if header_line.count(";") > header_line.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        return _lines(reader, columns)
    except csv.Error:
        raise FileRefused(
            _("The file is not a readable CSV file (line %(line)s).", line=reader.line_num)
        ) from None


def _lines(reader: Iterator[list[str]], columns: tuple[str, ...]) -> list[Line]:
    header = [name.strip().lower() for name in next(reader, [])]
    if sorted(header) != sorted(columns):
        raise FileRefused(
            _("The first line must name the columns: %(columns)s.", columns=", ".join(columns))
        )
    lines: list[Line] = []
    last = reader.line_num  # type: ignore[attr-defined]
    for values in reader:
        # A quoted value may span lines: a row's number is the line it starts on.
        start, last = last + 1, reader.line_num  # type: ignore[attr-defined]
        if not any(value.strip() for value in values):
            continue  # Excel leaves empty rows (";;") at the end of a sheet
        if len(lines) == MAX_ROWS:
            raise FileRefused(_("The file has more than 5,000 rows. Split it into smaller files."))
        values_by_column = dict(zip(header, (v.strip() for v in values), strict=False))
        lines.append(Line(start, values_by_column if len(values) == len(header) else {}))
    if not lines:
        raise FileRefused(_("The file has no rows to import."))
    return lines


def _shape_error(line: Line, columns: tuple[str, ...]) -> RowError | None:
    if line.values:
        return None
    return RowError(
        line.number,
        _(
            "expected %(count)s values: %(columns)s.",
            count=len(columns),
            columns=", ".join(columns),
        ),
    )


@dataclass(frozen=True)
class WbpRow:
    line: int
    registration_number: str
    name: str


def parse_wbp(
    lines: list[Line], facility_slug: str, known_slugs: Collection[str], registered: Collection[str]
) -> Parsed[WbpRow]:
    """New WBP for the register of the facility `facility_slug`.

    `known_slugs` are every facility's slugs, `registered` the registration numbers the facility's
    register already holds (active or not: a number is never reused within a facility).
    """
    rows: list[WbpRow] = []
    errors: list[RowError] = []
    seen: dict[str, int] = {}
    for line in lines:
        if shape := _shape_error(line, WBP_COLUMNS):
            errors.append(shape)
            continue
        problems = []
        slug = line.values["facility"]
        if slug not in known_slugs:
            problems.append(_("unknown facility “%(slug)s”.", slug=slug))
        elif slug != facility_slug:
            problems.append(
                _(
                    "facility “%(slug)s” is another facility; import its WBP in its own back "
                    "office.",
                    slug=slug,
                )
            )
        number = line.values["registration_number"]
        if not number:
            problems.append(_("the registration number is missing."))
        elif len(number) > MAX_REGISTRATION_NUMBER:
            problems.append(_("the registration number is longer than 40 characters."))
        elif number in registered:
            problems.append(
                _("registration number %(number)s is already in the register.", number=number)
            )
        elif number in seen:
            problems.append(
                _(
                    "registration number %(number)s is also on line %(line)s.",
                    number=number,
                    line=seen[number],
                )
            )
        else:
            seen[number] = line.number
        name = line.values["name"]
        if not name:
            problems.append(_("the name is missing."))
        elif len(name) > MAX_NAME:
            problems.append(_("the name is longer than 120 characters."))
        errors += [RowError(line.number, message) for message in problems]
        if not problems:
            rows.append(WbpRow(line.number, number, name))
    return Parsed([], errors) if errors else Parsed(rows)


@dataclass(frozen=True)
class BatchRef:
    """One of the facility's batches, as the participant import needs to know it."""

    id: int
    code: str
    finished: bool


@dataclass(frozen=True)
class WbpRef:
    id: int
    registration_number: str
    active: bool


@dataclass(frozen=True)
class ParticipantRow:
    line: int
    batch_id: int
    wbp_id: int
    contribution: int


def parse_contribution(raw: str) -> int | None:
    """A whole number from 1 up to MAX_CONTRIBUTION, or None."""
    if not raw.isdecimal() or not raw.isascii():
        return None
    value = int(raw)
    return value if 1 <= value <= MAX_CONTRIBUTION else None


def parse_participants(
    lines: list[Line],
    batches: Iterable[BatchRef],
    wbp: Iterable[WbpRef],
    participating: Collection[tuple[int, int]],
) -> Parsed[ParticipantRow]:
    """Participations to add to the facility's batches.

    `batches` and `wbp` are the facility's own (no other facility's code or number can match);
    `participating` holds the (batch id, WBP id) pairs already recorded.
    """
    by_code: dict[str, list[BatchRef]] = {}
    for batch in batches:
        by_code.setdefault(batch.code, []).append(batch)
    by_number = {w.registration_number: w for w in wbp}
    rows: list[ParticipantRow] = []
    errors: list[RowError] = []
    seen: dict[tuple[int, int], int] = {}
    for line in lines:
        if shape := _shape_error(line, PARTICIPANT_COLUMNS):
            errors.append(shape)
            continue
        problems = []
        code = line.values["batch_code"]
        found = by_code.get(code, [])
        batch = found[0] if len(found) == 1 else None
        if not found:
            problems.append(_("no batch with code “%(code)s” at this facility.", code=code))
        elif batch is None:
            problems.append(
                _(
                    "several products have a batch with code “%(code)s”; add these participants "
                    "on the batch's page.",
                    code=code,
                )
            )
        elif batch.finished:
            problems.append(
                _("batch %(code)s is finished: its participants can no longer change.", code=code)
            )
        number = line.values["registration_number"]
        maker = by_number.get(number)
        if maker is None:
            problems.append(
                _("no WBP with registration number “%(number)s” in the register.", number=number)
            )
        elif not maker.active:
            problems.append(
                _("WBP %(number)s is no longer active at this facility.", number=number)
            )
        contribution = parse_contribution(line.values["contribution"])
        if contribution is None:
            problems.append(
                _(
                    "the contribution “%(value)s” must be a whole number from 1 to 1,000,000.",
                    value=line.values["contribution"],
                )
            )
        if batch is not None and maker is not None and not problems:
            pair = (batch.id, maker.id)
            if pair in participating:
                problems.append(
                    _(
                        "WBP %(number)s is already a participant of batch %(code)s.",
                        number=number,
                        code=code,
                    )
                )
            elif pair in seen:
                problems.append(
                    _(
                        "WBP %(number)s is also listed for batch %(code)s on line %(line)s.",
                        number=number,
                        code=code,
                        line=seen[pair],
                    )
                )
            else:
                seen[pair] = line.number
        errors += [RowError(line.number, message) for message in problems]
        if not problems and batch is not None and maker is not None and contribution is not None:
            rows.append(ParticipantRow(line.number, batch.id, maker.id, contribution))
    return Parsed([], errors) if errors else Parsed(rows)
