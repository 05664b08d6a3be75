"""The executable schema: schema.graphql (SDL) with resolvers.py and Shopify's scalars."""

from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from graphql import GraphQLObjectType, GraphQLSchema, build_schema

from devshop.graphql.resolvers import NODE_TYPES, RESOLVERS

SDL_PATH = Path(__file__).with_name("schema.graphql")


def _datetime(value: Any) -> str:
    # Shopify's DateTime: ISO 8601 in UTC, whole seconds, "Z" suffix (2019-09-07T15:50:00Z).
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    return str(value)


def _decimal(value: Any) -> str:
    return str(value) if isinstance(value, Decimal) else str(Decimal(str(value)))


SCALARS = {"DateTime": _datetime, "Decimal": _decimal, "Money": _decimal}


@cache
def admin_schema() -> GraphQLSchema:
    schema = build_schema(SDL_PATH.read_text())
    for type_name, fields in RESOLVERS.items():
        graphql_type = schema.get_type(type_name)
        assert isinstance(graphql_type, GraphQLObjectType), type_name
        for field_name, resolver in fields.items():
            graphql_type.fields[field_name].resolve = resolver
    for scalar_name, serialize in SCALARS.items():
        # graphql-core 3.3 renamed a scalar's ``serialize`` to ``coerce_output_value``.
        schema.get_type(scalar_name).coerce_output_value = serialize  # type: ignore[union-attr]
    schema.get_type("Node").resolve_type = (  # type: ignore[union-attr]
        lambda obj, _info, _type: NODE_TYPES.get(type(obj))
    )
    # Return.returnLineItems lists ReturnLineItemType; the devshop only has verified lines.
    schema.get_type("ReturnLineItemType").resolve_type = (  # type: ignore[union-attr]
        lambda _obj, _info, _type: "ReturnLineItem"
    )
    # ReverseDelivery.deliverable: the devshop only has shipping deliverables.
    schema.get_type("ReverseDeliveryDeliverable").resolve_type = (  # type: ignore[union-attr]
        lambda _obj, _info, _type: "ReverseDeliveryShippingDeliverable"
    )
    return schema
