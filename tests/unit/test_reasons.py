"""Japanese reasons for the reasons the pipeline and the job service really give."""

from __future__ import annotations

import pytest

from gateway import reasons


@pytest.mark.parametrize(("reason", "want"), [
    ("the password is not correct", "パスワードが正しくありません"),
    ("too many wrong passwords", "パスワードの誤りが上限に達しました"),
    ("zip archive is password-protected", "パスワードで保護（暗号化）されています"),
    ("PDF requires a password to open", "パスワードで保護（暗号化）されています"),
    ("the Word document is encrypted",
     "パスワードで保護（暗号化）されています（the Word document is encrypted）"),
    ("executable.windows is blocked by policy default",
     "実行ファイル・スクリプトは受け付けません（executable.windows is blocked by policy default）"),
    ("unknown.data is blocked by policy default",
     "形式を判別できないため受け付けません（unknown.data is blocked by policy default）"),
    ("processing took longer than 60 s", "処理時間の上限を超えました"),
    ("memory limit exceeded", "処理に必要なメモリが上限を超えました"),
    ("PDF is damaged beyond repair: xref not found",
     "PDF が修復できないほど壊れています（PDF is damaged beyond repair: xref not found）"),
    ("zip archive is damaged (Bad magic number)",
     "ファイルが壊れています（zip archive is damaged (Bad magic number)）"),
    ("word/document.xml refers to an external XML entity (XXE)",
     "外部実体参照（XXE）を含む不正な XML です"
     "（word/document.xml refers to an external XML entity (XXE)）"),
    ("input is larger than the 52428800-byte limit",
     "ファイルが大きさの上限を超えています（input is larger than the 52428800-byte limit）"),
    ("the file is empty", "空のファイルです"),
    ("an empty file with a program's name (.exe)",
     "プログラムの名前が付いた空のファイルは受け付けません"
     "（an empty file with a program's name (.exe)）"),
    ("internal error: OSError", "内部エラーが発生しました"),
    ("archive is password-protected", "パスワードで保護（暗号化）されています"),
    ("reading disk images needs 7-Zip (Debian package 7zip), which is not installed",
     "この形式には対応していません"
     "（reading disk images needs 7-Zip (Debian package 7zip), which is not installed）"),
    ("the archive holds too many items (more than 1000)",
     "展開後の大きさや数が上限を超えています（the archive holds too many items (more than 1000)）"),
    ("processing took longer than 48 s (7zz)",
     "処理時間の上限を超えました（processing took longer than 48 s (7zz)）"),
    ("a Visio drawing (.vsd): only Word, Excel and PowerPoint compound files are disarmed",
     "この形式には対応していません"
     "（a Visio drawing (.vsd): only Word, Excel and PowerPoint compound files are disarmed）"),
    ("this OLE compound file is not a Word, Excel or PowerPoint file",
     "この形式には対応していません"
     "（this OLE compound file is not a Word, Excel or PowerPoint file）"),
    ("no disarm stage for image.wmf yet",
     "この形式には対応していません（no disarm stage for image.wmf yet）"),
    ("something nobody planned for", "安全にできませんでした（something nobody planned for）"),
    ("", ""),
    (None, ""),
])
def test_japanese_reason(reason: str | None, want: str) -> None:
    assert reasons.ja(reason) == want
