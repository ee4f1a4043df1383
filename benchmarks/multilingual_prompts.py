"""Forty requests a user would type, in English and in Italian, Spanish, German,
French, Chinese, Portuguese, Japanese and Korean (translated by hand for
``multilingual_routing.py``; the last three a session after the first five, with the
same dev and held-out halves).

Ten of each kind the product routes (the synthetic set's four classes). Within each
kind, the 1st, 3rd, 5th, 7th and 9th are the ``dev`` half (looked at while the
routers' word lists were extended) and the others the ``held-out`` half (measured
only after). Code in a request stays code in every language; its comments and
docstrings are translated, as a user would write them.
"""

from __future__ import annotations

LANGUAGES = ("en", "it", "es", "de", "fr", "zh", "pt", "ja", "ko")
KINDS = ("code generation", "text generation", "general purpose", "lightweight")

_FENCE = "```python\ndef average(xs):\n    return sum(xs) / len(xs)\n```"
_STUB = (
    "def merge_intervals(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:\n"
    '    """{doc}"""'
)

#: kind -> ten tuples of the nine languages' texts, in ``LANGUAGES`` order
PROMPTS: dict[str, list[tuple[str, ...]]] = {
    "code generation": [
        (
            "Write a Python function that checks whether a string is a palindrome.",
            "Scrivi una funzione Python che controlla se una stringa è palindroma.",
            "Escribe una función en Python que compruebe si una cadena es un palíndromo.",
            "Schreibe eine Python-Funktion, die prüft, ob ein String ein Palindrom ist.",
            "Écris une fonction Python qui vérifie si une chaîne est un palindrome.",
            "写一个Python函数，检查一个字符串是否是回文。",
            "Escreva uma função em Python que verifique se uma string é um palíndromo.",
            "文字列が回文かどうかを判定するPythonの関数を書いてください。",
            "문자열이 회문인지 확인하는 파이썬 함수를 작성해 줘.",
        ),
        (
            "Implement a thread-safe LRU cache in Java with a fixed capacity.",
            "Implementa una cache LRU thread-safe in Java con una capacità fissa.",
            "Implementa una caché LRU thread-safe en Java con capacidad fija.",
            "Implementiere einen threadsicheren LRU-Cache in Java mit fester Kapazität.",
            "Implémente un cache LRU thread-safe en Java avec une capacité fixe.",
            "用Java实现一个固定容量的线程安全LRU缓存。",
            "Implemente um cache LRU thread-safe em Java com capacidade fixa.",
            "Javaで容量固定のスレッドセーフなLRUキャッシュを実装してください。",
            "Java로 용량이 고정된 스레드 안전 LRU 캐시를 구현해 줘.",
        ),
        (
            f"Fix this code, it crashes on an empty list:\n{_FENCE}",
            f"Correggi questo codice, va in crash con una lista vuota:\n{_FENCE}",
            f"Arregla este código, falla con una lista vacía:\n{_FENCE}",
            f"Korrigiere diesen Code, er stürzt bei einer leeren Liste ab:\n{_FENCE}",
            f"Corrige ce code, il plante avec une liste vide :\n{_FENCE}",
            f"修复这段代码，遇到空列表时会崩溃：\n{_FENCE}",
            f"Corrija este código, ele trava com uma lista vazia:\n{_FENCE}",
            f"このコードを直してください。空のリストで落ちます：\n{_FENCE}",
            f"이 코드 좀 고쳐 줘. 빈 리스트에서 오류가 나:\n{_FENCE}",
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
            "Escreva uma consulta SQL que retorne os dez clientes com o maior total de pedidos "
            "em 2024.",
            "2024年の注文合計が最も多い顧客上位10人を返すSQLクエリを書いてください。",
            "2024년 주문 총액이 가장 높은 고객 10명을 반환하는 SQL 쿼리를 작성해 줘.",
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
            "Crie um script bash que faça backup da minha pasta pessoal em /mnt/backup toda noite.",
            "毎晩ホームフォルダを/mnt/backupにバックアップするbashスクリプトを作ってください。",
            "매일 밤 내 홈 폴더를 /mnt/backup에 백업하는 bash 스크립트를 만들어 줘.",
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
            "Como leio um arquivo CSV com pandas e removo as linhas em que a coluna price está "
            "vazia?",
            "pandasでCSVファイルを読み込んで、price列が空の行を削除するにはどうすればいいですか？",
            "pandas로 CSV 파일을 읽고 price 열이 비어 있는 행을 삭제하려면 어떻게 해야 하나요?",
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
            "Escreva uma função JavaScript que aplique debounce em outra função com 300 ms.",
            "別の関数を300ミリ秒でデバウンスするJavaScriptの関数を書いてください。",
            "다른 함수를 300ms 동안 디바운스하는 JavaScript 함수를 작성해 줘.",
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
            "Complete esta função:\n" + _STUB.format(doc="Mescla os intervalos sobrepostos."),
            "この関数を完成させてください：\n" + _STUB.format(doc="重なり合う区間をマージする。"),
            "이 함수를 완성해 줘:\n" + _STUB.format(doc="겹치는 구간을 병합한다."),
        ),
        (
            "Write a regex that validates an email address.",
            "Scrivi una regex che validi un indirizzo email.",
            "Escribe una regex que valide una dirección de correo electrónico.",
            "Schreibe einen regulären Ausdruck, der eine E-Mail-Adresse prüft.",
            "Écris une regex qui valide une adresse e-mail.",
            "写一个正则表达式来验证电子邮件地址。",
            "Escreva uma regex que valide um endereço de e-mail.",
            "メールアドレスを検証する正規表現を書いてください。",
            "이메일 주소를 검증하는 정규식을 작성해 줘.",
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
            "Escreva testes unitários com pytest para uma função que analisa datas no formato "
            "DD/MM/AAAA.",
            "DD/MM/YYYY形式の日付をパースする関数のユニットテストをpytestで書いてください。",
            "DD/MM/YYYY 형식의 날짜를 파싱하는 함수에 대한 단위 테스트를 pytest로 작성해 줘.",
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
            "Escreva um poema curto sobre o outono na cidade.",
            "都会の秋をテーマにした短い詩を書いてください。",
            "도시의 가을에 관한 짧은 시를 써 줘.",
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
            "Escreva um e-mail educado para o meu senhorio pedindo que ele conserte o aquecimento.",
            "大家さんに暖房の修理をお願いする丁寧なメールを書いてください。",
            "집주인에게 난방을 고쳐 달라고 부탁하는 정중한 이메일을 써 줘.",
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
            "Resuma o parágrafo a seguir em duas frases: A câmara municipal aprovou um novo "
            "plano para ampliar as ciclovias no centro. O projeto vai levar três anos e custar "
            "12 milhões de euros. Os comerciantes temem perder vagas de estacionamento, "
            "enquanto os ciclistas aprovam a mudança.",
            "次の段落を2文に要約してください：市議会は中心街の自転車レーンを拡張する新しい計画を"
            "承認した。このプロジェクトには3年かかり、費用は1200万ユーロになる。商店主たちは"
            "駐車スペースが減ることを心配しているが、自転車に乗る人たちはこの変更を歓迎している。",
            "다음 단락을 두 문장으로 요약해 줘: 시의회는 도심의 자전거 도로를 확장하는 새 계획을 "
            "승인했다. 이 사업은 3년이 걸리고 1200만 유로가 든다. 상인들은 주차 공간이 줄어들까 "
            "걱정하고, 자전거 이용자들은 이 변화를 반기고 있다.",
        ),
        (
            "Write a product description for a handmade leather wallet.",
            "Scrivi una descrizione di prodotto per un portafoglio in pelle fatto a mano.",
            "Escribe una descripción de producto para una cartera de cuero hecha a mano.",
            "Schreibe eine Produktbeschreibung für eine handgefertigte Lederbrieftasche.",
            "Rédige une description de produit pour un portefeuille en cuir fait main.",
            "为一个手工皮革钱包写一段产品描述。",
            "Escreva uma descrição de produto para uma carteira de couro feita à mão.",
            "手作りの革財布の商品説明を書いてください。",
            "수제 가죽 지갑의 상품 설명을 써 줘.",
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
            "Escreva uma carta de apresentação para uma vaga de contador júnior em uma empresa "
            "de logística.",
            "物流会社のジュニア経理職に応募するためのカバーレターを書いてください。",
            "물류 회사의 주니어 회계 담당자 자리에 지원하는 자기소개서를 써 줘.",
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
            "Escreva uma história para dormir para uma criança de cinco anos sobre um dragão "
            "que tem medo do escuro.",
            "暗闇が怖いドラゴンが出てくる、5歳の子ども向けのおやすみ前のお話を書いてください。",
            "어둠을 무서워하는 용에 대한, 다섯 살 아이에게 들려줄 잠자리 동화를 써 줘.",
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
            "Reescreva esta frase num tom mais formal: oi, não vamos conseguir ir à reunião "
            "amanhã, desculpa.",
            "この文をもっとフォーマルな言い方に書き直してください：ねえ、明日の会議に行けなくなった、"
            "ごめん。",
            "이 문장을 더 격식 있는 말투로 바꿔 줘: 야, 우리 내일 회의 못 갈 것 같아, 미안.",
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
            "Escreva um post para o LinkedIn anunciando que nossa equipe lançou a versão 2.0 do "
            "nosso app.",
            "私たちのチームがアプリのバージョン2.0をリリースしたことを知らせるLinkedInの投稿を"
            "書いてください。",
            "우리 팀이 앱 2.0 버전을 출시했다고 알리는 LinkedIn 게시물을 써 줘.",
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
            "Tenho uma pequena padaria num bairro tranquilo e quero mandar uma newsletter para "
            "os nossos clientes habituais. Escreva-a para mim: anuncie que a partir do mês que "
            "vem vamos abrir aos domingos das oito à uma, que vamos incluir no cardápio três "
            "pães de fermentação natural e um bolo sem glúten, e que quem trouxer a própria "
            "sacola ganha dez por cento de desconto. Deixe o texto caloroso e simpático, não "
            "muito longo, e termine com um convite para o nosso dia de degustação no primeiro "
            "sábado do mês.",
            "静かな住宅街で小さなパン屋を営んでいて、常連のお客さまにニュースレターを送りたいと"
            "思っています。代わりに書いてください。来月から日曜日も8時から13時まで営業すること、"
            "天然酵母のパンを3種類とグルテンフリーのケーキをメニューに加えること、そしてマイバッグを"
            "持参した方は全員10%引きになることをお知らせしてください。温かく親しみやすい雰囲気で、"
            "長くなりすぎないようにし、最後は毎月第1土曜日の試食デーへのお誘いで締めくくってください。",
            "조용한 동네에서 작은 빵집을 운영하고 있는데, 단골손님들에게 소식지를 보내고 싶어. "
            "대신 써 줘: 다음 달부터 일요일에도 오전 8시부터 오후 1시까지 문을 연다는 것, 메뉴에 "
            "천연 발효종 빵 세 가지와 글루텐 프리 케이크를 새로 추가한다는 것, 그리고 장바구니를 "
            "직접 가져오는 손님은 누구나 10% 할인을 받는다는 것을 알려 줘. 따뜻하고 친근한 "
            "느낌으로, 너무 길지 않게 쓰고, 마지막은 매달 첫째 토요일에 여는 시식 행사 초대로 "
            "마무리해 줘.",
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
            "Escreva um discurso para o casamento da minha irmã, engraçado mas emocionante, de "
            "uns três minutos.",
            "妹の結婚式のスピーチを書いてください。面白くて感動的な、3分くらいのものをお願いします。",
            "여동생 결혼식에서 할 축사를 써 줘. 재미있으면서도 감동적으로, 3분 정도 분량으로.",
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
            "Explique a diferença entre um vírus e uma bactéria.",
            "ウイルスと細菌の違いを説明してください。",
            "바이러스와 세균의 차이를 설명해 줘.",
        ),
        (
            "Why is the sky blue?",
            "Perché il cielo è blu?",
            "¿Por qué el cielo es azul?",
            "Warum ist der Himmel blau?",
            "Pourquoi le ciel est-il bleu ?",
            "为什么天空是蓝色的？",
            "Por que o céu é azul?",
            "空はなぜ青いのですか？",
            "하늘은 왜 파란색이야?",
        ),
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
            "Compare os prós e os contras de alugar ou comprar uma casa numa cidade grande.",
            "大都市で家を借りる場合と買う場合のメリットとデメリットを比較してください。",
            "대도시에서 집을 임대하는 것과 구매하는 것의 장단점을 비교해 줘.",
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
            "Meu contrato de aluguel diz que o proprietário pode ficar com o depósito caução "
            "por qualquer dano. Essa cláusula é legal? E que responsabilidade eu tenho pelo "
            "desgaste normal?",
            "賃貸契約書に、どんな損傷でも大家が敷金を返さなくてよいと書いてあります。この条項は"
            "合法ですか？通常の使用による傷みについて、私にはどんな責任がありますか？",
            "제 임대차 계약서에 어떤 손상이든 집주인이 보증금을 돌려주지 않아도 된다고 적혀 "
            "있어요. 이 조항이 합법인가요? 그리고 일반적인 마모에 대해서는 제가 어떤 책임을 지나요?",
        ),
        (
            "How does a heat pump work, and is it worth it in a cold climate?",
            "Come funziona una pompa di calore, e conviene in un clima freddo?",
            "¿Cómo funciona una bomba de calor y merece la pena en un clima frío?",
            "Wie funktioniert eine Wärmepumpe, und lohnt sie sich in einem kalten Klima?",
            "Comment fonctionne une pompe à chaleur, et est-ce que ça vaut le coup dans un "
            "climat froid ?",
            "热泵是如何工作的？在寒冷气候下值得吗？",
            "Como funciona uma bomba de calor, e vale a pena num clima frio?",
            "ヒートポンプはどういう仕組みで動くのですか？寒冷地でも導入する価値はありますか？",
            "히트 펌프는 어떻게 작동하나요? 추운 지역에서도 쓸 만한가요?",
        ),
        (
            "Calculate the monthly payment on a 200000 euro mortgage at 3.5% over 25 years.",
            "Calcola la rata mensile di un mutuo di 200000 euro al 3,5% in 25 anni.",
            "Calcula la cuota mensual de una hipoteca de 200000 euros al 3,5 % a 25 años.",
            "Berechne die monatliche Rate für ein Darlehen von 200000 Euro zu 3,5 % über 25 Jahre.",
            "Calcule la mensualité d'un prêt immobilier de 200000 euros à 3,5 % sur 25 ans.",
            "计算一笔20万欧元、年利率3.5%、期限25年的房贷的月供。",
            "Calcule a prestação mensal de um financiamento imobiliário de 200000 euros a 3,5% "
            "em 25 anos.",
            "20万ユーロの住宅ローンを金利3.5%、25年で組んだ場合の毎月の返済額を計算してください。",
            "20만 유로 주택담보대출을 연 3.5% 금리, 25년 상환으로 받으면 월 상환액이 얼마인지 "
            "계산해 줘.",
        ),
        (
            "What were the main causes of the First World War?",
            "Quali furono le cause principali della prima guerra mondiale?",
            "¿Cuáles fueron las principales causas de la Primera Guerra Mundial?",
            "Was waren die Hauptursachen des Ersten Weltkriegs?",
            "Quelles ont été les principales causes de la Première Guerre mondiale ?",
            "第一次世界大战的主要原因是什么？",
            "Quais foram as principais causas da Primeira Guerra Mundial?",
            "第一次世界大戦の主な原因は何でしたか？",
            "제1차 세계대전의 주요 원인은 무엇이었나요?",
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
            "Estou planejando uma viagem de duas semanas ao Japão em abril com meu companheiro e "
            "nossos dois filhos, de seis e nove anos. Gostamos de natureza, boa comida e museus, "
            "mas não queremos trocar de hotel toda noite, e as crianças ficam cansadas depois de "
            "longas viagens de trem. Sugira um roteiro que equilibre Tóquio, Quioto e um lugar "
            "no interior, explique por que você escolheu cada parada e diga mais ou menos quanto "
            "vai custar o trem para nós quatro.",
            "4月にパートナーと6歳と9歳の子ども2人を連れて、2週間の日本旅行を計画しています。"
            "自然やおいしい食べ物、博物館が好きですが、毎晩ホテルを変えるのは避けたいですし、"
            "子どもたちは長時間電車に乗ると疲れてしまいます。東京、京都、それに地方の一か所を"
            "バランスよく回る旅程を提案して、それぞれの場所を選んだ理由を説明してください。"
            "また、4人分の鉄道の運賃がだいたいいくらになるかも教えてください。",
            "4월에 배우자, 그리고 여섯 살과 아홉 살인 두 아이와 함께 2주 동안 일본 여행을 계획하고 "
            "있어요. 우리는 자연, 맛있는 음식, 박물관을 좋아하지만 매일 밤 호텔을 옮기고 싶지는 "
            "않고, 아이들은 기차를 오래 타면 지쳐요. 도쿄, 교토, 그리고 시골 한 곳을 균형 있게 "
            "도는 일정을 추천해 주고, 각 장소를 고른 이유를 설명해 주세요. 그리고 우리 네 식구의 "
            "기차 요금이 대략 얼마나 들지도 알려 주세요.",
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
            "Traduza 'muito obrigado' para o japonês.",
            "「thank you very much」を日本語に訳してください。",
            "'정말 고마워요'를 일본어로 번역해 줘.",
        ),
        (
            "What is the capital of Australia?",
            "Qual è la capitale dell'Australia?",
            "¿Cuál es la capital de Australia?",
            "Was ist die Hauptstadt von Australien?",
            "Quelle est la capitale de l'Australie ?",
            "澳大利亚的首都是哪里？",
            "Qual é a capital da Austrália?",
            "オーストラリアの首都はどこですか？",
            "호주의 수도는 어디야?",
        ),
        (
            "Hi! How are you today?",
            "Ciao! Come stai oggi?",
            "¡Hola! ¿Cómo estás hoy?",
            "Hallo! Wie geht es dir heute?",
            "Salut ! Comment ça va aujourd'hui ?",
            "你好！你今天怎么样？",
            "Oi! Como você está hoje?",
            "こんにちは！今日の調子はどう？",
            "안녕! 오늘 기분 어때?",
        ),
        (
            "Convert 72 Fahrenheit to Celsius.",
            "Converti 72 gradi Fahrenheit in Celsius.",
            "Convierte 72 grados Fahrenheit a Celsius.",
            "Rechne 72 Grad Fahrenheit in Celsius um.",
            "Convertis 72 degrés Fahrenheit en Celsius.",
            "把72华氏度换算成摄氏度。",
            "Converta 72 graus Fahrenheit para Celsius.",
            "華氏72度を摂氏に換算してください。",
            "화씨 72도를 섭씨로 바꿔 줘.",
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
            "Give me a synonym for 'happy'.",
            "Dammi un sinonimo di 'felice'.",
            "Dame un sinónimo de 'feliz'.",
            "Nenne mir ein Synonym für 'glücklich'.",
            "Donne-moi un synonyme de 'heureux'.",
            "给我一个'快乐'的同义词。",
            "Me dê um sinônimo de 'feliz'.",
            "「嬉しい」の類義語を教えてください。",
            "'행복한'의 동의어를 알려 줘.",
        ),
        (
            "Thanks, that was helpful!",
            "Grazie, mi è stato utile!",
            "¡Gracias, me ha sido útil!",
            "Danke, das war hilfreich!",
            "Merci, c'était utile !",
            "谢谢，很有帮助！",
            "Obrigado, ajudou muito!",
            "ありがとう、とても助かりました！",
            "고마워, 정말 도움이 됐어!",
        ),
        (
            "Who wrote 'Pride and Prejudice'?",
            "Chi ha scritto 'Orgoglio e pregiudizio'?",
            "¿Quién escribió 'Orgullo y prejuicio'?",
            "Wer hat 'Stolz und Vorurteil' geschrieben?",
            "Qui a écrit 'Orgueil et préjugés' ?",
            "《傲慢与偏见》是谁写的？",
            "Quem escreveu 'Orgulho e Preconceito'?",
            "『高慢と偏見』を書いたのは誰ですか？",
            "'오만과 편견'은 누가 썼어?",
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
        (
            "Define the word 'ephemeral'.",
            "Dai la definizione della parola 'effimero'.",
            "Define la palabra 'efímero'.",
            "Definiere das Wort 'vergänglich'.",
            "Définis le mot 'éphémère'.",
            "给'短暂'这个词下个定义。",
            "Defina a palavra 'efêmero'.",
            "「儚い」という言葉の意味を教えてください。",
            "'덧없다'라는 단어의 뜻을 알려 줘.",
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
