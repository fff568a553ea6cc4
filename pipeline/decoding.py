"""How a chatbot chooses its replies: one `Decoding` value, checked once, passed to `reply`.

    Decoding(num=1)                     greedy (generative) / the best retrieved reply (retrieval)
    Decoding(temperature=0.8, top_p=.9) sampling
    Decoding(beam=8)                    beam search
    Decoding(mmi=0.5)                   an N-best list reranked by log p(r|u) - λ log p_ngram(r)

predict, evaluate, serve and the command line all build this one dataclass; `validate()`
says in one line what is wrong with it, before any model loads. `validate_for(arch)` adds
what a model of that architecture cannot do (a retrieval model returns real lines of the
corpus: it has no temperature, beam or MMI).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import UsageError

#: The most replies one input may ask for, the same on the command line and the HTTP API.
MAX_NUM = 50
#: The widest beam: beams x max_len x vocabulary log-probabilities per input stay small.
MAX_BEAM = 64
#: The most candidates one input of `predict --jsonl` may give to be ranked.
MAX_CANDIDATES = 1000
#: N-best list reranked by MMI when no beam is given.
MMI_NBEST = 8

GENERATIVE_ONLY = ("temperature", "top_p", "beam", "mmi", "length_penalty")


@dataclass(frozen=True)
class Decoding:
    num: int = 1
    temperature: float = 0.0
    top_p: float = 1.0
    beam: int = 0
    length_penalty: float = 1.0
    no_repeat_ngram: int = 4
    seed: int | None = None
    mmi: float = 0.0
    nbest: int = MMI_NBEST

    def validate(self) -> "Decoding":
        if not 1 <= self.num <= MAX_NUM:
            raise UsageError(f"--num must be from 1 to {MAX_NUM}, not {self.num}")
        if not math.isfinite(self.length_penalty):
            raise UsageError(f"--length-penalty must be a finite number, not {self.length_penalty}")
        if self.temperature < 0 or not math.isfinite(self.temperature):
            raise UsageError(f"--temperature must be 0 (greedy) or positive, not {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise UsageError(f"--top-p must be above 0 and at most 1, not {self.top_p}")
        if not 0 <= self.beam <= MAX_BEAM:
            raise UsageError(f"--beam must be from 0 (off) to {MAX_BEAM}, not {self.beam}")
        if self.beam and self.temperature:
            raise UsageError("--beam searches and --temperature samples: choose one")
        if self.no_repeat_ngram < 0 or self.no_repeat_ngram == 1:
            raise UsageError(f"no_repeat_ngram must be 0 (off) or at least 2, not {self.no_repeat_ngram}")
        if not math.isfinite(self.mmi):
            raise UsageError(f"--mmi must be a finite number, not {self.mmi}")
        if not 2 <= self.nbest <= MAX_BEAM:
            raise UsageError(f"the MMI N-best list must be from 2 to {MAX_BEAM}, not {self.nbest}")
        return self

    def changed_generative_options(self) -> list[str]:
        """The options set away from their defaults that only a generative model can use."""
        default = Decoding()
        return [name for name in GENERATIVE_ONLY if getattr(self, name) != getattr(default, name)]

    def validate_for(self, arch: str) -> "Decoding":
        self.validate()
        if arch == "retrieval":
            given = self.changed_generative_options()
            if given:
                flags = ", ".join("--" + g.replace("_", "-") for g in given)
                raise UsageError(
                    f"{flags} {'does' if len(given) == 1 else 'do'} not apply to a retrieval model: "
                    "it answers with real lines of the corpus (leave them out)"
                )
        return self

    def describe(self) -> str:
        if self.temperature > 0:
            how = f"sampling T={self.temperature} top-p={self.top_p}"
        elif self.beam or self.mmi:
            how = f"beam {self.beam or max(self.nbest, 2)}"
        else:
            how = "greedy"
        return how + (f", reranked by MMI λ={self.mmi}" if self.mmi else "")
