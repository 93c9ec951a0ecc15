// Live count of characters and parts (GSM 03.38 or UCS-2) while the client types; without
// script the server counts on "Preview".
(function () {
  "use strict";
  var BASIC = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\u001bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
  var EXT = "\f^{}\\[~]|€";
  function count(text) {
    var chars = Array.from(text.replace(/\r\n/g, "\n"));
    var gsm = chars.every(function (c) { return BASIC.indexOf(c) >= 0 || EXT.indexOf(c) >= 0; });
    var width = function (c) {
      if (gsm) { return EXT.indexOf(c) >= 0 ? 2 : 1; }
      return c.length; // UTF-16 units
    };
    var units = chars.reduce(function (n, c) { return n + width(c); }, 0);
    var single = gsm ? 160 : 70, multi = gsm ? 153 : 67;
    var parts = 0;
    if (units > 0 && units <= single) { parts = 1; }
    else if (units > single) {
      parts = 1;
      var used = 0;
      chars.forEach(function (c) {
        var w = width(c);
        if (used + w > multi) { parts += 1; used = 0; }
        used += w;
      });
    }
    return { gsm: gsm, units: units, parts: parts };
  }
  function init() {
    var area = document.getElementById("text");
    var out = document.getElementById("sms-count-text");
    if (!area || !out) { return; }
    var max = area.getAttribute("data-max-parts");
    var update = function () {
      var c = count(area.value);
      out.textContent = area.getAttribute(c.gsm ? "data-label-gsm7" : "data-label-ucs2") + ": " +
        area.getAttribute("data-label-chars") + " " + c.units + ", " +
        area.getAttribute("data-label-parts") + " " + c.parts + "/" + max;
    };
    area.addEventListener("input", update);
    if (area.value) { update(); }
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", init); } else { init(); }
})();
