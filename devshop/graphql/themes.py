"""Resolvers for the online store themes (schema.graphql's ``extend type QueryRoot``).

Shopify refuses theme fields without the ``read_themes`` (or ``write_themes``) scope with an
ACCESS_DENIED error; so does the devshop, from the scopes the app was granted. A theme holds
one file here, ``config/settings_data.json``: asking for other names gives no node, as Shopify
gives none for a name the theme lacks.
"""

from __future__ import annotations

import fnmatch
import hashlib
from typing import Any

from graphql import GraphQLError, GraphQLResolveInfo

from devshop.graphql.pagination import connection
from devshop.models import DevShop, DevTheme
from devshop.themes import SETTINGS_DATA, dev_theme_main

THEME_SCOPES = {"read_themes", "write_themes"}


def _shop(info: GraphQLResolveInfo) -> DevShop:
    return info.context["shop"]


def _require_themes_scope(info: GraphQLResolveInfo) -> DevShop:
    shop = _shop(info)
    granted = {scope.strip() for scope in (shop.granted_scopes or "").split(",")}
    if not granted & THEME_SCOPES:
        raise GraphQLError(
            f"Access denied for {info.field_name} field. "
            "Required access: `read_themes` access scope.",
            extensions={
                "code": "ACCESS_DENIED",
                "documentation": "https://shopify.dev/api/usage/access-scopes",
                "requiredAccess": "`read_themes` access scope.",
            },
        )
    return shop


def resolve_themes(
    _: Any,
    info: GraphQLResolveInfo,
    roles: list[str] | None = None,
    names: list[str] | None = None,
    **page: Any,
) -> dict[str, Any]:
    shop = _require_themes_scope(info)
    dev_theme_main(shop)  # every store has a published theme
    qs = DevTheme.objects.filter(shop=shop)
    if roles:
        qs = qs.filter(role__in=roles)
    if names:
        qs = qs.filter(name__in=names)
    return connection(qs, sort_field="shopify_id", **page)


def resolve_theme(_: Any, info: GraphQLResolveInfo, id: str) -> DevTheme | None:  # noqa: A002
    from devshop.graphql.resolvers import gid_parse

    shop = _require_themes_scope(info)
    numeric = gid_parse(id, "OnlineStoreTheme")
    return DevTheme.objects.filter(shop=shop, shopify_id=numeric).first() if numeric else None


def _file(theme: DevTheme) -> dict[str, Any]:
    body = theme.settings_data.encode()
    return {
        "filename": SETTINGS_DATA,
        "contentType": "application/json",
        "size": len(body),
        "checksumMd5": hashlib.md5(body, usedforsecurity=False).hexdigest(),
        "createdAt": theme.created_at,
        "updatedAt": theme.updated_at,
        "body": {"__typename": "OnlineStoreThemeFileBodyText", "content": theme.settings_data},
    }


def _files(
    theme: DevTheme,
    _: GraphQLResolveInfo,
    filenames: list[str] | None = None,
    first: int = 50,
    after: str | None = None,
) -> dict[str, Any]:
    if filenames is not None and len(filenames) > 50:
        raise GraphQLError("At most 50 filenames can be specified.")
    wanted = filenames is None or any(fnmatch.fnmatchcase(SETTINGS_DATA, f) for f in filenames)
    nodes = [_file(theme)] if wanted and first > 0 and not after else []
    return {
        "edges": [{"cursor": SETTINGS_DATA, "node": node} for node in nodes],
        "nodes": nodes,
        "pageInfo": {
            "hasNextPage": False,
            "hasPreviousPage": False,
            "startCursor": SETTINGS_DATA if nodes else None,
            "endCursor": SETTINGS_DATA if nodes else None,
        },
        "userErrors": [],
    }


THEME_RESOLVERS = {
    "QueryRoot": {"themes": resolve_themes, "theme": resolve_theme},
    "OnlineStoreTheme": {
        "id": lambda t, _: f"gid://shopify/OnlineStoreTheme/{t.shopify_id}",
        "prefix": lambda t, _: f"/t/{t.pk}",
        "processing": lambda t, _: False,
        "processingFailed": lambda t, _: False,
        "themeStoreId": lambda t, _: 887 if t.name == "Dawn" else None,
        "files": _files,
    },
}
