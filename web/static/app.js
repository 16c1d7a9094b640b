// The kitefix settings page: connect Buildkite, set up its webhook, and read
// the explanation of every failed job. Plain DOM code, no framework.
//
// It talks to the settings API at window.kitefix.apiBase (same origin when
// unset) and, when window.kitefix.getToken is set, sends the token it
// returns as a bearer token (see config.js and README.md).
"use strict";

(() => {
  const cfg = window.kitefix || {};
  const apiBase = String(cfg.apiBase || "").replace(/\/+$/, "");

  // How often the open page looks for new analyses and webhook deliveries:
  // a failed job takes about this long to show up without a reload.
  const REFRESH_SECONDS = cfg.refreshSeconds > 0 ? cfg.refreshSeconds : 30;
  // Analyses per page: enough to fill a screen, small enough to read.
  const PAGE_SIZE = cfg.pageSize > 0 ? cfg.pageSize : 10;
  // A token expiring sooner than this gets a warning: two weeks leaves time
  // to make a new one before failures stop being explained.
  const EXPIRY_WARNING_DAYS = 14;
  const DAY_MS = 24 * 60 * 60 * 1000;

  const REQUIRED_SCOPES = [
    "read_teams", "read_artifacts", "read_builds", "read_job_env", "read_build_logs",
    "read_organizations", "read_pipelines", "read_user", "read_suites",
  ];
  const OPTIONAL_SCOPE = "write_builds";
  const OPTIONAL_DOES = "lets kitefix annotate the build with the explanation and retry a job that failed for infrastructure reasons or a flaky test";
  const DEFAULT_EVENTS = ["ping", "build.finished", "job.finished"];
  const TOKEN_SETTINGS = "https://buildkite.com/user/api-access-tokens";

  // What each error is called; the message from the API says what to do.
  const ERROR_TITLES = {
    malformed_request: "That token could not be read",
    wrong_token_type: "That is not an API access token",
    invalid_token: "Buildkite rejected the token",
    expired_token: "The token has expired",
    missing_scopes: "The token lacks required scopes",
    no_organization_access: "The token reaches no organization",
    buildkite_rate_limited: "Buildkite is rate limiting this token",
    buildkite_unreachable: "Buildkite could not be reached",
    storage_unavailable: "kitefix could not save or read its data",
    unauthorized: "You are signed out",
    not_connected: "Buildkite is not connected",
    conflict: "Another change came first",
    forbidden: "Not allowed",
    unsupported_media_type: "The page sent a request the API does not take",
    not_found: "Not found",
    rate_limited: "Too many requests",
    network: "The settings API could not be reached",
  };
  // Failures that say nothing about the token itself.
  const TRANSIENT = new Set(["buildkite_rate_limited", "buildkite_unreachable", "storage_unavailable", "network", "conflict"]);

  const $ = (id) => document.getElementById(id);

  // el builds an element: el("p", {class: "x"}, "text", child, ...).
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) {
      if (c === undefined || c === null || c === false) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  function when(iso) {
    const d = iso ? new Date(iso) : null;
    return d && !isNaN(d) ? d : null;
  }

  // timeEl shows an RFC 3339 time in the reader's locale and time zone.
  function timeEl(iso, opts) {
    const d = when(iso);
    if (!d) return document.createTextNode(iso || "");
    const text = d.toLocaleString(undefined, opts || { dateStyle: "medium", timeStyle: "short" });
    return el("time", { datetime: iso, title: d.toString() }, text);
  }

  function dateOnly(iso) {
    return timeEl(iso, { dateStyle: "long" });
  }

  // richText renders an API message: web addresses become links and RFC 3339
  // times read in the reader's locale.
  function richText(message) {
    const out = [];
    const re = /(https?:\/\/[^\s<>"]+[^\s<>".,;:)])|(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d))/g;
    let last = 0;
    let m;
    const text = String(message || "");
    while ((m = re.exec(text)) !== null) {
      out.push(text.slice(last, m.index));
      if (m[1]) out.push(el("a", { href: m[1], rel: "noopener noreferrer", target: "_blank" }, m[1]));
      else out.push(timeEl(m[2]));
      last = re.lastIndex;
    }
    out.push(text.slice(last));
    return out;
  }

  function relativeDays(d) {
    const days = Math.round((d.getTime() - Date.now()) / DAY_MS);
    const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
    return rtf.format(days, "day");
  }

  // --- Talking to the API ------------------------------------------------

  // ApiError is a request that got no record back.
  class ApiError extends Error {
    constructor(code, message, status) {
      super(message);
      this.code = code;
      this.status = status;
    }
  }

  function gatewayError(status) {
    switch (status) {
      case 401:
        return { code: "unauthorized", message: "Your sign-in has expired or was not accepted. Sign in again, then reload this page." };
      case 403:
        return { code: "forbidden", message: "This sign-in may not change these settings. Ask an administrator of your organization." };
      case 404:
        return { code: "not_found", message: "The settings API does not know this address. Check the page's apiBase." };
      case 429:
        return { code: "rate_limited", message: "Too many requests right now. Wait a minute and try again." };
      default:
        return { code: "unknown", message: `The settings API answered ${status} with no explanation. Try again in a minute.` };
    }
  }

  async function request(method, path, body) {
    const headers = { Accept: "application/json", "Content-Type": "application/json" };
    if (typeof cfg.getToken === "function") {
      let token;
      try {
        token = await cfg.getToken();
      } catch (e) {
        throw new ApiError("unauthorized", "Sign in again, then reload this page.", 401);
      }
      if (token) headers.Authorization = "Bearer " + token;
    }
    const opts = { method, headers, cache: "no-store", credentials: apiBase ? "omit" : "same-origin" };
    if (body !== undefined) opts.body = JSON.stringify(body);
    let res;
    try {
      res = await fetch(apiBase + path, opts);
    } catch (e) {
      throw new ApiError("network", "Check your network connection, then try again.", 0);
    }
    let data = null;
    try {
      data = await res.json();
    } catch (e) {
      data = null;
    }
    if (!res.ok && !(data && data.error && data.error.code)) {
      // An answer from something in front of the API (a gateway, a proxy).
      data = Object.assign({}, data && data.state ? data : {}, { error: gatewayError(res.status) });
    }
    return { status: res.status, ok: res.ok, data, retryAfter: res.headers.get("Retry-After") };
  }

  // --- The connection ----------------------------------------------------

  const page = {
    rec: null, // the last status record
    secret: "", // the webhook secret, while this page is open
    busy: false,
  };

  // hasStoredToken: a token was verified once and not deleted since. A
  // first connect that failed leaves a failed record with no token stored.
  function hasStoredToken(rec) {
    return (rec.state === "connected" || rec.state === "failed") && !!rec.verified_at;
  }

  function renderBadge(rec) {
    const badge = $("state");
    let text = "Not connected";
    let state = "not_connected";
    if (rec.state === "connected") {
      text = "Connected";
      state = "connected";
    } else if (rec.state === "failed" && hasStoredToken(rec)) {
      text = "Connection failed";
      state = "failed";
    } else if (rec.state === "disconnected") {
      text = "Disconnected";
      state = "disconnected";
    }
    badge.textContent = text;
    badge.dataset.state = state;
  }

  function scopeList(have, missing, caption) {
    // have: the token's scopes when known; missing: required scopes it lacks.
    const marked = have !== null || missing.length > 0;
    const list = el("ul", { class: "scope-list" + (marked ? " marked" : "") });
    for (const s of REQUIRED_SCOPES) {
      const lacks = missing.includes(s) || (have !== null && !have.includes(s));
      list.append(el("li", { class: marked ? (lacks ? "missing" : "granted") : "" },
        el("code", {}, s),
        marked ? el("span", { class: "mark" }, lacks ? "missing" : "granted") : null));
    }
    const optHave = have !== null ? have.includes(OPTIONAL_SCOPE) : null;
    list.append(el("li", { class: "optional" + (optHave === true ? " granted" : optHave === false ? " absent" : "") },
      el("code", {}, OPTIONAL_SCOPE),
      el("span", { class: "mark" }, optHave === true ? "granted, optional" : optHave === false ? "not granted, optional" : "optional"),
      el("span", { class: "does" }, OPTIONAL_DOES)));
    const n = have !== null ? REQUIRED_SCOPES.filter((s) => !missing.includes(s) && have.includes(s)).length
      : REQUIRED_SCOPES.length - missing.length;
    const summary = marked ? `${n} of ${REQUIRED_SCOPES.length} required scopes granted` : `${REQUIRED_SCOPES.length} required scopes, 1 optional`;
    return el("div", { class: "scope-box" }, el("h4", {}, caption + ": " + summary), list);
  }

  // renderScopes shows the checklist in the connect form: the marks follow
  // the token the page last heard about.
  function renderScopes(rec, attemptMissing) {
    const box = $("scopes");
    box.replaceChildren();
    if (attemptMissing.length > 0) {
      // The rejected token's scopes: only the missing ones are known unless
      // the record describes that token.
      const have = rec.state === "failed" && rec.token ? rec.token.scopes || [] : null;
      box.append(scopeList(have, attemptMissing, "The token you tried"));
    } else if (rec.token && (rec.state === "connected" || rec.state === "failed")) {
      box.append(scopeList(rec.token.scopes || [], rec.missing_scopes || [], rec.state === "connected" ? "The connected token" : "The stored token"));
    } else {
      box.append(scopeList(null, [], "The token needs"));
    }
  }

  function renderDetails(rec) {
    const show = hasStoredToken(rec) && !!rec.token;
    $("details").hidden = !show;
    if (!show) return;
    const tok = rec.token;
    $("token-desc").replaceChildren(tok.description || el("span", { class: "muted" }, "No description"),
      tok.uuid ? el("span", { class: "muted small block" }, "UUID " + tok.uuid) : null);
    const user = tok.user || {};
    const owner = $("token-owner");
    owner.replaceChildren();
    if (user.name) owner.append(user.name);
    if (user.email) owner.append(el("span", { class: "muted" }, (user.name ? " " : "") + "<" + user.email + ">"));
    if (!user.name && !user.email) owner.append(el("span", { class: "muted" }, "Not known"));

    const exp = when(tok.expires_at);
    const expiry = $("token-expiry");
    expiry.className = "";
    if (!exp) {
      expiry.replaceChildren("Never");
    } else if (rec.state === "connected" && exp.getTime() - Date.now() < EXPIRY_WARNING_DAYS * DAY_MS) {
      expiry.className = "warn";
      const past = exp.getTime() <= Date.now();
      expiry.replaceChildren(el("strong", {}, past ? "Expired " : "Expires " + relativeDays(exp) + ", "), timeEl(tok.expires_at),
        el("span", { class: "block" }, "Create a new token at ",
          el("a", { href: TOKEN_SETTINGS, rel: "noopener noreferrer", target: "_blank" }, "API Access Tokens"),
          " and connect it below before then, or failures stop being explained."));
    } else {
      expiry.replaceChildren(timeEl(tok.expires_at), " (" + relativeDays(exp) + ")");
    }

    const orgs = rec.organizations || [];
    $("orgs").replaceChildren(orgs.length === 0 ? el("span", { class: "muted" }, "None") :
      el("ul", { class: "inline-list" }, orgs.map((o, i) => el("li", {}, i > 0 ? ", " : "",
        el("a", { href: "https://buildkite.com/" + encodeURIComponent(o.slug), rel: "noopener noreferrer", target: "_blank" }, o.name || o.slug),
        o.name && o.name !== o.slug ? el("span", { class: "muted" }, " (" + o.slug + ")") : null))));

    const caps = rec.capabilities || {};
    const items = [];
    if (rec.state === "connected") {
      items.push(el("li", { class: "yes" }, "Explain failed jobs on this page"));
      items.push(el("li", { class: caps.annotate ? "yes" : "no" }, caps.annotate ? "Annotate builds with the explanation" : "Not annotate builds"));
      items.push(el("li", { class: caps.retry ? "yes" : "no" }, caps.retry ? "Retry flaky and infrastructure failures once" : "Not retry jobs"));
    } else {
      items.push(el("li", { class: "no" }, "Nothing until a working token is connected"));
    }
    const capsEl = $("caps");
    capsEl.replaceChildren(el("ul", { class: "caps" }, items));
    if (rec.state === "connected" && !(caps.annotate && caps.retry)) {
      capsEl.append(el("p", { class: "hint" }, "Add ", el("code", {}, OPTIONAL_SCOPE), " to the token to annotate and retry."));
    }
    const have = tok.scopes || [];
    const lacking = REQUIRED_SCOPES.filter((s) => !have.includes(s));
    $("token-scopes").replaceChildren(
      lacking.length === 0 ? `All ${REQUIRED_SCOPES.length} required` : el("span", { class: "bad" }, "Missing " + lacking.join(", ")),
      "; ", el("code", {}, OPTIONAL_SCOPE), have.includes(OPTIONAL_SCOPE) ? " granted" : " not granted (optional)");
    $("verified").replaceChildren(rec.verified_at ? timeEl(rec.verified_at) : "Never");
  }

  function renderWebhook(rec) {
    const wh = rec.webhook;
    const show = rec.state === "connected" && !!wh && !!wh.url;
    $("webhook").hidden = !show;
    if (!show) return;
    $("webhook-url").textContent = wh.url;
    if (wh.secret) page.secret = wh.secret;
    $("secret").hidden = !page.secret;
    $("secret-value").textContent = page.secret;
    $("secret-absent").hidden = !!page.secret;
    const events = Array.isArray(wh.events) && wh.events.length > 0 ? wh.events : DEFAULT_EVENTS;
    const evEl = $("events");
    evEl.replaceChildren();
    events.forEach((e, i) => {
      if (i > 0) evEl.append(i === events.length - 1 ? " and " : ", ");
      evEl.append(el("code", {}, e));
    });
    const last = $("last-delivery");
    const lastAt = wh.last_delivery_at;
    last.replaceChildren(lastAt && when(lastAt) ? timeEl(lastAt) : "none yet");
    const grace = wh.previous_secret_expires_at || wh.previous_until;
    const graceEl = $("grace");
    const graceOn = !!(grace && when(grace) && when(grace).getTime() > Date.now());
    graceEl.hidden = !graceOn;
    graceEl.replaceChildren(...(graceOn ? ["The previous secret is still accepted until ", timeEl(grace), "."] : []));
  }

  // unknownState: the status could not be read; nothing is offered but
  // the form, and nothing is claimed about a token.
  function unknownState(code) {
    // Signed out, nothing on the page can work until the person signs in.
    $("replace").hidden = code === "unauthorized";
    $("state").textContent = "Status unknown";
    $("state").dataset.state = "unknown";
    $("details").hidden = true;
    $("webhook").hidden = true;
  }

  // renderResult replaces what the last action said.
  function renderResult(node) {
    $("result").replaceChildren(...(node ? [node] : []));
  }

  function errorBox(err, opts) {
    const code = err.code || "unknown";
    const title = (opts && opts.title) || ERROR_TITLES[code] || "Something went wrong";
    const box = el("div", { class: "notice " + ((opts && opts.kind) || "error"), role: "alert", "data-code": code },
      el("p", { class: "notice-title" }, title),
      el("p", {}, richText(err.message || "Try again in a minute.")));
    if (opts && opts.retryAfter) {
      box.append(el("p", {}, `Buildkite asked to wait ${opts.retryAfter} seconds before the next try.`));
    }
    if (code === "unauthorized" && !String(err.message || "").includes("reload")) {
      box.append(el("p", {}, "Sign in again, then reload this page."));
    }
    return box;
  }

  // attemptBox explains a failure that left a working connection in place.
  function attemptBox(rec, fresh) {
    const a = rec.last_attempt;
    const code = a.error.code;
    const transient = TRANSIENT.has(code);
    const lead = transient
      ? ["The last check, ", timeEl(a.at), ", did not finish. The connection still works as last verified."]
      : ["A newer token was not connected (", timeEl(a.at), "). kitefix still uses the connected token below."];
    const box = el("div", { class: "notice warning", role: fresh ? "alert" : null, "data-code": code },
      el("p", { class: "notice-title" }, ERROR_TITLES[code] || "The last attempt failed"),
      el("p", {}, lead),
      el("p", {}, richText(a.error.message)));
    return box;
  }

  // render shows a status record. fresh: it answers the reader's action;
  // retryAfter: the Retry-After the API sent with it.
  function render(rec, fresh, retryAfter) {
    rec = rec || { state: "not_connected" };
    page.rec = rec;
    if (rec.state !== "connected") page.secret = "";
    $("replace").hidden = false;
    renderBadge(rec);
    renderDetails(rec);
    renderWebhook(rec);

    let attemptMissing = [];
    const err = rec.error;
    const la = rec.state === "connected" && rec.last_attempt && rec.last_attempt.error ? rec.last_attempt : null;
    if (la && (!err || err.code === la.error.code)) {
      // One failure, shown once: as the attempt it was.
      renderResult(attemptBox(rec, fresh));
      if (err && err.code === "missing_scopes") attemptMissing = rec.missing_scopes || [];
    } else if (err) {
      renderResult(errorBox(err, { retryAfter }));
      if (err.code === "missing_scopes") attemptMissing = rec.missing_scopes || [];
    } else if (rec.state === "failed" && rec.last_attempt && rec.last_attempt.error) {
      renderResult(errorBox(rec.last_attempt.error));
    } else if (!fresh) {
      renderResult(null);
    }
    renderScopes(rec, attemptMissing);

    const connected = rec.state === "connected";
    const stored = hasStoredToken(rec);
    // Connected, the form to replace the token folds away until wanted.
    const replace = $("replace");
    if (!connected) {
      replace.classList.remove("collapsible");
      replace.open = true;
    } else if (!replace.classList.contains("collapsible")) {
      replace.classList.add("collapsible");
      replace.open = attemptMissing.length > 0;
    } else if (attemptMissing.length > 0) {
      replace.open = true;
    }
    $("connect-h").textContent = connected ? "Replace the token" : stored ? "Connect a new token" : "Connect with an API access token";
    $("connect").textContent = connected ? "Replace token" : "Connect";
    $("verify").hidden = !stored;
    setBusy(page.busy);
    renderEmpty();
  }

  const actionButtons = ["connect", "verify", "rotate", "disconnect", "token-input"];

  // What the button that started an action says while it runs.
  const BUSY_LABELS = { connect: "Checking…", verify: "Checking…", rotate: "Making a secret…", disconnect: "Disconnecting…" };

  function setBusy(busy, label, button) {
    page.busy = busy;
    for (const id of actionButtons) {
      const b = $(id);
      b.disabled = busy;
      if (b.dataset.idle !== undefined && !busy) {
        b.textContent = b.dataset.idle;
        delete b.dataset.idle;
      }
    }
    if (busy && button && BUSY_LABELS[button]) {
      const b = $(button);
      b.dataset.idle = b.textContent;
      b.textContent = BUSY_LABELS[button];
    }
    $("connection").setAttribute("aria-busy", busy ? "true" : "false");
    if (busy && label) {
      renderResult(el("p", { class: "notice busy", role: "status" }, el("span", { class: "spinner", "aria-hidden": "true" }), label));
    }
  }

  // act runs one action with the page busy; a second click while it runs
  // does nothing.
  async function act(button, label, method, path, body, success) {
    if (page.busy) return null;
    setBusy(true, label, button);
    try {
      const res = await request(method, path, body);
      if (res.status === 409 && res.data && res.data.error && res.data.error.code === "conflict") {
        // Someone else's change won: show the connection as it is now,
        // with what happened to this request.
        let now = null;
        try {
          now = await request("GET", "/v1/integrations/buildkite");
        } catch (e) {
          now = null;
        }
        setBusy(false);
        if (now && now.data && now.data.state) render(now.data, false);
        renderResult(errorBox(res.data.error));
        return res;
      }
      setBusy(false);
      if (res.data && res.data.state) {
        render(res.data, true, res.retryAfter);
        if (res.ok && success) renderResult(success(res.data));
      } else if (res.data && res.data.error) {
        renderResult(errorBox(res.data.error, { retryAfter: res.retryAfter }));
      } else {
        renderResult(errorBox({ code: "unknown", message: `The settings API answered ${res.status} with no explanation. Try again in a minute.` }));
      }
      return res;
    } catch (e) {
      setBusy(false);
      renderResult(errorBox({ code: e.code || "network", message: e.message }));
      return null;
    }
  }

  function successBox(...text) {
    return el("div", { class: "notice success", role: "status" }, ...text);
  }

  async function connect(ev) {
    ev.preventDefault();
    if (page.busy) return;
    const input = $("token-input");
    const token = input.value.trim();
    if (!token) {
      renderResult(errorBox({ code: "malformed_request", message: "Paste a Buildkite API access token (it starts with bkua_), then select Connect." }, { title: "No token entered" }));
      input.focus();
      return;
    }
    const res = await act("connect", "Checking the token with Buildkite…", "PUT", "/v1/integrations/buildkite", { token }, (rec) =>
      successBox(el("p", { class: "notice-title" }, "Connected to Buildkite"),
        el("p", {}, "kitefix can reach ", (rec.organizations || []).map((o) => o.name || o.slug).join(", ") || "your organization",
          ". Next: set up the webhook below so kitefix hears about failed jobs.")));
    // The token never stays in the page, whatever the outcome.
    input.value = "";
    if (res && res.ok) {
      $("connection-h").focus();
    } else {
      input.focus();
    }
  }

  async function verify() {
    await act("verify", "Checking the stored token with Buildkite…", "POST", "/v1/integrations/buildkite/verify", undefined, () =>
      successBox(el("p", { class: "notice-title" }, "The token still works"), el("p", {}, "Verified just now.")));
  }

  async function rotate() {
    const ok = await confirmDialog("Make a new webhook secret?",
      "Buildkite must be given the new secret: paste it into the webhook's Token in Buildkite's Notification Services. " +
      "The current secret keeps working for 24 hours more, then only the new one is accepted.",
      "Make a new secret");
    if (!ok) return;
    page.secret = "";
    const res = await act("rotate", "Making a new webhook secret…", "POST", "/v1/integrations/buildkite/webhook-secret", undefined, () =>
      successBox(el("p", { class: "notice-title" }, "New webhook secret made"),
        el("p", {}, "Copy it below and paste it into Buildkite now. The previous secret keeps working for 24 hours more.")));
    if (res && res.ok) $("secret-value").scrollIntoView({ block: "nearest" });
  }

  async function disconnect() {
    const ok = await confirmDialog("Disconnect Buildkite?",
      "kitefix deletes the stored token and webhook secret, stops explaining new failures, and refuses Buildkite's webhook deliveries. " +
      "Explanations already made stay on this page until they age out.",
      "Disconnect", true);
    if (!ok) return;
    const res = await act("disconnect", "Disconnecting…", "DELETE", "/v1/integrations/buildkite", undefined, () =>
      successBox(el("p", { class: "notice-title" }, "Disconnected"),
        el("p", {}, "The stored token and webhook secret were deleted. Remove the webhook in Buildkite's Notification Services too, and revoke the token at ",
          el("a", { href: TOKEN_SETTINGS, rel: "noopener noreferrer", target: "_blank" }, "API Access Tokens"), " if nothing else uses it.")));
    if (res && res.ok) $("connection-h").focus();
  }

  // confirmDialog asks a yes/no question in a modal dialog; Escape and
  // Cancel say no. Focus goes back where it was.
  function confirmDialog(title, text, okLabel, destructive) {
    const dlg = $("confirm");
    const ok = $("confirm-ok");
    const cancel = $("confirm-cancel");
    $("confirm-h").textContent = title;
    $("confirm-text").textContent = text;
    ok.textContent = okLabel;
    ok.className = destructive ? "destructive" : "primary";
    const opener = document.activeElement;
    return new Promise((resolve) => {
      let answered = false;
      const onOk = (ev) => { ev.preventDefault(); finish(true); };
      const onCancel = (ev) => { ev.preventDefault(); finish(false); };
      // A close event queued by an earlier dialog can arrive after this
      // one opened: only a dialog that is closed has been dismissed.
      const onClose = () => { if (!dlg.open) finish(false); };
      function finish(yes) {
        if (answered) return;
        answered = true;
        ok.removeEventListener("click", onOk);
        cancel.removeEventListener("click", onCancel);
        dlg.removeEventListener("close", onClose);
        if (dlg.open) dlg.close();
        if (opener && opener.focus) opener.focus();
        resolve(yes);
      }
      ok.addEventListener("click", onOk);
      cancel.addEventListener("click", onCancel);
      dlg.addEventListener("close", onClose);
      dlg.showModal();
      cancel.focus();
    });
  }

  async function copy(button) {
    const source = $(button.dataset.copy);
    const text = source.textContent;
    let ok = false;
    try {
      await navigator.clipboard.writeText(text);
      ok = true;
    } catch (e) {
      // Fallback for browsers that refuse the clipboard API here.
      const range = document.createRange();
      range.selectNodeContents(source);
      const sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
      try {
        ok = document.execCommand("copy");
      } catch (e2) {
        ok = false;
      }
    }
    const label = button.dataset.label || button.textContent;
    button.dataset.label = label;
    button.textContent = ok ? "Copied" : "Select and copy";
    button.classList.toggle("copied", ok);
    setTimeout(() => {
      button.textContent = label;
      button.classList.remove("copied");
    }, 2500);
  }

  // --- Failures explained ------------------------------------------------

  const failures = {
    items: [], // analyses shown, newest first
    cursor: "", // the next page, when there is one
    loaded: false,
    timer: 0,
    loading: false,
    shown: "", // the items as last drawn
  };

  function renderEmpty() {
    const empty = $("failures-empty");
    if (!failures.loaded || failures.items.length > 0) {
      empty.hidden = true;
      return;
    }
    const rec = page.rec || { state: "not_connected" };
    let lines;
    if (rec.state === "failed" && hasStoredToken(rec)) {
      lines = [el("p", { class: "empty-title" }, "No failures explained yet"),
        el("p", {}, "kitefix cannot read Buildkite while the connection above is failing. Fix it there; each failed job then appears here with its explanation.")];
    } else if (rec.state !== "connected") {
      lines = [el("p", { class: "empty-title" }, "No failures to explain yet"),
        el("p", {}, "Connect Buildkite above. When a job fails, kitefix reads its log and its explanation appears here: what broke, the log lines that show it, and what kitefix did about it.")];
    } else if (!(rec.webhook && rec.webhook.last_delivery_at)) {
      lines = [el("p", { class: "empty-title" }, "Waiting for Buildkite's first webhook"),
        el("p", {}, "kitefix learns about failed jobs through the webhook above. Paste its URL and secret into Buildkite; each failed job then appears here with its explanation, usually within a minute.")];
    } else {
      lines = [el("p", { class: "empty-title" }, "No failed jobs yet"),
        el("p", {}, "Buildkite's webhook is arriving. The next failed job appears here with its explanation; this list refreshes itself while the page is open.")];
    }
    empty.replaceChildren(...lines);
    empty.hidden = false;
  }

  // jobTitle is the job's name without Buildkite's emoji shortcodes
  // (:hammer:), which Buildkite shows as pictures.
  function jobTitle(a) {
    const name = String(a.job_name || "").replace(/:[a-z0-9_+-]+:/g, "").replace(/\s+/g, " ").trim();
    return name || a.step_key || "Job " + String(a.job_id || "").slice(0, 8);
  }

  function link(href, text) {
    return href ? el("a", { href, rel: "noopener noreferrer", target: "_blank" }, text) : null;
  }

  function excerptBlock(x) {
    const lines = String(x.text || "").replace(/\n$/, "").split("\n");
    const start = Number(x.start_line) || 1;
    const width = String(start + lines.length - 1).length;
    const pre = el("pre", { class: "excerpt", "aria-label": `Log lines ${start} to ${start + lines.length - 1}` });
    pre.style.setProperty("--ln-width", width + "ch"); // CSSOM, which the page's CSP allows
    lines.forEach((line, i) => {
      // A long line wraps under itself; its number stays in the gutter.
      pre.append(el("span", { class: "line" }, el("span", { class: "ln", "aria-hidden": "true" }, String(start + i)), el("span", { class: "tx" }, line)));
    });
    return pre;
  }

  function actionsList(a) {
    const acts = a.actions || {};
    const items = [];
    if (acts.annotated) {
      const at = acts.annotated.at;
      items.push(el("li", {}, "Annotated the build", at ? [" ", timeEl(at)] : ""));
    } else if (acts.annotation_skipped) {
      items.push(el("li", {}, "Not annotated: " + acts.annotation_skipped));
    }
    if (acts.retried && acts.retried.job_id) {
      const r = acts.retried;
      items.push(el("li", {}, "Retried the job", r.at ? [" ", timeEl(r.at)] : "", r.why ? ": " + r.why : "",
        a.links && a.links.build ? [" (", link(a.links.build + "#" + r.job_id, "open the retry"), ")"] : ""));
    } else if (acts.retry_skipped) {
      items.push(el("li", {}, "Not retried: " + acts.retry_skipped));
    }
    return items.length ? el("ul", { class: "acts" }, items) : null;
  }

  function analysisItem(a) {
    const state = a.state || "analyzed";
    const category = a.category || (state === "analyzed" ? "unknown" : state);
    const head = el("div", { class: "a-head" },
      el("h3", {}, el("span", { class: "pipeline" }, a.pipeline || "pipeline"),
        " ", link(a.links && a.links.build, "build #" + a.build_number) || "build #" + a.build_number,
        " · ", link(a.links && a.links.job, jobTitle(a)) || jobTitle(a)),
      el("span", { class: "cat", "data-category": category }, category));
    const meta = el("p", { class: "meta muted small" },
      a.org ? a.org + " · " : "",
      a.branch ? ["branch ", el("code", {}, a.branch), " · "] : "",
      a.commit ? ["commit ", el("code", {}, String(a.commit).slice(0, 10)), " · "] : "",
      a.analyzed_at ? ["analyzed ", timeEl(a.analyzed_at)] : "");
    const body = [head, meta];
    if (state === "failed") {
      body.push(el("p", { class: "notice error inline" }, "kitefix could not analyze this job: " + (a.error || "unknown error")));
    } else if (state === "skipped") {
      body.push(el("p", { class: "muted" }, "Skipped: " + (a.reason || a.error || "no reason given")));
    }
    if (a.summary) body.push(el("p", { class: "summary" }, a.summary));
    const ex = Array.isArray(a.excerpts) && a.excerpts.length > 0 ? a.excerpts[0] : null;
    if (ex) body.push(excerptBlock(ex));
    if (Array.isArray(a.failing_tests) && a.failing_tests.length > 0) {
      body.push(el("div", { class: "tests" }, el("h4", {}, "Failing tests"),
        el("ul", {}, a.failing_tests.slice(0, 20).map((t) => el("li", {}, el("code", {}, t.name),
          t.file ? el("span", { class: "muted" }, " " + t.file + (t.line ? ":" + t.line : "")) : null)))));
    }
    if (Array.isArray(a.errors) && a.errors.length > 0) {
      body.push(el("div", { class: "tests" }, el("h4", {}, "Errors"),
        el("ul", {}, a.errors.slice(0, 10).map((x) => el("li", {},
          x.file ? el("code", {}, x.file + (x.line ? ":" + x.line : "") + (x.column ? ":" + x.column : "")) : null,
          x.message ? (x.file ? " " : "") + x.message : null)))));
    }
    const acts = actionsList(a);
    if (acts) body.push(el("div", { class: "actions-taken" }, el("h4", {}, "What kitefix did"), acts));
    const links = [link(a.links && a.links.job, "Open the job in Buildkite"), link(a.links && a.links.build, "Open the build")].filter(Boolean);
    if (links.length) body.push(el("p", { class: "links" }, links.flatMap((l, i) => (i ? [" · ", l] : [l]))));
    return el("li", { class: "analysis", "data-id": a.id || "", "data-state": state }, el("article", {}, body));
  }

  function renderAnalyses() {
    const list = $("analyses");
    const shown = JSON.stringify(failures.items);
    if (failures.shown !== shown) {
      // Keep a keyboard user's place: the same control of the same
      // analysis has the focus after the list is drawn again.
      const active = document.activeElement;
      const li = active && list.contains(active) ? active.closest("li.analysis") : null;
      const controls = (node) => [...node.querySelectorAll("a, button, [tabindex]")];
      const at = li ? { id: li.dataset.id, n: controls(li).indexOf(active) } : null;
      list.replaceChildren(...failures.items.map(analysisItem));
      failures.shown = shown;
      if (at) {
        const again = [...list.children].find((x) => x.dataset.id === at.id);
        const target = again && controls(again)[at.n];
        if (target) target.focus();
      }
    }
    $("more").hidden = !failures.cursor;
    renderEmpty();
  }

  async function loadAnalyses(mode) {
    // mode: "first" replaces the list, "more" appends the next page,
    // "refresh" adds what is new at the top.
    if (failures.loading) return;
    failures.loading = true;
    const status = $("failures-status");
    const more = $("more");
    if (mode === "more") {
      more.disabled = true;
      more.textContent = "Loading older failures…";
    }
    try {
      let path = "/v1/analyses?limit=" + PAGE_SIZE;
      if (mode === "more" && failures.cursor) path += "&cursor=" + encodeURIComponent(failures.cursor);
      const res = await request("GET", path);
      if (res.status === 404 || res.status === 405) {
        // A kitefix without the analyses list has nothing to show yet.
        failures.items = [];
        failures.cursor = "";
        failures.loaded = true;
        renderAnalyses();
        return;
      }
      if (!res.ok || !res.data || !Array.isArray(res.data.analyses)) {
        const err = (res.data && res.data.error) || { code: "unknown", message: `The list could not be loaded (${res.status}). It is tried again in ${REFRESH_SECONDS} seconds.` };
        showFailuresError(err);
        return;
      }
      showFailuresError(null);
      const got = res.data.analyses;
      if (mode === "more") {
        const seen = new Set(failures.items.map((a) => a.id));
        failures.items.push(...got.filter((a) => !seen.has(a.id)));
        failures.cursor = res.data.next_cursor || "";
      } else if (mode === "refresh" && failures.loaded) {
        const fresh = new Set(got.map((a) => a.id));
        const kept = failures.items.filter((a) => !fresh.has(a.id));
        const added = got.filter((a) => !failures.items.some((b) => b.id === a.id)).length;
        if (added >= PAGE_SIZE || (kept.length === 0 && !failures.cursor)) {
          // A whole page is new (there may be more between it and what
          // is shown), or nothing shown is older: start from the top.
          failures.items = got;
          failures.cursor = res.data.next_cursor || "";
        } else {
          // The new ones go on top; what is shown and the next page stay.
          failures.items = [...got, ...kept];
        }
        if (added > 0) status.textContent = added === 1 ? "1 new failure" : added + " new failures";
      } else {
        failures.items = got;
        failures.cursor = res.data.next_cursor || "";
      }
      failures.loaded = true;
      renderAnalyses();
      if (mode !== "refresh" || !status.textContent) {
        status.textContent = "";
      }
      status.dataset.updated = new Date().toISOString();
    } catch (e) {
      showFailuresError({ code: e.code || "network", message: e.message });
    } finally {
      failures.loading = false;
      more.disabled = false;
      more.textContent = "Show older failures";
    }
  }

  function showFailuresError(err) {
    const box = $("failures-error");
    box.hidden = !err;
    box.replaceChildren();
    if (err && err.code === "unauthorized") {
      // The connection above already says so, as an alert.
      box.removeAttribute("role");
      box.append(el("p", {}, "Sign in again to see the failures."));
    } else if (err) {
      box.setAttribute("role", "alert");
      box.append(el("p", { class: "notice-title" }, ERROR_TITLES[err.code] || "The failures could not be loaded"), el("p", {}, richText(err.message)));
    }
  }

  // refresh looks for new analyses and webhook deliveries; it runs only
  // while the page is visible.
  async function refresh() {
    if (document.hidden) return;
    if (!page.busy) {
      try {
        const res = await request("GET", "/v1/integrations/buildkite");
        const changed = res.data && JSON.stringify(res.data) !== JSON.stringify(page.rec);
        if (!page.busy && changed && res.data.state && res.ok) {
          const keep = $("result").firstChild;
          render(res.data, false);
          if (keep && !$("result").firstChild) renderResult(keep);
        }
      } catch (e) {
        // The analyses call below reports a network failure.
      }
    }
    await loadAnalyses("refresh");
  }

  function schedule() {
    clearInterval(failures.timer);
    failures.timer = 0;
    if (!document.hidden) failures.timer = setInterval(refresh, REFRESH_SECONDS * 1000);
  }

  document.addEventListener("visibilitychange", () => {
    schedule();
    if (!document.hidden) refresh();
  });

  // --- Start ---------------------------------------------------------------

  async function start() {
    $("connect-form").addEventListener("submit", connect);
    $("verify").addEventListener("click", verify);
    $("rotate").addEventListener("click", rotate);
    $("disconnect").addEventListener("click", disconnect);
    $("more").addEventListener("click", () => loadAnalyses("more"));
    for (const b of document.querySelectorAll("button.copy")) b.addEventListener("click", () => copy(b));

    renderScopes({ state: "not_connected" }, []);
    try {
      const res = await request("GET", "/v1/integrations/buildkite");
      if (res.data && res.data.state) {
        render(res.data, false, res.retryAfter);
      } else {
        unknownState(res.data && res.data.error && res.data.error.code);
        renderResult(errorBox((res.data && res.data.error) || { code: "unknown", message: `The settings API answered ${res.status}. Reload the page in a minute.` }));
      }
    } catch (e) {
      unknownState();
      renderResult(errorBox({ code: e.code || "network", message: e.message }));
    }
    await loadAnalyses("first");
    schedule();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
