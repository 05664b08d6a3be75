"""A small client for the devshop's control API, for tests, the simulator and the demo."""

from typing import Any

import requests

TIMEOUT_SECONDS = 10


class DevshopClient:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = requests.Session()

    # The URL template the app uses to reach a shop on this store.
    @property
    def admin_url_template(self) -> str:
        return f"{self.base_url}/store/{{shop}}"

    def shop_url(self, shop: str) -> str:
        return f"{self.base_url}/store/{shop}"

    def _post(self, path: str, data: dict[str, Any] | None = None) -> Any:
        response = self.http.post(
            f"{self.base_url}{path}", json=data or {}, timeout=TIMEOUT_SECONDS
        )
        response.raise_for_status()
        return response.json()

    def _get(self, path: str) -> Any:
        response = self.http.get(f"{self.base_url}{path}", timeout=TIMEOUT_SECONDS)
        response.raise_for_status()
        return response.json()

    def shop_create(self, myshopify_domain: str, **fields: Any) -> dict[str, Any]:
        return self._post("/_devshop/shops", {"myshopify_domain": myshopify_domain, **fields})

    def shop_get(self, myshopify_domain: str) -> dict[str, Any]:
        return self._get(f"/_devshop/shops/{myshopify_domain}")

    def session_token(self, myshopify_domain: str, **fields: Any) -> str:
        return self._post(f"/_devshop/shops/{myshopify_domain}/session-token", fields)["id_token"]

    def knobs_set(self, **values: Any) -> dict[str, Any]:
        return self._post("/_devshop/knobs", values)

    def app_install(self, myshopify_domain: str, scopes: str | None = None) -> dict[str, Any]:
        body = {"scopes": scopes} if scopes is not None else {}
        return self._post(f"/_devshop/shops/{myshopify_domain}/app/install", body)

    def app_uninstall(self, myshopify_domain: str) -> dict[str, Any]:
        return self._post(f"/_devshop/shops/{myshopify_domain}/app/uninstall")

    def access_token_valid(self, myshopify_domain: str, access_token: str) -> bool:
        path = f"/_devshop/shops/{myshopify_domain}/access-token/check"
        return bool(self._post(path, {"access_token": access_token})["valid"])
