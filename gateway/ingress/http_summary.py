"""A report in plain words, for the people who submitted the file (ja and en).

``summarize(report, verdict)`` gives ``{"ja": [...], "en": [...]}``: one line per
finding kind and action, with counts — 「マクロを3件削除しました」 / "Removed 3
macros" — and, for a blocked or failed job, first a line saying so and why.
Kinds with a natural short name below read like that; every other kind uses its
label from gateway/kinds.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway import kinds, reasons

#: kinds (space-separated where several read the same) -> (ja noun, en singular,
#: en plural), for the kinds people meet every day
_NOUN_TABLE: dict[str, tuple[str, str, str]] = {
    "ooxml.vba ole.vba odf.macro": ("マクロ", "macro", "macros"),
    "ooxml.xlm_macro ole.xlm_macro sylk.macro_sheet":
        ("Excel 4.0 マクロ", "Excel 4.0 macro sheet", "Excel 4.0 macro sheets"),
    "ooxml.activex ole.activex": ("ActiveX コントロール", "ActiveX control", "ActiveX controls"),
    "ooxml.ole_object ole.object rtf.object odf.ole_object":
        ("埋め込みオブジェクト", "embedded object", "embedded objects"),
    "ooxml.embedded_package ole.package rtf.package pdf.embedded_file":
        ("埋め込みファイル", "embedded file", "embedded files"),
    "pdf.file_attachment": ("添付ファイル注釈", "file attachment", "file attachments"),
    "ooxml.external_relationship": ("外部参照", "external reference", "external references"),
    "ooxml.external_link": ("他のブックへのリンク", "link to another workbook",
                            "links to other workbooks"),
    "ooxml.dde ole.dde rtf.dde": ("DDE フィールド", "DDE field", "DDE fields"),
    "ooxml.macro_field rtf.macro_field": ("マクロボタン", "macro button", "macro buttons"),
    "ooxml.hyperlink ole.hyperlink html.hyperlink rtf.hyperlink svg.hyperlink odf.hyperlink "
    "xml.hyperlink":
        ("ハイパーリンク", "hyperlink", "hyperlinks"),
    "pdf.uri": ("Web リンク", "web link", "web links"),
    "odf.event": ("マクロを実行するイベント", "event that runs a macro",
                  "events that run macros"),
    "odf.external_link": ("外部から読み込む内容へのリンク", "link to outside content",
                          "links to outside content"),
    "xml.dtd": ("実体宣言を含む DTD", "DTD declaring entities", "DTDs declaring entities"),
    "pdf.javascript": ("JavaScript", "JavaScript script", "JavaScript scripts"),
    "pdf.open_action": ("開いた時の自動動作", "action run on open", "actions run on open"),
    "pdf.additional_actions": ("自動動作", "automatic action", "automatic actions"),
    "pdf.launch": ("プログラム起動の動作", "program launch action", "program launch actions"),
    "pdf.xfa": ("XFA フォーム", "XFA form", "XFA forms"),
    "html.script svg.script xml.script": ("スクリプト", "script", "scripts"),
    "html.event_handler svg.event_handler xml.event_handler":
        ("イベントハンドラ", "event handler", "event handlers"),
    "html.frame xml.frame": ("フレーム", "frame", "frames"),
    "xml.stylesheet": ("外部スタイルシートの指定", "external stylesheet instruction",
                       "external stylesheet instructions"),
    "html.form": ("フォーム", "form", "forms"),
    "html.remote_resource xml.remote_resource":
        ("外部リソース", "remote resource", "remote resources"),
    "image.metadata": ("画像のメタデータ", "piece of image metadata", "pieces of image metadata"),
    "mail.attachment_disarmed": ("添付ファイル", "attachment", "attachments"),
    "mail.attachment_blocked": ("安全にできない添付ファイル", "unsafe attachment",
                                "unsafe attachments"),
    "mail.link_neutralized": ("リンク", "link", "links"),
    "archive.member_active": ("格納ファイル", "archive member", "archive members"),
    "archive.member_blocked": ("安全にできない格納ファイル", "unsafe archive member",
                               "unsafe archive members"),
    "text.csv_formula": ("危険な数式", "dangerous formula", "dangerous formulas"),
    "mail.partial": ("分割されたメールの断片", "message fragment", "message fragments"),
    "mail.external_body": ("メール外部の内容への参照", "reference to content outside the message",
                           "references to content outside the message"),
    "mail.read_receipt": ("開封確認の要求", "read-receipt request", "read-receipt requests"),
    "mail.ambiguous_header": ("重複・矛盾したヘッダー", "duplicate or conflicting header",
                              "duplicate or conflicting headers"),
    "mail.spoofed_header": ("外部から付けられた X-Sekisho ヘッダー",
                            "X-Sekisho header added from outside",
                            "X-Sekisho headers added from outside"),
    "mail.name_cleaned": ("偽装された添付ファイル名", "deceptive attachment name",
                          "deceptive attachment names"),
    "mail.uuencode": ("本文中に隠された uuencode ファイル", "uuencoded file hidden in the text",
                      "uuencoded files hidden in the text"),
    "archive.path_cleaned": ("危険な格納ファイル名", "unsafe member name", "unsafe member names"),
    "archive.link": ("リンク・特殊ファイル", "link or special file", "links or special files"),
    "archive.duplicate": ("重複した名前の格納ファイル", "member with a duplicate name",
                          "members with duplicate names"),
    "ooxml.dangling_relationship": ("存在しない部品への参照", "reference to a missing part",
                                    "references to missing parts"),
    "ooxml.unreferenced_part": ("どこからも参照されない部品", "unreferenced part",
                                "unreferenced parts"),
    "ooxml.custom_ui": ("リボンのカスタマイズ", "custom ribbon", "custom ribbons"),
    "ooxml.external_data": ("外部データ接続", "external data connection",
                            "external data connections"),
    "image.trailing_data": ("画像の末尾に付加されたデータ", "block of data appended to an image",
                            "blocks of data appended to images"),
}
_NOUNS: dict[str, tuple[str, str, str]] = {
    kind: noun for kinds_, noun in _NOUN_TABLE.items() for kind in kinds_.split()}

#: kinds whose label is itself a statement of what was done: (ja, en) sentences
_STATEMENTS: dict[str, tuple[str, str]] = {
    "ooxml.macro_enabled": ("マクロ有効形式を通常形式に変換しました（例: .docm → .docx）",
                            "Converted the macro-enabled file to its plain type "
                            "(e.g. .docm → .docx)"),
    "ole.converted": ("Office Open XML 形式に変換しました", "Converted to Office Open XML"),
    "mail.tnef_decoded": ("Outlook の TNEF (winmail.dat) を通常の添付ファイルに展開しました",
                          "Unpacked Outlook TNEF (winmail.dat) into ordinary attachments"),
    "mail.msg_converted": ("Outlook の .msg を標準形式のメール (.eml) に変換しました",
                           "Converted the Outlook .msg into a standard mail message (.eml)"),
    "mail.html_converted": ("HTML 本文をテキストに変換しました",
                            "Converted the HTML body to plain text"),
    "mail.defect": ("壊れた MIME 構造を修復しました", "Repaired a damaged MIME structure"),
    "mail.encrypted": ("暗号化されたメールのため中身を検査できません",
                       "The message is encrypted, so its content cannot be inspected"),
    "mail.signature_removed": ("電子署名を削除しました（再構成により無効になるため）",
                               "Removed the digital signature (no longer valid after "
                               "rebuilding)"),
    "ooxml.signature_removed": ("電子署名を削除しました（無害化により無効になるため）",
                                "Removed the digital signature (no longer valid after "
                                "disarming)"),
    "pdf.repaired": ("PDF の構造の破損を修復しました", "Repaired structural damage in the PDF"),
    "pdf.encrypted": ("暗号化を解除しました（開くパスワードは不要でした）",
                      "Removed the encryption (no password was needed to open it)"),
    "pdf.orphans": ("参照されないオブジェクト（旧版・隠しデータ）を削除しました",
                    "Dropped unreferenced objects (old revisions, hidden data)"),
    "rtf.repaired": ("RTF の構造の破損を修復しました", "Repaired structural damage in the RTF"),
    "ole.repaired": ("途中で切れたファイルを読める範囲で修復しました",
                     "Repaired a truncated file as far as it could be read"),
    "svg.repaired": ("整形式でない SVG を修復しました", "Repaired an SVG that was not well-formed"),
    "xml.repaired": ("整形式でない XML を修復しました", "Repaired XML that was not well-formed"),
    "rtf.overlay": ("文書の終端より後ろのデータを削除しました",
                    "Removed data after the end of the document"),
    "image.repaired": ("途中で切れた画像の表示できる部分を残しました",
                       "Kept the decodable part of a truncated image"),
    "sniff.type_mismatch": ("拡張子と実際の形式が一致しません",
                            "The file name's extension does not match its real type"),
}

#: action -> (ja verb phrase, en verb, en suffix)
_VERBS: dict[str, tuple[str, str, str]] = {
    "removed": ("削除しました", "Removed", ""),
    "neutralized": ("無効化しました", "Neutralized", ""),
    "disarmed": ("無害化しました", "Disarmed", ""),
    "kept": ("ポリシーにより残しました", "Kept", " (allowed by policy)"),
    "reported": ("検出しました", "Noted", ""),
    "repaired": ("修復しました", "Repaired", ""),
}

_VERDICT_LINES: dict[str, tuple[str, str]] = {
    "clean": ("危険な要素は見つかりませんでした。ファイルは再構成して渡します。",
              "No active content was found; the file was rebuilt."),
    "disarmed": ("危険な要素を取り除きました。", "Active content was removed."),
    "blocked": ("このファイルは安全にできないためブロックしました。",
                "This file was blocked because it could not be made safe."),
    "failed": ("このファイルは処理できなかったため渡せません。",
               "This file could not be processed and is not delivered."),
    "released": ("管理者の承認により原本を取り出しました。",
                 "An administrator approved the release of this file."),
}


def summarize(report: Mapping[str, Any] | None, verdict: str | None,
              reason: str | None = None) -> dict[str, list[str]]:
    ja: list[str] = []
    en: list[str] = []
    if verdict in _VERDICT_LINES:
        j, e = _VERDICT_LINES[verdict]
        ja.append(j)
        en.append(e)
    if verdict in ("blocked", "failed") and reason:
        ja.append(f"理由: {reasons.ja(reason)}")
        en.append(f"Reason: {reason}")
    counts: dict[tuple[str, str], int] = {}
    for item in (report or {}).get("items") or ():
        for f in item.get("findings") or ():
            key = (str(f.get("kind", "")), str(f.get("action", "")))
            counts[key] = counts.get(key, 0) + 1
    delivered = verdict in ("clean", "disarmed", "released")
    for (kind, action), n in counts.items():
        j, e = line(kind, action, n, embedded=delivered)
        ja.append(j)
        en.append(e)
    return {"ja": ja, "en": en}


def line(kind: str, action: str, n: int, *, embedded: bool = False) -> tuple[str, str]:
    """One summary line for ``n`` findings of ``kind`` handled by ``action``;
    ``embedded``: the file was delivered, so a block is about something inside it."""
    meta = kinds.KINDS.get(kind)
    label_ja = meta.ja if meta else kind
    label_en = meta.en if meta else kind
    many_ja = "" if n == 1 else f"（{n}件）"
    many_en = "" if n == 1 else f" ({n}×)"
    if action in ("blocked", "failed") or kind.startswith(("block.", "fail.")):
        if embedded:
            return (f"中に含まれていた内容を取り除きました（{label_ja}）{many_ja}",
                    f"Removed embedded content: {label_en}{many_en}")
        if action == "failed" or kind.startswith("fail."):
            return (f"処理できませんでした（{label_ja}）",
                    f"Could not be processed: {label_en}")
        return f"ブロックしました（{label_ja}）", f"Blocked: {label_en}"
    statement = _STATEMENTS.get(kind)
    if statement is not None:
        return statement[0] + many_ja, statement[1] + many_en
    verb_ja, verb_en, suffix = _VERBS.get(action, ("処理しました", "Handled", ""))
    noun = _NOUNS.get(kind)
    if noun is not None:
        ja_noun, one, many = noun
        return (f"{ja_noun}を{n}件{verb_ja}",
                f"{verb_en} {n} {one if n == 1 else many}{suffix}")
    return f"{label_ja}を{n}件{verb_ja}", f"{verb_en}: {label_en}{many_en}{suffix}"
