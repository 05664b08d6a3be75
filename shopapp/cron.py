"""Periodic jobs, run by RQ's cron scheduler: ``python manage.py rqcron shopapp.cron``.

Each entry only enqueues a short job; the rows in the database are the schedule.
"""

from rq import cron

from shopapp.webhooks.jobs import webhook_event_sweep_job

# Webhook deliveries left pending (Redis was down at intake, a job was lost) are enqueued
# within a minute or two: the database, not Redis, is the source of truth.
cron.register(
    webhook_event_sweep_job,
    queue_name="webhooks",
    cron="* * * * *",
    job_timeout=60,
    name="webhook_event_sweep",
)
