"""Evaluation: routing metrics on outcome data, classifier metrics, quality/cost plots.

``routing_metrics`` and ``classifier_metrics`` need numpy only; ``plots`` imports
matplotlib when it is called.
"""

#: The outcome routers ``evaluate_routing`` and ``routerllm eval-routing`` compare unless
#: told (the feedback router learns online: ``benchmarks/feedback_learning.py`` evaluates
#: that; the policy router's figures depend on its two reference models: ``--routers
#: ...,policy`` adds it). Named here, without numpy, for the command line's option parser.
LEARNED_ROUTERS = ("quality", "logreg", "knn")
