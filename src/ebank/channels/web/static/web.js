// The signed-in pages' only script (the CSP allows no other, and no inline script at all):
// the idle warning before the session ends, and busy buttons while a form is sent.
(function () {
  "use strict";

  function idleWatch(body) {
    var idle = parseInt(body.dataset.idleSeconds || "0", 10);
    var warnBefore = parseInt(body.dataset.warnSeconds || "60", 10);
    var loginUrl = body.dataset.loginUrl;
    var dialog = document.getElementById("idle-warning");
    if (!idle || !dialog || !loginUrl) return;
    var warnTimer, endTimer;
    function arm() {
      clearTimeout(warnTimer);
      clearTimeout(endTimer);
      dialog.hidden = true;
      warnTimer = setTimeout(function () {
        dialog.hidden = false;
        var button = dialog.querySelector("button");
        if (button) button.focus();
      }, Math.max(idle - warnBefore, 1) * 1000);
      endTimer = setTimeout(function () { window.location.assign(loginUrl); }, idle * 1000);
    }
    arm();
    // Any request the page makes (the warning's own button included) resumes the session.
    document.body.addEventListener("htmx:afterRequest", arm);
  }

  function busyButtons() {
    document.addEventListener("submit", function (event) {
      var form = event.target;
      var button = form.querySelector("button[type=submit][data-busy]");
      if (!button || form.hasAttribute("hx-post")) return;
      // Keep the button's value in the post, then stop a second click sending it twice.
      window.setTimeout(function () {
        button.disabled = true;
        button.setAttribute("aria-busy", "true");
      }, 0);
    });
  }

  // A page come back to from the history keeps its disabled buttons: free them again.
  window.addEventListener("pageshow", function () {
    document.querySelectorAll("button[aria-busy=true]").forEach(function (button) {
      button.disabled = false;
      button.removeAttribute("aria-busy");
    });
  });

  document.addEventListener("DOMContentLoaded", function () {
    idleWatch(document.body);
    busyButtons();
  });
})();
