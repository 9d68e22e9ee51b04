// Every text the page shows, in Japanese and English, and the language switch.
//
// Markup carries keys: data-i18n="key" sets the text, data-i18n-attr="attr:key;attr:key"
// sets attributes (aria-label, placeholder, title). Code calls t("key", {n: 3}).
// The language is, in order: what the user chose last (localStorage), the first of
// navigator.languages that is Japanese or English, Japanese.

const STORE_KEY = "sekisho.lang";
export const LANGS = ["ja", "en"];

export const MESSAGES = {
  ja: {
    "app.title": "関所 — ファイル無害化",
    "app.subtitle": "インターネットから届いたファイルを安全な形にしてお渡しします",
    "skip": "本文へ移動",
    "lang.switch": "English",
    "lang.switch.label": "表示言語を英語に切り替える",
    "signout": "サインアウト",
    "signedin.staff": "職員としてサインイン中",
    "signedin.admin": "管理者としてサインイン中",

    "signin.heading": "サインイン",
    "signin.intro": "配布されたアクセストークンを入力してください。トークンはこのタブを閉じると消去されます。",
    "signin.token": "アクセストークン",
    "signin.submit": "サインイン",
    "signin.busy": "確認しています…",
    "signin.empty": "アクセストークンを入力してください。",
    "signin.invalid": "アクセストークンが正しくありません。もう一度入力してください。",
    "signin.expired": "サインインが無効になりました。もう一度サインインしてください。",
    "signin.unreachable": "サーバーに接続できませんでした。しばらくしてからもう一度お試しください。",
    "signin.signedout": "サインアウトしました。",

    "tabs.label": "機能",
    "tab.submit": "ファイルを送る",
    "tab.quarantine": "隔離ファイル（管理）",

    "submit.heading": "ファイルを無害化する",
    "submit.intro": "マクロ・スクリプト・埋め込みファイルなどの危険な要素を取り除き、元の形式のまま開けるファイルにします。",
    "submit.drop": "ここにファイルをドロップ",
    "submit.or": "または",
    "submit.choose": "ファイルを選ぶ",
    "submit.hint": "複数のファイルを一度に送れます。",
    "submit.jobs": "送ったファイル",
    "submit.none": "まだファイルを送っていません。",
    "submit.clear": "一覧から完了したものを消す",

    "job.uploading": "アップロード中 {pct}%",
    "job.queued": "受付済み（順番待ち）",
    "job.running": "処理中",
    "job.done": "完了",
    "job.held": "パスワードの入力待ち",
    "job.unlock.intro": "パスワード付きのファイルです。パスワードを入力すると、中身を取り出して無害化します。",
    "job.unlock.password": "「{name}」のパスワード",
    "job.unlock.left": "あと{n}回入力できます。",
    "job.unlock.submit": "パスワードを送る",
    "job.unlock.busy": "確認しています…",
    "job.unlock.wrong": "パスワードが正しくありません。",
    "job.unlock.empty": "パスワードを入力してください。",
    "job.progress": "「{name}」の進み具合",
    "job.announce.uploaded": "「{name}」を受け付けました。",
    "job.announce.done": "「{name}」の処理が終わりました: {verdict}",
    "job.announce.error": "「{name}」を送れませんでした: {message}",
    "job.download": "ダウンロード（{name}）",
    "job.downloading": "ダウンロード中…",
    "job.downloaded": "「{name}」をダウンロードしました。",
    "job.nodownload": "このファイルはお渡しできません。",
    "job.id": "受付番号",
    "job.details": "詳しい内容（取り除いた要素）",
    "job.nofindings": "取り除いた要素はありません。",
    "job.reason": "理由",
    "job.remove": "一覧から消す",
    "job.lost": "受付番号 {id} の情報はもうありません（保存期間が過ぎた可能性があります）。",

    "verdict.clean": "問題なし",
    "verdict.disarmed": "無害化済み",
    "verdict.blocked": "ブロック",
    "verdict.failed": "処理失敗",
    "verdict.released": "取り出し済み",
    "verdict.pending": "処理待ち",

    "action.removed": "削除",
    "action.neutralized": "無効化",
    "action.disarmed": "無害化",
    "action.kept": "保持",
    "action.reported": "報告のみ",
    "action.repaired": "修復",
    "action.blocked": "ブロック",
    "action.failed": "失敗",

    "severity.high": "高",
    "severity.medium": "中",
    "severity.low": "低",
    "severity.info": "情報",

    "finding.kind": "種類",
    "finding.action": "処置",
    "finding.location": "場所",
    "finding.severity": "重要度",
    "finding.detail": "補足",

    "error.too_large": "ファイルが大きすぎます。",
    "error.unsupported": "このファイルは受け付けられません。",
    "error.bad_request": "送信内容に誤りがあります。",
    "error.busy": "混み合っています。{s}秒ほど待ってからもう一度お試しください。",
    "error.busy_now": "混み合っています。しばらくしてからもう一度お試しください。",
    "error.forbidden": "この操作を行う権限がありません。",
    "error.not_found": "見つかりませんでした。",
    "error.conflict": "この操作は現在の状態では行えません。",
    "error.server": "サーバーでエラーが発生しました（{status}）。",
    "error.network": "サーバーに接続できませんでした。",
    "error.allowed": "使用できるポリシー: {list}",

    "ppap.heading": "パスワード付きファイルを開く",
    "ppap.loading": "確認しています…",
    "ppap.held": "メールに添付されていた「{name}」はパスワードで保護されています。差出人から届いたパスワードを入力してください。",
    "ppap.running": "「{name}」を開いて無害化しています…",
    "ppap.delivered": "「{name}」を無害化して、メールでお届けしました。受信箱をご確認ください。",
    "ppap.blocked": "「{name}」はお届けできません（安全にできない内容か、パスワードの入力回数が上限に達しました）。原本は管理者が保管しています。",
    "ppap.invalid": "このリンクは使えません。リンクが正しくないか、保存期間が過ぎています。",
    "ppap.password": "パスワード",
    "ppap.submit": "パスワードを送る",
    "ppap.busy": "確認しています…",
    "ppap.wrong": "パスワードが正しくありません。",
    "ppap.left": "あと{n}回入力できます。",
    "ppap.mail": "無害化したファイルは、このページではなくメールで届きます。",
    "ppap.held.folder": "フォルダーに置かれた「{name}」はパスワードで保護されています。パスワードを入力してください。",
    "ppap.delivered.folder": "「{name}」を無害化して、出力フォルダーに置きました。",
    "ppap.mail.folder": "無害化したファイルは、このページではなく出力フォルダーに置かれます。",
    "ppap.leave": "職員用のページを開く（サインイン）",
    "q.heading": "隔離ファイル",
    "q.intro": "ブロックされたファイルや原本が保管されています。理由を記録して原本を取り出すか、削除できます。",
    "q.filter.state": "状態",
    "q.filter.origin": "経路",
    "q.filter.all": "すべて",
    "q.refresh": "最新の状態にする",
    "q.caption": "隔離ファイルの一覧",
    "q.count": "{total}件中 {from}–{to}件目",
    "q.empty": "該当する隔離ファイルはありません。",
    "q.prev": "前へ",
    "q.next": "次へ",
    "q.col.created": "受付日時",
    "q.col.name": "ファイル名",
    "q.col.origin": "経路",
    "q.col.verdict": "判定",
    "q.col.reason": "理由",
    "q.col.state": "状態",
    "q.col.size": "サイズ",
    "q.col.actions": "操作",
    "q.open": "開く",
    "q.open.label": "「{name}」の報告を開く",
    "q.loading": "読み込み中…",
    "q.back": "一覧に戻る",
    "q.detail.heading": "「{name}」",
    "q.detail.summary": "報告",
    "q.detail.meta": "詳細情報",
    "q.detail.job": "受付番号",
    "q.detail.sha256": "SHA-256",
    "q.detail.policy": "ポリシー",
    "q.detail.findings": "取り除いた要素・ブロックの理由",
    "q.detail.expires": "保存期限",
    "q.detail.history": "操作の履歴",
    "q.hist.by": "実行者: {actor}",
    "hist.release": "取り出し",
    "hist.export": "原本の書き出し",
    "hist.delete": "削除",
    "hist.purge": "保存期間切れによる削除",
    "dest.sender": "差出人",
    "dest.recipients": "宛先",
    "dest.folder": "フォルダー",
    "dest.file": "ファイル名",
    "dest.token": "送信したトークン",
    "q.release.heading": "原本を取り出す",
    "q.release.intro": "原本（または別のポリシーで処理し直したもの）を本来の宛先に届けます。この操作はあなたの名前で監査ログに記録されます。",
    "q.release.reason": "取り出す理由（必須）",
    "q.release.policy": "処理し直すポリシー（任意。空欄なら原本のまま）",
    "q.release.submit": "原本を取り出す…",
    "q.release.confirm": "「{name}」の原本を取り出します。よろしいですか？",
    "q.release.done": "「{name}」の原本を取り出しました。",
    "q.delete.heading": "削除する",
    "q.delete.intro": "原本と報告を隔離から削除します。元に戻せません。監査ログに記録されます。",
    "q.delete.reason": "削除する理由（必須）",
    "q.delete.submit": "削除する…",
    "q.delete.confirm": "「{name}」を隔離から削除します。元に戻せません。よろしいですか？",
    "q.delete.done": "「{name}」を削除しました。",
    "q.reason.empty": "理由を入力してください。",
    "q.confirm.reason": "理由: {reason}",
    "q.confirm.policy": "ポリシー: {policy}",
    "q.confirm.yes": "実行する",
    "q.confirm.no": "やめる",

    "qstate.held": "隔離中",
    "qstate.released": "取り出し済み",
    "qstate.deleted": "削除済み",
    "qstate.purged": "保存期間切れで削除",

    "origin.http": "ウェブ・API",
    "origin.folder": "フォルダー",
    "origin.smtp": "メール",
    "origin.mail": "メール",
    "origin.cli": "コマンド",
    "origin.ppap": "メール（パスワード付き添付）",

    "size.B": "{n} バイト",
    "size.KB": "{n} KB",
    "size.MB": "{n} MB",
    "size.GB": "{n} GB",
  },
  en: {
    "app.title": "Sekisho — file sanitization",
    "app.subtitle": "Files from the internet, made safe before they reach you",
    "skip": "Skip to content",
    "lang.switch": "日本語",
    "lang.switch.label": "Switch the page to Japanese",
    "signout": "Sign out",
    "signedin.staff": "Signed in as staff",
    "signedin.admin": "Signed in as administrator",

    "signin.heading": "Sign in",
    "signin.intro": "Enter the access token you were given. It is forgotten when you close this tab.",
    "signin.token": "Access token",
    "signin.submit": "Sign in",
    "signin.busy": "Checking…",
    "signin.empty": "Enter your access token.",
    "signin.invalid": "That access token is not valid. Please enter it again.",
    "signin.expired": "Your sign-in is no longer valid. Please sign in again.",
    "signin.unreachable": "Could not reach the server. Please try again in a moment.",
    "signin.signedout": "You have signed out.",

    "tabs.label": "Sections",
    "tab.submit": "Send files",
    "tab.quarantine": "Quarantine (admin)",

    "submit.heading": "Make a file safe",
    "submit.intro": "Macros, scripts, embedded files and other active content are taken out; the file still opens in its own format.",
    "submit.drop": "Drop files here",
    "submit.or": "or",
    "submit.choose": "Choose files",
    "submit.hint": "You can send several files at once.",
    "submit.jobs": "Your files",
    "submit.none": "You have not sent any file yet.",
    "submit.clear": "Remove finished files from the list",

    "job.uploading": "Uploading {pct}%",
    "job.queued": "Received (waiting)",
    "job.running": "Processing",
    "job.done": "Done",
    "job.held": "Waiting for the password",
    "job.unlock.intro": "This file is protected with a password. Enter it, and the contents are taken out and disarmed.",
    "job.unlock.password": "Password of “{name}”",
    "job.unlock.left": "Attempts left: {n}.",
    "job.unlock.submit": "Send the password",
    "job.unlock.busy": "Checking…",
    "job.unlock.wrong": "The password is not correct.",
    "job.unlock.empty": "Enter the password.",
    "job.progress": "Progress of “{name}”",
    "job.announce.uploaded": "“{name}” was received.",
    "job.announce.done": "“{name}” is finished: {verdict}",
    "job.announce.error": "“{name}” could not be sent: {message}",
    "job.download": "Download ({name})",
    "job.downloading": "Downloading…",
    "job.downloaded": "“{name}” was downloaded.",
    "job.nodownload": "This file cannot be handed out.",
    "job.id": "Job number",
    "job.details": "Details (what was taken out)",
    "job.nofindings": "Nothing was taken out.",
    "job.reason": "Reason",
    "job.remove": "Remove from list",
    "job.lost": "Job {id} is no longer available (its retention time may have passed).",

    "verdict.clean": "No problems",
    "verdict.disarmed": "Disarmed",
    "verdict.blocked": "Blocked",
    "verdict.failed": "Failed",
    "verdict.released": "Released",
    "verdict.pending": "Pending",

    "action.removed": "removed",
    "action.neutralized": "neutralized",
    "action.disarmed": "disarmed",
    "action.kept": "kept",
    "action.reported": "reported only",
    "action.repaired": "repaired",
    "action.blocked": "blocked",
    "action.failed": "failed",

    "severity.high": "high",
    "severity.medium": "medium",
    "severity.low": "low",
    "severity.info": "info",

    "finding.kind": "Kind",
    "finding.action": "Action",
    "finding.location": "Location",
    "finding.severity": "Severity",
    "finding.detail": "Detail",

    "error.too_large": "The file is too large.",
    "error.unsupported": "This file cannot be accepted.",
    "error.bad_request": "The request was not valid.",
    "error.busy": "The server is busy. Please try again in about {s} seconds.",
    "error.busy_now": "The server is busy. Please try again in a moment.",
    "error.forbidden": "You are not allowed to do this.",
    "error.not_found": "Not found.",
    "error.conflict": "This cannot be done in the current state.",
    "error.server": "The server reported an error ({status}).",
    "error.network": "Could not reach the server.",
    "error.allowed": "Policies available: {list}",

    "ppap.heading": "Open a password-protected file",
    "ppap.loading": "Checking…",
    "ppap.held": "“{name}”, attached to a mail for you, is protected with a password. Enter the password the sender gave you.",
    "ppap.running": "Opening and disarming “{name}”…",
    "ppap.delivered": "“{name}” was disarmed and sent to you by mail. Please check your inbox.",
    "ppap.blocked": "“{name}” cannot be delivered (its contents could not be made safe, or too many wrong passwords were entered). An administrator keeps the original.",
    "ppap.invalid": "This link cannot be used: it is not correct, or its retention time has passed.",
    "ppap.password": "Password",
    "ppap.submit": "Send the password",
    "ppap.busy": "Checking…",
    "ppap.wrong": "The password is not correct.",
    "ppap.left": "Attempts left: {n}.",
    "ppap.mail": "The disarmed file comes by mail, not on this page.",
    "ppap.held.folder": "“{name}”, dropped into a folder, is protected with a password. Enter the password.",
    "ppap.delivered.folder": "“{name}” was disarmed and put into the output folder.",
    "ppap.mail.folder": "The disarmed file is put into the output folder, not on this page.",
    "ppap.leave": "Open the staff page (sign in)",
    "q.heading": "Quarantine",
    "q.intro": "Blocked files and originals are kept here. Release an original with a reason, or delete it.",
    "q.filter.state": "State",
    "q.filter.origin": "Origin",
    "q.filter.all": "All",
    "q.refresh": "Refresh",
    "q.caption": "Quarantined files",
    "q.count": "{from}–{to} of {total}",
    "q.empty": "No quarantined file matches.",
    "q.prev": "Previous",
    "q.next": "Next",
    "q.col.created": "Received",
    "q.col.name": "File name",
    "q.col.origin": "Origin",
    "q.col.verdict": "Verdict",
    "q.col.reason": "Reason",
    "q.col.state": "State",
    "q.col.size": "Size",
    "q.col.actions": "Actions",
    "q.open": "Open",
    "q.open.label": "Open the report of “{name}”",
    "q.loading": "Loading…",
    "q.back": "Back to the list",
    "q.detail.heading": "“{name}”",
    "q.detail.summary": "Report",
    "q.detail.meta": "Details",
    "q.detail.job": "Job number",
    "q.detail.sha256": "SHA-256",
    "q.detail.policy": "Policy",
    "q.detail.findings": "What was taken out, or why it was blocked",
    "q.detail.expires": "Kept until",
    "q.detail.history": "History",
    "q.hist.by": "by {actor}",
    "hist.release": "Released",
    "hist.export": "Original exported",
    "hist.delete": "Deleted",
    "hist.purge": "Deleted at the end of retention",
    "dest.sender": "Sender",
    "dest.recipients": "Recipients",
    "dest.folder": "Folder",
    "dest.file": "File name",
    "dest.token": "Submitted with token",
    "q.release.heading": "Release the original",
    "q.release.intro": "The original (or a re-run under another policy) goes where it was going. This is recorded in the audit log under your name.",
    "q.release.reason": "Reason for the release (required)",
    "q.release.policy": "Policy to re-run under (optional; empty releases the original)",
    "q.release.submit": "Release the original…",
    "q.release.confirm": "Release the original of “{name}”?",
    "q.release.done": "The original of “{name}” was released.",
    "q.delete.heading": "Delete",
    "q.delete.intro": "The original and its report are removed from quarantine. This cannot be undone and is recorded in the audit log.",
    "q.delete.reason": "Reason for deleting (required)",
    "q.delete.submit": "Delete…",
    "q.delete.confirm": "Delete “{name}” from quarantine? This cannot be undone.",
    "q.delete.done": "“{name}” was deleted.",
    "q.reason.empty": "Enter a reason.",
    "q.confirm.reason": "Reason: {reason}",
    "q.confirm.policy": "Policy: {policy}",
    "q.confirm.yes": "Go ahead",
    "q.confirm.no": "Cancel",

    "qstate.held": "Held",
    "qstate.released": "Released",
    "qstate.deleted": "Deleted",
    "qstate.purged": "Purged (retention)",

    "origin.http": "Web / API",
    "origin.folder": "Drop folder",
    "origin.smtp": "Mail",
    "origin.mail": "Mail",
    "origin.cli": "Command line",
    "origin.ppap": "Mail (password-protected attachment)",

    "size.B": "{n} bytes",
    "size.KB": "{n} KB",
    "size.MB": "{n} MB",
    "size.GB": "{n} GB",
  },
};

function initialLang() {
  let stored = null;
  try {
    stored = localStorage.getItem(STORE_KEY);
  } catch {
    stored = null; // storage disabled: fall back to the browser's languages
  }
  if (LANGS.includes(stored)) return stored;
  for (const tag of navigator.languages || [navigator.language || ""]) {
    const base = String(tag).toLowerCase().split("-")[0];
    if (LANGS.includes(base)) return base;
  }
  return "ja";
}

let current = initialLang();
const listeners = [];

export function lang() {
  return current;
}

export function setLang(next) {
  if (!LANGS.includes(next) || next === current) return;
  current = next;
  try {
    localStorage.setItem(STORE_KEY, next);
  } catch {
    // not remembered, still switched
  }
  applyTranslations(document);
  for (const fn of listeners) fn(next);
}

export function onLangChange(fn) {
  listeners.push(fn);
}

/** The text for `key` in the current language, with {name} placeholders filled. */
export function t(key, params = {}) {
  const table = MESSAGES[current];
  let text = key in table ? table[key] : MESSAGES.ja[key];
  if (text === undefined) {
    console.warn(`i18n: no text for ${key}`);
    return key;
  }
  return text.replace(/\{(\w+)\}/g, (m, name) => (name in params ? String(params[name]) : m));
}

/** Whether a text exists for `key` (for values from the server: states, origins). */
export function has(key) {
  return key in MESSAGES[current];
}

/** Fill every data-i18n / data-i18n-attr element under `root` in the current language. */
export function applyTranslations(root) {
  document.documentElement.lang = current;
  for (const el of root.querySelectorAll("[data-i18n]")) {
    el.textContent = t(el.dataset.i18n);
  }
  for (const el of root.querySelectorAll("[data-i18n-attr]")) {
    for (const pair of el.dataset.i18nAttr.split(";")) {
      const [attr, key] = pair.split(":");
      if (attr && key) el.setAttribute(attr.trim(), t(key.trim()));
    }
  }
  document.title = t("app.title");
}
