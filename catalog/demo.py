"""Demo data from the field reports in shared/domain.md; every WBP name is invented."""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass
from datetime import date

from PIL import Image, ImageDraw
from sqlalchemy import select

from shop.extensions import db

from .models import (
    Batch,
    BatchParticipation,
    BatchStatus,
    Category,
    ContributionBasis,
    Facility,
    FacilityKind,
    PriceTier,
    Product,
    ProductPhoto,
    Programme,
    Unit,
    Wbp,
)


@dataclass(frozen=True)
class DemoBatch:
    code: str
    finished_on: date
    quantity: int
    material_cost: int
    contributions: tuple[int, ...]
    basis: ContributionBasis = ContributionBasis.PIECES


@dataclass(frozen=True)
class DemoProduct:
    slug: str
    programme: str
    name: str
    description: str
    category: Category
    unit: Unit
    base_price: int
    min_order_qty: int
    order_multiple: int
    tiers: tuple[tuple[int, int], ...]
    batches: tuple[DemoBatch, ...]
    colour: tuple[int, int, int]


@dataclass(frozen=True)
class DemoFacility:
    slug: str
    name: str
    facility_class: str
    city: str
    province: str
    regional_office: str
    timezone: str
    code: str
    programmes: tuple[tuple[str, str, str, int], ...]  # slug, name, description, pieces/WBP/day
    products: tuple[DemoProduct, ...]
    makers: tuple[str, ...]


FACILITIES: tuple[DemoFacility, ...] = (
    DemoFacility(
        slug="rutan-banjarnegara",
        name="Rutan Kelas IIB Banjarnegara",
        facility_class="IIB",
        city="Kabupaten Banjarnegara",
        province="Jawa Tengah",
        regional_office="Kanwil Ditjenpas Jawa Tengah",
        timezone="Asia/Jakarta",
        code="BNA",
        programmes=(
            ("besek", "Besek bambu", "Anyaman bambu untuk kemasan makanan dan ikan asin.", 10),
            ("rajut", "Rajut", "Tas, topi dan dompet rajutan tangan.", 1),
        ),
        products=(
            DemoProduct(
                slug="besek-bambu-banjarnegara",
                programme="besek",
                name="Besek bambu",
                description="Kotak anyaman bambu untuk ikan asin, kue dan hantaran. "
                "Dijual per kodi (20 buah), minimal 100 buah.",
                category=Category.CRAFTS,
                unit=Unit.PCS,
                base_price=125,
                min_order_qty=100,
                order_multiple=20,
                tiers=((5000, 115), (10000, 110)),
                batches=(
                    DemoBatch(
                        "BSK-2026-10",
                        date(2026, 10, 16),
                        1600,
                        40_000,
                        (300, 290, 270, 260, 250, 230),
                    ),
                ),
                colour=(196, 154, 92),
            ),
            DemoProduct(
                slug="tas-rajut-banjarnegara",
                programme="rajut",
                name="Tas rajut",
                description="Tas rajut benang katun, dikerjakan tangan.",
                category=Category.TEXTILES,
                unit=Unit.PCS,
                base_price=85_000,
                min_order_qty=1,
                order_multiple=1,
                tiers=((10, 80_000), (50, 75_000)),
                batches=(
                    DemoBatch("RJT-2026-09", date(2026, 9, 30), 40, 1_200_000, (12, 10, 10, 8)),
                ),
                colour=(176, 82, 120),
            ),
        ),
        makers=(
            "Agus Fiktif",
            "Bambang Rekaan",
            "Cahyo Contoh",
            "Dedi Samaran",
            "Eko Khayalan",
            "Fajar Andaian",
        ),
    ),
    DemoFacility(
        slug="rutan-magetan",
        name="Rutan Kelas IIB Magetan",
        facility_class="IIB",
        city="Kabupaten Magetan",
        province="Jawa Timur",
        regional_office="Kanwil Ditjenpas Jawa Timur",
        timezone="Asia/Jakarta",
        code="MGT",
        programmes=(
            (
                "keset",
                "Keset kain perca",
                "Keset dari kain perca yang dipilah, dipola dan dijahit.",
                8,
            ),
        ),
        products=(
            DemoProduct(
                slug="keset-kain-perca-magetan",
                programme="keset",
                name="Keset kain perca",
                description="Keset tebal dari kain perca warna-warni, dijahit rapat. "
                "Dijual per kodi.",
                category=Category.TEXTILES,
                unit=Unit.PCS,
                base_price=15_000,
                min_order_qty=20,
                order_multiple=20,
                tiers=((100, 13_500), (500, 12_500)),
                batches=(
                    DemoBatch("KST-2026-09", date(2026, 9, 20), 160, 480_000, (40, 35, 30, 30, 25)),
                    DemoBatch(
                        "KST-2026-10", date(2026, 10, 25), 140, 420_000, (35, 30, 30, 25, 20)
                    ),
                ),
                colour=(70, 130, 180),
            ),
        ),
        makers=("Gita Fiktif", "Hana Rekaan", "Indah Contoh", "Juwita Samaran", "Kartika Khayalan"),
    ),
    DemoFacility(
        slug="rutan-ruteng",
        name="Rutan Kelas IIB Ruteng",
        facility_class="IIB",
        city="Kabupaten Manggarai",
        province="Nusa Tenggara Timur",
        regional_office="Kanwil Ditjenpas Nusa Tenggara Timur",
        timezone="Asia/Makassar",
        code="RTG",
        programmes=(
            (
                "meubel",
                "Meubel",
                "Pertukangan kayu bersama UPTD SKB Randong dan bengkel Elite Jaya Meubel.",
                1,
            ),
        ),
        products=(
            DemoProduct(
                slug="kursi-kayu-ruteng",
                programme="meubel",
                name="Kursi kayu",
                description="Kursi kayu dengan sandaran, dikerjakan di bengkel kayu Rutan.",
                category=Category.FURNITURE,
                unit=Unit.PCS,
                base_price=450_000,
                min_order_qty=1,
                order_multiple=1,
                tiers=((6, 420_000),),
                batches=(
                    DemoBatch(
                        "MBL-2026-08",
                        date(2026, 8, 28),
                        12,
                        2_400_000,
                        (120, 100, 90, 80),
                        ContributionBasis.HOURS,
                    ),
                ),
                colour=(120, 84, 50),
            ),
            DemoProduct(
                slug="set-meja-tamu-ruteng",
                programme="meubel",
                name="Set meja tamu",
                description="Satu meja dan empat kursi tamu dari kayu lokal.",
                category=Category.FURNITURE,
                unit=Unit.SET,
                base_price=3_500_000,
                min_order_qty=1,
                order_multiple=1,
                tiers=(),
                batches=(),
                colour=(150, 100, 60),
            ),
        ),
        makers=("Lukas Fiktif", "Markus Rekaan", "Nikolaus Contoh", "Oktavianus Samaran"),
    ),
    DemoFacility(
        slug="rutan-serang",
        name="Rutan Kelas IIB Serang",
        facility_class="IIB",
        city="Kabupaten Serang",
        province="Banten",
        regional_office="Kanwil Ditjenpas Banten",
        timezone="Asia/Jakarta",
        code="SRG",
        programmes=(
            ("lele", "Budidaya lele", "Lele dari kolam Rutan, bersama dinas perikanan.", 15),
        ),
        products=(
            DemoProduct(
                slug="lele-segar-serang",
                programme="lele",
                name="Lele segar",
                description="Lele konsumsi dari kolam Rutan, dijual per kilogram, minimal 10 kg.",
                category=Category.FOOD,
                unit=Unit.KG,
                base_price=24_000,
                min_order_qty=10,
                order_multiple=1,
                tiers=((50, 22_000), (200, 21_000)),
                batches=(
                    DemoBatch(
                        "LLE-2026-11",
                        date(2026, 11, 10),
                        250,
                        3_000_000,
                        (40, 35, 35, 30, 30, 30, 25, 25),
                    ),
                ),
                colour=(60, 140, 110),
            ),
        ),
        makers=(
            "Putra Fiktif",
            "Rizal Rekaan",
            "Sandi Contoh",
            "Taufik Samaran",
            "Umar Khayalan",
            "Wahyu Andaian",
            "Yusuf Fiktif",
            "Zainal Rekaan",
        ),
    ),
)


@functools.cache
def placeholder_photo(colour: tuple[int, int, int], label: str) -> bytes:
    """A plain illustrated card standing in for a real photo of the product."""
    image = Image.new("RGB", (640, 480), colour)
    draw = ImageDraw.Draw(image)
    light = tuple(min(255, c + 40) for c in colour)
    for x in range(0, 640, 40):
        draw.line([(x, 0), (x + 240, 480)], fill=light, width=6)
    draw.rectangle([(0, 380), (640, 480)], fill=(255, 255, 255))
    draw.text((24, 410), label, fill=(40, 40, 40), font_size=40)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def _get_or_create(model, defaults: dict | None = None, **keys):  # type: ignore[no-untyped-def]
    found = db.session.scalar(select(model).filter_by(**keys))
    if found is None:
        found = model(**keys, **(defaults or {}))
        db.session.add(found)
        db.session.flush()
    return found


def seed() -> None:
    """Idempotent: natural keys (slugs, codes, registration numbers) find what is already there."""
    for spec in FACILITIES:
        facility = _get_or_create(
            Facility,
            slug=spec.slug,
            defaults={
                "name": spec.name,
                "kind": FacilityKind.RUTAN,
                "facility_class": spec.facility_class,
                "city": spec.city,
                "province": spec.province,
                "regional_office": spec.regional_office,
                "timezone": spec.timezone,
            },
        )
        programmes = {
            slug: _get_or_create(
                Programme,
                facility_id=facility.id,
                slug=slug,
                defaults={"name": name, "description": text, "pieces_per_wbp_per_day": rate},
            )
            for slug, name, text, rate in spec.programmes
        }
        makers = [
            _get_or_create(
                Wbp,
                facility_id=facility.id,
                registration_number=f"DEMO-{spec.code}-{n:03d}",
                defaults={"name": name},
            )
            for n, name in enumerate(spec.makers, start=1)
        ]
        for item in spec.products:
            _seed_product(facility, programmes[item.programme], item, makers)
    db.session.commit()


def _seed_product(
    facility: Facility, programme: Programme, spec: DemoProduct, makers: list[Wbp]
) -> None:
    product = _get_or_create(
        Product,
        slug=spec.slug,
        defaults={
            "facility": facility,
            "programme": programme,
            "name": spec.name,
            "description": spec.description,
            "category": spec.category,
            "unit": spec.unit,
            "base_price": spec.base_price,
            "min_order_qty": spec.min_order_qty,
            "order_multiple": spec.order_multiple,
            "tiers": [PriceTier(min_quantity=q, unit_price=p) for q, p in spec.tiers],
            "photos": [
                ProductPhoto(
                    content_type="image/png", data=placeholder_photo(spec.colour, spec.name)
                )
            ],
        },
    )
    for item in spec.batches:
        batch = _get_or_create(
            Batch,
            product_id=product.id,
            code=item.code,
            defaults={
                "status": BatchStatus.FINISHED,
                "started_on": date(item.finished_on.year, item.finished_on.month, 1),
                "finished_on": item.finished_on,
                "quantity_made": item.quantity,
                "material_cost": item.material_cost,
                "contribution_basis": item.basis,
            },
        )
        for wbp, contribution in zip(makers, item.contributions, strict=False):
            _get_or_create(
                BatchParticipation,
                batch_id=batch.id,
                wbp_id=wbp.id,
                defaults={"contribution": contribution},
            )
