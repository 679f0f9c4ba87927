"""Text from the data made safe to leave the warehouse (pure): the one home of the rule, applied at every exit.

Customer, product, country, sheet and file names come from a workbook people and other systems write, and they
leave activation in chat messages and e-mails (`rendering`). Someone pastes a message, or a line of it, into a
spreadsheet; a cell whose text starts with ``=``, ``+``, ``-`` or ``@`` is run as a formula there (the DDE forms
``=cmd|' /C calc'!A0``, ``+cmd|...``, ``@SUM(...)`` included), and Excel and LibreOffice skip a leading tab or
carriage return (and spaces) before they look. `neutralise_formula` puts a single quote in front of such text,
as OWASP advises for CSV injection: the quote makes the cell text and shows that it was added. The
fullwidth forms (U+FF1D, U+FF0B, U+FF0D, U+FF20), which some spreadsheets read as their ASCII twins, count too.
A plain number (``-12.5``, ``+3``, ``-1,234``) is no formula and is left as it is, so figures stay figures.

`markdown_text` is what a message body holds: the text neutralised, then escaped for CommonMark (no emphasis,
link, code span or HTML tag can open inside it).

Other exits carry no cell text: the OpenLineage events name tables and jobs only (`lineage.STAGE_DATASETS`), the
Metabase refresh and the activation.completed event carry ids and delivery results.
"""

from __future__ import annotations

import re
from typing import Final

FORMULA_STARTS: Final = frozenset("=+-@\uff1d\uff0b\uff0d\uff20")
"""Characters that make a spreadsheet read a cell as a formula when the cell starts with one."""
SKIPPED_BEFORE_FORMULA: Final = " \t\r\n\u3000"
"""What a spreadsheet skips before it looks for a formula (a tab or carriage return alone is enough to act on)."""
FORMULA_QUOTE: Final = "'"

_PLAIN_NUMBER: Final = re.compile(r"[+-]?(\d{1,3}(,\d{3})+|\d+)(\.\d+)?%?")

# Backslash, backtick, emphasis, link and HTML characters; an underscore only where it could open or close
# emphasis (CommonMark and Slack leave `unique_sellout_quarterly` alone, and Teams would show the backslash).
_MARKDOWN_SPECIAL: Final = re.compile(r"[\\`*\[\]<>]|(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])")


def is_formula(text: str) -> bool:
    """Whether a spreadsheet would run `text`, put in a cell, as a formula."""
    if text[:1] in ("\t", "\r"):
        return True
    start = text.lstrip(SKIPPED_BEFORE_FORMULA)
    return start[:1] in FORMULA_STARTS and not _PLAIN_NUMBER.fullmatch(start)


def neutralise_formula(text: str) -> str:
    """`text` with a single quote in front when a spreadsheet would run it as a formula; else unchanged."""
    return FORMULA_QUOTE + text if is_formula(text) else text


def escape_markdown(text: str) -> str:
    """Text made literal in CommonMark: none of its characters can open emphasis, a link, a code span or an
    HTML tag."""
    return _MARKDOWN_SPECIAL.sub(lambda match: "\\" + match.group(0), text)


def markdown_text(text: str) -> str:
    """Text from the data (a name, a value, a line that may start with one) as a message body holds it:
    neutralised for spreadsheets, then escaped for markdown."""
    return escape_markdown(neutralise_formula(text))
