"""Test peer for sidekey's AWS tests: drives moto (setup, key rotation) with boto3, and signs requests with botocore's SigV4Auth as an independent reference."""
import base64
import json
import sys

import boto3
from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

USER = "sidekey-test"
ADMIN_POLICY = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
)


def client(service, endpoint, key_id="AKIAUNAUTHENTICATED0", secret="unauthenticated"):
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
    )


def new_key(iam):
    k = iam.create_access_key(UserName=USER)["AccessKey"]
    return {"access_key_id": k["AccessKeyId"], "secret_access_key": k["SecretAccessKey"]}


def setup(endpoint):
    # Exactly three actions: moto lets INITIAL_NO_AUTH_ACTION_COUNT=3 through unsigned.
    iam = client("iam", endpoint)
    iam.create_user(UserName=USER)
    iam.put_user_policy(UserName=USER, PolicyName="all", PolicyDocument=ADMIN_POLICY)
    return new_key(iam)


def create_key(endpoint, key_id, secret):
    return new_key(client("iam", endpoint, key_id, secret))


def delete_key(endpoint, key_id, secret, old_id):
    client("iam", endpoint, key_id, secret).delete_access_key(UserName=USER, AccessKeyId=old_id)
    return {"deleted": old_id}


def create_role(endpoint, key_id, secret):
    iam = client("iam", endpoint, key_id, secret)
    trust = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Federated": "arn:aws:iam::123456789012:oidc-provider/issuer.example"},
                    "Action": "sts:AssumeRoleWithWebIdentity",
                },
                {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"},
            ],
        }
    )
    role = iam.create_role(RoleName="sidekey-wi", AssumeRolePolicyDocument=trust)["Role"]
    iam.put_role_policy(RoleName="sidekey-wi", PolicyName="all", PolicyDocument=ADMIN_POLICY)
    return {"role_arn": role["Arn"]}


def sign(cases):
    """Each case: method, url, headers [[name, value]...], body_b64, timestamp,
    access_key_id, secret_access_key, session_token, service, region."""
    out = []
    for c in cases:
        creds = Credentials(c["access_key_id"], c["secret_access_key"], c.get("session_token"))
        auth_cls = S3SigV4Auth if c["service"] == "s3" else SigV4Auth
        auth = auth_cls(creds, c["service"], c["region"])
        req = AWSRequest(method=c["method"], url=c["url"], data=base64.b64decode(c["body_b64"]))
        for name, value in c["headers"]:
            req.headers[name] = value  # appends: repeated headers stay repeated
        req.context["timestamp"] = c["timestamp"]
        canonical = auth.canonical_request(req)
        to_sign = auth.string_to_sign(req, canonical)
        out.append(
            {
                "signature": auth.signature(to_sign, req),
                "signed_headers": auth.signed_headers(auth.headers_to_sign(req)),
            }
        )
    return out


def s3(endpoint, key_id, secret):
    """Runs S3 calls straight against moto, bypassing sidekey: stdin holds
    [[operation, {params}], ...]; each answer is the response (a Body read as
    text) or {"error": code}."""
    from botocore.exceptions import ClientError

    c = client("s3", endpoint, key_id, secret)
    out = []
    for op, params in json.load(sys.stdin):
        try:
            r = getattr(c, op)(**params)
            r.pop("ResponseMetadata", None)
            if "Body" in r:
                r["Body"] = r["Body"].read().decode()
            out.append(json.loads(json.dumps(r, default=str)))
        except ClientError as e:
            out.append({"error": e.response["Error"]["Code"]})
    return out


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "sign":
        result = sign(json.load(sys.stdin))
    elif cmd == "s3":
        result = s3(*args)
    else:
        result = {"setup": setup, "create-key": create_key, "delete-key": delete_key, "create-role": create_role}[cmd](*args)
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
