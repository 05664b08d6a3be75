/* Live preview of the branding screen: the same contrast rules as shopapp/branding/look.py
   (WCAG relative luminance; text on background must reach 4.5:1, the server refuses less;
   a light accent gets a darker shade for link text, and black or white ink on buttons). */
(function () {
  "use strict";
  var AA = 4.5;

  function parse(value) {
    var text = (value || "").trim().toLowerCase();
    if (text && text[0] !== "#") text = "#" + text;
    if (/^#[0-9a-f]{3}$/.test(text)) text = "#" + text[1] + text[1] + text[2] + text[2] + text[3] + text[3];
    return /^#[0-9a-f]{6}$/.test(text) ? text : null;
  }
  function rgb(c) { return [1, 3, 5].map(function (i) { return parseInt(c.substr(i, 2), 16); }); }
  function hex(values) {
    return "#" + values.map(function (v) { return ("0" + Math.max(0, Math.min(255, Math.round(v))).toString(16)).slice(-2); }).join("");
  }
  function luminance(c) {
    var v = rgb(c).map(function (x) { x /= 255; return x <= 0.04045 ? x / 12.92 : Math.pow((x + 0.055) / 1.055, 2.4); });
    return 0.2126 * v[0] + 0.7152 * v[1] + 0.0722 * v[2];
  }
  function ratio(a, b) {
    var la = luminance(a), lb = luminance(b);
    return (Math.max(la, lb) + 0.05) / (Math.min(la, lb) + 0.05);
  }
  function ink(bg) { return ratio("#ffffff", bg) >= ratio("#000000", bg) ? "#ffffff" : "#000000"; }
  function mix(a, b, share) {
    var x = rgb(a), y = rgb(b);
    return hex(x.map(function (v, i) { return v + (y[i] - v) * share; }));
  }
  function readableOn(colour, bg) {
    if (ratio(colour, bg) >= AA) return colour;
    var toward = ink(bg);
    for (var step = 1; step <= 20; step++) {
      var shade = mix(colour, toward, step / 20);
      if (ratio(shade, bg) >= AA) return shade;
    }
    return toward;
  }

  function field(name) { return document.querySelector("[data-brand=" + name + "]"); }

  function update() {
    var preview = document.querySelector("[data-brand-preview]");
    if (!preview) return;
    var accent = parse(field("accent").value) || "#008060";
    var text = parse(field("text").value) || "#1c1c1c";
    var bg = parse(field("background").value) || "#ffffff";
    var font = field("font");
    var stack = font.options[font.selectedIndex].getAttribute("data-stack");
    var r = ratio(text, bg);
    var shownText = r >= AA ? text : readableOn(text, bg);
    var style = preview.style;
    style.setProperty("--b-accent", accent);
    style.setProperty("--b-accent-ink", ink(accent));
    style.setProperty("--b-accent-text", readableOn(accent, bg));
    style.setProperty("--b-text", shownText);
    var soft = mix(bg, shownText, 0.05);
    // Secondary text sits on the background and on the soft surface (the email's footer).
    style.setProperty("--b-muted", readableOn(readableOn(mix(shownText, bg, 0.4), bg), soft));
    style.setProperty("--b-bg", bg);
    style.setProperty("--b-soft", soft);
    style.setProperty("--b-line", mix(bg, shownText, 0.18));
    style.setProperty("--b-font", stack);
    var note = document.querySelector("[data-contrast-note]");
    note.textContent = "Text contrast " + r.toFixed(2) + ":1 — " +
      (r >= AA ? "passes WCAG AA." : "below WCAG AA (4.5:1): this will not be saved.");
    note.classList.toggle("brand-contrast--fail", r < AA);
    var accentNote = document.querySelector("[data-accent-note]");
    var shade = readableOn(accent, bg);
    accentNote.textContent = shade === accent ? "" : "Links use a darker shade (" + shade + ") so they stay readable.";
    var contact = [field("support_email").value.trim(), field("support_phone").value.trim()].filter(Boolean).join(" · ");
    document.querySelector("[data-preview-contact]").textContent = contact ? "Questions? " + contact : "";
    document.querySelector("[data-preview-footer]").textContent = field("footer").value;
    document.querySelectorAll("[data-pick]").forEach(function (picker) {
      var value = parse(document.getElementById(picker.getAttribute("data-pick")).value);
      if (value) picker.value = value;
    });
  }

  document.addEventListener("input", function (event) {
    var target = event.target;
    if (target.hasAttribute && target.hasAttribute("data-pick")) {
      document.getElementById(target.getAttribute("data-pick")).value = target.value;
    }
    if (target.closest && target.closest("#branding-form")) update();
  });
  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.hasAttribute && target.hasAttribute("data-brand-logo") && target.files && target.files[0]) {
      var url = URL.createObjectURL(target.files[0]);
      document.querySelectorAll("[data-preview-logo]").forEach(function (img) { img.src = url; img.hidden = false; });
    }
    if (target.closest && target.closest("#branding-form")) update();
  });
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", update);
  else update();
})();
