"""Forty requests a user would type, in English and in Italian, Spanish, German,
French and Chinese (translated by hand for ``multilingual_routing.py``).

Ten of each kind the product routes (the synthetic set's four classes). Within each
kind, the 1st, 3rd, 5th, 7th and 9th are the ``dev`` half (looked at while the
routers' word lists were extended) and the others the ``held-out`` half (measured
only after). Code in a request stays code in every language; its comments and
docstrings are translated, as a user would write them.
"""

from __future__ import annotations

LANGUAGES = ("en", "it", "es", "de", "fr", "zh")
KINDS = ("code generation", "text generation", "general purpose", "lightweight")

_FENCE = "```python\ndef average(xs):\n    return sum(xs) / len(xs)\n```"
_STUB = (
    "def merge_intervals(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:\n"
    '    """{doc}"""'
)

#: kind -> ten tuples of the six languages' texts, in ``LANGUAGES`` order
PROMPTS: dict[str, list[tuple[str, str, str, str, str, str]]] = {
    "code generation": [
        (
            "Write a Python function that checks whether a string is a palindrome.",
            "Scrivi una funzione Python che controlla se una stringa è palindroma.",
            "Escribe una función en Python que compruebe si una cadena es un palíndromo.",
            "Schreibe eine Python-Funktion, die prüft, ob ein String ein Palindrom ist.",
            "Écris une fonction Python qui vérifie si une chaîne est un palindrome.",
            "写一个Python函数，检查一个字符串是否是回文。",
        ),
        (
            "Implement a thread-safe LRU cache in Java with a fixed capacity.",
            "Implementa una cache LRU thread-safe in Java con una capacità fissa.",
            "Implementa una caché LRU thread-safe en Java con capacidad fija.",
            "Implementiere einen threadsicheren LRU-Cache in Java mit fester Kapazität.",
            "Implémente un cache LRU thread-safe en Java avec une capacité fixe.",
            "用Java实现一个固定容量的线程安全LRU缓存。",
        ),
        (
            f"Fix this code, it crashes on an empty list:\n{_FENCE}",
            f"Correggi questo codice, va in crash con una lista vuota:\n{_FENCE}",
            f"Arregla este código, falla con una lista vacía:\n{_FENCE}",
            f"Korrigiere diesen Code, er stürzt bei einer leeren Liste ab:\n{_FENCE}",
            f"Corrige ce code, il plante avec une liste vide :\n{_FENCE}",
            f"修复这段代码，遇到空列表时会崩溃：\n{_FENCE}",
        ),
        (
            "Write a SQL query that returns the ten customers with the highest total "
            "orders in 2024.",
            "Scrivi una query SQL che restituisca i dieci clienti con il totale degli "
            "ordini più alto nel 2024.",
            "Escribe una consulta SQL que devuelva los diez clientes con el mayor total "
            "de pedidos en 2024.",
            "Schreibe eine SQL-Abfrage, die die zehn Kunden mit der höchsten "
            "Bestellsumme im Jahr 2024 liefert.",
            "Écris une requête SQL qui renvoie les dix clients ayant le plus gros total "
            "de commandes en 2024.",
            "写一个SQL查询，返回2024年订单总额最高的十个客户。",
        ),
        (
            "Create a bash script that backs up my home folder to /mnt/backup every night.",
            "Crea uno script bash che ogni notte faccia il backup della mia cartella home "
            "in /mnt/backup.",
            "Crea un script de bash que haga una copia de seguridad de mi carpeta personal "
            "en /mnt/backup cada noche.",
            "Erstelle ein Bash-Skript, das meinen Home-Ordner jede Nacht nach /mnt/backup sichert.",
            "Crée un script bash qui sauvegarde mon dossier personnel dans /mnt/backup "
            "chaque nuit.",
            "创建一个bash脚本，每天晚上把我的主目录备份到/mnt/backup。",
        ),
        (
            "How do I read a CSV file with pandas and drop the rows where the price "
            "column is empty?",
            "Come leggo un file CSV con pandas ed elimino le righe in cui la colonna "
            "price è vuota?",
            "¿Cómo leo un archivo CSV con pandas y elimino las filas donde la columna "
            "price está vacía?",
            "Wie lese ich eine CSV-Datei mit pandas ein und lösche die Zeilen, in denen "
            "die Spalte price leer ist?",
            "Comment lire un fichier CSV avec pandas et supprimer les lignes où la "
            "colonne price est vide ?",
            "如何用pandas读取CSV文件，并删除price列为空的行？",
        ),
        (
            "Write a JavaScript function that debounces another function by 300 ms.",
            "Scrivi una funzione JavaScript che applichi il debounce a un'altra funzione "
            "con 300 ms.",
            "Escribe una función de JavaScript que aplique debounce a otra función con 300 ms.",
            "Schreibe eine JavaScript-Funktion, die eine andere Funktion um 300 ms entprellt.",
            "Écris une fonction JavaScript qui applique un debounce de 300 ms à une autre "
            "fonction.",
            "写一个JavaScript函数，对另一个函数做300毫秒的防抖。",
        ),
        (
            "Complete this function:\n" + _STUB.format(doc="Merge overlapping intervals."),
            "Completa questa funzione:\n" + _STUB.format(doc="Unisce gli intervalli sovrapposti."),
            "Completa esta función:\n" + _STUB.format(doc="Fusiona los intervalos solapados."),
            "Vervollständige diese Funktion:\n"
            + _STUB.format(doc="Führt überlappende Intervalle zusammen."),
            "Complète cette fonction :\n"
            + _STUB.format(doc="Fusionne les intervalles qui se chevauchent."),
            "补全这个函数：\n" + _STUB.format(doc="合并重叠的区间。"),
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
            "Write unit tests with pytest for a function that parses dates in the format "
            "DD/MM/YYYY.",
            "Scrivi dei test unitari con pytest per una funzione che interpreta date nel "
            "formato GG/MM/AAAA.",
            "Escribe pruebas unitarias con pytest para una función que analiza fechas en "
            "formato DD/MM/AAAA.",
            "Schreibe Unit-Tests mit pytest für eine Funktion, die Datumsangaben im "
            "Format TT.MM.JJJJ parst.",
            "Écris des tests unitaires avec pytest pour une fonction qui analyse des "
            "dates au format JJ/MM/AAAA.",
            "用pytest为一个解析DD/MM/YYYY格式日期的函数编写单元测试。",
        ),
    ],
    "text generation": [
        (
            "Write a short poem about autumn in the city.",
            "Scrivi una breve poesia sull'autunno in città.",
            "Escribe un poema corto sobre el otoño en la ciudad.",
            "Schreibe ein kurzes Gedicht über den Herbst in der Stadt.",
            "Écris un court poème sur l'automne en ville.",
            "写一首关于城市秋天的短诗。",
        ),
        (
            "Draft a polite email to my landlord asking to fix the heating.",
            "Scrivi una mail cortese al mio padrone di casa per chiedergli di riparare "
            "il riscaldamento.",
            "Redacta un correo educado a mi casero pidiéndole que arregle la calefacción.",
            "Verfasse eine höfliche E-Mail an meinen Vermieter mit der Bitte, die Heizung "
            "zu reparieren.",
            "Rédige un e-mail poli à mon propriétaire pour lui demander de réparer le chauffage.",
            "给我的房东写一封礼貌的邮件，请他修理暖气。",
        ),
        (
            "Summarise the following paragraph in two sentences: The city council "
            "approved a new plan to expand the bike lanes downtown. The project will take "
            "three years and cost 12 million euros. Shop owners worry about losing "
            "parking spaces, while cyclists welcome the change.",
            "Riassumi il seguente paragrafo in due frasi: Il consiglio comunale ha "
            "approvato un nuovo piano per ampliare le piste ciclabili in centro. Il "
            "progetto durerà tre anni e costerà 12 milioni di euro. I negozianti temono "
            "di perdere i parcheggi, mentre i ciclisti accolgono con favore il cambiamento.",
            "Resume el siguiente párrafo en dos frases: El ayuntamiento aprobó un nuevo "
            "plan para ampliar los carriles bici del centro. El proyecto durará tres años "
            "y costará 12 millones de euros. Los comerciantes temen perder plazas de "
            "aparcamiento, mientras que los ciclistas celebran el cambio.",
            "Fasse den folgenden Absatz in zwei Sätzen zusammen: Der Stadtrat hat einen "
            "neuen Plan zum Ausbau der Radwege in der Innenstadt beschlossen. Das Projekt "
            "dauert drei Jahre und kostet 12 Millionen Euro. Ladenbesitzer fürchten um "
            "Parkplätze, während Radfahrer die Änderung begrüßen.",
            "Résume le paragraphe suivant en deux phrases : Le conseil municipal a "
            "approuvé un nouveau plan pour étendre les pistes cyclables du centre-ville. "
            "Le projet durera trois ans et coûtera 12 millions d'euros. Les commerçants "
            "craignent de perdre des places de stationnement, tandis que les cyclistes "
            "saluent le changement.",
            "用两句话概括下面这段话：市议会批准了一项扩建市中心自行车道的新计划。该项目"
            "将耗时三年，耗资1200万欧元。店主们担心失去停车位，而骑车的人则对这一变化表示欢迎。",
        ),
        (
            "Write a product description for a handmade leather wallet.",
            "Scrivi una descrizione di prodotto per un portafoglio in pelle fatto a mano.",
            "Escribe una descripción de producto para una cartera de cuero hecha a mano.",
            "Schreibe eine Produktbeschreibung für eine handgefertigte Lederbrieftasche.",
            "Rédige une description de produit pour un portefeuille en cuir fait main.",
            "为一个手工皮革钱包写一段产品描述。",
        ),
        (
            "Write a cover letter for a junior accountant position at a logistics company.",
            "Scrivi una lettera di presentazione per una posizione di contabile junior in "
            "un'azienda di logistica.",
            "Escribe una carta de presentación para un puesto de contable junior en una "
            "empresa de logística.",
            "Schreibe ein Anschreiben für eine Stelle als Junior-Buchhalter bei einem "
            "Logistikunternehmen.",
            "Rédige une lettre de motivation pour un poste de comptable junior dans une "
            "entreprise de logistique.",
            "为一家物流公司的初级会计职位写一封求职信。",
        ),
        (
            "Write a bedtime story for a five-year-old about a dragon who is afraid of the dark.",
            "Scrivi una favola della buonanotte per un bambino di cinque anni su un drago "
            "che ha paura del buio.",
            "Escribe un cuento para dormir para un niño de cinco años sobre un dragón que "
            "tiene miedo a la oscuridad.",
            "Schreibe eine Gutenachtgeschichte für ein fünfjähriges Kind über einen "
            "Drachen, der Angst vor der Dunkelheit hat.",
            "Écris une histoire pour le coucher d'un enfant de cinq ans sur un dragon qui "
            "a peur du noir.",
            "给一个五岁的孩子写一个睡前故事，讲一条怕黑的龙。",
        ),
        (
            "Rewrite this sentence in a more formal tone: hey, we can't make it to the "
            "meeting tomorrow, sorry.",
            "Riscrivi questa frase con un tono più formale: ehi, domani non riusciamo a "
            "venire alla riunione, scusa.",
            "Reescribe esta frase con un tono más formal: oye, mañana no podemos ir a la "
            "reunión, perdona.",
            "Formuliere diesen Satz förmlicher: hey, wir schaffen es morgen nicht zum "
            "Meeting, sorry.",
            "Réécris cette phrase sur un ton plus formel : salut, on ne pourra pas venir "
            "à la réunion demain, désolé.",
            "把这句话改写得更正式一些：嘿，我们明天来不了会议了，抱歉。",
        ),
        (
            "Write a LinkedIn post announcing that our team released version 2.0 of our app.",
            "Scrivi un post per LinkedIn che annunci che il nostro team ha rilasciato la "
            "versione 2.0 della nostra app.",
            "Escribe una publicación de LinkedIn anunciando que nuestro equipo ha lanzado "
            "la versión 2.0 de nuestra app.",
            "Schreibe einen LinkedIn-Beitrag, der ankündigt, dass unser Team Version 2.0 "
            "unserer App veröffentlicht hat.",
            "Rédige un post LinkedIn annonçant que notre équipe a publié la version 2.0 de "
            "notre application.",
            "写一条领英帖子，宣布我们的团队发布了应用的2.0版本。",
        ),
        (
            "I run a small bakery in a quiet neighbourhood and I want to send a newsletter "
            "to our regular customers. Write it for me: announce that from next month we "
            "will open on Sundays from eight to one, that we are adding three sourdough "
            "breads and a gluten-free cake to the menu, and that everyone who brings their "
            "own bag gets a ten percent discount. Keep it warm and friendly, not too long, "
            "and end with an invitation to our tasting day on the first Saturday of the month.",
            "Ho una piccola panetteria in un quartiere tranquillo e voglio mandare una "
            "newsletter ai nostri clienti abituali. Scrivila tu: annuncia che dal mese "
            "prossimo saremo aperti la domenica dalle otto all'una, che aggiungiamo al "
            "menu tre pani a lievitazione naturale e una torta senza glutine, e che chi "
            "porta la propria borsa avrà uno sconto del dieci per cento. Tienila calda e "
            "cordiale, non troppo lunga, e chiudi con un invito alla nostra giornata di "
            "degustazione il primo sabato del mese.",
            "Tengo una pequeña panadería en un barrio tranquilo y quiero enviar un boletín "
            "a nuestros clientes habituales. Escríbelo por mí: anuncia que a partir del mes "
            "que viene abriremos los domingos de ocho a una, que añadimos a la carta tres "
            "panes de masa madre y un pastel sin gluten, y que quien traiga su propia bolsa "
            "tendrá un diez por ciento de descuento. Que sea cálido y cercano, no demasiado "
            "largo, y termina con una invitación a nuestro día de degustación el primer "
            "sábado del mes.",
            "Ich betreibe eine kleine Bäckerei in einem ruhigen Viertel und möchte unseren "
            "Stammkunden einen Newsletter schicken. Schreib ihn für mich: Kündige an, dass "
            "wir ab nächstem Monat sonntags von acht bis eins geöffnet haben, dass wir drei "
            "Sauerteigbrote und einen glutenfreien Kuchen ins Sortiment aufnehmen und dass "
            "alle, die ihre eigene Tasche mitbringen, zehn Prozent Rabatt bekommen. Halte "
            "ihn herzlich und freundlich, nicht zu lang, und schließe mit einer Einladung "
            "zu unserem Probiertag am ersten Samstag des Monats.",
            "Je tiens une petite boulangerie dans un quartier calme et je veux envoyer une "
            "newsletter à nos clients réguliers. Écris-la pour moi : annonce qu'à partir du "
            "mois prochain nous ouvrirons le dimanche de huit heures à treize heures, que "
            "nous ajoutons à la carte trois pains au levain et un gâteau sans gluten, et que "
            "tous ceux qui apportent leur propre sac auront dix pour cent de réduction. "
            "Garde un ton chaleureux et amical, pas trop long, et termine par une invitation "
            "à notre journée de dégustation le premier samedi du mois.",
            "我在一个安静的街区开了一家小面包店，想给我们的老顾客发一封简报。请帮我写："
            "宣布从下个月起我们周日早上八点到下午一点营业，菜单上新增三款酸面包和一款无麸质"
            "蛋糕，凡是自带购物袋的顾客都可以享受九折优惠。语气要温暖友好，不要太长，最后邀请"
            "大家参加我们在每月第一个星期六举办的品尝日。",
        ),
        (
            "Write a speech for my sister's wedding, funny but touching, about three minutes long.",
            "Scrivi un discorso per il matrimonio di mia sorella, divertente ma toccante, "
            "di circa tre minuti.",
            "Escribe un discurso para la boda de mi hermana, divertido pero emotivo, de "
            "unos tres minutos.",
            "Schreibe eine Rede für die Hochzeit meiner Schwester, lustig, aber berührend, "
            "etwa drei Minuten lang.",
            "Écris un discours pour le mariage de ma sœur, drôle mais touchant, d'environ "
            "trois minutes.",
            "为我姐姐的婚礼写一篇致辞，既幽默又感人，大约三分钟。",
        ),
    ],
    "general purpose": [
        (
            "Explain the difference between a virus and a bacterium.",
            "Spiega la differenza tra un virus e un batterio.",
            "Explica la diferencia entre un virus y una bacteria.",
            "Erkläre den Unterschied zwischen einem Virus und einem Bakterium.",
            "Explique la différence entre un virus et une bactérie.",
            "解释病毒和细菌的区别。",
        ),
        (
            "Why is the sky blue?",
            "Perché il cielo è blu?",
            "¿Por qué el cielo es azul?",
            "Warum ist der Himmel blau?",
            "Pourquoi le ciel est-il bleu ?",
            "为什么天空是蓝色的？",
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
            "Compare the pros and cons of renting versus buying a house in a big city.",
            "Confronta i pro e i contro dell'affitto rispetto all'acquisto di una casa in "
            "una grande città.",
            "Compara las ventajas y desventajas de alquilar frente a comprar una casa en "
            "una gran ciudad.",
            "Vergleiche die Vor- und Nachteile von Mieten und Kaufen eines Hauses in einer "
            "Großstadt.",
            "Compare les avantages et les inconvénients de la location et de l'achat d'une "
            "maison dans une grande ville.",
            "比较在大城市租房和买房的利弊。",
        ),
        (
            "What is the probability of rolling two sixes with two dice?",
            "Qual è la probabilità di ottenere due sei lanciando due dadi?",
            "¿Cuál es la probabilidad de sacar dos seises con dos dados?",
            "Wie hoch ist die Wahrscheinlichkeit, mit zwei Würfeln zwei Sechsen zu würfeln?",
            "Quelle est la probabilité d'obtenir deux six avec deux dés ?",
            "用两个骰子掷出两个六的概率是多少？",
        ),
        (
            "My rental contract says the landlord can keep the deposit for any damage. "
            "Is that clause legal, and what liability do I have for normal wear?",
            "Il mio contratto d'affitto dice che il proprietario può trattenere la cauzione "
            "per qualsiasi danno. Questa clausola è legale, e che responsabilità ho per la "
            "normale usura?",
            "Mi contrato de alquiler dice que el casero puede quedarse con la fianza por "
            "cualquier daño. ¿Es legal esa cláusula y qué responsabilidad tengo por el "
            "desgaste normal?",
            "In meinem Mietvertrag steht, dass der Vermieter die Kaution für jeden Schaden "
            "einbehalten darf. Ist diese Klausel zulässig, und wofür hafte ich bei normaler "
            "Abnutzung?",
            "Mon contrat de location dit que le propriétaire peut garder la caution pour "
            "tout dommage. Cette clause est-elle légale, et quelle est ma responsabilité "
            "pour l'usure normale ?",
            "我的租房合同上写着房东可以因任何损坏扣留押金。这条条款合法吗？正常磨损我要承担什么责任？",
        ),
        (
            "How does a heat pump work, and is it worth it in a cold climate?",
            "Come funziona una pompa di calore, e conviene in un clima freddo?",
            "¿Cómo funciona una bomba de calor y merece la pena en un clima frío?",
            "Wie funktioniert eine Wärmepumpe, und lohnt sie sich in einem kalten Klima?",
            "Comment fonctionne une pompe à chaleur, et est-ce que ça vaut le coup dans un "
            "climat froid ?",
            "热泵是如何工作的？在寒冷气候下值得吗？",
        ),
        (
            "Calculate the monthly payment on a 200000 euro mortgage at 3.5% over 25 years.",
            "Calcola la rata mensile di un mutuo di 200000 euro al 3,5% in 25 anni.",
            "Calcula la cuota mensual de una hipoteca de 200000 euros al 3,5 % a 25 años.",
            "Berechne die monatliche Rate für ein Darlehen von 200000 Euro zu 3,5 % über 25 Jahre.",
            "Calcule la mensualité d'un prêt immobilier de 200000 euros à 3,5 % sur 25 ans.",
            "计算一笔20万欧元、年利率3.5%、期限25年的房贷的月供。",
        ),
        (
            "What were the main causes of the First World War?",
            "Quali furono le cause principali della prima guerra mondiale?",
            "¿Cuáles fueron las principales causas de la Primera Guerra Mundial?",
            "Was waren die Hauptursachen des Ersten Weltkriegs?",
            "Quelles ont été les principales causes de la Première Guerre mondiale ?",
            "第一次世界大战的主要原因是什么？",
        ),
        (
            "I am planning a two-week trip to Japan in April with my partner and our two "
            "children, aged six and nine. We like nature, good food and museums, but we do "
            "not want to change hotels every night, and the kids get tired after long train "
            "rides. Suggest an itinerary that balances Tokyo, Kyoto and one place in the "
            "countryside, explain why you chose each stop, and tell us roughly how much the "
            "rail travel will cost for the four of us.",
            "Sto organizzando un viaggio di due settimane in Giappone ad aprile con il mio "
            "compagno e i nostri due figli, di sei e nove anni. Ci piacciono la natura, il "
            "buon cibo e i musei, ma non vogliamo cambiare albergo ogni sera, e i bambini si "
            "stancano dopo i lunghi viaggi in treno. Suggerisci un itinerario che bilanci "
            "Tokyo, Kyoto e un posto in campagna, spiega perché hai scelto ogni tappa, e "
            "dicci più o meno quanto costeranno i treni per noi quattro.",
            "Estoy planeando un viaje de dos semanas a Japón en abril con mi pareja y "
            "nuestros dos hijos, de seis y nueve años. Nos gustan la naturaleza, la buena "
            "comida y los museos, pero no queremos cambiar de hotel cada noche, y los niños "
            "se cansan tras los trayectos largos en tren. Sugiere un itinerario que "
            "equilibre Tokio, Kioto y un lugar en el campo, explica por qué elegiste cada "
            "parada y dinos aproximadamente cuánto nos costará el tren a los cuatro.",
            "Ich plane mit meinem Partner und unseren beiden Kindern, sechs und neun Jahre "
            "alt, im April eine zweiwöchige Reise nach Japan. Wir mögen Natur, gutes Essen "
            "und Museen, wollen aber nicht jede Nacht das Hotel wechseln, und die Kinder "
            "werden nach langen Zugfahrten müde. Schlag eine Route vor, die Tokio, Kyoto und "
            "einen Ort auf dem Land ausgewogen verbindet, erkläre, warum du jede Station "
            "gewählt hast, und sag uns ungefähr, was die Bahnfahrten für uns vier kosten.",
            "Je prépare un voyage de deux semaines au Japon en avril avec mon compagnon et "
            "nos deux enfants, de six et neuf ans. Nous aimons la nature, la bonne cuisine "
            "et les musées, mais nous ne voulons pas changer d'hôtel chaque soir, et les "
            "enfants se fatiguent après les longs trajets en train. Propose un itinéraire "
            "qui équilibre Tokyo, Kyoto et un endroit à la campagne, explique pourquoi tu as "
            "choisi chaque étape, et dis-nous à peu près combien coûtera le train pour nous "
            "quatre.",
            "我打算四月和伴侣以及两个孩子（六岁和九岁）去日本旅行两周。我们喜欢大自然、美食和"
            "博物馆，但不想每晚都换酒店，而且孩子们坐长途火车后会累。请推荐一条兼顾东京、京都"
            "和一个乡村地方的行程，解释你为什么选择每一站，并告诉我们四个人的铁路交通大概要花多少钱。",
        ),
    ],
    "lightweight": [
        (
            "Translate 'thank you very much' into Japanese.",
            "Traduci 'grazie mille' in giapponese.",
            "Traduce 'muchas gracias' al japonés.",
            "Übersetze 'vielen Dank' ins Japanische.",
            "Traduis 'merci beaucoup' en japonais.",
            "把'非常感谢'翻译成日语。",
        ),
        (
            "What is the capital of Australia?",
            "Qual è la capitale dell'Australia?",
            "¿Cuál es la capital de Australia?",
            "Was ist die Hauptstadt von Australien?",
            "Quelle est la capitale de l'Australie ?",
            "澳大利亚的首都是哪里？",
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
            "Convert 72 Fahrenheit to Celsius.",
            "Converti 72 gradi Fahrenheit in Celsius.",
            "Convierte 72 grados Fahrenheit a Celsius.",
            "Rechne 72 Grad Fahrenheit in Celsius um.",
            "Convertis 72 degrés Fahrenheit en Celsius.",
            "把72华氏度换算成摄氏度。",
        ),
        (
            "What is 15% of 240?",
            "Quanto fa il 15% di 240?",
            "¿Cuánto es el 15 % de 240?",
            "Wie viel sind 15 % von 240?",
            "Combien font 15 % de 240 ?",
            "240的15%是多少？",
        ),
        (
            "Give me a synonym for 'happy'.",
            "Dammi un sinonimo di 'felice'.",
            "Dame un sinónimo de 'feliz'.",
            "Nenne mir ein Synonym für 'glücklich'.",
            "Donne-moi un synonyme de 'heureux'.",
            "给我一个'快乐'的同义词。",
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
            "Who wrote 'Pride and Prejudice'?",
            "Chi ha scritto 'Orgoglio e pregiudizio'?",
            "¿Quién escribió 'Orgullo y prejuicio'?",
            "Wer hat 'Stolz und Vorurteil' geschrieben?",
            "Qui a écrit 'Orgueil et préjugés' ?",
            "《傲慢与偏见》是谁写的？",
        ),
        (
            "What is 12 times 7?",
            "Quanto fa 12 per 7?",
            "¿Cuánto es 12 por 7?",
            "Was ist 12 mal 7?",
            "Combien font 12 fois 7 ?",
            "12乘以7等于多少？",
        ),
        (
            "Define the word 'ephemeral'.",
            "Dai la definizione della parola 'effimero'.",
            "Define la palabra 'efímero'.",
            "Definiere das Wort 'vergänglich'.",
            "Définis le mot 'éphémère'.",
            "给'短暂'这个词下个定义。",
        ),
    ],
}


def prompts(half: str = "all") -> list[tuple[str, dict[str, str]]]:
    """(kind, {language: text}) for the ``half`` asked: ``dev``, ``held-out`` or ``all``."""
    out = []
    for kind in KINDS:
        for i, texts in enumerate(PROMPTS[kind]):
            in_dev = i % 2 == 0
            if half == "all" or (half == "dev") == in_dev:
                out.append((kind, dict(zip(LANGUAGES, texts, strict=True))))
    return out
