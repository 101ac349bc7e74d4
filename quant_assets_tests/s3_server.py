"""A real S3 protocol on 127.0.0.1: moto's server in a subprocess, with IAM authentication on.

Importable by tests and benchmarks alike::

    from quant_assets_tests.s3_server import s3_server, lakehouse_on

    with s3_server() as server:                      # started on a free port, always stopped
        root = server.create_bucket("lake") + "/lakehouse"   # "s3://lake/lakehouse"
        with lakehouse_on(server, root):             # os.environ points s3fs and the lakehouse at it
            ...                                      # PartitionStore(), quant-assets run/sql ...
        subprocess.run([...], env=server.env(root))  # or hand a subprocess the same environment

The credentials are an IAM user's access key that the server made itself (random, so a test
can look for the secret in any output), and reach the code under test only through the
environment: ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION`` and
``AWS_ENDPOINT_URL_S3`` (botocore's service-specific endpoint, which aiobotocore and so s3fs
honour). Once the user exists the server checks every request's signature and permissions,
so a wrong secret or key fails as it would on AWS.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import tempfile
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from quant_assets_tests.servers import free_port, stop_process_group, wait_until_answering

REGION = "us-east-1"
#: Every variable through which botocore could find other credentials, an endpoint or a
#: profile, or reach out for them (the instance metadata service is on the network).
AWS_ISOLATION = {
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}
AWS_CLEARED = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ENDPOINT_URL",
               "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
               "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_REGION")
_START_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class S3Server:
    """A running moto S3 server and the credentials it accepts."""

    endpoint: str
    access_key_id: str
    secret_access_key: str
    region: str = REGION
    log: Path | None = None

    def env(self, lakehouse: str | None = None, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """``base`` (default: ``os.environ``) with botocore pointed at this server and no other
        credential source, and ``QUANT_ASSETS_LAKEHOUSE`` set to ``lakehouse`` if given."""
        env = {k: v for k, v in (os.environ if base is None else base).items() if k not in AWS_CLEARED}
        env.update(AWS_ISOLATION)
        env.update(self.aws_variables())
        if lakehouse is not None:
            env["QUANT_ASSETS_LAKEHOUSE"] = lakehouse
        return env

    def aws_variables(self) -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": self.access_key_id, "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
                "AWS_DEFAULT_REGION": self.region, "AWS_ENDPOINT_URL_S3": self.endpoint}

    def client(self):
        """A boto3 S3 client with this server's credentials (for setting up and inspecting)."""
        return _client(self.endpoint, self.region, self.access_key_id, self.secret_access_key)

    def create_bucket(self, name: str | None = None) -> str:
        """Create a bucket (a fresh name by default) and return its ``s3://`` URL."""
        name = name or f"lake-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return f"s3://{name}"

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every object key under ``prefix`` in ``bucket`` (a bare name or an ``s3://`` URL)."""
        bucket = bucket.removeprefix("s3://").split("/", 1)[0]
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))


@functools.lru_cache(maxsize=8)
def _client(endpoint: str, region: str, access_key_id: str, secret_access_key: str):
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, region_name=region, aws_access_key_id=access_key_id,
                        aws_secret_access_key=secret_access_key)


def _create_user(endpoint: str) -> tuple[str, str]:
    """An IAM user allowed every S3 action, and its access key; then authentication on."""
    import boto3

    iam = boto3.client("iam", endpoint_url=endpoint, region_name=REGION,
                       aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap")
    iam.create_user(UserName="lakehouse")
    iam.put_user_policy(UserName="lakehouse", PolicyName="s3", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
    key = iam.create_access_key(UserName="lakehouse")["AccessKey"]
    # Not form data (urllib's default type), or the server reads an empty body.
    request = urllib.request.Request(f"{endpoint}/moto-api/reset-auth", data=b"0", method="POST",
                                     headers={"Content-Type": "text/plain"})
    with urllib.request.urlopen(request, timeout=10) as response:
        if response.status != 200:
            raise RuntimeError(f"moto server at {endpoint} did not turn authentication on: {response.status}")
    return key["AccessKeyId"], key["SecretAccessKey"]


@contextmanager
def s3_server(log_dir: str | os.PathLike[str] | None = None) -> Iterator[S3Server]:
    """Start ``python -m moto.server`` on 127.0.0.1 and a free port, make an IAM user, turn
    authentication on, and yield the server; it is stopped (its process group killed) on exit,
    whatever happens. Its log goes to ``log_dir`` (default: a temporary directory)."""
    with tempfile.TemporaryDirectory(prefix="moto-") as scratch:
        for attempt in range(3):  # another process may take the free port before the server does
            log = Path(log_dir or scratch) / f"moto-{uuid.uuid4().hex[:8]}.log"
            port = free_port()
            endpoint = f"http://127.0.0.1:{port}"
            # The server's own environment holds no credential: it needs none.
            env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
            with log.open("w") as out:
                process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                           env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
            try:
                try:
                    wait_until_answering(f"{endpoint}/moto-api/data.json", process, log, "moto server",
                                         _START_TIMEOUT_S, every_s=0.1)
                except RuntimeError:
                    if attempt == 2 or process.poll() is None:
                        raise
                    continue
                access_key_id, secret = _create_user(endpoint)
                yield S3Server(endpoint, access_key_id, secret, log=log)
                return
            finally:
                stop_process_group(process)


def forget_s3_clients() -> None:
    """Drop fsspec's cached S3 file systems: they keep the endpoint and credentials they were
    made with, and the environment is about to change."""
    try:
        from s3fs import S3FileSystem
    except ImportError:
        return
    S3FileSystem.clear_instance_cache()


@contextmanager
def lakehouse_on(server: S3Server, root: str | None = None) -> Iterator[None]:
    """Within the block, ``os.environ`` points botocore (hence s3fs) at ``server`` and, if
    ``root`` is given, ``QUANT_ASSETS_LAKEHOUSE`` at ``root``; restored afterwards."""
    saved = dict(os.environ)
    forget_s3_clients()
    try:
        os.environ.clear()
        os.environ.update(server.env(root, base=saved))
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
        forget_s3_clients()
