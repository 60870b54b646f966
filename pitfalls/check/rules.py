"""The rules, one per pitfall whose shape shows in source (docs/pitfalls/PFxxx.md, "How to catch
it", says what each one cannot see). Every rule prefers silence to a guess: it reports a shape
only when all of its parts are in the same function (or, for PF001 helpers and PF002/PF003, the
same module)."""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterator

from pitfalls.check._ast import (
    PASSWORD,
    Function,
    Module,
    annotation_text,
    assignments,
    body_nodes,
    bound_names,
    dotted,
    is_session,
    is_write_statement,
    last_name,
    method,
    names_in,
    own_nodes,
    parameters,
    query_call,
    statement_arg,
    statement_verb,
)

Hit = tuple[ast.AST, str, str]  # node, code, message
RuleCheck = Callable[[Module], Iterator[Hit]]


# --- PF001 N+1 queries ----------------------------------------------------------------------

_READ_HELPER = re.compile(
    r"^(get|read|fetch|load|find|list|count|select|query|search|retrieve|exists)", re.I
)
_ROWS_HELPER = re.compile(r"(multi|_all$|^all_|^list|^search|^find_all|^fetch_all)", re.I)


def _query_helpers(module: Module) -> set[str]:
    """Functions of this module that run a query themselves or through another such helper."""
    found: set[str] = set()
    changed = True
    while changed:
        changed = False
        for name, func in module.functions.items():
            if name in found:
                continue
            for node in own_nodes(func):
                direct = query_call(node) or (
                    isinstance(node, ast.Attribute) and node.attr == "awaitable_attrs"
                )
                via = isinstance(node, ast.Call) and _callee(node) in found
                if direct or via:
                    found.add(name)
                    changed = True
                    break
    return found


def _callee(call: ast.Call) -> str:
    """`helper` for `helper(...)` and `self.helper(...)`; "" for other receivers."""
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute) and dotted(call.func.value) in ("self", "cls"):
        return call.func.attr
    return ""


def _passes_session(call: ast.Call) -> bool:
    values = [*call.args, *(k.value for k in call.keywords)]
    return any(is_session(v) for v in values if isinstance(v, ast.Name | ast.Attribute))


def _loops(func: Function) -> Iterator[tuple[ast.AST, ast.expr, list[ast.AST]]]:
    """(loop node, iterable, nodes run once per item) for `for` loops and comprehensions."""
    for node in own_nodes(func):
        if isinstance(node, ast.For | ast.AsyncFor):
            yield node, node.iter, list(body_nodes(node.body))
        elif isinstance(node, ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp):
            parts: list[ast.AST] = (
                [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
            )
            for i, gen in enumerate(node.generators):
                inner: list[ast.AST] = [*parts, *gen.ifs]
                inner += [g.iter for g in node.generators[i + 1 :]]
                inner += [cond for later in node.generators[i + 1 :] for cond in later.ifs]
                nodes = [n for part in inner for n in [part, *own_nodes(part)]]
                yield node, gen.iter, nodes


def _row_helpers(module: Module) -> set[str]:
    """Functions of this module that return the rows of a query they run themselves."""
    found = set()
    for name, func in module.functions.items():
        rows = _rows_variables(func, set())
        if any(
            isinstance(node, ast.Return)
            and node.value is not None
            and _yields_rows(node.value, rows, set())
            for node in own_nodes(func)
        ):
            found.add(name)
    return found


def _rows_variables(func: Function, row_helpers: set[str]) -> set[str]:
    rows: set[str] = set()
    for _ in range(2):  # rows flow through a second assignment: result → result.all()
        for names, value, _stmt in assignments(func):
            if _yields_rows(value, rows, row_helpers):
                rows.update(names)
    return rows


def pf001(module: Module) -> Iterator[Hit]:
    helpers = _query_helpers(module)
    row_helpers = _row_helpers(module)
    for func in module.functions_in_order():
        rows = _rows_variables(func, row_helpers)
        seen: set[int] = set()
        for _loop, iterable, nodes in _loops(func):
            if not _yields_rows(iterable, rows, row_helpers):
                continue
            per_row = _bound_in(nodes)  # a session opened per row: another tenant, another DB
            for node in nodes:
                if id(node) in seen or _sessions_of(node) & per_row:
                    continue
                message = _per_row_query(node, helpers)
                if message:
                    seen.add(id(node))
                    yield node, "PF001", message


def _bound_in(nodes: list[ast.AST]) -> set[str]:
    bound: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.withitem) and node.optional_vars is not None:
            bound.update(bound_names(node.optional_vars))
        elif isinstance(node, ast.Assign):
            bound.update(n for t in node.targets for n in bound_names(t))
    return bound


def _sessions_of(node: ast.AST) -> set[str]:
    """The root names of the sessions a call uses (its receiver, its session arguments)."""
    if not isinstance(node, ast.Call):
        return set()
    candidates: list[ast.expr] = [*node.args, *(k.value for k in node.keywords)]
    if isinstance(node.func, ast.Attribute):
        candidates.append(node.func.value)
    roots = set()
    for expr in candidates:
        if is_session(expr):
            name = dotted(expr)
            if name:
                roots.add(name.split(".", 1)[0])
    return roots


def _yields_rows(expr: ast.expr, rows: set[str], row_helpers: set[str]) -> bool:
    for node in [expr, *own_nodes(expr)]:
        if isinstance(node, ast.Name) and node.id in rows:
            return True
        if query_call(node, rows=True):
            return True
        if isinstance(node, ast.Call) and (
            _callee(node) in row_helpers
            or (_passes_session(node) and _ROWS_HELPER.search(last_name(node.func)))
        ):
            return True
    return False


def _per_row_query(node: ast.AST, helpers: set[str]) -> str | None:
    fix = "load them with the first query (selectinload/joinedload) or one IN query"
    if query_call(node):
        assert isinstance(node, ast.Call)
        return f"`{ast.unparse(node.func)}` runs once per row of another query: {fix}"
    if isinstance(node, ast.Attribute) and node.attr == "awaitable_attrs":
        return f"`{ast.unparse(node)}` lazy-loads once per row of another query: {fix}"
    if isinstance(node, ast.Call):
        name = _callee(node)
        if name in helpers:
            return f"`{name}()` runs a query, once per row of another query: {fix}"
        if _passes_session(node) and _READ_HELPER.match(last_name(node.func)):
            return (
                f"`{ast.unparse(node.func)}` reads with the session once per row of another "
                f"query: {fix}"
            )
    return None


# --- PF002 missing index --------------------------------------------------------------------


def pf002(module: Module) -> Iterator[Hit]:
    """Tables declared in this module whose columns this module filters or sorts by, with no
    index that starts with that column: the shape of PF002 when both halves are in one file."""
    tables = _tables(module)
    if not tables:
        return
    reported: set[tuple[str, str]] = set()
    for node in ast.walk(module.tree):
        if not (isinstance(node, ast.Call) and last_name(node.func) in ("where", "filter")):
            continue
        for arg in node.args:
            for ref in ast.walk(arg):
                col = _column_ref(ref, tables)
                if col and col not in reported:
                    reported.add(col)
                    table, column = col
                    yield (
                        ref,
                        "PF002",
                        f"`{table}.{column}` is filtered on here and no index of `{table}` "
                        "starts with it: PostgreSQL reads the whole table (index it, then "
                        "check the plan with the harness's assert_uses_index)",
                    )


def _tables(module: Module) -> dict[str, set[str]]:
    """Table variable or model class → its columns that lead no index (nor the primary key)."""
    found: dict[str, set[str]] = {}
    for node in module.tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            if last_name(node.value.func) != "Table" or len(node.targets) != 1:
                continue
            target = node.targets[0]
            if not isinstance(target, ast.Name):
                continue
            columns: dict[str, bool] = {}
            leading: set[str] = set()
            for arg in node.value.args:
                if isinstance(arg, ast.Call) and last_name(arg.func) == "Column" and arg.args:
                    first = arg.args[0]
                    if isinstance(first, ast.Constant) and isinstance(first.value, str):
                        columns[first.value] = _indexed(arg)
                elif isinstance(arg, ast.Call) and last_name(arg.func) in (
                    "Index",
                    "UniqueConstraint",
                    "PrimaryKeyConstraint",
                ):
                    leading |= _leading_columns(arg)
            found[target.id] = {c for c, idx in columns.items() if not idx and c not in leading}
    return found


def _indexed(column: ast.Call) -> bool:
    return any(
        kw.arg in ("index", "primary_key", "unique")
        and isinstance(kw.value, ast.Constant)
        and kw.value.value is True
        for kw in column.keywords
    )


def _leading_columns(call: ast.Call) -> set[str]:
    args = call.args[1:] if last_name(call.func) == "Index" else call.args
    if args and isinstance(args[0], ast.Constant) and isinstance(args[0].value, str):
        return {args[0].value}
    return set()


def _column_ref(node: ast.AST, tables: dict[str, set[str]]) -> tuple[str, str] | None:
    # items.c.category
    if (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Attribute)
        and node.value.attr == "c"
        and isinstance(node.value.value, ast.Name)
        and node.attr in tables.get(node.value.value.id, set())
    ):
        return node.value.value.id, node.attr
    return None


# --- PF003 stale cache ----------------------------------------------------------------------

_CACHE_READS = frozenset({"get_or_set", "cached", "get_cached", "cache_get"})
_CACHE_RECEIVER = re.compile(r"cache|redis", re.I)
_INVALIDATES = re.compile(r"invalidat|evict|forget|purge|bust|uncache|clear_cache", re.I)
_CACHE_WRITES = frozenset({"delete", "unlink", "expire", "set", "setex", "clear", "pop"})


def _reads_cache(module: Module) -> bool:
    for node in ast.walk(module.tree):
        if not isinstance(node, ast.Call):
            continue
        name = last_name(node.func)
        if name in _CACHE_READS:
            return True
        target = method(node)
        if target and name in ("get", "mget", "hget", "hgetall"):
            receiver = dotted(target[0]) or ""
            if _CACHE_RECEIVER.search(receiver):
                return True
    return False


def _invalidates(node: ast.AST) -> bool:
    if not isinstance(node, ast.Call):
        return False
    name = last_name(node.func)
    if _INVALIDATES.search(name):
        return True
    target = method(node)
    return bool(
        target and name in _CACHE_WRITES and _CACHE_RECEIVER.search(dotted(target[0]) or "")
    )


def pf003(module: Module) -> Iterator[Hit]:
    if not _reads_cache(module):
        return
    for func in module.functions_in_order():
        nodes = list(own_nodes(func))
        if any(_invalidates(n) for n in nodes):
            continue
        for node in nodes:
            if not isinstance(node, ast.Call):
                continue
            target = method(node)
            if target is None or not is_session(target[0]):
                continue
            name = target[1]
            update = name in ("execute", "exec") and _updates(statement_arg(node))
            if update or name == "delete":
                yield (
                    node,
                    "PF003",
                    "(heuristic) this write changes rows while the module serves them from a "
                    "cache, and nothing here invalidates it: readers get the old value until "
                    "the TTL ends (invalidate after the commit)",
                )
                break


def _updates(expr: ast.expr | None) -> bool:
    return statement_verb(expr) in ("update", "delete")


# --- PF004 cache key collision --------------------------------------------------------------

_INFRA_NAMES = frozenset(
    {
        "redis", "cache", "session", "db", "request", "response", "client", "conn", "settings",
        "prefix", "namespace", "ttl", "expire", "ex", "timeout", "key", "compute", "loader",
        "fn", "func", "default", "background_tasks", "logger", "engine", "app", "celery",
    }
)  # fmt: skip
_INFRA_TYPES = re.compile(
    r"Redis|Session|Cache|Request|Response|BackgroundTasks|Celery|Settings|Engine|Connection"
    r"|Logger|Callable|Awaitable|Pipeline|Client"
)
_PRINCIPAL = re.compile(r"^(current_)?(user|principal|account|me|owner)$|current_user", re.I)
_CACHE_CALL_METHODS = frozenset(
    {"get", "set", "setex", "getex", "get_or_set", "hget", "hset", "mget", "exists"}
)
_CACHE_OBJECT = re.compile(r"cache|redis|^r$|^rd$", re.I)


def _key_expression(expr: ast.expr) -> bool:
    if isinstance(expr, ast.JoinedStr):
        return True
    if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Add | ast.Mod):
        return any(isinstance(n, ast.Constant) and isinstance(n.value, str) for n in ast.walk(expr))
    if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute):
        base = expr.func.value
        if expr.func.attr in ("format", "join") and isinstance(base, ast.Constant):
            return isinstance(base.value, str)
    return False


def _cache_use(call: ast.Call) -> bool:
    name = last_name(call.func)
    if "cache" in name.lower():
        return True
    target = method(call)
    return bool(
        target
        and name in _CACHE_CALL_METHODS
        and _CACHE_OBJECT.search((dotted(target[0]) or "").rsplit(".", 1)[-1])
    )


def pf004(module: Module) -> Iterator[Hit]:
    for func in module.functions_in_order():
        flows = _value_flows(func)
        key_vars: dict[str, tuple[ast.AST, ast.expr]] = {}
        for names, value, stmt in assignments(func):
            constant = isinstance(value, ast.Constant) and isinstance(value.value, str)
            if (_key_expression(value) or constant) and any("key" in n.lower() for n in names):
                for n in names:
                    key_vars[n] = (stmt, value)
        # key → (where to report, key expression, names the cached answer is computed from)
        keys: dict[int, tuple[ast.AST, ast.expr, set[str]]] = {}
        for node in own_nodes(func):
            if not (isinstance(node, ast.Call) and _cache_use(node)):
                continue
            inline = [*node.args[:1], *(k.value for k in node.keywords if k.arg == "key")]
            args = [*node.args, *(k.value for k in node.keywords)]
            for arg in args:
                if isinstance(arg, ast.Name) and arg.id in key_vars:
                    where, key = key_vars[arg.id]
                elif any(arg is i for i in inline) and (
                    _key_expression(arg)
                    or (isinstance(arg, ast.Constant) and isinstance(arg.value, str))
                ):
                    where, key = arg, arg
                else:
                    continue
                answer = {n for other in args if other is not arg for n in names_in(other)}
                entry = keys.setdefault(id(key), (where, key, set()))
                entry[2].update(_closure(answer, flows))
                break
        for where, key, answer in keys.values():
            missing = _missing_inputs(func, key, answer)
            if not missing:
                continue
            principal = [p for p in missing if _is_principal(p)]
            listed = ", ".join(f"`{p.arg}`" for p in missing)
            if principal:
                message = (
                    f"this cache key leaves out the principal `{principal[0].arg}` although "
                    "the answer depends on it: every user gets the first user's entry"
                )
            else:
                message = (
                    f"this cache key leaves out {listed}, which the cached answer depends on: "
                    "calls that differ only there collide (key on every input)"
                )
            yield where, "PF004", message


def _value_flows(func: Function) -> dict[str, set[str]]:
    """Name → the names its assigned values were computed from, in this function."""
    flows: dict[str, set[str]] = {}
    for names, value, _ in assignments(func):
        for n in names:
            flows.setdefault(n, set()).update(names_in(value))
    return flows


def _closure(names: set[str], flows: dict[str, set[str]]) -> set[str]:
    seen, todo = set(names), list(names)
    while todo:
        for n in flows.get(todo.pop(), ()):
            if n not in seen:
                seen.add(n)
                todo.append(n)
    return seen


def _missing_inputs(func: Function, key: ast.expr, answer: set[str]) -> list[ast.arg]:
    in_key = names_in(key)
    missing = []
    for p in parameters(func):
        if p.arg in _INFRA_NAMES or _INFRA_TYPES.search(annotation_text(p)):
            continue
        if p.arg not in in_key and p.arg in answer:
            missing.append(p)
    return missing


def _is_principal(p: ast.arg) -> bool:
    annotation = annotation_text(p)
    return (
        bool(_PRINCIPAL.search(p.arg))
        or "get_current_user" in annotation
        or bool(re.search(r"\b(User|Principal)\b", annotation))
    )


# --- PF005 token without expiry -------------------------------------------------------------

_JWT_MODULES = ("jwt", "jose.jwt", "jwt.api_jwt")


def _jwt_call(module: Module, call: ast.Call, name: str) -> bool:
    qual = module.qualname(call.func) or ""
    return qual in {f"{m}.{name}" for m in _JWT_MODULES}


def _dict_keys(expr: ast.expr) -> set[str] | None:
    """The string keys of a dict display or `dict(...)` call; None when some are unknown."""
    if isinstance(expr, ast.Dict):
        keys: set[str] = set()
        for k in expr.keys:
            if k is None or not (isinstance(k, ast.Constant) and isinstance(k.value, str)):
                return None
            keys.add(k.value)
        return keys
    if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name) and expr.func.id == "dict":
        if expr.args or any(k.arg is None for k in expr.keywords):
            return None
        return {k.arg for k in expr.keywords if k.arg}
    return None


def _payload_keys(func: Function | None, payload: ast.expr) -> set[str] | None:
    direct = _dict_keys(payload)
    if direct is not None or not isinstance(payload, ast.Name) or func is None:
        return direct
    keys: set[str] | None = None
    for node in own_nodes(func):
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == payload.id for t in node.targets
        ):
            keys = _dict_keys(node.value)
            if keys is None:
                return None
        elif isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Subscript) and dotted(t.value) == payload.id for t in node.targets
        ):
            for t in node.targets:
                if (
                    isinstance(t, ast.Subscript)
                    and isinstance(t.slice, ast.Constant)
                    and keys is not None
                    and isinstance(t.slice.value, str)
                ):
                    keys.add(t.slice.value)
        elif isinstance(node, ast.Call) and dotted(node.func) in (
            f"{payload.id}.update",
            f"{payload.id}.setdefault",
        ):
            return None
    return keys


def _enclosing_function(module: Module, node: ast.AST) -> Function | None:
    current = module.parents.get(node)
    while current is not None and not isinstance(current, ast.FunctionDef | ast.AsyncFunctionDef):
        current = module.parents.get(current)
    return current


def pf005(module: Module) -> Iterator[Hit]:
    for node in ast.walk(module.tree):
        if not isinstance(node, ast.Call):
            continue
        if _jwt_call(module, node, "encode"):
            payload = node.args[0] if node.args else None
            payload = payload or next(
                (k.value for k in node.keywords if k.arg in ("payload", "claims")), None
            )
            if payload is None:
                continue
            keys = _payload_keys(_enclosing_function(module, node), payload)
            if keys is not None and "exp" not in keys:
                yield (
                    node,
                    "PF005",
                    "this token has no `exp` claim: once signed it is valid forever "
                    "(set exp, and a type to tell access from refresh tokens)",
                )
        elif _jwt_call(module, node, "decode"):
            message = _decode_problem(node)
            if message:
                yield node, "PF005", message


def _decode_problem(call: ast.Call) -> str | None:
    kwargs = {k.arg: k.value for k in call.keywords if k.arg}
    options = kwargs.get("options")
    if isinstance(options, ast.Dict):
        for k, v in zip(options.keys, options.values, strict=True):
            off = isinstance(v, ast.Constant) and v.value is False
            if (
                off
                and isinstance(k, ast.Constant)
                and k.value in ("verify_signature", "verify_exp")
            ):
                return f"`jwt.decode` with `{k.value}` off accepts forged or expired tokens"
    verify = kwargs.get("verify")
    if isinstance(verify, ast.Constant) and verify.value is False:
        return "`jwt.decode(verify=False)` accepts forged tokens"
    if "algorithms" not in kwargs and len(call.args) < 3:
        return (
            "`jwt.decode` without a pinned `algorithms` list lets the token choose how it is "
            "checked (pass algorithms=[...])"
        )
    return None


# --- PF006 weak password storage ------------------------------------------------------------

_FAST_HASHES = frozenset(
    {"md5", "sha1", "sha224", "sha256", "sha384", "sha512", "sha3_256", "sha3_512", "blake2b",
     "blake2s", "new"}
)  # fmt: skip
_STORES = re.compile(r"hash|store|encrypt|encode|save|create_password", re.I)
_HASHED_FIELD = re.compile(r"(hashed|hash|digest)_?pass|passw(or)?d_?(hash|digest)", re.I)


def _mentions_password(expr: ast.AST) -> bool:
    for n in ast.walk(expr):
        ident = n.id if isinstance(n, ast.Name) else n.attr if isinstance(n, ast.Attribute) else ""
        if ident and PASSWORD.search(ident) and not _HASHED_FIELD.search(ident):
            return True
    return False


def pf006(module: Module) -> Iterator[Hit]:
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Call):
            qual = module.qualname(node.func) or ""
            head, _, algo = qual.rpartition(".")
            if head == "hashlib" and algo in _FAST_HASHES:
                func = _enclosing_function(module, node)
                context = _mentions_password(node) or bool(func and PASSWORD.search(func.name))
                parent = module.parents.get(node)
                while isinstance(parent, ast.Attribute | ast.Call):
                    parent = module.parents.get(parent)
                if isinstance(parent, ast.Assign):
                    context = context or any(
                        PASSWORD.search(dotted(t) or "") for t in parent.targets
                    )
                if context:
                    yield (
                        node,
                        "PF006",
                        f"a password through `hashlib.{algo}`: a fast, unsalted hash is "
                        "guessed at billions per second (use argon2id or bcrypt)",
                    )
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield from _stored_as_given(node)
        elif isinstance(node, ast.Assign) and _raw_password(node.value):
            for t in node.targets:
                if isinstance(t, ast.Attribute) and _HASHED_FIELD.search(t.attr):
                    yield node, "PF006", _AS_GIVEN
        elif (
            isinstance(node, ast.keyword)
            and node.arg
            and _HASHED_FIELD.search(node.arg)
            and _raw_password(node.value)
        ):
            yield node.value, "PF006", _AS_GIVEN


_AS_GIVEN = "the password is stored as given: a leaked table is the password list (hash it)"


def _raw_password(expr: ast.expr) -> bool:
    name = dotted(expr)
    tail = name.rsplit(".", 1)[-1] if name else ""
    return bool(tail and PASSWORD.search(tail) and not _HASHED_FIELD.search(tail))


def _stored_as_given(func: Function) -> Iterator[Hit]:
    if not _STORES.search(func.name) or "verify" in func.name.lower():
        return
    passwords = {p.arg for p in parameters(func) if PASSWORD.search(p.arg)}
    for node in own_nodes(func):
        if (
            isinstance(node, ast.Return)
            and isinstance(node.value, ast.Name)
            and node.value.id in passwords
        ):
            yield node, "PF006", _AS_GIVEN


# --- PF007 blocking call in async def -------------------------------------------------------

_BLOCKING = {
    "time.sleep": "`time.sleep` stops the event loop (use `await asyncio.sleep`)",
    "urllib.request.urlopen": "`urlopen` waits for the network (use httpx.AsyncClient)",
    "os.system": "`os.system` blocks the event loop until the command ends",
    "subprocess.run": "`subprocess.run` blocks the event loop until the command ends",
    "subprocess.call": "`subprocess.call` blocks the event loop until the command ends",
    "subprocess.check_call": "`subprocess.check_call` blocks the event loop",
    "subprocess.check_output": "`subprocess.check_output` blocks the event loop",
    "psycopg2.connect": "a sync database driver blocks the event loop (use asyncpg)",
    "psycopg.connect": "a sync database driver blocks the event loop (use psycopg.AsyncConnection)",
    "sqlite3.connect": "a sync database driver blocks the event loop (use aiosqlite)",
    "pymysql.connect": "a sync database driver blocks the event loop (use aiomysql/asyncmy)",
    "open": "`open` reads and writes files on the event loop (use a thread: asyncio.to_thread)",
}  # fmt: skip
_SYNC_HTTP = ("requests.", "httpx.get", "httpx.post", "httpx.put", "httpx.patch", "httpx.delete",
              "httpx.head", "httpx.request")  # fmt: skip
_NOT_BLOCKING = ("requests.Session", "requests.exceptions", "requests.HTTPError")
_SYNC_DB_QUALNAMES = (
    "sqlalchemy.orm.Session",
    "sqlalchemy.orm.session.Session",
    "sqlalchemy.Connection",
    "sqlalchemy.engine.Connection",
    "sqlmodel.Session",
)
_DB_CALLS = frozenset(
    {"execute", "scalars", "scalar", "query", "get", "commit", "flush", "refresh", "exec"}
)


def _sync_sessions(module: Module, func: Function) -> set[str]:
    names = set()
    for p in parameters(func):
        if p.annotation is None:
            continue
        for n in ast.walk(p.annotation):
            if isinstance(n, ast.Name | ast.Attribute) and module.qualname(n) in _SYNC_DB_QUALNAMES:
                names.add(p.arg)
    return names


def pf007(module: Module) -> Iterator[Hit]:
    for func in module.functions_in_order():
        if not isinstance(func, ast.AsyncFunctionDef):
            continue
        sync_db = _sync_sessions(module, func)
        sync_clients = {
            n
            for names, value, _ in assignments(func)
            if isinstance(value, ast.Call)
            and (module.qualname(value.func) or "") in ("requests.Session", "httpx.Client")
            for n in names
        }
        for node in own_nodes(func):
            if not isinstance(node, ast.Call):
                continue
            qual = module.qualname(node.func) or ""
            if qual == "open" and "open" in module.aliases:
                continue
            if qual in _BLOCKING:
                yield node, "PF007", f"in async def: {_BLOCKING[qual]}"
            elif qual.startswith(_SYNC_HTTP) and not qual.startswith(_NOT_BLOCKING):
                yield (
                    node,
                    "PF007",
                    f"in async def: `{qual}` waits for the network on the event loop "
                    "(use httpx.AsyncClient)",
                )
            elif (target := method(node)) and not module.awaited(node):
                receiver = dotted(target[0]) or ""
                if receiver in sync_db and target[1] in _DB_CALLS:
                    yield (
                        node,
                        "PF007",
                        f"in async def: `{receiver}` is a sync Session, so `{target[1]}` waits "
                        "for the database on the event loop (use AsyncSession, or a def route)",
                    )
                elif receiver in sync_clients:
                    yield (
                        node,
                        "PF007",
                        f"in async def: `{receiver}` is a sync HTTP client (use httpx.AsyncClient)",
                    )


# --- PF008 check-then-act -------------------------------------------------------------------


def pf008(module: Module) -> Iterator[Hit]:
    for func in module.functions_in_order():
        statements = {names[0]: value for names, value, _ in assignments(func) if names}
        loaded: dict[str, ast.expr] = {}
        for names, value, _ in assignments(func):
            if any(query_call(n) for n in [value, *own_nodes(value)]) and not _locks(
                value, statements
            ):
                for n in names:
                    loaded[n] = value
        if not loaded:
            continue
        checked: set[tuple[str, str]] = set()
        for node in own_nodes(func):
            if isinstance(node, ast.Compare) and any(isinstance(op, _ORDER) for op in node.ops):
                for part in ast.walk(node):
                    if (
                        isinstance(part, ast.Attribute)
                        and isinstance(part.value, ast.Name)
                        and part.value.id in loaded
                    ):
                        checked.add((part.value.id, part.attr))
            target = _written_attribute(node)
            if target and target in checked and _derived(node, target):
                yield (
                    node,
                    "PF008",
                    f"`{target[0]}.{target[1]}` was read, checked and is written back without "
                    "a row lock: concurrent requests pass the same check and overwrite each "
                    "other (one conditional UPDATE ... WHERE, or with_for_update())",
                )


def _locks(value: ast.expr, statements: dict[str, ast.expr]) -> bool:
    for n in [value, *ast.walk(value)]:
        if isinstance(n, ast.Attribute) and n.attr == "with_for_update":
            return True
        if isinstance(n, ast.keyword) and n.arg == "with_for_update":
            return True
        if isinstance(n, ast.Name) and n.id in statements and statements[n.id] is not value:
            inner = statements[n.id]
            if any(
                isinstance(m, ast.Attribute) and m.attr == "with_for_update"
                for m in ast.walk(inner)
            ):
                return True
    return False


_ORDER = (ast.Lt, ast.LtE, ast.Gt, ast.GtE)


def _derived(node: ast.AST, target: tuple[str, str]) -> bool:
    """The new value is computed from the value read: `x.n -= q` or `x.n = x.n - q`."""
    if isinstance(node, ast.AugAssign):
        return True
    value = node.value if isinstance(node, ast.Assign) else None
    return value is not None and any(
        isinstance(n, ast.Attribute) and dotted(n) == f"{target[0]}.{target[1]}"
        for n in ast.walk(value)
    )


def _written_attribute(node: ast.AST) -> tuple[str, str] | None:
    if isinstance(node, ast.AugAssign):
        targets: list[ast.expr] = [node.target]
    elif isinstance(node, ast.Assign):
        targets = node.targets
    else:
        return None
    for t in targets:
        if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name):
            return t.value.id, t.attr
    return None


# --- PF009 racy rate limiter ----------------------------------------------------------------


def _redis_calls(func: Function, names: set[str]) -> Iterator[tuple[ast.Call, str, str]]:
    for node in own_nodes(func):
        target = method(node) if isinstance(node, ast.Call) else None
        if target and target[1] in names and isinstance(node, ast.Call) and node.args:
            yield node, target[1], ast.dump(node.args[0])


def pf009(module: Module) -> Iterator[Hit]:
    for func in module.functions_in_order():
        counted: set[str] = set()
        read: dict[str, set[str]] = {}  # key → names the GET's value went to
        get_nodes: dict[str, ast.Call] = {}
        for names, value, _ in assignments(func):
            for n in [value, *own_nodes(value)]:
                if isinstance(n, ast.Call) and (t := method(n)) and t[1] == "get" and n.args:
                    key = ast.dump(n.args[0])
                    if _CACHE_OBJECT.search(last_name(t[0])) or "pipe" in last_name(t[0]):
                        read.setdefault(key, set()).update(names)
                        get_nodes.setdefault(key, n)
        reported_get: set[str] = set()
        for node, name, key in _redis_calls(
            func, {"incr", "incrby", "decr", "expire", "pexpire", "set", "setex"}
        ):
            if name in ("incr", "incrby", "decr"):
                counted.add(key)
                if key in read and key not in reported_get:
                    reported_get.add(key)
                    yield (
                        get_nodes[key],
                        "PF009",
                        "GET, compare, then INCR as separate commands: concurrent requests "
                        "read the same count and all pass (one atomic script or INCR first)",
                    )
            elif name in ("expire", "pexpire") and key in counted:
                if not any(k.arg == "nx" for k in node.keywords):
                    yield (
                        node,
                        "PF009",
                        "INCR then EXPIRE as two commands: every hit restarts the window, and "
                        "a crash between them leaves a counter that never expires (one Lua "
                        "script, or EXPIRE NX)",
                    )
            elif (
                name in ("set", "setex")
                and key in read
                and key not in reported_get
                and any(
                    isinstance(n, ast.BinOp) and names_in(n) & read[key]
                    for arg in node.args[1:]
                    for n in ast.walk(arg)
                )
            ):
                reported_get.add(key)
                yield (
                    get_nodes[key],
                    "PF009",
                    "GET then SET of a counter: concurrent requests overwrite each other's "
                    "counts (INCR, atomically with its expiry)",
                )


# --- PF010 task inside the transaction ------------------------------------------------------

_SENDS = frozenset({"delay", "apply_async", "send_task"})
_SESSION_WRITES = frozenset({"add", "add_all", "flush", "merge", "delete"})


def pf010(module: Module) -> Iterator[Hit]:
    for func in module.functions_in_order():
        in_transaction: set[int] = set()
        for node in own_nodes(func):
            if isinstance(node, ast.With | ast.AsyncWith) and any(
                isinstance(item.context_expr, ast.Call)
                and last_name(item.context_expr.func) in ("begin", "begin_nested", "transaction")
                for item in node.items
            ):
                in_transaction |= {id(n) for n in body_nodes(node.body)}
        commits = [
            n.lineno
            for n in own_nodes(func)
            if isinstance(n, ast.Call)
            and (t := method(n))
            and t[1] == "commit"
            and is_session(t[0])
        ]
        writes = [
            n.lineno
            for n in own_nodes(func)
            if isinstance(n, ast.Call)
            and (t := method(n))
            and is_session(t[0])
            and (
                t[1] in _SESSION_WRITES
                or (t[1] in ("execute", "exec") and is_write_statement(statement_arg(n)))
            )
        ]
        for node in own_nodes(func):
            if not (isinstance(node, ast.Call) and (t := method(node)) and t[1] in _SENDS):
                continue
            if id(node) in in_transaction:
                where = "inside the open transaction"
            elif any(line > node.lineno for line in commits):
                where = "before the commit below"
            elif not commits and any(line < node.lineno for line in writes):
                where = "after a write to the session and before anyone commits it"
            else:
                continue
            yield (
                node,
                "PF010",
                f"`.{t[1]}(` {where}: a worker may run the task before the data exists, or for "
                "data a rollback removes (send after the commit)",
            )


RULE_CHECKS: dict[str, RuleCheck] = {
    "PF001": pf001,
    "PF002": pf002,
    "PF003": pf003,
    "PF004": pf004,
    "PF005": pf005,
    "PF006": pf006,
    "PF007": pf007,
    "PF008": pf008,
    "PF009": pf009,
    "PF010": pf010,
}
