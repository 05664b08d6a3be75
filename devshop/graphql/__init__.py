"""The store's Admin GraphQL API: ``/store/<shop>/admin/api/<version>/graphql.json``.

request → views.graphql_endpoint: token (401) → parse + validate (errors, 200)
        → cost.requested_cost → throttle.bucket_take (THROTTLED, 200)
        → execute over schema.graphql with resolvers.py → refund unused cost
        → {"data", "errors"?, "extensions": {"cost": …}}
"""

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt


@csrf_exempt
def graphql_endpoint(request: HttpRequest, shop: str, version: str) -> JsonResponse:
    """The URL's view. graphql-core and the schema load on the first call, not with the
    URLconf: the store has to answer its readiness probe within a second of starting."""
    from devshop.graphql.views import graphql_endpoint as view

    return view(request, shop, version)
