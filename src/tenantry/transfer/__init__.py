"""One tenant's data out and in: JSON Lines per table plus a manifest, optionally ``pg_dump``.

Encoding (format version 2): each line of ``tables/<table>.jsonl`` is one row as a JSON object
mapping each column to PostgreSQL's own text form of its value (``value::text``, what ``COPY``
and ``pg_dump`` write) or JSON ``null`` for SQL ``NULL``. Import casts each text back to the new
tenant's column type, so the database (not Python) converts every value with the type's own
input and output functions: no value is lost, JSON ``null`` in a ``jsonb`` column (the string
``"null"``) stays distinct from SQL ``NULL``. Version 1 exports (``row_to_json``) still import.
Foreign keys that form cycles (self-references included) are dropped for the load and re-added
after it, which re-checks every row. See docs/export.md.
"""


from .export import export_tenant
from .importing import import_tenant
from .manifest import MANIFEST, Manifest, Progress

__all__ = ["MANIFEST", "Manifest", "Progress", "export_tenant", "import_tenant"]
