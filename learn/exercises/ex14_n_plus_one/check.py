"""Exercise 14's check: the right titles, and the statements sent to PostgreSQL counted."""

from types import ModuleType

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from learn.models import Author, Book
from patterns.db.queries import count_queries

AUTHORS = 12


@pytest.mark.integration
async def test_two_queries_whatever_the_number_of_authors(
    learner: ModuleType, db_session: AsyncSession, db_engine: AsyncEngine
) -> None:
    authors = [Author(name=f"author {i:02d}") for i in range(AUTHORS)]
    db_session.add_all(authors)
    await db_session.flush()
    db_session.add_all(
        Book(title=f"{a.name}, book {n}", author_id=a.id) for a in authors for n in range(3)
    )
    await db_session.flush()
    db_session.expunge_all()  # nothing preloaded: the function loads what it needs
    with count_queries(db_engine) as counter:
        result = await learner.books_by_author(db_session)
    expected = {a.name: [f"{a.name}, book {n}" for n in range(3)] for a in authors}
    assert result == expected, "books_by_author returned other titles than the table holds"
    assert counter.count <= 2, (
        f"books_by_author ran {counter.count} queries for {AUTHORS} authors: one for the "
        "authors, then one per author (N+1). Load the books with the authors in one more "
        "query: select(Author).options(selectinload(Author.books))"
    )
