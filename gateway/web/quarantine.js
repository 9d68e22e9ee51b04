// The admin panel: list quarantine, read an entry's report, release or delete it with a
// reason after a confirm step. The server records the approver (the token's name).
import { t, lang, onLangChange } from "./i18n.js";
import * as api from "./api.js";
import {
  el, label, verdictBadge, fillSummary, findingsTable, formatSize, formatTime, errorText,
} from "./report.js";

const PAGE = 25;

// the server's reason in the page's language (reports keep the English one)
function reasonOf(entry) {
  return (lang() === "ja" && entry.reason_ja) || entry.reason || "";
}

let announce = () => {};
let filters = { state: "", origin: "", offset: 0 };
let page = null;        // last list answer {entries, total, limit, offset}
let pageError = null;
let current = null;     // the open entry (GET /v1/quarantine/{id})
let currentError = null;
let lastMessage = null; // {key, name} of the last finished action, re-rendered on language change
let openerId = "";      // the row whose "open" button opened the detail view
let $ = {};

function byId(id) {
  return document.getElementById(id);
}

// ------------------------------------------------------------------ list

function rowFor(item) {
  const open = el("button", {
    type: "button", class: "secondary small", text: t("q.open"),
    "aria-label": t("q.open.label", { name: item.name || item.job_id }),
    dataset: { job: item.job_id },
  });
  open.addEventListener("click", () => openEntry(item.job_id));
  return el("tr", { dataset: { job: item.job_id } },
    el("td", { text: formatTime(item.created) }),
    el("td", { class: "name", text: item.name || "" }),
    el("td", { text: label("origin", item.origin) }),
    el("td", {}, verdictBadge(item.verdict)),
    el("td", { class: "reason", text: reasonOf(item) }),
    el("td", { text: label("qstate", item.state) }),
    el("td", { class: "num", text: formatSize(item.size) }),
    el("td", {}, open));
}

function renderList() {
  $.error.hidden = !pageError;
  $.error.textContent = pageError ? errorText(pageError) : "";
  const items = (page && (page.entries || page.items)) || [];
  const total = page ? Number(page.total ?? items.length) : 0;
  $.rows.replaceChildren(...items.map(rowFor));
  if (!page) {
    $.count.textContent = pageError ? "" : t("q.loading");
  } else if (!items.length) {
    $.count.textContent = t("q.empty");
  } else {
    $.count.textContent = t("q.count", {
      total, from: filters.offset + 1, to: filters.offset + items.length,
    });
  }
  $.prev.disabled = filters.offset <= 0;
  $.next.disabled = !page || filters.offset + items.length >= total;
}

export async function loadList() {
  page = null;
  pageError = null;
  renderList();
  try {
    page = await api.listQuarantine({ ...filters, limit: PAGE });
  } catch (err) {
    if (err.status === 401) return;
    pageError = err;
  }
  renderList();
}

// ------------------------------------------------------------------ one entry

function entryOf(data) {
  return (data && (data.entry || data)) || {};
}

function metaRow(key, value) {
  if (value === undefined || value === null || value === "") return [];
  return [el("dt", { text: t(key) }), el("dd", { text: String(value) })];
}

function destinationRows(dest) {
  const rows = [];
  for (const [key, value] of Object.entries(dest || {})) {
    const text = Array.isArray(value) ? value.join(", ") : String(value);
    rows.push(...metaRow(`dest.${key}`, text));
  }
  return rows;
}

function historyList(history) {
  if (!history || !history.length) return null;
  const items = history.map((a) => el("li", {},
    el("span", { class: "when", text: formatTime(a.at) }), " ",
    el("strong", { text: label("hist", a.action) }), " — ",
    el("span", { text: t("q.hist.by", { actor: a.actor }) }), " — ",
    el("span", { text: t("q.confirm.reason", { reason: a.reason }) })));
  return el("ol", { class: "history" }, ...items);
}

function renderDetail() {
  const entry = entryOf(current);
  const name = entry.name || entry.job_id || "";
  $.detailH.textContent = current ? t("q.detail.heading", { name }) : t("q.loading");
  const status = $.detailStatus;
  status.replaceChildren();
  if (current) {
    status.append(verdictBadge(entry.verdict), " ", el("span", { class: "badge state",
      text: label("qstate", entry.state) }));
  }
  $.detailMsg.hidden = !(lastMessage || currentError);
  $.detailMsg.classList.toggle("error", !!currentError);
  $.detailMsg.textContent = currentError ? errorText(currentError)
    : lastMessage ? t(lastMessage.key, { name: lastMessage.name }) : "";
  fillSummary($.summary, current && current.summary);
  $.findings.replaceChildren(current ? findingsTable(current.report) : "");
  const hist = historyList(entry.history);
  $.meta.replaceChildren(
    ...metaRow("q.detail.job", entry.job_id),
    ...metaRow("q.col.created", formatTime(entry.created)),
    ...metaRow("q.col.origin", label("origin", entry.origin)),
    ...destinationRows(entry.destination),
    ...metaRow("q.detail.policy", entry.policy),
    ...metaRow("q.col.reason", reasonOf(entry)),
    ...metaRow("q.col.size", formatSize(entry.size)),
    ...metaRow("q.detail.sha256", entry.sha256),
    ...metaRow("q.detail.expires", formatTime(entry.expires)),
    ...(hist ? [el("dt", { text: t("q.detail.history") }), el("dd", {}, hist)] : []));
  const state = entry.state;
  const releasable = entry.releasable !== undefined ? !!entry.releasable : state === "held";
  $.releaseForm.hidden = !current || !releasable;
  $.deleteForm.hidden = !current || state === "deleted";
  $.actions.hidden = $.releaseForm.hidden && $.deleteForm.hidden;
}

async function fetchEntry(id) {
  try {
    current = await api.quarantineEntry(id);
    currentError = null;
  } catch (err) {
    if (err.status === 401) return false;
    currentError = err;
  }
  renderDetail();
  return true;
}

async function openEntry(id) {
  openerId = id;
  current = null;
  currentError = null;
  lastMessage = null;
  for (const field of [$.releaseReason, $.releasePolicy, $.deleteReason]) field.value = "";
  for (const box of [$.releaseError, $.deleteError]) box.hidden = true;
  $.listView.hidden = true;
  $.detailView.hidden = false;
  renderDetail();
  $.detailH.focus();
  await fetchEntry(id);
}

function backToList() {
  $.detailView.hidden = true;
  $.listView.hidden = false;
  current = null;
  loadList().then(() => {
    const again = $.rows.querySelector(`button[data-job="${CSS.escape(openerId)}"]`);
    (again || $.listH).focus();
  });
}

// ------------------------------------------------------------------ actions

/** Ask in a modal dialog; resolves true when the admin confirms. */
function confirmAction(message, reason, policy) {
  const dialog = $.dialog;
  byId("confirm-msg").textContent = message;
  byId("confirm-reason").textContent = t("q.confirm.reason", { reason });
  const pol = byId("confirm-policy");
  pol.hidden = !policy;
  pol.textContent = policy ? t("q.confirm.policy", { policy }) : "";
  return new Promise((resolve) => {
    dialog.returnValue = "cancel";
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.showModal();
    byId("confirm-no").focus(); // the safe choice has the focus
  });
}

async function act(kind) {
  const entry = entryOf(current);
  const name = entry.name || entry.job_id;
  const reasonField = kind === "release" ? $.releaseReason : $.deleteReason;
  const errorBox = kind === "release" ? $.releaseError : $.deleteError;
  const reason = reasonField.value.trim();
  const policy = kind === "release" ? $.releasePolicy.value.trim() : "";
  errorBox.hidden = true;
  reasonField.removeAttribute("aria-invalid");
  if (!reason) {
    errorBox.textContent = t("q.reason.empty");
    errorBox.hidden = false;
    reasonField.setAttribute("aria-invalid", "true");
    reasonField.focus();
    return;
  }
  const ok = await confirmAction(t(`q.${kind}.confirm`, { name }), reason, policy);
  if (!ok) {
    reasonField.focus();
    return;
  }
  try {
    if (kind === "release") await api.releaseEntry(entry.job_id, reason, policy);
    else await api.deleteEntry(entry.job_id, reason);
  } catch (err) {
    if (err.status === 401) return;
    errorBox.textContent = errorText(err);
    errorBox.hidden = false;
    reasonField.focus();
    return;
  }
  reasonField.value = "";
  lastMessage = { key: `q.${kind}.done`, name };
  announce(t(lastMessage.key, { name }));
  await fetchEntry(entry.job_id);
  $.detailH.focus();
}

// ------------------------------------------------------------------ wiring

export function initQuarantine({ say }) {
  announce = say;
  $ = {
    listView: byId("q-list-view"), detailView: byId("q-detail-view"),
    listH: byId("q-h"), rows: byId("q-rows"), count: byId("q-count"), error: byId("q-error"),
    prev: byId("q-prev"), next: byId("q-next"), state: byId("q-state"), origin: byId("q-origin"),
    detailH: byId("q-detail-h"), detailStatus: byId("q-detail-status"),
    detailMsg: byId("q-detail-msg"), summary: byId("q-summary"), findings: byId("q-findings"),
    meta: byId("q-meta"), actions: byId("q-actions"),
    releaseForm: byId("release-form"), releaseReason: byId("release-reason"),
    releasePolicy: byId("release-policy"), releaseError: byId("release-error"),
    deleteForm: byId("delete-form"), deleteReason: byId("delete-reason"),
    deleteError: byId("delete-error"), dialog: byId("confirm"),
  };
  byId("q-filters").addEventListener("submit", (ev) => {
    ev.preventDefault();
    filters = { state: $.state.value, origin: $.origin.value, offset: 0 };
    loadList();
  });
  for (const select of [$.state, $.origin]) {
    select.addEventListener("change", () => {
      filters = { state: $.state.value, origin: $.origin.value, offset: 0 };
      loadList();
    });
  }
  $.prev.addEventListener("click", () => {
    filters.offset = Math.max(0, filters.offset - PAGE);
    loadList();
  });
  $.next.addEventListener("click", () => {
    filters.offset += PAGE;
    loadList();
  });
  byId("q-back").addEventListener("click", backToList);
  $.releaseForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    act("release");
  });
  $.deleteForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    act("delete");
  });
  onLangChange(() => {
    renderList();
    if (!$.detailView.hidden) renderDetail();
  });
}

/** Back to a fresh list (on sign-in, or when the tab is opened). */
export function resetQuarantine() {
  current = null;
  page = null;
  pageError = null;
  lastMessage = null;
  if ($.detailView) {
    $.detailView.hidden = true;
    $.listView.hidden = false;
  }
}
