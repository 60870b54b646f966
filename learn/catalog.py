"""The exercises, in the order of the team's guide, and where each one's files live."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

EXERCISES_DIR = Path(__file__).resolve().parent / "exercises"


@dataclass(frozen=True)
class Exercise:
    number: int
    slug: str
    title: str
    section: str
    """The guide section it practises (its heading)."""
    docs: str
    """The kit's docs page on the pattern, relative to docs/."""

    @property
    def package(self) -> str:
        return f"ex{self.number:02d}_{self.slug}"

    @property
    def directory(self) -> Path:
        return EXERCISES_DIR / self.package

    @property
    def start(self) -> Path:
        return self.directory / "start.py"

    @property
    def solution(self) -> Path:
        return self.directory / "solution.py"

    @property
    def check(self) -> Path:
        return self.directory / "check.py"

    @property
    def hint(self) -> Path:
        return self.directory / "hint.md"

    @property
    def explanation(self) -> Path:
        return self.directory / "explanation.md"

    @property
    def workspace_name(self) -> str:
        return f"{self.number:02d}_{self.slug}.py"


EXERCISES: tuple[Exercise, ...] = (
    Exercise(1, "session_scope", "A session dependency that owns commit and rollback",
             "Dependency Injection", "guide/dependency-injection.md"),
    Exercise(2, "response_schema", "Schemas that never leak a secret",
             "Type Safety", "guide/type-safety.md"),
    Exercise(3, "bounded_page", "A bounded, stable page",
             "Pagination", "guide/pagination.md"),
    Exercise(4, "validated_filters", "Filters and a sort the server validates",
             "Filtering", "guide/filtering.md"),
    Exercise(5, "migration", "A migration that matches the models (autogenerate's drift check)",
             "Database Migrations", "guide/database-migrations.md"),
    Exercise(6, "jwt", "JWT with expiry, type and a pinned algorithm",
             "JWT Authentication", "guide/jwt-authentication.md"),
    Exercise(7, "roles", "A role check: 401 for who-are-you, 403 for not-allowed",
             "Role-Based Access Control", "guide/role-based-access-control.md"),
    Exercise(8, "cache_key", "A cache key that includes every input and the user",
             "Redis Caching", "guide/redis-caching.md"),
    Exercise(9, "invalidate_after_commit", "Cache invalidation after the commit",
             "Cache Invalidation", "pitfalls/PF003.md"),
    Exercise(10, "rate_limit", "An atomic rate limit in Redis",
             "Rate Limiting", "pitfalls/PF009.md"),
    Exercise(11, "publish_after_commit", "Publish the Celery task only after the commit",
             "Celery Tasks", "pitfalls/PF010.md"),
    Exercise(12, "error_envelope", "A custom exception in the error envelope",
             "Custom Exceptions", "guide/custom-exceptions.md"),
    Exercise(13, "stock_decrement", "An atomic stock decrement under concurrency",
             "Order Processing Flow", "pitfalls/PF008.md"),
    Exercise(14, "n_plus_one", "N+1 fixed with an eager load",
             "N+1 Query Problem", "pitfalls/PF001.md"),
)  # fmt: skip


def by_number(number: int) -> Exercise:
    for exercise in EXERCISES:
        if exercise.number == number:
            return exercise
    raise LookupError(f"there is no exercise {number} (1 to {len(EXERCISES)})")


def of_directory(directory: Path) -> Exercise:
    for exercise in EXERCISES:
        if exercise.directory == directory.resolve():
            return exercise
    raise LookupError(f"{directory} is not an exercise directory")
