"""The life of a production batch: planned, in production, finished, and reopened for correction."""

from datetime import UTC, date, datetime

import pytest

from catalog.models import BatchStatus
from catalog.production import (
    Refused,
    check_finish,
    check_participants_editable,
    check_reopen,
    check_start,
    facility_today,
    participants_editable,
)

OCTOBER_16 = date(2026, 10, 16)


def test_a_planned_batch_starts_production():
    assert check_start(BatchStatus.PLANNED) is BatchStatus.IN_PRODUCTION


@pytest.mark.parametrize("status", [BatchStatus.IN_PRODUCTION, BatchStatus.FINISHED])
def test_only_a_planned_batch_starts(status):
    with pytest.raises(Refused, match="Only a planned batch"):
        check_start(status)


def test_the_besek_batch_of_six_makers_finishes():
    status = check_finish(BatchStatus.IN_PRODUCTION, 6, date(2026, 9, 15), OCTOBER_16, OCTOBER_16)
    assert status is BatchStatus.FINISHED


def test_a_batch_without_participants_cannot_finish():
    with pytest.raises(Refused, match="at least one participant") as refused:
        check_finish(BatchStatus.IN_PRODUCTION, 0, date(2026, 9, 15), OCTOBER_16, OCTOBER_16)
    assert "premi" in refused.value.message


@pytest.mark.parametrize("status", [BatchStatus.PLANNED, BatchStatus.FINISHED])
def test_only_a_batch_in_production_finishes(status):
    with pytest.raises(Refused, match="Only a batch in production"):
        check_finish(status, 6, date(2026, 9, 15), OCTOBER_16, OCTOBER_16)


def test_the_finished_date_is_not_in_the_future():
    with pytest.raises(Refused, match="future"):
        check_finish(BatchStatus.IN_PRODUCTION, 6, None, date(2026, 10, 17), OCTOBER_16)


def test_the_finished_date_is_not_before_the_start():
    with pytest.raises(Refused, match="before the start"):
        check_finish(BatchStatus.IN_PRODUCTION, 6, OCTOBER_16, date(2026, 10, 15), OCTOBER_16)


def test_a_batch_started_and_finished_the_same_day_is_fine():
    status = check_finish(BatchStatus.IN_PRODUCTION, 1, OCTOBER_16, OCTOBER_16, OCTOBER_16)
    assert status is BatchStatus.FINISHED


def test_participants_change_until_the_batch_is_finished():
    assert participants_editable(BatchStatus.PLANNED)
    assert participants_editable(BatchStatus.IN_PRODUCTION)
    assert not participants_editable(BatchStatus.FINISHED)
    check_participants_editable(BatchStatus.IN_PRODUCTION)
    with pytest.raises(Refused, match="finished"):
        check_participants_editable(BatchStatus.FINISHED)


def test_a_finished_batch_with_nothing_sold_reopens_for_correction():
    assert check_reopen(BatchStatus.FINISHED, 0) is BatchStatus.IN_PRODUCTION


def test_a_batch_with_allocated_units_is_fixed():
    # 1,600 besek were bought by the salted-fish seller: the batch is part of the ledger now.
    with pytest.raises(Refused, match="already allocated"):
        check_reopen(BatchStatus.FINISHED, 1600)


@pytest.mark.parametrize("status", [BatchStatus.PLANNED, BatchStatus.IN_PRODUCTION])
def test_only_a_finished_batch_reopens(status):
    with pytest.raises(Refused, match="Only a finished batch"):
        check_reopen(status, 0)


def test_today_is_the_facility_s_own_date():
    # 16:30 UTC on 15 October: still the 15th in Banjarnegara (UTC+7), already the 16th in Ruteng.
    moment = datetime(2026, 10, 15, 16, 30, tzinfo=UTC)
    assert facility_today("Asia/Jakarta", moment) == date(2026, 10, 15)
    assert facility_today("Asia/Makassar", moment) == date(2026, 10, 16)
