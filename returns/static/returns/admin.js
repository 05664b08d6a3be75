/* Returns pages: send forms with the session token in the Authorization header.

   session_token_required refuses unsafe methods without "Authorization: Bearer" (a token in a
   form body or URL leaks through logs and Referer). So forms marked data-app-post are sent
   with fetch, with a fresh token from App Bridge when it is there, else the one the page was
   loaded with; the answer is the page itself, which replaces this one. */
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
    var button = form.querySelector("button[type=submit]");
    if (button) button.disabled = true;
    freshToken().then(function (token) {
      return fetch(form.action, {
        method: "POST",
        body: new FormData(form),
        headers: { Authorization: "Bearer " + token },
        credentials: "same-origin",
      });
    }).then(function (response) {
      if (response.status === 401) { window.location.reload(); return null; }
      return response.text();
    }).then(function (html) {
      if (html === null) return;
      document.open();
      document.write(html);
      document.close();
    }).catch(function () {
      if (button) button.disabled = false;
      window.alert("The app could not be reached. Nothing was changed; try again.");
    });
  });
})();
