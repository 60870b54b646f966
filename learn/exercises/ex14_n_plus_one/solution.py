"""Exercise 14 — N+1 fixed with an eager load (guide: "N+1 Query Problem").

`selectinload` loads every author's books in one second query (`WHERE author_id IN (...)`),
so the page costs two queries whatever the number of authors. `Author.books` is declared
`lazy="raise"`, so forgetting the option is an error, not a silent query per author.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from learn.models import Author


async def books_by_author(session: AsyncSession) -> dict[str, list[str]]:
    authors = await session.scalars(
        select(Author).options(selectinload(Author.books)).order_by(Author.id)
    )
    return {
        author.name: [book.title for book in sorted(author.books, key=lambda b: b.id)]
        for author in authors
    }
