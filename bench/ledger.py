"""Benchmark of the ledger at national scale: one facility's payout run and monthly report.

One command creates a throw-away PostgreSQL database, seeds facilities, products and WBP with
`bench.seed_scale`, then writes two years of orders and about a million ledger postings straight
into the tables with COPY: going through `finance.ledger.post` one posting at a time would take
hours. Amounts are split with `finance.split.split_sale`, keyed and traced as
`finance.proceeds` and `finance.payouts` write them, so `flask ledger check` finds the generated
ledger sound. It then times the queries a finance officer waits for, on the busiest facility.

    .venv/bin/python -m bench.ledger [--postings 1000000] [--keep]
    .venv/bin/python -m bench.ledger --reuse karya_bench_ledger_XXXX   # time a kept database
"""

from __future__ import annotations

import argparse
import calendar
import importlib
import json
import os
import platform
import random
import secrets
import statistics
import time
from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy import event, text

from bench import seed_scale
from finance.shares import largest_remainder
from finance.split import DEFAULT_RULE, Maker, Shares, SplitBase, SplitRule, split_sale

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
SERVER = "postgresql://postgres@127.0.0.1:5432"
RANDOM_SEED = 20261124
FIRST_MONTH = date(2024, 11, 1)
MONTHS = 24  # November 2024 to October 2026; the last month is left unpaid, for plan_run
BUYERS = 20_000
TARGET_MS = 1000.0
REFUND_SHARE = 0.02  # orders partly refunded
RULE_CHANGE = date(2025, 7, 1)
LOCKED = "!"  # a password hash nothing matches: nobody logs in as a generated buyer

# Columns given to COPY, per table, in the order the generator writes them.
COLUMNS: dict[str, tuple[str, ...]] = {
    table: tuple(columns.split())
    for table, columns in {
        "user_account": "id email password_hash name phone active",
        "split_rule": "id facility_id effective_from premi_bp pnbp_bp modal_bp base",
        "customer_order": "id reference checkout_key buyer_id facility_id status delivery_method"
        " delivery_address delivery_fee payment_method subtotal note cancel_reason placed_at",
        "order_line": "id order_id product_id quantity unit_price tier_min_quantity made_to_order"
        " made_to_order_days shipped cancelled cancel_reason",
        "line_allocation": "id line_id batch_id quantity released",
        "order_paid": "order_id paid_at amount",
        "ledger_account": "id kind facility_id wbp_id balance",
        "ledger_posting": "id key kind facility_id occurred_at order_id rule_id memo created_at",
        "ledger_entry": "id posting_id account_id amount order_line_id allocation_id batch_id"
        " wbp_id units memo",
        "payout_run": "id facility_id period_start period_end status method created_by_id"
        " approved_by_id paid_at created_at",
        "payout_line": "id run_id wbp_id balance amount",
        "pnbp_deposit": "id facility_id amount billing_code ntpn deposited_on created_by_id"
        " created_at",
    }.items()
}
WITH_ID = [table for table, columns in COLUMNS.items() if columns[0] == "id"]

# The finance officer's monthly figures for one facility, from the ledger alone. Sales are the
# proceeds divided among makers (delivery fees excluded), net of refunds in the month.
MONTHLY_REPORT = """
SELECT
    COALESCE(-SUM(e.amount) FILTER (WHERE e.memo = 'clearing'), 0) AS sales,
    COALESCE(SUM(e.amount) FILTER (WHERE e.memo = 'material'), 0) AS material_recovered,
    COALESCE(SUM(e.amount) FILTER (WHERE e.memo = 'premi'), 0) AS premi,
    COALESCE(SUM(e.amount) FILTER (WHERE e.memo = 'pnbp'), 0) AS pnbp,
    COALESCE(SUM(e.amount) FILTER (WHERE e.memo = 'modal'), 0) AS modal,
    COUNT(DISTINCT e.wbp_id) FILTER (WHERE e.memo = 'premi' AND e.amount > 0)
        AS participating_wbp
FROM ledger_posting AS p
JOIN ledger_entry AS e ON e.posting_id = p.id
WHERE p.facility_id = :facility_id
  AND p.kind IN ('proceeds', 'refund')
  AND p.occurred_at >= :start AND p.occurred_at < :end
"""


def month_start(index: int) -> date:
    """The first day of the `index`-th month of the generated history."""
    months = FIRST_MONTH.year * 12 + FIRST_MONTH.month - 1 + index
    return date(months // 12, months % 12 + 1, 1)


def month_end(first: date) -> date:
    return first.replace(day=calendar.monthrange(first.year, first.month)[1])


NULL = r"\N"  # COPY text format; the generator's strings hold no tab, newline or backslash
Trace = tuple[int, int, int] | tuple[str, str, str]  # order line, allocation, batch
UNTRACED: Trace = (NULL, NULL, NULL)


# --- what the seed left: the catalogue the orders are drawn from ---------------------------


@dataclass(frozen=True)
class SaleBatch:
    id: int
    made: int
    material_cost: int
    makers: tuple[Maker, ...]


@dataclass(frozen=True)
class SaleProduct:
    id: int
    price: int
    moq: int
    batches: tuple[SaleBatch, ...]


@dataclass
class SaleFacility:
    id: int
    products: list[SaleProduct] = field(default_factory=list)
    wbp: list[int] = field(default_factory=list)
    rules: list[tuple[date, int | None, SplitRule]] = field(default_factory=list)

    def rule_on(self, day: date) -> tuple[int | None, SplitRule]:
        """As `finance.ledger.rule_on`: the latest rule in force, else the 1990 default."""
        found = bisect_right([since for since, _id, _rule in self.rules], day)
        if not found:
            return None, DEFAULT_RULE
        _since, rule_id, rule = self.rules[found - 1]
        return rule_id, rule


def load_catalogue(conn: psycopg.Connection) -> list[SaleFacility]:
    """Facilities with the products they can sell: finished batches with makers recorded."""
    makers: dict[int, list[Maker]] = defaultdict(list)
    for batch_id, wbp_id, contribution in conn.execute(
        "SELECT batch_id, wbp_id, contribution FROM batch_participation ORDER BY id"
    ):
        makers[batch_id].append(Maker(wbp_id, contribution))
    batches: dict[int, list[SaleBatch]] = defaultdict(list)
    for batch_id, product_id, made, cost in conn.execute(
        "SELECT id, product_id, quantity_made, material_cost FROM production_batch"
        " WHERE status = 'finished' AND quantity_made > 0 ORDER BY id"
    ):
        if makers[batch_id]:
            batches[product_id].append(SaleBatch(batch_id, made, cost, tuple(makers[batch_id])))
    facilities = {
        fid: SaleFacility(fid) for (fid,) in conn.execute("SELECT id FROM facility ORDER BY id")
    }
    for product_id, facility_id, price, moq in conn.execute(
        "SELECT id, facility_id, base_price, min_order_qty FROM product WHERE active ORDER BY id"
    ):
        if batches[product_id]:
            facilities[facility_id].products.append(
                SaleProduct(product_id, price, moq, tuple(batches[product_id]))
            )
    for wbp_id, facility_id in conn.execute("SELECT id, facility_id FROM wbp ORDER BY id"):
        facilities[facility_id].wbp.append(wbp_id)
    return [f for f in facilities.values() if f.products]


# --- the generator ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Allocation:
    id: int
    batch: SaleBatch
    units: int


@dataclass(frozen=True)
class SoldLine:
    id: int
    product: SaleProduct
    quantity: int
    allocations: tuple[Allocation, ...]


@dataclass
class Ledger:
    """Rows of every loaded table in COPY text, with ids given here, and what is still owed.

    Rows accumulate per month; `take` hands them over for COPY. Balances are followed as the
    postings are made, so that payout runs pay what was owed at each month's end.
    """

    facilities: list[SaleFacility]
    rng: random.Random
    rows: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    counts: Counter[str] = field(default_factory=Counter)
    accounts: dict[tuple[str, int, int | None], int] = field(default_factory=dict)
    premi: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    pnbp: dict[int, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, table: str, **values: object) -> int:
        """Appends a row, columns not given left NULL; returns its id, the next one."""
        self.counts[table] += 1
        row_id = values.setdefault("id", self.counts[table])
        fields = [values.get(column) for column in COLUMNS[table]]
        self.rows[table].append("\t".join([NULL if v is None else str(v) for v in fields]) + "\n")
        return row_id  # type: ignore[return-value]

    def take(self) -> dict[str, str]:
        chunks = {table: "".join(lines) for table, lines in self.rows.items() if lines}
        self.rows.clear()
        return chunks

    # accounts, postings and entries, as finance.ledger writes them

    def account(self, kind: str, facility_id: int, wbp_id: int | None = None) -> int:
        key = (kind, facility_id, wbp_id)
        if key not in self.accounts:
            self.accounts[key] = self.add(
                "ledger_account", kind=kind, facility_id=facility_id, wbp_id=wbp_id, balance=0
            )
        return self.accounts[key]

    def posting(self, key: str, kind: str, facility_id: int, at: datetime, **more: object) -> int:
        """`more`: order_id, rule_id, memo."""
        more.setdefault("memo", "")
        return self.add(
            "ledger_posting",
            key=key,
            kind=kind,
            facility_id=facility_id,
            occurred_at=at,
            created_at=at,
            **more,
        )

    def entry(
        self,
        posting_id: int,
        kind: str,
        facility_id: int,
        amount: int,
        *,
        wbp_id: int | None = None,
        trace: Trace = UNTRACED,
        units: int = 0,
        memo: str = "",
    ) -> None:
        """The hot path, six to ten million rows: one f-string, in COLUMNS' order."""
        if amount == 0:
            return  # finance.ledger.post writes no zero entries
        account_id = self.accounts.get((kind, facility_id, wbp_id))
        if account_id is None:
            account_id = self.account(kind, facility_id, wbp_id)
        self.counts["ledger_entry"] += 1
        line_id, allocation_id, batch_id = trace
        wbp = NULL if wbp_id is None else wbp_id
        self.rows["ledger_entry"].append(
            f"{self.counts['ledger_entry']}\t{posting_id}\t{account_id}\t{amount}\t{line_id}\t"
            f"{allocation_id}\t{batch_id}\t{wbp}\t{units}\t{memo}\n"
        )
        if kind == "premi":
            self.premi[wbp_id] += amount  # type: ignore[index]
        elif kind == "pnbp":
            self.pnbp[facility_id] += amount

    def shares(
        self, posting_id: int, facility_id: int, shares: Shares, sign: int, trace: Trace, units: int
    ) -> None:
        """The entries of `finance.proceeds._share_lines`, in its order."""
        post = partial(self.entry, posting_id, facility_id=facility_id, trace=trace)
        post(kind="clearing", amount=-sign * shares.gross, units=units, memo="clearing")
        post(kind="modal", amount=sign * shares.material_recovered, memo="material")
        post(kind="pnbp", amount=sign * shares.pnbp, memo="pnbp")
        post(kind="modal", amount=sign * shares.modal, memo="modal")
        for wbp_id, amount in shares.premi_by_wbp.items():
            post(kind="premi", amount=sign * amount, wbp_id=wbp_id, memo="premi")

    # the business: buyers, split rules, orders, refunds, payouts, PNBP deposits

    def buyers(self) -> None:
        for n in range(1, BUYERS + 1):
            self.add(
                "user_account",
                email=f"pembeli{n:05d}@bench.invalid",
                password_hash=LOCKED,
                name=f"Pembeli Fiktif {n:05d}",
                phone="",
                active=True,
            )

    def split_rules(self) -> None:
        """A quarter of facilities raise premi from July 2025; a few split the gross from the
        start. Postings carry the rule they were split by."""
        for facility in self.facilities:
            draw = self.rng.random()
            if draw < 0.05:
                since, rule = FIRST_MONTH, SplitRule(3000, 2000, 5000, SplitBase.GROSS)
            elif draw < 0.30:
                since, rule = RULE_CHANGE, SplitRule(5500, 1500, 3000, SplitBase.NET)
            else:
                continue
            rule_id = self.add(
                "split_rule",
                facility_id=facility.id,
                effective_from=since,
                premi_bp=rule.premi_bp,
                pnbp_bp=rule.pnbp_bp,
                modal_bp=rule.modal_bp,
                base=rule.base.value,
            )
            facility.rules.append((since, rule_id, rule))

    def lines(self, facility: SaleFacility, order_id: int) -> list[SoldLine]:
        """One to three products, each from one batch, or from two now and then."""
        rng = self.rng
        sold = []
        count = rng.choices((1, 2, 3), (60, 30, 10))[0]
        for product in rng.sample(facility.products, min(count, len(facility.products))):
            quantity = product.moq * rng.choice((1, 1, 1, 2, 2, 3, 5, 10))
            line_id = self.add(
                "order_line",
                order_id=order_id,
                product_id=product.id,
                quantity=quantity,
                unit_price=product.price,
                made_to_order=0,
                shipped=quantity,
                cancelled=False,
                cancel_reason="",
            )
            if quantity > 1 and len(product.batches) > 1 and rng.random() < 0.1:
                first, second = rng.sample(product.batches, 2)
                split = rng.randint(1, quantity - 1)
                parts = [(first, split), (second, quantity - split)]
            else:
                parts = [(rng.choice(product.batches), quantity)]
            allocations = tuple(
                Allocation(
                    self.add(
                        "line_allocation",
                        line_id=line_id,
                        batch_id=batch.id,
                        quantity=units,
                        released=False,
                    ),
                    batch,
                    units,
                )
                for batch, units in parts
            )
            sold.append(SoldLine(line_id, product, quantity, allocations))
        return sold

    def order(
        self, facility: SaleFacility, paid_at: datetime, status: str, refund_by: datetime
    ) -> None:
        """A paid order, credited as `finance.proceeds.credit_order` credits it; a few are
        partly refunded, by `refund_by`."""
        rng = self.rng
        order_id = self.counts["customer_order"] + 1
        rule_id, rule = facility.rule_on(paid_at.date())
        lines = self.lines(facility, order_id)
        subtotal = sum(line.product.price * line.quantity for line in lines)
        fee = rng.randint(2, 40) * 5_000 if rng.random() < 0.35 else None
        total = subtotal + (fee or 0)
        self.add(
            "customer_order",
            reference=f"BENCH-{order_id:09d}",
            checkout_key=f"{rng.getrandbits(64):016x}",
            buyer_id=rng.randint(1, BUYERS),
            facility_id=facility.id,
            status=status,
            delivery_method="delivery" if fee else "pickup",
            delivery_address="Jl. Fiktif No. 1, Kota Contoh" if fee else "",
            delivery_fee=fee,
            payment_method=rng.choice(("bank_transfer", "card", "pay_on_pickup")),
            subtotal=subtotal,
            note="",
            cancel_reason="",
            placed_at=paid_at - timedelta(minutes=rng.randint(5, 2_880)),
        )
        self.add("order_paid", order_id=order_id, paid_at=paid_at, amount=total)

        receipt = self.posting(
            f"receipt:{order_id}", "receipt", facility.id, paid_at, order_id=order_id
        )
        self.entry(receipt, "cash", facility.id, -total)
        self.entry(receipt, "clearing", facility.id, total)
        if fee:
            posting = self.posting(
                f"delivery:{order_id}", "proceeds", facility.id, paid_at, order_id=order_id
            )
            self.entry(posting, "clearing", facility.id, -fee)
            self.entry(posting, "modal", facility.id, fee, memo="delivery")
        for line in lines:
            for allocation in line.allocations:
                posting = self.posting(
                    f"proceeds:{allocation.id}",
                    "proceeds",
                    facility.id,
                    paid_at,
                    order_id=order_id,
                    rule_id=rule_id,
                )
                self.credit(posting, facility.id, line, allocation, allocation.units, rule, +1)
        if rng.random() < REFUND_SHARE:
            refunded_at = min(paid_at + timedelta(days=rng.randint(1, 20)), refund_by)
            self.refund(facility, order_id, rng.choice(lines), rule, refunded_at)

    def credit(
        self,
        posting_id: int,
        facility_id: int,
        line: SoldLine,
        allocation: Allocation,
        units: int,
        rule: SplitRule,
        sign: int,
    ) -> None:
        batch = allocation.batch
        shares = split_sale(
            units, line.product.price, batch.made, batch.material_cost, rule, batch.makers
        )
        trace = (line.id, allocation.id, batch.id)
        self.shares(posting_id, facility_id, shares, sign, trace, units)

    def refund(
        self, facility: SaleFacility, order_id: int, line: SoldLine, rule: SplitRule, at: datetime
    ) -> None:
        """Some units of one line, reversed as `finance.proceeds.reverse_refund` does it: by
        the rule of the sale, spread over the line's allocations."""
        units = self.rng.randint(1, line.quantity)
        self.counts["refund"] += 1
        refund_id = self.counts["refund"]
        amount = units * line.product.price
        posting = self.posting(
            f"refund-receipt:{refund_id}", "refund", facility.id, at, order_id=order_id
        )
        self.entry(posting, "clearing", facility.id, -amount)
        self.entry(posting, "cash", facility.id, amount)
        spread = largest_remainder(units, [(a, a.units) for a in line.allocations])
        posting = self.posting(f"refund:{refund_id}", "refund", facility.id, at, order_id=order_id)
        for allocation, part in spread.items():
            if part:
                self.credit(posting, facility.id, line, allocation, part, rule, -1)

    def settle(self, first: date) -> None:
        """After a month: most facilities pay their WBP's premi and deposit their PNBP."""
        last = month_end(first)
        for facility in self.facilities:
            if self.rng.random() < 0.85:
                self.payout(facility, first, last)
            if self.pnbp[facility.id] > 0 and self.rng.random() < 0.8:
                self.deposit(facility, last + timedelta(days=self.rng.randint(5, 15)))

    def payout(self, facility: SaleFacility, first: date, last: date) -> None:
        """A paid run, as `plan_run` plans it and `mark_paid` posts it."""
        owed = [(w, self.premi[w]) for w in facility.wbp if self.premi.get(w)]
        if not any(balance > 0 for _w, balance in owed):
            return
        days = timedelta(days=self.rng.randint(3, 10), hours=10)
        at = datetime.combine(last, datetime.min.time()) + days
        method = self.rng.choice(("savings_account", "prepaid_card", "on_release"))
        run_id = self.add(
            "payout_run",
            facility_id=facility.id,
            period_start=first,
            period_end=last,
            status="paid",
            method=method,
            paid_at=at,
            created_at=at - timedelta(days=2),
        )
        posting = self.posting(
            f"payout:{run_id}", "payout", facility.id, at, memo=f"{method} {first}..{last}"
        )
        total = 0
        for wbp_id, balance in owed:
            amount = max(0, balance)
            self.add("payout_line", run_id=run_id, wbp_id=wbp_id, balance=balance, amount=amount)
            if amount:
                self.entry(posting, "premi", facility.id, -amount, wbp_id=wbp_id, memo="payout")
                total += amount
        self.entry(posting, "cash", facility.id, total, memo="payout")

    def deposit(self, facility: SaleFacility, on: date) -> None:
        """All PNBP owed, deposited, as `record_pnbp_deposit` records it."""
        owed = self.pnbp[facility.id]
        deposit_id = self.counts["pnbp_deposit"] + 1
        ntpn = f"NTPN{deposit_id:012d}"
        self.add(
            "pnbp_deposit",
            facility_id=facility.id,
            amount=owed,
            billing_code=f"8200{deposit_id:011d}",
            ntpn=ntpn,
            deposited_on=on,
            created_at=on,
        )
        at = datetime.combine(on, datetime.min.time())
        posting = self.posting(
            f"pnbp:{deposit_id}", "pnbp_deposit", facility.id, at, memo=f"NTPN {ntpn}"
        )
        self.entry(posting, "pnbp", facility.id, -owed)
        self.entry(posting, "cash", facility.id, owed)


def generate(ledger: Ledger, postings: int, flush: Callable[[dict[str, str]], None]) -> None:
    """Month by month, busier as the programme grows, until about `postings` are written."""
    rng = ledger.rng
    ledger.buyers()
    ledger.split_rules()
    flush(ledger.take())
    weights = [1.0 + month / (MONTHS - 1) for month in range(MONTHS)]  # later months: twice
    cumulative = [0.0]
    for facility in ledger.facilities:
        cumulative.append(cumulative[-1] + len(facility.products))
    cumulative.pop(0)
    per_order = 3.4  # postings an order makes; corrected from each month generated
    settlements = 1.7 * len(ledger.facilities)
    for month in range(MONTHS):
        first = month_start(month)
        after = month_start(month + 1)
        budget = postings * weights[month] / sum(weights)
        if month < MONTHS - 1:
            budget -= settlements
        before = ledger.counts["ledger_posting"]
        orders = max(1, round(budget / per_order))
        span = (after - first).total_seconds()
        start = datetime.combine(first, datetime.min.time())
        month_last = datetime.combine(after, datetime.min.time()) - timedelta(seconds=1)
        chosen = rng.choices(ledger.facilities, cum_weights=cumulative, k=orders)
        seconds = sorted(rng.uniform(0, span - 1) for _ in range(orders))
        # Orders of the last month are still being fulfilled; earlier ones are done.
        recent = ("confirmed", "ready", "shipped", "completed")
        for facility, second in zip(chosen, seconds, strict=True):
            status = rng.choice(recent) if month == MONTHS - 1 else "completed"
            ledger.order(facility, start + timedelta(seconds=int(second)), status, month_last)
        per_order = (ledger.counts["ledger_posting"] - before) / orders
        if month < MONTHS - 1:
            made = ledger.counts["ledger_posting"]
            ledger.settle(first)
            settlements = ledger.counts["ledger_posting"] - made
        flush(ledger.take())


# --- the database -----------------------------------------------------------------------------


@contextmanager
def database(reuse: str | None, keep: bool) -> Iterator[str]:
    """The database's name: a new one, dropped afterwards unless kept, or one kept before."""
    if reuse:
        yield reuse
        return
    name = f"karya_bench_ledger_{secrets.token_hex(4)}"
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield name
    finally:
        if keep:
            print(f"Kept database {name}")
        else:
            with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
                admin.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )


def sqlalchemy_url(name: str) -> str:
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


@dataclass(frozen=True)
class Deferred:
    """Secondary indexes and foreign keys of the loaded tables, dropped for the load and made
    again after it: building an index once is far cheaper than updating it row by row, and
    re-adding a foreign key checks every row in one join instead of one lookup per row."""

    indexes: list[tuple[str, str]]  # name, definition
    foreign_keys: list[tuple[str, str, str]]  # table, name, definition

    @classmethod
    def read(cls, conn: psycopg.Connection) -> Deferred:
        tables = list(COLUMNS)
        indexes = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes i WHERE schemaname = 'public'"
            " AND tablename = ANY(%s) AND NOT EXISTS"
            " (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname) ORDER BY indexname",
            (tables,),
        ).fetchall()
        foreign_keys = conn.execute(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)"
            " FROM pg_constraint WHERE contype = 'f' AND conrelid::regclass::text = ANY(%s)"
            " ORDER BY conname",
            (tables,),
        ).fetchall()
        return cls(list(indexes), list(foreign_keys))

    def drop(self, conn: psycopg.Connection) -> None:
        for table, name, _definition in self.foreign_keys:
            conn.execute(
                sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
                    sql.Identifier(table), sql.Identifier(name)
                )
            )
        for name, _definition in self.indexes:
            conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))

    def restore(self, conn: psycopg.Connection) -> None:
        conn.execute("SET maintenance_work_mem = '1GB'")
        for _name, definition in self.indexes:
            conn.execute(sql.SQL(definition))  # type: ignore[arg-type]
        for table, name, definition in self.foreign_keys:
            conn.execute(
                sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} ").format(
                    sql.Identifier(table), sql.Identifier(name)
                )
                + sql.SQL(definition)  # type: ignore[arg-type]
            )


def copy_chunks(conn: psycopg.Connection, chunks: dict[str, str]) -> None:
    with conn.transaction(), conn.cursor() as cursor:
        for table, data in chunks.items():
            statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
                sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, COLUMNS[table]))
            )
            with cursor.copy(statement) as copy:
                copy.write(data)


def load_ledger(name: str, postings: int) -> dict[str, float]:
    """Orders and the ledger, generated on this thread and copied on another, so that Python
    builds one month while the server parses the one before."""
    timings: dict[str, float] = {}
    url = f"{SERVER}/{name}"
    with psycopg.connect(url, autocommit=True) as conn:
        facilities = load_catalogue(conn)
        deferred = Deferred.read(conn)
        deferred.drop(conn)
        ledger = Ledger(facilities, random.Random(RANDOM_SEED))
        started = time.perf_counter()
        with psycopg.connect(url) as copier, ThreadPoolExecutor(1) as pool:
            pending: Future[None] | None = None

            def flush(chunks: dict[str, str]) -> None:
                nonlocal pending
                if pending is not None:
                    pending.result()  # at most one month waiting: memory stays bounded
                pending = pool.submit(copy_chunks, copier, chunks)

            generate(ledger, postings, flush)
            if pending is not None:
                pending.result()
        timings["generate_and_copy_s"] = time.perf_counter() - started

        started = time.perf_counter()
        deferred.restore(conn)
        timings["indexes_and_foreign_keys_s"] = time.perf_counter() - started
        if Deferred.read(conn) != deferred:
            raise RuntimeError("the rebuilt schema differs from the migrated one")

        started = time.perf_counter()
        for table in WITH_ID:
            conn.execute(
                sql.SQL(
                    "SELECT setval(pg_get_serial_sequence({0}, 'id'),"
                    " COALESCE((SELECT MAX(id) FROM {1}), 0) + 1, false)"
                ).format(sql.Literal(table), sql.Identifier(table))
            )
        # Stock follows the generated allocations, as the order flow would have kept it.
        conn.execute(
            "UPDATE production_batch AS b"
            " SET quantity_made = GREATEST(b.quantity_made, s.units), quantity_allocated = s.units"
            " FROM (SELECT p.id, COALESCE(SUM(a.quantity) FILTER (WHERE NOT a.released), 0)"
            " AS units FROM production_batch p LEFT JOIN line_allocation a ON a.batch_id = p.id"
            " GROUP BY p.id) AS s WHERE s.id = b.id"
        )
        conn.execute(
            "UPDATE ledger_account AS a SET balance = s.total"
            " FROM (SELECT account_id, SUM(amount) AS total FROM ledger_entry"
            " GROUP BY account_id) AS s WHERE s.account_id = a.id"
        )
        timings["sequences_stock_balances_s"] = time.perf_counter() - started
        started = time.perf_counter()
        # What autovacuum would do soon anyway: statistics, and the visibility map that lets
        # index-only scans skip the heap.
        conn.execute("VACUUM ANALYZE")
        timings["vacuum_analyze_s"] = time.perf_counter() - started
    return timings


def table_sizes(conn: psycopg.Connection) -> dict[str, int]:
    tables = ["facility", "wbp", "product", "production_batch", "batch_participation", *COLUMNS]
    return {
        table: conn.execute(
            sql.SQL("SELECT COUNT(*) FROM {}").format(sql.Identifier(table))
        ).fetchone()[0]  # type: ignore[index]
        for table in tables
    }


def ledger_indexes(conn: psycopg.Connection) -> list[str]:
    """Every index on the two big tables, so a result says which indexes it was measured with."""
    rows = conn.execute(
        "SELECT indexdef FROM pg_indexes WHERE tablename IN ('ledger_entry', 'ledger_posting')"
        " ORDER BY tablename, indexname"
    )
    return [definition for (definition,) in rows]


# --- the measurements -------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    label: str
    call: Callable[[], object]
    targeted: bool = True  # under the 1 s target; the rest is for information
    whole_database: bool = False  # seconds, not milliseconds: run fewer times


@dataclass(frozen=True)
class Timing:
    name: str
    targeted: bool
    runs: int
    median_ms: float
    max_ms: float
    samples_ms: list[float]

    @property
    def verdict(self) -> str:
        if not self.targeted:
            return "(info)"
        return "yes" if self.max_ms < TARGET_MS else "NO"


def timed(case: Case, runs: int) -> tuple[Timing, object]:
    """The timing, and what the last run returned."""
    samples = []
    returned: object = None
    for _ in range(runs):
        started = time.perf_counter()
        returned = case.call()
        samples.append(round((time.perf_counter() - started) * 1000, 2))
    median = round(statistics.median(samples), 2)
    return Timing(case.label, case.targeted, runs, median, max(samples), samples), returned


@contextmanager
def captured(engine: Any) -> Iterator[list[tuple[str, Any]]]:
    """The SELECT statements the app sends, with their parameters, to EXPLAIN them."""
    seen: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def explain(engine: Any, statements: list[tuple[str, Any]]) -> list[list[str]]:
    plans = []
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        for statement, parameters in statements:
            try:
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
                plans.append([row[0] for row in cursor.fetchall()])
            except psycopg.errors.QueryCanceled:
                raw.rollback()
                cursor.execute("EXPLAIN " + statement, parameters)
                note = "-- EXPLAIN ANALYZE cancelled by statement_timeout; the plan alone:"
                plans.append([note, *(row[0] for row in cursor.fetchall())])
            except psycopg.Error as error:
                plans.append([f"-- {error!r}", statement])
            raw.rollback()
    finally:
        raw.close()
    return plans


def report_cases(facility_id: int, first: date) -> list[Case]:
    """What the finance pages call in `finance.reports`, being written alongside this
    benchmark: each case only if its function is there."""
    try:
        reports = importlib.import_module("finance.reports")
    except ModuleNotFoundError:
        return []
    from catalog.models import Facility
    from shop.extensions import db

    timezone = db.session.get(Facility, facility_id).timezone
    db.session.rollback()
    last = month_end(first)
    wanted: list[tuple[str, str, Callable[[Any], object], bool]] = [
        ("monthly_figures", "1 month", lambda f: f(facility_id, timezone, last, 1), True),
        ("monthly_figures", "12 months, the page", lambda f: f(facility_id, timezone, last, 12),
         True),
        ("premi_balances", "page 1 of 50", lambda f: f(facility_id, None, 1, 50), False),
        ("overview", "", lambda f: f(facility_id), False),
        ("premi_credited", "facility page", lambda f: f(facility_id), False),
        ("public_impact", "whole database", lambda f: f(), False),
    ]  # fmt: skip
    return [
        Case(
            f"reports.{name}" + (f" ({note})" if note else ""),
            partial(call, function),
            targeted=target,
            whole_database=name == "public_impact",
        )
        for name, note, call, target in wanted
        if (function := getattr(reports, name, None))
    ]


def measure(
    name: str, runs: int, slow_runs: int, timeout_s: int, with_explain: bool
) -> dict[str, Any]:
    """Times the finance queries on the facility with the most entries, in its last month.

    Every statement is cut off after `timeout_s`, so that a query that does not scale shows as
    an error instead of stopping the benchmark.
    """
    from finance import checks, payouts
    from shop import create_app
    from shop.extensions import db

    options = {"connect_args": {"options": f"-c statement_timeout={timeout_s * 1000}"}}
    app = create_app(
        {"SQLALCHEMY_DATABASE_URI": sqlalchemy_url(name), "SQLALCHEMY_ENGINE_OPTIONS": options}
    )
    result: dict[str, Any] = {"timings": [], "errors": {}, "explain": {}}
    with app.app_context():
        facility_id, entries = db.session.execute(
            text(
                "SELECT a.facility_id, COUNT(*) FROM ledger_entry e"
                " JOIN ledger_account a ON a.id = e.account_id"
                " GROUP BY a.facility_id ORDER BY 2 DESC LIMIT 1"
            )
        ).one()
        premi_entries = db.session.scalar(
            text(
                "SELECT COUNT(*) FROM ledger_entry e JOIN ledger_account a ON a.id = e.account_id"
                " WHERE a.facility_id = :f AND a.kind = 'premi'"
            ),
            {"f": facility_id},
        )
        last_sale = db.session.scalar(
            text("SELECT MAX(occurred_at) FROM ledger_posting WHERE kind = 'proceeds'")
        )
        db.session.rollback()
        first = last_sale.date().replace(day=1)
        last = month_end(first)
        result |= {
            "facility_id": facility_id,
            "facility_entries": entries,
            "facility_premi_entries": premi_entries,
            "month": first.isoformat(),
        }
        window = {
            "facility_id": facility_id,
            "start": datetime.combine(first, datetime.min.time()),
            "end": datetime.combine(last + timedelta(days=1), datetime.min.time()),
        }
        planned: list[int] = []

        def plan() -> None:
            planned.append(payouts.plan_run(facility_id, first, last, None).id)

        def report() -> object:
            return db.session.execute(text(MONTHLY_REPORT), window).one()

        cases = [
            Case("payouts.premi_balances", lambda: payouts.premi_balances(facility_id, last)),
            Case("payouts.plan_run", plan),
            Case("monthly report (bench SQL)", report),
            *report_cases(facility_id, first),
        ]
        check = Case(
            "ledger check (whole database)", checks.problems, targeted=False, whole_database=True
        )
        result["load_average_before"] = os.getloadavg()
        for case in [*cases, check]:
            count = slow_runs if case.whole_database else runs
            if not count:
                continue
            try:
                timing, returned = timed(
                    replace(case, call=in_request(case.call, db.session)), count
                )
            except Exception as error:  # a report still being written may fail: say so, go on
                db.session.rollback()
                result["errors"][case.label] = repr(error)
                print(f"  {case.label}: FAILED {error!r}")
            else:
                result["timings"].append(asdict(timing) | {"verdict": timing.verdict})
                print(
                    f"  {case.label}: median {timing.median_ms:.1f} ms, max {timing.max_ms:.1f} ms"
                )
                if case is check:
                    result["ledger_check_problems"] = returned
            if with_explain:
                with captured(db.engine) as statements, suppress(Exception):
                    in_request(case.call, db.session)()
                result["explain"][case.label] = explain(db.engine, statements)
        result["load_average_after"] = os.getloadavg()
        result["monthly_report"] = {k: int(v) for k, v in report()._mapping.items()}
        result["payout_lines"] = len(payouts.premi_balances(facility_id, last))
        # The draft runs planned here would pile up on a kept database: remove them.
        db.session.execute(
            text("DELETE FROM audit_entry WHERE entity = 'payout_run' AND entity_id = ANY(:ids)"),
            {"ids": planned},
        )
        db.session.execute(text("DELETE FROM payout_run WHERE id = ANY(:ids)"), {"ids": planned})
        db.session.commit()
        db.engine.dispose()
    return result


def in_request(call: Callable[[], object], session: Any) -> Callable[[], object]:
    """The call, then its transaction ended, as at the end of a request."""

    def run() -> object:
        try:
            return call()
        finally:
            session.rollback()

    return run


def environment(conn: psycopg.Connection) -> dict[str, Any]:
    settings = dict(
        conn.execute(
            "SELECT name, current_setting(name) FROM pg_settings WHERE name IN"
            " ('shared_buffers', 'work_mem', 'effective_cache_size', 'random_page_cost', 'jit',"
            " 'max_parallel_workers_per_gather')"
        ).fetchall()
    )
    return {
        "postgresql": conn.execute("SHOW server_version").fetchone()[0],  # type: ignore[index]
        "settings": settings,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "load_average_at_start": os.getloadavg(),
    }


def print_table(result: dict[str, Any]) -> None:
    print()
    print(
        f"Facility {result['facility_id']} ({result['facility_entries']:,} entries, "
        f"{result['facility_premi_entries']:,} premi), month {result['month']}"
    )
    width = max(len(timing["name"]) for timing in result["timings"])
    print(f"{'query':<{width}} {'runs':>4} {'median ms':>10} {'max ms':>10}  under 1 s")
    for timing in result["timings"]:
        print(
            f"{timing['name']:<{width}} {timing['runs']:>4} {timing['median_ms']:>10.1f} "
            f"{timing['max_ms']:>10.1f}  {timing['verdict']}"
        )
    for label, error in result["errors"].items():
        print(f"{label:<{width}} FAILED: {error[:80]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postings", type=int, default=1_000_000)
    parser.add_argument("--facilities", type=int, default=500)
    parser.add_argument("--products", type=int, default=10_000)
    parser.add_argument("--wbp", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=9, help="runs of each timed query")
    parser.add_argument(
        "--slow-runs", type=int, default=3, help="runs of the whole-database queries, 0: none"
    )
    parser.add_argument(
        "--timeout", type=int, default=120, help="seconds after which a statement is cancelled"
    )
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--reuse", metavar="DATABASE", help="time a kept database, no seeding")
    parser.add_argument("--explain", action="store_true", help="add EXPLAIN ANALYZE plans")
    parser.add_argument("--output", type=Path, default=RESULTS / "ledger.json")
    args = parser.parse_args()

    result: dict[str, Any] = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "arguments": {k: str(v) for k, v in vars(args).items()},
    }
    with database(args.reuse, args.keep) as name:
        result["database"] = name
        with psycopg.connect(f"{SERVER}/{name}", autocommit=True) as conn:
            result["environment"] = environment(conn)
        if not args.reuse:
            print(f"Seeding {name}...")
            seeding: dict[str, float] = {}
            started = time.perf_counter()
            seed_scale.seed(sqlalchemy_url(name), args.facilities, args.products, args.wbp)
            seeding["seed_scale_s"] = time.perf_counter() - started
            seeding |= load_ledger(name, args.postings)
            seeding["total_s"] = time.perf_counter() - started
            result["seed_seconds"] = {k: round(v, 1) for k, v in seeding.items()}
            print("  " + ", ".join(f"{k} {v:.1f}" for k, v in seeding.items()))
        with psycopg.connect(f"{SERVER}/{name}", autocommit=True) as conn:
            result["sizes"] = table_sizes(conn)
            result["ledger_indexes"] = ledger_indexes(conn)
        print("  " + ", ".join(f"{k} {v:,}" for k, v in result["sizes"].items()))
        print("Timing...")
        result |= measure(name, args.runs, args.slow_runs, args.timeout, args.explain)
    print_table(result)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"Wrote {args.output}")


if __name__ == "__main__":
    main()
