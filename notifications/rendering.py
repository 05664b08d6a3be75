"""Merchant templates rendered with Liquid, in a sandbox.

    template_render(shop, key, channel, locale, context)
        └─ source: the shop's template (locale, then its language, then English)
                   → the built-in default (the language, then English)
        └─ context: plain dicts/lists/str/numbers/dates of the documented variables only
        └─ Liquid: no include/render (no loader), undefined → empty, bounded loops, output,
                   every filter's result and wall-clock time; HTML autoescaped, text and SMS
                   plain
        → Rendered(subject, html, text, body)  or  TemplateRenderError

    template_validate(subject, html_body, text_body, sms_body, channel)
        → [TemplateProblem(field, line, message)]: syntax errors (refuse the save), a trial
          render with the sample order (refuse), unknown variables (warnings only)

Why a sandbox at all: merchants (and anyone who takes over a merchant's admin) write these
templates, and they run in our workers with shoppers' data. python-liquid only does item
access (``obj[key]``), never attribute access, so ``{{ order.__class__ }}`` finds nothing in a
plain dict; the limits below keep a template from spinning a worker or filling its memory.
"""

from __future__ import annotations

import contextvars
import dataclasses
import datetime as dt
import functools
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar

from liquid import BoundTemplate, Environment, RenderContext, soft_str
from liquid.exceptions import (
    LiquidError,
    LoopIterationLimitError,
    OutputStreamLimitError,
    ResourceLimitError,
)

from notifications.models import Channel, MessageTemplate
from shopapp.models import Shop

logger = logging.getLogger(__name__)

# The variables a template may use (the context contract in notifications/context.py).
CONTEXT_VARIABLES: frozenset[str] = frozenset(
    {
        "shop",
        "order",
        "customer",
        "items",
        "shipment",
        "shipments",
        "delay",
        "return",
        "problem",
        "tracking_url",
        "return_url",
        "unsubscribe_url",
        "review_url",
        "brand",
        "progress",
    }
)
# Liquid's own always-there names; not a merchant's typo.
_LIQUID_BUILTINS: frozenset[str] = frozenset({"now", "today", "forloop", "tablerowloop"})

DEFAULT_LOCALE = "en"

# Bytes of output. Gmail clips messages above ~102 KB; 256 KiB leaves room for a generous
# layout while keeping a runaway template from growing a worker's memory.
EMAIL_OUTPUT_LIMIT_BYTES = 256 * 1024
SUBJECT_MAX_CHARS = 500
# Ten concatenated SMS segments (160 GSM-7 characters each); Twilio refuses bodies over 1,600.
SMS_MAX_CHARS = 1600
# A UTF-8 character is at most 4 bytes: the stream limit lets any 1,600 characters through,
# and the character count is checked after rendering.
SMS_OUTPUT_LIMIT_BYTES = SMS_MAX_CHARS * 4
# Iterations of nested loops (product of their lengths), as python-liquid counts them: a
# message lists at most a few hundred line items.
LOOP_ITERATION_LIMIT = 10_000
# Iterations of all loops of one render, summed: python-liquid's limit only covers nesting,
# so many loops side by side could still spin.
TOTAL_LOOP_ITERATION_LIMIT = 50_000
# Wall-clock budget of one field's render, checked whenever a loop starts (python-liquid has
# no timer; without loops a template's run time is bounded by its own length).
RENDER_DEADLINE_SECONDS = 2.0
# Template sources longer than this are refused at save time (the admin form enforces it).
SOURCE_MAX_CHARS = 100_000
# Every value a filter returns, and every value one would return, however many filters are
# chained: a chain of `replace: "", "aaaaaaaaaa"` grows a string 11-fold per filter (214 MB
# after 7), which no output or assign limit sees, as it is never output or assigned.
VALUE_MAX_CHARS = 256 * 1024
VALUE_MAX_ITEMS = 10_000
# Integers (`times` chained squares the digits): far beyond any price or count.
NUMBER_MAX_BITS = 256


class TemplateRenderError(Exception):
    """The template could not be rendered; ``str(exc)`` says why, for the merchant."""

    def __init__(self, message: str, *, field: str = "", line: int | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.line = line


@dataclass(frozen=True)
class Rendered:
    subject: str = ""
    html: str = ""
    text: str = ""
    # SMS only.
    body: str = ""


@dataclass(frozen=True)
class TemplateProblem:
    field: str
    line: int | None
    message: str
    # Warnings (an unknown variable) do not stop a save; errors do.
    is_warning: bool = False


@dataclass(frozen=True)
class TemplateSource:
    """The Liquid source of one template, from the shop's row or the built-in defaults."""

    key: str
    channel: str
    locale: str
    subject: str = ""
    html_body: str = ""
    text_body: str = ""
    sms_body: str = ""
    is_default: bool = True
    # Which version of which source this is, for the compiled-template cache: the shop's row
    # (id, updated_at), or the built-in default (immutable in a process). None: never cached.
    version: tuple | None = None


# Per render: the running loop count and the deadline, shared by every context copy
# python-liquid makes for nested blocks.
_budget: contextvars.ContextVar[dict[str, float] | None] = contextvars.ContextVar(
    "notifications_render_budget", default=None
)


class _BudgetedContext(RenderContext):
    def raise_for_loop_limit(self, length: int = 1) -> None:
        super().raise_for_loop_limit(length)
        budget = _budget.get()
        if budget is None:
            return
        budget["iterations"] += length
        if budget["iterations"] > TOTAL_LOOP_ITERATION_LIMIT:
            raise LoopIterationLimitError("loop iteration limit reached", token=None)
        if time.monotonic() > budget["deadline"]:
            raise ResourceLimitError("render time limit reached", token=None)


class _BudgetedTemplate(BoundTemplate):
    context_class = _BudgetedContext


def _budget_spend() -> None:
    """The render's wall-clock deadline, checked before every filter (not only in loops): a
    template without loops can still chain thousands of filters over a large value."""
    budget = _budget.get()
    if budget is not None and time.monotonic() > budget["deadline"]:
        raise ResourceLimitError("render time limit reached", token=None)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else soft_str(value)


def _joined_length(items: Any, separator: Any) -> int:
    if not isinstance(items, (list, tuple)):
        return len(_text(items))
    sep = len(_text(separator)) if separator is not None else 1
    return sum(len(_text(item)) for item in items) + sep * max(0, len(items) - 1)


def _replaced_length(value: Any, old: Any, new: Any = "", *, every: bool = True) -> int:
    text, old_text, new_text = _text(value), _text(old), _text(new)
    if not every:
        return len(text) + len(new_text)
    count = text.count(old_text) if old_text else len(text) + 1
    return len(text) + count * max(0, len(new_text) - len(old_text))


def _bits(value: Any) -> int:
    return value.bit_length() if isinstance(value, int) else 0


# What a filter would return, measured before it runs, for those whose result can be far
# larger than their input (the others are checked after, as their growth is a small factor).
_FORESEEN: dict[str, Any] = {
    "replace": lambda v, *a: ("chars", _replaced_length(v, *a[:2])),
    "replace_first": lambda v, *a: ("chars", _replaced_length(v, *a[:2], every=False)),
    "replace_last": lambda v, *a: ("chars", _replaced_length(v, *a[:2], every=False)),
    "append": lambda v, *a: ("chars", len(_text(v)) + len(_text(a[0] if a else ""))),
    "prepend": lambda v, *a: ("chars", len(_text(v)) + len(_text(a[0] if a else ""))),
    "join": lambda v, *a: ("chars", _joined_length(v, a[0] if a else None)),
    "concat": lambda v, *a: (
        "items",
        len(v) + len(a[0]) if isinstance(v, list) and a and isinstance(a[0], list) else 0,
    ),
    "times": lambda v, *a: ("bits", _bits(v) + _bits(a[0] if a else 0)),
    "plus": lambda v, *a: ("bits", max(_bits(v), _bits(a[0] if a else 0)) + 1),
    "minus": lambda v, *a: ("bits", max(_bits(v), _bits(a[0] if a else 0)) + 1),
}


def _value_refuse(kind: str, size: int) -> None:
    limits = {"chars": VALUE_MAX_CHARS, "items": VALUE_MAX_ITEMS, "bits": NUMBER_MAX_BITS}
    if size > limits[kind]:
        raise ResourceLimitError("a value grows too large", token=None)


def _measure(value: Any) -> tuple[str, int]:
    if isinstance(value, str):
        return "chars", len(value)
    if isinstance(value, (list, tuple, dict)):
        return "items", len(value)
    return "bits", _bits(value)


def _bounded(name: str, func: Any) -> Any:
    """``func`` checked against the render's budget: the deadline before it runs, the size of
    its result before (when it can explode) and after."""

    @functools.wraps(func)
    def bounded(value: Any, *args: Any, **kwargs: Any) -> Any:
        _budget_spend()
        foresee = _FORESEEN.get(name)
        if foresee is not None:
            try:
                kind, size = foresee(value, *args)
            except (TypeError, ValueError, AttributeError):
                # Arguments the filter itself refuses, with its own message.
                kind, size = "chars", 0
            _value_refuse(kind, size)
        result = func(value, *args, **kwargs)
        _value_refuse(*_measure(result))
        return result

    return bounded


class _SandboxEnvironment(Environment):
    context_depth_limit: ClassVar[int] = 10
    loop_iteration_limit: ClassVar[int | None] = LOOP_ITERATION_LIMIT
    # Bytes held by ``assign``/``capture`` variables.
    local_namespace_limit: ClassVar[int | None] = 64 * 1024
    output_stream_limit: ClassVar[int | None] = EMAIL_OUTPUT_LIMIT_BYTES
    template_class = _BudgetedTemplate

    def setup_tags_and_filters(self, *, extra: bool = False) -> None:
        super().setup_tags_and_filters(extra=False)
        # Templates are strings in the database, never files: no tag may load another one.
        for name in ("include", "render"):
            self.tags.pop(name, None)
        self.filters = {name: _bounded(name, func) for name, func in self.filters.items()}


class _SmsEnvironment(_SandboxEnvironment):
    output_stream_limit: ClassVar[int | None] = SMS_OUTPUT_LIMIT_BYTES


# Lenient undefined (an absent shipment renders empty); strict filters so a misspelt filter
# is an error the merchant sees at save time rather than silent nothing.
_TEXT_ENV = _SandboxEnvironment(autoescape=False, strict_filters=True)
_HTML_ENV = _SandboxEnvironment(autoescape=True, strict_filters=True)
_SMS_ENV = _SmsEnvironment(autoescape=False, strict_filters=True)

# field → (environment, label for the merchant)
_EMAIL_FIELDS: dict[str, Environment] = {
    "subject": _TEXT_ENV,
    "html_body": _HTML_ENV,
    "text_body": _TEXT_ENV,
}
_SMS_FIELDS: dict[str, Environment] = {"sms_body": _SMS_ENV}
FIELD_LABELS = {
    "subject": "Subject",
    "html_body": "HTML body",
    "text_body": "Text body",
    "sms_body": "SMS body",
}


def _fields_for(channel: str) -> dict[str, Environment]:
    return _SMS_FIELDS if channel == Channel.SMS else _EMAIL_FIELDS


def _plain(value: Any, *, depth: int = 0) -> Any:
    """Copy ``value`` keeping only plain data: a template never sees a Python object."""
    if depth > 6:
        return None
    if isinstance(value, str):
        # Liquid holds "" truthy: an empty name or carrier is made nil so that
        # ``{% if customer.first_name %}`` reads as a merchant expects.
        return value if value.strip() else None
    if value is None or isinstance(value, (bool, int, float, Decimal)):
        return value
    if isinstance(value, (dt.datetime, dt.date)):
        # Dates stay dates so Liquid's ``date`` filter can format them.
        return value
    if isinstance(value, Mapping):
        return {
            str(k): _plain(v, depth=depth + 1)
            for k, v in value.items()
            if isinstance(k, str) and not k.startswith("_")
        }
    if isinstance(value, (list, tuple)):
        return [_plain(item, depth=depth + 1) for item in value]
    # Anything else (a model instance, a queryset, a callable) is dropped, not stringified.
    return None


def context_sanitize(context: Mapping[str, Any]) -> dict[str, Any]:
    """The documented variables of ``context``, as plain data."""
    return {name: _plain(context.get(name)) for name in CONTEXT_VARIABLES if name in context}


def locale_candidates(locale: str) -> list[str]:
    """``es-MX`` → ``["es-MX", "es"]``; ``pt_BR`` → ``["pt-BR", "pt"]``."""
    cleaned = (locale or "").strip().replace("_", "-")
    if not cleaned:
        return []
    language = cleaned.split("-", 1)[0].lower()
    candidates = [cleaned] if cleaned.lower() != language else []
    candidates.append(language)
    return candidates


def template_source_get(*, shop: Shop, key: str, channel: str, locale: str) -> TemplateSource:
    """The source used for ``key``/``channel`` in ``locale``, following the fallback order.

    The shop's own template in the locale (or its language), then the shop's English one,
    then the built-in default in the language, then the built-in English default.
    Raises ``TemplateRenderError`` when the key has no template at all.
    """
    from notifications.defaults import default_template_get

    wanted = locale_candidates(locale)
    shop_locales = [*wanted, DEFAULT_LOCALE] if DEFAULT_LOCALE not in wanted else wanted
    rows = {
        row.locale.lower(): row
        for row in MessageTemplate.objects.filter(
            shop=shop, key=key, channel=channel, locale__in=shop_locales
        )
    }
    for candidate in shop_locales:
        row = rows.get(candidate.lower())
        if row is not None:
            return TemplateSource(
                key=key,
                channel=channel,
                locale=row.locale,
                subject=row.subject,
                html_body=row.html_body,
                text_body=row.text_body,
                sms_body=row.sms_body,
                is_default=False,
                version=("row", row.pk, row.updated_at.isoformat()),
            )
    for candidate in [*wanted, DEFAULT_LOCALE]:
        default = default_template_get(key=key, channel=channel, locale=candidate)
        if default is not None:
            if default.version is None:
                return dataclasses.replace(
                    default, version=("default", default.key, default.channel, default.locale)
                )
            return default
    raise TemplateRenderError(f"No template '{key}' for {channel}.")


def _line_of(exc: LiquidError, source: str = "") -> int | None:
    context = exc.context()
    if context:
        return context[0]
    # An unclosed block is only noticed at the end of the template.
    if source and "end of" in str(exc.message or ""):
        return source.count("\n") + 1
    return None


def _error_message(exc: LiquidError) -> str:
    if isinstance(exc, OutputStreamLimitError):
        return "The message is too long."
    if isinstance(exc, LoopIterationLimitError):
        return "A loop runs too many times."
    if isinstance(exc, ResourceLimitError):
        return str(exc.message or "The template uses too many resources.").capitalize() + "."
    message = str(exc.message or type(exc).__name__)
    for tag in ("include", "render"):
        if message.lower() == f"unexpected tag '{tag}'":
            return f"The '{tag}' tag is not available in message templates."
    return message[:1].upper() + message[1:]


# Compiled templates, per process: parsing is most of a render's cost, and a template changes
# far less often than it is sent. Keyed by the source's version (TemplateSource.version) and
# field; the source text is kept and compared too, so a row changed without its updated_at
# moving is compiled afresh rather than rendered stale.
COMPILED_CACHE_SIZE = 512
_compiled: OrderedDict[tuple, tuple[str, BoundTemplate]] = OrderedDict()
_compiled_lock = threading.Lock()
compiled_stats = {"hits": 0, "misses": 0}


def _compile(env: Environment, source: str, cache_key: tuple | None) -> BoundTemplate:
    if cache_key is None:
        return env.from_string(source)
    with _compiled_lock:
        entry = _compiled.get(cache_key)
        if entry is not None and entry[0] == source:
            _compiled.move_to_end(cache_key)
            compiled_stats["hits"] += 1
            return entry[1]
    template = env.from_string(source)
    with _compiled_lock:
        compiled_stats["misses"] += 1
        _compiled[cache_key] = (source, template)
        _compiled.move_to_end(cache_key)
        while len(_compiled) > COMPILED_CACHE_SIZE:
            _compiled.popitem(last=False)
    return template


def _render_field(
    *,
    env: Environment,
    field: str,
    source: str,
    context: dict[str, Any],
    version: tuple | None = None,
) -> str:
    if not source:
        return ""
    token = _budget.set({"iterations": 0.0, "deadline": time.monotonic() + RENDER_DEADLINE_SECONDS})
    try:
        cache_key = (*version, field, id(env)) if version is not None else None
        return _compile(env, source, cache_key).render(**context)
    except LiquidError as exc:
        raise TemplateRenderError(
            f"{FIELD_LABELS[field]}: {_error_message(exc)}",
            field=field,
            line=_line_of(exc, source),
        ) from None
    except RecursionError:
        raise TemplateRenderError(
            f"{FIELD_LABELS[field]}: the template nests too deeply.", field=field
        ) from None
    finally:
        _budget.reset(token)


def template_source_render(*, source: TemplateSource, context: Mapping[str, Any]) -> Rendered:
    """Render one template source with ``context`` (sanitised here)."""
    data = context_sanitize(context)
    if source.channel == Channel.SMS:
        body = _render_field(
            env=_SMS_ENV,
            field="sms_body",
            source=source.sms_body,
            context=data,
            version=source.version,
        )
        body = body.strip()
        if len(body) > SMS_MAX_CHARS:
            raise TemplateRenderError(
                f"SMS body: the message is too long ({len(body)} characters, "
                f"at most {SMS_MAX_CHARS}).",
                field="sms_body",
            )
        return Rendered(body=body)
    version = source.version
    subject = _render_field(
        env=_TEXT_ENV, field="subject", source=source.subject, context=data, version=version
    )
    # A subject is one line: a template's stray newline must not become a header injection.
    subject = " ".join(subject.split())[:SUBJECT_MAX_CHARS]
    html = _render_field(
        env=_HTML_ENV, field="html_body", source=source.html_body, context=data, version=version
    )
    text = _render_field(
        env=_TEXT_ENV, field="text_body", source=source.text_body, context=data, version=version
    )
    return Rendered(subject=subject, html=html, text=text.strip() + "\n" if text else "")


def template_render(
    *, shop: Shop, key: str, channel: str, locale: str, context: Mapping[str, Any]
) -> Rendered:
    """Render the template the shop uses for ``key``/``channel`` in ``locale``.

    Raises ``TemplateRenderError`` (message fit for the merchant) when the template cannot be
    rendered: unknown key, a limit reached, an error raised while rendering.
    """
    source = template_source_get(shop=shop, key=key, channel=channel, locale=locale)
    try:
        return template_source_render(source=source, context=context)
    except TemplateRenderError as exc:
        # The key and shop only: the context holds the shopper's data.
        logger.warning(
            "notifications.template.render_failed",
            extra={
                "shop": shop.myshopify_domain,
                "key": key,
                "channel": channel,
                "locale": source.locale,
                "field": exc.field,
                "is_default": source.is_default,
            },
        )
        raise


def _unknown_variables(template: BoundTemplate) -> list[str]:
    try:
        names = template.global_variables(include_partials=False)
    except LiquidError:
        return []
    return sorted(
        {str(name) for name in names} - CONTEXT_VARIABLES - _LIQUID_BUILTINS,
    )


def template_validate(
    *,
    subject: str = "",
    html_body: str = "",
    text_body: str = "",
    sms_body: str = "",
    channel: str,
) -> list[TemplateProblem]:
    """Problems in a template about to be saved: errors first, then warnings.

    Each field is parsed (a syntax error gives its line and message), then rendered with the
    sample order so that errors only seen at render time (an unknown filter, a loop or output
    limit) are refused now rather than at 3 a.m. in a worker. Variables outside the contract
    are reported as warnings: they render empty, which is allowed but rarely meant.
    """
    from notifications.defaults import sample_context

    values = {
        "subject": subject,
        "html_body": html_body,
        "text_body": text_body,
        "sms_body": sms_body,
    }
    errors: list[TemplateProblem] = []
    warnings: list[TemplateProblem] = []
    fields = _fields_for(channel)
    sample = context_sanitize(sample_context())
    for field, env in fields.items():
        source = values[field] or ""
        if len(source) > SOURCE_MAX_CHARS:
            errors.append(
                TemplateProblem(field, None, f"Too long: at most {SOURCE_MAX_CHARS} characters.")
            )
            continue
        if not source.strip():
            continue
        try:
            template = env.from_string(source)
        except LiquidError as exc:
            errors.append(TemplateProblem(field, _line_of(exc, source), _error_message(exc)))
            continue
        for name in _unknown_variables(template):
            warnings.append(
                TemplateProblem(
                    field,
                    None,
                    f"Unknown variable '{name}' renders as nothing.",
                    is_warning=True,
                )
            )
        try:
            _render_field(env=env, field=field, source=source, context=sample)
        except TemplateRenderError as exc:
            message = str(exc).removeprefix(f"{FIELD_LABELS[field]}: ")
            errors.append(TemplateProblem(field, exc.line, message))
    if channel == Channel.EMAIL and not subject.strip():
        errors.append(TemplateProblem("subject", None, "An email needs a subject."))
    if channel == Channel.SMS and not sms_body.strip():
        errors.append(TemplateProblem("sms_body", None, "An SMS needs a body."))
    return errors + warnings
