"""Seeds a database at national scale: hundreds of facilities, thousands of products.

The demo seed has four facilities, which tells nothing about how the listing queries behave once
every Rutan and Lapas lists its products. Rows go in through SQLAlchemy Core executemany with
explicit ids, so the default sizes load in seconds. Every WBP name is fictional.
"""

from __future__ import annotations

import argparse
import io
import random
import re
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import flask_migrate
from PIL import Image
from sqlalchemy import Connection, Table, func, insert, select, text

from catalog.models import (
    BatchStatus,
    Category,
    ContributionBasis,
    Facility,
    FacilityKind,
    Product,
    Programme,
    Unit,
    WbpStatus,
    index_text,
)
from shop import create_app
from shop.extensions import db

RANDOM_SEED = 20261122
CHUNK = 5_000
Row = dict[str, Any]

WIB, WITA, WIT = "Asia/Jakarta", "Asia/Makassar", "Asia/Jayapura"

# The 38 provinces, with a few cities or regencies that have a Rutan or Lapas.
PROVINCES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("Aceh", WIB, ("Banda Aceh", "Lhokseumawe", "Kabupaten Aceh Besar", "Langsa")),
    ("Sumatera Utara", WIB, ("Medan", "Pematangsiantar", "Kabupaten Deli Serdang", "Sibolga")),
    ("Sumatera Barat", WIB, ("Padang", "Bukittinggi", "Kabupaten Solok", "Payakumbuh")),
    ("Riau", WIB, ("Pekanbaru", "Dumai", "Kabupaten Bengkalis", "Kabupaten Kampar")),
    ("Kepulauan Riau", WIB, ("Batam", "Tanjungpinang", "Kabupaten Karimun")),
    ("Jambi", WIB, ("Jambi", "Kabupaten Muaro Jambi", "Sungai Penuh")),
    ("Sumatera Selatan", WIB, ("Palembang", "Lubuklinggau", "Prabumulih", "Kabupaten Lahat")),
    ("Kepulauan Bangka Belitung", WIB, ("Pangkalpinang", "Kabupaten Belitung", "Kabupaten Bangka")),
    ("Bengkulu", WIB, ("Bengkulu", "Kabupaten Rejang Lebong")),
    (
        "Lampung",
        WIB,
        ("Bandar Lampung", "Metro", "Kabupaten Lampung Tengah", "Kabupaten Way Kanan"),
    ),
    ("DKI Jakarta", WIB, ("Jakarta Pusat", "Jakarta Timur", "Jakarta Selatan", "Jakarta Utara")),
    ("Banten", WIB, ("Serang", "Tangerang", "Cilegon", "Kabupaten Serang", "Kabupaten Pandeglang")),
    (
        "Jawa Barat",
        WIB,
        ("Bandung", "Bogor", "Cirebon", "Sukabumi", "Kabupaten Garut", "Tasikmalaya", "Bekasi"),
    ),
    (
        "Jawa Tengah",
        WIB,
        ("Semarang", "Surakarta", "Kabupaten Banjarnegara", "Pekalongan", "Magelang", "Cilacap"),
    ),
    ("DI Yogyakarta", WIB, ("Yogyakarta", "Kabupaten Sleman", "Kabupaten Bantul", "Wonosari")),
    (
        "Jawa Timur",
        WIB,
        ("Surabaya", "Malang", "Kabupaten Magetan", "Kediri", "Madiun", "Banyuwangi", "Pamekasan"),
    ),
    ("Bali", WITA, ("Denpasar", "Kabupaten Karangasem", "Kabupaten Bangli", "Kabupaten Tabanan")),
    ("Nusa Tenggara Barat", WITA, ("Mataram", "Bima", "Kabupaten Sumbawa", "Praya")),
    ("Nusa Tenggara Timur", WITA, ("Kupang", "Kabupaten Manggarai", "Maumere", "Waingapu")),
    ("Kalimantan Barat", WIB, ("Pontianak", "Singkawang", "Kabupaten Sanggau", "Ketapang")),
    ("Kalimantan Tengah", WIB, ("Palangka Raya", "Sampit", "Kabupaten Kapuas")),
    ("Kalimantan Selatan", WITA, ("Banjarmasin", "Banjarbaru", "Kabupaten Kotabaru")),
    ("Kalimantan Timur", WITA, ("Samarinda", "Balikpapan", "Bontang", "Tenggarong")),
    ("Kalimantan Utara", WITA, ("Tarakan", "Kabupaten Nunukan", "Kabupaten Bulungan")),
    ("Sulawesi Utara", WITA, ("Manado", "Bitung", "Kotamobagu", "Kabupaten Minahasa")),
    ("Gorontalo", WITA, ("Gorontalo", "Kabupaten Boalemo", "Kabupaten Pohuwato")),
    ("Sulawesi Tengah", WITA, ("Palu", "Kabupaten Poso", "Luwuk", "Kabupaten Tolitoli")),
    ("Sulawesi Barat", WITA, ("Mamuju", "Kabupaten Polewali Mandar", "Kabupaten Majene")),
    ("Sulawesi Selatan", WITA, ("Makassar", "Parepare", "Palopo", "Watampone", "Kabupaten Gowa")),
    ("Sulawesi Tenggara", WITA, ("Kendari", "Baubau", "Kabupaten Kolaka", "Raha")),
    ("Maluku", WIT, ("Ambon", "Tual", "Masohi")),
    ("Maluku Utara", WIT, ("Ternate", "Tidore Kepulauan", "Kabupaten Halmahera Utara")),
    ("Papua", WIT, ("Jayapura", "Kabupaten Biak Numfor", "Kabupaten Sarmi")),
    ("Papua Barat", WIT, ("Manokwari", "Kabupaten Fakfak", "Kabupaten Kaimana")),
    ("Papua Barat Daya", WIT, ("Sorong", "Kabupaten Raja Ampat", "Kabupaten Sorong Selatan")),
    ("Papua Selatan", WIT, ("Merauke", "Kabupaten Boven Digoel", "Kabupaten Mappi")),
    ("Papua Tengah", WIT, ("Nabire", "Kabupaten Mimika", "Kabupaten Paniai")),
    ("Papua Pegunungan", WIT, ("Wamena", "Kabupaten Lanny Jaya", "Kabupaten Yahukimo")),
)


@dataclass(frozen=True)
class ProgrammeKind:
    """A kind of skills programme and the products it makes."""

    slug: str
    name: str
    description: str
    pieces_per_wbp_per_day: int
    category: Category
    unit: Unit
    basis: ContributionBasis
    items: tuple[str, ...]
    variants: tuple[str, ...]
    price: tuple[int, int]  # base price range in rupiah
    batch_size: tuple[int, int]


PROGRAMMES: tuple[ProgrammeKind, ...] = (
    ProgrammeKind(
        "besek",
        "Besek bambu",
        "Anyaman bambu untuk kemasan makanan dan ikan asin.",
        10,
        Category.CRAFTS,
        Unit.PCS,
        ContributionBasis.PIECES,
        ("Besek bambu", "Besek bambu bertutup", "Tampah bambu", "Bakul nasi", "Tudung saji"),
        ("ukuran kecil", "ukuran sedang", "ukuran besar", "isi 10", "warna alami"),
        (100, 35_000),
        (200, 2_000),
    ),
    ProgrammeKind(
        "rajut",
        "Rajut",
        "Tas, topi dan dompet rajutan tangan.",
        1,
        Category.TEXTILES,
        Unit.PCS,
        ContributionBasis.PIECES,
        ("Tas rajut", "Topi rajut", "Dompet rajut", "Syal rajut", "Tas laptop rajut"),
        ("motif bunga", "warna pastel", "warna merah marun", "anak-anak", "edisi lebaran"),
        (25_000, 150_000),
        (10, 60),
    ),
    ProgrammeKind(
        "keset",
        "Keset kain perca",
        "Keset dari kain perca yang dipilah, dipola dan dijahit.",
        8,
        Category.TEXTILES,
        Unit.PCS,
        ContributionBasis.PIECES,
        ("Keset kain perca", "Keset bulat", "Lap dapur perca", "Sarung bantal perca"),
        ("warna-warni", "ukuran besar", "motif garis", "anti selip"),
        (8_000, 45_000),
        (40, 300),
    ),
    ProgrammeKind(
        "meubel",
        "Meubel",
        "Pertukangan kayu bersama bengkel mitra.",
        1,
        Category.FURNITURE,
        Unit.PCS,
        ContributionBasis.HOURS,
        ("Kursi kayu", "Meja tamu", "Rak buku", "Lemari pakaian", "Bangku taman"),
        ("kayu jati", "kayu mahoni", "finishing natural", "pesanan khusus"),
        (250_000, 4_500_000),
        (2, 20),
    ),
    ProgrammeKind(
        "lele",
        "Budidaya lele",
        "Lele dari kolam Rutan, bersama dinas perikanan.",
        15,
        Category.FOOD,
        Unit.KG,
        ContributionBasis.PIECES,
        ("Lele segar", "Lele asap", "Abon lele", "Keripik kulit lele"),
        ("ukuran konsumsi", "kemasan 250 g", "kemasan 500 g", "rasa pedas"),
        (20_000, 90_000),
        (50, 400),
    ),
    ProgrammeKind(
        "batik",
        "Batik tulis",
        "Membatik dengan canting, dari pola sampai pewarnaan.",
        1,
        Category.TEXTILES,
        Unit.PCS,
        ContributionBasis.HOURS,
        ("Kain batik tulis", "Kemeja batik", "Taplak meja batik", "Selendang batik"),
        ("motif kawung", "motif parang", "motif mega mendung", "warna sogan"),
        (75_000, 600_000),
        (5, 40),
    ),
    ProgrammeKind(
        "roti",
        "Roti dan kue",
        "Dapur produksi roti dan kue kering.",
        40,
        Category.FOOD,
        Unit.PCS,
        ContributionBasis.PIECES,
        ("Roti manis", "Kue kering nastar", "Bolu pandan", "Roti tawar"),
        ("rasa cokelat", "rasa keju", "isi 20", "edisi lebaran"),
        (3_000, 85_000),
        (50, 500),
    ),
    ProgrammeKind(
        "konveksi",
        "Konveksi",
        "Menjahit pakaian dan seragam dengan mesin jahit.",
        5,
        Category.TEXTILES,
        Unit.PCS,
        ContributionBasis.PIECES,
        ("Kaos oblong", "Seragam kerja", "Kemeja koko", "Mukena", "Sarung"),
        ("ukuran M", "ukuran L", "ukuran XL", "warna putih", "bordir nama"),
        (35_000, 250_000),
        (20, 200),
    ),
    ProgrammeKind(
        "pandan",
        "Anyaman pandan",
        "Tikar dan tas dari daun pandan yang dikeringkan.",
        4,
        Category.CRAFTS,
        Unit.PCS,
        ContributionBasis.PIECES,
        ("Tikar pandan", "Tas anyaman pandan", "Topi pandan", "Kotak tisu pandan"),
        ("ukuran besar", "motif kotak", "warna alami", "pewarna alam"),
        (15_000, 180_000),
        (20, 150),
    ),
    ProgrammeKind(
        "sandal",
        "Sandal",
        "Sandal hotel dan sandal jepit.",
        6,
        Category.CRAFTS,
        Unit.PCS,
        ContributionBasis.PIECES,
        ("Sandal hotel", "Sandal jepit", "Sandal kulit"),
        ("ukuran dewasa", "ukuran anak", "cetak logo", "warna hitam"),
        (4_000, 95_000),
        (50, 600),
    ),
    ProgrammeKind(
        "hidroponik",
        "Sayur hidroponik",
        "Kebun sayur hidroponik di halaman blok.",
        20,
        Category.FOOD,
        Unit.KG,
        ContributionBasis.PIECES,
        ("Selada hidroponik", "Kangkung hidroponik", "Pakcoy hidroponik"),
        ("kemasan 250 g", "kemasan 500 g", "segar"),
        (15_000, 45_000),
        (20, 150),
    ),
    ProgrammeKind(
        "batok",
        "Kerajinan tempurung kelapa",
        "Perabot dan hiasan dari batok kelapa.",
        6,
        Category.CRAFTS,
        Unit.PCS,
        ContributionBasis.PIECES,
        ("Gayung batok", "Mangkuk batok", "Lampu hias batok", "Asbak batok"),
        ("ukuran kecil", "ukuran besar", "ukiran motif", "set isi 6"),
        (10_000, 120_000),
        (20, 200),
    ),
)

REMARKS = (
    "Dikerjakan tangan dengan bahan pilihan.",
    "Cocok untuk oleh-oleh dan hantaran.",
    "Bisa dipesan dalam jumlah besar untuk acara kantor.",
    "Dikemas rapi dan aman untuk pengiriman.",
    "Hasil pelatihan bersama mitra usaha setempat.",
)
CLASSES = {FacilityKind.RUTAN: ("I", "IIA", "IIB"), FacilityKind.LAPAS: ("I", "IIA", "IIB", "III")}
LAPAS_KINDS = ("", "", "", "Perempuan ", "Narkotika ", "Pemuda ")
BATCH_STATUSES = (BatchStatus.FINISHED, BatchStatus.IN_PRODUCTION, BatchStatus.PLANNED)
BATCH_STATUS_WEIGHTS = (80, 12, 8)
WBP_STATUSES = (WbpStatus.ACTIVE, WbpStatus.RELEASED, WbpStatus.TRANSFERRED)
WBP_STATUS_WEIGHTS = (82, 13, 5)
LAST_DAY = date(2026, 11, 15)


def slugify(value: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", value.lower()).strip("-")


def tiny_png() -> bytes:
    """One small PNG shared by every photo row: the benchmark measures listings, not images."""
    buffer = io.BytesIO()
    Image.new("RGB", (8, 6), (196, 154, 92)).save(buffer, format="PNG")
    return buffer.getvalue()


@dataclass
class Dataset:
    """Rows per table, in foreign-key order, each with an explicit id."""

    facility: list[Row]
    programme: list[Row]
    wbp: list[Row]
    product: list[Row]
    price_tier: list[Row]
    product_photo: list[Row]
    production_batch: list[Row]
    batch_participation: list[Row]

    def tables(self) -> Iterator[tuple[str, list[Row]]]:
        yield from vars(self).items()


def _round_price(value: int) -> int:
    step = 100 if value < 10_000 else 500 if value < 100_000 else 5_000
    return max(step, round(value / step) * step)


def _order_rules(rng: random.Random, kind: ProgrammeKind, price: int) -> tuple[int, int]:
    """Minimum order and pack size: cheap pieces go by the kodi (20), food from 5 to 20 kg."""
    if kind.unit is Unit.KG:
        return rng.choice((5, 10, 20)), 1
    if price < 5_000:
        return rng.choice((100, 200)), 20
    if price < 50_000:
        return rng.choice((1, 10, 20)), 1
    return 1, 1


def _tiers(rng: random.Random, product_id: int, price: int, moq: int) -> list[Row]:
    count = rng.choice((0, 1, 1, 2, 2, 3))
    quantities = sorted(rng.sample((5, 10, 20, 50, 100), count))
    return [
        {
            "product_id": product_id,
            "min_quantity": moq * factor,
            "unit_price": _round_price(int(price * (1 - 0.05 * step))),
        }
        for step, factor in enumerate(quantities, start=1)
    ]


def _facilities(rng: random.Random, count: int) -> tuple[list[Row], list[Facility]]:
    """Rows, and unsaved Facility objects that `index_text` reads for products' search text."""
    places = [(p, tz, city) for p, tz, cities in PROVINCES for city in cities]
    seen: dict[str, int] = defaultdict(int)
    rows, objects = [], []
    for facility_id in range(1, count + 1):
        # Cycling through the places first puts every province on the map even at small sizes.
        province, timezone, city = places[(facility_id - 1) % len(places)]
        kind = rng.choice((FacilityKind.RUTAN, FacilityKind.LAPAS))
        facility_class = rng.choice(CLASSES[kind])
        place = city.removeprefix("Kabupaten ")
        prefix = "Rutan" if kind is FacilityKind.RUTAN else "Lapas " + rng.choice(LAPAS_KINDS)
        name = f"{prefix.strip()} Kelas {facility_class} {place}"
        seen[name] += 1
        if seen[name] > 1:
            name = f"{name} {seen[name]}"
        row = {
            "id": facility_id,
            "slug": f"{slugify(name)}-{facility_id:03d}",
            "name": name,
            "kind": kind.value,
            "facility_class": facility_class,
            "city": city,
            "province": province,
            "regional_office": f"Kanwil Ditjenpas {province}",
            "timezone": timezone,
        }
        rows.append(row)
        objects.append(Facility(name=name, city=city, province=province))
    return rows, objects


def build(facilities: int, products: int, wbp: int) -> Dataset:
    """All rows, from one seeded generator: the same sizes always give the same database."""
    rng = random.Random(RANDOM_SEED)
    facility_rows, facility_objects = _facilities(rng, facilities)
    facility_ids = [row["id"] for row in facility_rows]
    # Some facilities are large and busy, others small: both WBP and products follow this.
    weights = [rng.uniform(0.3, 2.0) for _ in facility_ids]

    programme_rows: list[Row] = []
    programmes_of: dict[int, list[tuple[int, ProgrammeKind, Programme]]] = {}
    for facility_id in facility_ids:
        kinds = rng.sample(PROGRAMMES, rng.randint(1, 3))
        programmes_of[facility_id] = []
        for kind in kinds:
            programme_id = len(programme_rows) + 1
            programme_rows.append(
                {
                    "id": programme_id,
                    "facility_id": facility_id,
                    "slug": kind.slug,
                    "name": kind.name,
                    "description": kind.description,
                    "pieces_per_wbp_per_day": kind.pieces_per_wbp_per_day,
                }
            )
            programmes_of[facility_id].append((programme_id, kind, Programme(name=kind.name)))

    wbp_rows: list[Row] = []
    wbp_of: dict[int, list[int]] = defaultdict(list)
    for wbp_id, facility_id in enumerate(rng.choices(facility_ids, weights, k=wbp), start=1):
        wbp_of[facility_id].append(wbp_id)
        wbp_rows.append(
            {
                "id": wbp_id,
                "facility_id": facility_id,
                "registration_number": f"BENCH-{facility_id:04d}-{len(wbp_of[facility_id]):05d}",
                "name": f"WBP Fiktif {wbp_id:05d}",
                "status": rng.choices(WBP_STATUSES, WBP_STATUS_WEIGHTS)[0].value,
            }
        )

    data = Dataset(facility_rows, programme_rows, wbp_rows, [], [], [], [], [])
    photo = tiny_png()
    for product_id, facility_id in enumerate(rng.choices(facility_ids, weights, k=products), 1):
        programme_id, kind, programme = rng.choice(programmes_of[facility_id])
        facility = facility_objects[facility_id - 1]
        item = rng.choice(kind.items)
        name = f"{item} {rng.choice(kind.variants)}" if rng.random() < 0.7 else item
        description = f"{item} buatan WBP {facility.name}. {rng.choice(REMARKS)}"
        price = _round_price(rng.randint(*kind.price))
        moq, multiple = _order_rules(rng, kind, price)
        search_text = index_text(
            Product(name=name, description=description, category=kind.category),
            programme,
            facility,
        )
        data.product.append(
            {
                "id": product_id,
                "slug": f"{slugify(name)}-{product_id:05d}",
                "facility_id": facility_id,
                "programme_id": programme_id,
                "name": name,
                "description": description,
                "category": kind.category.value,
                "unit": kind.unit.value,
                "base_price": price,
                "min_order_qty": moq,
                "order_multiple": multiple,
                "active": rng.random() < 0.97,
                "search_text": search_text,
            }
        )
        data.price_tier += _tiers(rng, product_id, price, moq)
        data.product_photo.append(
            {"product_id": product_id, "position": 0, "content_type": "image/png", "data": photo}
        )
        for _ in range(rng.randint(1, 3)):
            _batch(rng, data, product_id, kind, price, wbp_of[facility_id])
    for table in ("price_tier", "product_photo"):
        for row_id, row in enumerate(getattr(data, table), start=1):
            row["id"] = row_id
    return data


def _batch(
    rng: random.Random,
    data: Dataset,
    product_id: int,
    kind: ProgrammeKind,
    price: int,
    makers: Sequence[int],
) -> None:
    """One production batch of the product, and the facility's WBP who worked on it."""
    batch_id = len(data.production_batch) + 1
    status = rng.choices(BATCH_STATUSES, BATCH_STATUS_WEIGHTS)[0]
    started = LAST_DAY - timedelta(days=rng.randint(0, 600))
    finished = started + timedelta(days=rng.randint(7, 45))
    made = rng.randint(*kind.batch_size) if status is BatchStatus.FINISHED else 0
    # A quarter of finished batches are sold out; the rest have some stock left.
    allocated = made if rng.random() < 0.25 else rng.randint(0, made)
    data.production_batch.append(
        {
            "id": batch_id,
            "product_id": product_id,
            "code": f"{kind.slug[:3].upper()}-{started.year}-{batch_id:05d}",
            "status": status.value,
            "started_on": None if status is BatchStatus.PLANNED else started,
            "finished_on": finished if status is BatchStatus.FINISHED else None,
            "quantity_made": made,
            "quantity_allocated": allocated,
            "material_cost": int(made * price * rng.uniform(0.2, 0.4)),
            "contribution_basis": kind.basis.value,
        }
    )
    upper = 160 if kind.basis is ContributionBasis.HOURS else 300
    for wbp_id in rng.sample(makers, min(len(makers), rng.randint(2, 8))):
        data.batch_participation.append(
            {
                "id": len(data.batch_participation) + 1,
                "batch_id": batch_id,
                "wbp_id": wbp_id,
                "contribution": rng.randint(1, upper),
            }
        )


def _insert(conn: Connection, table: Table, rows: list[Row]) -> None:
    for start in range(0, len(rows), CHUNK):
        conn.execute(insert(table), rows[start : start + CHUNK])


def seed(
    database_url: str, facilities: int = 500, products: int = 10_000, wbp: int = 50_000
) -> dict[str, int]:
    """Migrates an empty database to the app's schema and fills it; returns rows per table."""
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url})
    with app.app_context():
        flask_migrate.upgrade()
        data = build(facilities, products, wbp)
        with db.engine.begin() as conn:
            for name, rows in data.tables():
                table = db.metadata.tables[name]
                _insert(conn, table, rows)
                if conn.dialect.name == "postgresql":
                    # Ids were given explicitly, so the serial sequence must move past them.
                    sequence = func.pg_get_serial_sequence(name, "id")
                    next_id = func.coalesce(func.max(table.c.id), 0) + 1
                    conn.execute(select(func.setval(sequence, next_id, False)))
        if db.engine.dialect.name == "postgresql":
            # What autovacuum would do soon anyway: planner statistics and the visibility map,
            # so the benchmark measures the steady state and autovacuum does not run during it.
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM ANALYZE"))
        db.engine.dispose()
    return {name: len(rows) for name, rows in data.tables()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True, help="an empty database")
    parser.add_argument("--facilities", type=int, default=500)
    parser.add_argument("--products", type=int, default=10_000)
    parser.add_argument("--wbp", type=int, default=50_000)
    args = parser.parse_args()
    started = time.perf_counter()
    counts = seed(args.database_url, args.facilities, args.products, args.wbp)
    elapsed = time.perf_counter() - started
    for name, count in counts.items():
        print(f"{name:>20} {count:>8,}")
    print(f"Seeded in {elapsed:.1f} s")


if __name__ == "__main__":
    main()
