"""Answer ids: signed with the deployment's key, so a rating names an answer this server gave, unchanged."""

from __future__ import annotations

import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pydantic import SecretStr

from bot.server.signing import KEY_FILENAME, AnswerSigner
from bot.settings import Settings
from tests.fakes import canned_answer

HISTORY = [{"role": "user", "content": "Is the leg press bad for knees?"}, {"role": "assistant", "content": "No."}]


def test_an_id_verifies_only_the_same_answer_in_the_same_conversation() -> None:
    signer = AnswerSigner(b"k" * 32)
    answer = canned_answer("Where should my feet go?")
    answer_id = signer.sign(answer, HISTORY)
    assert signer.verify(answer, HISTORY, answer_id)
    assert not signer.verify(answer, [], answer_id)
    assert not signer.verify(answer.model_copy(update={"answer": "Take 800 mg."}), HISTORY, answer_id)
    assert not signer.verify(answer.model_copy(update={"question": "Other?"}), HISTORY, answer_id)
    assert not AnswerSigner(b"x" * 32).verify(answer, HISTORY, answer_id)  # another deployment's key
    assert not signer.verify(answer, HISTORY, "\udcff")  # not even text: no error, just no


def test_without_a_configured_key_one_is_generated_once_and_shared_by_every_worker(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    with ThreadPoolExecutor(8) as pool:  # workers starting at once agree on one key
        signers = list(pool.map(lambda _: AnswerSigner.load(settings), range(8)))
    answer = canned_answer("Where should my feet go?")
    ids = {signer.sign(answer, []) for signer in signers}
    assert len(ids) == 1 and signers[0].verify(answer, [], ids.pop())
    key = tmp_path / "data" / KEY_FILENAME
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and [p.name for p in key.parent.iterdir()] == [KEY_FILENAME]


def test_a_configured_key_is_used_and_no_file_is_written(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", signing_key=SecretStr("a-shared-deployment-key"))
    answer = canned_answer("Where should my feet go?")
    assert AnswerSigner(b"a-shared-deployment-key").verify(answer, [], AnswerSigner.load(settings).sign(answer, []))
    assert not (tmp_path / "data").exists()
