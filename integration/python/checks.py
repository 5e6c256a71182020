"""Python client checks of the compatibility harness.

psycopg 3 (text and binary), psycopg2, SQLAlchemy 2 (inspect() and a Core
select with parameters), pandas.read_sql and asyncpg (binary everywhere).
Connection from the PG* environment variables; prints one
"ok python ..." / "not ok python ... -- why" / "xfail python ..." line per check.
"""

import asyncio
import datetime
import decimal
import os
import traceback

WRITES = os.environ.get("PRODUCTIVE_PG_WRITES") == "1"
HOST, PORT = os.environ["PGHOST"], int(os.environ["PGPORT"])
USER, PASSWORD, DB = os.environ["PGUSER"], os.environ["PGPASSWORD"], os.environ["PGDATABASE"]
DSN = f"host={HOST} port={PORT} user={USER} password={PASSWORD} dbname={DB}"
URL = f"{USER}:{PASSWORD}@{HOST}:{PORT}/{DB}"


def why(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".replace("\n", " ")
    return text[:300]


def check(name, write=False):
    def wrap(fn):
        try:
            fn()
            print(f"ok python {name}", flush=True)
        except Exception as exc:  # every failure is a result line
            if write and not WRITES:
                print(f"xfail python {name} -- {why(exc)} (this server has no write path)")
            else:
                print(f"not ok python {name} -- {why(exc)}", flush=True)
                traceback.print_exc()
        return fn

    return wrap


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


# Reference values read once with psycopg 3 in text mode.
import psycopg  # noqa: E402

with psycopg.connect(DSN) as conn:
    TASK_COUNT = conn.execute("SELECT count(*) FROM tasks").fetchone()[0]
    FIRST_ID, FIRST_TITLE = conn.execute(
        "SELECT id, title FROM tasks ORDER BY id LIMIT 1"
    ).fetchone()


@check("psycopg3 text")
def _():
    with psycopg.connect(DSN) as conn:
        cur = conn.execute(
            "SELECT id, title, created_at, due_date FROM tasks WHERE id = %s AND title = %s",
            (FIRST_ID, FIRST_TITLE),
        )
        row = cur.fetchone()
        expect(row[0] == FIRST_ID and row[1] == FIRST_TITLE, row)
        expect(isinstance(row[2], datetime.datetime) and row[2].tzinfo is not None, row[2])
        expect([d.name for d in cur.description] == ["id", "title", "created_at", "due_date"],
               cur.description)


@check("psycopg3 binary")
def _():
    with psycopg.connect(DSN) as conn:
        cur = conn.cursor(binary=True)
        cur.execute(
            "SELECT count(*) AS n, CAST(%s AS numeric) AS amount, CAST(%s AS date) AS day "
            "FROM tasks WHERE id >= %s AND created_at < %s",
            (decimal.Decimal("12.50"), datetime.date(2024, 2, 29), 1,
             datetime.datetime(2100, 1, 1, tzinfo=datetime.timezone.utc)),
        )
        n, amount, day = cur.fetchone()
        expect(n == TASK_COUNT, (n, TASK_COUNT))
        expect(amount == decimal.Decimal("12.50"), amount)
        expect(day == datetime.date(2024, 2, 29), day)


@check("psycopg3 server-side cursor")
def _():
    with psycopg.connect(DSN) as conn:
        with conn.cursor(name="walk") as cur:
            cur.itersize = 10
            cur.execute("SELECT id FROM tasks")
            expect(sum(1 for _ in cur) == TASK_COUNT, "row count")


@check("psycopg3 error leaves the connection usable")
def _():
    with psycopg.connect(DSN, autocommit=True) as conn:
        try:
            conn.execute("SELECT nosuch FROM tasks")
            raise AssertionError("no error")
        except psycopg.errors.UndefinedColumn:
            pass
        expect(conn.execute("SELECT 3").fetchone()[0] == 3, "after error")


@check("psycopg2")
def _():
    import psycopg2

    conn = psycopg2.connect(DSN)
    try:
        cur = conn.cursor()
        cur.execute("SELECT id, title FROM tasks WHERE id = %s", (FIRST_ID,))
        expect(cur.fetchone() == (FIRST_ID, FIRST_TITLE), "row")
        cur.execute("SELECT count(*) FROM tasks WHERE created_at < %s",
                    (datetime.datetime(2100, 1, 1, tzinfo=datetime.timezone.utc),))
        expect(cur.fetchone()[0] == TASK_COUNT, "count")
    finally:
        conn.close()


@check("psycopg3 UPDATE rowcount", write=True)
def _():
    with psycopg.connect(DSN, autocommit=True) as conn:
        cur = conn.execute("UPDATE tasks SET title = title WHERE id = %s", (FIRST_ID,))
        expect(cur.rowcount == 1, cur.rowcount)


def engine():
    import sqlalchemy

    return sqlalchemy.create_engine(f"postgresql+psycopg://{URL}")


@check("sqlalchemy inspect table names")
def _():
    import sqlalchemy

    names = sqlalchemy.inspect(engine()).get_table_names()
    expect("tasks" in names and "projects" in names, names)


@check("sqlalchemy inspect has_table")
def _():
    import sqlalchemy

    insp = sqlalchemy.inspect(engine())
    expect(insp.has_table("tasks") and not insp.has_table("no_such_table"), "has_table")


@check("sqlalchemy inspect columns")
def _():
    import sqlalchemy

    cols = {c["name"]: c for c in sqlalchemy.inspect(engine()).get_columns("tasks")}
    expect(isinstance(cols["id"]["type"], sqlalchemy.BigInteger), cols["id"]["type"])
    expect(not cols["id"]["nullable"], "id nullable")
    expect(isinstance(cols["created_at"]["type"], sqlalchemy.TIMESTAMP)
           and cols["created_at"]["type"].timezone, cols["created_at"]["type"])


@check("sqlalchemy inspect primary key")
def _():
    import sqlalchemy

    pk = sqlalchemy.inspect(engine()).get_pk_constraint("tasks")
    expect(pk["constrained_columns"] == ["id"], pk)


@check("sqlalchemy inspect foreign keys")
def _():
    import sqlalchemy

    fks = sqlalchemy.inspect(engine()).get_foreign_keys("tasks")
    expect(any(fk["constrained_columns"] == ["project_id"]
               and fk["referred_table"] == "projects"
               and fk["referred_columns"] == ["id"] for fk in fks), fks)


@check("sqlalchemy inspect indexes")
def _():
    import sqlalchemy

    # PostgreSQL lists no primary-key index here; the call must succeed.
    indexes = sqlalchemy.inspect(engine()).get_indexes("tasks")
    expect(isinstance(indexes, list), indexes)


@check("sqlalchemy Core select with parameters")
def _():
    import sqlalchemy as sa

    meta = sa.MetaData()
    tasks = sa.Table("tasks", meta, sa.Column("id", sa.BigInteger),
                     sa.Column("title", sa.Text), sa.Column("created_at", sa.DateTime(True)))
    with engine().connect() as conn:
        rows = conn.execute(
            sa.select(tasks.c.id, tasks.c.title)
            .where(tasks.c.id == sa.bindparam("id"))
            .where(tasks.c.created_at < datetime.datetime(2100, 1, 1,
                                                          tzinfo=datetime.timezone.utc)),
            {"id": FIRST_ID},
        ).all()
        expect([tuple(r) for r in rows] == [(FIRST_ID, FIRST_TITLE)], rows)


@check("pandas.read_sql")
def _():
    import pandas

    with engine().connect() as conn:
        frame = pandas.read_sql(
            "SELECT id, title, created_at FROM tasks ORDER BY id LIMIT 5", conn)
    expect(list(frame.columns) == ["id", "title", "created_at"], frame.columns)
    expect(int(frame["id"].iloc[0]) == FIRST_ID, frame["id"].iloc[0])
    expect(str(frame["created_at"].dtype).startswith("datetime64"), frame["created_at"].dtype)


async def asyncpg_checks():
    import asyncpg

    conn = await asyncpg.connect(host=HOST, port=PORT, user=USER, password=PASSWORD,
                                 database=DB)
    try:
        row = await conn.fetchrow(
            "SELECT id, title, created_at, due_date FROM tasks WHERE id = $1", FIRST_ID)
        expect(row["id"] == FIRST_ID and row["title"] == FIRST_TITLE, row)
        expect(isinstance(row["created_at"], datetime.datetime), row["created_at"])
        n = await conn.fetchval(
            "SELECT count(*) FROM tasks WHERE created_at < $1 AND id >= $2",
            datetime.datetime(2100, 1, 1, tzinfo=datetime.timezone.utc), 1)
        expect(n == TASK_COUNT, n)
        amount = await conn.fetchval("SELECT CAST($1 AS numeric)", decimal.Decimal("3.25"))
        expect(amount == decimal.Decimal("3.25"), amount)
        day = await conn.fetchval("SELECT CAST($1 AS date)", datetime.date(2024, 2, 29))
        expect(day == datetime.date(2024, 2, 29), day)
        stmt = await conn.prepare("SELECT id FROM tasks WHERE id = $1")
        for _ in range(6):
            expect(await stmt.fetchval(FIRST_ID) == FIRST_ID, "prepared")
    finally:
        await conn.close()


@check("asyncpg (binary)")
def _():
    asyncio.run(asyncpg_checks())
