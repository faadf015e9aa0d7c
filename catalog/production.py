"""The life of a production batch: which step may follow which, as plain rules without a database.

planned -> in production -> finished. Participants can be changed until the batch is finished.
A finished batch counts as stock. It can be reopened for a correction (its quantity, material
cost, date or participants) only while nothing has been allocated from it: once a unit is promised
to an order, the proceeds and premi of that unit are computed from the batch as it stands, so the
batch is fixed and a mistake is corrected by a new, reversing entry in the ledger instead.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from shop.i18n import gettext as _

from .models import BatchStatus

MAX_QUANTITY = 1_000_000
# Rp 2 miliar: ample for one batch, and within a 32-bit integer column.
MAX_MATERIAL_COST = 2_000_000_000
# Pieces or hours one WBP put into one batch; the bound keeps a typo from reaching the ledger.
MAX_CONTRIBUTION = 1_000_000


class Refused(Exception):
    """A change the rules do not allow; the message is for the staff member who asked."""

    @property
    def message(self) -> str:
        return str(self.args[0])


def facility_today(timezone: str, now: datetime | None = None) -> date:
    """Today's date where the facility is: Ruteng (UTC+8) starts a day an hour before Jakarta."""
    zone = ZoneInfo(timezone)
    return (now.astimezone(zone) if now else datetime.now(zone)).date()


def participants_editable(status: BatchStatus) -> bool:
    return status is not BatchStatus.FINISHED


def check_participants_editable(status: BatchStatus) -> None:
    if not participants_editable(status):
        raise Refused(_("The batch is finished: its participants can no longer change."))


def check_start(status: BatchStatus) -> BatchStatus:
    """The status after starting production."""
    if status is not BatchStatus.PLANNED:
        raise Refused(_("Only a planned batch can be started."))
    return BatchStatus.IN_PRODUCTION


def check_finish(
    status: BatchStatus,
    participants: int,
    started_on: date | None,
    finished_on: date,
    today: date,
) -> BatchStatus:
    """The status after finishing: the batch becomes stock, so it must be complete."""
    if status is not BatchStatus.IN_PRODUCTION:
        raise Refused(_("Only a batch in production can be finished."))
    if participants < 1:
        raise Refused(
            _(
                "Add at least one participant first: premi from the sale of this batch is "
                "shared among the WBP who made it."
            )
        )
    if finished_on > today:
        raise Refused(_("The finished date cannot be in the future."))
    if started_on is not None and finished_on < started_on:
        raise Refused(
            _("The finished date cannot be before the start (%(date)s).", date=started_on)
        )
    return BatchStatus.FINISHED


def check_reopen(status: BatchStatus, quantity_allocated: int) -> BatchStatus:
    """The status after reopening a finished batch for a correction."""
    if status is not BatchStatus.FINISHED:
        raise Refused(_("Only a finished batch can be reopened."))
    if quantity_allocated > 0:
        raise Refused(
            _(
                "Units of this batch are already allocated to orders, so it can no longer be "
                "corrected."
            )
        )
    return BatchStatus.IN_PRODUCTION
