"""Numbers in a notebook's prose come from its run, never typed by hand.

The rule, for each notebook listed in COMPLIANT (its committed .ipynb):

* a *result number* in a markdown cell is a number with a decimal point (`8.5`), a
  percentage (`73%`, `58.8 %`) or a speed ratio (`8x`, `3×`); integers alone (label
  budgets, years in citations, layer counts, `80/10/10`) are not result numbers, and
  link targets and inline code are skipped;
* each result number must appear in the notebook's outputs (stream text and text/plain,
  text/markdown, text/html data of its code cells) at the precision the prose writes it:
  some number printed in the outputs rounds to it (a percentage may also be printed as a
  fraction, 0.731 for 73.1%);
* except the few non-result numbers in ALLOWED (e.g. `95%` of "95% interval").

Notebooks join COMPLIANT once they are rendered from a source that formats its numbers
from variables; the rest are being reworked and re-rendered.
"""

import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
COMPLIANT = ["00_setup", "01_seq2seq_translator", "02_word2vec", "03_bert_mlm_pretraining", "04_head_replacement", "05_adaptive_finetuning", "06_behavioural_finetuning", "07_prompt_cloze", "08_lora_and_peft", "09_strategy_showdown", "10_alignment", "12_data_care"]
# notebook stem (or "*": all) -> allowed literals: facts of the design, not results
# (the sizes of the offline models in millions of weights; BERT's 15% masking rate)
ALLOWED = {"*": {"95%", "100%", "22.7", "4.4", "15%"},
           # the DAPT paper's step count, and the protocol's resolution on 2,000 rows
           "05_adaptive_finetuning": {"12.5", "1.4"},
           # layer-wise decay's factor, a setting of the recipe
           "04_head_replacement": {"0.8"}}

_CLAIM = re.compile(r"(?<![\w.])(?P<num>\d+(?:\.\d+)?)(?P<unit>\s?%|\s?[x×](?!\w))?(?![\w.]\d)")
_NUMBER = re.compile(r"(?<![\w.])\d[\d,]*(?:\.\d+)?")


def claims(markdown: str) -> list[str]:
    """The result numbers of a markdown text, as written ('8.5', '73%', '8x')."""
    text = re.sub(r"`[^`]*`", " ", markdown)                  # inline code
    text = re.sub(r"\]\([^)]*\)", "]", text)                  # link targets
    text = re.sub(r"https?://\S+", " ", text)
    text = re.sub(r"\b\d{4}\.\d{4,5}\b", " ", text)                # arXiv ids
    out = []
    for m in _CLAIM.finditer(text):
        if m["unit"] or "." in m["num"]:
            out.append(m.group(0).replace(" ", ""))
    return out


def output_numbers(nb: dict) -> list[float]:
    texts = []
    for cell in nb["cells"]:
        for o in cell.get("outputs", []):
            texts.append("".join(o.get("text", "")))
            for kind in ("text/plain", "text/markdown", "text/html"):
                texts.append("".join(o.get("data", {}).get(kind, "")))
    return [float(x.replace(",", "")) for x in _NUMBER.findall("\n".join(texts))]


def unsupported(nb: dict, stem: str) -> list[str]:
    """The result numbers of the notebook's markdown that no output supports."""
    allowed = ALLOWED.get("*", set()) | ALLOWED.get(stem, set())
    printed = output_numbers(nb)
    missing = []
    for cell in nb["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        for claim in claims("".join(cell["source"])):
            if claim in allowed:
                continue
            literal = re.match(r"\d+(?:\.\d+)?", claim).group()
            places = len(literal.split(".")[1]) if "." in literal else 0
            value = float(literal)
            scales = (1, 100) if claim.endswith("%") else (1,)
            if not any(abs(round(p * s, places) - value) < 1e-9 for p in printed for s in scales):
                missing.append(claim)
    return missing


def test_the_rule_catches_a_typed_number():
    def nb(markdown, printed):
        return {"cells": [{"cell_type": "markdown", "source": markdown},
                          {"cell_type": "code", "source": "",
                           "outputs": [{"output_type": "stream", "text": printed}]}]}
    assert claims("LoRA 72.4% vs 73.9, ~8x faster; 80/10/10 masking, 2021, `lr=1e-4`, "
                  "[x](https://a.b/1.2)") == ["72.4%", "73.9", "8x"]
    assert unsupported(nb("scored 73%, a 95% interval", "accuracy 0.7312"), "x") == []
    assert unsupported(nb("scored 73.1%", "accuracy 73.12 %"), "x") == []
    assert unsupported(nb("took 282 ms, 1.55M words and 47 vs 28 examples/s, 4.2x",
                          "1,575,058 words; 3.9 times"), "x") == ["1.55", "4.2x"]
    assert unsupported(nb("4.2x faster", "4.17 times"), "x") == []        # rounds to it
    assert unsupported(nb("about 52.0%", "majority 58.8%"), "x") == ["52.0%"]


@pytest.mark.parametrize("stem", COMPLIANT)
def test_prose_numbers_come_from_the_outputs(stem):
    nb = json.loads((NOTEBOOKS / f"{stem}.ipynb").read_text(encoding="utf-8"))
    missing = unsupported(nb, stem)
    assert not missing, (f"{stem}: numbers in markdown that no output prints: {missing}. "
                         "Print them from variables (and refer to the output), or, if they "
                         "are not results, add them to ALLOWED")


def test_arxiv_ids_are_references_not_results():
    assert claims("Devlin et al. (2019), arXiv 1810.04805, reached 73% and 8.5 points") == \
        ["73%", "8.5"]
