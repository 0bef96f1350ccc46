"""Evidence beside a rationale: an attention map over the picture, the option preference, image reliance.

Read ``compute.py`` first. ``docs/evidence.md`` says what each piece is and is not, and what it cost
and scored in ``benchmarks/evidence_proof.py``.
"""

from .compute import QUERIES, Evidence, ImageReliance, compute_evidence, grey_like, iter_evidence
from .maps import EvidenceMap, image_token_spans, token_grid
from .positions import AnswerPosition, EvidenceError, find_answer, letter_tokens

__all__ = [
    "QUERIES",
    "AnswerPosition",
    "Evidence",
    "EvidenceError",
    "EvidenceMap",
    "ImageReliance",
    "compute_evidence",
    "find_answer",
    "grey_like",
    "image_token_spans",
    "iter_evidence",
    "letter_tokens",
    "token_grid",
]
