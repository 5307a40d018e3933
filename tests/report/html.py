"""Reads the report's HTML back for assertions: each table's cell texts by its class,
and how many of each element there are."""

from collections import Counter
from html.parser import HTMLParser


class Page(HTMLParser):
    """tables: {table id, else class: [[cell text, ...] per row]}; tags: element
    counts."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.tags: Counter[str] = Counter()
        self._table: str | None = None
        self._cell: list[str] | None = None
        self._svg_depth = 0
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags[tag] += 1
        if tag == "table":
            named = dict(attrs)
            self._table = named.get("id") or named.get("class") or ""
            self.tables.setdefault(self._table, [])
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self._table is not None:
            self.tables[self._table][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)

    def rows(self, table: str) -> dict[str, list[str]]:
        """A table's body rows by their first cell."""
        return {row[0]: row[1:] for row in self.tables[table][1:] if row}
