"""The catalogue: the products sold, as they appear in the workbook, with the classification a
correct cleaner derives for each from product_rules.csv and c2_keywords.csv; the tags that may
precede a name, the quantities sold by product type, and each product's item code."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Final

from syno_shared.contract import SheetKind


@dataclass(frozen=True)
class CatalogueEntry:
    """One product as it is sold, with its classification under product_rules.csv / c2_keywords.csv."""

    name: str
    """As it appears in the workbook's Product column (before any tag or stray space)."""
    product_type: str
    sub_cat: str
    list_price_usd: float
    weight: float
    """Relative share of lines on its kind of sheet."""
    sheet_kind: SheetKind = "hardware"
    c2_service_family: str | None = None
    c2_capacity: str | None = None
    c2_plan: str | None = None

    @property
    def product(self) -> str:
        """The normalised name: trimmed and upper-cased (catalogue names carry no tag)."""
        return self.name.strip().upper()

    @property
    def tier(self) -> str | None:
        """T1..T5 for rackmount servers (sub-category SVR-RM-<line>-T<n>), else None."""
        return self.sub_cat.rsplit("-", 1)[1] if self.sub_cat.startswith("SVR-RM-") else None


def _hw(name: str, product_type: str, sub_cat: str, price: float, weight: float) -> CatalogueEntry:
    return CatalogueEntry(name, product_type, sub_cat, price, weight)


def _c2(
    name: str, product_type: str, service: str, capacity: str, plan: str, price: float, weight: float
) -> CatalogueEntry:
    return CatalogueEntry(
        name, product_type, f"C2-{service}-{capacity}-{plan}", price, weight, "c2", service, capacity, plan
    )


# Each classification below was checked by hand against product_rules.csv and
# c2_keywords.csv; tests/sample/test_sample_catalogue.py re-derives every one of them with `re`.
CATALOGUE: Final[tuple[CatalogueEntry, ...]] = (
    # Desktop servers. Note "DS2422+" is T2: the rule's "DS24" branch needs a second "DS".
    _hw("DS124", "SERVER", "SVR-DT-DS-T1", 150, 3.0),
    _hw("DS223j", "SERVER", "SVR-DT-DS-T1", 190, 3.0),
    _hw("DS224+", "SERVER", "SVR-DT-DS-T2", 330, 5.0),
    _hw("DS423+", "SERVER", "SVR-DT-DS-T2", 480, 4.0),
    _hw("DS723+", "SERVER", "SVR-DT-DS-T2", 450, 3.0),
    _hw("DS923+", "SERVER", "SVR-DT-DS-T2", 600, 6.0),
    _hw("DS1522+", "SERVER", "SVR-DT-DS-T2", 750, 3.0),
    _hw("DS1821+", "SERVER", "SVR-DT-DS-T2", 1000, 3.0),
    _hw("DS2422+", "SERVER", "SVR-DT-DS-T2", 1700, 1.0),
    _hw("DS620slim", "SERVER", "SVR-DT-DS-T2", 450, 0.5),
    _hw("DS1621xs+", "SERVER", "SVR-DT-DS-T3", 1600, 1.5),
    _hw("DS3622xs+", "SERVER", "SVR-DT-DS-T3", 3400, 1.0),
    _hw("DX517", "SERVER", "SVR-DT-DX-T2", 470, 1.5),
    _hw("DX1222", "SERVER", "SVR-DT-DX-T3", 800, 0.7),
    # Rackmount servers, general purpose (RS, SA, UC, HD).
    _hw("RS422+", "SERVER", "SVR-RM-GP-T1", 650, 2.0),
    _hw("RS822+", "SERVER", "SVR-RM-GP-T1", 1050, 2.0),
    _hw("RS1221+", "SERVER", "SVR-RM-GP-T1", 1000, 2.5),
    _hw("RS2423+", "SERVER", "SVR-RM-GP-T2", 2400, 1.2),
    _hw("RS2421RP+", "SERVER", "SVR-RM-GP-T2", 2800, 0.6),
    _hw("RS2821RP+", "SERVER", "SVR-RM-GP-T2", 3000, 0.5),
    _hw("RS3621RPxs", "SERVER", "SVR-RM-GP-T2", 4200, 0.4),
    _hw("RS1619xs+", "SERVER", "SVR-RM-GP-T3", 2100, 0.4),
    _hw("RS3621xs+", "SERVER", "SVR-RM-GP-T3", 4500, 0.6),
    _hw("RS4021xs+", "SERVER", "SVR-RM-GP-T3", 6200, 0.3),
    _hw("SA3410", "SERVER", "SVR-RM-GP-T4", 5500, 0.4),
    _hw("SA3610", "SERVER", "SVR-RM-GP-T4", 7500, 0.3),
    _hw("UC3200", "SERVER", "SVR-RM-GP-T4", 6000, 0.1),
    _hw("UC3400", "SERVER", "SVR-RM-GP-T4", 8000, 0.1),
    _hw("SA6400", "SERVER", "SVR-RM-GP-T5", 12000, 0.15),
    _hw("HD6500", "SERVER", "SVR-RM-GP-T5", 22000, 0.05),
    # Rackmount servers, expansion units (RX), flash (FS) and FX.
    _hw("RX418", "SERVER", "SVR-RM-GX-T2", 700, 1.0),
    _hw("RX1217", "SERVER", "SVR-RM-GX-T2", 1300, 0.4),
    _hw("RX1223RP", "SERVER", "SVR-RM-GX-T3", 1600, 0.8),
    _hw("RX1217sas", "SERVER", "SVR-RM-GX-T4", 2500, 0.2),
    _hw("RXD1219sas", "SERVER", "SVR-RM-GX-T4", 3500, 0.1),
    _hw("RX6022sas", "SERVER", "SVR-RM-GX-T5", 9000, 0.1),
    _hw("FS2500", "SERVER", "SVR-RM-FS-T1", 6000, 0.2),
    _hw("FS3410", "SERVER", "SVR-RM-FS-T2", 9000, 0.15),
    _hw("FS3600", "SERVER", "SVR-RM-FS-T2", 14000, 0.1),
    _hw("FS6400", "SERVER", "SVR-RM-FS-T3", 25000, 0.05),
    _hw("FX2421", "SERVER", "SVR-RM-FX-T2", 5000, 0.1),
    # Drives.
    _hw("HAT3300-4T", "DRIVE", "DRV-HD-T1", 110, 8.0),
    _hw("HAT3310-8T", "DRIVE", "DRV-HD-T1", 210, 6.0),
    _hw("HAT3310-16T", "DRIVE", "DRV-HD-T1", 380, 3.0),
    _hw("HAT5300-8T", "DRIVE", "DRV-HD-T2", 260, 4.0),
    _hw("HAT5310-20T", "DRIVE", "DRV-HD-T2", 520, 2.0),
    _hw("HAS5300-12T", "DRIVE", "DRV-HD-T3", 420, 1.0),
    _hw("SAT5210-960G", "DRIVE", "DRV-SD-T2", 230, 2.0),
    _hw("SAT5221-1920G", "DRIVE", "DRV-SD-T2", 420, 1.0),
    _hw("SNV3410-400G", "DRIVE", "DRV-SD-T1", 120, 3.0),
    _hw("SNV3510-800G", "DRIVE", "DRV-SD-T1", 200, 1.5),
    # Accessories.
    _hw("D4ES02-8G", "SVR-ACC", "Memory", 95, 3.0),
    _hw("D4ECSO-2666-16G", "SVR-ACC", "Memory", 180, 2.0),
    _hw("D4RD-2666-32G", "SVR-ACC", "Memory", 320, 1.0),
    _hw("E10G21-F2", "SVR-ACC", "Accessory", 200, 1.5),
    _hw("E10G30-T2", "SVR-ACC", "Accessory", 230, 1.0),
    _hw("E25G30-F2", "SVR-ACC", "Accessory", 320, 0.6),
    _hw("M2D20", "SVR-ACC", "Accessory", 45, 1.0),
    _hw("RKS-02", "SVR-ACC", "Accessory", 110, 1.2),
    _hw("RKS1317", "SVR-ACC", "Accessory", 130, 0.5),
    _hw("Power Adapter 65W_1", "SVR-ACC", "Accessory", 40, 0.5),
    # Extended warranty.
    _hw("EW201", "SVR-EXW", "Extended Warranty", 70, 2.0),
    _hw("EW202", "SVR-EXW", "Extended Warranty", 160, 1.0),
    _hw("Extended Warranty Plus 5Y", "SVR-EXW", "Extended Warranty", 300, 0.3),
    # Surveillance.
    _hw("DVA1622", "SURVEILLANCE", "SVS-DT-DVA", 700, 0.6),
    _hw("DVA3221", "SURVEILLANCE", "SVS-DT-DVA", 2000, 0.3),
    _hw("NVR1218", "SURVEILLANCE", "SVS-DT-OT", 650, 0.2),
    _hw("VS600HD", "SURVEILLANCE", "SVS-DT-VS", 280, 0.2),
    _hw("BC500", "SURVEILLANCE", "SVS-CAM", 230, 1.0),
    _hw("TC500", "SURVEILLANCE", "SVS-CAM", 230, 0.8),
    _hw("Device License x 1", "SURVEILLANCE", "SVS-Lx1", 55, 1.5),
    _hw("Device License x 4", "SURVEILLANCE", "SVS-Lx4", 200, 0.8),
    _hw("Device License x 8", "SURVEILLANCE", "SVS-Lx8", 390, 0.4),
    # Routers and BeeDrive.
    _hw("RT6600ax", "DLG", "RT-AX", 300, 0.8),
    _hw("WRX560", "DLG", "RT-AX", 220, 0.6),
    _hw("RT2600ac", "DLG", "RT-AC", 200, 0.4),
    _hw("MR2200ac", "DLG", "RT-AC", 150, 0.3),
    _hw("BDS70-1T", "DLG", "BE-D", 130, 0.5),
    # DSM licences.
    _hw("VMM Pro 3 Nodes", "DSMLICENSE", "DSMLICENSE", 200, 0.5),
    _hw("MailPlus 5 Licenses", "DSMLICENSE", "DSMLICENSE", 70, 0.5),
    _hw("Presto File Server 1 Client", "DSMLICENSE", "DSMLICENSE", 50, 0.2),
    _hw("Active_Insight_Business_1Y", "DSMLICENSE", "DSMLICENSE", 20, 0.2),
    _hw("Synology DSM Virtual Machine License", "DSMLICENSE", "DSMLICENSE", 60, 0.2),
    # Other: a bundle with a space, "DSM ..." caught by the DS rule first, merchandise.
    _hw("DS923+ Bundle 4x4TB", "Other", "Other", 1000, 0.3),
    _hw("DSM License Pack", "Other", "Other", 120, 0.1),
    _hw("Synology Backpack", "Other", "Other", 40, 0.2),
    # C2 sheets: C2 storage (hybrid) and SaaS SKUs.
    _c2("C2 Storage Basic 100GB", "C2-HYBRID", "STORAGE", "100G", "BASIC", 12, 3.0),
    _c2("C2 Storage Advanced", "C2-HYBRID", "STORAGE", "UNKNOWN", "ADVANCED", 60, 2.0),
    _c2("C2 Storage Advanced 1TB", "C2-HYBRID", "STORAGE", "1T", "ADVANCED", 70, 4.0),
    _c2("C2 Storage Advanced 5TB", "C2-HYBRID", "STORAGE", "5T", "ADVANCED", 300, 1.5),
    _c2("C2 Active Insight Basic", "C2-HYBRID", "UNKNOWN", "UNKNOWN", "BASIC", 15, 0.5),
    _c2("C2_STORAGE_BUSINESS_1T", "C2-SAAS", "STORAGE", "1T", "BUSINESS", 80, 2.0),
    _c2("C2_STORAGE_PERSONAL_500G", "C2-SAAS", "STORAGE", "500G", "UNKNOWN", 36, 1.0),
    _c2("C2_BACKUP_BUSINESS_1T", "C2-SAAS", "BACKUP", "1T", "BUSINESS", 110, 4.0),
    _c2("C2_BACKUP_BUSINESS_2T", "C2-SAAS", "BACKUP", "2T", "BUSINESS", 200, 2.0),
    _c2("C2_BACKUP_ENTERPRISE_5T", "C2-SAAS", "BACKUP", "5T", "ENTERPRISE", 600, 0.8),
    _c2("C2_OBJECT_1T", "C2-SAAS", "OBJECT", "1T", "UNKNOWN", 84, 1.5),
    _c2("C2_OBJECT_5T", "C2-SAAS", "OBJECT", "5T", "UNKNOWN", 400, 0.5),
    _c2("C2_IDENTITY_BUSINESS", "C2-SAAS", "IDENTITY", "UNKNOWN", "BUSINESS", 30, 2.0),
    _c2("C2_PASSWORD_INDIVIDUAL", "C2-SAAS", "PASSWORD", "UNKNOWN", "INDIVIDUAL", 25, 1.0),
    _c2("C2_PASSWORD_BUSINESS", "C2-SAAS", "PASSWORD", "UNKNOWN", "BUSINESS", 36, 1.5),
    _c2("C2_TRANSFER_BUSINESS_1T", "C2-SAAS", "TRANSFER", "1T", "BUSINESS", 120, 1.0),
    _c2("C2_TRANSFER_PROFESSIONAL", "C2-SAAS", "TRANSFER", "UNKNOWN", "PROFESSIONAL", 90, 0.5),
    # C2 Surveillance is sold on the C2 sheets but classified SURVEILLANCE by the type rules.
    CatalogueEntry("C2 Surveillance Basic", "SURVEILLANCE", "SVS-C2-T1", 25, 1.0, "c2"),
    CatalogueEntry("C2 Surveillance Professional", "SURVEILLANCE", "SVS-C2-T2", 60, 0.5, "c2"),
)

TAGS: Final = ("(EOL) ", "(PROMO) ", "(NEW) ", "(B2B) ")

# Quantity distributions by product type: (values, weights).
QUANTITIES: Final[dict[str, tuple[tuple[int, ...], tuple[float, ...]]]] = {
    "SERVER": ((1, 2, 3, 4, 5, 10), (70, 14, 6, 4, 4, 2)),
    "DRIVE": ((1, 2, 4, 8, 12, 16, 24, 48), (15, 15, 25, 20, 10, 6, 6, 3)),
    "SVR-ACC": ((1, 2, 4, 10), (55, 25, 15, 5)),
    "SVR-EXW": ((1, 2, 5), (80, 15, 5)),
    "SURVEILLANCE": ((1, 2, 4, 8), (55, 20, 15, 10)),
    "DLG": ((1, 2, 5, 10, 20), (40, 25, 20, 10, 5)),
    "DSMLICENSE": ((1, 5, 10, 25), (50, 25, 15, 10)),
    "Other": ((1, 2), (85, 15)),
    "C2": ((1, 2, 5, 10, 25, 50, 100), (35, 20, 15, 12, 8, 6, 4)),
}


def item_code(entry: CatalogueEntry) -> str:
    return f"SY{zlib.crc32(entry.product.encode()) % 1_000_000:06d}"
