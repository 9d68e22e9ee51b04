// The page a PPAP notice links to: #unlock/<job id>/<key>. A mail recipient (no token)
// enters the password of a held zip, 7z or PDF; the server disarms it and mails it to
// the recipients (never a download here: the link may have been forwarded).
import { t, onLangChange } from "./i18n.js";
import * as api from "./api.js";
import { errorText } from "./report.js";

const POLL_MS = 1000;
const LINK = /^#unlock\/([^/]+)\/([^/]+)$/;

let link = null;     // {id, key}
let view = null;     // the server's answer (HeldFile), or null
let failure = null;  // ApiError of the last call, or null
let wrong = false;   // the last password was wrong
let empty = false;   // nothing was typed
let busy = false;
let timer = null;
let announce = () => {};

function byId(id) {
  return document.getElementById(id);
}

/** The job id and key of a PPAP link in the address, or null. */
export function linkInAddress() {
  const m = LINK.exec(window.location.hash);
  if (!m) return null;
  try {
    return { id: decodeURIComponent(m[1]), key: decodeURIComponent(m[2]) };
  } catch {
    return null;
  }
}

function statusText() {
  if (failure && failure.status === 404) return t("ppap.invalid");
  if (failure && !view) return errorText(failure);
  if (!view) return t("ppap.loading");
  const name = view.name;
  const where = view.delivery === "folder" ? ".folder" : ""; // mail (PPAP) or a drop folder
  if (view.state === "held") return t(`ppap.held${where}`, { name });
  if (view.state === "queued" || view.state === "running") return t("ppap.running", { name });
  if (view.verdict === "clean" || view.verdict === "disarmed" || view.verdict === "released") {
    return t(`ppap.delivered${where}`, { name });
  }
  return t("ppap.blocked", { name });
}

function render() {
  if (!link) return;
  const status = byId("unlock-status");
  status.textContent = statusText();
  byId("unlock-where").textContent = t(view && view.delivery === "folder"
    ? "ppap.mail.folder" : "ppap.mail");
  const delivered = view && ["clean", "disarmed", "released"].includes(view.verdict);
  const pending = view && ["held", "queued", "running"].includes(view.state);
  status.classList.toggle("error", !!((failure && !view) || (view && !pending && !delivered)));
  const form = byId("unlock-form");
  form.hidden = !(view && view.state === "held");
  const left = byId("unlock-left");
  left.textContent = view && view.state === "held"
    ? t("ppap.left", { n: view.password_attempts_left }) : "";
  const error = byId("unlock-error");
  const message = wrong ? t("ppap.wrong") : empty ? t("job.unlock.empty")
    : failure && view ? errorText(failure) : "";
  error.hidden = !message;
  error.textContent = message;
  const input = byId("unlock-password");
  if (message) input.setAttribute("aria-invalid", "true");
  else input.removeAttribute("aria-invalid");
  input.disabled = busy;
  const button = byId("unlock-submit");
  button.disabled = busy;
  button.textContent = t(busy ? "ppap.busy" : "ppap.submit");
}

async function load() {
  clearTimeout(timer);
  timer = null;
  const current = link;
  try {
    view = await api.heldFile(current.id, current.key);
    failure = null;
  } catch (err) {
    failure = err;
  }
  if (current !== link) return; // left the link meanwhile
  render();
  if (view && (view.state === "queued" || view.state === "running")) {
    timer = setTimeout(load, POLL_MS);
  }
}

async function submit() {
  const input = byId("unlock-password");
  const password = input.value;
  wrong = false;
  empty = !password;
  if (empty) {
    render();
    input.focus();
    return;
  }
  busy = true;
  failure = null;
  render();
  const before = view;
  try {
    view = await api.unlockHeldFile(link.id, link.key, password);
  } catch (err) {
    failure = err;
    if (err.status === 404) view = null;
  } finally {
    input.value = ""; // not kept in the page
    busy = false;
  }
  wrong = !failure && view && view.state === "held" && before && before.state === "held";
  render();
  if (wrong) {
    announce(t("ppap.wrong"));
    input.focus();
    return;
  }
  announce(statusText());
  byId("unlock-h").focus();
  if (view && (view.state === "queued" || view.state === "running")) {
    timer = setTimeout(load, POLL_MS);
  }
}

/** Show the link's page instead of sign-in. */
export function showUnlock(found) {
  link = found;
  view = null;
  failure = null;
  wrong = false;
  empty = false;
  byId("signin").hidden = true;
  byId("workspace").hidden = true;
  byId("signout").hidden = true;
  byId("who").hidden = true;
  byId("unlock").hidden = false;
  render();
  byId("unlock-h").focus();
  return load();
}

export function hideUnlock() {
  clearTimeout(timer);
  timer = null;
  link = null;
  byId("unlock").hidden = true;
}

export function initUnlock({ say, leave }) {
  announce = say;
  byId("unlock-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    submit();
  });
  byId("unlock-leave").addEventListener("click", () => {
    history.replaceState(null, "", window.location.pathname + window.location.search);
    hideUnlock();
    leave();
  });
  onLangChange(render);
}
