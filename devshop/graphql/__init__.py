"""The store's Admin GraphQL API: ``/store/<shop>/admin/api/<version>/graphql.json``.

request → views.graphql_endpoint: token (401) → parse + validate (errors, 200)
        → cost.requested_cost → throttle.bucket_take (THROTTLED, 200)
        → execute over schema.graphql with resolvers.py → refund unused cost
        → {"data", "errors"?, "extensions": {"cost": …}}
"""
