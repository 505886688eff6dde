// Gatehouse passkeys: the provider's one script (served as /static/passkeys.js).
//
// A button with data-passkey="create" or "get" runs a WebAuthn ceremony: it posts the form's
// CSRF token (and data-purpose) to data-options, hands the JSON options it gets back to
// navigator.credentials, writes the authenticator's answer as JSON into the form's
// "credential" field and submits the form. The server checks everything; this only carries
// bytes between the server and the browser's WebAuthn API (base64url in JSON, ArrayBuffers
// in the API), written out by hand so that browsers without the Level 3 JSON helpers work.
"use strict";
(function () {
  function decode(text) {
    const base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    const padded = base64 + "===".slice((base64.length + 3) % 4);
    return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0)).buffer;
  }

  function encode(buffer) {
    let binary = "";
    for (const byte of new Uint8Array(buffer)) {
      binary += String.fromCharCode(byte);
    }
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function withIds(list) {
    return (list || []).map((c) => Object.assign({}, c, { id: decode(c.id) }));
  }

  function creationOptions(o) {
    return Object.assign({}, o, {
      challenge: decode(o.challenge),
      user: Object.assign({}, o.user, { id: decode(o.user.id) }),
      excludeCredentials: withIds(o.excludeCredentials),
    });
  }

  function requestOptions(o) {
    return Object.assign({}, o, {
      challenge: decode(o.challenge),
      allowCredentials: withIds(o.allowCredentials),
    });
  }

  function registration(credential) {
    const r = credential.response;
    return {
      id: credential.id,
      rawId: encode(credential.rawId),
      type: credential.type,
      response: {
        clientDataJSON: encode(r.clientDataJSON),
        attestationObject: encode(r.attestationObject),
        transports: r.getTransports ? r.getTransports() : [],
      },
      extensions: credential.getClientExtensionResults(),
    };
  }

  function assertion(credential) {
    const r = credential.response;
    return {
      id: credential.id,
      rawId: encode(credential.rawId),
      type: credential.type,
      response: {
        clientDataJSON: encode(r.clientDataJSON),
        authenticatorData: encode(r.authenticatorData),
        signature: encode(r.signature),
        userHandle: r.userHandle ? encode(r.userHandle) : null,
      },
      extensions: credential.getClientExtensionResults(),
    };
  }

  function say(button, message) {
    const box = document.getElementById(button.dataset.error);
    if (box) {
      box.textContent = message;
      box.hidden = false;
    }
  }

  async function run(button) {
    const form = button.form;
    if (!window.PublicKeyCredential || !navigator.credentials) {
      say(button, "This browser cannot use passkeys.");
      return;
    }
    const body = new URLSearchParams({ csrf_token: form.elements.csrf_token.value });
    if (button.dataset.purpose) {
      body.set("purpose", button.dataset.purpose);
    }
    // A new passkey's name goes first (the server checks it before the authenticator makes
    // anything); the other fields of a sign-in form (a code) are not this button's.
    const name = form.elements.name;
    if (button.dataset.passkey === "create" && name) {
      if (!name.reportValidity()) {
        return;
      }
      body.set("name", name.value);
    }
    const answer = await fetch(button.dataset.options, {
      method: "POST",
      body,
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    });
    const options = await answer.json().catch(() => ({}));
    if (!answer.ok || !options.publicKey) {
      say(button, options.error || "Passkeys are not available just now. Try again.");
      return;
    }
    let credential;
    if (button.dataset.passkey === "create") {
      credential = await navigator.credentials.create({
        publicKey: creationOptions(options.publicKey),
      });
      form.elements.credential.value = JSON.stringify(registration(credential));
    } else {
      credential = await navigator.credentials.get({
        publicKey: requestOptions(options.publicKey),
      });
      form.elements.credential.value = JSON.stringify(assertion(credential));
    }
    const keep = button.dataset.remember && document.getElementById(button.dataset.remember);
    if (keep && keep.checked && form.elements.remember) {
      form.elements.remember.value = "yes";
    }
    form.submit();
  }

  // The buttons come disabled, so that none is pressed before this script listens; they
  // stay so, with a word why, in a browser without WebAuthn.
  for (const button of document.querySelectorAll("button[data-passkey]")) {
    if (window.PublicKeyCredential && navigator.credentials) {
      button.disabled = false;
    } else {
      say(button, "This browser cannot use passkeys.");
    }
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-passkey]");
    if (!button) {
      return;
    }
    event.preventDefault();
    button.disabled = true;
    run(button)
      .catch((error) => {
        const name = error && error.name;
        say(
          button,
          name === "NotAllowedError"
            ? "No passkey was used (cancelled, timed out, or none for this site)."
            : name === "InvalidStateError"
              ? "This device has a passkey for your account already."
              : "The passkey did not work here. Try again.",
        );
      })
      .finally(() => {
        button.disabled = false;
      });
  });
})();
