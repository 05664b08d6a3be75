/* POST forms of the notifications admin, sent with the session token in the header.

   The app's rule for unsafe methods (shopapp/auth/session.py): the session token travels in
   `Authorization: Bearer`, never in a URL or a cookie. A plain HTML form cannot set a header, so
   forms marked data-app-post are sent here with fetch. The token comes from App Bridge
   (shopify.idToken()) when it is loaded, else from the id_token the page was opened with.
   Server answers: a redirect (success, followed to the page) or a page with errors (shown in
   place). The template editor also gets a live preview, rendered by the server. */
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

  function post(url, body, extraHeaders) {
    return token().then(function (value) {
      var headers = Object.assign({ Authorization: "Bearer " + value }, extraHeaders || {});
      return fetch(url, { method: "POST", body: body, headers: headers, credentials: "same-origin" })
        .then(function (response) {
          // Shopify's rule: a 401 with this header means "get a new token and try again once".
          if (response.status === 401 && response.headers.get("X-Shopify-Retry-Invalid-Session-Request")) {
            return token().then(function (again) {
              headers.Authorization = "Bearer " + again;
              return fetch(url, { method: "POST", body: body, headers: headers, credentials: "same-origin" });
            });
          }
          return response;
        });
    });
  }

  function showError(message) {
    var banner = document.querySelector("[data-post-error]");
    if (!banner) { window.alert(message); return; }
    banner.querySelector("p").textContent = message;
    banner.hidden = false;
    banner.scrollIntoView({ block: "nearest" });
  }

  function withFreshToken(url) {
    return token().then(function (value) {
      var next = new URL(url, window.location.href);
      if (value) next.searchParams.set("id_token", value);
      return next.toString();
    });
  }

  function replacePage(html) {
    var doc = new DOMParser().parseFromString(html, "text/html");
    var main = doc.querySelector("main.page");
    if (main) document.querySelector("main.page").replaceWith(main);
    else showError("Something went wrong. Reload the page and try again.");
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.matches || !form.matches("form[data-app-post]")) return;
    var submitter = event.submitter;
    if (submitter && submitter.hasAttribute("data-preview-button")) {
      event.preventDefault();
      preview(form);
      return;
    }
    event.preventDefault();
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) return;
    var action = (submitter && submitter.getAttribute("formaction")) || form.getAttribute("action");
    var buttons = form.querySelectorAll("button");
    buttons.forEach(function (b) { b.disabled = true; });
    post(action, new FormData(form))
      .then(function (response) {
        if (response.redirected) {
          return withFreshToken(response.url).then(function (url) { window.location.assign(url); });
        }
        var type = response.headers.get("Content-Type") || "";
        return response.text().then(function (text) {
          if (type.indexOf("text/html") === 0 && text.indexOf("<main") !== -1) replacePage(text);
          else showError(text || "The request failed (" + response.status + ").");
        });
      })
      .catch(function () { showError("The request failed. Check your connection and try again."); })
      .finally(function () { buttons.forEach(function (b) { b.disabled = false; }); });
  });

  // Live preview: re-render a moment after the merchant stops typing.
  var timer = null;
  function preview(form) {
    var url = form.dataset.previewUrl;
    if (!url) return;
    var data = new FormData(form);
    post(url, data, { Accept: "application/json" })
      .then(function (response) { return response.json(); })
      .then(function (result) {
        var error = document.querySelector("[data-preview-error]");
        var problems = (result.problems || []).filter(function (p) { return !p.is_warning; });
        var message = result.error || problems.map(function (p) {
          return p.field + (p.line ? ", line " + p.line : "") + ": " + p.message;
        }).join("\n");
        if (error) { error.textContent = message; error.hidden = !message; }
        var subject = document.querySelector("[data-preview-subject]");
        if (subject) subject.textContent = result.subject || "";
        var frame = document.querySelector("[data-preview-html]");
        if (frame && !result.error) frame.srcdoc = result.html || "";
        var text = document.querySelector("[data-preview-text]");
        if (text) text.textContent = result.text || "";
        var body = document.querySelector("[data-preview-body]");
        if (body) body.textContent = result.body || "";
      })
      .catch(function () {});
  }
  document.addEventListener("input", function (event) {
    var form = event.target.form;
    if (!form || !form.dataset.previewUrl) return;
    clearTimeout(timer);
    timer = setTimeout(function () { preview(form); }, 400);
  });
})();
