"""Every pitfall, as `pitfalls/catalog.toml` lists it (the data: ID, package, title, summary,
guide section, the servers its evidence needs), read once on import."""

from __future__ import annotations

import tomllib
from pathlib import Path

from pitfalls._evidence import SERVER_NAMES, Pitfall

CATALOG = Path(__file__).with_name("catalog.toml")


def load(path: Path = CATALOG) -> tuple[Pitfall, ...]:
    """The catalogue's pitfalls, in its order; a server name it does not know is an error."""
    pitfalls = []
    for row in tomllib.loads(path.read_text(encoding="utf-8"))["pitfall"]:
        needs = frozenset(row.pop("needs", []))
        if unknown := needs - SERVER_NAMES.keys():
            raise ValueError(f"{path}: {row.get('id')} needs unknown servers {sorted(unknown)}")
        pitfalls.append(Pitfall(**row, needs=needs))
    return tuple(pitfalls)


PITFALLS = load()
