// The little behaviour the pages have; they work without it. Loaded as a file: the
// Content-Security-Policy allows no inline script.
(function () {
  "use strict";

  // <form data-confirm="Archive this link?">: ask before sending.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
    }
  });

  // <select data-autosubmit>: apply a filter as soon as it is picked.
  document.addEventListener("change", function (event) {
    var field = event.target;
    if (field.hasAttribute && field.hasAttribute("data-autosubmit") && field.form) {
      field.form.requestSubmit ? field.form.requestSubmit() : field.form.submit();
    }
  });

  // <input data-custom-range>: picking a date makes the period a custom one.
  document.addEventListener("change", function (event) {
    var field = event.target;
    if (field.hasAttribute && field.hasAttribute("data-custom-range") && field.form && field.form.range) {
      field.form.range.value = "custom";
    }
  });

  // <button data-copy="text" hidden>: shown where the clipboard can be written; copies and
  // says so until the next copy. Without it the text beside the button can be selected.
  function showCopyButtons() {
    if (!navigator.clipboard || !window.isSecureContext) {
      return;
    }
    var buttons = document.querySelectorAll("[data-copy][hidden]");
    for (var i = 0; i < buttons.length; i++) {
      buttons[i].hidden = false;
    }
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("[data-copy]") : null;
    if (!button || !navigator.clipboard) {
      return;
    }
    navigator.clipboard.writeText(button.getAttribute("data-copy")).then(function () {
      if (!button.hasAttribute("data-label")) {
        button.setAttribute("data-label", button.textContent);
      }
      button.textContent = "Copied";
      button.classList.add("copied");
      button.setAttribute("aria-live", "polite");
      window.clearTimeout(button.copyTimer);
      button.copyTimer = window.setTimeout(function () {
        button.textContent = button.getAttribute("data-label");
        button.classList.remove("copied");
      }, 2000);
    });
  });

  // <input data-key-from="f-name">: the key follows the name ("Store flyer, Lyon" →
  // store-flyer-lyon) until it is typed in by hand; the server makes the same of a blank key.
  function suggestKey(name) {
    return name.normalize("NFKD").replace(/[\u0300-\u036f]/g, "").toLowerCase()
      .replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 64).replace(/-+$/, "");
  }

  function followNames() {
    var keys = document.querySelectorAll("input[data-key-from]");
    Array.prototype.forEach.call(keys, function (key) {
      var name = document.getElementById(key.getAttribute("data-key-from"));
      if (!name) {
        return;
      }
      var following = key.value === "" || key.value === suggestKey(name.value);
      name.addEventListener("input", function () {
        if (following) {
          key.value = suggestKey(name.value);
        }
      });
      key.addEventListener("input", function () {
        following = key.value === "" || key.value === suggestKey(name.value);
      });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { showCopyButtons(); followNames(); });
  } else {
    showCopyButtons();
    followNames();
  }
})();
