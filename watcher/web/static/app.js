// Small progressive enhancement; every page works without it.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  // Filters apply as soon as a choice changes.
  document.querySelectorAll("form[data-autosubmit] select").forEach(function (el) {
    el.addEventListener("change", function () { el.form.submit(); });
  });
  // Long-running forms (tester, backtest) say they are working and are not sent twice.
  document.querySelectorAll("form[data-busy]").forEach(function (form) {
    form.addEventListener("submit", function () {
      var button = form.querySelector("button");
      if (button) { button.disabled = true; button.textContent = form.dataset.busy; }
    });
  });
  // Only one of URL / text is used: typing a URL dims the text box.
  var url = document.querySelector("input[name=url]");
  var text = document.querySelector("textarea[name=text]");
  if (url && text) {
    var sync = function () { text.classList.toggle("dim", url.value.trim() !== ""); };
    url.addEventListener("input", sync);
    sync();
  }
});
