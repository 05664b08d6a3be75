"""Finding a shopper anywhere in the database: every text, JSON and file field of every row of
the app's models, read back and searched for their email, phone (in any spelling) and name.

Shared by the privacy contract test and the customer-redaction journey.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

from django.apps import apps
from django.db import models

from shopapp.privacy.scrub import Needles, text_holds

APPS = ("shopapp", "tracking", "returns", "notifications")
TEXT_FIELDS = (
    models.CharField,
    models.TextField,
    models.JSONField,
    models.FileField,
    models.GenericIPAddressField,
)


def app_models() -> Iterator[type[models.Model]]:
    for label in APPS:
        yield from apps.get_app_config(label).get_models()


def text_fields(model: type[models.Model]) -> list[models.Field]:
    return [f for f in model._meta.concrete_fields if isinstance(f, TEXT_FIELDS)]


@dataclass(frozen=True)
class Trace:
    model: str
    pk: object
    field: str
    value: str

    def __str__(self) -> str:
        return f"{self.model}#{self.pk}.{self.field} = {self.value[:120]!r}"


def _as_text(field: models.Field, value: object) -> str:
    if value is None:
        return ""
    if isinstance(field, models.FileField):
        # The file's name and, when it is still on disk, its bytes.
        if not value:
            return ""
        try:
            with value.open("rb") as handle:  # type: ignore[attr-defined]
                content = handle.read().decode("utf-8", "replace")
        except (FileNotFoundError, ValueError):
            content = ""
        return f"{value.name} {content}"  # type: ignore[attr-defined]
    if isinstance(field, models.JSONField):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def traces(needles: Needles) -> list[Trace]:
    """Every field of every row that still holds one of ``needles``."""
    found = []
    for model in app_models():
        fields = text_fields(model)
        if not fields:
            continue
        for row in model.objects.all():
            for field in fields:
                text = _as_text(field, getattr(row, field.name))
                if text and text_holds(text, needles):
                    found.append(Trace(model._meta.label, row.pk, field.name, text))
    return found
