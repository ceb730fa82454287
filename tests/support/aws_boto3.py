"""Real-client peer for tests/aws_boto3.rs: drives S3 through a sidekey route with boto3, as an app would.

boto3 signs with dummy keys that sidekey replaces. Argument: the route's base
URL. Prints one JSON object: each step's outcome, or the first error.
"""
import hashlib
import io
import json
import os
import sys
import tempfile

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

MIB = 1024 * 1024
BUCKET = "sidekey-boto3"


def pattern(size, seed):
    block = hashlib.sha256(seed.encode()).digest() * (MIB // 32)
    return (block * (size // len(block) + 1))[:size]


def main(endpoint):
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        # Dummy keys: sidekey strips this signature and signs with the real ones.
        aws_access_key_id="AKIADUMMYAPPKEY00000",
        aws_secret_access_key="dummy-app-secret-sidekey-replaces-it",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )
    out = {}
    s3.create_bucket(Bucket=BUCKET)

    # A file-like body: botocore sends `Expect: 100-continue` with it.
    small = pattern(300 * 1024, "small")
    s3.put_object(Bucket=BUCKET, Key="small.bin", Body=io.BytesIO(small))
    got = s3.get_object(Bucket=BUCKET, Key="small.bin")["Body"].read()
    out["put_get_equal"] = got == small

    # Over the multipart threshold: CreateMultipartUpload, UploadPart x3, Complete.
    big = pattern(12 * MIB + 123, "big")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "big.bin")
        with open(path, "wb") as f:
            f.write(big)
        cfg = TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB, max_concurrency=2)
        s3.upload_file(path, BUCKET, "dir/big.bin", Config=cfg)
    head = s3.head_object(Bucket=BUCKET, Key="dir/big.bin")
    out["multipart_etag"] = head["ETag"].strip('"')
    got = s3.get_object(Bucket=BUCKET, Key="dir/big.bin")["Body"].read()
    out["multipart_get_equal"] = got == big

    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="dir/")
    out["listed"] = sorted(o["Key"] for o in listed.get("Contents", []))

    s3.delete_object(Bucket=BUCKET, Key="small.bin")
    s3.delete_object(Bucket=BUCKET, Key="dir/big.bin")
    left = s3.list_objects_v2(Bucket=BUCKET)
    out["left_after_delete"] = [o["Key"] for o in left.get("Contents", [])]
    return out


if __name__ == "__main__":
    try:
        print(json.dumps({"ok": True, **main(sys.argv[1])}))
    except Exception as e:  # the test prints this: botocore errors name the failing call
        print(json.dumps({"ok": False, "error": f"{type(e).__name__}: {e}"}))
