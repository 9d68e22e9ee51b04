// Sekisho's web page: sign-in, the language switch, the tabs. The panels live in
// jobs.js (staff) and quarantine.js (admins).
import { t, lang, setLang, applyTranslations, onLangChange } from "./i18n.js";
import * as api from "./api.js";
import { loadKinds } from "./report.js";
import { initJobs, restoreJobs, resetJobs } from "./jobs.js";
import { initQuarantine, loadList, resetQuarantine } from "./quarantine.js";
import { initUnlock, linkInAddress, showUnlock, hideUnlock } from "./unlock.js";

let role = "";             // "submit" | "admin" | "" (signed out)
let signinMessage = "";    // i18n key of the message on the sign-in card

function byId(id) {
  return document.getElementById(id);
}

/** Tell screen readers (aria-live region); the text stays until the next message. */
function say(text) {
  const region = byId("announce");
  region.textContent = "";
  // a new text node each time, so the same message is announced again
  setTimeout(() => { region.textContent = text; }, 50);
}

// ------------------------------------------------------------------ sign-in

function showSignin(messageKey = "", isError = true) {
  role = "";
  signinMessage = messageKey;
  byId("workspace").hidden = true;
  byId("signin").hidden = false;
  byId("signout").hidden = true;
  byId("who").hidden = true;
  renderSigninMessage(isError);
  const field = byId("token");
  field.value = "";
  if (messageKey && isError) field.setAttribute("aria-invalid", "true");
  else field.removeAttribute("aria-invalid");
  field.focus();
}

function renderSigninMessage(isError) {
  const box = byId("signin-msg");
  box.hidden = !signinMessage;
  box.textContent = signinMessage ? t(signinMessage) : "";
  if (isError !== undefined) box.classList.toggle("error", isError);
}

function signOut(messageKey = "signin.signedout", isError = false) {
  api.setToken("");
  resetJobs();
  resetQuarantine();
  showSignin(messageKey, isError);
  say(t(messageKey));
}

function showWorkspace(newRole) {
  role = newRole;
  signinMessage = "";
  byId("signin").hidden = true;
  byId("workspace").hidden = false;
  byId("signout").hidden = false;
  const who = byId("who");
  who.hidden = false;
  who.textContent = t(role === "admin" ? "signedin.admin" : "signedin.staff");
  byId("tab-quarantine").hidden = role !== "admin";
  resetQuarantine();
  selectTab("submit", false);
  restoreJobs();
}

async function signIn(candidate) {
  const button = byId("signin-submit");
  button.disabled = true;
  button.textContent = t("signin.busy");
  try {
    const found = await api.whoAmI(candidate);
    api.setToken(candidate);
    showWorkspace(found);
    byId("submit-h").focus();
    say(t(found === "admin" ? "signedin.admin" : "signedin.staff"));
  } catch (err) {
    showSignin(err.status === 401 ? "signin.invalid" : "signin.unreachable");
  } finally {
    button.disabled = false;
    button.textContent = t("signin.submit");
  }
}

// ------------------------------------------------------------------ tabs

const TABS = ["submit", "quarantine"];

function visibleTabs() {
  return TABS.filter((name) => !byId(`tab-${name}`).hidden);
}

function selectTab(name, focus = true) {
  if (name === "quarantine" && role !== "admin") name = "submit";
  for (const other of TABS) {
    const tab = byId(`tab-${other}`);
    const selected = other === name;
    tab.setAttribute("aria-selected", String(selected));
    tab.tabIndex = selected ? 0 : -1;
    byId(`panel-${other}`).hidden = !selected;
  }
  if (focus) byId(`tab-${name}`).focus();
  if (name === "quarantine") loadList();
}

function initTabs() {
  for (const name of TABS) {
    const tab = byId(`tab-${name}`);
    tab.addEventListener("click", () => selectTab(name));
    tab.addEventListener("keydown", (ev) => {
      const tabs = visibleTabs();
      const i = tabs.indexOf(name);
      let next = null;
      if (ev.key === "ArrowRight") next = tabs[(i + 1) % tabs.length];
      else if (ev.key === "ArrowLeft") next = tabs[(i - 1 + tabs.length) % tabs.length];
      else if (ev.key === "Home") next = tabs[0];
      else if (ev.key === "End") next = tabs[tabs.length - 1];
      if (next) {
        ev.preventDefault();
        selectTab(next);
      }
    });
  }
}

// ------------------------------------------------------------------ start

function renderChrome() {
  const toggle = byId("lang-toggle");
  // the button names the other language, in that language
  toggle.lang = lang() === "ja" ? "en" : "ja";
  if (role) byId("who").textContent = t(role === "admin" ? "signedin.admin" : "signedin.staff");
  renderSigninMessage();
}

async function start() {
  applyTranslations(document);
  renderChrome();
  onLangChange(renderChrome);
  byId("lang-toggle").addEventListener("click", () => setLang(lang() === "ja" ? "en" : "ja"));
  byId("signout").addEventListener("click", () => signOut());
  byId("signin-submit").disabled = false;
  byId("signin-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const value = byId("token").value.trim();
    if (!value) {
      showSignin("signin.empty");
      return;
    }
    signIn(value);
  });
  api.onUnauthorized(() => {
    if (role) signOut("signin.expired", true);
  });
  initTabs();
  initJobs({ say });
  initQuarantine({ say });
  initUnlock({ say, leave: enter });
  window.addEventListener("hashchange", () => {
    const found = linkInAddress();
    if (found) showUnlock(found);
    else if (!byId("unlock").hidden) {
      hideUnlock();
      enter();
    }
  });
  await loadKinds();

  const found = linkInAddress();
  if (found) await showUnlock(found); // a PPAP link from a notice mail: no sign-in
  else await enter();
  document.body.dataset.ready = "true"; // for tests and tools: the page is set up
}

/** The staff and admin page: signed in already in this tab, or the sign-in form. */
async function enter() {
  const saved = api.token();
  if (!saved) {
    showSignin();
    return;
  }
  // a reload in the same tab: check the token again (it may have been revoked)
  try {
    showWorkspace(await api.whoAmI(saved));
  } catch (err) {
    api.setToken("");
    showSignin(err.status === 401 ? "signin.expired" : "signin.unreachable");
  }
}

start();
