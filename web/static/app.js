// The settings page: talks to the settings API on the same origin.
"use strict";

const api = "/v1/integrations/buildkite";
const $ = (id) => document.getElementById(id);

function show(el, text) {
  el.hidden = !text;
  el.textContent = text || "";
}

function render(rec) {
  const state = $("state");
  state.textContent = (rec.state || "unknown").replace("_", " ");
  state.className = rec.state || "";
  show($("error"), rec.error ? rec.error.message + " (" + rec.error.code + ")" : "");
  const la = rec.last_attempt;
  show($("attempt"), rec.state === "connected" && la && la.error
    ? "The last attempt failed, the connection above still works: " + la.error.message : "");
  const connected = rec.state === "connected" || rec.state === "failed";
  $("details").hidden = !rec.token && !connected;
  if (rec.token) {
    $("token").textContent = (rec.token.description || rec.token.uuid) + " — " + rec.token.user.name;
  } else {
    $("token").textContent = "—";
  }
  $("orgs").textContent = (rec.organizations || []).map((o) => o.name + " (" + o.slug + ")").join(", ") || "—";
  const caps = rec.capabilities || {};
  $("caps").textContent = caps.annotate && caps.retry ? "yes" : "no (add write_builds to the token)";
  $("missing").textContent = (rec.missing_scopes || []).join(", ") || "none";
  $("verified").textContent = rec.verified_at || "—";
  $("webhook-url").textContent = rec.webhook ? rec.webhook.url : "—";
  const secret = rec.webhook && rec.webhook.secret;
  $("secret").hidden = !secret;
  $("secret-value").textContent = secret || "";
  $("verify").disabled = !connected || !rec.token;
  $("rotate").disabled = rec.state !== "connected";
  $("disconnect").disabled = rec.state === "not_connected" || rec.state === "disconnected";
}

async function call(method, path, body) {
  const opts = { method, headers: { Accept: "application/json" } };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  try {
    const res = await fetch(path, opts);
    render(await res.json());
  } catch (e) {
    render({ state: "unknown", error: { code: "network", message: "The settings API could not be reached." } });
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("connect-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const input = $("token-input");
    const token = input.value.trim();
    input.value = "";
    await call("PUT", api, { token });
  });
  $("verify").addEventListener("click", () => call("POST", api + "/verify"));
  $("rotate").addEventListener("click", () => call("POST", api + "/webhook-secret"));
  $("disconnect").addEventListener("click", () => {
    if (confirm("Disconnect Buildkite? The stored token and webhook secret are deleted.")) {
      call("DELETE", api);
    }
  });
  call("GET", api);
});
