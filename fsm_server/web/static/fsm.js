// fsm portal: the little behaviour the pages need, kept out of the HTML (CSP script-src 'self').
(function () {
  "use strict";
  function ready(fn) {
    if (document.readyState !== "loading") { fn(); } else { document.addEventListener("DOMContentLoaded", fn); }
  }
  ready(function () {
    // every htmx request carries the session's CSRF token (the meta tag holds it)
    var meta = document.querySelector('meta[name="csrf-token"]');
    if (meta && meta.content) {
      var headers = JSON.stringify({"X-CSRF-Token": meta.content});
      document.body.setAttribute("hx-headers:inherited", headers);
    }
    // forms marked data-confirm ask before they submit
    document.addEventListener("submit", function (event) {
      var form = event.target;
      var question = form && form.getAttribute && form.getAttribute("data-confirm");
      if (question && !window.confirm(question)) { event.preventDefault(); }
    }, true);
  });
})();
