"""The AWS connection through the Amazon provider, and the stage's S3 filesystems.

The provider's ``AwsBaseHook`` reads the connection the way every Airflow AWS
operator does, so every method it supports works here: keys (login/password),
``profile_name``, ``role_arn`` (``assume_role``, ``assume_role_with_web_identity``,
``assume_role_with_saml``), ``endpoint_url`` and per-service ``service_config``,
``config_kwargs``; or no connection at all (boto3's chain: environment, web
identity token file, the container's or instance's role). It gives one boto3
session whose credentials botocore refreshes before they expire.

The connection comes from :mod:`ingestion.environments` (``AIRFLOW_CONN_*``,
Airflow's store in a task, or the loopback default): the hook gets it as an
``AwsConnectionWrapper`` instead of looking its id up, so the CLI runs without
Airflow's metadata database and a task uses the connection it already resolved.

The stage's S3 client is pyarrow's (the AWS SDK for C++: multipart uploads in
native threads), which takes fixed keys. :class:`S3Access` gives it a frozen copy
of the session's current credentials (with the session token) and makes a new
filesystem whenever that copy changes. botocore refreshes an assumed role's
credentials 15 minutes before they expire, so every file the stage opens gets
credentials valid for at least that long; a part upload takes seconds.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TYPE_CHECKING, Any

from ingestion.connection import Connection
from ingestion.errors import ConfigError, StageError, first_line

if TYPE_CHECKING:  # imported when a filesystem is built, not by the DAG file's imports
    import pyarrow.fs as pafs

AWS_CONN_ID = "pipeline_aws"
# The AWS SDK for C++ reads botocore's ``request_checksum_calculation`` only from here.
CHECKSUM_VARIABLE = "AWS_REQUEST_CHECKSUM_CALCULATION"


def import_airflow() -> None:
    """Import Airflow keeping the process's logging: its first import configures logging
    (stdlib and structlog) for Airflow's own processes, to stdout, where the CLI prints
    its results; the providers' log lines then go where the process's own go."""
    if "airflow" in sys.modules:
        return
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    import airflow  # noqa: F401
    import structlog

    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.configure(
        processors=[structlog.stdlib.render_to_log_kwargs],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
    )


def aws_hook(aws: Connection | None, client_type: str = "s3") -> Any:
    """The provider's ``AwsBaseHook`` over ``aws`` (``None``: boto3's default chain)."""
    import_airflow()
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
    from airflow.providers.amazon.aws.utils.connection_wrapper import AwsConnectionWrapper

    hook = AwsBaseHook(aws_conn_id=None, client_type=client_type)
    if aws is not None:
        try:
            # ``conn_config`` is the hook's (cached) reading of its connection.
            hook.conn_config = AwsConnectionWrapper.from_connection_metadata(
                conn_id=aws.conn_id, login=aws.login, password=aws.password, extra=aws.extra
            )
        except (TypeError, ValueError, NotImplementedError) as exc:
            raise ConfigError(f"{aws.label}: not a usable AWS connection ({first_line(exc)})") from None
    return hook


def credentials_error(aws: Connection | None, exc: Exception) -> StageError:
    """A failure to get credentials, naming the setting to fix; retried only when the
    endpoint could not be reached."""
    from botocore.exceptions import ClientError, EndpointConnectionError

    where = aws.label if aws is not None else "the AWS credentials (no AIRFLOW_CONN_PIPELINE_AWS)"
    role = (aws.extra or {}).get("role_arn") if aws is not None else None
    hint = f"check role_arn {role!r} and the keys or profile it is assumed with" if role else "check them"
    retryable = isinstance(exc, EndpointConnectionError)
    if isinstance(exc, ClientError):
        hint = f"{hint}; AWS refused: {exc.response.get('Error', {}).get('Code', '?')}"
    return StageError(f"{where}: cannot get AWS credentials ({first_line(exc)}); {hint}", retryable=retryable)


class S3Access:
    """pyarrow S3 filesystems carrying the AWS connection's current credentials."""

    def __init__(self, aws: Connection | None) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        self.aws = aws
        hook = aws_hook(aws)
        config = hook.conn_config
        try:
            # An assumed role is assumed here (STS at the connection's sts endpoint).
            self.session = hook.get_session(region_name=hook.region_name)
        except (BotoCoreError, ClientError) as exc:
            raise credentials_error(aws, exc) from None
        self.options: dict[str, Any] = {}
        region = config.region_name or self.session.region_name
        if region:
            self.options["region"] = region
        endpoint = config.get_service_endpoint_url("s3")
        if endpoint:
            scheme, _, host = endpoint.partition("://")
            self.options["endpoint_override"] = host.rstrip("/")
            self.options["scheme"] = scheme
        self.checksums = getattr(config.botocore_config, "request_checksum_calculation", None)
        self.frozen: Any = None
        self.current: pafs.S3FileSystem | None = None

    def credentials(self) -> Any:
        """The session's credentials now (refreshed by botocore when about to expire),
        as ``ReadOnlyCredentials``; ``None`` when boto3 finds none."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            credentials = self.session.get_credentials()
            return credentials.get_frozen_credentials() if credentials is not None else None
        except (BotoCoreError, ClientError) as exc:
            raise credentials_error(self.aws, exc) from None

    def filesystem(self) -> pafs.S3FileSystem:
        """A filesystem with the current credentials: the last one while they are unchanged."""
        frozen = self.credentials()
        if self.current is None or frozen != self.frozen:
            self.current, self.frozen = self.build(frozen), frozen
        return self.current

    def build(self, frozen: Any) -> pafs.S3FileSystem:
        options = dict(self.options)
        if frozen is not None:
            options.update(access_key=frozen.access_key, secret_key=frozen.secret_key)
            if frozen.token:
                options["session_token"] = frozen.token
        if self.checksums:
            # Read when the filesystem is created; the loopback server wants plain bodies.
            os.environ[CHECKSUM_VARIABLE] = self.checksums
        import pyarrow.fs as pafs

        try:
            return pafs.S3FileSystem(**options)
        except (TypeError, ValueError, OSError) as exc:
            where = self.aws.label if self.aws is not None else "the AWS connection"
            raise ConfigError(f"{where}: not usable for S3 ({first_line(exc)}); check its extra") from None
