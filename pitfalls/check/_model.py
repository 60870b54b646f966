"""What a finding is and the rules that make them: one code per pitfall of the catalog."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    """A rule's code is its pitfall's stable ID, so `# noqa: PF001` and the page agree."""

    code: str
    name: str
    summary: str

    def page(self, docs_url: str = "") -> str:
        """The pitfall page: `docs_url` with `{code}` filled in (`[tool.pitfalls] docs-url`)."""
        return (docs_url or DEFAULT_DOCS_URL).format(code=self.code)


@dataclass(frozen=True, order=True)
class Finding:
    """One place in one file; `line` is 1-based, `col` 1-based as Ruff prints them."""

    path: str
    line: int
    col: int
    code: str
    message: str
    end_line: int = 0
    end_col: int = 0


RULES: dict[str, Rule] = {
    rule.code: rule
    for rule in (
        Rule("PF001", "n-plus-one", "a query per row inside a loop over rows of another query"),
        Rule("PF002", "missing-index", "a filter on a column its table declares without an index"),
        Rule("PF003", "stale-cache", "a write that does not invalidate a cache the module reads"),
        Rule("PF004", "cache-key-collision", "a cache key missing an input of its answer"),
        Rule("PF005", "token-without-expiry", "a JWT without exp, or decoded without checks"),
        Rule("PF006", "weak-password-storage", "a password stored as given or with a fast hash"),
        Rule("PF007", "blocking-call-in-async", "a blocking call inside async def"),
        Rule("PF008", "check-then-act", "a quantity read, checked and written back unlocked"),
        Rule("PF009", "racy-rate-limiter", "INCR then EXPIRE, or GET then SET, as two commands"),
        Rule("PF010", "task-inside-transaction", "a task sent before its transaction commits"),
    )
}

# Where the pages live when `docs-url` is not configured: the kit's pages, by repository path.
DEFAULT_DOCS_URL = "docs/pitfalls/{code}.md"
