// contextkb: small progressive enhancements. Every page works without this file.
(function () {
  "use strict";

  // Close open <details> menus on Escape or a click outside them.
  document.addEventListener("click", function (event) {
    document.querySelectorAll("details.usermenu[open], details.dropdown[open]").forEach(function (menu) {
      if (!menu.contains(event.target)) menu.removeAttribute("open");
    });
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") {
      document.querySelectorAll("details.usermenu[open], details.dropdown[open]").forEach(function (menu) {
        menu.removeAttribute("open");
        var summary = menu.querySelector("summary");
        if (summary) summary.focus();
      });
    }
    // "/" focuses the page's search box, as in most issue trackers.
    var tag = (event.target.tagName || "").toLowerCase();
    if (event.key === "/" && !event.ctrlKey && !event.metaKey && tag !== "input" && tag !== "textarea" && tag !== "select") {
      var search = document.querySelector("input[type=search]");
      if (search) { event.preventDefault(); search.focus(); }
    }
  });

  // Buttons with data-confirm ask first (archive, remove member, save over).
  document.addEventListener("submit", function (event) {
    var button = event.submitter;
    var message = (button && button.getAttribute("data-confirm")) || event.target.getAttribute("data-confirm");
    if (message && !window.confirm(message)) event.preventDefault();
  });

  // Filters apply as soon as a select or checkbox changes (the Apply button stays for keyboards).
  document.querySelectorAll("form.filters").forEach(function (form) {
    form.addEventListener("change", function (event) {
      var tag = (event.target.tagName || "").toLowerCase();
      if (tag === "select" || event.target.type === "checkbox") form.requestSubmit();
    });
  });
})();
