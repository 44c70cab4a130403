"""Where a migration stream's revisions are, in the forms Alembic users keep them.

A stream (``tenant_migrations=`` / ``shared_migrations=``) is one of:

* a folder holding ``versions/`` (what Alembic calls the ``script_location``);
* the path of an ``alembic.ini`` (its ``[alembic]`` section), or ``Stream(ini=..., section=...)``;
* an :class:`alembic.config.Config`;
* ``Stream(script_location=..., version_locations=[...])``.

From an ini file or a Config, ``script_location`` and ``version_locations`` are read as Alembic
reads them, and :data:`VERSION_TABLE_OPTION` names the stream's version table. Each form
resolves to a :class:`Stream` of absolute paths (picklable: worker processes rebuild the stream
from it) and a loaded :class:`~alembic.script.ScriptDirectory` with at least one revision.
"""

from __future__ import annotations

import configparser
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from alembic import util as alembic_util
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionError
from alembic.util.exc import CommandError

from ..errors import RevisionImportError, StreamConfigError
from ..names import MAX_IDENTIFIER_BYTES

#: The option of an ini section (or Config) naming the stream's version table.
VERSION_TABLE_OPTION = "tenantry_version_table"
DEFAULT_VERSION_TABLE = "alembic_version"
_TABLE = re.compile(r"[a-z_][a-z0-9_]*")


@dataclass(frozen=True)
class Stream:
    """One migration stream: where its revisions are and which version table records them.

    Either ``ini`` (an ``alembic.ini``; ``section`` is read as Alembic's ``-n`` would), or
    ``script_location`` (a folder holding ``versions/``) and/or ``version_locations`` (folders
    of revision files; the first one stands in for ``script_location`` if there is none).
    ``version_table`` overrides the ini's ``tenantry_version_table`` and the Tenancy's
    ``version_table=``.
    """

    script_location: str | Path | None = None
    version_locations: Sequence[str | Path] = field(default=())
    version_table: str | None = None
    ini: str | Path | None = None
    section: str = "alembic"

    def __post_init__(self) -> None:
        if isinstance(self.version_locations, str | Path):
            raise StreamConfigError("Stream(version_locations=...) wants a list of folders")
        object.__setattr__(self, "version_locations",
                           tuple(str(p) for p in self.version_locations))
        if self.ini is not None and (self.script_location or self.version_locations):
            raise StreamConfigError(
                "Stream: give ini (and section) or script_location/version_locations, not both"
            )
        if self.ini is None and not self.script_location and not self.version_locations:
            raise StreamConfigError("Stream: give ini, script_location or version_locations")
        if self.version_table is not None:
            checked_table(self.version_table, "Stream(version_table=...)")


#: What ``tenant_migrations=`` and ``shared_migrations=`` accept.
StreamSource = str | os.PathLike[str] | Stream | Config


@dataclass(frozen=True)
class Loaded:
    """A stream resolved: its portable :class:`Stream`, its Config and its loaded scripts."""

    spec: Stream
    config: Config
    script: ScriptDirectory


def checked_table(name: object, where: str) -> str:
    """``name`` if it can name a version table (a lowercase identifier), else raise."""
    if (not isinstance(name, str) or not _TABLE.fullmatch(name)
            or len(name.encode()) > MAX_IDENTIFIER_BYTES):
        raise StreamConfigError(
            f"invalid version table {name!r} in {where}: use lowercase letters, digits and '_' "
            f"(not starting with a digit), at most {MAX_IDENTIFIER_BYTES} bytes"
        )
    return name


def load(source: StreamSource, version_table: str | None = None) -> Loaded:
    """Resolve and load ``source``; ``version_table`` applies if the source names none."""
    default = DEFAULT_VERSION_TABLE if version_table is None else version_table
    default = checked_table(default, "version_table=")
    if isinstance(source, Config):
        return _from_config(source, None, default, _describe(source))
    if not isinstance(source, Stream):
        path = Path(source)
        source = Stream(ini=path) if path.is_file() or path.suffix == ".ini" else Stream(path)
    if source.ini is not None:
        config = _read_ini(Path(source.ini), source.section)
        return _from_config(config, source.version_table, default, _describe(config))
    return _from_locations(source, default)


def _describe(config: Config) -> str:
    if config.config_file_name is None:
        return "the Alembic Config"
    return f"section {config.config_ini_section!r} of {config.config_file_name!r}"


def _read_ini(path: Path, section: str) -> Config:
    try:
        with path.open(encoding="utf-8"):  # configparser skips a file it cannot open
            pass
    except OSError as exc:
        raise StreamConfigError(
            f"cannot read the Alembic ini file {str(path)!r}: {exc.strerror or exc}"
        ) from exc
    config = Config(str(path), ini_section=section)
    try:
        present = config.file_config.has_section(section)
    except configparser.Error as exc:
        raise StreamConfigError(f"cannot parse the Alembic ini file {str(path)!r}: {exc}") from exc
    if not present:
        raise StreamConfigError(f"the Alembic ini file {str(path)!r} has no section {section!r}")
    return config


def _option(config: Config, name: str) -> object:
    """An option of the Config's main section (or, Alembic >= 1.16, of its pyproject.toml)."""
    get = getattr(config, "get_alembic_option", None) or config.get_main_option
    return get(name)


def _from_config(config: Config, table: str | None, default: str, where: str) -> Loaded:
    try:
        if _option(config, "script_location") is None:
            raise StreamConfigError(f"{where} has no script_location")
        if table is None:
            named = _option(config, VERSION_TABLE_OPTION)
            table = default if named is None else checked_table(named, where)
        script = ScriptDirectory.from_config(config)
    except (CommandError, configparser.Error) as exc:
        raise StreamConfigError(f"cannot read {where}: {exc}") from exc
    return _loaded(script, config, table, where)


def _from_locations(spec: Stream, table: str) -> Loaded:
    where = str(spec.script_location or spec.version_locations[0])
    if not Path(where).is_dir():
        raise StreamConfigError(f"migration directory {where!r} does not exist")
    config = Config()
    config.set_main_option("script_location", where.replace("%", "%%"))
    script = ScriptDirectory(where, version_locations=list(spec.version_locations) or None)
    return _loaded(script, config, spec.version_table or table, repr(where))


def _locations(script: ScriptDirectory) -> list[Path]:
    named = script.version_locations or [str(Path(script.dir, "versions"))]
    return [Path(alembic_util.coerce_resource_to_filename(str(p))).absolute() for p in named]


def _loaded(script: ScriptDirectory, config: Config, table: str, where: str) -> Loaded:
    locations = _locations(script)
    for location in locations:
        _check_folder(script, location, where)
    try:
        heads = script.get_heads()
    except (CommandError, RevisionError) as exc:
        raise StreamConfigError(f"cannot load migrations from {where}: {exc}") from exc
    except Exception as exc:  # a revision file that does not import
        path = _revision_file(exc, locations)
        if path is None and not isinstance(exc, ImportError | SyntaxError):
            raise
        raise RevisionImportError(path or f"(a file of {where})", exc) from exc
    if not heads and any(any(p.glob("*.py")) for p in locations):
        raise StreamConfigError(
            f"no revisions in {where}: looked for revision files (*.py declaring `revision`) in "
            + ", ".join(repr(str(p)) for p in locations)
        )
    directory = Path(alembic_util.coerce_resource_to_filename(str(script.dir))).absolute()
    spec = Stream(
        script_location=str(directory),
        version_locations=[str(p) for p in locations] if script.version_locations else (),
        version_table=table,
    )
    return Loaded(spec, config, script)


def _check_folder(script: ScriptDirectory, location: Path, where: str) -> None:
    if not location.is_dir():
        if not script.version_locations:
            raise StreamConfigError(
                f"migration directory {where} has no versions/ folder: a stream is a folder "
                "whose versions/ holds the revision files (env.py is not used), an alembic.ini "
                "or a tenantry.Stream naming its version_locations"
            )
        raise StreamConfigError(f"version location {str(location)!r} of {where} does not exist")
    try:
        os.listdir(location)
    except OSError as exc:
        raise StreamConfigError(
            f"cannot read version location {str(location)!r} of {where}: {exc.strerror or exc}"
        ) from exc


def _revision_file(exc: BaseException, locations: list[Path]) -> str | None:
    """The revision file (in one of ``locations``) where ``exc`` was raised while importing."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return exc.filename
    tb: TracebackType | None = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if any(Path(filename).resolve().is_relative_to(p.resolve()) for p in locations):
            return filename
        tb = tb.tb_next
    return None
