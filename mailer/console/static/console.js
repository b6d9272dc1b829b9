// GT Mailer console: small progressive enhancements (the pages work without them).
// Served from our own origin, so the strict CSP (script-src 'self') allows it.
(function () {
  "use strict";
  // Live preview: after typing stops, render the text in both languages.
  var body = document.querySelector("[data-live-preview]");
  if (body && body.form) {
    var form = body.form;
    var timer = null;
    var submit = function (lang) {
      var button = form.querySelector('[data-preview="' + lang + '"]');
      if (button && form.requestSubmit) { form.requestSubmit(button); }
    };
    // One form has one planned navigation at a time: a second submission in the same task
    // would cancel the first, so the English preview follows a moment later.
    var refresh = function () {
      submit("nl");
      window.setTimeout(function () { submit("en"); }, 200);
    };
    form.addEventListener("input", function (event) {
      // Not the width switch, nor the image fields (they belong to the upload form).
      if (event.target.name === "width" || event.target.form !== form) { return; }
      window.clearTimeout(timer);
      timer = window.setTimeout(refresh, 600);
    });
    if (body.value) { refresh(); }
  }
  // Markdown toolbar: wrap the selection in the button's pattern ("|" marks the selection).
  document.querySelectorAll("[data-console-toolbar] [data-md]").forEach(function (button) {
    button.addEventListener("click", function () {
      var area = document.getElementById("body");
      var parts = button.dataset.md.split("|");
      var start = area.selectionStart, end = area.selectionEnd;
      var chosen = area.value.slice(start, end);
      area.setRangeText(parts[0] + chosen + parts[1], start, end, "end");
      area.focus();
      area.dispatchEvent(new Event("input", { bubbles: true }));
    });
  });
  // Image upload: post the file without leaving the editor, and put the Markdown image where
  // the cursor is. Without this script the form posts and the answer page shows the line.
  var imageForm = document.querySelector("[data-image-form]");
  var area = document.getElementById("body");
  if (imageForm && area && window.fetch && window.FormData) {
    imageForm.addEventListener("submit", function (event) {
      event.preventDefault();
      var result = document.getElementById("image-result");
      var data = new FormData(imageForm);
      fetch(imageForm.action, {
        method: "POST", body: data, credentials: "same-origin",
        headers: { "Accept": "application/json" }
      }).then(function (response) {
        return response.json();
      }).then(function (answer) {
        if (answer.error) {
          result.textContent = answer.error;
          result.className = "error";
          return;
        }
        var start = area.selectionStart, end = area.selectionEnd;
        area.setRangeText("\n" + answer.markdown + "\n", start, end, "end");
        area.dispatchEvent(new Event("input", { bubbles: true }));
        result.textContent = result.dataset.done || answer.markdown;
        result.className = "notice";
        document.getElementById("image").value = "";
      }).catch(function () {
        result.textContent = "?";
        result.className = "error";
      });
    });
  }
})();
