/* Copy buttons for tracking numbers: progressive enhancement. Without this script (or without
   the Clipboard API) the buttons stay hidden and the number is plain selectable text.
   Served inside Shopify's Liquid, unescaped: never two opening braces in a row, never an
   opening brace followed by a percent sign. */
(function () {
  if (!navigator.clipboard || !window.isSecureContext) return;
  var status = document.getElementById("pp-copy-status");
  document.querySelectorAll(".pp-track .pp-copy").forEach(function (button) {
    var label = button.querySelector(".pp-copy__label");
    var idle = label.textContent;
    button.hidden = false;
    button.addEventListener("click", function () {
      var target = document.getElementById(button.getAttribute("data-copy-target"));
      navigator.clipboard.writeText(target.textContent.trim()).then(function () {
        label.textContent = button.getAttribute("data-copied");
        if (status) status.textContent = button.getAttribute("data-copied-status");
        window.setTimeout(function () { label.textContent = idle; }, 2000);
      });
    });
  });
})();
