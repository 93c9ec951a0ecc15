// Portico live reload (`portico serve --dev`): loads the page again when the theme changes.
// The page is fetched again with GET, so a form is never sent twice; the scroll position is kept.
(function () {
  "use strict";
  var KEY = "portico-dev-reload-scroll";
  var here = location.href.split("#")[0];
  try {
    var saved = JSON.parse(sessionStorage.getItem(KEY) || "null");
    sessionStorage.removeItem(KEY);
    if (saved && saved.url === here) {
      addEventListener("load", function () { scrollTo(saved.x, saved.y); });
    }
  } catch (e) { /* no sessionStorage: start at the top */ }

  var script = document.currentScript;
  var since = script && script.getAttribute("data-generation");
  var url = "/dev/theme-events" + (since ? "?since=" + encodeURIComponent(since) : "");
  var events = new EventSource(url);
  events.addEventListener("theme-changed", function () {
    events.close();
    try {
      sessionStorage.setItem(KEY, JSON.stringify({ url: here, x: scrollX, y: scrollY }));
    } catch (e) { /* reload at the top */ }
    location.replace(here);
  });
})();
