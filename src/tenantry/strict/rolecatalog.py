"""What strict mode reads from and does to PostgreSQL roles, one statement each."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..names import quote


def set_role(conn: Connection, role: str) -> None:
    """Switch ``conn`` to ``role`` until the end of the current transaction."""
    conn.exec_driver_sql(f"SET LOCAL ROLE {quote(role)}")


def reset_role(conn: Connection) -> None:
    conn.exec_driver_sql("RESET ROLE")


def role_exists(conn: Connection, role: str) -> bool:
    query = sa.text("SELECT 1 FROM pg_roles WHERE rolname = :r")
    return conn.execute(query, {"r": role}).first() is not None


def is_member(conn: Connection, role: str, group: str) -> bool:
    query = sa.text(
        "SELECT 1 FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member "
        "JOIN pg_roles g ON g.oid = m.roleid WHERE r.rolname = :r AND g.rolname = :g"
    )
    return conn.execute(query, {"r": role, "g": group}).first() is not None


def server_version(conn: Connection) -> int:
    return int(conn.execute(sa.text("SHOW server_version_num")).scalar_one())


def can_set_role(conn: Connection, role: str) -> bool:
    """Whether the app may ``SET ROLE`` to ``role`` and act with its privileges."""
    if server_version(conn) >= 160000:
        query = sa.text(
            "SELECT pg_has_role(current_user, :r, 'SET') AND pg_has_role(current_user, :r, 'USAGE')"
        )
    else:
        query = sa.text("SELECT pg_has_role(current_user, :r, 'MEMBER')")
    return bool(conn.execute(query, {"r": role}).scalar())


def connect_restricted(conn: Connection, database: str, role: str) -> bool:
    """Whether ``role`` may connect to ``database`` and PUBLIC may not."""
    query = sa.text(
        "SELECT d.datacl IS NOT NULL AND NOT EXISTS (SELECT 1 FROM aclexplode(d.datacl) a "
        "WHERE a.grantee = 0 AND a.privilege_type = 'CONNECT') "
        "AND has_database_privilege(:r, d.datname, 'CONNECT') "
        "FROM pg_database d WHERE d.datname = :d"
    )
    return bool(conn.execute(query, {"d": database, "r": role}).scalar())


def schema_owner(conn: Connection, schema: str) -> str | None:
    query = sa.text(
        "SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = :s"
    )
    owner: str | None = conn.execute(query, {"s": schema}).scalar()
    return owner


# Objects whose owner can be changed on their own: tables, views, materialized views, foreign
# tables, sequences not owned by a column (those follow their table), functions, enum and
# domain types (row types follow their table).
OWNED_OBJECTS = sa.text(
    """
    SELECT CASE c.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW'
                WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'f' THEN 'FOREIGN TABLE'
                ELSE 'TABLE' END AS kind,
           c.relname AS name, pg_get_userbyid(c.relowner) AS owner
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = :s AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                      AND d.objid = c.oid AND d.deptype IN ('a', 'i')
                      AND d.refclassid = 'pg_class'::regclass)
      AND NOT c.relispartition
    UNION ALL
    SELECT 'TYPE', t.typname, pg_get_userbyid(t.typowner)
    FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
    WHERE n.nspname = :s AND t.typtype IN ('e', 'd')
    """
)

TABLE_SEQUENCES = sa.text(
    """
    SELECT s.relname FROM pg_class s
    JOIN pg_depend d ON d.objid = s.oid AND d.classid = 'pg_class'::regclass
    WHERE s.relkind = 'S' AND d.deptype IN ('a', 'i') AND d.refobjid = CAST(:t AS regclass)
    """
)
