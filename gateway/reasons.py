"""Why a file was blocked or failed, in Japanese, for the people who read notices.

Stages state the reason of a blocked or failed item in English (``Report.reason``,
kept as it is in reports and logs: administrators search for it). Staff read the
notices and the web page in Japanese; ``ja(reason)`` gives them a short Japanese
sentence for every reason the stages raise — an exact or leading phrase from the
table below — and keeps the English text in parentheses when it carries a detail
(a member name, a byte offset) worth quoting to an administrator.
"""

from __future__ import annotations

import re

#: (pattern, Japanese); the first match wins; patterns match the start of the reason
_TABLE: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p, re.IGNORECASE), ja) for p, ja in (
        (r"the password is not correct", "パスワードが正しくありません"),
        (r"too many wrong passwords", "パスワードの誤りが上限に達しました"),
        (r"(zip |7z )?archive is password-protected|.*(is|are) encrypted\b|"
         r"PDF requires a password|document is password-protected|zip member is encrypted",
         "パスワードで保護（暗号化）されています"),
        (r"encrypted mail", "暗号化されたメール（S/MIME・PGP）のため中身を検査できません"),
        (r".*protected with IRM", "権限管理（IRM）で保護されています"),
        (r"input is larger than", "ファイルが大きさの上限を超えています"),
        (r".*(expands beyond|expands to|larger than|too many)",
         "展開後の大きさや数が上限を超えています"),
        (r"processing took longer than", "処理時間の上限を超えました"),
        (r"processing used more than|.*memory", "処理に必要なメモリが上限を超えました"),
        (r"the worker (process )?(died|crashed)|worker", "処理中にエラーが発生しました"),
        (r"internal error", "内部エラーが発生しました"),
        (r"PDF is damaged beyond repair", "PDF が修復できないほど壊れています"),
        (r".*(refers to an external XML entity|XXE)", "外部実体参照（XXE）を含む不正な XML です"),
        (r".*(damaged|truncated|cannot be read|cannot be decoded|does not parse|"
         r"is missing|inconsistent|overlap)", "ファイルが壊れています"),
        (r".*not supported|.*unsupported|.*needs (LibreOffice|7-Zip)|.*needs network namespaces|"
         r"no disarm stage for|.*only Word, Excel and PowerPoint compound files|"
         r".*not a Word, Excel or PowerPoint file", "この形式には対応していません"),
        (r"unknown\.|unknown (file )?type", "形式を判別できないため受け付けません"),
        (r"executable\.|.*executable|.*script", "実行ファイル・スクリプトは受け付けません"),
        (r"declared type differs", "拡張子と実際の形式が一致しません"),
        (r"the file is empty", "空のファイルです"),
        (r"an empty file with a program's name",
         "プログラムの名前が付いた空のファイルは受け付けません"),
        (r".*held for review", "管理者の確認が必要なため保留しています"),
        (r"left after disarm", "無害化しても危険な要素が残ったため渡せません"),
        (r"the output (does not|cannot)|.*verify", "無害化の結果を確認できませんでした"),
        (r"blocked by policy|.*by policy", "ポリシーによりブロックしました"),
        (r".*nested too deeply|.*depth", "入れ子が深すぎます"),
    ))

#: reasons that say everything there is: no English detail in parentheses
_PLAIN = re.compile(r"^(the password is not correct|too many wrong passwords|"
                    r"(zip |7z )?archive is password-protected|PDF requires a password to open|"
                    r"internal error.*|processing took longer than [0-9.]+ s|"
                    r"the file is empty|declared type differs from content|"
                    r"memory limit exceeded)$", re.IGNORECASE)


def ja(reason: str | None) -> str:
    """A Japanese sentence for ``reason`` ("" for none)."""
    if not reason:
        return ""
    for pattern, text in _TABLE:
        if pattern.match(reason):
            return text if _PLAIN.match(reason) else f"{text}（{reason}）"
    return f"安全にできませんでした（{reason}）"
