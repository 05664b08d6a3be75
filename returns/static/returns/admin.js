/* Returns pages: send forms with the session token in the Authorization header.

   session_token_required refuses unsafe methods without "Authorization: Bearer" (a token in a
   form body or URL leaks through logs and Referer). So forms marked data-app-post are sent
   with fetch, with a fresh token from App Bridge when it is there, else the one the page was
   loaded with. A change answers 303 (Post/Redirect/Get): the browser goes to that page, with a
   fresh token; a refusal answers the page with the error, which replaces this one, or a short
   text shown in the error banner. */
(function () {
  "use strict";

  function pageToken() {
    return new URL(window.location.href).searchParams.get("id_token") || "";
  }

  function freshToken() {
    var bridge = window.shopify;
    if (!bridge || typeof bridge.idToken !== "function") return Promise.resolve(pageToken());
    return Promise.race([
      bridge.idToken(),
      new Promise(function (resolve) { setTimeout(function () { resolve(null); }, 1500); }),
    ]).then(function (token) { return token || pageToken(); }).catch(pageToken);
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.matches || !form.matches("form[data-app-post]")) return;
    event.preventDefault();
    var button = event.submitter || form.querySelector("button[type=submit]");
    if (button) button.disabled = true;
    var body = new FormData(form);
    if (event.submitter && event.submitter.name) body.append(event.submitter.name, event.submitter.value);
    freshToken().then(function (token) {
      return fetch(form.action, {
        method: "POST",
        body: body,
        headers: { Authorization: "Bearer " + token },
        credentials: "same-origin",
      });
    }).then(function (response) {
      if (response.status === 401) { window.location.reload(); return null; }
      if (response.redirected) {
        return freshToken().then(function (token) {
          var next = new URL(response.url, window.location.href);
          if (token) next.searchParams.set("id_token", token);
          window.location.assign(next.toString());
          return null;
        });
      }
      var type = response.headers.get("Content-Type") || "";
      return response.text().then(function (text) {
        if (type.indexOf("text/html") === 0) return text;
        var banner = document.querySelector("[data-post-error]");
        if (banner) {
          banner.querySelector("p").textContent = text;
          banner.hidden = false;
          if (button) button.disabled = false;
        } else {
          window.alert(text);
        }
        return null;
      });
    }).then(function (html) {
      if (html === null || html === undefined) return;
      document.open();
      document.write(html);
      document.close();
    }).catch(function () {
      if (button) button.disabled = false;
      window.alert("The app could not be reached. Nothing was changed; try again.");
    });
  });
})();
