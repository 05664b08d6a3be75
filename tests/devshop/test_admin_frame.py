"""The devshop's admin frame over HTTP: the iframe's URL carries what Shopify's admin passes
to an embedded app, and the token endpoint mints session tokens the app accepts."""

import base64
import html
import json
import re
import time
import uuid
from urllib.parse import parse_qs, urlsplit

import requests
from django.conf import settings

from shopapp.auth.session import session_token_decode


def _shop(devshop) -> str:
    domain = f"frame-{uuid.uuid4().hex[:8]}.myshopify.com"
    devshop.client.shop_create(domain, name="Frame Test")
    return domain


def test_app_frame_embeds_the_app_with_embedded_host_shop_and_a_fresh_session_token(devshop):
    domain = _shop(devshop)

    response = requests.get(f"{devshop.base_url}/store/{domain}/admin/apps/app", timeout=10)

    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    src = html.unescape(re.search(r'<iframe[^>]* src="([^"]+)"', response.text).group(1))
    parts = urlsplit(src)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{settings.APP_URL}/app/"
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    assert query["embedded"] == "1"
    assert query["shop"] == domain
    name = domain.removesuffix(".myshopify.com")
    assert query["host"] == base64.b64encode(
        f"admin.shopify.com/store/{name}".encode()
    ).decode().rstrip("=")
    claims = session_token_decode(query["id_token"])
    assert claims["dest"] == f"https://{domain}"
    assert claims["iss"] == f"https://{domain}/admin"
    assert claims["exp"] - claims["nbf"] == 60
    assert abs(claims["iat"] - time.time()) < 30
    # Opening the frame does not install the app: the app's first load does (token exchange).
    assert devshop.client.shop_get(domain)["app_installed"] is False


def test_token_endpoint_mints_a_new_token_each_time(devshop):
    domain = _shop(devshop)
    url = f"{devshop.base_url}/store/{domain}/admin/apps/app/token"

    first, second = (requests.get(url, timeout=10) for _ in range(2))

    assert first.status_code == second.status_code == 200
    assert first.headers["Cache-Control"] == "no-store"
    tokens = [json.loads(r.content)["id_token"] for r in (first, second)]
    assert tokens[0] != tokens[1]
    for token in tokens:
        assert session_token_decode(token)["dest"] == f"https://{domain}"


def test_admin_home_lists_the_app_and_whether_it_is_installed(devshop):
    domain = _shop(devshop)
    home = f"{devshop.base_url}/store/{domain}/admin"

    before = requests.get(home, timeout=10)
    devshop.client.app_install(domain)
    after = requests.get(home, timeout=10)

    assert before.status_code == after.status_code == 200
    assert "Not installed" in before.text
    assert "Install and open" in before.text
    assert "Not installed" not in after.text
    assert ">Open</a>" in after.text


def test_unknown_shop_is_404_everywhere(devshop):
    base = f"{devshop.base_url}/store/nobody.myshopify.com/admin"

    for path in ("", "/apps/app", "/apps/app/token"):
        assert requests.get(base + path, timeout=10).status_code == 404
