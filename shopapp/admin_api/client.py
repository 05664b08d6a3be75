"""The app's one way to the Shopify Admin GraphQL API, with ``requests``.

    AdminApiClient(shop_domain, access_token).execute(query, variables)
      POST {SHOPIFY_ADMIN_URL_TEMPLATE}/admin/api/{SHOPIFY_API_VERSION}/graphql.json
      ├─ network error, 5xx, 429 → retry with exponential backoff (Retry-After wins)
      ├─ 401 → AdminApiUnauthorized (the caller refreshes the token or marks reauth)
      ├─ errors[].extensions.code == THROTTLED → wait (requested − available) / restoreRate,
      │    retry; AdminApiThrottled once the total wait would pass its bound
      ├─ other top-level errors → GraphQLErrors
      └─ data (and ``last_cost``: the response's extensions.cost)

The shop and token are explicit (ShopifyAPI's ``activate_session`` keeps class-wide state that
leaks between threads, and its GraphQL call has no timeout: see shopify-platform.md §6).
Throttling follows shopify.dev "GraphQL Admin API rate limits": a leaky bucket per app and
store, the cost of every call in ``extensions.cost``, THROTTLED answered with HTTP 200.
"""

import logging
import random
import time
from collections.abc import Callable
from typing import Any

import requests
from django.conf import settings

from shopapp.payloads import json_parse

logger = logging.getLogger(__name__)

# Seconds to open a connection / to wait for Shopify's answer. Shopify answers most queries
# well under a second; a 30 s read covers the slowest ones without pinning a worker forever.
CONNECT_TIMEOUT_SECONDS = 5.0
READ_TIMEOUT_SECONDS = 30.0
# Transport retries (network errors, 5xx, 429): attempts after the first, and the backoff.
MAX_RETRIES = 4
BACKOFF_BASE_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 30.0
# Total time one execute() may spend waiting out THROTTLED before giving up. A full Standard
# bucket refills in 20 s (2,000 points at 100/s), so a minute covers any single query.
MAX_THROTTLE_WAIT_SECONDS = 60.0
RETRYABLE_STATUS = {429, 500, 502, 503, 504}


class AdminApiError(Exception):
    """A call to the Admin API failed."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class AdminApiUnavailable(AdminApiError):
    """Shopify could not be reached or kept failing (network, 5xx, 429): retry later."""


class AdminApiUnauthorized(AdminApiError):
    """401: the token is missing, expired or revoked. Refresh it, or the shop needs reauth."""


class AdminApiThrottled(AdminApiError):
    """The cost-based throttle would not let the query through within the wait bound."""

    def __init__(self, message: str, *, cost: dict[str, Any] | None = None) -> None:
        super().__init__(message, status=200)
        self.cost = cost or {}


class GraphQLErrors(AdminApiError):
    """Top-level GraphQL ``errors`` (syntax, validation, a resolver failing)."""

    def __init__(self, errors: list[dict[str, Any]], *, data: Any = None) -> None:
        messages = "; ".join(str(e.get("message", e)) for e in errors[:3])
        super().__init__(f"GraphQL errors: {messages}", status=200)
        self.errors = errors
        self.data = data


class UserErrors(AdminApiError):
    """A mutation refused its input: Shopify's ``userErrors`` ({field, message, code})."""

    def __init__(self, mutation: str, user_errors: list[dict[str, Any]]) -> None:
        details = "; ".join(
            f"{'.'.join(e.get('field') or []) or '-'}: {e.get('message')}"
            + (f" ({e['code']})" if e.get("code") else "")
            for e in user_errors
        )
        super().__init__(f"{mutation}: {details}", status=200)
        self.mutation = mutation
        self.user_errors = user_errors

    @property
    def codes(self) -> list[str]:
        return [e["code"] for e in self.user_errors if e.get("code")]


def user_errors_raise(data: dict[str, Any], *, mutation: str) -> dict[str, Any]:
    """The mutation's payload from ``data``; raises UserErrors when its ``userErrors`` (or a
    ``*UserErrors`` list, as some mutations name it) is not empty."""
    payload = (data or {}).get(mutation)
    if payload is None:
        raise AdminApiError(f"{mutation}: no payload in the response")
    for key, value in payload.items():
        if (key == "userErrors" or key.endswith("UserErrors")) and value:
            raise UserErrors(mutation, value)
    return payload


def _throttle_wait_seconds(cost: dict[str, Any]) -> float:
    """(requested − currently available) / restore rate, as Shopify's docs advise."""
    status = cost.get("throttleStatus") or {}
    requested = float(cost.get("requestedQueryCost") or 0)
    available = float(status.get("currentlyAvailable") or 0)
    restore_rate = float(status.get("restoreRate") or 0) or 50.0
    return max(0.0, (requested - available) / restore_rate)


def _retry_after_seconds(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


class AdminApiClient:
    """Admin GraphQL API of one shop, with one access token. Thread-compatible: build one per
    job or request (it holds a ``requests.Session``)."""

    def __init__(
        self,
        shop_domain: str,
        access_token: str,
        *,
        api_version: str | None = None,
        timeout: tuple[float, float] = (CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS),
        max_retries: int = MAX_RETRIES,
        backoff_base: float = BACKOFF_BASE_SECONDS,
        backoff_max: float = BACKOFF_MAX_SECONDS,
        max_throttle_wait: float = MAX_THROTTLE_WAIT_SECONDS,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.shop_domain = shop_domain
        self._access_token = access_token
        self.api_version = api_version or settings.SHOPIFY_API_VERSION
        base = settings.SHOPIFY_ADMIN_URL_TEMPLATE.format(shop=shop_domain).rstrip("/")
        self.url = f"{base}/admin/api/{self.api_version}/graphql.json"
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.max_throttle_wait = max_throttle_wait
        self.http = session or requests.Session()
        self._sleep = sleep
        # extensions.cost of the last answer (requested/actual cost, throttleStatus).
        self.last_cost: dict[str, Any] = {}
        self.throttle_waited_seconds = 0.0

    def __repr__(self) -> str:  # never the token
        return f"AdminApiClient({self.shop_domain!r}, api_version={self.api_version!r})"

    # -- transport ----------------------------------------------------------------------------

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.backoff_max)
        delay = self.backoff_base * (2**attempt)
        # Full jitter keeps a fleet of workers from retrying in lockstep.
        return min(self.backoff_max, random.uniform(delay / 2, delay))

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        """One POST with transport retries; the decoded JSON body of a 200."""
        headers = {
            "X-Shopify-Access-Token": self._access_token,
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        attempt = 0
        while True:
            failure: str
            retry_after: float | None = None
            status: int | None = None
            try:
                response = self.http.post(
                    self.url, json=body, headers=headers, timeout=self.timeout
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                failure = type(exc).__name__
            else:
                status = response.status_code
                if status == 200:
                    try:
                        # Storable as it comes: what shoppers typed may hold a NUL.
                        return json_parse(response.content)
                    except ValueError as exc:
                        raise AdminApiError(
                            "Admin API answered 200 with a body that is not JSON", status=200
                        ) from exc
                if status == 401:
                    raise AdminApiUnauthorized(
                        "Admin API refused the access token (401)", status=401
                    )
                if status not in RETRYABLE_STATUS:
                    raise AdminApiError(
                        f"Admin API answered {status}: {response.text[:200]}", status=status
                    )
                failure = f"http_{status}"
                retry_after = _retry_after_seconds(response)
            if attempt >= self.max_retries:
                logger.warning(
                    "admin_api.request.gave_up",
                    extra={"shop": self.shop_domain, "attempts": attempt + 1, "failure": failure},
                )
                raise AdminApiUnavailable(
                    f"Admin API unavailable after {attempt + 1} attempts ({failure})",
                    status=status,
                )
            delay = self._backoff(attempt, retry_after)
            logger.info(
                "admin_api.request.retry",
                extra={
                    "shop": self.shop_domain,
                    "attempt": attempt + 1,
                    "failure": failure,
                    "delay_seconds": round(delay, 3),
                },
            )
            self._sleep(delay)
            attempt += 1

    # -- GraphQL ------------------------------------------------------------------------------

    def execute(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        operation_name: str | None = None,
    ) -> dict[str, Any]:
        """Run a query or mutation; returns ``data``. Raises the typed errors above."""
        body: dict[str, Any] = {"query": query}
        if variables is not None:
            body["variables"] = variables
        if operation_name:
            body["operationName"] = operation_name
        waited = 0.0
        while True:
            answer = self._post(body)
            self.last_cost = (answer.get("extensions") or {}).get("cost") or {}
            errors = answer.get("errors")
            if not errors:
                return answer.get("data") or {}
            if not isinstance(errors, list):
                raise GraphQLErrors([{"message": str(errors)}])
            if not any((e.get("extensions") or {}).get("code") == "THROTTLED" for e in errors):
                raise GraphQLErrors(errors, data=answer.get("data"))
            wait = max(_throttle_wait_seconds(self.last_cost), 0.05)
            if waited + wait > self.max_throttle_wait:
                logger.warning(
                    "admin_api.throttled.gave_up",
                    extra={"shop": self.shop_domain, "waited_seconds": round(waited, 2)},
                )
                raise AdminApiThrottled(
                    f"Throttled: would wait {waited + wait:.1f}s, bound is "
                    f"{self.max_throttle_wait:.1f}s",
                    cost=self.last_cost,
                )
            logger.info(
                "admin_api.throttled.wait",
                extra={
                    "shop": self.shop_domain,
                    "wait_seconds": round(wait, 3),
                    "requested_cost": self.last_cost.get("requestedQueryCost"),
                },
            )
            self._sleep(wait)
            waited += wait
            self.throttle_waited_seconds += wait

    def mutate(
        self, mutation_name: str, query: str, variables: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Run a mutation and return its payload, raising UserErrors when it refused."""
        return user_errors_raise(self.execute(query, variables), mutation=mutation_name)


def admin_client_for_shop(shop: Any, **options: Any) -> AdminApiClient:
    """A client for ``shop`` with a fresh token (refreshed first when it is about to expire).

    Raises ``ShopNeedsReauth`` / ``ShopNotInstalled`` from ``shopapp.auth.services`` when the
    app holds no usable token for the shop.
    """
    # Imported here: the auth services import models and settings that import this module's
    # callers; keeping the edge lazy keeps the layers acyclic.
    from shopapp.auth.services import shop_access_token_get

    token = shop_access_token_get(shop=shop)
    return AdminApiClient(shop.myshopify_domain, token, **options)
