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

  // After a search (or a filter, sort or page change), focus goes to the results heading, so the
  // first result is one Tab away instead of the whole header and filter form.
  var results = document.querySelector("[data-focus-on-load]");
  if (results) results.focus();

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

  // Drafts: what is typed in the editor is kept in this browser until it is saved, so a lost
  // session, an expired form, a crash or a closed tab never loses an edit. A form sent from here
  // is remembered in sessionStorage; only if the next page confirms the save (a success message)
  // is the draft dropped. Refusals (login, conflict, errors) keep it, and the editor offers it.
  var DRAFT = "ckb-draft:";
  var DRAFT_DAYS = 7;
  var store = null;
  try { store = window.localStorage; window.sessionStorage.getItem("x"); } catch (e) { store = null; }
  if (store) {
    var pending = window.sessionStorage.getItem("ckb-pending-draft");
    if (pending) {
      if (document.querySelector(".flash-success")) store.removeItem(DRAFT + pending);
      window.sessionStorage.removeItem("ckb-pending-draft");
    }
  }
  document.querySelectorAll("form[data-draft-key]").forEach(function (form) {
    if (!store) return;
    var key = DRAFT + form.getAttribute("data-draft-key");
    var fields = Array.prototype.filter.call(form.elements, function (el) {
      return el.name && el.name !== "csrfmiddlewaretoken" && el.type !== "submit" && el.type !== "button" &&
        el.type !== "radio" && el.type !== "checkbox";
    });
    function values() {
      var out = {};
      fields.forEach(function (el) { out[el.name] = el.value; });
      return out;
    }
    var initial = JSON.stringify(values());
    var timer = null;
    function save() {
      var now = JSON.stringify(values());
      if (now === initial) store.removeItem(key);
      else store.setItem(key, JSON.stringify({ values: values(), at: Date.now() }));
    }
    form.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(save, 400); });
    form.addEventListener("change", function () { clearTimeout(timer); timer = setTimeout(save, 400); });
    form.addEventListener("submit", function (event) {
      clearTimeout(timer);
      if (event.submitter && event.submitter.id === "switch-kind") {
        // The text moves to the editor of the other kind, which keeps its own draft.
        store.removeItem(key);
        return;
      }
      save();
      window.sessionStorage.setItem("ckb-pending-draft", form.getAttribute("data-draft-key"));
    });
    // Offer a draft that differs from what the page shows.
    var draft = null;
    try { draft = JSON.parse(store.getItem(key) || "null"); } catch (e) { draft = null; }
    if (draft && Date.now() - draft.at > DRAFT_DAYS * 86400000) { store.removeItem(key); draft = null; }
    var banner = document.getElementById("draft-banner");
    if (!draft || !banner || JSON.stringify(draft.values) === initial) return;
    var minutes = Math.round((Date.now() - draft.at) / 60000);
    banner.querySelector("[data-draft-age]").textContent =
      minutes < 1 ? "just now" : minutes < 120 ? minutes + " minutes ago" : new Date(draft.at).toLocaleString();
    banner.hidden = false;
    banner.querySelector("[data-draft-restore]").addEventListener("click", function () {
      fields.forEach(function (el) {
        if (Object.prototype.hasOwnProperty.call(draft.values, el.name)) el.value = draft.values[el.name];
      });
      // The preview follows the restored text.
      var body = form.querySelector("textarea[name=body]");
      if (body) body.dispatchEvent(new Event("input", { bubbles: true }));
      banner.hidden = true;
    });
    banner.querySelector("[data-draft-discard]").addEventListener("click", function () {
      store.removeItem(key);
      banner.hidden = true;
    });
  });

  // Logging out forgets the drafts kept in this browser (it may be a shared computer).
  document.querySelectorAll('form[action$="/logout/"]').forEach(function (form) {
    form.addEventListener("submit", function () {
      if (!store) return;
      Object.keys(store).forEach(function (name) { if (name.indexOf(DRAFT) === 0) store.removeItem(name); });
    });
  });

  // Leaving the editor with changes that were not sent asks first (the draft is kept anyway).
  document.querySelectorAll("form[data-draft-key]").forEach(function (form) {
    var start = new FormData(form);
    function dirty() {
      var now = new FormData(form);
      var changed = false;
      now.forEach(function (value, name) { if (start.get(name) !== value) changed = true; });
      return changed;
    }
    window.addEventListener("beforeunload", function (event) {
      if (!form.dataset.submitting && dirty()) { event.preventDefault(); event.returnValue = ""; }
    });
  });

  // After a kind switch (a POST), the address bar shows the editor for that kind.
  document.querySelectorAll("form[data-canonical-url]").forEach(function (form) {
    var url = form.getAttribute("data-canonical-url");
    if (window.location.pathname + window.location.search !== url) window.history.replaceState(null, "", url);
  });

  // Tag suggestions add themselves to the comma-separated tags field. A click moves on to the
  // field; from the keyboard, focus stays on the chip so the next one is an arrow key away.
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
      input.dispatchEvent(new Event("input", { bubbles: true }));
      if (event.detail !== 0) input.focus();
    });
  });

  // A group of buttons marked data-roving (the tag chips) is one Tab stop, as in the WAI-ARIA
  // toolbar pattern: only the current button has tabindex 0, and the arrow keys, Home and End
  // move between them.
  document.querySelectorAll("[data-roving]").forEach(function (group) {
    function items() { return Array.prototype.slice.call(group.querySelectorAll("button")); }
    function current(button) {
      items().forEach(function (item) { item.tabIndex = item === button ? 0 : -1; });
    }
    group.addEventListener("keydown", function (event) {
      var list = items();
      var index = list.indexOf(document.activeElement);
      if (index === -1) return;
      var next = null;
      if (event.key === "ArrowRight" || event.key === "ArrowDown") next = list[(index + 1) % list.length];
      else if (event.key === "ArrowLeft" || event.key === "ArrowUp") next = list[(index - 1 + list.length) % list.length];
      else if (event.key === "Home") next = list[0];
      else if (event.key === "End") next = list[list.length - 1];
      if (!next) return;
      event.preventDefault();
      current(next);
      next.focus();
    });
    group.addEventListener("focusin", function (event) {
      if (event.target.closest("button")) current(event.target.closest("button"));
    });
  });

  // A counter next to a long text's label appears near its limit (counted as the server counts:
  // characters, not UTF-16 units) and says by how much the text is over it.
  document.querySelectorAll("[data-char-count-for]").forEach(function (counter) {
    var field = document.getElementById(counter.getAttribute("data-char-count-for"));
    var max = parseInt(counter.getAttribute("data-max-chars"), 10);
    if (!field || !max) return;
    function length(text) {
      var n = 0;
      for (var i = 0; i < text.length; i++) {
        var code = text.charCodeAt(i);
        if (code < 0xdc00 || code > 0xdfff) n++;  // a low surrogate ends a character already counted
      }
      return n;
    }
    var pending = false;
    function update() {
      pending = false;
      var n = length(field.value);
      var near = n >= max * 0.9;
      counter.hidden = !near;
      counter.classList.toggle("is-over", n > max);
      if (!near) { counter.textContent = ""; return; }
      counter.textContent = n.toLocaleString("en-US") + " / " + max.toLocaleString("en-US") + " characters" +
        (n > max ? " · " + (n - max).toLocaleString("en-US") + " over the limit" : "");
    }
    field.addEventListener("input", function () {
      if (!pending) { pending = true; window.requestAnimationFrame(update); }
    });
    update();
  });

  // A form that came back with errors shows the first one: scrolled into view (a message under a
  // long text area would otherwise sit off-screen) and its field focused.
  (function () {
    var first = document.querySelector(
      "main .form-error:not(.form-error-summary), main .field.has-error, main [aria-invalid=true]"
    );
    if (!first) return;
    var field = first.closest(".field") || first;
    var control = first.matches("input, select, textarea") ? first :
      document.querySelector("main .has-error input, main .has-error select, main .has-error textarea, main [aria-invalid=true]");
    var message = field.querySelector(".errorlist") || first;
    var box = message.getBoundingClientRect();
    if (box.top < 60 || box.bottom > window.innerHeight) message.scrollIntoView({ block: "center" });
    if (control && !first.matches(".form-error")) control.focus({ preventScroll: true });
  })();

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
    // Enter applies the filters from a select or a checkbox too, not only from a text box.
    form.addEventListener("keydown", function (event) {
      var tag = (event.target.tagName || "").toLowerCase();
      if (event.key !== "Enter" || event.isComposing || !(tag === "select" || event.target.type === "checkbox")) return;
      event.preventDefault();
      form.requestSubmit();
    });
    // On a phone the filters fold behind a button (which says how many are set), so the first
    // records are on the first screen. Without this script they are simply always shown.
    var toggle = form.querySelector("[data-filters-toggle]");
    var row = toggle && document.getElementById(toggle.getAttribute("aria-controls"));
    if (!row) return;
    var set = Array.prototype.filter.call(row.querySelectorAll("select, input"), function (el) {
      if (el.name === "sort") return false;
      return el.type === "checkbox" ? el.checked : !!el.value;
    }).length;
    toggle.querySelector("[data-filters-count]").textContent = set ? " (" + set + " set)" : "";
    form.classList.add("is-collapsible");
    toggle.addEventListener("click", function () {
      var open = toggle.getAttribute("aria-expanded") !== "true";
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
      form.classList.toggle("is-open", open);
      if (open) { var firstControl = row.querySelector("select, input"); if (firstControl) firstControl.focus(); }
    });
  });
})();
