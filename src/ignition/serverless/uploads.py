"""Outputs to S3 when BUCKET_ENDPOINT_URL, BUCKET_ACCESS_KEY_ID and BUCKET_SECRET_ACCESS_KEY are
set (worker-comfyui's names), as runpod-python's rp_upload does it: bucket BUCKET_NAME or the
month (`%m-%y`), key `[BUCKET_PREFIX/]<job id>/<file name>`, a presigned link valid 7 days.

boto3 is imported when the first upload is made; a worker without a bucket never loads it.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from ignition.errors import OutputUploadError
from ignition.settings import Settings

PRESIGNED_S = 7 * 24 * 3600


class S3Uploader:
    def __init__(self, settings: Settings) -> None:
        assert settings.bucket_access_key_id is not None
        assert settings.bucket_secret_access_key is not None
        self._endpoint = settings.bucket_endpoint_url
        self._key_id = settings.bucket_access_key_id.get_secret_value()
        self._secret = settings.bucket_secret_access_key.get_secret_value()
        self._bucket = settings.bucket_name
        self._prefix = settings.bucket_prefix.strip("/")
        self._client: Any = None

    @classmethod
    def configured(cls, settings: Settings) -> S3Uploader | None:
        wanted = (
            settings.bucket_endpoint_url,
            settings.bucket_access_key_id,
            settings.bucket_secret_access_key,
        )
        return cls(settings) if all(wanted) else None

    async def upload(self, job_id: str, filename: str, data: bytes, media_type: str) -> str:
        """Store the file; its presigned URL."""
        try:
            return await asyncio.to_thread(self._upload, job_id, filename, data, media_type)
        except Exception as error:  # boto3 raises botocore's own tree, and ValueError for URLs
            raise OutputUploadError(
                f"{filename} could not be uploaded to {self._endpoint}: "
                f"{type(error).__name__}: {error}"
            ) from error

    def _upload(self, job_id: str, filename: str, data: bytes, media_type: str) -> str:
        client = self._boto()
        bucket = self._bucket or time.strftime("%m-%y")
        key = "/".join(part for part in (self._prefix, job_id, filename) if part)
        client.put_object(Bucket=bucket, Key=key, Body=data, ContentType=media_type)
        url: str = client.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=PRESIGNED_S
        )
        return url

    def _boto(self) -> Any:
        if self._client is None:
            import boto3
            from botocore.config import Config

            self._client = boto3.client(
                "s3",
                endpoint_url=self._endpoint,
                aws_access_key_id=self._key_id,
                aws_secret_access_key=self._secret,
                config=Config(signature_version="s3v4", retries={"max_attempts": 3}),
            )
        return self._client
