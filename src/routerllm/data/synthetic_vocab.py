"""Vocabulary, templates and modifiers of the synthetic dataset (:mod:`routerllm.data.synthetic`).

``TEMPLATE_TEXTS`` holds one template per line for each class label; its
``{slots}`` name entries of ``VOCAB``. Items are written as ``a | b | c`` to keep
the lists readable and short. Indefinite articles in templates assume the
items they precede start with a consonant sound (a test checks this).
"""

from __future__ import annotations


def _items(block: str) -> tuple[str, ...]:
    """Split ``a | b | c`` lines into items."""
    return tuple(s.strip() for line in block.splitlines() for s in line.split("|") if s.strip())


VOCAB: dict[str, tuple[str, ...]] = {
    # -- code generation
    "language": _items("""Python | JavaScript | TypeScript | Java | C++ | C# | Go | Rust | Ruby
        PHP | Kotlin | Swift | Scala | Haskell | Julia | Dart"""),
    "old_language": _items("Perl | MATLAB | Fortran | COBOL | VBA | Pascal | Visual Basic 6"),
    "task": _items("""reverses a linked list | checks whether a string is a palindrome
        merges two sorted arrays | finds the longest common subsequence of two strings
        parses a CSV file into a list of records | validates an email address
        computes the nth Fibonacci number | removes duplicates from a list while keeping order
        counts word frequencies in a text file | flattens an arbitrarily nested list
        finds all prime numbers below n | rotates a matrix by 90 degrees
        groups anagrams from a list of words | detects a cycle in a directed graph
        serializes a binary tree to a string | finds the kth largest element of an array
        retries an HTTP request with exponential backoff | reads a large log file line by line
        computes a moving average over a stream | generates all permutations of a list
        converts a Roman numeral to an integer | checks if a sudoku board is valid
        debounces calls to an event handler | paginates results from a REST API"""),
    "data_structure": _items("""binary search tree | hash map with open addressing | min-heap
        trie | least-recently-used cache | graph with adjacency lists | circular buffer | stack
        queue built from two stacks | union-find structure | skip list | bloom filter
        segment tree | doubly linked list | priority queue"""),
    "algorithm": _items("""Dijkstra's shortest path | quicksort | merge sort | binary search
        A* search | topological sort | Kruskal's minimum spanning tree | KMP string matching
        breadth-first search | depth-first search | 0/1 knapsack with dynamic programming
        Floyd-Warshall | heap sort | reservoir sampling | token-bucket rate limiting"""),
    "bug": _items("""throws an IndexError on empty input | returns the wrong result for negative numbers
        leaks memory when called in a loop | deadlocks under heavy load
        is off by one at the end of the array | hangs forever on large inputs
        crashes with a null pointer exception | gives different results on every run
        fails only when the input contains unicode | overflows for big numbers"""),
    "app": _items("""REST API for a todo list | command-line tool that renames files in bulk
        web scraper for product prices | chat server using websockets | URL shortener
        password manager with encrypted storage | Markdown to HTML converter
        stock inventory tracker backed by SQLite | weather dashboard that calls a public API
        Discord bot that answers trivia questions"""),
    "sql_task": _items("""returns the top 5 customers by total spend
        finds employees who earn more than their manager | counts orders per month in 2023
        deletes duplicate rows from a users table | lists products that were never ordered
        computes a running total of sales per region"""),
    "size": _items("ten million | one billion | 500,000 | a few hundred million"),
    # -- text generation
    "genre": _items("""science fiction | fantasy | mystery | horror | romance | historical fiction
        thriller | fairy-tale | comedy | swashbuckling adventure | dystopian | noir"""),
    "character": _items("""a lighthouse keeper who finds a message in a bottle
        a robot learning to paint | two rival chefs in a small town
        an astronaut stranded on Mars | a detective in 1920s Paris
        a girl who can talk to birds | an old sailor's last voyage | a time traveller stuck in 1850
        a dragon afraid of fire | a librarian who discovers a secret door
        a retired spy running a bakery | twin sisters separated at birth
        a ghost who haunts a coffee shop | a village that wakes up without colours"""),
    "topic": _items("""the future of renewable energy | remote work | the history of the printing press
        social media and teenagers | urban gardening | artificial intelligence in healthcare
        the importance of sleep | electric cars | space tourism | minimalism | climate change
        video games as art | public libraries | learning a second language | fast fashion
        the four-day work week | ocean plastic pollution | volunteering"""),
    "audience": _items("""children | teenagers | busy professionals | retirees | university students
        software engineers | small business owners | a general audience | new parents"""),
    "length": _items("300-word | 500-word | 1,000-word | two-page | short | five-paragraph"),
    "tone": _items("""humorous | persuasive | formal | moving | melancholic | lighthearted
        suspenseful | heartfelt | witty"""),
    "poem": _items("poem | haiku | sonnet | limerick | free-verse poem | ballad"),
    "theme": _items("""autumn | the sea | lost love | city nights | growing up | friendship
        the first snow | leaving home | a summer storm | memory | hope"""),
    "claim": _items("""homework should be abolished | cities should ban cars from their centres
        everyone should learn to code | voting should be mandatory
        museums should be free | space exploration is worth the cost"""),
    "product": _items("""a reusable water bottle | noise-cancelling headphones | an ergonomic office chair
        a smart thermostat | a handmade leather wallet | a plant-based protein bar"""),
    "job": _items("""junior data analyst | marketing manager | nurse | primary school teacher
        UX designer | project coordinator | barista"""),
    "music": _items("country | hip-hop | a 1980s power ballad | folk | punk rock | jazz"),
    # -- general purpose
    "concept": _items("""quantum entanglement | inflation | photosynthesis | the blockchain
        compound interest | the CAP theorem | natural selection | the placebo effect
        general relativity | machine learning | the greenhouse effect | supply and demand
        a neural network | herd immunity | plate tectonics | opportunity cost
        a black hole | DNA replication | the immune system | cognitive dissonance
        game theory | entropy | the Doppler effect | comparative advantage | dark matter
        the Turing test | gradient descent | the prisoner's dilemma | the circadian rhythm
        the bystander effect | quantitative easing | the Monty Hall problem | CRISPR
        the theory of evolution | the tragedy of the commons | Bayes' theorem"""),
    "level": _items("""like I'm five | to a high school student | in plain terms
        for a non-technical manager | with an everyday analogy | in detail | step by step
        to my grandmother | with a concrete example | as if to a new colleague"""),
    "system": _items("""the internet | a refrigerator | GPS | the human heart | a search engine
        a nuclear reactor | credit scoring | an electric motor | public-key cryptography
        the electoral college | a jet engine | memory in the brain | a vaccine
        the stock market | a compiler | a hybrid car engine | the water cycle
        a credit card payment | wifi | noise cancellation | a kidney"""),
    "pair": _items("""SQL and NoSQL databases | renting and buying a home | TCP and UDP
        stocks and bonds | Plato and Aristotle on ethics | electric and hydrogen cars
        monoliths and microservices | aerobic and anaerobic exercise
        Keynesian and Austrian economics | viruses and bacteria | weather and climate
        capitalism and socialism | nuclear and solar power | mitosis and meiosis
        Impressionism and Expressionism | index funds and actively managed funds"""),
    "issue": _items("""the 2008 financial crisis | the influence of social media on democracy
        the fall of the Roman Empire | remote work and productivity | universal basic income
        the rise of populism in Europe | the decline of bee populations
        the economics of streaming services | the outbreak of the First World War
        the housing crisis in big cities | the role of central banks | the gig economy"""),
    "perspective": _items("""an economic | a historical | an ethical | a sociological | a political
        an environmental"""),
    "option": _items("""nuclear power | remote work | microservices | electric cars | homeschooling
        open-source software | a four-day work week | cryptocurrencies | standardized testing
        a plant-based diet | self-driving cars | tiny houses | online degrees | rent control"""),
    "stakeholder": _items("""small businesses | students | the environment | developing countries
        families | workers | cities"""),
    "hypothetical": _items("""the Moon disappeared | humans stopped sleeping | the internet went down for a month
        everyone spoke the same language | antibiotics stopped working | oil ran out tomorrow"""),
    "tech": _items("""facial recognition | gene editing | autonomous weapons | social credit systems
        AI-generated art | brain-computer interfaces | deepfakes"""),
    "work": _items("""Adam Smith's The Wealth of Nations | Darwin's On the Origin of Species
        Kant's categorical imperative | Keynes's General Theory | Orwell's 1984
        Kahneman's Thinking, Fast and Slow | Rachel Carson's Silent Spring"""),
    # -- lightweight
    "phrase": _items("""good morning | where is the train station? | thank you very much
        I would like a coffee | how much does this cost? | see you tomorrow | happy birthday
        I don't understand | the meeting is cancelled | nice to meet you | excuse me
        can I have the bill, please? | I am lost | what time is it? | good night
        I'm allergic to peanuts | where is the bathroom? | the weather is nice today
        my name is Anna | I'm sorry | how are you?"""),
    "target_language": _items("""French | Spanish | German | Italian | Portuguese | Japanese
        Chinese | Korean | Dutch | Russian | Arabic | Swedish | Polish | Turkish | Greek"""),
    "amount": _items("3 | 5 | 12 | 25 | 42 | 100 | 250 | 0.5 | 7.5 | 1000 | 60 | 18"),
    "conversion": _items("""miles to kilometers | pounds to kilograms | degrees Fahrenheit to Celsius
        inches to centimeters | liters to gallons | feet to meters | ounces to grams
        hours to minutes | kilobytes to megabytes | cups to milliliters | euros to cents"""),
    "number": _items("7 | 13 | 42 | 64 | 99 | 128 | 255 | 365 | 1000 | 2024 | 1987 | 512"),
    "base": _items("binary | hexadecimal | Roman numerals | octal | words"),
    "a": _items("3 | 7 | 12 | 15 | 24 | 38 | 45 | 56 | 81 | 99 | 120 | 250"),
    "b": _items("2 | 4 | 6 | 8 | 9 | 11 | 13 | 17 | 20 | 25"),
    "op": _items("plus | minus | times | divided by"),
    "word": _items("""happy | fast | bright | ancient | brave | tiny | difficult | cold | quiet
        generous | honest | strange | clever | empty | gentle | famous | rough | lucky"""),
    "country": _items("""France | Japan | Brazil | Canada | Kenya | Australia | Norway | Peru
        Egypt | Vietnam | Portugal | Mexico | Chile | Ireland | Thailand"""),
    "time": _items("3:15 PM | 7:45 AM | 11:30 PM | 12:05 AM | 6:20 PM | 9:00 AM | 4:50 PM"),
    "noun": _items("""mouse | child | cactus | analysis | tooth | goose | phenomenon | knife
        city | box | criterion | sheep"""),
    "sentence": _items("""the cat sat on the mat. | my friend lives in new york. | we went to paris in june.
        i love reading on sundays. | the meeting starts at noon on monday."""),
    "numbers": _items("""5, 2, 9, 1 | 14, 3, 8, 21, 6 | 100, 42, 7, 63 | 9, 18, 4, 11, 2
        31, 17, 25, 8 | 0.5, 0.25, 0.75, 0.1"""),
    "decimal": _items("3.7 | 12.49 | 8.5 | 0.62 | 99.95 | 41.3"),
}

TEMPLATE_TEXTS: dict[int, str] = {
    0: """Write a {language} function that {task}.
        Implement a {data_structure} in {language}.
        Implement {algorithm} in {language}.
        Write {language} code that {task}.
        Debug this {language} function: it {bug}.
        My {language} implementation of {algorithm} {bug}. How do I fix it?
        Write unit tests in {language} for a function that {task}.
        Refactor my {language} function that {task} so it is easier to test.
        Create a {language} script that {task}.
        Write an efficient algorithm in {language} that {task}.
        Build a {app} in {language}.
        Optimize my {language} {algorithm}; it is too slow on {size} elements.
        Write a {language} class for a {data_structure} with full test coverage.
        Port this {algorithm} implementation from {old_language} to {language}.
        Write a SQL query that {sql_task}.
        Fix the bug in my {language} {data_structure}: it {bug}.
        Code a {language} function that {task}, with type hints and docstrings.
        Design and implement a {app} in {language}.""",
    1: """Write a {length} {genre} story about {character}.
        Write a {tone} article about {topic} for {audience}.
        Write a {length} essay on {topic}.
        Compose a {poem} about {theme}.
        Draft a {tone} blog post about {topic}.
        Tell me a {tone} bedtime story about {character}.
        Write the opening chapter of a {genre} novel featuring {character}.
        Write a {tone} speech about {topic} for {audience}.
        Write a persuasive essay arguing that {claim}.
        Write a product description for {product} aimed at {audience}.
        Write a cover letter for a {job} position.
        Write a {tone} newsletter for {audience} about {topic}.
        Write a piece of creative writing inspired by {theme}.
        Write song lyrics about {theme} in the style of {music}.
        Write a {genre} short story where the main character is {character}.
        Write a {length} magazine article on {topic}.
        Write a {tone} {poem} for {audience} about {theme}.""",
    2: """Explain {concept} {level}.
        What is {concept} and why does it matter?
        How does {system} work?
        Compare {pair}.
        Analyze {issue}.
        What are the main differences between {pair}?
        Explain how {system} works {level}.
        What are the advantages and disadvantages of {option}?
        Help me understand {concept}.
        What would happen if {hypothetical}?
        Give me an overview of {issue}.
        Discuss the ethical implications of {tech}.
        Summarize the key ideas of {work}.
        What are the pros and cons of {option}?
        How does {concept} relate to everyday life?
        Analyze the long-term consequences of {option}.
        Compare the arguments for and against {option}.
        What are the advantages and disadvantages of {option} for {stakeholder}?
        Analyze {issue} from {perspective} perspective.
        How would you explain {concept} {level}?
        What do scientists mean by {concept}?
        How would {option} affect {stakeholder}?
        What is {concept}? Explain it {level}.""",
    3: """Translate "{phrase}" into {target_language}.
        How do you say "{phrase}" in {target_language}?
        Convert {amount} {conversion}.
        Convert {number} to {base}.
        Calculate {a} {op} {b}.
        Give me a synonym for "{word}".
        What is the opposite of "{word}"?
        Spell "{word}" backwards.
        What's the capital of {country}?
        Convert {time} to 24-hour time.
        What is the plural of "{noun}"?
        Sort these numbers from smallest to largest: {numbers}.
        Fix the capitalization of this sentence: {sentence}
        Give me a simple definition of "{word}".
        Quick question: how many letters are in "{word}"?
        Is {a} an even or odd number?
        Round {decimal} to the nearest whole number.
        Translate the word "{word}" to {target_language}.
        Basic math: what is {a} {op} {b}?
        What is {a} percent of {amount}?
        Quickly convert {amount} {conversion}, please.""",
}

# Imperative templates can take a politeness prefix ("Could you write ...?").
IMPERATIVE_VERBS = frozenset({
    "analyze", "build", "calculate", "code", "compare", "compose", "convert", "create",
    "debug", "design", "discuss", "draft", "explain", "fix", "give", "help", "implement",
    "optimize", "port", "refactor", "round", "sort", "spell", "summarize", "tell", "translate",
    "write",
})  # fmt: skip
CONTEXT_PREFIXES = _items("""Hi! | Hello. | Hey there. | Good morning! | I'm preparing for an exam.
    For a work project: | My teacher asked us this. | I've been stuck on this for a while.
    I'm new to this. | Here's my request. | This is for my blog.""")
# (prefix, turns the request into a question)
POLITE_PREFIXES: tuple[tuple[str, bool], ...] = (
    ("Please ", False), ("Kindly ", False), ("I'd like you to ", False),
    ("Could you ", True), ("Could you please ", True), ("Can you ", True),
    ("Would you mind helping me: ", False), ("Would you kindly ", True),
)  # fmt: skip
SUFFIXES = _items("""Thanks! | Thank you. | Thanks in advance! | I need this by tonight.
    It's urgent, please. | ASAP please. | Much appreciated. | Please be concise.
    Please be thorough. | Any help is welcome. | This is for a presentation tomorrow. | No rush.""")
