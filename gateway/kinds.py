"""Every finding kind Sekisho reports, in one place.

Kind ids are part of report schema v1: external tools match on them, so an id is
never renamed or reused. Add new ids; retire old ones by leaving them here.

``active`` marks active content: if the verify step finds a kind with
``active=True`` still present (not kept by policy) in an output, the item is
blocked instead of delivered.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Severity(StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"


class Action(StrEnum):
    REMOVED = "removed"          # taken out of the output
    NEUTRALIZED = "neutralized"  # left in place but made inert (e.g. a field turned to text)
    DISARMED = "disarmed"        # an embedded item was disarmed recursively and kept
    KEPT = "kept"                # present, allowed by policy (e.g. hyperlinks)
    REPORTED = "reported"        # noted only, nothing changed (e.g. a type mismatch)
    REPAIRED = "repaired"        # structural damage repaired while rebuilding
    BLOCKED = "blocked"          # the whole item was not delivered
    FAILED = "failed"            # processing failed; the item was not delivered


@dataclass(frozen=True, slots=True)
class KindInfo:
    kind: str
    severity: Severity
    active: bool
    en: str
    ja: str


_H, _M, _L, _I = Severity.HIGH, Severity.MEDIUM, Severity.LOW, Severity.INFO

_KINDS: tuple[KindInfo, ...] = (
    # --- sniffing and policy -------------------------------------------------
    KindInfo("sniff.type_mismatch", _M, False, "declared type differs from the real type",
             "拡張子・宣言された形式と実際の形式が不一致"),
    KindInfo("block.policy", _M, False, "type blocked by policy", "ポリシーによりブロック"),
    KindInfo("block.quarantine", _M, False,
             "held in quarantine by policy", "ポリシーにより隔離"),
    KindInfo("block.unknown_type", _M, False, "unknown or unsupported type", "不明な形式"),
    KindInfo("block.empty", _L, False, "empty file", "空のファイル"),
    KindInfo("block.malformed", _M, False, "damaged beyond repair", "破損しており修復不能"),
    KindInfo("block.limit", _M, False, "size or nesting limit exceeded", "サイズ・階層の上限超過"),
    KindInfo("block.encrypted", _M, False,
             "encrypted with a password", "パスワードで暗号化"),
    KindInfo("block.unsupported", _M, False,
             "no disarm stage for this type", "無害化に未対応の形式"),
    KindInfo("block.residual", _H, False,
             "active content left after disarm", "無害化後も危険な要素が残存"),
    KindInfo("block.verify_failed", _M, False,
             "rebuilt file failed verification", "再構成したファイルの検証に失敗"),
    KindInfo("fail.error", _M, False, "internal error", "内部エラー"),
    KindInfo("fail.timeout", _M, False, "processing timed out", "処理時間の上限超過"),
    KindInfo("fail.crash", _M, False, "worker process died", "処理プロセスが異常終了"),
    KindInfo("fail.memory", _M, False, "memory limit exceeded", "メモリ上限超過"),
    # --- PDF -------------------------------------------------------------------
    KindInfo("pdf.javascript", _H, True, "JavaScript", "JavaScript"),
    KindInfo("pdf.open_action", _H, True, "action run on open", "文書を開いた時の自動動作"),
    KindInfo("pdf.open_view", _I, False,
             "opening page and zoom (no action; removed so nothing runs on open)",
             "開いた時の表示位置と倍率（動作なし。開く時に何も実行しないよう削除）"),
    KindInfo("pdf.additional_actions", _H, True,
             "automatic actions (/AA)", "イベント時の自動動作 (/AA)"),
    KindInfo("pdf.launch", _H, True, "program launch action", "プログラム起動"),
    KindInfo("pdf.submit_form", _H, True, "form submission to a server", "フォームの外部送信"),
    KindInfo("pdf.import_data", _H, True, "form data import", "フォームデータの読み込み"),
    KindInfo("pdf.remote_goto", _M, True, "link into another file (GoToR)",
             "他ファイルへのリンク (GoToR)"),
    KindInfo("pdf.embedded_goto", _M, True,
             "link into an embedded file (GoToE)", "埋め込みファイルへのリンク (GoToE)"),
    KindInfo("pdf.sound", _M, True, "sound action", "サウンド再生"),
    KindInfo("pdf.movie", _M, True, "movie action", "動画再生"),
    KindInfo("pdf.rich_media", _H, True, "rich media (Flash, 3D, video)",
             "リッチメディア (Flash・3D・動画)"),
    KindInfo("pdf.rendition", _M, True, "rendition (media) action", "メディア再生 (Rendition)"),
    KindInfo("pdf.hide", _L, True, "hide/show action", "表示・非表示の切替"),
    KindInfo("pdf.set_ocg_state", _L, True, "layer switching action", "レイヤー切替"),
    KindInfo("pdf.goto_3d_view", _M, True, "3D view action", "3D 表示切替"),
    KindInfo("pdf.transition", _L, True, "transition action", "画面切替効果"),
    KindInfo("pdf.unknown_action", _H, True, "action of unknown type", "不明な種類の動作"),
    KindInfo("pdf.other_action", _L, True,
             "other action not on the allow-list (ResetForm, menu items…)",
             "許可リスト外のその他の動作 (フォームリセット・メニュー操作など)"),
    KindInfo("pdf.uri", _L, True, "web link (URI)", "Web リンク (URI)"),
    KindInfo("pdf.embedded_file", _H, True, "embedded file", "埋め込みファイル"),
    KindInfo("pdf.file_attachment", _H, True, "file attachment annotation", "添付ファイル注釈"),
    KindInfo("pdf.xfa", _H, True, "XFA form (scriptable)", "XFA フォーム (スクリプト可能)"),
    KindInfo("pdf.external_stream", _M, True,
             "stream read from another file (a path on a share is fetched)",
             "別ファイルから読み込むストリーム (共有フォルダーのパスは取得されます)"),
    KindInfo("pdf.font_matrix", _H, True,
             "font matrix that is not six numbers (script in PDF.js, CVE-2024-4367)",
             "数値 6 個でないフォント行列 (PDF.js でスクリプトとして実行: CVE-2024-4367)"),
    KindInfo("pdf.encrypted", _I, False,
             "encryption removed (no open password)", "暗号化を解除 (開くパスワードなし)"),
    KindInfo("pdf.repaired", _I, False, "structural damage repaired", "構造の破損を修復"),
    KindInfo("pdf.foreign_data", _M, True,
             "another file glued before the PDF header or after its end (a polyglot)",
             "PDF の前後に付加された別形式のデータ（ポリグロット）"),
    KindInfo("pdf.orphans", _I, False,
             "unreferenced objects dropped (old revisions, hidden data)",
             "参照されないオブジェクトを削除 (旧版・隠しデータ)"),
    # --- OOXML (docx/xlsx/pptx and macro-enabled variants, Flat OPC, Word 2003 XML) --------
    KindInfo("ooxml.encrypted", _I, False,
             "password encryption removed (opened with the password given or Office's "
             "default password)",
             "パスワードによる暗号化を解除（入力されたパスワードまたは既定のパスワード）"),
    KindInfo("ooxml.vba", _H, True, "VBA macro project", "VBA マクロ"),
    KindInfo("ooxml.vba_signature", _L, True, "VBA project signature", "VBA プロジェクトの署名"),
    KindInfo("ooxml.vba_data", _M, True, "VBA data (vbaData.xml)", "VBA データ (vbaData.xml)"),
    KindInfo("ooxml.xlm_macro", _H, True, "Excel 4.0 (XLM) macro sheet",
             "Excel 4.0 (XLM) マクロシート"),
    KindInfo("ooxml.activex", _H, True, "ActiveX control", "ActiveX コントロール"),
    KindInfo("ooxml.visio_action", _H, True,
             "Visio shape formula that runs an add-on, macro or sound or opens an address "
             "(RUNADDON, RUNMACRO, CALLTHIS, PLAYSOUND, HYPERLINK)",
             "アドオン・マクロ・サウンドを実行するかアドレスを開く Visio の図形の数式 "
             "(RUNADDON・RUNMACRO・CALLTHIS・PLAYSOUND・HYPERLINK)"),
    KindInfo("ooxml.ole_object", _H, True, "embedded OLE object", "埋め込み OLE オブジェクト"),
    KindInfo("ooxml.embedded_package", _H, True, "embedded file (package)", "埋め込みファイル"),
    KindInfo("ooxml.custom_ui", _M, True, "custom ribbon with callbacks",
             "コールバック付きリボン定義"),
    KindInfo("ooxml.external_relationship", _H, True,
             "external link (template, frame, data, object)",
             "外部参照 (テンプレート・フレーム等)"),
    KindInfo("ooxml.external_link", _M, True,
             "link to another workbook", "他のブックへのリンク"),
    KindInfo("ooxml.hyperlink", _L, True, "hyperlink", "ハイパーリンク"),
    KindInfo("ooxml.dde", _H, True, "DDE field or link", "DDE フィールド・リンク"),
    KindInfo("ooxml.macro_assignment", _M, True,
             "macro assigned to a button, shape or control (runs on a click, also from "
             "another workbook)",
             "ボタン・図形・コントロールに登録されたマクロ (クリックで実行、他のブックのものも)"),
    KindInfo("ooxml.include_field", _H, True,
             "INCLUDEPICTURE/INCLUDETEXT field", "INCLUDEPICTURE/INCLUDETEXT フィールド"),
    KindInfo("ooxml.macro_field", _M, True,
             "MACROBUTTON field (runs a macro or Word command on a double click)",
             "MACROBUTTON フィールド (ダブルクリックでマクロ・Word のコマンドを実行)"),
    KindInfo("ooxml.external_data", _M, True,
             "external data connection", "外部データ接続"),
    KindInfo("ooxml.alt_chunk", _M, True, "imported HTML/RTF chunk", "取り込まれた HTML/RTF 部品"),
    KindInfo("ooxml.svg_image", _M, True, "SVG picture (scripts, links, references)",
             "SVG 画像 (スクリプト・リンク・外部参照)"),
    KindInfo("ooxml.macro_enabled", _I, False,
             "macro-enabled type converted to its plain type", "マクロ有効形式を通常形式に変換"),
    KindInfo("ooxml.dangling_relationship", _I, False,
             "relationship to a missing part removed", "存在しない部品への参照を削除"),
    KindInfo("ooxml.unreferenced_part", _I, False,
             "part nothing refers to removed", "どこからも参照されない部品を削除"),
    KindInfo("ooxml.signature_removed", _L, False,
             "digital signature removed (no longer valid after disarming)",
             "電子署名を削除 (無害化により無効になるため)"),
    # --- OpenDocument (odt, ods, odp, odg) -------------------------------------------------
    KindInfo("odf.macro", _H, True, "macro or script (LibreOffice Basic, Python…)",
             "マクロ・スクリプト (LibreOffice Basic など)"),
    KindInfo("odf.event", _H, True, "event that runs a macro or script (on open, on click…)",
             "マクロ・スクリプトを実行するイベント (開いた時・クリック時など)"),
    KindInfo("odf.ui_config", _M, True, "custom toolbars, menus or shortcuts (can call macros)",
             "独自のツールバー・メニュー・ショートカット (マクロ呼び出し可能)"),
    KindInfo("odf.broken_object", _I, False,
             "embedded object that cannot be read (its preview picture stays)",
             "読み取れない埋め込みオブジェクト (プレビュー画像は残ります)"),
    KindInfo("odf.ole_object", _H, True, "embedded OLE object (its preview picture stays)",
             "埋め込み OLE オブジェクト (プレビュー画像は保持)"),
    KindInfo("odf.plugin", _H, True, "applet or plugin", "アプレット・プラグイン"),
    KindInfo("odf.svg_image", _M, True, "SVG picture (scripts, links, references)",
             "SVG 画像 (スクリプト・リンク・外部参照)"),
    KindInfo("odf.external_link", _M, True,
             "content loaded from elsewhere (linked section, table, picture, object, "
             "template, DDE, form address)",
             "外部から読み込む内容 (リンクされたセクション・表・画像・オブジェクト・"
             "テンプレート・DDE・フォーム送信先)"),
    KindInfo("odf.hyperlink", _L, True, "hyperlink", "ハイパーリンク"),
    KindInfo("odf.repaired", _I, False,
             "package structure repaired (a missing mimetype entry written, metadata or "
             "settings that do not parse left out)",
             "パッケージ構造を修復（欠けた mimetype の追加、読めないメタデータ・設定の除去）"),
    KindInfo("odf.resource_fork", _I, False,
             "macOS resource fork in the package (not part of the document) removed",
             "パッケージ内の macOS リソースフォーク（文書の一部でない）を削除"),
    # --- legacy OLE (doc/xls/ppt) ----------------------------------------------------------
    KindInfo("ole.encrypted", _I, False,
             "password encryption removed (opened with the password given or Excel's "
             "default password)",
             "パスワードによる暗号化を解除（入力されたパスワードまたは Excel の既定のパスワード）"),
    KindInfo("ole.vba", _H, True, "VBA macro project", "VBA マクロ"),
    KindInfo("ole.wordbasic", _H, True,
             "WordBasic macros and command customizations (Word 6.0/95)",
             "WordBasic マクロとコマンドのカスタマイズ (Word 6.0/95)"),
    KindInfo("ole.xlm_macro", _H, True, "Excel 4.0 (XLM) macro sheet",
             "Excel 4.0 (XLM) マクロシート"),
    KindInfo("ole.object", _H, True, "embedded OLE object", "埋め込み OLE オブジェクト"),
    KindInfo("ole.package", _H, True, "embedded file (Ole10Native)",
             "埋め込みファイル (Ole10Native)"),
    KindInfo("ole.equation", _H, True,
             "Equation Editor object (CVE-2017-11882)",
             "数式エディタ オブジェクト (CVE-2017-11882)"),
    KindInfo("ole.external_template", _H, True,
             "link to an external template", "外部テンプレートへの参照"),
    KindInfo("ole.dde", _H, True, "DDE field", "DDE フィールド"),
    KindInfo("ole.macro_field", _M, True,
             "MACROBUTTON field (runs a macro or Word command on a double click)",
             "マクロボタン・フィールド（ダブルクリックでマクロ・コマンドを実行）"),
    KindInfo("ole.hyperlink", _M, True,
             "hyperlink (to a script, file or share; to a web or mail address by policy)",
             "ハイパーリンク（スクリプト・ファイル・共有フォルダーへのもの、ポリシーにより Web・"
             "メールへのもの）"),
    KindInfo("ole.include_field", _H, True,
             "INCLUDEPICTURE/INCLUDETEXT field", "INCLUDEPICTURE/INCLUDETEXT フィールド"),
    KindInfo("ole.activex", _H, True, "ActiveX control", "ActiveX コントロール"),
    KindInfo("ole.external_link", _M, True,
             "link to another file (LINK field, external workbook)",
             "他のファイルへのリンク (LINK フィールド・外部ブック)"),
    KindInfo("ole.computed_field", _H, True,
             "field whose type is computed by a nested field (DDE obfuscation)",
             "入れ子のフィールドで種類を組み立てるフィールド (DDE の難読化)"),
    KindInfo("ole.auto_action", _H, True,
             "action that runs a macro or program (auto-run name, click action)",
             "マクロ・プログラムを実行する動作 (自動実行名・クリック時の動作)"),
    KindInfo("ole.converted", _I, False,
             "converted to Office Open XML", "Office Open XML 形式に変換"),
    KindInfo("ole.repaired", _I, False,
             "structural damage repaired (a truncated stream read as far as it goes; "
             "truncated document properties left out)",
             "構造の破損を修復（途中で切れたストリームは読める範囲まで、途中で切れた文書"
             "プロパティは除外）"),
    # --- RTF -----------------------------------------------------------------------------
    KindInfo("rtf.object", _H, True, "embedded object (\\object)",
             "埋め込みオブジェクト (\\object)"),
    KindInfo("rtf.package", _H, True, "embedded file (Package)", "埋め込みファイル (Package)"),
    KindInfo("rtf.equation", _H, True,
             "Equation Editor object (CVE-2017-11882)",
             "数式エディタ オブジェクト (CVE-2017-11882)"),
    KindInfo("rtf.ole_link", _H, True, "OLE2Link / linked object", "OLE2Link・リンクオブジェクト"),
    KindInfo("rtf.dde", _H, True, "DDE field", "DDE フィールド"),
    KindInfo("rtf.include_field", _H, True,
             "INCLUDEPICTURE/INCLUDETEXT field", "INCLUDEPICTURE/INCLUDETEXT フィールド"),
    KindInfo("rtf.macro_field", _M, True,
             "MACROBUTTON field (runs a macro or Word command on a double click)",
             "MACROBUTTON フィールド (ダブルクリックでマクロ・Word のコマンドを実行)"),
    KindInfo("rtf.datastore", _M, True, "data store (\\datastore)", "データストア (\\datastore)"),
    KindInfo("rtf.linked_picture", _H, True,
             "picture linked to a web address or share (loaded when the document opens)",
             "Web・共有フォルダーにリンクされた画像（文書を開くと読み込まれる）"),
    KindInfo("rtf.hyperlink", _L, True, "hyperlink field", "ハイパーリンク"),
    KindInfo("rtf.obfuscated_field", _H, True,
             "field whose type is built by a nested field, or whose instruction hides "
             "embedded content (DDE obfuscation)",
             "種類を入れ子で組み立てる・埋め込みを隠したフィールド (DDE の難読化)"),
    KindInfo("rtf.template", _H, True,
             "attached template (\\template, remote template injection)",
             "添付テンプレート (\\template、外部テンプレートの読み込み)"),
    KindInfo("rtf.mail_merge", _M, True,
             "mail merge data source (\\mailmerge)", "差し込み印刷のデータソース (\\mailmerge)"),
    KindInfo("rtf.overlay", _L, False,
             "data after the end of the document (ignored by Word)",
             "文書の終端より後ろのデータ (Word は無視)"),
    KindInfo("rtf.repaired", _I, False,
             "structure repaired (missing closing braces added, a \\bin running past the end "
             "cut)", "構造の修復（不足した閉じ括弧の補完、末尾を越える \\bin の切除）"),
    # --- images ------------------------------------------------------------------------
    KindInfo("image.metadata", _L, False,
             "metadata (EXIF, XMP, comments)", "メタデータ (EXIF・XMP・コメント)"),
    KindInfo("image.trailing_data", _M, True,
             "data appended after the image (polyglot)", "画像末尾に付加されたデータ"),
    KindInfo("image.repaired", _I, False,
             "truncated image, decodable part kept", "途中で切れた画像 (表示できる部分を保持)"),
    KindInfo("image.converted", _I, False,
             "image delivered in another format (a Photoshop document as a PNG of its "
             "composite image)",
             "画像を別の形式で配送 (Photoshop 文書は統合画像の PNG として)"),
    # --- XML (OOXML parts, Flat OPC, Word 2003 XML, SVG) ----------------------------------
    KindInfo("xml.dtd", _H, True,
             "DTD with entity declarations (XXE, entity expansion); entities resolved as text",
             "実体宣言を含む DTD（XXE・実体展開攻撃）を削除し、実体は文字列として解決"),
    KindInfo("xml.stylesheet", _M, True,
             "xml-stylesheet instruction (loads a stylesheet; XSLT can add script)",
             "xml-stylesheet 処理命令（外部スタイルシートを読み込み、"
             "XSLT はスクリプトを生成可能）"),
    KindInfo("xml.script", _H, True, "script (XHTML or SVG in XML, msxsl:script)",
             "スクリプト（XML 内の XHTML・SVG、msxsl:script）"),
    KindInfo("xml.event_handler", _H, True, "event handler attribute (on…)",
             "イベントハンドラ属性"),
    KindInfo("xml.javascript_url", _H, True,
             "javascript:, vbscript: or data: URL", "javascript:・vbscript:・data: URL"),
    KindInfo("xml.frame", _H, True, "frame, iframe, object or embed",
             "フレーム・iframe・object・embed"),
    KindInfo("xml.remote_resource", _M, True,
             "reference that loads something from elsewhere (XInclude, link, base, picture)",
             "外部から読み込む参照（XInclude・link・base・画像）"),
    KindInfo("xml.hyperlink", _L, True, "hyperlink", "ハイパーリンク"),
    KindInfo("xml.repaired", _I, False,
             "not well-formed XML: rebuilt as an XML parser recovers it",
             "整形式でない XML を修復して再構成"),
    # --- HTML and SVG --------------------------------------------------------------------
    KindInfo("html.script", _H, True, "script", "スクリプト"),
    KindInfo("html.event_handler", _H, True, "event handler attribute (on…)",
             "イベントハンドラ属性"),
    KindInfo("html.javascript_url", _H, True,
             "javascript:, vbscript: or data: URL", "javascript:・vbscript:・data: URL"),
    KindInfo("html.frame", _H, True,
             "frame, iframe, object or embed", "フレーム・iframe・object・embed"),
    KindInfo("html.form", _M, True, "form (can send data out)", "フォーム (外部送信可能)"),
    KindInfo("html.meta_refresh", _M, True, "automatic redirect", "自動リダイレクト"),
    KindInfo("html.remote_resource", _M, True,
             "remote resource (tracking image, stylesheet)", "外部リソース (追跡画像・スタイル)"),
    KindInfo("html.hyperlink", _L, True, "hyperlink", "ハイパーリンク"),
    KindInfo("html.embedded_markup", _L, True,
             "inline SVG or MathML, removed (it can hold scripts and links an HTML "
             "sanitizer cannot judge); the text it shows is kept as plain text",
             "埋め込みの SVG・MathML を削除 (HTML の無害化では判定できないスクリプト・"
             "リンクを含みうる)。表示される文字は通常の文字として残す"),
    KindInfo("svg.script", _H, True, "script", "スクリプト"),
    KindInfo("svg.event_handler", _H, True, "event handler attribute (on…)",
             "イベントハンドラ属性"),
    KindInfo("svg.foreign_object", _H, True,
             "foreignObject or other HTML inside the drawing",
             "foreignObject・図形内の HTML 要素"),
    KindInfo("svg.external_reference", _M, True,
             "reference to an external or local resource", "外部・ローカル資源への参照"),
    KindInfo("svg.javascript_url", _H, True,
             "javascript: or data: URL", "javascript:・data: URL"),
    KindInfo("svg.animation", _H, True,
             "animation that rewrites a link or handler",
             "リンク・ハンドラを書き換えるアニメーション"),
    KindInfo("svg.stylesheet", _M, True,
             "stylesheet with @import or url()", "@import・url() を含むスタイル"),
    KindInfo("svg.processing_instruction", _M, True,
             "xml-stylesheet processing instruction", "xml-stylesheet 処理命令"),
    KindInfo("svg.hyperlink", _L, True, "hyperlink", "ハイパーリンク"),
    KindInfo("svg.embedded_picture", _M, True,
             "SVG picture inside the drawing (data: URL) disarmed",
             "図形内の SVG 画像（data: URL）を無害化"),
    KindInfo("svg.repaired", _I, False,
             "not well-formed XML: rebuilt as an XML parser recovers it",
             "整形式でない XML を修復して再構成"),
    # --- mail (MIME, TNEF, Outlook .msg, mbox) -----------------------------------------
    KindInfo("mail.attachment_blocked", _H, True,
             "attachment removed (could not be made safe)", "安全にできない添付ファイルを削除"),
    KindInfo("mail.attachment_disarmed", _H, True,
             "attachment disarmed", "添付ファイルを無害化"),
    KindInfo("mail.message_blocked", _H, True,
             "message removed from the mailbox (could not be made safe)",
             "安全にできないメールをメールボックスから削除"),
    KindInfo("mail.encrypted", _M, False,
             "encrypted message (S/MIME or PGP): cannot be inspected",
             "暗号化されたメール (S/MIME・PGP): 中身を検査できない"),
    KindInfo("mail.signature_removed", _L, False,
             "digital signature removed (no longer valid after rebuilding)",
             "電子署名を削除 (再構成により無効になるため)"),
    KindInfo("mail.uuencode", _M, True,
             "uuencoded file hidden in the text", "本文中に埋め込まれた uuencode ファイル"),
    KindInfo("mail.tnef_decoded", _I, False,
             "Outlook TNEF (winmail.dat) unpacked into ordinary attachments",
             "Outlook の TNEF (winmail.dat) を通常の添付ファイルに展開"),
    KindInfo("mail.msg_converted", _I, False,
             "Outlook .msg converted to a standard mail message (.eml)",
             "Outlook の .msg を標準形式のメール (.eml) に変換"),
    KindInfo("mail.partial", _M, True,
             "message fragment (message/partial)", "分割されたメールの断片 (message/partial)"),
    KindInfo("mail.external_body", _M, True,
             "reference to content outside the message (message/external-body)",
             "メール外部の内容への参照 (message/external-body)"),
    KindInfo("mail.html_converted", _I, False,
             "HTML body converted to plain text", "HTML 本文をテキストに変換"),
    KindInfo("mail.link_neutralized", _L, False,
             "link made unclickable (address shown as text)",
             "リンクを無効化 (アドレスは文字として表示)"),
    KindInfo("mail.read_receipt", _L, False,
             "read-receipt request (tells the sender when the mail is opened)",
             "開封確認の要求 (開封を送信者に通知)"),
    KindInfo("mail.ambiguous_header", _M, False,
             "duplicate or conflicting header (first one kept)",
             "重複・矛盾したヘッダー (最初のものを採用)"),
    KindInfo("mail.spoofed_header", _M, False,
             "X-Sekisho header from outside (possible spoofing)",
             "外部から付けられた X-Sekisho ヘッダー (なりすましの可能性)"),
    KindInfo("mail.name_cleaned", _M, False,
             "deceptive attachment name cleaned (RTLO, control characters, double extension)",
             "偽装された添付ファイル名を修正 (RTLO・制御文字・二重拡張子)"),
    KindInfo("calendar.attachment", _H, True,
             "file carried by a calendar event (inline, or fetched from an address)",
             "予定に添付されたファイル（埋め込み・外部取得）"),
    KindInfo("calendar.alarm_procedure", _H, True,
             "calendar alarm that runs a program", "プログラムを実行する予定のアラーム"),
    KindInfo("calendar.url", _M, True,
             "address in a calendar or contact card that runs something or reaches a file "
             "or share", "予定・連絡先の危険なアドレス（スクリプト・ファイル・共有フォルダー）"),
    KindInfo("calendar.html_description", _H, True,
             "HTML description of an event with scripts, frames or remote pictures",
             "スクリプト・フレーム・外部画像を含む予定の HTML 説明"),
    KindInfo("mail.emlx_converted", _I, False,
             "Apple Mail message (.emlx) rebuilt as a standard message (.eml)",
             "Apple Mail のメッセージ（.emlx）を標準形式（.eml）に変換"),
    KindInfo("mail.defect", _L, False,
             "damaged MIME structure repaired", "壊れた MIME 構造を修復"),
    # --- archives ----------------------------------------------------------------------
    KindInfo("archive.member_blocked", _H, True,
             "member removed (could not be made safe)", "安全にできない格納ファイルを削除"),
    KindInfo("archive.member_active", _H, True,
             "member disarmed", "格納ファイルを無害化"),
    KindInfo("archive.stylesheet_loads", _M, True,
             "e-book stylesheet that loads from elsewhere or runs code: emptied",
             "外部から読み込む・コードを実行する電子書籍のスタイルシートを空に"),
    KindInfo("archive.remote_item", _M, True,
             "e-book manifest item that lies elsewhere (fetched when the book opens)",
             "電子書籍のマニフェストにある外部の項目（開くと取得される）"),
    KindInfo("archive.link", _M, True,
             "link or special file removed", "リンク・特殊ファイルを削除"),
    KindInfo("archive.trailing_data", _M, True,
             "data after the end of a compressed file removed",
             "圧縮ファイルの末尾に付加されたデータを削除"),
    KindInfo("archive.duplicate", _M, False,
             "member whose name came earlier (letter case aside) renamed, or a repeated "
             "folder or link left out",
             "先に同じ名前（大文字小文字の違いのみを含む）がある格納ファイルを改名、"
             "または重複したフォルダ・リンクを省略"),
    KindInfo("archive.path_cleaned", _M, False,
             "unsafe member name cleaned (.., absolute path, control characters)",
             "危険なファイル名を修正 (..・絶対パス・制御文字)"),
    KindInfo("archive.repaired", _I, False,
             "zip without its central directory (one part of a split zip, a cut-off "
             "download) read from its entries' own headers",
             "中央ディレクトリのない ZIP（分割 ZIP の一部・途中で切れたもの）を各ファイルの"
             "ヘッダーから読み取り"),
    # --- text ----------------------------------------------------------------------
    KindInfo("text.csv_formula", _H, True,
             "spreadsheet formula that runs a program or sends data (CSV injection)",
             "プログラム実行・外部送信を行う数式 (CSV インジェクション)"),
    KindInfo("sylk.formula", _H, True,
             "SYLK formulas (Excel 4.0 macros, DDE); cells keep their last values",
             "SYLK の数式（Excel 4.0 マクロ・DDE。セルには最後の値を保持）"),
    KindInfo("sylk.macro_sheet", _H, True,
             "SYLK sheet marked as an Excel 4.0 macro sheet", "SYLK の Excel 4.0 マクロシート指定"),
    KindInfo("sylk.name", _H, True,
             "SYLK defined name (Auto_Open runs macros)",
             "SYLK の名前定義（Auto_Open でマクロ実行）"),
    KindInfo("sylk.external_link", _M, True,
             "SYLK link to another file or a DDE server", "SYLK の外部ファイル・DDE へのリンク"),
    KindInfo("sylk.record", _L, True,
             "SYLK record of an unknown type", "SYLK の不明な種類のレコード"),
)

KINDS: dict[str, KindInfo] = {k.kind: k for k in _KINDS}


def info(kind: str) -> KindInfo:
    """The registry entry for ``kind``; unknown ids are a programming error."""
    try:
        return KINDS[kind]
    except KeyError:
        raise KeyError(f"finding kind {kind!r} is not listed in gateway/kinds.py") from None


def is_active(kind: str) -> bool:
    return info(kind).active
