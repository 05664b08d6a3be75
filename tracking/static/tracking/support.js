/* The order page's actions: forms sent with the session token in the header, and "copy
   tracking link".

   session_token_required wants unsafe methods to carry the token in `Authorization: Bearer`
   (never in a URL or a cookie), which a plain form cannot set: forms marked data-app-post are
   sent with fetch, the token from App Bridge when it is loaded, else the page's id_token.
   The server answers a redirect (Post/Redirect/Get: followed, with a fresh token) or a short
   text saying what was wrong (shown in the page's error banner; nothing was changed). */
(function () {
  "use strict";

  function urlToken() {
    return new URLSearchParams(window.location.search).get("id_token") || "";
  }

  function token() {
    var bridge = window.shopify;
    if (!bridge || typeof bridge.idToken !== "function") return Promise.resolve(urlToken());
    return Promise.race([
      bridge.idToken(),
      new Promise(function (resolve) { setTimeout(function () { resolve(null); }, 1500); }),
    ]).then(function (fresh) { return fresh || urlToken(); }, urlToken);
  }

  function showError(message) {
    var banner = document.querySelector("[data-post-error]");
    if (!banner) { window.alert(message); return; }
    banner.querySelector("p").textContent = message;
    banner.hidden = false;
    banner.scrollIntoView({ block: "nearest" });
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.matches || !form.matches("form[data-app-post]")) return;
    event.preventDefault();
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) return;
    var buttons = form.querySelectorAll("button");
    buttons.forEach(function (b) { b.disabled = true; });
    var body = new FormData(form);
    token().then(function (value) {
      return fetch(form.getAttribute("action"), {
        method: "POST", body: body, credentials: "same-origin",
        headers: { Authorization: "Bearer " + value },
      });
    }).then(function (response) {
      if (response.redirected) {
        return token().then(function (value) {
          var next = new URL(response.url, window.location.href);
          if (value) next.searchParams.set("id_token", value);
          window.location.assign(next.toString());
        });
      }
      return response.text().then(function (text) {
        showError(text || "The request failed (" + response.status + ").");
        buttons.forEach(function (b) { b.disabled = false; });
      });
    }).catch(function () {
      showError("The app could not be reached. Nothing was changed; try again.");
      buttons.forEach(function (b) { b.disabled = false; });
    });
  });

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("button[data-copy]");
    if (!button) return;
    var text = button.getAttribute("data-copy");
    var done = function () {
      var label = button.textContent;
      button.textContent = button.getAttribute("data-copied-label") || "Copied";
      setTimeout(function () { button.textContent = label; }, 2000);
    };
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(text).then(done, function () {
        var field = document.querySelector("[data-tracking-link]");
        if (field) { field.focus(); field.select(); }
      });
    } else {
      var field = document.querySelector("[data-tracking-link]");
      if (field) { field.focus(); field.select(); }
    }
  });
})();
