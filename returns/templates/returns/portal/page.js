/* The status page follows the return on its own: progressive enhancement. Every
   data-poll-seconds it asks the cheap state endpoint (one row read, JSON) where the return is;
   only when that changed does it fetch the page again and swap the status card in place,
   announcing the new headline politely (no reload: focus and scroll stay where they were).
   It pauses while the tab is hidden, stops once the return is final, and after a few hours.
   Served inside Shopify's Liquid, unescaped: never two opening braces in a row, never an
   opening brace followed by a percent sign. */
(function () {
  var card = document.querySelector(".pp-returns [data-poll-url]");
  if (!card || !window.fetch || !window.DOMParser) return;
  var url = card.getAttribute("data-poll-url");
  var pageUrl = card.getAttribute("data-page-url");
  var every = Math.max(5, parseInt(card.getAttribute("data-poll-seconds"), 10) || 30) * 1000;
  var left = parseInt(card.getAttribute("data-poll-max"), 10) || 360;
  var live = document.getElementById("pp-status-live");
  var timer = null;

  function schedule() {
    if (left <= 0 || card.getAttribute("data-final") === "true") return;
    timer = window.setTimeout(poll, every);
  }
  function swap(html) {
    var doc = new DOMParser().parseFromString(html, "text/html");
    var fresh = doc.querySelector(".pp-returns [data-status]");
    if (!fresh) return;
    card.innerHTML = fresh.innerHTML;
    card.setAttribute("data-status", fresh.getAttribute("data-status"));
    card.setAttribute("data-final", fresh.getAttribute("data-final") || "false");
    var headline = card.querySelector(".pp-section-title");
    if (live && headline) live.textContent = headline.textContent;
  }
  function poll() {
    timer = null;
    left -= 1;
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (state) {
        if (state && state.status !== card.getAttribute("data-status")) {
          return fetch(pageUrl, { credentials: "same-origin" })
            .then(function (r) { return r.ok ? r.text() : ""; })
            .then(function (html) { if (html) swap(html); });
        }
      })
      .catch(function () {})
      .then(schedule);
  }
  document.addEventListener("visibilitychange", function () {
    if (document.hidden && timer) { window.clearTimeout(timer); timer = null; }
    else if (!document.hidden && !timer) schedule();
  });
  schedule();
})();
