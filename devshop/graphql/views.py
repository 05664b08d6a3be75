"""The Admin GraphQL endpoint, answering as Shopify does (shopify.dev, "GraphQL Admin API"
and "API rate limits"): 401 with Shopify's body for a missing, unknown or expired token;
HTTP 200 with ``errors`` for syntax, validation, cost and throttle failures; ``extensions.cost``
on every answer that got as far as the bucket.
"""

import json
import logging
import re
from typing import Any

from django.db.models import F
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from graphql import (
    GraphQLError,
    execute,
    get_operation_ast,
    parse,
    validate,
)
from graphql.execution.values import get_variable_values

from devshop.graphql.cost import SINGLE_QUERY_MAX_COST, QueryCost
from devshop.graphql.resolvers import default_resolver
from devshop.graphql.schema import admin_schema
from devshop.graphql.throttle import bucket_refund, bucket_status, bucket_take
from devshop.knobs import forced_failure_take
from devshop.models import DevShop
from devshop.tokens import dev_token_authenticate

logger = logging.getLogger(__name__)

INVALID_TOKEN_BODY = {
    "errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"
}
RATE_LIMITS_DOC = "https://shopify.dev/api/usage/rate-limits"
VERSION = re.compile(r"^(\d{4}-(01|04|07|10)|unstable)$")

# graphql-core's validation messages, reworded as Shopify's (graphql-ruby) with its codes.
VALIDATION_REWRITES = [
    (
        re.compile(r"^Cannot query field '(?P<fieldName>\w+)' on type '(?P<typeName>\w+)'\."),
        "Field '{fieldName}' doesn't exist on type '{typeName}'",
        "undefinedField",
    ),
    (
        re.compile(
            r"^Unknown argument '(?P<argumentName>\w+)' on field "
            r"'(?P<typeName>\w+)\.(?P<fieldName>\w+)'\."
        ),
        "Field '{fieldName}' doesn't accept argument '{argumentName}'",
        "argumentNotAccepted",
    ),
    (
        re.compile(
            r"^Field '(?P<name>\w+)' argument '(?P<arguments>\w+)' of type '.+' is required, "
            r"but it was not provided\."
        ),
        "Field '{name}' is missing required arguments: {arguments}",
        "missingRequiredArguments",
    ),
]


def _graphql_errors(errors: list[GraphQLError], *, rewrite: bool = False) -> list[dict]:
    shaped = []
    for error in errors:
        body: dict[str, Any] = dict(error.formatted)
        if rewrite:
            for pattern, template, code in VALIDATION_REWRITES:
                match = pattern.match(error.message)
                if match:
                    body["message"] = template.format(**match.groupdict())
                    body["extensions"] = {"code": code, **match.groupdict()}
                    break
        shaped.append(body)
    return shaped


def _cost(requested: int, actual: int | None, status: dict[str, float]) -> dict[str, Any]:
    return {
        "cost": {
            "requestedQueryCost": requested,
            "actualQueryCost": actual,
            "throttleStatus": status,
        }
    }


def _forced_failure() -> JsonResponse | None:
    """The ``admin_api_fail_next`` knob: {"count": n, "status": 503|429, "retry_after": s}
    answers the next n Admin API calls with that status, for client retry tests."""
    plan = forced_failure_take("admin_api_fail_next")
    if plan is None:
        return None
    status = int(plan.get("status", 503))
    if status == 429:
        body = {
            "errors": "Exceeded 2 calls per second for api client. "
            "Reduce request rates to resume uninterrupted service."
        }
    else:
        body = {"errors": "Internal Server Error" if status == 500 else "Service Unavailable"}
    response = JsonResponse(body, status=status)
    if plan.get("retry_after") is not None:
        response["Retry-After"] = str(plan["retry_after"])
    return response


def _request_body(request: HttpRequest) -> dict[str, Any] | None:
    content_type = request.content_type or ""
    if content_type == "application/graphql":
        return {"query": request.body.decode("utf-8", "replace")}
    try:
        data = json.loads(request.body or b"null")
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("query"), str):
        return None
    if data.get("variables") is not None and not isinstance(data["variables"], dict):
        return None
    return data


@csrf_exempt
def graphql_endpoint(request: HttpRequest, shop: str, version: str) -> JsonResponse:
    found = DevShop.objects.filter(myshopify_domain=shop).first()
    if found is None or not VERSION.match(version):
        return JsonResponse({"errors": "Not Found"}, status=404)
    # Every request for a store counts, whatever it is answered: one UPDATE, race-free.
    DevShop.objects.filter(pk=found.pk).update(admin_api_requests=F("admin_api_requests") + 1)
    if request.method != "POST":
        return JsonResponse({"errors": "Method Not Allowed"}, status=405)
    forced = _forced_failure()
    if forced is not None:
        return forced

    access_token = request.headers.get("X-Shopify-Access-Token", "")
    token = dev_token_authenticate(shop=found, access_token=access_token) if access_token else None
    if token is None:
        return JsonResponse(INVALID_TOKEN_BODY, status=401)

    data = _request_body(request)
    if data is None:
        return JsonResponse(
            {"errors": {"query": "Required parameter missing or invalid"}}, status=400
        )

    schema = admin_schema()
    try:
        document = parse(data["query"])
    except GraphQLError as error:
        return JsonResponse({"errors": _graphql_errors([error])})
    validation_errors = validate(schema, document)
    if validation_errors:
        return JsonResponse({"errors": _graphql_errors(validation_errors, rewrite=True)})
    operation_name = data.get("operationName") or None
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        message = (
            f'No operation named "{operation_name}"'
            if operation_name
            else "An operation name is required"
        )
        return JsonResponse({"errors": [{"message": message}]})
    raw_variables = data.get("variables") or {}
    variables = get_variable_values(schema, operation.variable_definitions or (), raw_variables)
    if isinstance(variables, list):
        return JsonResponse({"errors": _graphql_errors(variables)})

    try:
        cost = QueryCost(schema, document, operation, variables)
        requested = cost.requested()
    except GraphQLError as error:
        return JsonResponse({"errors": _graphql_errors([error])})
    if requested > SINGLE_QUERY_MAX_COST:
        return JsonResponse(
            {
                "errors": [
                    {
                        "message": f"Query cost is {requested}, which exceeds the single "
                        f"query max cost limit ({SINGLE_QUERY_MAX_COST}).\n\nSee "
                        f"{RATE_LIMITS_DOC} for more information on how the cost of a "
                        "query is calculated.\n\nTo query larger amounts of data with "
                        "fewer limits, bulk operations should be used instead.",
                        "extensions": {
                            "code": "MAX_COST_EXCEEDED",
                            "cost": requested,
                            "maxCost": SINGLE_QUERY_MAX_COST,
                        },
                    }
                ],
                "extensions": _cost(requested, None, bucket_status(shop=found)),
            }
        )
    taken, status = bucket_take(shop=found, cost=requested)
    if not taken:
        logger.info(
            "devshop.graphql.throttled",
            extra={"shop": shop, "requested": requested, **status},
        )
        return JsonResponse(
            {
                "errors": [
                    {
                        "message": "Throttled",
                        "extensions": {"code": "THROTTLED", "documentation": RATE_LIMITS_DOC},
                    }
                ],
                "extensions": _cost(requested, None, status),
            }
        )

    result = execute(
        schema,
        document,
        operation_name=operation_name,
        variable_values=raw_variables,
        context_value={"shop": found, "token": token, "api_version": version},
        field_resolver=default_resolver,
    )
    actual = min(requested, cost.actual(result.data))
    status = bucket_refund(shop=found, points=requested - actual)
    body: dict[str, Any] = {}
    if result.errors:
        body["errors"] = _graphql_errors(list(result.errors))
    body["data"] = result.data
    body["extensions"] = _cost(requested, actual, status)
    return JsonResponse(body)
