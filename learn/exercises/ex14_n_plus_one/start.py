"""Exercise 14 — N+1 fixed with an eager load (guide: "N+1 Query Problem").

`books_by_author` feeds the catalogue page: every author's name with their book titles (in id
order). Today it runs one query for the authors and then one more per author, so a page of 50
authors costs 51 round trips. Load the books with the authors in a fixed number of queries
(at most 2, however many authors) with an eager load.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from learn.models import Author, Book


async def books_by_author(session: AsyncSession) -> dict[str, list[str]]:
    authors = (await session.scalars(select(Author).order_by(Author.id))).all()
    result: dict[str, list[str]] = {}
    for author in authors:
        titles = await session.scalars(
            select(Book.title).where(Book.author_id == author.id).order_by(Book.id)
        )
        result[author.name] = list(titles)
    return result
