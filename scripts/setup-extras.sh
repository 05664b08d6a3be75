#!/usr/bin/env bash
# What the project needs beyond its Python packages. Idempotent: quick when already done.
set -euo pipefail
cd "$(dirname "$0")/.."
# Shopify's own Node library as the conformance tests' oracle (scripts/shopify-oracle).
# `npm ci` from the committed lock file; skipped when it is already installed at that lock.
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
  oracle=scripts/shopify-oracle
  if ! cmp -s "$oracle/package-lock.json" "$oracle/node_modules/.package-lock.json.installed"; then
    npm ci --prefix "$oracle" --no-audit --no-fund --loglevel=error
    cp "$oracle/package-lock.json" "$oracle/node_modules/.package-lock.json.installed"
  fi
  # axe-core for the browser tests' accessibility checks (tests/browser/test_tracking_page.py
  # injects scripts/axe/node_modules/axe-core/axe.min.js into the page).
  axe=scripts/axe
  if ! cmp -s "$axe/package-lock.json" "$axe/node_modules/.package-lock.json.installed"; then
    npm ci --prefix "$axe" --no-audit --no-fund --loglevel=error
    cp "$axe/package-lock.json" "$axe/node_modules/.package-lock.json.installed"
  fi
  # Polaris's design tokens (CSS custom properties) for the embedded admin's look. The CSS is
  # small and its licence allows redistribution in apps built for Shopify, so a copy is
  # committed in shopapp/static/polaris/ (a clean clone serves it without node); after a
  # version bump in scripts/polaris/package.json, this refreshes the copy from the package.
  polaris=scripts/polaris
  if ! cmp -s "$polaris/package-lock.json" "$polaris/node_modules/.package-lock.json.installed"; then
    npm ci --prefix "$polaris" --no-audit --no-fund --loglevel=error
    cp "$polaris/package-lock.json" "$polaris/node_modules/.package-lock.json.installed"
  fi
  tokens="$polaris/node_modules/@shopify/polaris-tokens"
  if ! cmp -s "$tokens/dist/css/styles.css" shopapp/static/polaris/polaris-tokens.css; then
    cp "$tokens/dist/css/styles.css" shopapp/static/polaris/polaris-tokens.css
    cp "$tokens/LICENSE.md" shopapp/static/polaris/LICENSE.md
    echo "setup-extras: shopapp/static/polaris/ refreshed from @shopify/polaris-tokens" >&2
  fi
else
  echo "setup-extras: node/npm not found; the Shopify oracle conformance tests and the" \
    "accessibility checks will be skipped" >&2
fi
# gettext's msgfmt for `manage.py compilemessages` (the committed .mo files work without it;
# it is needed only to recompile after editing a .po file).
if ! command -v msgfmt >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gettext
  else
    echo "setup-extras: msgfmt not found and not root; install gettext to recompile translations" >&2
  fi
fi
# Debian's Chromium for the browser tests (tests/browser, driven by Playwright with
# executable_path=/usr/bin/chromium: `playwright install` needs the internet, this does not).
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
  else
    echo "setup-extras: chromium not found and not root; install Debian's chromium" \
      "(apt-get install chromium) or the browser tests will be skipped" >&2
  fi
fi
# wrk, the compiled HTTP load generator the benchmarks drive (bench/; a Python client on two
# cores would measure itself, not the server).
if ! command -v wrk >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk
  else
    echo "setup-extras: wrk not found and not root; install Debian's wrk to run make bench" >&2
  fi
fi
exit 0
