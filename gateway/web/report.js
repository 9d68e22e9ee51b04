// Showing what the server says: verdicts, summaries, findings, sizes, dates, errors.
import { t, lang, has } from "./i18n.js";

let kindLabels = {};

/** Load the ja/en label of every finding kind (generated from gateway/kinds.py). */
export async function loadKinds() {
  try {
    const resp = await fetch("/static/kinds.json", { cache: "no-cache" });
    if (resp.ok) kindLabels = await resp.json();
  } catch {
    kindLabels = {}; // kind ids are shown as they are
  }
}

export function kindLabel(kind) {
  const meta = kindLabels[kind];
  return meta ? meta[lang()] || meta.ja : kind;
}

export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key in node && typeof value !== "string") node[key] = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

/** A label for a value the server sends (verdict, state, origin), or the value itself. */
export function label(prefix, value) {
  if (value === null || value === undefined || value === "") return "";
  const key = `${prefix}.${value}`;
  return has(key) ? t(key) : String(value);
}

/** A badge for `verdict`; `node` (an existing badge) keeps its other classes. */
export function verdictBadge(verdict, node = el("span", { class: "badge" })) {
  for (const cls of Array.from(node.classList)) {
    if (cls.startsWith("verdict-")) node.classList.remove(cls);
  }
  node.classList.add("badge", `verdict-${verdict || "pending"}`);
  node.textContent = label("verdict", verdict || "pending");
  return node;
}

/** The summary lines in the page's language ({ja: [...], en: [...]} from the API). */
export function summaryLines(summary) {
  if (!summary) return [];
  const lines = summary[lang()] || summary.ja || summary.en || [];
  return Array.isArray(lines) ? lines : [];
}

export function fillSummary(list, summary) {
  list.replaceChildren(...summaryLines(summary).map((line) => el("li", { text: line })));
}

/** Every finding of a report (schema v1) with the item it was found in. */
export function findingsOf(report) {
  const rows = [];
  for (const item of (report && report.items) || []) {
    for (const f of item.findings || []) rows.push(f);
    if (item.error && !(item.findings || []).some((f) => f.action === "blocked" || f.action === "failed")) {
      rows.push({ kind: "", action: item.verdict, location: item.location, severity: "", detail: item.error });
    }
  }
  return rows;
}

/** A table of findings: kind label, action, location, severity, detail. */
export function findingsTable(report) {
  const rows = findingsOf(report);
  if (!rows.length) return el("p", { class: "hint", text: t("job.nofindings") });
  const head = el("tr", {},
    ...["finding.kind", "finding.action", "finding.location", "finding.severity", "finding.detail"]
      .map((k) => el("th", { scope: "col", text: t(k) })));
  const body = rows.map((f) => el("tr", {},
    el("td", { text: f.kind ? kindLabel(f.kind) : "" , title: f.kind || undefined }),
    el("td", { text: label("action", f.action) }),
    el("td", { class: "location", text: f.location || "" }),
    el("td", { text: label("severity", f.severity) }),
    el("td", { class: "detail", text: f.detail || "" })));
  return el("div", { class: "table-wrap" },
    el("table", { class: "findings" }, el("thead", {}, head), el("tbody", {}, ...body)));
}

export function formatSize(bytes) {
  if (bytes === null || bytes === undefined || Number.isNaN(Number(bytes))) return "";
  const n = Number(bytes);
  const fmt = (v) => new Intl.NumberFormat(lang(), { maximumFractionDigits: 1 }).format(v);
  if (n < 1024) return t("size.B", { n: fmt(n) });
  if (n < 1024 ** 2) return t("size.KB", { n: fmt(n / 1024) });
  if (n < 1024 ** 3) return t("size.MB", { n: fmt(n / 1024 ** 2) });
  return t("size.GB", { n: fmt(n / 1024 ** 3) });
}

export function formatTime(iso) {
  if (!iso) return "";
  const when = new Date(iso);
  if (Number.isNaN(when.getTime())) return String(iso);
  return new Intl.DateTimeFormat(lang() === "ja" ? "ja-JP" : "en-GB", {
    dateStyle: "medium", timeStyle: "short",
  }).format(when);
}

/** A message for a failed API call, in the page's language. */
export function errorText(err) {
  const status = err && err.status !== undefined ? err.status : -1;
  const own = err && err.messages ? err.messages[lang()] : "";
  let base;
  if (status === 0) base = t("error.network");
  else if (status === 413) base = t("error.too_large");
  else if (status === 415) base = t("error.unsupported");
  else if (status === 400 || status === 422) base = t("error.bad_request");
  else if (status === 403) base = t("error.forbidden");
  else if (status === 404) base = t("error.not_found");
  else if (status === 409) base = t("error.conflict");
  else if (status === 503 || status === 429) {
    base = err.retryAfter ? t("error.busy", { s: err.retryAfter }) : t("error.busy_now");
  } else base = t("error.server", { status });
  const text = own && own !== base ? `${base} ${own}` : base;
  return err && err.allowed ? `${text} ${t("error.allowed", { list: err.allowed.join(", ") })}` : text;
}
