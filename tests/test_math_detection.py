"""``asks_for_math`` (an override rule's ``math: true``) word by word and operator by
operator, where a mutation sweep of MATH_WORDS and MATH_EXPRESSION found no test holding
them: each case fails with one small change to a pattern."""

from __future__ import annotations

import pytest

from routerllm.overrides import asks_for_math


@pytest.mark.parametrize(
    "prompt",
    [
        "Calculate the mean of these values",  # a math word in any case
        "Balance these chemical equations",
        "Explain improper integrals",
        "List the square roots of 16 and 25",
        "What is the prime factorisation of 360?",  # British spelling
        "What is 12*7?",  # unspaced
        "12 ÷ 4",
        "What is 7 * -3?",
        "6 multiplied by 7",
        "2 to the power of -1",
        # a number written against its operator word, as "12*7" is against its sign
        "What is 12plus 7?",
        "What is 12 plus7?",
        "5times 3",
        "sqrt (2) to five places",
        "Simplify \\frac{a}{b}",
        "What is y ^ 3 when y is 2?",
    ],
)
def test_these_prompts_ask_for_a_calculation(prompt: str) -> None:
    assert asks_for_math(prompt)


@pytest.mark.parametrize(
    "prompt",
    [
        # a math word inside another word
        "How do I resolve a merge conflict?",
        # a percentage off, not a percentage of
        "Get 15% off your first order",
        # an operator word after a digit inside a name: not a number of its own
        "Rename a1plus 2 to total",
        "Is the S10plus 2 years old?",
    ],
)
def test_these_prompts_do_not(prompt: str) -> None:
    assert not asks_for_math(prompt)


#: Calculations asked in English and in Italian, Spanish, German, French, Chinese,
#: Portuguese, Japanese and Korean (``benchmarks/multilingual_prompts.py``'s dev half):
#: each is math in all nine.
TRANSLATED_CALCULATIONS = [
    (
        "Solve the equation 3x + 7 = 22 step by step.",
        "Risolvi l'equazione 3x + 7 = 22 passo dopo passo.",
        "Resuelve la ecuación 3x + 7 = 22 paso a paso.",
        "Löse die Gleichung 3x + 7 = 22 Schritt für Schritt.",
        "Résous l'équation 3x + 7 = 22 étape par étape.",
        "一步一步解方程 3x + 7 = 22。",
        "Resolva a equação 3x + 7 = 22 passo a passo.",
        "方程式 3x + 7 = 22 を順を追って解いてください。",
        "방정식 3x + 7 = 22를 단계별로 풀어 줘.",
    ),
    (
        "What is the probability of rolling two sixes with two dice?",
        "Qual è la probabilità di ottenere due sei lanciando due dadi?",
        "¿Cuál es la probabilidad de sacar dos seises con dos dados?",
        "Wie hoch ist die Wahrscheinlichkeit, mit zwei Würfeln zwei Sechsen zu würfeln?",
        "Quelle est la probabilité d'obtenir deux six avec deux dés ?",
        "用两个骰子掷出两个六的概率是多少？",
        "Qual é a probabilidade de tirar dois seis com dois dados?",
        "サイコロを2個振って、両方とも6が出る確率はいくつですか？",
        "주사위 두 개를 던져서 둘 다 6이 나올 확률은 얼마야?",
    ),
    (
        "What is 15% of 240?",
        "Quanto fa il 15% di 240?",
        "¿Cuánto es el 15 % de 240?",
        "Wie viel sind 15 % von 240?",
        "Combien font 15 % de 240 ?",
        "240的15%是多少？",
        "Quanto é 15% de 240?",
        "240の15%はいくつですか？",
        "240의 15%는 얼마야?",
    ),
    (
        "What is 12 times 7?",
        "Quanto fa 12 per 7?",
        "¿Cuánto es 12 por 7?",
        "Was ist 12 mal 7?",
        "Combien font 12 fois 7 ?",
        "12乘以7等于多少？",
        "Quanto é 12 vezes 7?",
        "12かける7はいくつ？",
        "12 곱하기 7은 얼마야?",
    ),
]


@pytest.mark.parametrize("texts", TRANSLATED_CALCULATIONS, ids=lambda t: t[0][:30])
def test_a_translated_calculation_is_math(texts: tuple[str, ...]) -> None:
    assert [asks_for_math(t) for t in texts] == [True] * 9


@pytest.mark.parametrize(
    "prompt",
    [
        "Rechne 72 Grad Fahrenheit in Celsius um.",  # a conversion, as "Convert 72 ..." is not
        "Sconto del 15% sul primo ordine",  # 15% off, not 15% of
        "计算机科学是什么？",  # "what is computer science": 计算机 is a computer
        "計算機科学とは何ですか？",  # in Japanese too
        "このアルゴリズムの計算量を説明して",  # 計算量 is the complexity, not a calculation
        "Desconto de 15% no primeiro pedido",  # 15% off, not 15% of
    ],
)
def test_these_translated_requests_are_not_math(prompt: str) -> None:
    assert not asks_for_math(prompt)
