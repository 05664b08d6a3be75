/* Fresh session tokens for in-app navigation, when App Bridge is there to give them.

   The pages are server-rendered and their links already carry shop, host and the id_token the
   page was loaded with, so everything works without this file or without Shopify's CDN (the
   devshop frame, a blocked CDN). But session tokens live one minute: with App Bridge loaded,
   swap in a fresh one from shopify.idToken() as a link is followed or a form is sent, so a page
   left open for a while still navigates without a trip through the bounce page. */
(function () {
  "use strict";

  function freshToken() {
    var bridge = window.shopify;
    if (!bridge || typeof bridge.idToken !== "function") return null;
    return Promise.race([
      bridge.idToken(),
      // App Bridge answers in milliseconds; never hold a click longer than this.
      new Promise(function (resolve) { setTimeout(function () { resolve(null); }, 1500); }),
    ]).catch(function () { return null; });
  }

  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("a[data-app-link]");
    if (!link || event.defaultPrevented || event.button !== 0 ||
        event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    var pending = freshToken();
    if (!pending) return;
    event.preventDefault();
    pending.then(function (token) {
      var url = new URL(link.href, window.location.href);
      if (token) url.searchParams.set("id_token", token);
      window.location.assign(url.toString());
    });
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.matches || !form.matches("form[data-app-form]") || form.dataset.refreshed) return;
    var pending = freshToken();
    if (!pending) return;
    event.preventDefault();
    pending.then(function (token) {
      if (token) {
        var input = form.querySelector("input[name=id_token]");
        if (!input) {
          input = document.createElement("input");
          input.type = "hidden";
          input.name = "id_token";
          form.appendChild(input);
        }
        input.value = token;
      }
      form.dataset.refreshed = "1";
      form.submit();
    });
  });
})();
