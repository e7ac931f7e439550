"""An Airflow connection's fields as the pipeline uses them, read from JSON or a URI."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from ingestion.errors import ConfigError


@dataclass(frozen=True)
class Connection:
    """The fields of an Airflow connection that the pipeline uses."""

    conn_id: str
    conn_type: str
    host: str | None = None
    port: int | None = None
    login: str | None = None
    password: str | None = None
    schema: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def setting(self) -> str:
        """The environment variable that sets this connection (Airflow reads it too)."""
        return variable_of(self.conn_id)

    @property
    def label(self) -> str:
        """How errors name the connection: its id and its variable."""
        return f"connection {self.conn_id!r} ({self.setting})"

    def extra_int(self, key: str, default: int) -> int:
        """A whole-number setting of ``extra`` (e.g. ``connect_timeout``)."""
        value = (self.extra or {}).get(key, default)
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{self.label}: extra.{key} {value!r} is not a whole number") from None

    def to_json(self) -> str:
        """Airflow's JSON connection format (what ``AIRFLOW_CONN_*`` holds)."""
        document: dict[str, Any] = {"conn_type": self.conn_type}
        for key in ("host", "port", "login", "password", "schema"):
            value = getattr(self, key)
            if value not in (None, ""):
                document[key] = value
        if self.extra:
            document["extra"] = self.extra
        return json.dumps(document)

    def to_airflow(self) -> Any:
        """This connection as an ``airflow.sdk.Connection``, for a provider's hook."""
        from airflow.sdk import Connection as AirflowConnection

        return AirflowConnection(
            conn_id=self.conn_id,
            conn_type=self.conn_type,
            host=self.host,
            port=self.port,
            login=self.login,
            password=self.password,
            schema=self.schema,
            extra=json.dumps(self.extra) if self.extra else None,
        )

    @classmethod
    def parse(cls, conn_id: str, text: str) -> Connection:
        """Read a connection in Airflow's JSON or URI form."""
        where = f"connection {conn_id!r} ({variable_of(conn_id)})"
        text = text.strip()
        if text.startswith(("{", "[", '"')):
            try:
                document = json.loads(text)
            except json.JSONDecodeError as exc:
                # The decoder's message names the position, never the text (it may hold a password).
                raise ConfigError(
                    f"{where}: not valid JSON ({exc}); write it as "
                    '{"conn_type": "...", "host": "...", ...} or as a URI like mysql://user@host/db'
                ) from None
            if not isinstance(document, dict):
                raise ConfigError(f"{where}: expected a JSON object, got a {type(document).__name__}")
            return cls(
                conn_id=conn_id,
                conn_type=str(document.get("conn_type") or ""),
                host=document.get("host"),
                port=_port(conn_id, document.get("port")),
                login=document.get("login"),
                password=document.get("password"),
                schema=document.get("schema"),
                extra=_extra(conn_id, document.get("extra")),
            )
        parts = urlsplit(text)
        if not parts.scheme or not parts.netloc and not parts.path:
            raise ConfigError(f"{where}: expected JSON or a URI like postgres://user@host:5432/db")
        try:
            port = parts.port
        except ValueError:
            raise ConfigError(f"{where}: the port is not a number from 1 to 65535") from None
        return cls(
            conn_id=conn_id,
            conn_type=parts.scheme.replace("-", "_"),
            host=unquote(parts.hostname) if parts.hostname else None,
            port=port,
            login=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            schema=unquote(parts.path.lstrip("/")) or None,
            extra=dict(parse_qsl(parts.query)),
        )

    @classmethod
    def from_airflow(cls, conn: Any) -> Connection:
        """Convert an ``airflow.models.Connection`` (secrets backends included)."""
        return cls(
            conn_id=conn.conn_id,
            conn_type=conn.conn_type,
            host=conn.host,
            port=conn.port,
            login=conn.login,
            password=conn.password,
            schema=conn.schema,
            extra=conn.extra_dejson,
        )


def variable_of(conn_id: str) -> str:
    """The ``AIRFLOW_CONN_*`` environment variable of a connection id."""
    return f"AIRFLOW_CONN_{conn_id.upper()}"


def _port(conn_id: str, value: Any) -> int | None:
    if value in (None, ""):
        return None
    try:
        port = int(value)
    except (TypeError, ValueError):
        port = 0
    if not 0 < port < 65536 or isinstance(value, bool):
        raise ConfigError(
            f"connection {conn_id!r} ({variable_of(conn_id)}): port {value!r} is not a number from 1 to 65535"
        )
    return port


def _extra(conn_id: str, value: Any) -> dict[str, Any]:
    """``extra`` as a dict: Airflow accepts it as an object or as a JSON string."""
    where = f"connection {conn_id!r} ({variable_of(conn_id)})"
    if value in (None, ""):
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"{where}: extra is not valid JSON ({exc}); give it as a JSON object or a string holding one"
            ) from None
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: extra must be a JSON object")
    return value
