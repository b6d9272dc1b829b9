// GT Mailer: solves the sign-up form's proof-of-work challenge (ALTCHA protocol v1) before the
// form is posted: find n with SHA-256(salt + n) == challenge. No third party, no cookies.
(function () {
  "use strict";
  var field = document.querySelector("input[name=altcha][data-challenge]");
  if (!field || !window.crypto || !window.crypto.subtle) { return; }
  var form = field.form;
  var spec = JSON.parse(field.getAttribute("data-challenge"));
  var encoder = new TextEncoder();

  function hex(buffer) {
    var bytes = new Uint8Array(buffer), out = "";
    for (var i = 0; i < bytes.length; i++) { out += bytes[i].toString(16).padStart(2, "0"); }
    return out;
  }

  async function solve() {
    for (var n = 0; n <= spec.maxnumber; n++) {
      var digest = await crypto.subtle.digest("SHA-256", encoder.encode(spec.salt + n));
      if (hex(digest) === spec.challenge) {
        return btoa(JSON.stringify({algorithm: spec.algorithm, challenge: spec.challenge,
                                    number: n, salt: spec.salt, signature: spec.signature}));
      }
    }
    return "";
  }

  var solving = solve().then(function (value) { field.value = value; return value; });
  form.addEventListener("submit", function (event) {
    if (field.value) { return; }
    event.preventDefault();
    var button = form.querySelector("button[type=submit]");
    if (button) { button.disabled = true; }
    solving.then(function () { form.submit(); });
  });
})();
