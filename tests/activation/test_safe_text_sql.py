"""The SQL twin of the formula rule (activation.spreadsheet_safe, used by the Metabase questions people export)
answers exactly as the Python rule (safe_text.neutralise_formula), on the rule's own cases and more."""

from __future__ import annotations

import asyncpg
import pytest

from syno_activation.safe_text import neutralise_formula

pytestmark = pytest.mark.integration

CASES = [
    '=HYPERLINK("http://x","y")', "@SUM(A1)", "+cmd|' /C calc'!A0", "=cmd|' /C calc'!A0", "-2+3", "*Bold_[x](y)*",
    "Ünïcødé 株式会社",
    "\t=1+1", "\rAcme", "  =1+1", "\n=1", "\u3000=1", "\uff1dSUM(A1)", "\uff0b1", "\uff0dx", "\uff20x",
    "-12.5", "-1,234", "+3", "-60.0%", "-1,23", "1,234.5", "-", "+", "@", "=",
    "Acme = Best", "a@b.c", "Jean-Luc", "", " ", "'=already quoted",
]  # fmt: skip


async def test_the_sql_rule_is_the_python_rule(pool: asyncpg.Pool) -> None:
    rows = await pool.fetch(
        "select value, activation.spreadsheet_safe(value) as safe from unnest($1::text[]) as value", CASES
    )
    assert {row["value"]: row["safe"] for row in rows} == {case: neutralise_formula(case) for case in CASES}
    assert await pool.fetchval("select activation.spreadsheet_safe(null)") is None


async def test_the_read_only_role_of_metabase_may_call_it(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as connection:
        await connection.execute("set role syno_reader")
        try:
            assert await connection.fetchval("select activation.spreadsheet_safe('=1+1')") == "'=1+1"
        finally:
            await connection.execute("reset role")
