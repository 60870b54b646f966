"""What the rules share: a parsed module with its imports resolved, and small questions about
nodes (what does this call resolve to, is this receiver a database session)."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

Function = ast.FunctionDef | ast.AsyncFunctionDef
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)

# Names a database session or connection goes by (`session`, `db`, `self.session`, `conn`).
_SESSION_NAME = re.compile(r"(^|_)(session|sess|db|conn|connection|tx|uow)$", re.IGNORECASE)
# A query's round trip: the methods of Session/AsyncSession/Connection that run SQL now.
QUERY_METHODS = frozenset(
    {"execute", "scalars", "scalar", "get", "get_one", "query", "stream", "stream_scalars", "exec"}
)
# The ones that return many rows (the outer query of an N+1).
ROWS_METHODS = frozenset({"execute", "scalars", "query", "stream", "stream_scalars", "exec"})
WRITE_STATEMENTS = frozenset({"insert", "update", "delete"})
PASSWORD = re.compile(r"passw(or)?d|(^|_)pwd($|_)|passphrase", re.IGNORECASE)


@dataclass
class Module:
    """One source file: its tree, a parent link for every node, and its import aliases."""

    path: str
    tree: ast.Module
    aliases: dict[str, str] = field(default_factory=dict)
    parents: dict[ast.AST, ast.AST] = field(default_factory=dict)
    functions: dict[str, Function] = field(default_factory=dict)

    @classmethod
    def parse(cls, source: str, path: str) -> Module:
        tree = ast.parse(source, filename=path)
        module = cls(path, tree)
        for node in ast.walk(tree):
            for child in ast.iter_child_nodes(node):
                module.parents[child] = node
            if isinstance(node, ast.Import):
                for alias in node.names:
                    local = alias.asname or alias.name.split(".")[0]
                    module.aliases[local] = alias.name if alias.asname else local
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    module.aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
            elif isinstance(node, Function):
                module.functions.setdefault(node.name, node)
        return module

    def qualname(self, expr: ast.expr) -> str | None:
        """`h.md5` after `import hashlib as h` is `hashlib.md5`; `decode` after `from jwt import
        decode` is `jwt.decode`. None for anything that is not a dotted name."""
        name = dotted(expr)
        if name is None:
            return None
        head, _, rest = name.partition(".")
        resolved = self.aliases.get(head, head)
        return f"{resolved}.{rest}" if rest else resolved

    def awaited(self, node: ast.AST) -> bool:
        return isinstance(self.parents.get(node), ast.Await)

    def functions_in_order(self) -> list[Function]:
        return [n for n in ast.walk(self.tree) if isinstance(n, Function)]


def dotted(expr: ast.expr) -> str | None:
    parts: list[str] = []
    while isinstance(expr, ast.Attribute):
        parts.append(expr.attr)
        expr = expr.value
    if isinstance(expr, ast.Name):
        parts.append(expr.id)
        return ".".join(reversed(parts))
    return None


def last_name(expr: ast.expr) -> str:
    """The name at the end of a callee or receiver: `execute` for `self.db.execute`."""
    if isinstance(expr, ast.Attribute):
        return expr.attr
    if isinstance(expr, ast.Name):
        return expr.id
    if isinstance(expr, ast.Call):
        return last_name(expr.func)
    return ""


def method(call: ast.Call) -> tuple[ast.expr, str] | None:
    """(receiver, method name) of `receiver.method(...)`."""
    if isinstance(call.func, ast.Attribute):
        return call.func.value, call.func.attr
    return None


def own_nodes(root: ast.AST) -> Iterator[ast.AST]:
    """Every node under `root` in source order, not entering nested functions, lambdas or
    classes: their bodies run at another time (a callback, a thread) than the code around."""
    for child in ast.iter_child_nodes(root):
        yield child
        if not isinstance(child, _SCOPES):
            yield from own_nodes(child)


def body_nodes(statements: list[ast.stmt]) -> Iterator[ast.AST]:
    for stmt in statements:
        yield stmt
        if not isinstance(stmt, _SCOPES):
            yield from own_nodes(stmt)


def names_in(expr: ast.AST) -> set[str]:
    """Every name read in `expr`, lambdas included (`lambda: f(x)` reads x)."""
    return {n.id for n in ast.walk(expr) if isinstance(n, ast.Name)}


def is_session(expr: ast.expr, sessions: set[str] | None = None) -> bool:
    name = dotted(expr)
    if name is None:
        return False
    tail = name.rsplit(".", 1)[-1]
    return (
        bool(_SESSION_NAME.search(tail))
        or "session" in tail.lower()
        or (sessions is not None and name in sessions)
    )


def root_call(expr: ast.expr) -> ast.Call | None:
    """The first call of a chain: `update(X)` in `update(X).where(...).values(...)`."""
    found: ast.Call | None = None
    while True:
        if isinstance(expr, ast.Call):
            found = expr
            expr = expr.func
        elif isinstance(expr, ast.Attribute):
            expr = expr.value
        else:
            return found


def statement_verb(expr: ast.expr | None) -> str | None:
    """ "insert", "update" or "delete" for those statements' chains (`update(X).where(...)`) and
    for SQL text that starts with one (`text("UPDATE ...")`, an f-string, a string)."""
    if expr is None:
        return None
    first = root_call(expr)
    if first is not None and last_name(first.func) == "text" and first.args:
        expr = first.args[0]
    elif first is not None:
        name = last_name(first.func)
        return name if name in WRITE_STATEMENTS else None
    head = expr.values[0] if isinstance(expr, ast.JoinedStr) and expr.values else expr
    if isinstance(head, ast.Constant) and isinstance(head.value, str):
        words = head.value.split(None, 1)
        if words and words[0].lower() in WRITE_STATEMENTS:
            return words[0].lower()
    return None


def is_write_statement(expr: ast.expr | None) -> bool:
    return statement_verb(expr) is not None


def statement_arg(call: ast.Call) -> ast.expr | None:
    if call.args:
        return call.args[0]
    for kw in call.keywords:
        if kw.arg in ("statement", "stmt"):
            return kw.value
    return None


def query_call(node: ast.AST, sessions: set[str] | None = None, rows: bool = False) -> bool:
    """A call that runs a read query now: `session.execute(select(...))`, `db.query(X)`, …"""
    if not isinstance(node, ast.Call):
        return False
    target = method(node)
    if target is None:
        return False
    receiver, name = target
    methods = ROWS_METHODS if rows else QUERY_METHODS
    if name not in methods or not is_session(receiver, sessions):
        return False
    return not (name in ("execute", "exec") and is_write_statement(statement_arg(node)))


def annotation_text(arg: ast.arg) -> str:
    return ast.unparse(arg.annotation) if arg.annotation is not None else ""


def parameters(func: Function) -> list[ast.arg]:
    a = func.args
    return [p for p in [*a.posonlyargs, *a.args, *a.kwonlyargs] if p.arg not in ("self", "cls")]


def bound_names(target: ast.expr) -> list[str]:
    """The names an assignment target binds: `a`, `a, (b, *c)`; not `a.x` nor `a[i]`."""
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, ast.Tuple | ast.List):
        return [n for elt in target.elts for n in bound_names(elt)]
    if isinstance(target, ast.Starred):
        return bound_names(target.value)
    return []


def assignments(func: Function) -> Iterator[tuple[list[str], ast.expr, ast.AST]]:
    """(target names, value, statement) of each plain assignment in the function's own body."""
    for node in own_nodes(func):
        if isinstance(node, ast.Assign):
            yield [n for t in node.targets for n in bound_names(t)], node.value, node
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            if isinstance(node.target, ast.Name):
                yield [node.target.id], node.value, node
        elif isinstance(node, ast.NamedExpr):
            yield [node.target.id], node.value, node
