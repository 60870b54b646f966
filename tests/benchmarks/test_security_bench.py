"""Benchmarks: password hashing and token handling (guide: "Benchmark Testing").

Run with `python3 noxfile.py -s bench` (or `pytest tests/benchmarks --benchmark-only`). Argon2
should cost tens of milliseconds (the defence against offline guessing); tokens should cost
microseconds.
"""

from __future__ import annotations

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from patterns.security import PasswordHasher, TokenService, TokenType

pytestmark = pytest.mark.benchmark(group="security")
SECRET = "benchmark-secret-0123456789-abcdefghijklmnop"


@pytest.fixture(scope="module")
def hasher() -> PasswordHasher:
    return PasswordHasher()


@pytest.fixture(scope="module")
def tokens() -> TokenService:
    return TokenService(SECRET, issuer="kit", audience="kit-api")


def test_bench_password_hash(benchmark: BenchmarkFixture, hasher: PasswordHasher) -> None:
    hashed = benchmark(hasher.hash, "correct horse battery staple")
    assert hashed.startswith("$argon2id$")


def test_bench_password_verify(benchmark: BenchmarkFixture, hasher: PasswordHasher) -> None:
    hashed = hasher.hash("correct horse battery staple")
    valid, _ = benchmark(hasher.verify_and_update, "correct horse battery staple", hashed)
    assert valid


def test_bench_token_encode(benchmark: BenchmarkFixture, tokens: TokenService) -> None:
    token, _ = benchmark(tokens.create, 42, TokenType.ACCESS)
    assert token.count(".") == 2


def test_bench_token_decode(benchmark: BenchmarkFixture, tokens: TokenService) -> None:
    token, claims = tokens.create(42, TokenType.ACCESS)
    assert benchmark(tokens.decode, token, TokenType.ACCESS) == claims
