"""Photos a shopper stashed in the returns portal and never submitted are deleted by the hourly
cron job (returns.jobs.photo_stash_expire_job), run here as cron enqueues it and as a real RQ
worker runs it. Stashes are made through the portal itself; a stash is aged by setting its
file's modification time, which is what the storage reports to the job."""

import io
import logging
import os
import time

import pytest
from django.core.files.storage import default_storage
from PIL import Image
from rq import Queue
from rq.cron import CronScheduler
from rq.registry import FailedJobRegistry

from returns import portal
from returns.models import ReturnPhoto, ReturnPolicy
from tests.returns import test_portal
from tests.returns.test_portal import (
    JPEG,
    PNG,
    body,
    choose,
    delivered_order,
    lookup,
    photo,
    state_of,
    submit,
)

pytestmark = pytest.mark.django_db(transaction=True)

# The portal tests' fixtures: an installed shop with its own MEDIA_ROOT, fresh Redis keys.
shop = test_portal.shop
_fresh_redis = test_portal._fresh_redis

HOUR = 3600


def pending_files(shop) -> list[str]:
    folder = f"{portal.PENDING_PHOTO_PREFIX}/{shop.pk}"
    if not default_storage.exists(folder):
        return []
    return sorted(f"{folder}/{name}" for name in default_storage.listdir(folder)[1])


def age(names, *, hours: float) -> None:
    """Make files look written ``hours`` ago (FileSystemStorage: the file's mtime)."""
    when = time.time() - hours * HOUR
    for name in names:
        os.utime(default_storage.path(name), (when, when))


def run_cron_job(redis_conn, rq_worker):
    """Enqueue the job as RQ's cron scheduler does from shopapp/cron.py, then drain it."""
    scheduler = CronScheduler(connection=redis_conn)
    scheduler.load_config_from_file("shopapp.cron")
    [cron_job] = [j for j in scheduler.get_jobs() if j.name == "returns_photo_stash_expire"]
    job = cron_job.enqueue(redis_conn)
    rq_worker()
    job.refresh()
    assert job.is_finished, job.latest_result()
    return job.return_value()


def stash(client, shop, order, *photos):
    """A shopper picks the order's first item, attaches ``photos`` and reaches the review."""
    line = order.line_items.order_by("id").first()
    state = state_of(lookup(client, shop, order))
    review = choose(client, shop, state, {line: (1, "DEFECTIVE", "Torn seam", list(photos))})
    assert f"{len(photos)} photo" in body(review), body(review)[:2000]
    return state_of(review)


@pytest.fixture
def photo_policy(shop):
    return ReturnPolicy.objects.create(shop=shop, reasons_requiring_photo=["DEFECTIVE"])


def test_cron_registers_the_cleanup_hourly_on_the_default_queue(redis_conn):
    scheduler = CronScheduler(connection=redis_conn)
    scheduler.load_config_from_file("shopapp.cron")

    jobs = {job.name: job for job in scheduler.get_jobs()}
    cleanup = jobs["returns_photo_stash_expire"]
    assert cleanup.func_name == "returns.jobs.photo_stash_expire_job"
    assert cleanup.queue_name == "maintenance"
    assert cleanup.cron == "23 * * * *"


def test_an_abandoned_stash_is_removed_and_a_fresh_one_kept(
    client, devshop, shop, photo_policy, redis_conn, rq_worker, caplog
):
    # given a shopper who stashed two photos yesterday and left, and one stashing right now
    stash(client, shop, delivered_order(devshop, shop), photo("a.jpg"), photo("b.png", PNG))
    old = pending_files(shop)
    assert len(old) == 2
    old_bytes = sum(default_storage.size(name) for name in old)
    age(old, hours=25)
    fresh_order = delivered_order(devshop, shop)
    fresh_state = stash(client, shop, fresh_order, photo("c.jpg"))
    fresh = sorted(set(pending_files(shop)) - set(old))
    assert len(fresh) == 1

    # when the hourly job runs (default retention: 24 hours)
    with caplog.at_level(logging.INFO, logger="returns.portal"):
        removed = run_cron_job(redis_conn, rq_worker)

    # then yesterday's photos are gone, logged with the shop and their size
    assert removed == 2
    assert pending_files(shop) == fresh
    [line] = [r for r in caplog.records if r.getMessage() == "returns.portal.stash_removed"]
    assert line.shop_id == shop.pk
    assert line.photos == 2
    assert line.bytes == old_bytes

    # and the shopper still at the review submits with the photo they attached
    done = submit(client, shop, fresh_state)
    assert done.status_code == 201, body(done)[:2000]
    [kept] = ReturnPhoto.objects.filter(
        shop=shop, return_line_item__return_request__order=fresh_order
    )
    stored = Image.open(io.BytesIO(kept.image.read()))
    assert (stored.format, stored.size) == ("JPEG", Image.open(io.BytesIO(JPEG)).size)


def test_a_submitted_returns_photos_are_kept(
    client, devshop, shop, photo_policy, redis_conn, rq_worker
):
    # given a return submitted with two photos a month ago
    order = delivered_order(devshop, shop)
    done = submit(client, shop, stash(client, shop, order, photo("a.jpg"), photo("b.png", PNG)))
    assert done.status_code == 201, body(done)[:2000]
    photos = list(ReturnPhoto.objects.filter(shop=shop).order_by("id"))
    assert len(photos) == 2
    contents = [p.image.read() for p in photos]
    age([p.image.name for p in photos], hours=30 * 24)

    # when the job runs
    removed = run_cron_job(redis_conn, rq_worker)

    # then nothing of the return is touched: the merchant still sees both photos
    assert removed == 0
    for stored, content in zip(photos, contents, strict=True):
        assert default_storage.exists(stored.image.name)
        with default_storage.open(stored.image.name, "rb") as handle:
            assert handle.read() == content


def test_a_photo_row_naming_a_stashed_file_keeps_that_file(
    client, devshop, shop, photo_policy, redis_conn, rq_worker
):
    # given a submitted return whose photo row points into the stash (as it would if the
    # submit adopted the stashed file instead of copying it), next to an abandoned stash
    order = delivered_order(devshop, shop)
    done = submit(client, shop, stash(client, shop, order, photo("a.jpg")))
    assert done.status_code == 201, body(done)[:2000]
    stash(client, shop, delivered_order(devshop, shop), photo("b.jpg"), photo("c.jpg"))
    adopted, abandoned = pending_files(shop)[0], pending_files(shop)[1:]
    ReturnPhoto.objects.filter(shop=shop).update(image=adopted)
    age(pending_files(shop), hours=48)

    removed = run_cron_job(redis_conn, rq_worker)

    # then only the abandoned photos go
    assert removed == 1
    assert pending_files(shop) == [adopted]
    assert all(not default_storage.exists(name) for name in abandoned)


def test_retention_follows_the_setting_but_never_cuts_a_live_portal(
    client, devshop, shop, photo_policy, redis_conn, rq_worker, settings
):
    # given photos stashed 25 hours ago and 90 minutes ago
    stash(client, shop, delivered_order(devshop, shop), photo("a.jpg"))
    day_old = pending_files(shop)
    age(day_old, hours=25)
    stash(client, shop, delivered_order(devshop, shop), photo("b.jpg"))
    recent = sorted(set(pending_files(shop)) - set(day_old))
    age(recent, hours=1.5)

    # when the merchant keeps stashes two days, both stay
    settings.RETURNS_PHOTO_STASH_TTL_HOURS = 48
    assert run_cron_job(redis_conn, rq_worker) == 0
    assert len(pending_files(shop)) == 2

    # when the retention is set to zero, the day-old one goes, but not one whose portal
    # state (2 hours) could still be submitted
    settings.RETURNS_PHOTO_STASH_TTL_HOURS = 0
    assert run_cron_job(redis_conn, rq_worker) == 1
    assert pending_files(shop) == recent


def test_running_twice_is_harmless(client, devshop, shop, photo_policy, redis_conn, rq_worker):
    # given nothing stashed yet, then an abandoned stash and a fresh one
    assert run_cron_job(redis_conn, rq_worker) == 0
    stash(client, shop, delivered_order(devshop, shop), photo("a.jpg"), photo("b.jpg"))
    age(pending_files(shop), hours=72)
    stash(client, shop, delivered_order(devshop, shop), photo("c.jpg"))
    fresh = [
        name
        for name in pending_files(shop)
        if time.time() - os.path.getmtime(default_storage.path(name)) < HOUR
    ]

    # when the job runs twice in a row
    first = run_cron_job(redis_conn, rq_worker)
    second = run_cron_job(redis_conn, rq_worker)

    # then the second run finds nothing more to do, fails nothing and keeps the fresh photo
    assert (first, second) == (2, 0)
    assert pending_files(shop) == fresh
    assert FailedJobRegistry(queue=Queue("maintenance", connection=redis_conn)).count == 0
