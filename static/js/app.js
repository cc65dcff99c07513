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

  // A POST form is sent once: a second click while the first is on its way does nothing (the
  // server also recognises a repeated create). Forms read back from the back/forward cache work again.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (event.defaultPrevented || (form.method || "").toLowerCase() !== "post") return;
    if (form.dataset.submitting) { event.preventDefault(); return; }
    form.dataset.submitting = "1";
    var button = event.submitter;
    if (button && button.hasAttribute("data-busy-label")) {
      button.dataset.idleLabel = button.textContent;
      button.textContent = button.getAttribute("data-busy-label");
      button.setAttribute("aria-disabled", "true");
    }
  });
  window.addEventListener("pageshow", function () {
    document.querySelectorAll("form[data-submitting]").forEach(function (form) {
      delete form.dataset.submitting;
      form.querySelectorAll("[data-idle-label]").forEach(function (button) {
        button.textContent = button.dataset.idleLabel;
        button.removeAttribute("aria-disabled");
      });
    });
  });

  // The editor's kind picker: switching kind reloads the editor for that kind, keeping what was
  // typed (the server swaps the body template only if the body is still the untouched template).
  document.querySelectorAll("input[data-switch-kind]").forEach(function (radio) {
    radio.addEventListener("change", function () {
      var button = document.getElementById("switch-kind");
      if (button && radio.form) radio.form.requestSubmit(button);
    });
  });

  // After a kind switch (a POST), the address bar shows the editor for that kind.
  document.querySelectorAll("form[data-canonical-url]").forEach(function (form) {
    var url = form.getAttribute("data-canonical-url");
    if (window.location.pathname + window.location.search !== url) window.history.replaceState(null, "", url);
  });

  // Tag suggestions add themselves to the comma-separated tags field.
  document.querySelectorAll("[data-tag-target]").forEach(function (box) {
    var input = document.getElementById(box.getAttribute("data-tag-target"));
    if (!input) return;
    box.addEventListener("click", function (event) {
      var button = event.target.closest("[data-add-tag]");
      if (!button) return;
      var tag = button.getAttribute("data-add-tag");
      var tags = input.value.split(",").map(function (t) { return t.trim(); }).filter(Boolean);
      if (tags.map(function (t) { return t.toLowerCase(); }).indexOf(tag) === -1) tags.push(tag);
      input.value = tags.join(", ");
      input.focus();
    });
  });

  // The link picker: Down from the search box moves into the results, Up/Down move between them,
  // Escape goes back to the box; Enter on a result links it.
  document.querySelectorAll("[data-picker]").forEach(function (input) {
    var results = document.getElementById(input.getAttribute("aria-controls"));
    if (!results) return;
    function items() { return Array.prototype.slice.call(results.querySelectorAll(".picker-item")); }
    input.addEventListener("keydown", function (event) {
      if (event.key === "ArrowDown" && items().length) { event.preventDefault(); items()[0].focus(); }
    });
    results.addEventListener("keydown", function (event) {
      var list = items();
      var index = list.indexOf(document.activeElement);
      if (index === -1) return;
      if (event.key === "ArrowDown") { event.preventDefault(); list[Math.min(index + 1, list.length - 1)].focus(); }
      else if (event.key === "ArrowUp") { event.preventDefault(); (index === 0 ? input : list[index - 1]).focus(); }
      else if (event.key === "Escape") { event.preventDefault(); input.focus(); }
      else if (event.key === "Home") { event.preventDefault(); list[0].focus(); }
      else if (event.key === "End") { event.preventDefault(); list[list.length - 1].focus(); }
    });
  });

  // A link graph wider than the screen opens centred on the record it is about.
  document.querySelectorAll(".graph-scroll").forEach(function (box) {
    var centre = box.querySelector(".node.hop-0 rect");
    if (!centre || box.scrollWidth <= box.clientWidth) return;
    var boxRect = box.getBoundingClientRect();
    var rect = centre.getBoundingClientRect();
    box.scrollLeft += rect.left + rect.width / 2 - (boxRect.left + box.clientWidth / 2);
    box.scrollTop += rect.top + rect.height / 2 - (boxRect.top + box.clientHeight / 2);
  });

  // Filters apply as soon as a select or checkbox is changed with the mouse or by touch. From the
  // keyboard, arrow keys step through a closed select's options, so reloading on each step would
  // throw the user out of it: there the Search button (or Enter in a text box) applies them.
  var lastInput = "pointer";
  document.addEventListener("keydown", function () { lastInput = "keyboard"; }, true);
  document.addEventListener("pointerdown", function () { lastInput = "pointer"; }, true);
  document.querySelectorAll("form.filters").forEach(function (form) {
    form.addEventListener("change", function (event) {
      var tag = (event.target.tagName || "").toLowerCase();
      if (lastInput === "pointer" && (tag === "select" || event.target.type === "checkbox")) form.requestSubmit();
    });
  });
})();
