"""Periodic jobs, run by RQ's cron scheduler: ``python manage.py rqcron shopapp.cron``.

Each entry only enqueues a short job; the rows in the database are the schedule. All of them
go to the maintenance queue: a flood of webhooks or sends never holds a sweep back for long
(workers take the queues round robin), and the sweeps never wait behind Shopify calls.
"""

from rq import cron

from insights.jobs import insights_rollup_all_job, insights_rollup_window_job
from notifications.jobs import messages_dispatch_due_job
from returns.jobs import exchange_catalogue_refresh_all_job, photo_stash_expire_job
from shopapp.background.jobs import tasks_sweep_job
from shopapp.background.queue import Queues
from shopapp.orders.jobs import orders_reconcile_all_job
from shopapp.webhooks.jobs import webhook_event_sweep_job
from tracking.jobs import (
    delays_detect_all_job,
    delivery_stats_refresh_all_job,
    product_suggestions_refresh_all_job,
    shipments_reconcile_all_job,
)

# Webhook deliveries left pending (Redis was down at intake, a job was lost) are enqueued
# within a minute or two: the database, not Redis, is the source of truth.
cron.register(
    webhook_event_sweep_job,
    queue_name=Queues.MAINTENANCE,
    cron="* * * * *",
    job_timeout=60,
    name="webhook_event_sweep",
)

# Background tasks (return submissions, shipment reads, reconciliation rounds) that Redis was
# down for or lost are handed over again within a minute or two (shopapp.background).
cron.register(
    tasks_sweep_job,
    queue_name=Queues.MAINTENANCE,
    cron="* * * * *",
    job_timeout=60,
    name="background_tasks_sweep",
)

# Missed webhooks are repaired from the Admin GraphQL API: every 5 minutes, each active shop's
# orders updated since its last sync are pulled and upserted through the webhooks' service.
cron.register(
    orders_reconcile_all_job,
    queue_name=Queues.MAINTENANCE,
    cron="*/5 * * * *",
    job_timeout=60,
    name="orders_reconcile_all",
)

# Delay detection (tracking.delays): every 15 minutes per active shop. Thresholds are in days,
# so a quarter hour's lag is nothing; each finding is recorded once whatever the repeats.
cron.register(
    delays_detect_all_job,
    queue_name=Queues.MAINTENANCE,
    cron="*/15 * * * *",
    job_timeout=60,
    name="tracking_delays_detect_all",
)

# Missed fulfillment webhooks are repaired from GraphQL: in-flight shipments (not delivered,
# touched within 30 days) are re-read at most hourly, a bounded number of orders per run.
cron.register(
    shipments_reconcile_all_job,
    queue_name=Queues.MAINTENANCE,
    cron="*/10 * * * *",
    job_timeout=60,
    name="tracking_shipments_reconcile_all",
)

# Delivery estimates (tracking.estimates): each shop's transit times by carrier and destination,
# rebuilt daily from its last six months of deliveries. A day's new deliveries barely move
# percentiles over thousands; at night UTC, off the hour.
cron.register(
    delivery_stats_refresh_all_job,
    queue_name=Queues.MAINTENANCE,
    cron="17 3 * * *",
    job_timeout=60,
    name="tracking_delivery_stats_refresh_all",
)

# "You may also like" on the tracking page (tracking.suggestions): each showing shop's newest
# products read hourly on the syncs queue and kept in Redis for three hours, so a page view
# makes no Admin API call.
cron.register(
    product_suggestions_refresh_all_job,
    queue_name=Queues.MAINTENANCE,
    cron="41 * * * *",
    job_timeout=60,
    name="tracking_product_suggestions_refresh_all",
)

# Notification messages are rows with a due time: each minute the due ones (and any whose
# send lease expired) are claimed and handed to RQ, so a flushed Redis loses no message.
cron.register(
    messages_dispatch_due_job,
    queue_name=Queues.MAINTENANCE,
    cron="* * * * *",
    job_timeout=60,
    name="messages_dispatch_due",
)

# Photos uploaded in the returns portal by shoppers who never submitted: hourly, those older
# than RETURNS_PHOTO_STASH_TTL_HOURS are deleted (off the hour, away from the other jobs).
cron.register(
    photo_stash_expire_job,
    queue_name=Queues.MAINTENANCE,
    cron="23 * * * *",
    job_timeout=300,
    name="returns_photo_stash_expire",
)

# The catalogue the returns portal offers for an exchange with a different product
# (returns.catalogue): hourly per shop that offers it, so stock and prices on the page are at
# most an hour old (the submission checks the chosen variant live anyway).
cron.register(
    exchange_catalogue_refresh_all_job,
    queue_name=Queues.MAINTENANCE,
    cron="41 * * * *",
    job_timeout=60,
    name="returns_exchange_catalogue_refresh_all",
)

# The insights rollup (insights.services): today and yesterday every 10 minutes, so the home
# page is at most that far behind; the last two months hourly, for the figures that move after
# their day (an order's stage, its page views, a later purchase). Off the busy minutes.
cron.register(
    insights_rollup_all_job,
    queue_name=Queues.MAINTENANCE,
    cron="7-59/10 * * * *",
    job_timeout=60,
    name="insights_rollup_recent",
)
cron.register(
    insights_rollup_window_job,
    queue_name=Queues.MAINTENANCE,
    cron="41 * * * *",
    job_timeout=60,
    name="insights_rollup_window",
)
