"""SQLite metadata of one index generation, and the id counters shared by all generations.

Both use WAL mode with synchronous=FULL: a committed row is on disk when commit returns.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class ShapeRecord:
    id: int
    name: str
    label: str | None
    sha256: str
    source: str
    model_id: str
    added_at: float
    updated_at: float


_COLUMNS = "id, name, label, sha256, source, model_id, added_at, updated_at"

# `built` marks rows written by an IndexBuilder rather than by ShapeIndex.add: a commit
# carries over the live generation's concurrent adds, never another build's rows.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS info (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS shapes (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    label TEXT,
    sha256 TEXT NOT NULL,
    source TEXT NOT NULL,
    model_id TEXT NOT NULL,
    added_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    built INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS shapes_sha256 ON shapes(sha256);
CREATE INDEX IF NOT EXISTS shapes_label ON shapes(label);
"""


def _connect(path: Path, *, durable: bool) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=60.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={'FULL' if durable else 'OFF'}")
    return conn


class MetadataStore:
    """The `shapes` table of one generation. Callers serialise access (ShapeIndex's lock)."""

    def __init__(self, path: Path, *, durable: bool = True, create: bool = True) -> None:
        """Without `create`, the file must already hold the tables (sqlite3.DatabaseError
        otherwise, before anything is written)."""
        self.path = path
        self._conn = _connect(path, durable=durable)
        try:
            if create:
                self._conn.executescript(_SCHEMA)
            else:
                tables = {row[0] for row in self._conn.execute("SELECT name FROM sqlite_master")}
                if not {"info", "shapes"} <= tables:
                    raise sqlite3.DatabaseError("it has no shapes table")
        except BaseException:
            self._conn.close()
            raise

    def info(self) -> dict[str, str]:
        return dict(self._conn.execute("SELECT key, value FROM info"))

    def set_info(self, values: dict[str, str]) -> None:
        with self._conn:
            self._conn.executemany(
                "INSERT OR REPLACE INTO info (key, value) VALUES (?, ?)", values.items()
            )

    def insert(self, records: list[ShapeRecord], *, built: bool = False) -> None:
        """Insert and commit: the commit point of an add."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            self._conn.executemany(
                f"INSERT INTO shapes ({_COLUMNS}, built) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        r.id,
                        r.name,
                        r.label,
                        r.sha256,
                        r.source,
                        r.model_id,
                        r.added_at,
                        r.updated_at,
                        int(built),
                    )
                    for r in records
                ],
            )
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def delete(self, shape_ids: list[int]) -> int:
        """Delete and commit: the commit point of a remove. Returns how many existed."""
        with self._conn:
            cursor = self._conn.executemany(
                "DELETE FROM shapes WHERE id = ?", [(int(i),) for i in shape_ids]
            )
        return cursor.rowcount

    def get(self, shape_id: int) -> ShapeRecord | None:
        row = self._conn.execute(
            f"SELECT {_COLUMNS} FROM shapes WHERE id = ?", (int(shape_id),)
        ).fetchone()
        return ShapeRecord(*row) if row else None

    def get_many(self, shape_ids: list[int]) -> dict[int, ShapeRecord]:
        if not shape_ids:
            return {}
        marks = ",".join("?" * len(shape_ids))
        rows = self._conn.execute(
            f"SELECT {_COLUMNS} FROM shapes WHERE id IN ({marks})", [int(i) for i in shape_ids]
        )
        return {row[0]: ShapeRecord(*row) for row in rows}

    def find_sha256(self, sha256: str) -> ShapeRecord | None:
        row = self._conn.execute(
            f"SELECT {_COLUMNS} FROM shapes WHERE sha256 = ? ORDER BY id LIMIT 1", (sha256,)
        ).fetchone()
        return ShapeRecord(*row) if row else None

    def list(self, *, label: str | None, offset: int, limit: int) -> list[ShapeRecord]:
        where, args = ("WHERE label = ?", [label]) if label is not None else ("", [])
        rows = self._conn.execute(
            f"SELECT {_COLUMNS} FROM shapes {where} ORDER BY id LIMIT ? OFFSET ?",
            [*args, int(limit), int(offset)],
        )
        return [ShapeRecord(*row) for row in rows]

    def count(self, *, label: str | None = None) -> int:
        if label is None:
            return self._conn.execute("SELECT COUNT(*) FROM shapes").fetchone()[0]
        return self._conn.execute(
            "SELECT COUNT(*) FROM shapes WHERE label = ?", (label,)
        ).fetchone()[0]

    def labels(self) -> dict[str, int]:
        rows = self._conn.execute(
            "SELECT label, COUNT(*) FROM shapes WHERE label IS NOT NULL GROUP BY label "
            "ORDER BY label"
        )
        return dict(rows)

    def ids(self, *, label: str | None = None) -> np.ndarray:
        if label is None:
            rows = self._conn.execute("SELECT id FROM shapes")
        else:
            rows = self._conn.execute("SELECT id FROM shapes WHERE label = ?", (label,))
        return np.fromiter((row[0] for row in rows), dtype=np.int64)

    def added_since(self, first_id: int) -> list[ShapeRecord]:
        """Rows added through ShapeIndex.add with an id of at least `first_id`."""
        rows = self._conn.execute(
            f"SELECT {_COLUMNS} FROM shapes WHERE id >= ? AND built = 0 ORDER BY id",
            (int(first_id),),
        )
        return [ShapeRecord(*row) for row in rows]

    def all(self) -> list[ShapeRecord]:
        return [ShapeRecord(*row) for row in self._conn.execute(f"SELECT {_COLUMNS} FROM shapes")]

    def max_id(self) -> int:
        return self._conn.execute("SELECT COALESCE(MAX(id), 0) FROM shapes").fetchone()[0]

    def make_durable(self) -> None:
        """Switch a builder's store to synchronous=FULL and fsync everything written."""
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute("PRAGMA wal_checkpoint(FULL)")

    def close(self) -> None:
        self._conn.close()


class Counters:
    """Monotonic counters (shape ids, generation numbers) shared by every process."""

    def __init__(self, path: Path) -> None:
        self._conn = _connect(path, durable=True)
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, next INTEGER NOT NULL)"
        )

    def allocate(self, name: str, n: int = 1) -> int:
        """Reserve n consecutive values and return the first; none is ever handed out twice."""
        with self._conn:
            self._conn.execute("INSERT OR IGNORE INTO counters (name, next) VALUES (?, 1)", (name,))
            (first,) = self._conn.execute(
                "UPDATE counters SET next = next + ? WHERE name = ? RETURNING next - ?",
                (n, name, n),
            ).fetchone()
        return int(first)

    def ensure_above(self, name: str, value: int) -> None:
        """Make the next value of `name` larger than `value`."""
        with self._conn:
            self._conn.execute("INSERT OR IGNORE INTO counters (name, next) VALUES (?, 1)", (name,))
            self._conn.execute(
                "UPDATE counters SET next = ? WHERE name = ? AND next <= ?",
                (int(value) + 1, name, int(value)),
            )

    def peek(self, name: str) -> int:
        row = self._conn.execute("SELECT next FROM counters WHERE name = ?", (name,)).fetchone()
        return int(row[0]) if row else 1

    def close(self) -> None:
        self._conn.close()
