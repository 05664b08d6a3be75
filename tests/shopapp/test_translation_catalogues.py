"""Every app's Spanish, French and German catalogues are complete: no message is left
untranslated or fuzzy (Django shows neither: the page would fall back to English), none is
listed twice, and the compiled .mo that Django reads says what the .po says."""

import ast
import gettext
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LANGUAGES = ("es", "fr", "de")
# Every app that ships a catalogue; a new one must be added here to be checked.
APPS = ("shopapp", "tracking", "returns", "notifications", "insights")


@dataclass
class Entry:
    msgid: str = ""
    msgid_plural: str | None = None
    context: str | None = None
    msgstrs: list[str] = field(default_factory=list)
    is_fuzzy: bool = False
    line: int = 0


def catalogue_read(path: Path) -> list[Entry]:
    """The .po file's live entries (obsolete ``#~`` ones left out), header included."""
    entries: list[Entry] = []
    current: Entry | None = None
    target = ""
    flags: set[str] = set()

    def finish() -> None:
        nonlocal current
        if current is not None:
            entries.append(current)
        current = None

    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#~"):
            continue
        if line.startswith("#,"):
            finish()
            flags = {flag.strip() for flag in line[2:].split(",")}
            continue
        if line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        if keyword.startswith('"'):
            text, keyword = ast.literal_eval(line), ""
        else:
            text = ast.literal_eval(rest)
        starts = keyword == "msgctxt" or (
            keyword == "msgid" and (current is None or bool(current.msgstrs))
        )
        if starts:
            finish()
            current = Entry(is_fuzzy="fuzzy" in flags, line=number)
            flags = set()
        assert current is not None, f"{path}:{number}: text outside an entry"
        if keyword == "msgctxt":
            current.context, target = text, "msgctxt"
        elif keyword == "msgid":
            current.msgid, target = text, "msgid"
        elif keyword == "msgid_plural":
            current.msgid_plural, target = text, "msgid_plural"
        elif keyword.startswith("msgstr"):
            current.msgstrs.append(text)
            target = "msgstr"
        elif target == "msgctxt":
            current.context = (current.context or "") + text
        elif target == "msgid":
            current.msgid += text
        elif target == "msgid_plural":
            current.msgid_plural = (current.msgid_plural or "") + text
        elif target == "msgstr":
            current.msgstrs[-1] += text
    finish()
    return entries


def catalogues() -> list[Path]:
    return [
        ROOT / app / "locale" / lang / "LC_MESSAGES" / "django.po"
        for app in APPS
        for lang in LANGUAGES
    ]


def test_every_app_ships_a_catalogue_for_every_language():
    for path in catalogues():
        assert path.is_file(), path
        assert path.with_suffix(".mo").is_file(), path
    # and no app with a catalogue is left out of the checks below
    shipped = {path.parts[-5] for path in ROOT.glob("*/locale/*/LC_MESSAGES/django.po")}
    assert shipped == set(APPS)


@pytest.mark.parametrize("path", catalogues(), ids=lambda p: "/".join(p.parts[-5:-2]))
def test_no_message_is_untranslated_fuzzy_or_listed_twice(path):
    entries = [entry for entry in catalogue_read(path) if entry.msgid]
    assert len(entries) > 10
    untranslated = [
        f"line {entry.line}: {entry.msgid!r}"
        for entry in entries
        if entry.is_fuzzy or not entry.msgstrs or not all(entry.msgstrs)
    ]
    assert untranslated == []
    keys = [(entry.context, entry.msgid) for entry in entries]
    assert len(keys) == len(set(keys)), sorted(k for k in keys if keys.count(k) > 1)


@pytest.mark.parametrize("path", catalogues(), ids=lambda p: "/".join(p.parts[-5:-2]))
def test_the_compiled_catalogue_says_what_the_po_says(path):
    with path.with_suffix(".mo").open("rb") as compiled:
        translations = gettext.GNUTranslations(compiled)
    for entry in catalogue_read(path):
        if not entry.msgid:
            continue
        key = entry.msgid if entry.context is None else f"{entry.context}\x04{entry.msgid}"
        if entry.msgid_plural is None:
            assert translations._catalog.get(key) == entry.msgstrs[0], entry.msgid
        else:
            for n, text in enumerate(entry.msgstrs):
                assert translations._catalog.get((key, n)) == text, entry.msgid
