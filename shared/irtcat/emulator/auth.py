"""The HTTP API's JWT authorizer, locally: what API Gateway does before a route's Lambda runs.

The template declares a Cognito user pool and a JWT authorizer on the session API. On AWS,
API Gateway checks the bearer token against the issuer's published keys and passes the
verified claims to the handler in ``requestContext.authorizer.jwt.claims`` (every value a
string, arrays as ``"[a b]"``). Here the emulator's Cognito issues the tokens (signed with the
emulator's own RSA key, published at the issuer's ``.well-known/jwks.json``), and this class
does the same checks: signature, issuer, audience (``aud`` of an ID token or ``client_id`` of
an access token), expiry.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .stack import LocalStack


class AuthError(Exception):
    """The request is not authorized (API Gateway answers 401 Unauthorized)."""


def _as_api_gateway_string(value: Any) -> str:
    if isinstance(value, list):
        return "[" + " ".join(str(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True)
class JwtAuthorizer:
    issuer: str
    audience: tuple[str, ...]
    header: str
    jwks: dict[str, Any]

    @classmethod
    def from_stack(cls, stack: LocalStack, sam_template: dict[str, Any]) -> JwtAuthorizer | None:
        """The HTTP API's default JWT authorizer, its issuer and audience resolved against the
        local stack; None when the API declares none."""
        from moto.cognitoidp.responses import CognitoIdpJsonWebKeyResponse

        for res in sam_template["Resources"].values():
            if res["Type"] != "AWS::Serverless::HttpApi":
                continue
            auth = res.get("Properties", {}).get("Auth") or {}
            name = auth.get("DefaultAuthorizer")
            if not name:
                return None
            spec = auth["Authorizers"][name]
            jwt_cfg = stack.resolver.resolve(spec["JwtConfiguration"])
            source = spec.get("IdentitySource", "$request.header.Authorization")
            if not source.startswith("$request.header."):
                raise ValueError(f"unsupported identity source {source!r}")
            return cls(issuer=str(jwt_cfg["issuer"]), audience=tuple(str(a) for a in jwt_cfg["audience"]),
                       header=source.removeprefix("$request.header.").lower(),
                       jwks=json.loads(CognitoIdpJsonWebKeyResponse.json_web_key))
        return None

    def claims(self, headers: Mapping[str, str]) -> dict[str, str]:
        """The verified claims of the request's bearer token, as API Gateway passes them on."""
        from joserfc import jwt
        from joserfc.errors import JoseError
        from joserfc.jwk import KeySet

        raw = {k.lower(): v for k, v in headers.items()}.get(self.header, "")
        token = raw.removeprefix("Bearer ").removeprefix("bearer ").strip()
        if not token:
            raise AuthError("no token")
        try:
            decoded = jwt.decode(token, KeySet.import_key_set(self.jwks), algorithms=["RS256"])  # type: ignore[arg-type]
        except (JoseError, ValueError) as exc:
            raise AuthError(f"bad token: {exc}") from None
        claims = decoded.claims
        if claims.get("iss") != self.issuer:
            raise AuthError("wrong issuer")
        if (claims.get("aud") or claims.get("client_id")) not in self.audience:
            raise AuthError("wrong audience")
        now = time.time()
        if float(claims.get("exp", 0)) <= now or float(claims.get("nbf", 0)) > now:
            raise AuthError("token expired or not yet valid")
        return {k: _as_api_gateway_string(v) for k, v in claims.items()}
