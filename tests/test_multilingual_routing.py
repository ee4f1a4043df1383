"""The rules router decides a request written in Italian, Spanish, German, French or
Chinese as it decides it in English (requests of ``benchmarks/multilingual_prompts.py``'s
dev half; README "The rules router")."""

from __future__ import annotations

import re

import pytest

from routerllm.config import load_config
from routerllm.routers.rules import RuleBasedRouter

#: An English request and its translations (it, es, de, fr, zh)
SAME_REQUESTS = [
    (
        "Write a Python function that checks whether a string is a palindrome.",
        "Scrivi una funzione Python che controlla se una stringa è palindroma.",
        "Escribe una función en Python que compruebe si una cadena es un palíndromo.",
        "Schreibe eine Python-Funktion, die prüft, ob ein String ein Palindrom ist.",
        "Écris une fonction Python qui vérifie si une chaîne est un palindrome.",
        "写一个Python函数，检查一个字符串是否是回文。",
    ),
    (
        "Create a bash script that backs up my home folder to /mnt/backup every night.",
        "Crea uno script bash che ogni notte faccia il backup della mia cartella home.",
        "Crea un script de bash que haga una copia de seguridad de mi carpeta personal.",
        "Erstelle ein Bash-Skript, das meinen Home-Ordner jede Nacht nach /mnt/backup sichert.",
        "Crée un script bash qui sauvegarde mon dossier personnel chaque nuit.",
        "创建一个bash脚本，每天晚上把我的主目录备份到/mnt/backup。",
    ),
    (
        "Write a regex that validates an email address.",
        "Scrivi una regex che validi un indirizzo email.",
        "Escribe una regex que valide una dirección de correo electrónico.",
        "Schreibe einen regulären Ausdruck, der eine E-Mail-Adresse prüft.",
        "Écris une regex qui valide une adresse e-mail.",
        "写一个正则表达式来验证电子邮件地址。",
    ),
    (
        "Explain the difference between a virus and a bacterium.",
        "Spiega la differenza tra un virus e un batterio.",
        "Explica la diferencia entre un virus y una bacteria.",
        "Erkläre den Unterschied zwischen einem Virus und einem Bakterium.",
        "Explique la différence entre un virus et une bactérie.",
        "解释病毒和细菌的区别。",
    ),
    (
        "How does a heat pump work, and is it worth it in a cold climate?",
        "Come funziona una pompa di calore, e conviene in un clima freddo?",
        "¿Cómo funciona una bomba de calor y merece la pena en un clima frío?",
        "Wie funktioniert eine Wärmepumpe, und lohnt sie sich in einem kalten Klima?",
        "Comment fonctionne une pompe à chaleur, et est-ce que ça vaut le coup ?",
        "热泵是如何工作的？在寒冷气候下值得吗？",
    ),
    (
        "Solve the equation 3x + 7 = 22 step by step.",
        "Risolvi l'equazione 3x + 7 = 22 passo dopo passo.",
        "Resuelve la ecuación 3x + 7 = 22 paso a paso.",
        "Löse die Gleichung 3x + 7 = 22 Schritt für Schritt.",
        "Résous l'équation 3x + 7 = 22 étape par étape.",
        "一步一步解方程 3x + 7 = 22。",
    ),
    (
        "Translate 'thank you very much' into Japanese.",
        "Traduci 'grazie mille' in giapponese.",
        "Traduce 'muchas gracias' al japonés.",
        "Übersetze 'vielen Dank' ins Japanische.",
        "Traduis 'merci beaucoup' en japonais.",
        "把'非常感谢'翻译成日语。",
    ),
    (
        "Hi! How are you today?",
        "Ciao! Come stai oggi?",
        "¡Hola! ¿Cómo estás hoy?",
        "Hallo! Wie geht es dir heute?",
        "Salut ! Comment ça va aujourd'hui ?",
        "你好！你今天怎么样？",
    ),
    (
        "Thanks, that was helpful!",
        "Grazie, mi è stato utile!",
        "¡Gracias, me ha sido útil!",
        "Danke, das war hilfreich!",
        "Merci, c'était utile !",
        "谢谢，很有帮助！",
    ),
    (
        "What is 12 times 7?",
        "Quanto fa 12 per 7?",
        "¿Cuánto es 12 por 7?",
        "Was ist 12 mal 7?",
        "Combien font 12 fois 7 ?",
        "12乘以7等于多少？",
    ),
]
LANGUAGES = ("it", "es", "de", "fr", "zh")

#: A long request (89 English words) and its Chinese translation, with no space in it
LONG = (
    "I run a small bakery in a quiet neighbourhood and I want to send a newsletter to our "
    "regular customers. Write it for me: announce that from next month we will open on "
    "Sundays from eight to one, that we are adding three sourdough breads and a gluten-free "
    "cake to the menu, and that everyone who brings their own bag gets a ten percent "
    "discount. Keep it warm and friendly, not too long, and end with an invitation to our "
    "tasting day on the first Saturday of the month.",
    "我在一个安静的街区开了一家小面包店，想给我们的老顾客发一封简报。请帮我写：宣布从下个月起"
    "我们周日早上八点到下午一点营业，菜单上新增三款酸面包和一款无麸质蛋糕，凡是自带购物袋的顾客"
    "都可以享受九折优惠。语气要温暖友好，不要太长，最后邀请大家参加我们在每月第一个星期六举办的品尝日。",
)


@pytest.fixture(scope="module")
def router() -> RuleBasedRouter:
    return RuleBasedRouter(load_config("local").models)


def decided(router: RuleBasedRouter, prompt: str) -> tuple[list[str], int, bool]:
    """The rules that fired (without their counts of words), the tier, whether code."""
    score, fired, is_code = router.analyse(prompt)
    return [re.sub(r" \(.*\)$", "", f) for f in fired], router.tier_of(score)[0], is_code


@pytest.mark.parametrize("texts", SAME_REQUESTS, ids=lambda t: t[0][:30])
def test_a_translated_request_fires_the_english_rules(router, texts) -> None:  # type: ignore[no-untyped-def]
    english = decided(router, texts[0])
    assert english[0], "each English request fires a rule"
    got = {lang: decided(router, text) for lang, text in zip(LANGUAGES, texts[1:], strict=True)}
    assert got == dict.fromkeys(LANGUAGES, english)


def test_english_words_in_a_chinese_request_are_words(router) -> None:  # type: ignore[no-untyped-def]
    """Chinese writes no space around a Latin word: `\\bPython\\b` found no word boundary
    between 个 and P, both word characters."""
    assert decided(router, "用Python写一个脚本")[0] == ["code task"]
    assert decided(router, "用C++写")[0] == ["code task"]


def test_a_long_chinese_request_is_long(router) -> None:  # type: ignore[no-untyped-def]
    """Words were counted by spaces, and a Chinese request has none: its 138 characters
    were "1 word". A Chinese character counts as 1 / 1.4 of a word (129 of them here)."""
    english, chinese = (router.analyse(t)[1] for t in LONG)
    assert english == ["long prompt (89 words)"]
    assert chinese == ["long prompt (92 words)"]
    assert router.analyse("你好" * 42)[1] == ["trivial request"]  # 84 characters: 60 words
    assert router.analyse("你好" * 43)[1] == ["trivial request", "long prompt (61 words)"]


def test_hard_terms_are_found_at_a_words_start_in_english_as_before(router) -> None:  # type: ignore[no-untyped-def]
    """Hard terms count in their inflections (deadlocks, caches, parsers): their rule
    matched a word's start before the word lists grew, and still does."""
    prompt = "Fix the bug in my Go circular buffer: it deadlocks under heavy load"
    assert decided(router, prompt) == (["code task", "hard engineering terms"], 2, True)
    assert router.analyse("caches and parsers")[1] == ["hard engineering terms x2"]
    # C++ is a word before a space or at the end too (`c\+\+\b` found it only before a letter)
    assert decided(router, "Build a URL shortener in C++.")[0] == ["code task"]
