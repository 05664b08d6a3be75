"""Session tokens as App Bridge issues them: an HS256 JWT signed with the app's secret.

Claims per shopify.dev (session tokens): iss https://<shop>/admin, dest https://<shop>,
aud = client id, sub = user id, exp/nbf/iat (one-minute lifetime), jti, sid.
"""

import time
import uuid

import jwt
from django.conf import settings


def session_token_mint(
    *,
    shop_domain: str,
    user_id: int = 1,
    lifetime_seconds: int = 60,
    now: float | None = None,
    secret: str | None = None,
    audience: str | None = None,
) -> str:
    issued = int(now if now is not None else time.time())
    claims = {
        "iss": f"https://{shop_domain}/admin",
        "dest": f"https://{shop_domain}",
        "aud": audience or settings.DEVSHOP_APP_CLIENT_ID,
        "sub": str(user_id),
        "exp": issued + lifetime_seconds,
        "nbf": issued,
        "iat": issued,
        "jti": str(uuid.uuid4()),
        "sid": uuid.uuid5(uuid.NAMESPACE_URL, f"{shop_domain}/{user_id}").hex,
    }
    return jwt.encode(claims, secret or settings.DEVSHOP_APP_CLIENT_SECRET, algorithm="HS256")
