// The staff panel: drop or choose files, watch them go through, read the result, download.
import { t, onLangChange } from "./i18n.js";
import * as api from "./api.js";
import {
  el, verdictBadge, fillSummary, findingsTable, errorText, label,
} from "./report.js";

const STORE_KEY = "sekisho.jobs";
const POLL_MS = 1000;
const HELD_POLL_MS = 5000;
const RETRY_MS = 3000;
const DOWNLOADABLE = new Set(["clean", "disarmed", "released"]);
const FINISHED = new Set(["done", "delivered"]);

let announce = () => {};
let jobs = [];         // {key, name, id, phase, pct, status, error, timer, downloading}
                       // error: the ApiError of the last failed call, or null
let list;
let empty;
let clearButton;
let template;
let counter = 0;

/** The phase a job status (GET /v1/jobs/{id}) puts the job in. */
function phaseOf(status) {
  if (FINISHED.has(status.state)) return "done";
  if (status.state === "held") return "held";
  if (status.state === "running") return "running";
  return "queued";
}

function save() {
  const kept = jobs.filter((j) => j.id).map((j) => ({ id: j.id, name: j.name }));
  try {
    sessionStorage.setItem(STORE_KEY, JSON.stringify(kept));
  } catch {
    // not remembered across reloads; everything else works
  }
}

function node(job) {
  return list.querySelector(`li[data-key="${job.key}"]`);
}

function stateText(job) {
  switch (job.phase) {
    case "uploading": return t("job.uploading", { pct: Math.round(job.pct * 100) });
    case "queued": return t("job.queued");
    case "running": return t("job.running");
    case "held": return t("job.held");
    case "done": return t("job.done");
    default: return "";
  }
}

function render(job) {
  let li = node(job);
  if (!li) {
    li = template.content.firstElementChild.cloneNode(true);
    li.dataset.key = job.key;
    li.querySelector(".job-download").addEventListener("click", () => download(job));
    li.querySelector(".job-remove").addEventListener("click", () => remove(job));
    li.querySelector(".job-unlock").addEventListener("submit", (ev) => {
      ev.preventDefault();
      unlock(job);
    });
    const pw = li.querySelector(".job-unlock-password");
    pw.id = `pw-${job.key}`;
    li.querySelector(".job-unlock-label").htmlFor = pw.id;
    pw.setAttribute("aria-describedby", `pw-left-${job.key} pw-error-${job.key}`);
    li.querySelector(".job-unlock-left").id = `pw-left-${job.key}`;
    li.querySelector(".job-unlock-error").id = `pw-error-${job.key}`;
    list.prepend(li);
  }
  const status = job.status || {};
  li.querySelector(".job-name").textContent = status.name || job.name;
  const badge = li.querySelector(".job-verdict");
  badge.hidden = job.phase !== "done";
  if (job.phase === "done") verdictBadge(status.verdict, badge);

  const bar = li.querySelector(".job-progress");
  bar.setAttribute("aria-label", t("job.progress", { name: job.name }));
  bar.hidden = job.phase === "error" || job.phase === "lost";
  if (job.phase === "uploading") {
    bar.value = Math.round(job.pct * 50);            // upload: first half of the bar
  } else if (job.phase === "queued") {
    bar.value = 55;
  } else if (job.phase === "running") {
    bar.value = 75;
  } else {
    bar.value = 100;
  }
  li.dataset.phase = job.phase;
  li.querySelector(".job-state").textContent = stateText(job);

  fillSummary(li.querySelector(".job-summary"), job.phase === "done" ? status.summary : null);
  renderUnlock(job, li);

  const error = li.querySelector(".job-error");
  const message = job.phase === "lost" ? t("job.lost", { id: job.id })
    : job.error ? errorText(job.error) : "";
  error.hidden = !message;
  error.textContent = message;

  const details = li.querySelector(".job-details");
  details.hidden = job.phase !== "done";
  li.querySelector(".job-details-label").textContent = t("job.details");
  li.querySelector(".job-findings").replaceChildren(findingsTable(status.report));
  li.querySelector(".job-id").textContent = job.id ? `${t("job.id")}: ${job.id}` : "";

  const canDownload = job.phase === "done" && DOWNLOADABLE.has(status.verdict) && !!status.output_name;
  const dl = li.querySelector(".job-download");
  dl.hidden = !canDownload;
  dl.disabled = !!job.downloading;
  dl.textContent = job.downloading ? t("job.downloading")
    : t("job.download", { name: status.output_name || job.name });
  const no = li.querySelector(".job-nodownload");
  no.hidden = !(job.phase === "done" && !canDownload);
  no.textContent = t("job.nodownload");
  li.querySelector(".job-remove").textContent = t("job.remove");
  li.querySelector(".job-remove").hidden = !["done", "error", "lost", "held"].includes(job.phase);
  refreshList();
}

/** The password form of a held job (a password-protected zip, 7z or PDF). */
function renderUnlock(job, li) {
  const form = li.querySelector(".job-unlock");
  form.hidden = job.phase !== "held";
  if (form.hidden) return;
  const status = job.status || {};
  li.querySelector(".job-unlock-intro").textContent = t("job.unlock.intro");
  li.querySelector(".job-unlock-label").textContent = t("job.unlock.password", { name: job.name });
  const left = status.password_attempts_left;
  const leftText = li.querySelector(".job-unlock-left");
  leftText.hidden = left === null || left === undefined;
  leftText.textContent = leftText.hidden ? "" : t("job.unlock.left", { n: left });
  const error = li.querySelector(".job-unlock-error");
  const message = job.unlockError === "wrong" ? t("job.unlock.wrong")
    : job.unlockError === "empty" ? t("job.unlock.empty")
    : job.unlockError ? errorText(job.unlockError) : "";
  error.hidden = !message;
  error.textContent = message;
  const input = li.querySelector(".job-unlock-password");
  if (message) input.setAttribute("aria-invalid", "true");
  else input.removeAttribute("aria-invalid");
  input.disabled = !!job.unlocking;
  const button = li.querySelector(".job-unlock-submit");
  button.disabled = !!job.unlocking;
  button.textContent = t(job.unlocking ? "job.unlock.busy" : "job.unlock.submit");
}

async function unlock(job) {
  const li = node(job);
  const input = li.querySelector(".job-unlock-password");
  const password = input.value;
  if (!password) {
    job.unlockError = "empty";
    render(job);
    input.focus();
    return;
  }
  job.unlocking = true;
  job.unlockError = null;
  render(job);
  let status;
  try {
    status = await api.unlockJob(job.id, password);
  } catch (err) {
    if (err.status === 401) return;
    job.unlocking = false;
    job.unlockError = err;
    render(job);
    input.focus();
    return;
  } finally {
    input.value = ""; // never kept in the page longer than needed
  }
  job.unlocking = false;
  job.status = status;
  job.phase = phaseOf(status);
  if (job.phase === "held") {
    job.unlockError = "wrong";
    render(job);
    announce(t("job.unlock.wrong"));
    input.focus();
    clearTimeout(job.timer);
    job.timer = setTimeout(() => poll(job), HELD_POLL_MS);
    return;
  }
  render(job);
  if (job.phase === "done") {
    announce(t("job.announce.done", { name: job.name, verdict: label("verdict", status.verdict) }));
    const target = li.querySelector(".job-download:not([hidden])") || li.querySelector(".job-remove");
    target.focus();
  } else {
    clearTimeout(job.timer);
    poll(job);
  }
}

function refreshList() {
  empty.hidden = jobs.length > 0;
  clearButton.hidden = !jobs.some((j) => ["done", "error", "lost"].includes(j.phase));
}

function remove(job) {
  clearTimeout(job.timer);
  jobs = jobs.filter((j) => j !== job);
  const li = node(job);
  const next = li && (li.nextElementSibling || li.previousElementSibling);
  if (li) li.remove();
  save();
  refreshList();
  // keep keyboard focus somewhere sensible
  const target = next ? next.querySelector("button:not([hidden])") : document.getElementById("file");
  if (target) target.focus();
}

function clearFinished() {
  for (const job of jobs.filter((j) => ["done", "error", "lost"].includes(j.phase))) {
    clearTimeout(job.timer);
    const li = node(job);
    if (li) li.remove();
  }
  jobs = jobs.filter((j) => !["done", "error", "lost"].includes(j.phase));
  save();
  refreshList();
  document.getElementById("file").focus();
}

async function poll(job) {
  job.timer = null;
  if (!jobs.includes(job)) return;
  let status;
  try {
    status = await api.jobStatus(job.id);
  } catch (err) {
    if (err.status === 401) return; // signed out by the 401 handler
    if (err.status === 404) {
      job.phase = "lost";
      job.error = null;
      render(job);
      save();
      return;
    }
    job.error = err; // shown while retrying; cleared by the next answer
    render(job);
    job.timer = setTimeout(() => poll(job), RETRY_MS);
    return;
  }
  if (!jobs.includes(job)) return;
  const before = job.phase;
  job.status = status;
  job.phase = phaseOf(status);
  job.error = null;
  render(job);
  if (job.phase !== before) {
    if (job.phase === "done") {
      announce(t("job.announce.done", { name: job.name, verdict: label("verdict", status.verdict) }));
    } else if (job.phase !== "queued") {
      announce(`${job.name}: ${stateText(job)}`);
    }
  }
  if (job.phase === "queued" || job.phase === "running") {
    job.timer = setTimeout(() => poll(job), POLL_MS);
  } else if (job.phase === "held" && !job.unlocking) {
    job.timer = setTimeout(() => poll(job), HELD_POLL_MS);
  }
}

async function upload(file) {
  counter += 1;
  const job = { key: `j${Date.now()}-${counter}`, name: file.name, id: "", phase: "uploading",
                pct: 0, status: null, error: null, timer: null, downloading: false };
  jobs.push(job);
  render(job);
  let lastShown = -1;
  try {
    const accepted = await api.submitFile(file, (fraction) => {
      job.pct = fraction;
      const pct = Math.round(fraction * 100);
      if (pct !== lastShown) {
        lastShown = pct;
        render(job);
      }
    });
    job.id = accepted.job_id;
    job.phase = phaseOf(accepted);
    job.status = { ...accepted, name: file.name };
    save();
    render(job);
    announce(t("job.announce.uploaded", { name: file.name }));
    poll(job);
  } catch (err) {
    if (err.status === 401) return;
    job.phase = "error";
    job.error = err;
    render(job);
    announce(t("job.announce.error", { name: file.name, message: errorText(err) }));
  }
}

async function download(job) {
  job.downloading = true;
  render(job);
  try {
    const name = await api.downloadResult(job.id, job.status.output_name || job.name);
    job.error = null;
    announce(t("job.downloaded", { name }));
  } catch (err) {
    if (err.status === 401) return;
    job.error = err;
  } finally {
    job.downloading = false;
    if (jobs.includes(job)) {
      render(job);
      const li = node(job);
      if (li) li.querySelector(".job-download").focus();
    }
  }
}

/** Upload files one after another (the server queues them; one upload at a time keeps
 * the bandwidth for the file the user is waiting for). */
async function uploadAll(files) {
  for (const file of files) await upload(file);
}

export function initJobs({ say }) {
  announce = say;
  list = document.getElementById("jobs");
  empty = document.getElementById("jobs-empty");
  clearButton = document.getElementById("jobs-clear");
  template = document.getElementById("job-template");
  const input = document.getElementById("file");
  const zone = document.getElementById("dropzone");

  input.addEventListener("change", () => {
    const files = Array.from(input.files || []);
    input.value = "";
    if (files.length) uploadAll(files);
  });
  for (const type of ["dragenter", "dragover"]) {
    zone.addEventListener(type, (ev) => {
      ev.preventDefault();
      if (ev.dataTransfer) ev.dataTransfer.dropEffect = "copy";
      zone.classList.add("over");
    });
  }
  zone.addEventListener("dragleave", (ev) => {
    if (!zone.contains(ev.relatedTarget)) zone.classList.remove("over");
  });
  zone.addEventListener("drop", (ev) => {
    ev.preventDefault();
    zone.classList.remove("over");
    const files = Array.from((ev.dataTransfer && ev.dataTransfer.files) || []);
    if (files.length) uploadAll(files);
  });
  // a file dropped next to the zone must not make the browser open it
  for (const type of ["dragover", "drop"]) {
    window.addEventListener(type, (ev) => {
      if (!zone.contains(ev.target)) ev.preventDefault();
    });
  }
  clearButton.addEventListener("click", clearFinished);
  onLangChange(() => jobs.forEach(render));
}

/** After sign-in: show the jobs of this tab's earlier pages again and keep polling them. */
export function restoreJobs() {
  let saved = [];
  try {
    saved = JSON.parse(sessionStorage.getItem(STORE_KEY) || "[]");
  } catch {
    saved = [];
  }
  for (const { id, name } of saved) {
    if (!id || jobs.some((j) => j.id === id)) continue;
    counter += 1;
    const job = { key: `j${Date.now()}-${counter}`, name, id, phase: "queued", pct: 1,
                  status: null, error: null, timer: null, downloading: false };
    jobs.push(job);
    render(job);
    poll(job);
  }
  refreshList();
}

/** On sign-out: stop polling and forget every job of this tab. */
export function resetJobs() {
  for (const job of jobs) clearTimeout(job.timer);
  jobs = [];
  if (list) list.replaceChildren();
  try {
    sessionStorage.removeItem(STORE_KEY);
  } catch {
    // nothing stored
  }
  if (list) refreshList();
}
